//! Finding a message this app posted, for "did an earlier attempt post it?" after an attempt
//! whose outcome is unknown (a reset or timeout after the request left; Slack has no
//! idempotency key). Every message carries Slack message metadata
//! (`event_type = stackflow_alert`, `event_payload.dedupe_key`); `conversations.history` with
//! `include_all_metadata=true` and `oldest` returns it, page after page (`cursor`,
//! `response_metadata.next_cursor`) to the end of the window. A channel given by name is
//! resolved to its id with `conversations.list` (history takes ids only, paged the same way),
//! once per run.
//!
//! Scopes: `channels:history` / `groups:history` and `channels:read` / `groups:read` besides
//! `chat:write` (the app manifest, docs/slack.md), and the bot must be a member of the channel.
//! A look-up refused for a lasting reason (`missing_scope`, `not_in_channel`,
//! `channel_not_found`, a refused token) is `LookupError::Lasting`: the item is sent again with
//! a WARN rather than held forever; a rate limit or an outage is `Transient`: it waits.

use super::SlackApi;
use super::errors::{self, ErrorClass};
use crate::net::Outcome;
use crate::net::classify::{StatusClass, classify_status};
use crate::net::form_encode;
use serde_json::Value;
use std::collections::HashMap;

/// The metadata `event_type` of our messages.
pub const EVENT_TYPE: &str = "stackflow_alert";
/// Messages read back per page, and pages at most (the window is minutes, not days: 10,000
/// messages in a channel within it is far beyond any alert channel).
const HISTORY_LIMIT: &str = "200";
const MAX_HISTORY_PAGES: usize = 50;
/// Channels listed per page, and pages at most.
const LIST_LIMIT: &str = "1000";
const MAX_LIST_PAGES: usize = 20;

/// Why a look-up found no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LookupError {
    /// Worth asking again later (rate limited, Slack or the network down).
    Transient(String),
    /// Cannot work until someone changes the app or the channel.
    Lasting(String),
}

impl LookupError {
    fn of(outcome: &Outcome, what: &str) -> LookupError {
        match outcome {
            Outcome::Retry(retry) => LookupError::Transient(retry.reason.clone()),
            Outcome::Rejected(rejection) => LookupError::Lasting(rejection.reason.clone()),
            Outcome::Delivered(_) => LookupError::Transient(format!("{what}: unexpected answer")),
        }
    }
}

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
    /// One read call: its JSON when Slack said `ok: true`, else why not, by Slack's table.
    fn read(&self, method: &str, pairs: &[(&str, &str)]) -> Result<Value, LookupError> {
        let what = format!("Slack {method}");
        let response =
            self.call_form(method, &form_encode(pairs)).map_err(|o| LookupError::of(&o, &what))?;
        if let StatusClass::Failed(outcome) = classify_status(&response, &what) {
            return Err(LookupError::of(&outcome, &what));
        }
        let Some(json) = response.json() else {
            return Err(LookupError::Transient(format!("{what}: the answer is not JSON")));
        };
        if json.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(json);
        }
        let code = json.get("error").and_then(Value::as_str).unwrap_or("unknown_error");
        let reason = format!("{what}: {code}{}", errors::needed_note(&json));
        Err(match errors::class_of(code) {
            ErrorClass::Retry { .. } => LookupError::Transient(reason),
            _ => LookupError::Lasting(reason),
        })
    }

    /// The id of `channel` (a name, with or without `#`, or an id); `None` when no channel of
    /// that name exists (so nothing can have been posted there).
    pub fn channel_id(
        &self,
        channel: &str,
        cache: &mut ChannelIds,
    ) -> Result<Option<String>, LookupError> {
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
                cursor = next_cursor(&json);
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
    ) -> Result<Option<(String, String)>, LookupError> {
        let Some(channel_id) = self.channel_id(channel, cache)? else {
            return Ok(None);
        };
        let oldest = since_unix.to_string();
        let mut cursor = String::new();
        for _ in 0..MAX_HISTORY_PAGES {
            let json = self.read(
                "conversations.history",
                &[
                    ("channel", &channel_id),
                    ("oldest", &oldest),
                    ("include_all_metadata", "true"),
                    ("limit", HISTORY_LIMIT),
                    ("cursor", &cursor),
                ],
            )?;
            let messages = json.get("messages").and_then(Value::as_array).into_iter().flatten();
            if let Some(ts) = messages
                .filter(|message| ours(message, dedupe_key))
                .find_map(|m| m.get("ts").and_then(Value::as_str))
            {
                return Ok(Some((channel_id.clone(), ts.to_string())));
            }
            cursor = next_cursor(&json);
            if cursor.is_empty() {
                return Ok(None);
            }
        }
        Err(LookupError::Transient(format!(
            "Slack conversations.history: more than {MAX_HISTORY_PAGES} pages since the attempt"
        )))
    }
}

/// Whether a history message is ours, for this dedupe key.
fn ours(message: &Value, dedupe_key: &str) -> bool {
    message.pointer("/metadata/event_type").and_then(Value::as_str) == Some(EVENT_TYPE)
        && message.pointer("/metadata/event_payload/dedupe_key").and_then(Value::as_str)
            == Some(dedupe_key)
}

/// `response_metadata.next_cursor`, empty at the end.
fn next_cursor(json: &Value) -> String {
    json.pointer("/response_metadata/next_cursor").and_then(Value::as_str).unwrap_or("").to_string()
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
