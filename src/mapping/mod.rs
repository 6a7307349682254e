//! Pure mapping: result rows → delivery items for SOAR, StackFlow and Slack. No I/O here:
//! everything a mapper needs arrives in `AlertContext` and the rows.

pub mod assets;
pub mod cef;
pub mod escalate;
pub mod redact;
pub mod route;
pub mod slack;
pub mod soar;
pub mod stackflow;
pub mod summary;
pub mod triage;

use crate::error::Result;
use crate::item::{DeliveryItem, ItemContext, RowRef, TargetKind};
use crate::net::url_encode;
use crate::splunk::payload::AlertPayload;
use crate::splunk::results::Row;
use std::collections::BTreeMap;

/// `<base>/mission/<id>`: a container's page in SOAR's UI (receipts, read-back, Slack buttons).
pub fn soar_container_url(base: &str, container_id: &str) -> String {
    format!("{}/mission/{}", base.trim_end_matches('/'), url_encode(container_id))
}

/// `<api base>/incidents/<id>`: a StackFlow incident (receipts, read-back, Slack buttons).
/// StackFlow documents the incidents API resource but no UI route (StackFlow docs, api/incidents.html).
pub fn stackflow_incident_url(api_base: &str, incident_id: &str) -> String {
    format!("{}/incidents/{}", api_base.trim_end_matches('/'), url_encode(incident_id))
}

/// What a mapper knows about the alert run, taken from the payload once.
#[derive(Clone, Debug, Default)]
pub struct AlertContext {
    pub action: String,
    pub sid: String,
    pub search_name: String,
    pub app: String,
    pub owner: String,
    pub results_link: String,
    pub server_host: String,
    /// Set for per-result alerts.
    pub result_id: Option<String>,
    /// Rows in the results file (known before mapping starts).
    pub rows_total: u64,
    /// The action's parameters (`configuration`, without the `param.` prefix).
    pub params: BTreeMap<String, String>,
    /// When the alert fired, in epoch seconds (the payload carries none; the run's start).
    pub trigger_time: u64,
    /// `[route:<name>]` stanzas in name order (Slack only; PRODUCT §13).
    pub routes: Vec<route::Route>,
    /// The valid `[triage:<name>]` templates in name order (Slack only; PRODUCT §16): the
    /// Triage buttons offered and the fields recorded for them.
    pub triage: Vec<triage::Template>,
}

impl AlertContext {
    pub fn from_payload(action: &str, payload: &AlertPayload, rows_total: u64) -> AlertContext {
        AlertContext {
            action: action.to_string(),
            sid: payload.sid.clone(),
            search_name: payload.search_name.clone(),
            app: payload.app.clone(),
            owner: payload.owner.clone(),
            results_link: payload.results_link.clone(),
            server_host: payload.server_host.clone(),
            result_id: payload.result_id.clone(),
            rows_total,
            params: payload.configuration.clone(),
            trigger_time: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            routes: Vec::new(),
            triage: Vec::new(),
        }
    }

    /// A parameter that is set and not empty, trimmed.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(|value| value.trim()).filter(|value| !value.is_empty())
    }

    pub fn account(&self) -> &str {
        self.param("account").unwrap_or("default")
    }

    /// The receipt context of an item built from `rows` (the first row names it).
    pub fn item_context(&self, rows: &[&Row]) -> ItemContext {
        let refs: Vec<RowRef> = rows
            .iter()
            .map(|row| RowRef {
                rid: row.rid.clone(),
                orig_sid: row.str("orig_sid").unwrap_or_default().to_string(),
                orig_rid: row.str("orig_rid").unwrap_or_default().to_string(),
                event_id: row.str("event_id").unwrap_or_default().to_string(),
            })
            .collect();
        let first = refs.first().cloned().unwrap_or_default();
        ItemContext {
            action: self.action.clone(),
            sid: self.sid.clone(),
            rid: first.rid,
            orig_sid: first.orig_sid,
            orig_rid: first.orig_rid,
            event_id: first.event_id,
            search_name: self.search_name.clone(),
            app: self.app.clone(),
            owner: self.owner.clone(),
            results_link: self.results_link.clone(),
            rows: refs,
        }
    }
}

/// Expands `{field}` tokens of an admin's template (SOAR container name, Slack summary).
///
/// A token is a field name (letters, digits, `_ . : -`) in braces; `value_of` answers it (the
/// row's value, else the alert's own values such as `search_name`), and an unknown name
/// becomes empty. Braces around anything that is not a field name stay as they are. Splunk
/// itself replaces `$…$` tokens before we see the template, so this syntax cannot clash.
pub fn render_template(template: &str, mut value_of: impl FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}');
        let name = close.map(|close| &after[..close]).filter(|name| {
            !name.is_empty()
                && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
        });
        match (name, close) {
            (Some(name), Some(close)) => {
                out.push_str(&value_of(name));
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The alert's own values a template may name when the row has no such field.
pub fn context_value(name: &str, row: &Row, context: &AlertContext) -> String {
    match name {
        "sid" => context.sid.clone(),
        "search_name" => context.search_name.clone(),
        "app" => context.app.clone(),
        "owner" => context.owner.clone(),
        "rid" => row.rid.clone(),
        _ => String::new(),
    }
}

/// The notable's severity word, one for every action (PRODUCT §15): of the `severity` values
/// the highest the severity scale knows (`informational < low < medium < high < critical`),
/// else the highest of `urgency`; `None` when neither holds a known word.
pub fn notable_severity(row: &Row) -> Option<&str> {
    ["severity", "urgency"].iter().find_map(|name| {
        row.get(name)?
            .values()
            .into_iter()
            .map(str::trim)
            .filter_map(|word| slack::Severity::parse(word).map(|severity| (severity, word)))
            .max_by_key(|(severity, _)| *severity)
            .map(|(_, word)| word)
    })
}

/// Turns rows into items as they stream past. A mapper may hold a bounded number of rows
/// (a batch) but never the whole file.
pub trait RowMapper {
    /// Items ready after this row (often none while a batch fills up).
    fn push(&mut self, row: &Row) -> Result<Vec<DeliveryItem>>;
    /// Items still held after the last row.
    fn finish(&mut self) -> Result<Vec<DeliveryItem>>;
    /// Rows a route suppressed since the last call (they get a `suppressed` receipt).
    fn take_suppressed(&mut self) -> Vec<Suppressed> {
        Vec::new()
    }
    /// The buffer of a request already sent, handed back for the next one: a SOAR batch is
    /// about a megabyte, and a fresh one each time costs page faults that show in the alert's
    /// CPU. Mappers of small requests drop it.
    fn reuse(&mut self, _buffer: Vec<u8>) {}
}

/// A row not sent because a `[route:<name>]` with `suppress = true` matched it.
#[derive(Clone, Debug)]
pub struct Suppressed {
    pub row: crate::item::RowRef,
    pub route: String,
}

/// The mapper for a target, configured from the alert's parameters. Bad parameters are
/// configuration errors (exit 4) reported before anything is sent.
pub fn mapper_for(kind: TargetKind, context: AlertContext) -> Result<Box<dyn RowMapper>> {
    Ok(match kind {
        TargetKind::Soar => Box::new(soar::SoarMapper::new(context)?),
        TargetKind::Stackflow => Box::new(stackflow::IncidentMapper::new(context)?),
        TargetKind::Slack => Box::new(slack::SlackMapper::new(context)?),
    })
}
