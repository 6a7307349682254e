//! Clicks are effects on a notable, not button presses (PRODUCT §15): a click is claimed once
//! (`_key` = the click's identity) and its effect once (`_key` = the effect's key, e.g.
//! `ack:<event_id>`), each by a conditional insert into `stackflow_interactions` — the KV store
//! answers an insert of an existing `_key` with a conflict (`[delivery]
//! kvstore_conflict_status`, 409) — never by read-then-upsert, so that two listeners of a
//! cluster never both act. How a splunkd failure is judged (expired session, outage, other)
//! lives here too.

use super::click::{Action, Click};
use super::{INTERACTIONS_COLLECTION, Responder};
use crate::civil_time::now;
use crate::error::{Error, Result};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// An effect key longer than this is hashed (KV store keys are index entries).
const MAX_KEY_PART: usize = 200;

/// What a splunkd failure means for the click in hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trouble {
    /// splunkd refused the input's session key (HTTP 401): only a restart brings a fresh one.
    Expired,
    /// splunkd or the KV store busy or unreachable: worth retrying.
    Outage,
    /// Anything else: the click fails.
    Other,
}

pub fn trouble_of(error: &Error) -> Trouble {
    match error {
        Error::Credentials(message) if message.contains("HTTP 401") => Trouble::Expired,
        Error::Unavailable(_) => Trouble::Outage,
        _ => Trouble::Other,
    }
}

/// The same judgement of an error already turned into text (the notable-update interface
/// reports `Error`'s display).
pub fn trouble_of_text(problem: &str) -> Trouble {
    if problem.starts_with("credentials: ") && problem.contains("HTTP 401") {
        Trouble::Expired
    } else if problem.starts_with("unavailable: ") {
        Trouble::Outage
    } else {
        Trouble::Other
    }
}

/// The error a failed effect stands for, when it is a splunkd outage or an expired session
/// (the click is then kept for later); `None` when the click simply failed.
pub fn kept_error(problem: &str) -> Option<Error> {
    match trouble_of_text(problem) {
        Trouble::Expired => Some(Error::Credentials(problem.to_string())),
        Trouble::Outage => Some(Error::Unavailable(problem.to_string())),
        Trouble::Other => None,
    }
}

fn part(text: &str) -> String {
    if text.len() <= MAX_KEY_PART && !text.is_empty() {
        return text.to_string();
    }
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(16).map(|byte| format!("{byte:02x}")).collect()
}

/// The key of the effect a click asks for: one per notable and kind of change, one per
/// containment request's decision; `None` for a playbook request (each request is its own).
pub fn effect_key(action: &Action, event_id: &str, request_key: &str) -> Option<String> {
    Some(match action {
        Action::Ack => format!("ack:{}", part(event_id)),
        Action::FalsePositive => format!("false_positive:{}", part(event_id)),
        Action::Escalate => format!("escalate:{}", part(event_id)),
        Action::Approve | Action::Deny => format!("decision:{}", part(request_key)),
        // The war room holds its own claim (`remotes::slack::war_room`): a second click links
        // the room instead of being refused. Each request and each triage run is its own.
        Action::Playbook(_) | Action::WarRoom | Action::Triage(_) => return None,
    })
}

/// "acknowledged", for "already acknowledged by …".
pub fn verb(action: &Action) -> &'static str {
    match action {
        Action::Ack => "acknowledged",
        Action::FalsePositive => "marked false positive",
        Action::Escalate => "escalated",
        Action::Approve => "approved",
        Action::Deny => "denied",
        Action::Playbook(_) | Action::Triage(_) => "handled",
        Action::WarRoom => "opened a war room for",
    }
}

/// How a claim went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Inserted now: this click acts.
    Won,
    /// Another click holds it; its record.
    Taken(Map<String, Value>),
}

/// Inserts `document` (with its `_key`); `Taken` with the existing record on a conflict.
fn insert(responder: &Responder, document: &Value) -> Result<Claim> {
    let key = document.get("_key").and_then(Value::as_str).unwrap_or_default();
    for _ in 0..2 {
        if responder.splunkd.kv_insert(
            INTERACTIONS_COLLECTION,
            document,
            responder.conflict_status,
        )? {
            return Ok(Claim::Won);
        }
        // Read after a refused insert: who holds it (gone meanwhile: try the insert again).
        if let Some(Value::Object(record)) =
            responder.splunkd.kv_get(INTERACTIONS_COLLECTION, key)?
        {
            return Ok(Claim::Taken(record));
        }
    }
    Err(Error::Unavailable(format!(
        "KV store {INTERACTIONS_COLLECTION}: {key} neither inserted nor readable"
    )))
}

/// Claims the click itself (its first handling); `Taken` when it was seen before.
pub fn claim_click(responder: &Responder, click: &Click, envelope_id: &str) -> Result<Claim> {
    let record = json!({"_key": click.key(), "kind": "click", "envelope_id": envelope_id,
        "state": "started", "outcome": "", "action": click.action.id(),
        "slack_user_id": click.user_id, "account": responder.account,
        "channel": click.channel_id, "message_ts": click.message_ts, "value": click.value,
        "updated": now().as_secs_f64()});
    insert(responder, &record)
}

/// Claims the effect `key` for this click. A claim this very click made earlier (a retry, a
/// resumed click) is `Won` again.
pub fn claim_effect(
    responder: &Responder,
    key: &str,
    click: &Click,
    splunk_user: &str,
) -> Result<Claim> {
    let record = json!({"_key": key, "kind": "effect", "click_key": click.key(),
        "state": "claimed", "action": click.action.id(), "verb": verb(&click.action),
        "splunk_user": splunk_user, "slack_user_id": click.user_id,
        "updated": now().as_secs_f64()});
    Ok(match insert(responder, &record)? {
        Claim::Taken(record)
            if record.get("click_key").and_then(Value::as_str) == Some(click.key().as_str()) =>
        {
            Claim::Won
        }
        other => other,
    })
}

/// Gives an effect back after the click failed, so that a later click may try (best effort:
/// a claim left behind only makes later clicks "already … by").
pub fn release_effect(responder: &Responder, key: &str) {
    if let Err(error) = responder.splunkd.kv_delete(INTERACTIONS_COLLECTION, key) {
        log::warn!("Socket Mode: the claim {key} was not released: {error}");
    }
}

/// "already acknowledged by alice (Slack user U1)" of a claim another click holds (plain
/// text: it is escaped where it lands in mrkdwn).
pub fn already(record: &Map<String, Value>, action: &Action) -> String {
    let text = |name: &str| record.get(name).and_then(Value::as_str).unwrap_or("").to_string();
    let verb = Some(text("verb")).filter(|v| !v.is_empty()).unwrap_or(verb(action).into());
    let who = match (text("splunk_user"), text("slack_user_id")) {
        (user, slack) if !user.is_empty() && !slack.is_empty() => {
            format!("{user} (Slack user {slack})")
        }
        (user, _) if !user.is_empty() => user,
        (_, slack) if !slack.is_empty() => format!("Slack user {slack}"),
        _ => "another click".into(),
    };
    format!("already {verb} by {who}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effect_keys_name_the_notable_and_stay_short() {
        assert_eq!(effect_key(&Action::Ack, "NE-1", "").unwrap(), "ack:NE-1");
        assert_eq!(
            effect_key(&Action::Approve, "NE-1", "r1"),
            effect_key(&Action::Deny, "x", "r1")
        );
        assert!(effect_key(&Action::Playbook("p".into()), "NE-1", "").is_none());
        let long = effect_key(&Action::Ack, &"e".repeat(5000), "").unwrap();
        assert_eq!(long.len(), 4 + 32);
        assert_ne!(long, effect_key(&Action::Ack, &"e".repeat(5001), "").unwrap());
    }

    #[test]
    fn splunkd_failures_are_judged() {
        let expired = Error::Credentials("KV: HTTP 401: call not properly authenticated".into());
        assert_eq!(trouble_of(&expired), Trouble::Expired);
        assert_eq!(trouble_of_text(&expired.to_string()), Trouble::Expired);
        let forbidden = Error::Credentials("KV: HTTP 403: forbidden".into());
        assert_eq!(trouble_of(&forbidden), Trouble::Other);
        let busy = Error::Unavailable("HTTP 503".into());
        assert_eq!(trouble_of_text(&busy.to_string()), Trouble::Outage);
        assert!(kept_error("rejected: HTTP 400").is_none());
        let record = json!({"verb": "acknowledged", "splunk_user": "alice", "slack_user_id": "U1"});
        let record = record.as_object().unwrap();
        assert_eq!(already(record, &Action::Ack), "already acknowledged by alice (Slack user U1)");
    }
}
