//! `spool flush` as a library: re-send the spool's items, and file every item under its new
//! state (gone, pending again with a later due time, dead letter, quarantine).
//!
//! Recovery (PRODUCT §11): each run probes every (target, account) once — with its oldest due
//! item, or its oldest item when none is due, so per-item backoff never delays a recovered
//! remote — and, when the remote answers, drains that account's whole backlog oldest first
//! (due items before items still backing off, so one item the remote keeps refusing does not
//! stop the others). A remote that asks to retry later costs that one probe per run; an explicit
//! `Retry-After` holds the account until then. A run is bounded in items and in time
//! (`[delivery] flush_max_items`, `flush_max_s`): what is left waits for the next run.
//!
//! Two steps so that the command can read the session key only when there is work:
//! `prepare` (check the spool is usable, remove crash leftovers, adopt abandoned claims, pick
//! the due items) and `run` (claim, send, finish, log one line per item and a summary). Safe to
//! run concurrently with alert actions and other flushers: see the claim protocol in `outbox/file.rs`.
//! A store may claim several items ahead of sending them (`Store::claim_ahead`: the KV store
//! leases 50 with one read and one write); a claim whose account is found down, or that the
//! run's bound leaves unsent, is given back untouched, and one that waited past
//! `Store::claim_hold` is claimed anew before it is sent.
//! A remote that stays down costs one probe per run and nothing else: a run that found every
//! account with pending items down (or held) leaves an `Outlook` naming each one's probe item,
//! and while the store says nothing else may be pending (`Store::outlook`) the next run claims
//! those probe items by id and reads nothing of the backlog; a probe that is answered (or whose
//! item is gone) drops the outlook and the same run scans and drains (PRODUCT §11, §18).
//! Targets are opened through a caller-supplied function, once per (target, account), so that
//! secrets are read at send time and tests can use in-process fakes.
//!
//! (About 640 lines: one job, the drain loop and its per-item send; the outlook of what a run
//! did not read is in `flush/outlook.rs`, the report in `flush/report.rs`.)

mod outlook;
mod report;

use super::attempt::attempt_once;
use super::deliverer::{DeliveryReport, Final};
use crate::civil_time::now_unix;
use crate::error::{Error, ExitCode, Result};
use crate::item::{Target, TargetKind};
use crate::net::retry::{Backoff, bounded_retry_after, jitter_unit};
use crate::net::{Outcome, RejectClass};
use crate::outbox::ledger::Ledger;
use crate::outbox::record::{Candidate, Claim, Claimed, Outlook, Quarantined, SpoolRecord};
use crate::outbox::store::Store;
use outlook::{count_unread, merged, outlook_of, quick_plan};
pub use report::{AccountReport, AccountState};
use report::{log_account, log_summary};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What one flush should do.
#[derive(Clone, Copy, Debug)]
pub struct FlushOptions {
    /// Send every pending item now, ignoring per-item backoff and the remotes' Retry-After holds.
    pub all: bool,
    pub backoff: Backoff,
    /// Most items one run sends (`[delivery] flush_max_items`).
    pub max_items: usize,
    /// Longest one run keeps starting new items (`[delivery] flush_max_s`).
    pub max_time: Duration,
}

impl Default for FlushOptions {
    fn default() -> Self {
        FlushOptions {
            all: false,
            backoff: Backoff::default(),
            max_items: DEFAULT_MAX_ITEMS,
            max_time: DEFAULT_MAX_TIME,
        }
    }
}

/// Default bound of one run in items: 10,000 items drain in one minute at the §14 rate.
pub const DEFAULT_MAX_ITEMS: usize = 10_000;
/// Default bound of one run in time: less than the scripted input's 60 s interval, so that
/// runs rarely overlap (they may: claims keep them from sending an item twice).
pub const DEFAULT_MAX_TIME: Duration = Duration::from_secs(50);

/// One piece of work a flush found.
#[derive(Debug)]
enum Work {
    /// A claim of a crashed flusher, now ours.
    Adopted(PathBuf),
    /// A pending item (kind and account read when it was picked, when readable).
    Pending { id: String, token: u64, pair: Option<(TargetKind, String)> },
}

/// The work `prepare` found.
#[derive(Debug, Default)]
pub struct Plan {
    work: Vec<Work>,
    /// Pending items of accounts held by the remote's Retry-After.
    pub not_due: usize,
    /// Accounts held by a Retry-After: (target, account) → the time it ends, the pending
    /// items, and the oldest (the probe once the hold ends: id and token).
    held: BTreeMap<Pair, (f64, usize, Option<Probe>)>,
    /// The last run's outlook when this plan is its probes only (nothing else was read).
    quick: Option<Outlook>,
    /// The scan was bounded and left pending items unread: the counts are at least.
    more: bool,
}

impl Plan {
    /// Items this flush will try (including adopted claims and unreadable files).
    pub fn due(&self) -> usize {
        self.work.len()
    }
}

/// Counts of one flush, and its exit code (worst of all items).
#[derive(Clone, Debug, PartialEq)]
pub struct FlushSummary {
    pub delivered: usize,
    pub duplicates: usize,
    pub still_pending: usize,
    pub rejected: usize,
    pub quarantined: usize,
    pub not_due: usize,
    /// Items not reached because the run hit its bound (items or time).
    pub left_for_next_run: usize,
    /// Per (target, account), what this run found.
    pub accounts: Vec<AccountReport>,
    /// The pending counts are at least: the scan read only what the run could send.
    pub counts_capped: bool,
    pub exit: ExitCode,
}

impl FlushSummary {
    fn new(not_due: usize) -> FlushSummary {
        FlushSummary {
            delivered: 0,
            duplicates: 0,
            still_pending: 0,
            rejected: 0,
            quarantined: 0,
            not_due,
            left_for_next_run: 0,
            accounts: Vec::new(),
            counts_capped: false,
            exit: ExitCode::Success,
        }
    }
}

/// Sort key of a pending item within its account: due items first, then oldest first.
type Order = (bool, f64);
/// A (target, account) pair.
type Pair = (TargetKind, String);
/// An item an account is probed with: its id and claim token.
type Probe = (String, u64);

/// Checks the spool, cleans up after crashes and orders the items: for each account its probe
/// first (all probes before any drain), then the drains, each oldest first.
pub fn prepare(spool: &dyn Store, options: &FlushOptions) -> Result<Plan> {
    if !options.all
        && let Some(outlook) = spool.outlook()?
    {
        return Ok(quick_plan(outlook));
    }
    // One more than the run may send, so that an account with more is seen to have more.
    let scan = spool.scan_bounded(options.max_items.saturating_add(1))?;
    let mut plan = Plan { more: scan.more, ..Plan::default() };
    plan.work.extend(scan.adopted.into_iter().map(Work::Adopted));
    let now = now_unix();
    let mut unreadable = Vec::new();
    let mut by_account: BTreeMap<Pair, Vec<(Order, String, u64)>> = BTreeMap::new();
    let mut holds: HashMap<(TargetKind, String), f64> = HashMap::new();
    for Candidate { id, token, record } in scan.pending {
        match record {
            Ok(record) => {
                let pair = (record.target, record.account);
                if record.remote_hold_unix > now {
                    let hold = holds.entry(pair.clone()).or_insert(0.0);
                    *hold = hold.max(record.remote_hold_unix);
                }
                let order = (record.next_attempt_unix > now, record.first_attempt_unix);
                by_account.entry(pair).or_default().push((order, id, token));
            }
            // Unreadable: claim it anyway, so that it is quarantined with a line naming it.
            Err(_) => unreadable.push((id, token)),
        }
    }
    plan.work.extend(unreadable.into_iter().map(|(id, token)| Work::Pending {
        id,
        token,
        pair: None,
    }));
    let mut probes: Vec<(Order, (TargetKind, String), String, u64)> = Vec::new();
    let mut drains: Vec<(Order, (TargetKind, String), String, u64)> = Vec::new();
    for (pair, mut items) in by_account {
        items.sort_by(|a, b| a.0.0.cmp(&b.0.0).then(a.0.1.total_cmp(&b.0.1)));
        if let Some(&until) = holds.get(&pair)
            && !options.all
        {
            plan.not_due += items.len();
            let oldest = items.first().map(|(_, id, token)| (id.clone(), *token));
            plan.held.insert(pair, (until, items.len(), oldest));
            continue;
        }
        let mut items = items.into_iter();
        if let Some((order, id, token)) = items.next() {
            probes.push((order, pair.clone(), id, token));
        }
        drains.extend(items.map(|(order, id, token)| (order, pair.clone(), id, token)));
    }
    for list in [&mut probes, &mut drains] {
        list.sort_by(|a, b| a.0.0.cmp(&b.0.0).then(a.0.1.total_cmp(&b.0.1)));
    }
    plan.work.extend(probes.into_iter().chain(drains).map(|(_, pair, id, token)| Work::Pending {
        id,
        token,
        pair: Some(pair),
    }));
    Ok(plan)
}

/// Gives adopted claims back to `pending/` untouched (when the flush cannot send anything).
pub fn abandon(spool: &dyn Store, plan: Plan) -> Result<()> {
    for work in plan.work {
        if let Work::Adopted(path) = work {
            match spool.open_adopted(&path)? {
                Ok(claim) => {
                    let record = claim.record.clone();
                    spool.finish_retry(claim, &record)?;
                }
                Err(quarantined) => log_quarantined(&quarantined),
            }
        }
    }
    Ok(())
}

fn log_quarantined(quarantined: &Quarantined) {
    log::error!(
        "spool: {} is not a readable item ({}); moved to {} for inspection, it will not be sent",
        quarantined.original.display(),
        quarantined.problem,
        quarantined.moved_to.display()
    );
}

type Opener<'a> = dyn FnMut(TargetKind, &str) -> Result<Box<dyn Target>> + 'a;

/// Sends the plan's items once each. Never fails: spool errors end the flush with exit 8 and a
/// FATAL line naming the path (the item being finished stays claimed, and the next flush
/// adopts it).
/// Called with every item whose journey ended in this flush (delivered, already there, or
/// rejected), so that the caller can leave receipts, ModularAction lines and links for it.
pub type OnEnd<'a> = dyn FnMut(DeliveryReport) + 'a;

pub fn run(
    spool: &dyn Store,
    plan: Plan,
    options: &FlushOptions,
    open: &mut Opener,
    on_end: &mut OnEnd,
) -> FlushSummary {
    let summary = drain(spool, plan, options, open, on_end);
    for report in &summary.accounts {
        log_account(report);
    }
    log_summary(spool, &summary);
    summary
}

/// `run` without its closing lines (a quick run that found a remote back drains in it again).
fn drain(
    spool: &dyn Store,
    plan: Plan,
    options: &FlushOptions,
    open: &mut Opener,
    on_end: &mut OnEnd,
) -> FlushSummary {
    let started = Instant::now();
    let ledger = spool.ledger();
    let mut summary = FlushSummary::new(plan.not_due);
    summary.counts_capped = plan.more;
    let mut targets: HashMap<(TargetKind, String), std::result::Result<Box<dyn Target>, Error>> =
        HashMap::new();
    let mut accounts: BTreeMap<(TargetKind, String), AccountReport> = BTreeMap::new();
    // The item each account was probed with (or, held, will be): the next run's outlook.
    let mut probes: HashMap<Pair, Probe> = HashMap::new();
    for ((kind, account), (until, count, oldest)) in plan.held {
        let mut report = AccountReport::new(kind, &account, AccountState::Held);
        report.pending = count;
        report.next_probe_unix = Some(until);
        report.reason = "the remote asked to retry later (Retry-After)".into();
        if let Some(oldest) = oldest {
            probes.insert((kind, account.clone()), oldest);
        }
        accounts.insert((kind, account), report);
    }
    let quick = plan.quick;
    // A quick run whose probe was answered, or whose probe item is gone: scan and drain.
    let mut rescan = false;
    let mut sent = 0usize;
    let mut bound_hit = false;
    // Claims taken ahead (`Store::claim_ahead`), by item id, with when they were taken.
    let mut ahead: HashMap<String, (Claimed, Instant)> = HashMap::new();
    for index in 0..plan.work.len() {
        let work = &plan.work[index];
        if let Work::Pending { pair: Some(pair), id, .. } = work {
            let down = accounts.get(pair).is_some_and(|r| r.state == AccountState::Down);
            if !down && !bound_hit {
                bound_hit = sent >= options.max_items || started.elapsed() >= options.max_time;
            }
            if down || bound_hit {
                // Not tried: its remote is down (one probe per run), or the run is over. A
                // claim taken ahead for it is given back untouched.
                match ahead.remove(id) {
                    Some((Some(Ok(claim)), _)) => {
                        let record = claim.record.clone();
                        if let Err(error) = spool.finish_retry(claim, &record) {
                            return fatal(summary, &error);
                        }
                    }
                    Some((Some(Err(quarantined)), _)) => {
                        log_quarantined(&quarantined);
                        summary.quarantined += 1;
                        summary.exit = summary.exit.worst(ExitCode::DataAtRisk);
                        continue;
                    }
                    Some((None, _)) => continue, // another flusher has it, or it is gone
                    None => {}
                }
                let report = accounts.entry(pair.clone()).or_insert_with(|| {
                    AccountReport::new(pair.0, &pair.1, AccountState::NotReached)
                });
                report.pending += 1;
                summary.still_pending += 1;
                if !down {
                    summary.left_for_next_run += 1;
                }
                summary.exit = summary.exit.worst(ExitCode::Deferred);
                continue;
            }
        }
        let claimed = match work {
            Work::Adopted(path) => spool.open_adopted(path).map(Some),
            Work::Pending { id, token, pair } => {
                if pair.is_some() && !ahead.contains_key(id) && spool.claim_ahead() > 1 {
                    let budget = options.max_items.saturating_sub(sent);
                    let wanted =
                        claim_list(&plan.work[index..], &accounts, spool.claim_ahead(), budget);
                    match spool.claim_many(&wanted) {
                        Ok(answers) => {
                            let now = Instant::now();
                            for ((id, _), answer) in wanted.into_iter().zip(answers) {
                                ahead.insert(id, (answer, now));
                            }
                        }
                        Err(error) => return fatal(summary, &error),
                    }
                }
                match ahead.remove(id) {
                    // Waited too long for its turn: a new lease (next generation) before sending.
                    Some((Some(Ok(claim)), at)) if at.elapsed() >= spool.claim_hold() => {
                        spool.claim(id, claim.token)
                    }
                    Some((answer, _)) => Ok(answer),
                    None => spool.claim(id, *token),
                }
            }
        };
        let claim = match claimed {
            Ok(None) => {
                rescan |= quick.is_some();
                continue; // another flusher took it, or it is gone
            }
            Ok(Some(Ok(claim))) => claim,
            Ok(Some(Err(quarantined))) => {
                log_quarantined(&quarantined);
                summary.quarantined += 1;
                summary.exit = summary.exit.worst(ExitCode::DataAtRisk);
                continue;
            }
            Err(error) => return fatal(summary, &error),
        };
        let pair = (claim.record.item.target, claim.record.item.account.clone());
        let report = accounts
            .entry(pair.clone())
            .or_insert_with(|| AccountReport::new(pair.0, &pair.1, AccountState::Up));
        if report.state == AccountState::Down {
            // An adopted claim of an account found down meanwhile: back to pending, untried.
            let record = claim.record.clone();
            if let Err(error) = spool.finish_retry(claim, &record) {
                return fatal(summary, &error);
            }
            report.pending += 1;
            summary.still_pending += 1;
            summary.exit = summary.exit.worst(ExitCode::Deferred);
            continue;
        }
        sent = sent.saturating_add(1);
        let probe = (claim.id.clone(), claim.token);
        let before = (summary.delivered, summary.duplicates, summary.rejected);
        let target = targets.entry(pair.clone()).or_insert_with(|| open(pair.0, &pair.1));
        let step = match target {
            Ok(target) => {
                send(spool, ledger.as_ref(), claim, target.as_mut(), options, &mut summary, on_end)
            }
            Err(error) => cannot_open(spool, claim, error, options, &mut summary),
        };
        report.delivered += summary.delivered - before.0;
        report.duplicates += summary.duplicates - before.1;
        report.rejected += summary.rejected - before.2;
        match step {
            Ok(Step::Done) => {
                report.state = AccountState::Up;
                rescan |= quick.is_some();
            }
            Ok(Step::RemoteUnavailable { reason, hold }) => {
                report.state = AccountState::Down;
                report.pending += 1;
                report.reason = reason;
                report.next_probe_unix = hold;
                probes.entry(pair).or_insert(probe);
            }
            Err(error) => return fatal(summary, &error),
        }
    }
    if summary.left_for_next_run > 0 {
        log::warn!(
            "spool: this flush reached its bound ({} items or {:.0}s, [delivery] flush_max_items / flush_max_s); {}{} item(s) wait for the next flush",
            options.max_items,
            options.max_time.as_secs_f64(),
            if summary.counts_capped { "at least " } else { "" },
            summary.left_for_next_run
        );
    }
    if let Err(error) = spool.settle() {
        summary = fatal(summary, &error);
    } else {
        count_unread(quick.as_ref(), &mut accounts, &mut summary);
        let next = if rescan { None } else { outlook_of(&accounts, &probes, &summary) };
        if let Err(error) = spool.save_outlook(next.as_ref()) {
            summary = fatal(summary, &error);
        } else if rescan {
            // A remote is back (or the backlog changed): this same run scans and drains it.
            let options = FlushOptions {
                all: false,
                max_items: options.max_items.saturating_sub(sent),
                max_time: options.max_time.saturating_sub(started.elapsed()),
                ..*options
            };
            let rest = match prepare(spool, &options) {
                Ok(plan) => drain(spool, plan, &options, open, on_end),
                Err(error) => fatal(summary.clone(), &error),
            };
            return merged(summary, accounts, rest);
        }
    }
    summary.accounts = accounts.into_values().collect();
    summary
}

/// The pending items a flush claims ahead from `work` on: at most `most` (and `budget`, the
/// items the run may still send), skipping unreadable items and accounts found down.
fn claim_list(
    work: &[Work],
    accounts: &BTreeMap<(TargetKind, String), AccountReport>,
    most: usize,
    budget: usize,
) -> Vec<(String, u64)> {
    work.iter()
        .filter_map(|work| match work {
            Work::Pending { id, token, pair: Some(pair) }
                if !accounts.get(pair).is_some_and(|r| r.state == AccountState::Down) =>
            {
                Some((id.clone(), *token))
            }
            _ => None,
        })
        .take(most.min(budget.max(1)))
        .collect()
}

enum Step {
    Done,
    /// The remote (or the account) cannot take items now: why, and until when it asked us to wait.
    RemoteUnavailable {
        reason: String,
        hold: Option<f64>,
    },
}

fn describe(record: &SpoolRecord) -> String {
    format!(
        "{} item {} (account {}, dedupe key {}, attempts {})",
        record.item.target.as_str(),
        record.id,
        record.item.account,
        record.item.dedupe_key,
        record.attempts
    )
}

fn send(
    spool: &dyn Store,
    ledger: &dyn Ledger,
    claim: Claim,
    target: &mut dyn Target,
    options: &FlushOptions,
    summary: &mut FlushSummary,
    on_end: &mut OnEnd,
) -> Result<Step> {
    let started = std::time::Instant::now();
    let attempt = attempt_once(ledger, &claim.record.item, target);
    let mut record = claim.record.clone();
    if attempt.sent {
        record.attempts += 1;
    }
    record.last_attempt_unix = now_unix();
    match attempt.outcome {
        Outcome::Delivered(delivered) => {
            spool.finish_delivered(claim)?;
            let remote = delivered
                .remote_id
                .as_ref()
                .map(|id| format!(" remote_id={id}"))
                .unwrap_or_default();
            let note = attempt.ledger_error.map(|error| format!("; {error}")).unwrap_or_default();
            let message = if delivered.duplicate {
                summary.duplicates += 1;
                log::info!(
                    "spool: {} was already delivered{remote}: {}{note}",
                    describe(&record),
                    delivered.message
                );
                format!("delivered by spool flush (already there): {}", delivered.message)
            } else {
                summary.delivered += 1;
                log::info!("spool: {} delivered{remote}{note}", describe(&record));
                format!("delivered by spool flush: {}", delivered.message)
            };
            let result = if delivered.duplicate { Final::Duplicate } else { Final::Delivered };
            on_end(DeliveryReport {
                result,
                attempts: record.attempts,
                duration: started.elapsed(),
                delivered: Some(delivered),
                message,
                item: record.item,
            });
            Ok(Step::Done)
        }
        Outcome::Retry(retry) => {
            record.flushes += 1;
            record.last_error = retry.reason.clone();
            let after = bounded_retry_after(retry.after);
            let wait = options.backoff.spool_delay(record.flushes, after, jitter_unit());
            record.next_attempt_unix = record.last_attempt_unix + wait.as_secs_f64();
            let hold = after.map(|after| record.last_attempt_unix + after.as_secs_f64());
            record.remote_hold_unix = hold.unwrap_or(0.0);
            spool.finish_retry(claim, &record)?;
            summary.still_pending += 1;
            summary.exit = summary.exit.worst(ExitCode::Deferred);
            log::warn!(
                "spool: {} not delivered yet ({}); stays pending",
                describe(&record),
                retry.reason,
            );
            Ok(Step::RemoteUnavailable { reason: retry.reason, hold })
        }
        Outcome::Rejected(rejection) => {
            record.last_error = rejection.reason.clone();
            record.reject_class = Some(rejection.class);
            let path = spool.finish_dead(claim, &record)?;
            summary.rejected += 1;
            summary.exit = summary.exit.worst(reject_code(rejection.class));
            log::error!(
                "spool: {} rejected: {}; kept as dead letter {} (`stackflow spool requeue {}` once fixed)",
                describe(&record),
                rejection.reason,
                path,
                record.id
            );
            on_end(DeliveryReport {
                result: Final::Rejected(rejection.class),
                attempts: record.attempts,
                duration: started.elapsed(),
                delivered: None,
                message: format!("{} (kept as dead letter {})", rejection.reason, path),
                item: record.item,
            });
            Ok(Step::Done)
        }
    }
}

/// The target could not be built (account gone, secret unreadable): nothing was sent; the item
/// stays pending with a later due time, and the exit code says why.
fn cannot_open(
    spool: &dyn Store,
    claim: Claim,
    error: &Error,
    options: &FlushOptions,
    summary: &mut FlushSummary,
) -> Result<Step> {
    let mut record = claim.record.clone();
    record.flushes += 1;
    record.last_error = error.to_string();
    record.last_attempt_unix = now_unix();
    let wait = options.backoff.spool_delay(record.flushes, None, jitter_unit());
    record.next_attempt_unix = record.last_attempt_unix + wait.as_secs_f64();
    spool.finish_retry(claim, &record)?;
    summary.still_pending += 1;
    let code = match error.exit_code() {
        code @ (ExitCode::Configuration | ExitCode::Credentials) => code,
        _ => ExitCode::Deferred,
    };
    summary.exit = summary.exit.worst(code);
    log::error!("spool: {} cannot be sent: {error}; it stays pending", describe(&record));
    Ok(Step::RemoteUnavailable { reason: error.to_string(), hold: None })
}

fn reject_code(class: RejectClass) -> ExitCode {
    match class {
        RejectClass::Remote => ExitCode::Rejected,
        RejectClass::Credentials => ExitCode::Credentials,
        RejectClass::Configuration => ExitCode::Configuration,
    }
}

fn fatal(mut summary: FlushSummary, error: &Error) -> FlushSummary {
    if let Error::Unavailable(_) = error {
        // The KV store (splunkd) is busy or unreachable: nothing is at risk, the items stay
        // pending (or leased until lease_s passes) and the next flush goes on.
        log::error!(
            "spool flush stopped: {error}; the items stay in the spool and the next flush picks them up"
        );
        summary.exit = summary.exit.worst(ExitCode::Deferred);
        return summary;
    }
    crate::logging::fatal(&format!(
        "spool flush stopped: {error}; items being sent stay in the spool and the next flush picks them up"
    ));
    summary.exit = ExitCode::DataAtRisk;
    summary
}

#[cfg(test)]
mod tests;
