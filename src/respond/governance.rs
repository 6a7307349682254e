//! Who may act (PRODUCT §9): the Slack user is mapped to a Splunk user — the KV store
//! collection `stackflow_slack_users` (`_key` = Slack user id, `splunk_user`), else the one
//! Splunk user whose `email` equals the Slack profile e-mail (`users.info`, scope
//! `users:read.email`) — and that Splunk user's own capabilities decide (`stackflow_respond`,
//! `stackflow_approve`), asked of splunkd, never the listener's own rights.

use super::click::Action;
use crate::error::{Error, Result};
use crate::net::form_encode;
use crate::remotes::slack::SlackApi;
use crate::remotes::splunkd::Splunkd;
use crate::remotes::splunkd::users::{self, SplunkUser};

pub const USERS_COLLECTION: &str = "stackflow_slack_users";
pub const RESPOND: &str = "stackflow_respond";
pub const APPROVE: &str = "stackflow_approve";
/// Runs triage templates (PRODUCT §16).
pub const TRIAGE: &str = "stackflow_triage";

/// The Splunk user behind a Slack user, or why there is none (said to the clicker).
pub fn map_user(
    splunkd: &Splunkd,
    slack: &SlackApi,
    slack_user_id: &str,
) -> Result<std::result::Result<SplunkUser, String>> {
    if let Some(record) = splunkd.kv_get(USERS_COLLECTION, slack_user_id)? {
        let name = record.get("splunk_user").and_then(|v| v.as_str()).unwrap_or("").trim();
        if !name.is_empty() {
            return Ok(match users::user(splunkd, name)? {
                Some(user) => Ok(user),
                None => Err(format!(
                    "your Slack account is mapped to the Splunk user \"{name}\", which does not exist"
                )),
            });
        }
    }
    let Some(email) = slack_email(slack, slack_user_id)? else {
        return Ok(Err("your Slack account is not mapped to a Splunk user (no stackflow_slack_users entry, and Slack shows no e-mail address)".into()));
    };
    Ok(match users::user_by_email(splunkd, &email)? {
        Some(user) => Ok(user),
        None => Err("your Slack account is not mapped to a Splunk user (no stackflow_slack_users entry, and no single Splunk user has your Slack e-mail address)".into()),
    })
}

/// `users.info` → `user.profile.email` (absent without the `users:read.email` scope).
fn slack_email(slack: &SlackApi, slack_user_id: &str) -> Result<Option<String>> {
    let response = slack
        .call_form("users.info", &form_encode(&[("user", slack_user_id)]))
        .map_err(|outcome| Error::Unavailable(crate::remotes::response::reason(&outcome)))?;
    let json = response.json().unwrap_or_default();
    if json.get("ok").and_then(|v| v.as_bool()) != Some(true) {
        let error = json.get("error").and_then(|v| v.as_str()).unwrap_or("no JSON answer");
        log::warn!("Slack users.info for {slack_user_id}: {error}");
        return Ok(None);
    }
    Ok(json
        .pointer("/user/profile/email")
        .and_then(|v| v.as_str())
        .map(str::trim)
        .filter(|email| !email.is_empty() && email.len() <= 320)
        .map(str::to_string))
}

/// The capability an action needs.
pub fn capability_for(action: &Action) -> &'static str {
    match action {
        Action::Approve | Action::Deny => APPROVE,
        Action::Ack
        | Action::Escalate
        | Action::FalsePositive
        | Action::Playbook(_)
        | Action::WarRoom => RESPOND,
        Action::Triage(_) => TRIAGE,
    }
}
