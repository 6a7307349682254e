//! What a flush tells about each remote account: the per-account report of the status line
//! and the stderr lines that close a flush (one per account, one summary).

use super::FlushSummary;
use crate::error::ExitCode;
use crate::item::TargetKind;
use crate::outbox::store::Store;

/// What a flush learnt about one remote account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    /// The remote answered (delivered, or rejected items on their merits).
    Up,
    /// The probe (or an item of the drain) was told to retry later, or the account could not
    /// be opened: its other items were not tried in this run.
    Down,
    /// The remote asked (Retry-After) not to be contacted before `next_probe_unix`.
    Held,
    /// The run hit its bound before reaching this account.
    NotReached,
}

/// One line of the per-account report of a flush.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AccountReport {
    pub target: &'static str,
    pub account: String,
    pub state: AccountState,
    pub delivered: usize,
    pub duplicates: usize,
    pub rejected: usize,
    /// Items of this account still pending after the run.
    pub pending: usize,
    /// When the next probe may happen: `None` = at the next flush.
    pub next_probe_unix: Option<f64>,
    /// Why the account is down (the last answer), empty when up.
    pub reason: String,
}

impl AccountReport {
    pub(super) fn new(kind: TargetKind, account: &str, state: AccountState) -> AccountReport {
        AccountReport {
            target: kind.as_str(),
            account: account.to_string(),
            state,
            delivered: 0,
            duplicates: 0,
            rejected: 0,
            pending: 0,
            next_probe_unix: None,
            reason: String::new(),
        }
    }
}

/// One line per account: delivered, still down (and why), when the next probe happens.
pub(super) fn log_account(report: &AccountReport) {
    let next = match report.next_probe_unix {
        Some(at) => format!("next probe after {}", crate::civil_time::iso8601_utc(at as i64)),
        None => "next probe at the next flush".to_string(),
    };
    let head = format!(
        "spool: {} account {}: {} delivered, {} already there, {} rejected, {} pending",
        report.target,
        report.account,
        report.delivered,
        report.duplicates,
        report.rejected,
        report.pending
    );
    match report.state {
        AccountState::Up => log::info!("{head}; the remote answers"),
        AccountState::Down => log::warn!("{head}; still down ({}); {next}", report.reason),
        AccountState::Held => log::info!("{head}; held by the remote's Retry-After; {next}"),
        AccountState::NotReached => {
            log::info!("{head}; not reached in this flush (bound); {next}")
        }
    }
}

pub(super) fn log_summary(spool: &dyn Store, summary: &FlushSummary) {
    let line = format!(
        "spool flush: {} delivered, {} already there, {} still pending, {} rejected (dead letters), {} quarantined, {} not due yet (spool {})",
        summary.delivered,
        summary.duplicates,
        summary.still_pending,
        summary.rejected,
        summary.quarantined,
        summary.not_due,
        spool.location()
    );
    match summary.exit {
        ExitCode::Success => log::info!("{line}"),
        ExitCode::Deferred => log::warn!("{line}"),
        _ => log::error!("{line}"),
    }
}
