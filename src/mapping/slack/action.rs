//! The actions of the response loop (PRODUCT §9): every button StackFlow puts on a Slack
//! message and every click the listener acts on is one [`Action`]. Its `action_id`, label,
//! style and value are written here once, so the buttons built at send time (`respond`, the
//! approval request) and the clicks read by the listener cannot disagree. Pure.
//!
//! A new action (a triage template, a war room) is one more variant: the compiler then names
//! every `match` that must say what it does (id, label, capability, effect, feedback).

use super::{escape_mrkdwn, limits, plain, truncate_escaped};
use serde_json::{Value, json};

/// One response action, as a button offers it and a click asks for it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Acknowledge the notable (status in progress, owner the clicker).
    Ack,
    /// A StackFlow incident or SOAR container for the notable.
    Escalate,
    /// Close the notable as a false positive.
    FalsePositive,
    /// Ask for a containment playbook (two-person approval). The name is the one the button
    /// carries (`<reference>|<playbook>`); empty when the value names none (the click fails).
    Playbook(String),
    /// Approve a containment request.
    Approve,
    /// Deny a containment request.
    Deny,
    /// Open the notable's war room (PRODUCT §17), or link the one it has.
    WarRoom,
    /// Run a triage template (PRODUCT §16) and answer in the thread. The name is the one the
    /// button carries (`<reference>|<template>`); empty when the value names none.
    Triage(String),
}

/// The `action_id`s StackFlow puts on messages, each written once.
const ACK: &str = "stackflow_ack";
const ESCALATE: &str = "stackflow_escalate";
const FALSE_POSITIVE: &str = "stackflow_false_positive";
const PLAYBOOK: &str = "stackflow_playbook";
const APPROVE: &str = "stackflow_approve";
const DENY: &str = "stackflow_deny";
const WAR_ROOM: &str = "stackflow_war_room";
const TRIAGE: &str = "stackflow_triage";
/// Every `action_id` of ours (a message's buttons that are not, e.g. links, are left alone).
pub const ACTION_IDS: [&str; 8] =
    [ACK, ESCALATE, FALSE_POSITIVE, PLAYBOOK, APPROVE, DENY, WAR_ROOM, TRIAGE];

impl Action {
    /// The button's `action_id`.
    pub fn id(&self) -> &'static str {
        match self {
            Action::Ack => ACK,
            Action::Escalate => ESCALATE,
            Action::FalsePositive => FALSE_POSITIVE,
            Action::Playbook(_) => PLAYBOOK,
            Action::Approve => APPROVE,
            Action::Deny => DENY,
            Action::WarRoom => WAR_ROOM,
            Action::Triage(_) => TRIAGE,
        }
    }

    /// The action's name in receipts and the `buttons` parameter: the id without `stackflow_`.
    pub fn name(&self) -> &'static str {
        let id = self.id();
        id.strip_prefix("stackflow_").unwrap_or(id)
    }

    /// The action of a clicked button (`action_id`, `value`); `None` when the id is not ours.
    pub fn parse(action_id: &str, value: &str) -> Option<Action> {
        Some(match action_id {
            ACK => Action::Ack,
            ESCALATE => Action::Escalate,
            FALSE_POSITIVE => Action::FalsePositive,
            PLAYBOOK => {
                let playbook = value.split_once('|').map(|(_, name)| name).unwrap_or("");
                Action::Playbook(playbook.to_string())
            }
            APPROVE => Action::Approve,
            DENY => Action::Deny,
            WAR_ROOM => Action::WarRoom,
            TRIAGE => {
                let template = value.split_once('|').map(|(_, name)| name).unwrap_or("");
                Action::Triage(template.to_string())
            }
            _ => return None,
        })
    }

    /// A word of the `buttons` parameter (`ack`, `escalate`, `false_positive`, `war_room`):
    /// the buttons an alert may choose (playbooks have their own parameter, decisions are
    /// never offered).
    pub fn from_word(word: &str) -> Option<Action> {
        [Action::Ack, Action::Escalate, Action::FalsePositive, Action::WarRoom]
            .into_iter()
            .find(|action| action.name() == word)
    }

    /// A decision on a containment request (its value is the request's interaction key).
    pub fn is_decision(&self) -> bool {
        matches!(self, Action::Approve | Action::Deny)
    }

    fn label(&self) -> String {
        match self {
            Action::Ack => "Acknowledge".into(),
            Action::Escalate => "Escalate".into(),
            Action::FalsePositive => "False positive".into(),
            Action::Playbook(playbook) => format!("Contain: {playbook}"),
            Action::Approve => "Approve".into(),
            Action::Deny => "Deny".into(),
            Action::WarRoom => "War room".into(),
            Action::Triage(template) => format!("Triage: {template}"),
        }
    }

    fn style(&self) -> Option<&'static str> {
        match self {
            Action::Ack | Action::Approve => Some("primary"),
            Action::Playbook(_) | Action::Deny => Some("danger"),
            Action::Escalate | Action::FalsePositive | Action::WarRoom | Action::Triage(_) => None,
        }
    }

    /// The button's `value` for `reference` (a dedupe key, or a request's interaction key):
    /// a reference only, never row data; a playbook's is `<reference>|<playbook>`.
    pub fn value(&self, reference: &str) -> String {
        match self {
            Action::Playbook(name) | Action::Triage(name) => format!("{reference}|{name}"),
            _ => reference.to_string(),
        }
    }

    /// The Block Kit button of this action for `reference`; `None` when the value is over
    /// Slack's limit (a cut reference would point nowhere).
    pub fn button(&self, reference: &str) -> Option<Value> {
        self.button_labelled(reference, &self.label())
    }

    /// The button with its own text (a triage template's `label`).
    pub fn button_labelled(&self, reference: &str, label: &str) -> Option<Value> {
        let value = self.value(reference);
        if value.chars().count() > limits::BUTTON_VALUE {
            return None;
        }
        let text = truncate_escaped(&escape_mrkdwn(label), limits::BUTTON_TEXT);
        let mut button =
            json!({"type": "button", "action_id": self.id(), "text": plain(&text), "value": value});
        if let Some(style) = self.style() {
            button["style"] = json!(style);
        }
        Some(button)
    }

    /// The `action_id`s of the buttons that give way once this action is done: a decided
    /// notable (false positive) loses every response button, a decided request its *Approve*
    /// and *Deny*, any other action its own button.
    pub fn buttons_removed(&self) -> Vec<&'static str> {
        match self {
            Action::FalsePositive => ACTION_IDS.to_vec(),
            Action::Approve | Action::Deny => vec![APPROVE, DENY],
            // A triage may be asked again (another template, later data).
            Action::Triage(_) => Vec::new(),
            other => vec![other.id()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_others_are_not_ours() {
        for id in ACTION_IDS {
            let action = Action::parse(id, "k|p").unwrap();
            assert_eq!(action.id(), id);
            assert_eq!(format!("stackflow_{}", action.name()), id);
        }
        assert_eq!(Action::parse(PLAYBOOK, "k|p"), Some(Action::Playbook("p".into())));
        assert_eq!(Action::parse(PLAYBOOK, "k"), Some(Action::Playbook(String::new())));
        assert_eq!(Action::parse("stackflow_open_splunk", "k"), None);
        assert_eq!(Action::from_word("false_positive"), Some(Action::FalsePositive));
        assert_eq!(Action::from_word("approve"), None);
        assert_eq!(Action::from_word("war_room"), Some(Action::WarRoom));
        assert_eq!(Action::WarRoom.id(), "stackflow_war_room");
        let button = Action::Playbook("block_ip".into()).button("k1").unwrap();
        assert_eq!(
            (button["value"].as_str(), button["style"].as_str()),
            (Some("k1|block_ip"), Some("danger"))
        );
        assert!(Action::Ack.button(&"k".repeat(3000)).is_none());
        assert_eq!(
            Action::parse(TRIAGE, "k|user_activity"),
            Some(Action::Triage("user_activity".into()))
        );
        let triage =
            Action::Triage("user_activity".into()).button_labelled("k1", "User <b>").unwrap();
        assert_eq!(triage["value"], "k1|user_activity");
        assert_eq!(triage["text"]["text"], "User &lt;b&gt;");
    }
}
