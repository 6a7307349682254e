//! The *Escalate* button (PRODUCT §9 "Effects"): a StackFlow incident (`escalate_to =
//! stackflow`, the default) or a SOAR container (`soar`) for the clicked notable, built by the
//! ordinary `stackflow_incident` / `stackflow_soar` mapper from the context recorded at post
//! time (`mapping::escalate`) and sent through the ordinary delivery layer — retried, spooled
//! on outage, never duplicated (the ledger and the remote's own dedupe see the same key) — with
//! the usual delivery receipt and `stackflow_links` record, so that `| stackflowsync` and a
//! later playbook click find the incident or container.

use super::{Context, Outcome, Responder, Verdict, feedback};
use crate::audit::Audit;
use crate::delivery::deliverer::{DeliveryReport, Final};
use crate::error::ExitCode;
use crate::item::TargetKind;
use crate::mapping::{self, escalate};
use crate::remotes;
use std::time::Duration;

/// The delivery budget of one escalation; what does not fit waits in the spool.
const BUDGET: Duration = Duration::from_secs(30);

/// `[slack_response] escalate_account`: the SOAR / StackFlow account escalations go to.
pub fn account(responder: &Responder) -> String {
    responder
        .settings
        .conf
        .get_nonempty("slack_response", "escalate_account")
        .unwrap_or("default")
        .trim()
        .to_string()
}

fn remote_name(kind: TargetKind) -> &'static str {
    match kind {
        TargetKind::Soar => "SOAR container",
        _ => "StackFlow incident",
    }
}

pub fn apply(
    responder: &Responder,
    click: &super::Click,
    user: &str,
    context: &Context,
    by: &str,
) -> Outcome {
    if context.event_id.is_empty() {
        return Outcome::new(Verdict::Failed, "the button names no notable event");
    }
    let Some(kind) = escalate::target_of(context.field("escalate_to")) else {
        return Outcome::new(
            Verdict::Failed,
            format!("escalate_to = \"{}\" is not stackflow or soar", context.field("escalate_to")),
        );
    };
    let account = account(responder);
    let (alert, row) = escalate::escalation(kind, &account, &context.link, user);
    let items = mapping::mapper_for(kind, alert.clone()).and_then(|mut mapper| {
        let mut items = mapper.push(&row)?;
        items.extend(mapper.finish()?);
        Ok(items)
    });
    let item = match items.map(|items| items.into_iter().next()) {
        Ok(Some(item)) => item,
        Ok(None) => return Outcome::new(Verdict::Failed, "the escalation mapped to nothing"),
        Err(error) => return Outcome::new(Verdict::Failed, format!("escalation: {error}")),
    };
    let report = match deliver(responder, kind, &account, item) {
        Ok(report) => report,
        Err(problem) => return Outcome::new(Verdict::Failed, problem),
    };
    let mut audit = Audit::new(&alert, &responder.settings, Some(responder.splunkd.clone()));
    audit.record(&report);
    audit.finish();
    outcome_of(responder, click, kind, &report, by)
}

/// One delivery through the ordinary deliverer; the target not opening for want of splunkd
/// spools the item, a configuration or credentials problem fails the click.
fn deliver(
    responder: &Responder,
    kind: TargetKind,
    account: &str,
    item: crate::item::DeliveryItem,
) -> Result<DeliveryReport, String> {
    let delivery = responder.settings.delivery().map_err(|error| error.to_string())?;
    let mut deliverer = crate::delivery::deliverer::Deliverer::from_settings(&delivery, BUDGET);
    match remotes::open(kind, account, &responder.settings, &responder.splunkd) {
        Ok(mut target) => Ok(deliverer.deliver(item, target.as_mut())),
        Err(error) if error.exit_code() == ExitCode::Deferred => {
            let now = crate::civil_time::now_unix();
            Ok(deliverer.defer(item, 0, &error.to_string(), now))
        }
        Err(error) => Err(format!("{} account \"{account}\": {error}", kind.action_name())),
    }
}

fn outcome_of(
    responder: &Responder,
    click: &super::Click,
    kind: TargetKind,
    report: &DeliveryReport,
    by: &str,
) -> Outcome {
    let what = remote_name(kind);
    let remote_id = report
        .delivered
        .as_ref()
        .and_then(|delivered| delivered.remote_id.clone())
        .unwrap_or_default();
    let mut outcome = match report.result {
        Final::Delivered | Final::Duplicate => {
            let verb = if report.result == Final::Duplicate { "already had" } else { "created" };
            feedback::update_message(&responder.slack, click, &format!("Escalated by {by}"));
            Outcome::new(Verdict::Done, format!("Escalated: {what} {remote_id} {verb}"))
        }
        Final::Spooled => {
            feedback::update_message(
                &responder.slack,
                click,
                &format!("Escalation queued by {by}"),
            );
            Outcome::new(
                Verdict::Done,
                format!(
                    "Escalation queued: the {what} will be created when the remote is reachable ({})",
                    report.message
                ),
            )
        }
        Final::Rejected(_) | Final::Lost => {
            Outcome::new(Verdict::Failed, format!("the {what} was not created: {}", report.message))
        }
    };
    outcome.remote_id = remote_id;
    outcome
}
