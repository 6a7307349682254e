//! The template summary (PRODUCT §13, `summary = template`): a deterministic plain-language
//! paragraph about one row — what fired and how severe, who, what happened, where and when, how
//! risky, the MITRE ATT&CK mapping, and why it is notable — in good English for any subset of
//! the fields present, never "null" or an empty clause. A critical asset or a watch-listed
//! identity (ES asset & identity fields, `assets`) is named first. Used by Slack messages and by StackFlow
//! incident descriptions where the row has no `message`.
//!
//! Pure: no I/O.

use super::AlertContext;
use crate::splunk::results::{FieldValue, Row};

/// One value shown in a summary is cut here (characters).
const VALUE_MAX: usize = 120;
/// A list of values names at most this many, then "and N more".
const LIST_MAX: usize = 3;

/// Row fields tried in order for each part of the summary.
const NAME: &[&str] = &["rule_name", "search_name"];
const SEVERITY: &[&str] = &["severity", "urgency"];
const USER: &[&str] = &["user", "src_user"];
const SRC: &[&str] = &["src", "src_ip"];
const DEST: &[&str] = &["dest", "dest_ip"];
const TACTIC: &[&str] = &["annotations.mitre_attack.mitre_tactic", "mitre_tactic"];
const TECHNIQUE: &[&str] =
    &["annotations.mitre_attack.mitre_technique_id", "annotations.mitre_attack", "mitre_technique"];
const WHY: &[&str] = &["risk_message", "rule_description", "description"];
/// Fields that make a summary worth more than the rule's name alone.
const CONTEXT: &[&[&str]] = &[
    USER,
    SRC,
    DEST,
    &["host"],
    &["risk_object"],
    &["risk_score"],
    TACTIC,
    TECHNIQUE,
    WHY,
    &["count"],
    &["action"],
    &["signature"],
    &["src_city", "src_country"],
    &["dest_city", "dest_country"],
];

/// The values of a field, trimmed, whitespace collapsed, empty and "null"-like values dropped.
fn values(row: &Row, name: &str) -> Vec<String> {
    let Some(value) = row.get(name) else { return Vec::new() };
    let raw: Vec<&str> = match value {
        FieldValue::Single(value) => vec![value.as_str()],
        FieldValue::Multi(values) => values.iter().map(String::as_str).collect(),
    };
    let mut out: Vec<String> = Vec::new();
    for value in raw {
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        let lower = value.to_ascii_lowercase();
        if value.is_empty() || ["null", "none", "n/a", "-", "unknown"].contains(&lower.as_str()) {
            continue;
        }
        let value = cut(&value, VALUE_MAX);
        if !out.contains(&value) {
            out.push(value);
        }
    }
    out
}

/// The first of `names` with at least one value.
fn first(row: &Row, names: &[&str]) -> Vec<String> {
    names.iter().map(|name| values(row, name)).find(|values| !values.is_empty()).unwrap_or_default()
}

fn one(row: &Row, names: &[&str]) -> Option<String> {
    first(row, names).into_iter().next()
}

fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", text[..at].trim_end()),
        None => text.to_string(),
    }
}

/// "a", "a and b", "a, b and c", "a, b, c and 2 more".
fn list(values: &[String]) -> String {
    let shown: Vec<&str> = values.iter().take(LIST_MAX).map(String::as_str).collect();
    let rest = values.len().saturating_sub(LIST_MAX);
    match (shown.as_slice(), rest) {
        ([], _) => String::new(),
        ([only], 0) => (*only).to_string(),
        (_, 0) => {
            let (last, head) = shown.split_last().unwrap_or((&"", &[]));
            format!("{} and {last}", head.join(", "))
        }
        (_, rest) => format!("{} and {rest} more", shown.join(", ")),
    }
}

fn plural(count: &str, one: &str, many: &str) -> String {
    if count == "1" { one.to_string() } else { many.to_string() }
}

/// A sentence: first letter upper-case, ends with one full stop.
fn sentence(text: &str) -> String {
    let text = text.trim().trim_end_matches(['.', ' ']);
    let mut letters = text.chars();
    match letters.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), letters.as_str()),
        None => String::new(),
    }
}

/// "203.0.113.7 (Paris, France)" from an address and the row's city/country fields.
fn place(row: &Row, address: &[&str], city: &str, country: &str) -> Option<String> {
    let address = first(row, address);
    let location: Vec<String> =
        [one(row, &[city]), one(row, &[country])].into_iter().flatten().collect();
    let location = location.join(", ");
    match (address.is_empty(), location.is_empty()) {
        (true, true) => None,
        (true, false) => Some(location),
        (false, true) => Some(list(&address)),
        (false, false) => Some(format!("{} ({location})", list(&address))),
    }
}

/// ES annotations carry tactics as slugs (`credential-access`); shown as ATT&CK names
/// ("Credential Access"). Anything else is shown as it is.
fn tactic_name(tactic: &str) -> String {
    if !tactic.bytes().all(|b| b.is_ascii_lowercase() || b == b'-' || b == b'_') {
        return tactic.to_string();
    }
    tactic
        .split(['-', '_'])
        .filter(|word| !word.is_empty())
        .map(|word| {
            let mut letters = word.chars();
            match letters.next() {
                Some(first) if word != "and" => {
                    format!("{}{}", first.to_ascii_uppercase(), letters.as_str())
                }
                _ => word.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether the row has any field the summary describes beyond the rule's name.
pub fn has_context(row: &Row) -> bool {
    CONTEXT.iter().any(|names| !first(row, names).is_empty()) || super::assets::lead(row).is_some()
}

/// The rule's name: `rule_name`, else the row's `search_name`, else the alert's.
fn rule_name(row: &Row, context: &AlertContext) -> String {
    one(row, NAME)
        .or_else(|| Some(context.search_name.trim().to_string()).filter(|name| !name.is_empty()))
        .unwrap_or_else(|| "Splunk alert".to_string())
}

/// The template summary of a row, or `None` when the row has nothing to say beyond the rule's
/// name (callers then use their own fallback).
pub fn summarize(row: &Row, context: &AlertContext) -> Option<String> {
    if !has_context(row) {
        return None;
    }
    let mut sentences: Vec<String> = Vec::new();
    // A critical asset or a watch-listed identity first (PRODUCT §17).
    if let Some(lead) = super::assets::lead(row) {
        sentences.push(lead);
    }
    // What fired, and how severe.
    let name = rule_name(row, context);
    let severity = one(row, SEVERITY).map(|severity| severity.to_ascii_lowercase());
    sentences.push(match severity {
        Some(severity) => sentence(&format!("{name} ({severity} severity)")),
        None => sentence(&name),
    });
    // Who did what, where and when.
    let users = first(row, USER);
    let risk_object = one(row, &["risk_object"]);
    let risk_type = one(row, &["risk_object_type"]).map(|kind| kind.to_ascii_lowercase());
    let who = if !users.is_empty() {
        Some(format!("{} {}", plural(&users.len().to_string(), "user", "users"), list(&users)))
    } else {
        risk_object.as_ref().map(|object| match risk_type.as_deref() {
            Some("user") => format!("user {object}"),
            Some("system") => format!("system {object}"),
            Some(kind) => format!("{kind} {object}"),
            None => object.clone(),
        })
    };
    let count = one(row, &["count"]);
    let action = one(row, &["action"]).map(|action| action.to_ascii_lowercase());
    let signature = one(row, &["signature"]);
    let what = match (&count, &action) {
        (Some(count), Some(action)) => {
            Some(format!("{count} {action} {}", plural(count, "event", "events")))
        }
        (Some(count), None) => Some(format!("{count} {}", plural(count, "event", "events"))),
        (None, Some(action)) => Some(format!("{action} events")),
        (None, None) => None,
    };
    let mut clause = match (&who, &what, &signature) {
        (Some(who), Some(what), _) => format!("{who} had {what}"),
        (Some(who), None, Some(signature)) => format!("{who} triggered \"{signature}\""),
        (Some(who), None, None) => format!("activity involving {who}"),
        (None, Some(what), _) => what.clone(),
        (None, None, Some(signature)) => format!("signature \"{signature}\" was seen"),
        (None, None, None) => String::new(),
    };
    let dest_values = first(row, DEST);
    let mut wheres: Vec<String> = Vec::new();
    if let Some(src) = place(row, SRC, "src_city", "src_country") {
        wheres.push(format!("from {src}"));
    }
    if let Some(dest) = place(row, DEST, "dest_city", "dest_country") {
        wheres.push(format!("to {dest}"));
    }
    if let Some(host) = one(row, &["host"]).filter(|host| !dest_values.contains(host)) {
        wheres.push(format!("on {host}"));
    }
    if let Some(time) = one(row, &["_time"]) {
        wheres.push(format!("at {}", crate::mapping::slack::format_time(&time)));
    }
    if !wheres.is_empty() {
        if clause.is_empty() {
            clause = "activity".to_string();
        }
        clause = format!("{clause} {}", wheres.join(" "));
    }
    if !clause.is_empty() {
        sentences.push(sentence(&clause));
    }
    // Travel (impossible-travel detections).
    let distance = one(row, &["distance"]);
    let speed = one(row, &["speed"]);
    match (distance, speed) {
        (Some(distance), Some(speed)) => {
            sentences.push(sentence(&format!("travel distance {distance} at speed {speed}")))
        }
        (Some(distance), None) => sentences.push(sentence(&format!("travel distance {distance}"))),
        (None, Some(speed)) => sentences.push(sentence(&format!("travel speed {speed}"))),
        (None, None) => {}
    }
    // How risky.
    if let Some(score) = one(row, &["risk_score"]) {
        let mut text = format!("risk score {score}");
        if let Some(object) = &risk_object {
            match risk_type.as_deref() {
                Some(kind) => text.push_str(&format!(" on {kind} {object}")),
                None => text.push_str(&format!(" on {object}")),
            }
        }
        let events = one(row, &["risk_event_count"]);
        let sources = one(row, &["source_count"]);
        match (events, sources) {
            (Some(events), Some(sources)) => text.push_str(&format!(
                " from {events} risk {} across {sources} {}",
                plural(&events, "event", "events"),
                plural(&sources, "detection", "detections")
            )),
            (Some(events), None) => text
                .push_str(&format!(" from {events} risk {}", plural(&events, "event", "events"))),
            (None, Some(sources)) => text.push_str(&format!(
                " across {sources} {}",
                plural(&sources, "detection", "detections")
            )),
            (None, None) => {}
        }
        sentences.push(sentence(&text));
    }
    // MITRE ATT&CK.
    let tactics: Vec<String> =
        first(row, TACTIC).iter().map(|tactic| tactic_name(tactic)).collect();
    let techniques = first(row, TECHNIQUE);
    match (tactics.is_empty(), techniques.is_empty()) {
        (false, false) => {
            sentences.push(format!("MITRE ATT&CK: {} ({}).", list(&tactics), list(&techniques)))
        }
        (false, true) => sentences.push(format!("MITRE ATT&CK tactic: {}.", list(&tactics))),
        (true, false) => sentences.push(format!("MITRE ATT&CK technique: {}.", list(&techniques))),
        (true, true) => {}
    }
    // Why notable.
    let why = one(row, WHY).or_else(|| one(row, &["rule_title"]).filter(|title| *title != name));
    if let Some(why) = why {
        sentences.push(format!("Why notable: {}", sentence(&why)));
    }
    Some(sentences.join(" "))
}

#[cfg(test)]
mod tests;
