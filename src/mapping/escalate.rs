//! Escalation from a Slack button (PRODUCT §9 "Effects"): the alert context and the result row
//! that the `stackflow_incident` or `stackflow_soar` mapper turns into the escalation's delivery
//! item, built from the link record written when the message was posted (no search per click).
//! A StackFlow incident gets a priority one step higher than the mapped one (P1 floor).
//!
//! Pure: no I/O. The caller delivers the item through the ordinary delivery layer, so the
//! escalation is retried, spooled on outage and never duplicated (its dedupe key is the
//! mapper's own, `mode=row`: one per notable `event_id`).

use super::AlertContext;
use super::slack::RESPOND_CONTEXT_FIELDS;
use super::stackflow::{Priority, SeverityMapping};
use crate::item::TargetKind;
use crate::splunk::results::{FieldValue, Row};
use serde_json::{Map, Value};

/// One step more urgent; P1 stays P1.
pub fn raised(priority: Priority) -> Priority {
    match priority {
        Priority::P1 | Priority::P2 => Priority::P1,
        Priority::P3 => Priority::P2,
        Priority::P4 => Priority::P3,
    }
}

/// `stackflow` or `soar` (the button's recorded `escalate_to`), else `None`.
pub fn target_of(escalate_to: &str) -> Option<TargetKind> {
    match escalate_to.trim().to_ascii_lowercase().as_str() {
        "" | "stackflow" => Some(TargetKind::Stackflow),
        "soar" => Some(TargetKind::Soar),
        _ => None,
    }
}

/// The context and row of an escalation of the notable in `link`, to `kind` on `account`,
/// asked for by the Splunk user `by`.
pub fn escalation(
    kind: TargetKind,
    account: &str,
    link: &Map<String, Value>,
    by: &str,
) -> (AlertContext, Row) {
    let text = |name: &str| {
        link.get(name).and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty())
    };
    // The row: the context recorded at post time (the mapped priority is replaced below).
    let mut pairs: Vec<(&str, FieldValue)> = RESPOND_CONTEXT_FIELDS
        .iter()
        .filter(|name| **name != "stackflow_priority")
        .filter_map(|name| text(name).map(|value| (*name, FieldValue::Single(value.to_string()))))
        .collect();
    if kind == TargetKind::Stackflow {
        // The mapped priority (the row's own, else the default severity mapping), one step up.
        let mapped = text("stackflow_priority").and_then(Priority::parse).unwrap_or_else(|| {
            SeverityMapping::parse("")
                .map(|mapping| mapping.priority_for(text("severity").or(text("urgency"))))
                .unwrap_or(Priority::P3)
        });
        pairs.push(("stackflow_priority", FieldValue::Single(raised(mapped).as_str().into())));
    }
    pairs.push((
        "message",
        FieldValue::Single(format!(
            "Escalated from Slack by {by}: {}",
            text("rule_name").or(text("search_name")).unwrap_or("Splunk alert")
        )),
    ));
    let mut params = std::collections::BTreeMap::new();
    params.insert("account".to_string(), account.to_string());
    params.insert("mode".to_string(), "row".to_string());
    params.insert("grouping".to_string(), "row".to_string());
    let context = AlertContext {
        action: kind.action_name().to_string(),
        sid: text("sid").unwrap_or("slack-escalation").to_string(),
        search_name: text("search_name").unwrap_or("Slack escalation").to_string(),
        params,
        rows_total: 1,
        ..AlertContext::default()
    };
    (context, Row::from_pairs("0", &pairs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::mapper_for;
    use serde_json::json;

    fn link(pairs: Value) -> Map<String, Value> {
        pairs.as_object().unwrap().clone()
    }

    #[test]
    fn priorities_go_one_step_up_with_a_p1_floor() {
        assert_eq!(raised(Priority::P4), Priority::P3);
        assert_eq!(raised(Priority::P2), Priority::P1);
        assert_eq!(raised(Priority::P1), Priority::P1);
        assert_eq!(target_of("SOAR"), Some(TargetKind::Soar));
        assert_eq!(target_of(""), Some(TargetKind::Stackflow));
        assert_eq!(target_of("jira"), None);
    }

    #[test]
    fn an_escalation_is_one_incident_per_notable_with_the_raised_priority() {
        let link = link(json!({"event_id": "NE-1", "rule_name": "Brute force", "severity": "high",
            "search_name": "ES - Brute force - Rule", "sid": "sid7", "password": "hunter2"}));
        let (context, row) = escalation(TargetKind::Stackflow, "default", &link, "alice");
        let mut mapper = mapper_for(TargetKind::Stackflow, context).unwrap();
        let mut items = mapper.push(&row).unwrap();
        items.extend(mapper.finish().unwrap());
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].dedupe_key, "stackflow:default:NE-1");
        let request = items[0].request_value();
        // high maps to P2 by default; escalated one step: P1.
        assert_eq!(request["stackflow_priority"], "P1", "{request}");
        assert!(!request.to_string().contains("hunter2"), "only the recorded context fields");
        let (context, row) = escalation(TargetKind::Soar, "default", &link, "alice");
        let mut mapper = mapper_for(TargetKind::Soar, context).unwrap();
        let mut items = mapper.push(&row).unwrap();
        items.extend(mapper.finish().unwrap());
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].target, TargetKind::Soar);
    }
}
