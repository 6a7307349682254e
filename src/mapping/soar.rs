//! Rows → SOAR containers and CEF artifacts (grouping, SDIs, severity, field mapping). Pure:
//! everything comes from the `AlertContext` and the rows, nothing is read or sent here.
//!
//! Delivery units: `grouping=alert` (default) makes one container per alert run and items of
//! up to `BATCH_ARTIFACTS` artifacts, each carrying the container spec, so a 100,000-row alert
//! streams through in constant memory; `grouping=row` makes one container (one item) per row.
//! Each row becomes one artifact per combination of its CEF-mapped multivalue fields (at most
//! `MAX_ARTIFACTS_PER_ROW`). Source data identifiers are deterministic, so a re-run or a re-send
//! finds what is already in SOAR instead of duplicating it (PRODUCT §4 "Precise rules").

use super::cef::{self, FieldMapping};
use super::{AlertContext, RowMapper};
use crate::error::{Error, Result};
use crate::item::{
    DeliveryItem, ItemContext, ListElement, ListIndex, RequestJson, RowRef, TargetKind,
};
use crate::splunk::results::{FieldValue, Row};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Digest;
use std::collections::BTreeMap;
use std::sync::Arc;

mod mapper;
mod wire;
pub use mapper::SoarMapper;
pub use wire::ArtifactWriter;

/// Artifacts per item for `grouping=alert` (one JSON array POST each).
pub const BATCH_ARTIFACTS: usize = 500;
/// A row's multivalue CEF fields expand to at most this many artifacts.
pub const MAX_ARTIFACTS_PER_ROW: usize = 100;

/// What the SOAR target needs to deliver one item: the container to ensure and a batch of
/// artifacts for it. Serialised as the item's `request` (and so into the spool).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SoarRequest {
    pub container: ContainerSpec,
    pub artifacts: Vec<Artifact>,
    /// 0-based batch number within the container.
    pub batch: u32,
    /// The container's last batch: the playbook (if any) runs after it.
    pub last_batch: bool,
    /// Playbook id or `repo/name` to run on the container after its last batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playbook: Option<String>,
}

/// `POST /rest/container` body (the target adds the account's label when `label` is unset).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub severity: String,
    pub sensitivity: String,
    #[serde(default)]
    pub tags: Vec<String>,
    pub source_data_identifier: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub data: Map<String, Value>,
}

/// One artifact as posted to `/rest/artifact` (the target adds `container_id`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    pub name: String,
    pub label: String,
    pub severity: String,
    pub source_data_identifier: String,
    pub cef: Map<String, Value>,
    pub cef_types: BTreeMap<String, Vec<String>>,
    pub data: Map<String, Value>,
    pub run_automation: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grouping {
    Alert,
    Row,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeverityParam {
    /// From each row's `severity`, else `urgency`.
    Auto,
    Fixed(String),
}

/// The action's parameters, checked once before anything is sent.
#[derive(Clone, Debug)]
pub struct SoarParams {
    pub label: Option<String>,
    pub severity: SeverityParam,
    pub sensitivity: String,
    pub container_name: Option<String>,
    pub grouping: Grouping,
    pub field_mapping: FieldMapping,
    pub playbook: Option<String>,
    pub tags: Vec<String>,
}

fn param_error(name: &str, problem: impl Into<String>) -> Error {
    Error::Config {
        file: "alert_actions.conf".into(),
        stanza: "stackflow_soar".into(),
        key: format!("param.{name}"),
        problem: problem.into(),
    }
}

impl SoarParams {
    pub fn from_context(context: &AlertContext) -> Result<SoarParams> {
        let grouping = match context.param("grouping").map(str::to_ascii_lowercase).as_deref() {
            None | Some("alert") => Grouping::Alert,
            Some("row") => Grouping::Row,
            Some(other) => {
                return Err(param_error(
                    "grouping",
                    format!("\"{other}\" is not a grouping: use alert or row"),
                ));
            }
        };
        let sensitivity = match context.param("sensitivity") {
            None => "amber".to_string(),
            Some(value) => {
                let lower = value.to_ascii_lowercase();
                if !["white", "green", "amber", "red"].contains(&lower.as_str()) {
                    return Err(param_error(
                        "sensitivity",
                        format!(
                            "\"{value}\" is not a TLP sensitivity: use white, green, amber or red"
                        ),
                    ));
                }
                lower
            }
        };
        let severity = match context.param("severity") {
            None => SeverityParam::Auto,
            Some(value) if value.eq_ignore_ascii_case("auto") => SeverityParam::Auto,
            Some(value) => SeverityParam::Fixed(
                soar_severity(value).map(str::to_string).unwrap_or_else(|| value.to_string()),
            ),
        };
        let field_mapping = FieldMapping::parse(context.param("field_mapping").unwrap_or(""))
            .map_err(|problem| param_error("field_mapping", problem))?;
        let mut tags: Vec<String> = Vec::new();
        for tag in context.param("tags").unwrap_or("").split(',') {
            let tag = tag.trim();
            if !tag.is_empty() && !tags.iter().any(|known| known == tag) {
                tags.push(tag.to_string());
            }
        }
        Ok(SoarParams {
            label: context.param("label").map(str::to_string),
            severity,
            sensitivity,
            container_name: context.param("container_name").map(str::to_string),
            grouping,
            field_mapping,
            playbook: context.param("playbook").map(str::to_string),
            tags,
        })
    }
}

/// Splunk/ES severity or urgency words → SOAR's default severities.
pub fn soar_severity(value: &str) -> Option<&'static str> {
    match value.trim().to_ascii_lowercase().as_str() {
        "informational" | "info" | "low" => Some("low"),
        "medium" => Some("medium"),
        "high" | "critical" => Some("high"),
        _ => None,
    }
}

/// A row's SOAR severity: its `severity`, else its `urgency` (the highest of a multivalue),
/// else `medium`.
pub fn row_severity(row: &Row) -> String {
    use super::slack::Severity;
    let severity = super::notable_severity(row).and_then(Severity::parse);
    match severity {
        Some(Severity::Informational | Severity::Low) => "low",
        Some(Severity::High | Severity::Critical) => "high",
        Some(Severity::Medium) | None => "medium",
    }
    .to_string()
}

/// Replaces `{field}` tokens with the row's value (multivalue joined with ", "); `{sid}`,
/// `{search_name}`, `{app}`, `{owner}` and `{rid}` fall back to the alert's own values. A token
/// whose field is absent becomes empty; braces around anything that is not a field name stay.
pub fn render_template(template: &str, row: &Row, context: &AlertContext) -> String {
    super::render_template(template, |name| match row.get(name) {
        Some(FieldValue::Multi(values)) => values.join(", "),
        Some(FieldValue::Single(value)) => value.clone(),
        None => super::context_value(name, row, context),
    })
}

fn rule_name(row: &Row) -> Option<&str> {
    row.str("rule_name").or_else(|| row.str("rule_title"))
}

/// A canonical, order-independent encoding of a row's fields (internal ones left out).
fn canonical_row(row: &Row, out: &mut impl sha2::Digest) {
    let mut fields: Vec<(&str, &FieldValue)> =
        row.fields().filter(|(name, _)| !cef::is_internal(name)).collect();
    fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (name, value) in fields {
        out.update((name.len() as u64).to_be_bytes());
        out.update(name.as_bytes());
        match value {
            FieldValue::Single(value) => {
                out.update(1u64.to_be_bytes());
                out.update((value.len() as u64).to_be_bytes());
                out.update(value.as_bytes());
            }
            FieldValue::Multi(values) => {
                out.update((values.len() as u64).to_be_bytes());
                for value in values {
                    out.update((value.len() as u64).to_be_bytes());
                    out.update(value.as_bytes());
                }
            }
        }
    }
}

/// Lower-case hex of `bytes`, without a formatting call per byte.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// The row's own identity: its `event_id`, else a hash of its fields (stable: sorted fields).
pub fn row_identity(row: &Row) -> String {
    if let Some(event_id) = row.str("event_id") {
        return event_id.to_string();
    }
    // Fed to the hash as it is produced, so no buffer of the row is built.
    let mut hasher = sha2::Sha256::new();
    canonical_row(row, &mut hasher);
    hex(&hasher.finalize()[..16])
}

/// Container SDI for `grouping=row`: the row's `event_id`, else a hash of sid + rid + row.
pub fn row_container_sdi(row: &Row, sid: &str) -> String {
    if let Some(event_id) = row.str("event_id") {
        return event_id.to_string();
    }
    let mut hasher = sha2::Sha256::new();
    for part in [sid, row.rid.as_str()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    canonical_row(row, &mut hasher);
    hex(&hasher.finalize()[..16])
}

/// Container SDI for `grouping=alert`: the sid, plus `:<result_id>` for per-result alerts.
pub fn alert_container_sdi(context: &AlertContext) -> String {
    match context.result_id.as_deref().filter(|id| !id.is_empty()) {
        Some(result_id) => format!("{}:{result_id}", context.sid),
        None => context.sid.clone(),
    }
}

fn json_value(value: &FieldValue) -> Value {
    match value {
        FieldValue::Single(value) => Value::String(value.clone()),
        FieldValue::Multi(values) => {
            Value::Array(values.iter().map(|value| Value::String(value.clone())).collect())
        }
    }
}

/// A row's artifacts: one per combination of its CEF-mapped multivalue fields (capped at
/// `MAX_ARTIFACTS_PER_ROW`), each with every single-valued CEF field, `cef_types` and the
/// unmapped fields in `data`. `run_automation` is false on all; the mapper sets the last.
pub fn row_artifacts(
    row: &Row,
    mapping: &FieldMapping,
    name: &str,
    severity: &str,
) -> Vec<Artifact> {
    let mut slots: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    let mut data = Map::new();
    for (field, value) in row.fields() {
        if cef::is_internal(field) {
            continue;
        }
        let Some(key) = mapping.cef_key(field) else {
            data.insert(field.to_string(), json_value(value));
            continue;
        };
        // The field's distinct non-empty values: addresses under `key`, and — for an address
        // key — the rest under its host-name key (types follow the value).
        let host_key = cef::host_key(key);
        let mut addresses: Vec<&str> = Vec::new();
        let mut hosts: Vec<&str> = Vec::new();
        for value in value.values() {
            if value.is_empty() || addresses.contains(&value) || hosts.contains(&value) {
                continue;
            }
            if host_key.is_some() && !cef::is_ip(value) {
                hosts.push(value);
            } else {
                addresses.push(value);
            }
        }
        let parts: Vec<(&str, Vec<&str>)> = [(Some(key), addresses), (host_key, hosts)]
            .into_iter()
            .filter_map(|(key, values)| key.filter(|_| !values.is_empty()).map(|key| (key, values)))
            .collect();
        let taken = |key: &str| slots.iter().any(|(k, _, _)| *k == key);
        // A key an earlier field took leaves this field in `data` (whole); so does an empty
        // value whose key is taken.
        if parts.iter().any(|(key, _)| taken(key)) || (parts.is_empty() && taken(key)) {
            data.insert(field.to_string(), json_value(value));
            continue;
        }
        for (key, values) in parts {
            slots.push((key, field, values));
        }
    }
    let combinations =
        slots.iter().fold(1usize, |n, (_, _, values)| n.saturating_mul(values.len()));
    if combinations > MAX_ARTIFACTS_PER_ROW {
        // Not every combination becomes an artifact: keep the full values where SOAR can see
        // them (a field's addresses, then its host names).
        let mut full: Vec<(&str, Vec<Value>)> = Vec::new();
        for (_, field, values) in &slots {
            let many = slots.iter().any(|(_, f, values)| f == field && values.len() > 1);
            if !many {
                continue;
            }
            let list = values.iter().map(|value| Value::String(value.to_string()));
            match full.iter_mut().find(|(f, _)| f == field) {
                Some((_, known)) => known.extend(list),
                None => full.push((field, list.collect())),
            }
        }
        for (field, list) in full {
            data.insert(field.to_string(), Value::Array(list));
        }
    }
    let count = combinations.min(MAX_ARTIFACTS_PER_ROW);
    let identity = row_identity(row);
    let mut cef_types = BTreeMap::new();
    for (key, _, _) in &slots {
        if let Some(contains) = cef::contains(key) {
            cef_types.insert(key.to_string(), vec![contains.to_string()]);
        }
    }
    (0..count)
        .map(|index| {
            // Mixed-radix digits of `index`, the last multivalue field varying fastest.
            let mut cef = Map::new();
            let mut rest = index;
            let mut picks = vec![0usize; slots.len()];
            for (slot, (_, _, values)) in slots.iter().enumerate().rev() {
                picks[slot] = rest % values.len();
                rest /= values.len();
            }
            for ((key, _, values), pick) in slots.iter().zip(picks) {
                cef.insert(key.to_string(), Value::String(values[pick].to_string()));
            }
            let source_data_identifier =
                if count > 1 { format!("{identity}:{index}") } else { identity.clone() };
            Artifact {
                name: name.to_string(),
                label: "event".into(),
                severity: severity.to_string(),
                source_data_identifier,
                cef,
                // The last (usually only) artifact takes them; earlier ones get copies.
                cef_types: if index + 1 == count {
                    std::mem::take(&mut cef_types)
                } else {
                    cef_types.clone()
                },
                data: if index + 1 == count { std::mem::take(&mut data) } else { data.clone() },
                run_automation: false,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
