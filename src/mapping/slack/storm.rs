//! Storm aggregation on the mapping side (PRODUCT §13, `aggregate_window_s`): the storm an
//! item belongs to — the same rule and entity within the window — carried in the item as
//! `"storm": {"key", "rule", "entity", "window_s"}`, and the "N more in the last …" line the
//! target adds when it updates the storm's message instead of posting another. Pure.

use super::*;

/// Row fields naming the entity of a storm, tried in order.
pub const STORM_ENTITY_FIELDS: &[&str] =
    &["risk_object", "user", "src_user", "dest", "dest_host", "src", "src_ip", "host"];

/// The storm of a row: `slack:<account>:<rule>:<entity>` hashed into a KV-safe `_key`.
pub fn storm_context(row: &Row, context: &AlertContext, account: &str, window_s: u64) -> Value {
    let rule = row
        .str("rule_name")
        .or_else(|| row.str("search_name"))
        .map(str::trim)
        .filter(|rule| !rule.is_empty())
        .unwrap_or(context.search_name.as_str())
        .to_string();
    let entity = first_present(row, STORM_ENTITY_FIELDS).unwrap_or_default();
    let key = format!(
        "storm:{account}:{}",
        crate::item::item_id(&format!("{account}\n{rule}\n{entity}"))
    );
    json!({"key": key, "rule": rule, "entity": entity, "window_s": window_s})
}

/// "37 more in the last 10 min" (seconds below two minutes, hours from two hours).
pub fn storm_note(more: u64, elapsed_s: u64) -> String {
    let span = if elapsed_s < 120 {
        format!("{} s", elapsed_s.max(1))
    } else if elapsed_s < 7200 {
        format!("{} min", elapsed_s / 60)
    } else {
        format!("{} h", elapsed_s / 3600)
    };
    format!("🔁 {more} more in the last {span} (same rule and entity; the latest is shown)")
}

/// The message with the storm line as a context block after the header (and in the text).
pub fn with_storm_note(body: &Value, note: &str) -> Value {
    let mut body = body.clone();
    if let Some(blocks) = body.get_mut("blocks").and_then(Value::as_array_mut) {
        let at = usize::from(!blocks.is_empty()).min(blocks.len());
        blocks.insert(at, json!({"type": "context", "elements": [mrkdwn(&truncate_escaped(&escape_mrkdwn(note), limits::TEXT_OBJECT))]}));
        if blocks.len() > limits::MAX_BLOCKS {
            blocks.truncate(limits::MAX_BLOCKS);
        }
    }
    if let Some(text) = body.get_mut("text") {
        let joined = format!("{} · {}", text.as_str().unwrap_or(""), escape_mrkdwn(note));
        *text = Value::String(truncate_escaped(&joined, FALLBACK_TEXT_MAX));
    }
    body
}
