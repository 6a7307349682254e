//! The effect of each button (PRODUCT §9 "Effects"): acknowledge and false positive change the
//! notable through the one notable-update interface (`remotes::splunkd::notables`, ES 7 or ES 8);
//! each effect is followed by the `chat.update` of the clicked message. A notable update that
//! splunkd could not take now (outage, expired session) is an error for the click handler to
//! retry or keep (`process`); escalation goes through the delivery layer (`escalate`);
//! containment playbooks wait for a second person's approval (`playbook`). Outside text in
//! the context lines (user names) is escaped.

use super::click::Action;
use super::{Context, Outcome, Responder, Verdict, claims, feedback};
use crate::mapping::slack::escape_mrkdwn;
use crate::remotes::splunkd::notables::{self as notable_update, NotableChange};
use crate::remotes::splunkd::users::SplunkUser;

pub const DEFAULT_FALSE_POSITIVE_DISPOSITION: &str = "disposition:3";

/// `[slack_response] false_positive_disposition`: `disposition:<N>`.
pub fn false_positive_disposition(responder: &Responder) -> Result<String, String> {
    let value = responder
        .settings
        .conf
        .get_nonempty("slack_response", "false_positive_disposition")
        .unwrap_or(DEFAULT_FALSE_POSITIVE_DISPOSITION)
        .trim()
        .to_string();
    let valid = value
        .strip_prefix("disposition:")
        .is_some_and(|n| !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit()));
    if valid {
        Ok(value)
    } else {
        Err(format!(
            "[slack_response] false_positive_disposition = \"{value}\" is not disposition:<number>"
        ))
    }
}

/// "12:03 UTC".
fn clock() -> String {
    let now = crate::civil_time::now_unix_secs();
    let day_seconds = now % 86_400;
    format!("{:02}:{:02} UTC", day_seconds / 3600, (day_seconds % 3600) / 60)
}

/// The effect of `click`; `Err` when splunkd could not take it now (the click is retried or
/// kept), an `Outcome` otherwise. `container`: an approval's SOAR container, found before.
pub fn apply(
    responder: &Responder,
    click: &super::Click,
    user: &SplunkUser,
    context: &Context,
    key: &str,
    request: Option<&serde_json::Map<String, serde_json::Value>>,
    container: Option<u64>,
) -> crate::error::Result<Outcome> {
    let by = format!(
        "<@{}> ({}) at {}",
        escape_mrkdwn(&click.user_id),
        escape_mrkdwn(&user.name),
        clock()
    );
    Ok(match &click.action {
        Action::Ack => {
            let change = NotableChange {
                event_ids: vec![context.event_id.clone()],
                status: Some(2),
                owner: Some(user.name.clone()),
                disposition: None,
                comment: Some(format!("Acknowledged in Slack by {}", user.name)),
            };
            let done = format!("Acknowledged in Slack by {}", user.name);
            notable(responder, click, &change, "2", &format!("Acknowledged by {by}"), &done)?
        }
        Action::FalsePositive => {
            let disposition = match false_positive_disposition(responder) {
                Ok(disposition) => disposition,
                Err(problem) => return Ok(Outcome::new(Verdict::Failed, problem)),
            };
            let change = NotableChange {
                event_ids: vec![context.event_id.clone()],
                status: Some(5),
                owner: None,
                disposition: Some(disposition),
                comment: Some(format!("Marked false positive in Slack by {}", user.name)),
            };
            let line = format!("Marked false positive by {by}");
            let done = format!("Marked false positive in Slack by {}", user.name);
            notable(responder, click, &change, "5", &line, &done)?
        }
        Action::Escalate => super::escalate::apply(responder, click, &user.name, context, &by),
        Action::Playbook(_) => {
            super::playbook::request(responder, click, &user.name, context, key, &by)
        }
        Action::WarRoom => super::war_room::apply(responder, click, context, &by),
        Action::Approve | Action::Deny => match request {
            Some(request) => super::playbook::decide(
                responder, click, &user.name, context, request, &by, container,
            ),
            None => Outcome::new(Verdict::Failed, "no containment request waits for this decision"),
        },
        // Run off the click handler by `triage` (the search may take `timeout_s`).
        Action::Triage(_) => {
            Outcome::new(Verdict::Failed, "a triage click is not an effect of the click handler")
        }
    })
}

/// Applies a notable change once (the click handler retries an outage), then updates the
/// message with `line` (mrkdwn); `done` is the plain outcome message.
fn notable(
    responder: &Responder,
    click: &super::Click,
    change: &NotableChange,
    status_after: &str,
    line: &str,
    done: &str,
) -> crate::error::Result<Outcome> {
    if change.event_ids.iter().any(|id| id.is_empty()) {
        return Ok(Outcome::new(Verdict::Failed, "the button names no notable event"));
    }
    let updater = match notable_update::open(&responder.settings, &responder.splunkd) {
        Ok(updater) => updater,
        Err(error) if claims::trouble_of(&error) != claims::Trouble::Other => return Err(error),
        Err(error) => return Ok(Outcome::new(Verdict::Failed, format!("notable update: {error}"))),
    };
    match updater.update(change) {
        Ok(()) => {
            feedback::update_message(&responder.slack, click, line);
            let mut outcome = Outcome::new(Verdict::Done, done.to_string());
            outcome.notable_status_after = status_after.to_string();
            outcome.remote_id = change.event_ids.join(",");
            Ok(outcome)
        }
        Err(problem) => match claims::kept_error(&problem) {
            Some(error) => Err(error),
            None => {
                Ok(Outcome::new(Verdict::Failed, format!("the notable was not updated: {problem}")))
            }
        },
    }
}
