//! Finding a message this app posted, for "did an earlier attempt post it?" after an attempt
//! whose outcome is unknown (a reset or timeout after the request left; Slack has no
//! idempotency key). Every message carries Slack message metadata
//! (`event_type = stackflow_alert`, `event_payload.dedupe_key`); `conversations.history` with
//! `include_all_metadata=true` and `oldest` returns it. A channel given by name is resolved to
//! its id with `conversations.list` (history takes ids only), once per run.
//!
//! Scopes: `channels:history` / `groups:history` and `channels:read` / `groups:read` besides
//! `chat:write` (docs/slack.md). Without them the lookup fails and the item is retried later
//! rather than risk a second message.

use super::SlackApi;
use crate::remotes::response::json_answer;
use crate::splunk::rest::form_encode;
use serde_json::Value;
use std::collections::HashMap;

/// The metadata `event_type` of our messages.
pub const EVENT_TYPE: &str = "stackflow_alert";
/// Messages read back per lookup (one page; the window is minutes, not days).
const HISTORY_LIMIT: &str = "200";
/// Channels listed per page, and pages at most.
const LIST_LIMIT: &str = "1000";
const MAX_LIST_PAGES: usize = 20;

/// The metadata block to post with a message.
pub fn message_metadata(dedupe_key: &str) -> Value {
    serde_json::json!({"event_type": EVENT_TYPE, "event_payload": {"dedupe_key": dedupe_key}})
}

/// Whether `channel` is already a conversation id (`C…`, `G…`, `D…`).
fn is_channel_id(channel: &str) -> bool {
    channel.len() >= 9
        && channel.starts_with(['C', 'D', 'G'])
        && channel.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// Channel ids by name, filled on first need.
#[derive(Default)]
pub struct ChannelIds {
    by_name: Option<HashMap<String, String>>,
}

impl SlackApi {
    fn read(&self, method: &str, pairs: &[(&str, &str)]) -> Result<Value, String> {
        let what = format!("Slack {method}");
        let json = json_answer(self.call_form(method, &form_encode(pairs)), &what)?;
        if json.get("ok").and_then(Value::as_bool) == Some(true) {
            Ok(json)
        } else {
            let code = json.get("error").and_then(Value::as_str).unwrap_or("unknown_error");
            Err(format!("{what}: {code}"))
        }
    }

    /// The id of `channel` (a name, with or without `#`, or an id); `None` when no channel of
    /// that name exists (so nothing can have been posted there).
    pub fn channel_id(
        &self,
        channel: &str,
        cache: &mut ChannelIds,
    ) -> Result<Option<String>, String> {
        if is_channel_id(channel) {
            return Ok(Some(channel.to_string()));
        }
        if cache.by_name.is_none() {
            let mut by_name = HashMap::new();
            let mut cursor = String::new();
            for _ in 0..MAX_LIST_PAGES {
                let json = self.read(
                    "conversations.list",
                    &[
                        ("types", "public_channel,private_channel"),
                        ("exclude_archived", "true"),
                        ("limit", LIST_LIMIT),
                        ("cursor", &cursor),
                    ],
                )?;
                for entry in json.get("channels").and_then(Value::as_array).into_iter().flatten() {
                    if let (Some(name), Some(id)) = (
                        entry.get("name").and_then(Value::as_str),
                        entry.get("id").and_then(Value::as_str),
                    ) {
                        by_name.insert(name.to_string(), id.to_string());
                    }
                }
                cursor = json
                    .pointer("/response_metadata/next_cursor")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if cursor.is_empty() {
                    break;
                }
            }
            cache.by_name = Some(by_name);
        }
        let name = channel.trim_start_matches('#');
        Ok(cache.by_name.as_ref().and_then(|by_name| by_name.get(name).cloned()))
    }

    /// The `(channel id, ts)` of a message with this dedupe key posted to `channel` since
    /// `since_unix`.
    pub fn find_message(
        &self,
        channel: &str,
        dedupe_key: &str,
        since_unix: i64,
        cache: &mut ChannelIds,
    ) -> Result<Option<(String, String)>, String> {
        let Some(channel_id) = self.channel_id(channel, cache)? else {
            return Ok(None);
        };
        let oldest = since_unix.to_string();
        let json = self.read(
            "conversations.history",
            &[
                ("channel", &channel_id),
                ("oldest", &oldest),
                ("include_all_metadata", "true"),
                ("limit", HISTORY_LIMIT),
            ],
        )?;
        let found =
            json.get("messages").and_then(Value::as_array).into_iter().flatten().find(|message| {
                message.pointer("/metadata/event_type").and_then(Value::as_str) == Some(EVENT_TYPE)
                    && message.pointer("/metadata/event_payload/dedupe_key").and_then(Value::as_str)
                        == Some(dedupe_key)
            });
        Ok(found.and_then(|message| {
            message.get("ts").and_then(Value::as_str).map(|ts| (channel_id.clone(), ts.to_string()))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names() {
        assert!(is_channel_id("C0123456789"));
        assert!(is_channel_id("G01234567"));
        assert!(!is_channel_id("#soc-alerts"));
        assert!(!is_channel_id("general"));
        assert_eq!(message_metadata("k")["event_payload"]["dedupe_key"], "k");
    }
}
