//! The Slack emulator's knobs: `/_emulator/config` keys for the binary's users and the same
//! settings as `Emulator` methods for tests — granted scopes per token, channel membership,
//! archived channels, `ratelimited` answers per method, a fixed error per method, and messages
//! seeded into a channel's history.

use super::{Slack, channel_id};
use crate::{Emulator, lock};
use serde_json::{Map, Value, json};
use std::collections::HashSet;

fn strings(value: &Value) -> Option<Vec<String>> {
    serde_json::from_value::<Vec<String>>(value.clone()).ok()
}

fn names(list: &[String]) -> HashSet<String> {
    list.iter().map(|c| c.trim_start_matches('#').to_string()).collect()
}

/// `/_emulator/config` keys: `slack_scopes` (the bot token's scopes, a list), `slack_tokens`
/// (`{"<token>": [scopes]}`), `slack_member_channels` (list; `null`: member everywhere),
/// `slack_archived_channels` (list), `slack_ratelimited` (`{"<method>": times}`, Retry-After
/// 1 s) and `slack_method_errors` (`{"<method>": "<code>"}`; `""` clears).
pub(crate) fn apply_config(s: &mut Slack, c: &Value) {
    super::rooms::apply_config(s, c);
    if let Some(scopes) = c.get("slack_scopes").and_then(strings) {
        s.scopes = scopes;
    }
    if let Some(tokens) = c.get("slack_tokens").and_then(Value::as_object) {
        for (token, scopes) in tokens {
            s.tokens.insert(token.clone(), strings(scopes).unwrap_or_default());
        }
    }
    match c.get("slack_member_channels") {
        Some(Value::Null) => s.members = None,
        Some(list) => s.members = strings(list).map(|list| names(&list)).or(s.members.take()),
        None => {}
    }
    if let Some(list) = c.get("slack_archived_channels").and_then(strings) {
        s.archived = names(&list);
    }
    if let Some(methods) = c.get("slack_ratelimited").and_then(Value::as_object) {
        for (method, times) in methods {
            s.ratelimited.insert(method.clone(), (times.as_u64().unwrap_or(1) as usize, 1));
        }
    }
    if let Some(methods) = c.get("slack_method_errors").and_then(Value::as_object) {
        for (method, code) in methods {
            match code.as_str().filter(|code| !code.is_empty()) {
                Some(code) => s.errors.insert(method.clone(), code.to_string()),
                None => s.errors.remove(method),
            };
        }
    }
}

impl Emulator {
    /// The bot token's granted scopes (default: every scope the product uses).
    pub fn set_slack_scopes(&self, scopes: &[&str]) {
        lock(&self.shared.slack).scopes = scopes.iter().map(|s| s.to_string()).collect();
    }
    /// Another token this workspace knows, with its scopes.
    pub fn add_slack_token(&self, token: &str, scopes: &[&str]) {
        let scopes = scopes.iter().map(|s| s.to_string()).collect();
        lock(&self.shared.slack).tokens.insert(token.into(), scopes);
    }
    /// The channels the bot is a member of (`None`: every channel, the default).
    pub fn set_slack_member_channels(&self, channels: Option<&[&str]>) {
        let list = channels.map(|c| c.iter().map(|c| c.to_string()).collect::<Vec<_>>());
        lock(&self.shared.slack).members = list.map(|list| names(&list));
    }
    pub fn set_slack_archived_channels(&self, channels: &[&str]) {
        let list: Vec<String> = channels.iter().map(|c| c.to_string()).collect();
        lock(&self.shared.slack).archived = names(&list);
    }
    /// The next `times` calls of `method` (e.g. `chat.postMessage`) answer HTTP 429
    /// `ratelimited` with `Retry-After: seconds`.
    pub fn slack_ratelimit(&self, method: &str, times: usize, seconds: u64) {
        lock(&self.shared.slack).ratelimited.insert(method.into(), (times, seconds));
    }
    /// `method` answers `{"ok": false, "error": code}` until cleared (`None`).
    pub fn set_slack_method_error(&self, method: &str, code: Option<&str>) {
        let mut slack = lock(&self.shared.slack);
        match code {
            Some(code) => slack.errors.insert(method.into(), code.into()),
            None => slack.errors.remove(method),
        };
    }
    /// Seeds a message into `channel`'s history, as posted now by the bot (`metadata` as
    /// `chat.postMessage` takes it); returns its `ts`.
    pub fn add_slack_message(&self, channel: &str, text: &str, metadata: Option<Value>) -> String {
        let mut msg = Map::new();
        msg.insert("text".into(), json!(text));
        if let Some(metadata) = metadata {
            msg.insert("metadata".into(), metadata);
        }
        lock(&self.shared.slack).store(channel, msg).1
    }
    /// The id this emulator gives a channel name.
    pub fn slack_channel_id(&self, channel: &str) -> String {
        channel_id(channel)
    }
}
