//! What a message says about a row: the context fields shown (user, source, destination,
//! MITRE, risk…), the link hints, and the plain-language summary (default or template).

use super::*;

// ---------------------------------------------------------------------------------------------
// One row's view

/// The context-field table: label, then the row fields tried in order.
pub(super) const CONTEXT_FIELDS: &[(&str, &[&str])] = &[
    ("User", &["user", "src_user"]),
    ("Source", &["src", "src_ip"]),
    ("Destination", &["dest", "dest_ip"]),
    ("Host", &["host"]),
    ("MITRE ATT&CK tactic", &["annotations.mitre_attack.mitre_tactic", "mitre_tactic"]),
    (
        "MITRE ATT&CK technique",
        &[
            "annotations.mitre_attack.mitre_technique_id",
            "annotations.mitre_attack",
            "mitre_technique",
        ],
    ),
    ("Risk score", &["risk_score"]),
    ("Risk object", &["risk_object"]),
    ("Count", &["count"]),
    ("Time", &["_time"]),
];

/// Link hints of a row: what the target needs to find SOAR/StackFlow links at send time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkRecord {
    pub event_id: String,
    pub soar_container_id: String,
    pub stackflow_incident_id: String,
}

impl LinkRecord {
    pub fn is_empty(&self) -> bool {
        self.event_id.is_empty()
            && self.soar_container_id.is_empty()
            && self.stackflow_incident_id.is_empty()
    }

    pub(super) fn to_json(&self) -> Value {
        json!({
            "event_id": self.event_id,
            "soar_container_id": self.soar_container_id,
            "stackflow_incident_id": self.stackflow_incident_id,
        })
    }

    /// Reads a hint from the request, or a `stackflow_links` KV record.
    pub fn from_json(value: &Value) -> LinkRecord {
        let text = |key: &str| match value.get(key) {
            Some(Value::String(text)) => text.trim().to_string(),
            Some(Value::Number(number)) => number.to_string(),
            _ => String::new(),
        };
        LinkRecord {
            event_id: text("event_id"),
            soar_container_id: text("soar_container_id"),
            stackflow_incident_id: text("stackflow_incident_id"),
        }
    }
}

/// What a message shows about one row, before escaping and limits.
#[derive(Clone, Debug)]
pub struct RowView {
    pub severity: Severity,
    pub title: Option<String>,
    pub summary: String,
    pub fields: Vec<(&'static str, String)>,
    pub link: LinkRecord,
    pub row_ref: RowRef,
    /// `summary = llm`: what the target may ask a model about this row ([`llm_context`]).
    pub llm: Option<Value>,
    /// `aggregate_window_s`: the storm this row belongs to ([`storm_context`]).
    pub storm: Option<Value>,
    /// The ES asset & identity line of the context block (`mapping::assets`), unescaped.
    pub assets: Option<String>,
}

/// Builds a row's view: severity, title (`rule_name`), summary, context fields, link hints.
pub fn row_view(row: &Row, context: &AlertContext, template: Option<&str>) -> RowView {
    let severity = Severity::of_row(row);
    let summary = match template {
        Some(template) => render_template(template, row, context, severity),
        None => default_summary(row, context),
    };
    let summary = if summary.trim().is_empty() { default_summary(row, context) } else { summary };
    let mut fields = Vec::new();
    for (label, names) in CONTEXT_FIELDS {
        let Some(mut value) = first_present(row, names) else { continue };
        if *label == "Time" {
            value = format_time(&value);
        }
        if *label == "Risk object"
            && let Some(kind) = row.str("risk_object_type")
        {
            value = format!("{value} ({kind})");
        }
        fields.push((*label, value));
    }
    RowView {
        severity,
        title: row.str("rule_name").map(str::to_string),
        summary,
        fields,
        link: LinkRecord {
            event_id: row.str("event_id").unwrap_or_default().to_string(),
            soar_container_id: row.str("soar_container_id").unwrap_or_default().to_string(),
            stackflow_incident_id: row.str("stackflow_incident_id").unwrap_or_default().to_string(),
        },
        llm: None,
        storm: None,
        assets: crate::mapping::assets::line(row),
        row_ref: RowRef {
            rid: row.rid.clone(),
            orig_sid: row.str("orig_sid").unwrap_or_default().to_string(),
            orig_rid: row.str("orig_rid").unwrap_or_default().to_string(),
            event_id: row.str("event_id").unwrap_or_default().to_string(),
        },
    }
}

/// The template summary (PRODUCT §13, `crate::mapping::summary`): what fired and how severe,
/// who, what, where, when, risk, MITRE and why notable; a row with none of those fields says
/// "<search name> returned a result".
pub fn default_summary(row: &Row, context: &AlertContext) -> String {
    crate::mapping::summary::summarize(row, context).unwrap_or_else(|| {
        let name = if context.search_name.trim().is_empty() {
            "The alert"
        } else {
            context.search_name.trim()
        };
        format!("{name} returned a result")
    })
}

/// Replaces `{field}` tokens with the row's values (multivalues joined with ", ", `_time` as
/// UTC), like the SOAR container name template; when the row has no such field, `search_name`,
/// `sid`, `app`, `owner`, `severity` and `rid` name the alert's own values; any other absent
/// field becomes empty. Braces around anything that is not a field name stay as they are.
pub fn render_template(
    template: &str,
    row: &Row,
    context: &AlertContext,
    severity: Severity,
) -> String {
    let out = crate::mapping::render_template(template, |name| match row.get(name) {
        Some(value) if name == "_time" => format_time(&display_value(value)),
        Some(value) => display_value(value),
        None if name == "severity" => severity.as_str().to_string(),
        None => crate::mapping::context_value(name, row, context),
    });
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}
