//! What a flush knows of the backlog it did not read: the outlook a run leaves when every
//! account is down or held (each account's probe item, so the next run reads nothing else), the
//! plan of such a quick run, the counts it carries over, and the summary of a run that found a
//! remote back and drained in the same run.

use super::{AccountReport, AccountState, FlushSummary, Pair, Plan, Probe, Work};
use crate::civil_time::now_unix;
use crate::outbox::record::{DownAccount, Outlook};
use std::collections::{BTreeMap, HashMap};

/// The plan of a run that reads nothing of the backlog: a probe for each account of the last
/// run's outlook whose Retry-After has passed; the others stay held.
pub(super) fn quick_plan(outlook: Outlook) -> Plan {
    let now = now_unix();
    let mut plan = Plan::default();
    for down in &outlook.accounts {
        let pair = (down.target, down.account.clone());
        if down.hold_until_unix > now {
            plan.not_due += down.pending;
            let probe = Some((down.probe.clone(), down.token));
            plan.held.insert(pair, (down.hold_until_unix, down.pending, probe));
        } else {
            plan.work.push(Work::Pending {
                id: down.probe.clone(),
                token: down.token,
                pair: Some(pair),
            });
        }
    }
    plan.quick = Some(outlook);
    plan
}

/// After a quick run (only the probes were read): the rest of each down account's backlog is as
/// last counted.
pub(super) fn count_unread(
    quick: Option<&Outlook>,
    accounts: &mut BTreeMap<Pair, AccountReport>,
    summary: &mut FlushSummary,
) {
    let Some(outlook) = quick else { return };
    summary.counts_capped |= outlook.capped;
    for down in &outlook.accounts {
        if let Some(report) = accounts.get_mut(&(down.target, down.account.clone()))
            && report.state == AccountState::Down
        {
            let rest = down.pending.saturating_sub(report.pending);
            report.pending += rest;
            summary.still_pending += rest;
        }
    }
}

/// The outlook this run leaves: every account with pending items is down or held, each with
/// its probe item, and the run read everything else (nothing unreadable, nothing unreached).
pub(super) fn outlook_of(
    accounts: &BTreeMap<Pair, AccountReport>,
    probes: &HashMap<Pair, Probe>,
    summary: &FlushSummary,
) -> Option<Outlook> {
    if summary.left_for_next_run > 0 || summary.quarantined > 0 {
        return None;
    }
    let mut outlook = Outlook { capped: summary.counts_capped, ..Outlook::default() };
    for (pair, report) in accounts {
        match report.state {
            AccountState::Up if report.pending == 0 => continue,
            AccountState::Down | AccountState::Held => {}
            _ => return None,
        }
        let (probe, token) = probes.get(pair)?.clone();
        outlook.accounts.push(DownAccount {
            target: pair.0,
            account: pair.1.clone(),
            probe,
            token,
            pending: report.pending,
            hold_until_unix: report.next_probe_unix.unwrap_or(0.0),
            reason: report.reason.clone(),
        });
    }
    (!outlook.accounts.is_empty()).then_some(outlook)
}

/// A quick run's summary followed by the scan and drain it led to (which reported itself).
pub(super) fn merged(
    first: FlushSummary,
    mut accounts: BTreeMap<Pair, AccountReport>,
    rest: FlushSummary,
) -> FlushSummary {
    let mut summary = rest;
    summary.delivered += first.delivered;
    summary.duplicates += first.duplicates;
    summary.rejected += first.rejected;
    summary.quarantined += first.quarantined;
    summary.counts_capped |= first.counts_capped;
    summary.exit = summary.exit.worst(first.exit);
    for report in &mut summary.accounts {
        let probed = accounts
            .iter()
            .find(|(pair, _)| pair.0.as_str() == report.target && pair.1 == report.account)
            .map(|(pair, _)| pair.clone());
        if let Some(probed) = probed.and_then(|pair| accounts.remove(&pair)) {
            report.delivered += probed.delivered;
            report.duplicates += probed.duplicates;
            report.rejected += probed.rejected;
        }
    }
    summary
}
