//! The war room's pure parts (PRODUCT §17): its channel name, `<prefix>-<yyyymmdd>-<rule
//! slug>-<4 hex>`, kept to Slack's naming rules ("may only contain lowercase letters, numbers,
//! hyphens, and underscores, and must be 80 characters or less": docs.slack.dev
//! `conversations.create`, "Naming"); its claim key; and the message it pins, built from the
//! alert's own message (summary, key fields, link buttons; response buttons dropped).

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Slack's limit on a channel name (characters).
pub const MAX_NAME: usize = 80;
/// A prefix is cut to this many characters.
const MAX_PREFIX: usize = 20;
/// An event id longer than this is hashed in the claim key.
const MAX_KEY_PART: usize = 200;

/// Lowercase ASCII letters, digits, `-` and `_`; anything else becomes `-`, runs collapsed,
/// `-` trimmed at both ends.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' { c } else { '-' };
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
    }
    out.trim_end_matches('-').to_string()
}

/// `<prefix>-<yyyymmdd>-<rule slug>-<hex4>`, at most [`MAX_NAME`] characters (the slug is
/// cut; an empty slug reads `alert`).
pub fn room_name(prefix: &str, unix_secs: i64, rule: &str, hex4: &str) -> String {
    let mut prefix = slug(prefix);
    prefix.truncate(MAX_PREFIX);
    let prefix = if prefix.trim_matches('-').is_empty() { "inc".to_string() } else { prefix };
    let (year, month, day, ..) = crate::civil_time::civil_from_unix(unix_secs);
    let date = format!("{year:04}{month:02}{day:02}");
    let fixed = prefix.len() + 1 + date.len() + 1 + 1 + hex4.len();
    let mut rule = slug(rule);
    if rule.is_empty() {
        rule = "alert".into();
    }
    rule.truncate(MAX_NAME.saturating_sub(fixed));
    let rule = rule.trim_end_matches('-');
    format!("{prefix}-{date}-{rule}-{hex4}")
}

/// Four hex digits, different for each `attempt` (a `name_taken` asks for another).
pub fn hex4(event_id: &str, attempt: u32) -> String {
    let now = crate::civil_time::now().as_nanos();
    let seed = format!("{event_id}\n{attempt}\n{now}\n{}", std::process::id());
    let digest = Sha256::digest(seed.as_bytes());
    format!("{:02x}{:02x}", digest[0], digest[1])
}

/// `war_room:<event id>` (hashed when long), the claim's `_key` in `stackflow_interactions`.
pub fn claim_key(event_id: &str) -> String {
    if event_id.len() <= MAX_KEY_PART {
        return format!("war_room:{event_id}");
    }
    let digest = Sha256::digest(event_id.as_bytes());
    let hex: String = digest.iter().take(16).map(|byte| format!("{byte:02x}")).collect();
    format!("war_room:{hex}")
}

/// The message the room opens with: a heading, then the alert message's blocks (summary,
/// key fields, context) with only its link buttons (Splunk, SOAR, StackFlow).
pub fn room_message(channel_id: &str, rule: &str, alert: &Value) -> Value {
    let heading = format!(
        "War room for *{}*: summary, key fields and links below (pinned).",
        crate::mapping::slack::escape_mrkdwn(rule)
    );
    let mut blocks = vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": heading}})];
    for block in alert.get("blocks").and_then(Value::as_array).into_iter().flatten() {
        if block.get("type").and_then(Value::as_str) == Some("actions") {
            let links: Vec<Value> = block
                .get("elements")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|element| element.get("url").is_some())
                .map(|element| {
                    let mut element = element.clone();
                    if let Some(map) = element.as_object_mut() {
                        map.remove("action_id");
                        map.remove("value");
                    }
                    element
                })
                .collect();
            if !links.is_empty() {
                blocks.push(json!({"type": "actions", "elements": links}));
            }
        } else {
            let mut block = block.clone();
            if let Some(map) = block.as_object_mut() {
                map.remove("block_id");
            }
            blocks.push(block);
        }
    }
    blocks.truncate(50);
    let text = alert.get("text").and_then(Value::as_str).unwrap_or(rule);
    json!({"channel": channel_id, "text": format!("War room: {text}"), "blocks": blocks})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_slacks_rules() {
        let at = 1_765_152_000; // 2025-12-08 00:00:00 UTC
        assert_eq!(
            room_name("inc", at, "Brute Force Access Behavior Detected", "a1b2"),
            "inc-20251208-brute-force-access-behavior-detected-a1b2"
        );
        let long =
            "Risk Threshold Exceeded For Object Over 24 Hour Period — ÉCOLE <script> x".repeat(3);
        let name = room_name("IR War", at, &long, "ffff");
        assert!(name.chars().count() <= MAX_NAME, "{name}");
        assert!(name.starts_with("ir-war-20251208-risk-threshold"), "{name}");
        assert!(name.ends_with("-ffff") && !name.contains("--"), "{name}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        );
        assert_eq!(room_name("", at, "???", "0000"), "inc-20251208-alert-0000");
        assert_ne!(hex4("e", 0), hex4("e", 1));
        assert_eq!(hex4("e", 0).len(), 4);
        assert!(claim_key(&"x".repeat(500)).len() < 50);
    }

    #[test]
    fn the_room_message_keeps_links_and_drops_response_buttons() {
        let alert = json!({"text": "High: rule", "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "rule"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "summary"}},
            {"type": "actions", "block_id": "stackflow_actions", "elements": [
                {"type": "button", "action_id": "stackflow_ack", "value": "k", "text": {"type": "plain_text", "text": "Ack"}},
                {"type": "button", "action_id": "open_splunk", "url": "https://splunk/x", "text": {"type": "plain_text", "text": "Open in Splunk"}}]}]});
        let message = room_message("C1", "rule", &alert);
        let flat = message.to_string();
        assert!(flat.contains("https://splunk/x") && flat.contains("summary"), "{flat}");
        assert!(!flat.contains("stackflow_ack"), "{flat}");
        assert_eq!(message["channel"], "C1");
    }
}
