//! Rows → StackFlow inbound-webhook incidents: the Splunk template fields with tokens already
//! resolved, priority (row `stackflow_priority`, else the severity mapping), the ES notable
//! mapping, and the stable `dedupe_key` (PRODUCT §4 `stackflow_incident`). Pure: no I/O.
//!
//! The item's `request` is exactly the JSON body the webhook receives, so a spooled item can be
//! re-sent by `spool flush` without the results file.

use super::{AlertContext, RowMapper};
use crate::error::{Error, Result};
use crate::item::{DeliveryItem, TargetKind};
use crate::splunk::results::{FieldValue, Row};
use serde_json::{Map, Value};

/// The alert action stanza whose parameters this mapper reads.
const STANZA: &str = "stackflow_incident";
/// `severity_mapping` when the parameter is empty; entries of a set parameter override these.
pub const DEFAULT_SEVERITY_MAPPING: &str = "critical=P1,high=P2,medium=P3,low=P4,informational=P4";
/// `notable_mapping` when the parameter is empty; entries of a set parameter override these
/// per incident field.
pub const DEFAULT_NOTABLE_MAPPING: &str =
    "rule_name=short_description,dest=ci_identifier,src=source_ip";
/// The longest generated `message` (characters), when the row has no `message` field.
pub const SUMMARY_MAX_CHARS: usize = 500;

/// The webhook template's fields (StackFlow docs, integrations/connectors/splunk.html), in template order.
pub const TEMPLATE_FIELDS: [&str; 10] = [
    "search_name",
    "result_count",
    "search_uri",
    "severity",
    "host",
    "source",
    "message",
    "stackflow_priority",
    "stackflow_assignment_group",
    "timestamp",
];

/// Incident fields set from the alert itself, which a notable mapping may not overwrite.
const RESERVED_KEYS: [&str; 5] =
    ["search_name", "result_count", "search_uri", "timestamp", "dedupe_key"];

/// One incident per trigger (first row) or one per row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Alert,
    Row,
}

/// A StackFlow priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    P1,
    P2,
    P3,
    P4,
}

impl Priority {
    /// `P1`–`P4`, case-insensitive, surrounding blanks ignored.
    pub fn parse(text: &str) -> Option<Priority> {
        match text.trim().to_ascii_uppercase().as_str() {
            "P1" => Some(Priority::P1),
            "P2" => Some(Priority::P2),
            "P3" => Some(Priority::P3),
            "P4" => Some(Priority::P4),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
            Priority::P4 => "P4",
        }
    }
}

/// Severity word (lowercase) → priority, defaults first, overrides replacing by word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeverityMapping {
    entries: Vec<(String, Priority)>,
}

impl SeverityMapping {
    /// Parses `severity=priority,…` on top of the defaults. Empty text keeps the defaults.
    pub fn parse(text: &str) -> Result<SeverityMapping> {
        let mut mapping = SeverityMapping { entries: Vec::new() };
        for (severity, priority) in parse_pairs(DEFAULT_SEVERITY_MAPPING, "severity_mapping")? {
            mapping.set(&severity, &priority)?;
        }
        for (severity, priority) in parse_pairs(text, "severity_mapping")? {
            mapping.set(&severity, &priority)?;
        }
        Ok(mapping)
    }

    fn set(&mut self, severity: &str, priority: &str) -> Result<()> {
        let priority = Priority::parse(priority).ok_or_else(|| {
            param_error(
                "severity_mapping",
                format!(
                    "\"{severity}={priority}\": \"{priority}\" is not a StackFlow priority (P1, P2, P3 or P4)"
                ),
            )
        })?;
        let severity = severity.to_ascii_lowercase();
        match self.entries.iter_mut().find(|(known, _)| *known == severity) {
            Some(entry) => entry.1 = priority,
            None => self.entries.push((severity, priority)),
        }
        Ok(())
    }

    /// The priority of a severity word (case-insensitive).
    pub fn get(&self, severity: &str) -> Option<Priority> {
        let severity = severity.trim().to_ascii_lowercase();
        self.entries.iter().find(|(known, _)| *known == severity).map(|(_, priority)| *priority)
    }

    /// The priority of a row's severity: mapped when known, else what `medium` maps to, else P3.
    pub fn priority_for(&self, severity: Option<&str>) -> Priority {
        severity
            .and_then(|severity| {
                // The word as given, else its standard spelling (`crit` → `critical`).
                self.get(severity).or_else(|| {
                    crate::mapping::slack::Severity::parse(severity)
                        .and_then(|standard| self.get(standard.as_str()))
                })
            })
            .or_else(|| self.get("medium"))
            .unwrap_or(Priority::P3)
    }
}

/// Result field → incident field. For each incident field, the sources in order (the first
/// one present in the row wins); a parameter entry for an incident field replaces the default
/// sources of that field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotableMapping {
    /// (incident field, result fields in order of preference)
    targets: Vec<(String, Vec<String>)>,
}

impl NotableMapping {
    pub fn parse(text: &str) -> Result<NotableMapping> {
        let mut mapping = NotableMapping { targets: Vec::new() };
        for (field, key) in parse_pairs(DEFAULT_NOTABLE_MAPPING, "notable_mapping")? {
            mapping.add(field, key);
        }
        let mut overridden: Vec<String> = Vec::new();
        for (field, key) in parse_pairs(text, "notable_mapping")? {
            if !valid_key(&key) {
                return Err(param_error(
                    "notable_mapping",
                    format!(
                        "\"{field}={key}\": \"{key}\" is not a usable incident field name (letters, digits, _ . -)"
                    ),
                ));
            }
            if RESERVED_KEYS.contains(&key.as_str()) {
                return Err(param_error(
                    "notable_mapping",
                    format!(
                        "\"{field}={key}\": \"{key}\" is set from the alert itself and cannot be mapped"
                    ),
                ));
            }
            if !overridden.contains(&key) {
                overridden.push(key.clone());
                if let Some(slot) = mapping.targets.iter_mut().find(|(target, _)| *target == key) {
                    slot.1.clear();
                }
            }
            mapping.add(field, key);
        }
        Ok(mapping)
    }

    fn add(&mut self, field: String, key: String) {
        match self.targets.iter_mut().find(|(target, _)| *target == key) {
            Some((_, sources)) => {
                if !sources.contains(&field) {
                    sources.push(field);
                }
            }
            None => self.targets.push((key, vec![field])),
        }
    }

    /// The value for an incident field from the row, when a source field is present.
    pub fn value<'r>(&self, key: &str, row: &'r Row) -> Option<&'r str> {
        self.targets
            .iter()
            .find(|(target, _)| target == key)
            .and_then(|(_, sources)| sources.iter().find_map(|source| row.str(source)))
    }

    /// Incident fields this mapping can set, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.targets.iter().map(|(key, _)| key.as_str())
    }
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'.' | b'-'))
}

fn param_error(param: &str, problem: String) -> Error {
    Error::Config {
        file: "alert_actions.conf".into(),
        stanza: STANZA.into(),
        key: format!("param.{param}"),
        problem,
    }
}

/// Splits `a=b,c=d` into trimmed pairs; empty entries (a trailing comma) are skipped.
fn parse_pairs(text: &str, param: &str) -> Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for entry in text.split(',') {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let (left, right) = entry.split_once('=').ok_or_else(|| {
            param_error(
                param,
                format!(
                    "\"{entry}\" is not of the form name=value (entries are separated by commas)"
                ),
            )
        })?;
        let (left, right) = (left.trim(), right.trim());
        if left.is_empty() || right.is_empty() {
            return Err(param_error(
                param,
                format!("\"{entry}\" has an empty side (expected name=value)"),
            ));
        }
        pairs.push((left.to_string(), right.to_string()));
    }
    Ok(pairs)
}

/// Everything the mapper needs from the parameters, checked once.
#[derive(Clone, Debug)]
pub struct IncidentSettings {
    pub mode: Mode,
    pub assignment_group: String,
    pub severity: SeverityMapping,
    pub notable: NotableMapping,
}

impl IncidentSettings {
    pub fn from_context(context: &AlertContext) -> Result<IncidentSettings> {
        let mode = match context.param("mode").map(str::to_ascii_lowercase).as_deref() {
            None | Some("alert") => Mode::Alert,
            Some("row") => Mode::Row,
            Some(other) => {
                return Err(param_error("mode", format!("\"{other}\" is not one of: alert, row")));
            }
        };
        Ok(IncidentSettings {
            mode,
            assignment_group: context.param("assignment_group").unwrap_or_default().to_string(),
            severity: SeverityMapping::parse(
                context.param("severity_mapping").unwrap_or_default(),
            )?,
            notable: NotableMapping::parse(context.param("notable_mapping").unwrap_or_default())?,
        })
    }
}

/// Builds StackFlow webhook items from rows.
pub struct IncidentMapper {
    context: AlertContext,
    settings: IncidentSettings,
    /// mode=alert: the one incident, built from the first row and sent after the last, so
    /// that it carries every row (each row gets its own status line and receipt).
    pending: Option<DeliveryItem>,
}

/// mode=alert keeps at most this many rows on the incident's item for per-row status lines
/// (about 100 bytes each); rows beyond still count in `result_count`.
const MAX_ROWS_PER_INCIDENT: usize = 100_000;

impl IncidentMapper {
    /// Checks the parameters; a bad one is a configuration error before anything is sent.
    pub fn new(context: AlertContext) -> Result<IncidentMapper> {
        let settings = IncidentSettings::from_context(&context)?;
        Ok(IncidentMapper { context, settings, pending: None })
    }

    fn item(&self, row: &Row) -> DeliveryItem {
        let account = self.context.account().to_string();
        let dedupe_key = dedupe_key(&self.context, self.settings.mode, row);
        let request = incident_payload(&self.context, &self.settings, row, &dedupe_key);
        DeliveryItem {
            target: TargetKind::Stackflow,
            account,
            dedupe_key,
            request: DeliveryItem::raw_from_value(&request),
            context: self.context.item_context(&[row]),
            list_index: None,
        }
    }
}

impl RowMapper for IncidentMapper {
    fn push(&mut self, row: &Row) -> Result<Vec<DeliveryItem>> {
        match self.settings.mode {
            Mode::Row => Ok(vec![self.item(row)]),
            Mode::Alert => {
                match &mut self.pending {
                    None => self.pending = Some(self.item(row)),
                    Some(item) if item.context.rows.len() < MAX_ROWS_PER_INCIDENT => {
                        let extra = self.context.item_context(&[row]);
                        item.context.rows.extend(extra.rows);
                    }
                    Some(_) => {}
                }
                Ok(Vec::new())
            }
        }
    }

    fn finish(&mut self) -> Result<Vec<DeliveryItem>> {
        Ok(self.pending.take().into_iter().collect())
    }
}

/// The stable idempotency key (PRODUCT §4): `stackflow:<account>:<sid>[:<result_id>]` for
/// mode=alert; `stackflow:<account>:<event_id>` or `…:<hash of sid, rid and row>` for mode=row.
pub fn dedupe_key(context: &AlertContext, mode: Mode, row: &Row) -> String {
    let account = context.account();
    match mode {
        Mode::Alert => match &context.result_id {
            Some(result_id) => format!("stackflow:{account}:{}:{result_id}", context.sid),
            None => format!("stackflow:{account}:{}", context.sid),
        },
        Mode::Row => match row.str("event_id") {
            Some(event_id) => format!("stackflow:{account}:{event_id}"),
            None => format!("stackflow:{account}:{}", row_hash(&context.sid, &row.rid, row)),
        },
    }
}

/// A 128-bit FNV-1a hash of sid, rid and the row's fields sorted by name, every part length
/// prefixed so that no two different rows encode alike. Stable across runs and versions.
pub fn row_hash(sid: &str, rid: &str, row: &Row) -> String {
    let mut hasher = Fnv128::new();
    hasher.part(sid.as_bytes());
    hasher.part(rid.as_bytes());
    let mut fields: Vec<(&str, &FieldValue)> = row.fields().collect();
    fields.sort_by(|a, b| a.0.cmp(b.0));
    for (name, value) in fields {
        hasher.part(name.as_bytes());
        let values = value.values();
        hasher.part(values.len().to_string().as_bytes());
        for value in values {
            hasher.part(value.as_bytes());
        }
    }
    format!("{:032x}", hasher.0)
}

struct Fnv128(u128);

impl Fnv128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013B;

    fn new() -> Fnv128 {
        Fnv128(Self::OFFSET)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= *byte as u128;
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    fn part(&mut self, bytes: &[u8]) {
        self.bytes(&(bytes.len() as u64).to_le_bytes());
        self.bytes(bytes);
    }
}

/// A row field as Splunk's `$result.<field>$` token renders it: the (first) value, or "".
fn token<'r>(row: &'r Row, field: &str) -> Option<&'r str> {
    row.str(field).map(str::trim).filter(|value| !value.is_empty())
}

/// The webhook body for one incident: the template's fields with tokens resolved, plus
/// `short_description`, `ci_identifier`, `source_ip`, any other notable-mapped fields and
/// `dedupe_key`, all strings at the top level.
pub fn incident_payload(
    context: &AlertContext,
    settings: &IncidentSettings,
    row: &Row,
    dedupe_key: &str,
) -> Value {
    let mapped =
        |key: &str| settings.notable.value(key, row).map(str::trim).filter(|v| !v.is_empty());
    // A template field: the row's own field, else a notable-mapped source, else the fallback.
    let field = |key: &str| token(row, key).or_else(|| mapped(key));
    // One notable, one severity (PRODUCT §15): the highest of a multivalue.
    let severity = crate::mapping::notable_severity(row)
        .or_else(|| field("severity"))
        .or_else(|| token(row, "urgency"));
    let priority = field("stackflow_priority")
        .and_then(Priority::parse)
        .unwrap_or_else(|| settings.severity.priority_for(severity));
    let assignment_group = field("stackflow_assignment_group")
        .unwrap_or(settings.assignment_group.as_str())
        .to_string();
    let host = field("host");
    let message = match field("message") {
        Some(message) => message.to_string(),
        None => match crate::mapping::summary::summarize(row, context) {
            Some(summary) => one_line(&summary, SUMMARY_MAX_CHARS),
            None => summary(context, row),
        },
    };
    let short_description = match mapped("short_description") {
        Some(text) => text.to_string(),
        None => match host {
            Some(host) => format!("{} on {host}", search_title(context)),
            None => search_title(context).to_string(),
        },
    };
    let result_count = match settings.mode {
        Mode::Alert => context.rows_total.to_string(),
        Mode::Row => "1".to_string(),
    };
    let mut body = Map::new();
    let mut put = |key: &str, value: String| {
        body.insert(key.to_string(), Value::String(value));
    };
    put("search_name", context.search_name.clone());
    put("result_count", result_count);
    put("search_uri", context.sid.clone());
    put("severity", severity.unwrap_or_default().to_string());
    put("host", host.unwrap_or_default().to_string());
    put("source", field("source").unwrap_or_default().to_string());
    put("message", message);
    put("stackflow_priority", priority.as_str().to_string());
    put("stackflow_assignment_group", assignment_group);
    put("timestamp", context.trigger_time.to_string());
    put("short_description", short_description);
    put("ci_identifier", mapped("ci_identifier").unwrap_or_default().to_string());
    put("source_ip", mapped("source_ip").unwrap_or_default().to_string());
    for key in settings.notable.keys() {
        if !body.contains_key(key)
            && let Some(value) = mapped(key)
        {
            body.insert(key.to_string(), Value::String(value.to_string()));
        }
    }
    body.insert("dedupe_key".into(), Value::String(dedupe_key.to_string()));
    Value::Object(body)
}

fn search_title(context: &AlertContext) -> &str {
    if context.search_name.trim().is_empty() { "Splunk alert" } else { context.search_name.trim() }
}

/// A one-line summary of a row without `message`: its `rule_title`, `description` or `_raw`,
/// else its visible `field=value` pairs, else the search name; at most 500 characters.
pub fn summary(context: &AlertContext, row: &Row) -> String {
    let text = ["rule_title", "description", "_raw"]
        .iter()
        .find_map(|field| row.get(field).filter(|value| !value.is_empty()).map(FieldValue::joined))
        .unwrap_or_else(|| {
            row.fields()
                .filter(|(name, _)| !name.starts_with('_'))
                .map(|(name, value)| format!("{name}={}", value.values().join("|")))
                .collect::<Vec<_>>()
                .join(" ")
        });
    let line = one_line(&text, SUMMARY_MAX_CHARS);
    if line.is_empty() { search_title(context).to_string() } else { line }
}

/// Collapses every run of whitespace (newlines included) to one space and cuts at `max` chars.
fn one_line(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (count, word) in text.split_whitespace().enumerate() {
        if count > 0 {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() >= max {
            break;
        }
    }
    match out.char_indices().nth(max) {
        Some((cut, _)) => out[..cut].to_string(),
        None => out,
    }
}

#[cfg(test)]
mod tests;
