//! Containment playbooks with two-person approval (PRODUCT §9): a `stackflow_playbook` click
//! (value `<reference>|<playbook>`, the playbook one the message offered) posts an approval
//! request in the thread; `stackflow_approve` by a *different* user holding
//! `stackflow_approve` runs the playbook on the notable's SOAR container (found in
//! `stackflow_links` as `| stackflowsync` finds it) with `POST /rest/playbook_run`, `scope =
//! new`; `stackflow_deny` records the refusal. The request lives in `stackflow_interactions`
//! (the playbook click's own record); its `decision` is written *before* the playbook runs,
//! so a re-delivered or concurrent approval, or a restart in the middle, never runs it twice.

use super::{Click, Context, INTERACTIONS_COLLECTION, Outcome, Responder, feedback};
use crate::remotes::soar::SoarApi;
use crate::remotes::soar::read::SoarReader;
use crate::remotes::soar::write::run_playbook;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// Attempts of one playbook run on a temporary failure.
const RUN_ATTEMPTS: u32 = 3;

/// `[slack_response] playbook_account`: the SOAR account playbooks run on.
fn account(responder: &Responder) -> String {
    responder
        .settings
        .conf
        .get_nonempty("slack_response", "playbook_account")
        .unwrap_or("default")
        .trim()
        .to_string()
}

fn text<'a>(record: &'a Map<String, Value>, name: &str) -> &'a str {
    record.get(name).and_then(Value::as_str).unwrap_or("")
}

/// The playbook click: an approval request in the thread, and the message says it waits.
pub fn request(
    responder: &Responder,
    click: &Click,
    user: &str,
    context: &Context,
    key: &str,
    by: &str,
) -> Outcome {
    let (_, playbook) = click.reference_and_playbook();
    let Some(playbook) = playbook else {
        return Outcome::new("failed", "the button names no playbook");
    };
    // Only a playbook the message offered (recorded at post time) may be asked for.
    let offered = context.field("playbooks").split(',').map(str::trim).any(|p| p == playbook);
    if !offered {
        let mut outcome =
            Outcome::new("failed", format!("playbook {playbook} was not offered on this message"));
        outcome.playbook = playbook.to_string();
        return outcome;
    }
    let question = format!(
        "Containment *{playbook}* requested by <@{}> ({user}) for notable {}: another user \
         holding stackflow_approve must approve it.",
        click.user_id, context.event_id
    );
    feedback::post_approval_request(&responder.slack, click, &question, key);
    feedback::update_message(
        &responder.slack,
        click,
        &format!("Containment *{playbook}* requested by {by}, awaiting approval"),
    );
    let mut outcome = Outcome::new(
        "awaiting_approval",
        format!("Containment {playbook} requested; awaiting approval"),
    );
    outcome.playbook = playbook.to_string();
    outcome.requested_by = user.to_string();
    outcome
}

/// The request a decision is about (its interaction record), if it is one.
pub fn request_record(
    responder: &Responder,
    reference: &str,
) -> crate::error::Result<Option<Map<String, Value>>> {
    Ok(match responder.splunkd.kv_get(INTERACTIONS_COLLECTION, reference)? {
        Some(Value::Object(record))
            if text(&record, "action") == super::click::PLAYBOOK
                && text(&record, "outcome") == "awaiting_approval" =>
        {
            Some(record)
        }
        _ => None,
    })
}

/// Why this clicker may not decide on this request (the requester never may).
pub fn self_approval(request: &Map<String, Value>, click: &Click, user: &str) -> Option<String> {
    let same = text(request, "slack_user_id") == click.user_id
        || text(request, "splunk_user").eq_ignore_ascii_case(user);
    same.then(|| {
        "you requested this containment; another user holding stackflow_approve must decide on it"
            .to_string()
    })
}

/// Approve or deny, once per request.
pub fn decide(
    responder: &Responder,
    click: &Click,
    user: &str,
    context: &Context,
    request: &Map<String, Value>,
    by: &str,
) -> Outcome {
    let playbook = text(request, "playbook").to_string();
    let requested_by = text(request, "splunk_user").to_string();
    let finish = |mut outcome: Outcome| {
        outcome.playbook = playbook.clone();
        outcome.requested_by = requested_by.clone();
        outcome
    };
    let decided = text(request, "decision");
    if !decided.is_empty() {
        return finish(Outcome::new(
            "duplicate",
            format!("already {decided} by {}", text(request, "decided_by")),
        ));
    }
    let approve = click.action_id == super::click::APPROVE;
    let decision = if approve { "approved" } else { "denied" };
    // The decision is kept before anything runs: at most one run per request.
    let mut record = request.clone();
    record.insert("decision".into(), json!(decision));
    record.insert("decided_by".into(), json!(user));
    if let Err(error) =
        responder.splunkd.kv_batch_save(INTERACTIONS_COLLECTION, &[Value::Object(record)])
    {
        return finish(Outcome::new("failed", format!("the decision was not recorded: {error}")));
    }
    if !approve {
        feedback::update_message(&responder.slack, click, &format!("Denied by {by}"));
        let mut outcome = Outcome::new(
            "denied",
            format!("Containment {playbook} denied (requested by {requested_by})"),
        );
        outcome.approved_by = String::new();
        return finish(outcome);
    }
    feedback::update_message(&responder.slack, click, &format!("Approved by {by}"));
    let mut outcome = run(responder, context, &playbook);
    if outcome.outcome == "done" {
        outcome.message =
            format!("{} (requested by {requested_by}, approved by {user})", outcome.message);
    }
    outcome.approved_by = user.to_string();
    finish(outcome)
}

/// Runs the playbook on the notable's SOAR container, retrying temporary failures — but never
/// twice: a reset or timeout may come after SOAR queued the run, so before each retry the
/// container's newest run is compared with the one seen before the first attempt, and a new
/// run there is taken as this one (PRODUCT §9 "never duplicated"; SOAR has no idempotency key
/// for `POST /rest/playbook_run`).
fn run(responder: &Responder, context: &Context, playbook: &str) -> Outcome {
    let links =
        match crate::sync::lookup::read_links(&responder.splunkd, &[context.event_id.as_str()]) {
            Ok(links) => links,
            Err(error) => return Outcome::new("failed", format!("stackflow_links: {error}")),
        };
    let Some(container) = links.get(&context.event_id).and_then(|link| link.soar_id) else {
        return Outcome::new(
            "failed",
            format!("notable {} has no SOAR container to run {playbook} on", context.event_id),
        );
    };
    let api = match SoarApi::open(&responder.settings, &responder.splunkd, &account(responder)) {
        Ok(api) => api,
        Err(error) => return Outcome::new("failed", format!("SOAR account: {error}")),
    };
    let started = |run_id: String| {
        let mut outcome = Outcome::new(
            "done",
            format!("Playbook {playbook} run {run_id} started on SOAR container {container}"),
        );
        outcome.remote_id = run_id;
        outcome
    };
    let mut reader = SoarReader::new(api);
    // Without knowing the runs before, a lost answer cannot be told apart from a failed
    // request, so there is then no retry.
    let before = reader.newest_playbook_run(container).ok();
    let mut last = String::new();
    for attempt in 1..=RUN_ATTEMPTS {
        if attempt > 1 {
            match (before, reader.newest_playbook_run(container)) {
                (Some(before), Ok(now)) if now > before => {
                    let run_id = now.map(|id| id.to_string()).unwrap_or_default();
                    return started(run_id);
                }
                (Some(_), Ok(_)) => {}
                _ => {
                    last = format!(
                        "{last}; not retried: SOAR could not say whether it started the run"
                    );
                    break;
                }
            }
        }
        match run_playbook(reader.api(), container, playbook) {
            Ok(run_id) => return started(run_id),
            Err(crate::delivery::Outcome::Retry(retry)) if attempt < RUN_ATTEMPTS => {
                log::warn!("playbook run attempt {attempt}/{RUN_ATTEMPTS}: {}", retry.reason);
                last = retry.reason;
                std::thread::sleep(Duration::from_millis(500u64 << attempt.min(4)));
            }
            Err(outcome) => {
                last = crate::remotes::response::reason(&outcome);
                break;
            }
        }
    }
    Outcome::new("failed", format!("playbook {playbook} did not run: {last}"))
}
