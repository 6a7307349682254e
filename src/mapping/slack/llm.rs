//! `summary = llm` on the mapping side (pure): the context a model may summarise, carried in
//! the item as `"llm": {"account", "summary", "fields", "users"}`, and the swap of the template
//! summary for the model's (restored) answer in a built message. The call itself happens at
//! send time (`remotes::llm`, from the Slack target), after redaction (`mapping::redact`).

use super::*;
use crate::mapping::redact::USER_FIELDS;

/// Fields given to the model at most, and the longest value (characters).
pub const LLM_MAX_FIELDS: usize = 40;
pub const LLM_VALUE_MAX: usize = 300;

/// The `llm` object of an item for one row: the account, the template summary (the fallback),
/// the row's visible fields (bounded), and the values of user-type fields (to redact).
pub fn llm_context(row: &Row, account: &str, summary: &str) -> Value {
    let mut fields = serde_json::Map::new();
    for (name, value) in row.fields() {
        if fields.len() >= LLM_MAX_FIELDS {
            break;
        }
        // Splunk-internal fields (`punct`, `date_*`, `splunk_server`, …) say nothing to a model.
        if (name.starts_with('_') && name != "_time")
            || name.starts_with("__mv_")
            || crate::mapping::cef::is_internal(name)
        {
            continue;
        }
        let value = display_value(value);
        if value.is_empty() {
            continue;
        }
        let value =
            if name == "_time" { format_time(&value) } else { truncate(&value, LLM_VALUE_MAX) };
        fields.insert(name.to_string(), Value::String(value));
    }
    let mut users: Vec<String> = Vec::new();
    for name in USER_FIELDS {
        if let Some(value) = row.get(name) {
            users.extend(
                value.values().iter().map(|v| v.trim().to_string()).filter(|v| !v.is_empty()),
            );
        }
    }
    if row.str("risk_object_type").is_some_and(|kind| kind.eq_ignore_ascii_case("user"))
        && let Some(object) = row.str("risk_object")
    {
        users.push(object.trim().to_string());
    }
    json!({"account": account, "summary": summary, "fields": fields, "users": users})
}

/// Replaces the template summary `old` by `new` in a message's section texts and its `text`
/// fallback (both escaped and cut as the mapper built them). True when something changed.
pub fn replace_summary(request: &mut Value, old: &str, new: &str) -> bool {
    let old_section = truncate_escaped(&escape_mrkdwn(old), SUMMARY_MAX);
    let new_section = truncate_escaped(&escape_mrkdwn(new), SUMMARY_MAX);
    let mut changed = false;
    if let Some(blocks) = request.get_mut("blocks").and_then(Value::as_array_mut) {
        for block in blocks {
            if block.get("type").and_then(Value::as_str) != Some("section") {
                continue;
            }
            if let Some(text) = block.pointer_mut("/text/text")
                && let Some(current) = text.as_str()
                && current.contains(&old_section)
            {
                let replaced = current.replacen(&old_section, &new_section, 1);
                *text = Value::String(truncate_escaped(&replaced, limits::SECTION_TEXT));
                changed = true;
                break;
            }
        }
    }
    if let Some(text) = request.get_mut("text")
        && let Some(current) = text.as_str()
    {
        let old_fallback = escape_mrkdwn(old);
        if current.contains(&old_fallback) {
            let replaced = current.replacen(&old_fallback, &escape_mrkdwn(new), 1);
            *text = Value::String(truncate_escaped(&replaced, FALLBACK_TEXT_MAX));
            changed = true;
        }
    }
    changed
}
