//! Containment playbooks with two-person approval (PRODUCT §9): a `stackflow_playbook` click
//! (value `<reference>|<playbook>`, the playbook one the message offered) posts an approval
//! request in the thread; `stackflow_approve` by a *different* user holding
//! `stackflow_approve` runs the playbook on the notable's SOAR container with `POST
//! /rest/playbook_run`, `scope = new`; `stackflow_deny` records the refusal. The container is
//! found as `| stackflowsync` finds it (the link's id, then `stackflow_links`, then SOAR's
//! `source_data_identifier` = `event_id`) *before* the approval is recorded (PRODUCT §15). The
//! request lives in `stackflow_interactions` (the playbook click's own record); its decision
//! is claimed there (`decision:<request>`, `claims`) before the playbook runs, so a
//! re-delivered or concurrent approval, or a restart in the middle, never runs it twice. The
//! approval message says "running" until the run id or the failure is known. Playbook names
//! and event ids are escaped wherever they land in mrkdwn.

use super::click::Action;
use super::{Click, Context, INTERACTIONS_COLLECTION, Outcome, Responder, Verdict, feedback};
use crate::mapping::slack::escape_mrkdwn;
use crate::net::retry::{Backoff, jitter_unit};
use crate::remotes::soar::SoarApi;
use crate::remotes::soar::read::SoarReader;
use crate::remotes::soar::write::run_playbook;
use serde_json::{Map, Value};
use std::time::Duration;

/// Attempts of one playbook run on a temporary failure.
const RUN_ATTEMPTS: u32 = 3;
/// Between two attempts: 1 s, 2 s (… at most 8 s), with equal jitter.
const RUN_BACKOFF: Backoff = Backoff { base: Duration::from_secs(1), cap: Duration::from_secs(8) };

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
    let Action::Playbook(playbook) = &click.action else {
        return Outcome::new(Verdict::Failed, "the click asks for no playbook");
    };
    let playbook = playbook.as_str();
    if playbook.is_empty() {
        return Outcome::new(Verdict::Failed, "the button names no playbook");
    }
    // Only a playbook the message offered (recorded at post time) may be asked for.
    let offered = context.field("playbooks").split(',').map(str::trim).any(|p| p == playbook);
    if !offered {
        let mut outcome = Outcome::new(
            Verdict::Failed,
            format!("playbook {playbook} was not offered on this message"),
        );
        outcome.playbook = playbook.to_string();
        return outcome;
    }
    let shown = escape_mrkdwn(playbook);
    let question = format!(
        "Containment *{shown}* requested by <@{}> ({}) for notable {}: another user \
         holding stackflow_approve must approve it.",
        escape_mrkdwn(&click.user_id),
        escape_mrkdwn(user),
        escape_mrkdwn(&context.event_id)
    );
    feedback::post_approval_request(&responder.slack, click, &question, key);
    feedback::update_message(
        &responder.slack,
        click,
        &format!("Containment *{shown}* requested by {by}, awaiting approval"),
    );
    let mut outcome = Outcome::new(
        Verdict::AwaitingApproval,
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
            if text(&record, "action") == Action::Playbook(String::new()).id()
                && text(&record, "outcome").parse() == Ok(Verdict::AwaitingApproval) =>
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

/// The notable's SOAR container, as `| stackflowsync` finds it: the link record's
/// `soar_container_id`, else `stackflow_links` by `event_id`, else SOAR's containers whose
/// `source_data_identifier` is the `event_id`. `Ok(Err(why))` when there is none (or SOAR
/// cannot say); `Err` when splunkd could not answer now.
pub fn find_container(
    responder: &Responder,
    context: &Context,
    playbook: &str,
) -> crate::error::Result<Result<u64, String>> {
    let own = context.link.get("soar_container_id").and_then(|id| match id {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    });
    if let Some(id) = own.filter(|id| *id > 0) {
        return Ok(Ok(id));
    }
    let event_id = context.event_id.as_str();
    let links = match crate::sync::lookup::read_links(&responder.splunkd, &[event_id]) {
        Ok(links) => links,
        Err(problem) => match super::claims::kept_error(&problem) {
            Some(error) => return Err(error),
            None => return Ok(Err(format!("stackflow_links: {problem}"))),
        },
    };
    if let Some(id) = links.get(event_id).and_then(|link| link.soar_id) {
        return Ok(Ok(id));
    }
    let api = match SoarApi::open(&responder.settings, &responder.splunkd, &account(responder)) {
        Ok(api) => api,
        Err(error) => return Ok(Err(format!("SOAR account: {error}"))),
    };
    let mut reader = SoarReader::new(api);
    Ok(match reader.containers_by_sdi(&[event_id]) {
        Ok(containers) => match containers.iter().map(|container| container.id).min() {
            Some(id) => Ok(id),
            None => Err(format!("notable {event_id} has no SOAR container to run {playbook} on")),
        },
        Err(problem) => Err(format!("SOAR container of notable {event_id}: {problem}")),
    })
}

/// Approve or deny, once per request (the decision is claimed before this runs).
pub fn decide(
    responder: &Responder,
    click: &Click,
    user: &str,
    context: &Context,
    request: &Map<String, Value>,
    by: &str,
    container: Option<u64>,
) -> Outcome {
    let playbook = text(request, "playbook").to_string();
    let requested_by = text(request, "splunk_user").to_string();
    let finish = |mut outcome: Outcome| {
        outcome.playbook = playbook.clone();
        outcome.requested_by = requested_by.clone();
        outcome
    };
    let shown = escape_mrkdwn(&playbook);
    if click.action != Action::Approve {
        feedback::update_message(&responder.slack, click, &format!("Denied by {by}"));
        return finish(Outcome::new(
            Verdict::Denied,
            format!("Containment {playbook} denied (requested by {requested_by})"),
        ));
    }
    let Some(container) = container else {
        let why =
            format!("notable {} has no SOAR container to run {playbook} on", context.event_id);
        return finish(Outcome::new(Verdict::Failed, why));
    };
    feedback::update_message(
        &responder.slack,
        click,
        &format!("Approved by {by}: *{shown}* running…"),
    );
    let mut outcome = run(responder, container, &playbook);
    let line = match outcome.verdict {
        Verdict::Done => {
            format!("Approved by {by}: *{shown}* run {} started", escape_mrkdwn(&outcome.remote_id))
        }
        _ => {
            format!("Approved by {by}: *{shown}* did not run: {}", escape_mrkdwn(&outcome.message))
        }
    };
    feedback::update_message(&responder.slack, click, &line);
    if outcome.verdict == Verdict::Done {
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
fn run(responder: &Responder, container: u64, playbook: &str) -> Outcome {
    let api = match SoarApi::open(&responder.settings, &responder.splunkd, &account(responder)) {
        Ok(api) => api,
        Err(error) => return Outcome::new(Verdict::Failed, format!("SOAR account: {error}")),
    };
    let started = |run_id: String| {
        let mut outcome = Outcome::new(
            Verdict::Done,
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
            Err(crate::net::Outcome::Retry(retry)) if attempt < RUN_ATTEMPTS => {
                log::warn!("playbook run attempt {attempt}/{RUN_ATTEMPTS}: {}", retry.reason);
                last = retry.reason;
                std::thread::sleep(RUN_BACKOFF.delay(attempt, None, jitter_unit()));
            }
            Err(outcome) => {
                last = crate::remotes::response::reason(&outcome);
                break;
            }
        }
    }
    Outcome::new(Verdict::Failed, format!("playbook {playbook} did not run: {last}"))
}
