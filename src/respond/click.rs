//! A button click read out of an untrusted `block_actions` payload (Slack "block_actions
//! payload": `user`, `actions[]`, `container`, `channel`, `message`): who clicked which of our
//! buttons on which message. Pure; everything is bounded and optional fields stay optional.

pub use crate::mapping::slack::Action;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Longer strings than this are not ours (button values are at most 2000 characters).
const MAX_FIELD: usize = 2000;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Click {
    pub user_id: String,
    pub user_name: String,
    /// Which of our buttons (its `action_id`, and a playbook's name).
    pub action: Action,
    /// The reference the button carries (dedupe key / notable event_id; for playbook buttons
    /// `<reference>|<playbook>`, for approvals the request's interaction key).
    pub value: String,
    pub action_ts: String,
    pub channel_id: String,
    pub message_ts: String,
    /// The thread the message is in (its own ts when it is not a reply).
    pub thread_ts: String,
    /// The clicked message's blocks, for `chat.update`.
    pub message_blocks: Option<Value>,
    pub message_text: String,
    /// Where a reply may be posted when `chat.postEphemeral` is refused (Slack "Handling user
    /// interaction": every `block_actions` payload carries a `response_url`).
    pub response_url: String,
}

fn text(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|text| !text.is_empty() && text.len() <= MAX_FIELD)
        .map(str::to_string)
}

impl Click {
    /// The click of a `block_actions` payload on one of our buttons; `Err` says why not (for
    /// the log: not a block action, a link button, a field missing).
    pub fn parse(payload: &Value) -> Result<Click, String> {
        let kind = payload.get("type").and_then(Value::as_str).unwrap_or_default();
        if kind != "block_actions" {
            return Err(format!("payload type {kind:?} is not block_actions"));
        }
        let action = payload
            .get("actions")
            .and_then(Value::as_array)
            .and_then(|actions| actions.first())
            .ok_or("no actions")?;
        let action_id = text(action.get("action_id")).ok_or("an action without action_id")?;
        let value = text(action.get("value"));
        let Some(kind) = Action::parse(&action_id, value.as_deref().unwrap_or("")) else {
            return Err(format!("action {action_id:?} is not one of StackFlow's buttons"));
        };
        let user = payload.get("user").ok_or("no user")?;
        let user_id = text(user.get("id")).ok_or("no user id")?;
        let user_name = text(user.get("username"))
            .or_else(|| text(user.get("name")))
            .unwrap_or_else(|| user_id.clone());
        let container = payload.get("container");
        let message = payload.get("message");
        let channel_id = text(container.and_then(|c| c.get("channel_id")))
            .or_else(|| text(payload.pointer("/channel/id")))
            .ok_or("no channel")?;
        let message_ts = text(container.and_then(|c| c.get("message_ts")))
            .or_else(|| text(message.and_then(|m| m.get("ts"))))
            .ok_or("no message ts")?;
        let thread_ts = text(container.and_then(|c| c.get("thread_ts")))
            .or_else(|| text(message.and_then(|m| m.get("thread_ts"))))
            .unwrap_or_else(|| message_ts.clone());
        Ok(Click {
            user_id,
            user_name,
            value: value.ok_or("a button without value")?,
            action_ts: text(action.get("action_ts")).unwrap_or_default(),
            action: kind,
            channel_id,
            message_ts,
            thread_ts,
            message_blocks: message.and_then(|m| m.get("blocks")).filter(|b| b.is_array()).cloned(),
            message_text: text(message.and_then(|m| m.get("text"))).unwrap_or_default(),
            response_url: text(payload.get("response_url")).unwrap_or_default(),
        })
    }

    /// The click's identity across re-deliveries (PRODUCT §9: message ts + action_id + user +
    /// action_ts), as a KV store `_key`.
    pub fn key(&self) -> String {
        let mut hash = Sha256::new();
        let action_id = self.action.id();
        for part in [
            self.channel_id.as_str(),
            self.message_ts.as_str(),
            action_id,
            self.user_id.as_str(),
            self.action_ts.as_str(),
        ] {
            hash.update(part.as_bytes());
            hash.update([0u8]);
        }
        hash.finalize().iter().take(16).map(|byte| format!("{byte:02x}")).collect()
    }

    /// The reference part of the value, and the playbook (`<reference>|<playbook>`), if any.
    pub fn reference_and_playbook(&self) -> (&str, Option<&str>) {
        match self.value.split_once('|') {
            Some((reference, playbook)) if !playbook.is_empty() => (reference, Some(playbook)),
            _ => (self.value.as_str(), None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ACK: &str = "stackflow_ack";
    const FALSE_POSITIVE: &str = "stackflow_false_positive";
    const PLAYBOOK: &str = "stackflow_playbook";

    fn payload(action_id: &str) -> Value {
        json!({"type": "block_actions", "user": {"id": "U1", "username": "alice"},
               "container": {"type": "message", "channel_id": "C1", "message_ts": "1.000100"},
               "message": {"ts": "1.000100", "text": "x", "blocks": []},
               "actions": [{"action_id": action_id, "value": "k1", "action_ts": "2.5"}]})
    }

    #[test]
    fn our_clicks_are_read_and_others_refused() {
        let click = Click::parse(&payload(ACK)).unwrap();
        assert_eq!((click.user_id.as_str(), click.user_name.as_str()), ("U1", "alice"));
        assert_eq!((click.channel_id.as_str(), click.message_ts.as_str()), ("C1", "1.000100"));
        assert_eq!(click.thread_ts, "1.000100");
        assert_eq!(click.key(), Click::parse(&payload(ACK)).unwrap().key());
        assert_ne!(click.key(), Click::parse(&payload(FALSE_POSITIVE)).unwrap().key());
        for bad in [
            payload("open_in_splunk"),
            json!({"type": "view_submission"}),
            json!({"type": "block_actions", "actions": []}),
            json!({"type": "block_actions", "actions": [{"action_id": ACK}], "user": {"id": "U"}}),
            json!("text"),
            json!(null),
        ] {
            assert!(Click::parse(&bad).is_err(), "{bad}");
        }
        let mut long = payload(ACK);
        long["actions"][0]["value"] = json!("v".repeat(5000));
        assert!(Click::parse(&long).is_err());
    }

    #[test]
    fn playbook_values() {
        let mut p = payload(PLAYBOOK);
        p["actions"][0]["value"] = json!("k1|block_ip");
        let click = Click::parse(&p).unwrap();
        assert_eq!(click.reference_and_playbook(), ("k1", Some("block_ip")));
        assert_eq!(Click::parse(&payload(ACK)).unwrap().reference_and_playbook(), ("k1", None));
    }
}
