//! `spool flush` as a library: re-send the spool's due items once each, and file every item
//! under its new state (gone, pending again with a later due time, dead letter, quarantine).
//!
//! Two steps so that the command can read the session key only when there is work:
//! `prepare` (check the spool is usable, remove crash leftovers, adopt abandoned claims, pick
//! the due items) and `run` (claim, send, finish, log one line per item and a summary). Safe to
//! run concurrently with alert actions and other flushers: see the claim protocol in `spool.rs`.
//! Targets are opened through a caller-supplied function, once per (target, account), so that
//! secrets are read at send time and tests can use in-process fakes.

use super::attempt::attempt_once;
use super::deliverer::{DeliveryReport, Final};
use super::ledger::Ledger;
use super::retry::{Backoff, bounded_retry_after, jitter_unit};
use super::spool::{Claim, Spool, SpoolRecord, now_unix};
use super::{Outcome, RejectClass, Target, TargetKind};
use crate::error::{Error, ExitCode, Result};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

/// What one flush should do.
#[derive(Clone, Copy, Debug, Default)]
pub struct FlushOptions {
    /// Send every pending item now, ignoring per-item backoff.
    pub all: bool,
    pub backoff: Backoff,
}

/// One piece of work a flush found.
#[derive(Debug)]
enum Work {
    /// A claim of a crashed flusher, now ours.
    Adopted(PathBuf),
    /// A due pending item (kind and account read when it was picked, when readable).
    Pending { id: String, pair: Option<(TargetKind, String)> },
}

/// The work `prepare` found.
#[derive(Debug, Default)]
pub struct Plan {
    work: Vec<Work>,
    /// Pending items not due yet.
    pub not_due: usize,
}

impl Plan {
    /// Items this flush will try (including adopted claims and unreadable files).
    pub fn due(&self) -> usize {
        self.work.len()
    }
}

/// Counts of one flush, and its exit code (worst of all items).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlushSummary {
    pub delivered: usize,
    pub duplicates: usize,
    pub still_pending: usize,
    pub rejected: usize,
    pub quarantined: usize,
    pub not_due: usize,
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
            exit: ExitCode::Success,
        }
    }
}

/// Checks the spool, cleans up after crashes and picks the due items.
pub fn prepare(spool: &Spool, options: &FlushOptions) -> Result<Plan> {
    spool.check_usable()?;
    let recovery = spool.recover()?;
    for path in &recovery.removed_tmp {
        log::info!("spool: removed {} (a write interrupted by a crash)", path.display());
    }
    for path in &recovery.superseded {
        log::info!("spool: removed {} (a stale claim; the item is pending)", path.display());
    }
    let mut plan = Plan::default();
    for path in recovery.adopted {
        log::info!(
            "spool: {} was being sent by a process that is gone; sending it again",
            path.display()
        );
        plan.work.push(Work::Adopted(path));
    }
    let now = now_unix();
    let mut due: Vec<(f64, Work)> = Vec::new();
    for id in spool.pending_ids()? {
        match spool.peek_pending(&id) {
            None => {} // claimed or delivered meanwhile
            Some(Ok(record)) if options.all || record.next_attempt_unix <= now => {
                let pair = Some((record.item.target, record.item.account.clone()));
                due.push((record.next_attempt_unix, Work::Pending { id, pair }));
            }
            Some(Ok(_)) => plan.not_due += 1,
            // Unreadable: claim it anyway, so that it is quarantined with a line naming it.
            Some(Err(_)) => due.push((0.0, Work::Pending { id, pair: None })),
        }
    }
    due.sort_by(|a, b| a.0.total_cmp(&b.0));
    plan.work.extend(due.into_iter().map(|(_, work)| work));
    Ok(plan)
}

/// Gives adopted claims back to `pending/` untouched (when the flush cannot send anything).
pub fn abandon(spool: &Spool, plan: Plan) -> Result<()> {
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

fn log_quarantined(quarantined: &super::spool::Quarantined) {
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
    spool: &Spool,
    plan: Plan,
    options: &FlushOptions,
    open: &mut Opener,
    on_end: &mut OnEnd,
) -> FlushSummary {
    let ledger = Ledger::new(spool.root());
    let mut summary = FlushSummary::new(plan.not_due);
    let mut targets: HashMap<(TargetKind, String), std::result::Result<Box<dyn Target>, Error>> =
        HashMap::new();
    // (target, account) pairs that asked us to retry later: the rest of their items wait.
    let mut unavailable: HashSet<(TargetKind, String)> = HashSet::new();
    // How many items each unavailable remote kept waiting, for one line per remote.
    let mut waiting: BTreeMap<(&'static str, String), usize> = BTreeMap::new();
    for work in plan.work {
        let claimed = match &work {
            Work::Adopted(path) => spool.open_adopted(path).map(Some),
            Work::Pending { pair: Some(pair), .. } if unavailable.contains(pair) => {
                *waiting.entry((pair.0.as_str(), pair.1.clone())).or_default() += 1;
                summary.still_pending += 1;
                summary.exit = summary.exit.worst(ExitCode::Deferred);
                continue;
            }
            Work::Pending { id, .. } => spool.claim(id),
        };
        let claim = match claimed {
            Ok(None) => continue, // another flusher took it, or it is gone
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
        if unavailable.contains(&pair) {
            let record = claim.record.clone();
            if let Err(error) = spool.finish_retry(claim, &record) {
                return fatal(summary, &error);
            }
            *waiting.entry((pair.0.as_str(), pair.1.clone())).or_default() += 1;
            summary.still_pending += 1;
            summary.exit = summary.exit.worst(ExitCode::Deferred);
            continue;
        }
        let target = targets.entry(pair.clone()).or_insert_with(|| open(pair.0, &pair.1));
        let step = match target {
            Ok(target) => {
                send(spool, &ledger, claim, target.as_mut(), options, &mut summary, on_end)
            }
            Err(error) => cannot_open(spool, claim, error, options, &mut summary),
        };
        match step {
            Ok(Step::Done) => {}
            Ok(Step::RemoteUnavailable) => {
                unavailable.insert(pair);
            }
            Err(error) => return fatal(summary, &error),
        }
    }
    for ((target, account), count) in waiting {
        log::warn!(
            "spool: {count} more {target} item(s) for account {account} not tried in this flush: that remote asked to retry later; they stay pending"
        );
    }
    log_summary(spool, &summary);
    summary
}

enum Step {
    Done,
    RemoteUnavailable,
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
    spool: &Spool,
    ledger: &Ledger,
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
            spool.finish_retry(claim, &record)?;
            summary.still_pending += 1;
            summary.exit = summary.exit.worst(ExitCode::Deferred);
            log::warn!(
                "spool: {} not delivered yet ({}); stays pending, next attempt in {:.0}s",
                describe(&record),
                retry.reason,
                wait.as_secs_f64().ceil()
            );
            Ok(Step::RemoteUnavailable)
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
                path.display(),
                record.id
            );
            on_end(DeliveryReport {
                result: Final::Rejected(rejection.class),
                attempts: record.attempts,
                duration: started.elapsed(),
                delivered: None,
                message: format!("{} (kept as dead letter {})", rejection.reason, path.display()),
                item: record.item,
            });
            Ok(Step::Done)
        }
    }
}

/// The target could not be built (account gone, secret unreadable): nothing was sent; the item
/// stays pending with a later due time, and the exit code says why.
fn cannot_open(
    spool: &Spool,
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
    Ok(Step::RemoteUnavailable)
}

fn reject_code(class: RejectClass) -> ExitCode {
    match class {
        RejectClass::Remote => ExitCode::Rejected,
        RejectClass::Credentials => ExitCode::Credentials,
        RejectClass::Configuration => ExitCode::Configuration,
    }
}

fn fatal(mut summary: FlushSummary, error: &Error) -> FlushSummary {
    crate::logging::fatal(&format!(
        "spool flush stopped: {error}; items being sent stay in the spool and the next flush picks them up"
    ));
    summary.exit = ExitCode::DataAtRisk;
    summary
}

fn log_summary(spool: &Spool, summary: &FlushSummary) {
    let line = format!(
        "spool flush: {} delivered, {} already there, {} still pending, {} rejected (dead letters), {} quarantined, {} not due yet (spool {})",
        summary.delivered,
        summary.duplicates,
        summary.still_pending,
        summary.rejected,
        summary.quarantined,
        summary.not_due,
        spool.root().display()
    );
    match summary.exit {
        ExitCode::Success => log::info!("{line}"),
        ExitCode::Deferred => log::warn!("{line}"),
        _ => log::error!("{line}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::deliverer::tests::Scripted;
    use crate::delivery::spool::item_id;
    use crate::delivery::spool::tests::{record, temp_root};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// A shared scripted target, so that the test can inspect it after the flush.
    struct Shared(Arc<Mutex<Scripted>>);

    impl Target for Shared {
        fn attempt(&mut self, item: &crate::delivery::DeliveryItem) -> Outcome {
            self.0.lock().unwrap().attempt(item)
        }
        fn needs_ledger(&self) -> bool {
            self.0.lock().unwrap().needs_ledger()
        }
    }

    fn options(all: bool) -> FlushOptions {
        FlushOptions { all, backoff: Backoff::with_base(Duration::from_millis(50)) }
    }

    fn flush_with(spool: &Spool, all: bool, target: &Arc<Mutex<Scripted>>) -> FlushSummary {
        let plan = prepare(spool, &options(all)).unwrap();
        let target = target.clone();
        let mut open = move |_: TargetKind, _: &str| -> Result<Box<dyn Target>> {
            Ok(Box::new(Shared(target.clone())))
        };
        run(spool, plan, &options(all), &mut open, &mut |_| {})
    }

    fn files(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir).map(|entries| entries.count()).unwrap_or(0)
    }

    #[test]
    fn due_items_are_sent_once_and_later_ones_wait() {
        let root = temp_root("flush-due");
        let spool = Spool::new(&root);
        spool.put_pending(&record("a")).unwrap();
        spool.put_pending(&record("b")).unwrap();
        let mut later = record("later");
        later.next_attempt_unix = now_unix() + 600.0;
        spool.put_pending(&later).unwrap();
        let target = Arc::new(Mutex::new(Scripted::new(vec![])));
        let summary = flush_with(&spool, false, &target);
        assert_eq!((summary.delivered, summary.not_due, summary.exit), (2, 1, ExitCode::Success));
        let mut sent = target.lock().unwrap().sent.clone();
        sent.sort();
        assert_eq!(sent, vec!["a", "b"]);
        assert_eq!(spool.pending_ids().unwrap(), vec![later.id.clone()]);
        // --all ignores the backoff.
        let summary = flush_with(&spool, true, &target);
        assert_eq!((summary.delivered, summary.exit), (1, ExitCode::Success));
        assert_eq!(files(&spool.pending_dir()) + files(&spool.inflight_dir()), 0);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn retry_keeps_the_item_with_a_growing_due_time_and_spares_the_remote() {
        let root = temp_root("flush-retry");
        let spool = Spool::new(&root);
        spool.put_pending(&record("a")).unwrap();
        spool.put_pending(&record("b")).unwrap();
        let target = Arc::new(Mutex::new(Scripted::new(vec![
            Outcome::retry("connection refused", None),
            Outcome::retry("connection refused", None),
        ])));
        let summary = flush_with(&spool, true, &target);
        assert_eq!((summary.still_pending, summary.exit), (2, ExitCode::Deferred));
        // The second item of the same (target, account) was not tried against a remote that is down.
        assert_eq!(target.lock().unwrap().sent.len(), 1);
        let retried = [item_id("a"), item_id("b")]
            .iter()
            .filter_map(|id| spool.peek_pending(id).and_then(|record| record.ok()))
            .find(|record| record.flushes == 1)
            .unwrap();
        let first_wait = retried.next_attempt_unix - retried.last_attempt_unix;
        // 120 × 50 ms × 2^1 = 12 s, with equal jitter: 6 s to 12 s.
        assert!((6.0..=12.1).contains(&first_wait), "{first_wait}");
        assert_eq!(retried.attempts, 2);
        assert_eq!(retried.last_error, "connection refused");
        let summary = flush_with(&spool, true, &target);
        assert_eq!(summary.still_pending, 2);
        let again = spool.peek_pending(&retried.id).unwrap().unwrap();
        assert!(again.flushes >= 1);
        let summary = flush_with(&spool, true, &target);
        assert_eq!((summary.delivered, summary.exit), (2, ExitCode::Success));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn rejected_items_become_dead_letters_with_the_worst_code() {
        let root = temp_root("flush-reject");
        let spool = Spool::new(&root);
        spool.put_pending(&record("a")).unwrap();
        spool.put_pending(&record("b")).unwrap();
        let target = Arc::new(Mutex::new(Scripted::new(vec![
            Outcome::rejected(RejectClass::Remote, "HTTP 400: bad label"),
            Outcome::rejected(RejectClass::Credentials, "HTTP 401: bad token"),
        ])));
        let summary = flush_with(&spool, false, &target);
        assert_eq!((summary.rejected, summary.exit), (2, ExitCode::Credentials));
        assert_eq!(files(&spool.dead_dir()), 2);
        let listed = spool.list().unwrap();
        assert!(listed.iter().all(|entry| entry.record.as_ref().unwrap().reject_class.is_some()));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_corrupt_item_is_quarantined_and_the_others_still_go() {
        let root = temp_root("flush-corrupt");
        let spool = Spool::new(&root);
        spool.put_pending(&record("good")).unwrap();
        let torn = spool.pending_dir().join(format!("{}.json", item_id("torn")));
        std::fs::write(&torn, br#"{"version":1,"id":"#).unwrap();
        std::fs::write(spool.tmp_dir().join(format!("x.json.{}.0.tmp", u32::MAX - 1)), b"{")
            .unwrap();
        let target = Arc::new(Mutex::new(Scripted::new(vec![])));
        let summary = flush_with(&spool, false, &target);
        assert_eq!((summary.delivered, summary.quarantined), (1, 1));
        assert_eq!(summary.exit, ExitCode::DataAtRisk);
        assert_eq!(target.lock().unwrap().sent, vec!["good"]);
        assert!(spool.quarantine_dir().join(format!("{}.json", item_id("torn"))).is_file());
        assert_eq!(
            files(&spool.pending_dir()) + files(&spool.inflight_dir()) + files(&spool.tmp_dir()),
            0
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn an_item_left_in_flight_by_a_killed_flusher_is_sent() {
        let root = temp_root("flush-adopt");
        let spool = Spool::new(&root);
        let orphan = record("orphan");
        std::fs::create_dir_all(spool.inflight_dir()).unwrap();
        std::fs::write(
            spool.inflight_dir().join(format!("{}.{}.json", orphan.id, u32::MAX - 1)),
            serde_json::to_vec(&orphan).unwrap(),
        )
        .unwrap();
        let target = Arc::new(Mutex::new(Scripted::new(vec![])));
        let summary = flush_with(&spool, false, &target);
        assert_eq!((summary.delivered, summary.exit), (1, ExitCode::Success));
        assert_eq!(target.lock().unwrap().sent, vec!["orphan"]);
        assert_eq!(files(&spool.inflight_dir()), 0);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn the_ledger_turns_a_resend_into_a_duplicate() {
        let root = temp_root("flush-ledger");
        let spool = Spool::new(&root);
        spool.put_pending(&record("a")).unwrap();
        let target = Arc::new(Mutex::new(Scripted::new(vec![])));
        target.lock().unwrap().ledger = true;
        assert_eq!(flush_with(&spool, false, &target).delivered, 1);
        // The same item spooled again (e.g. a re-run of the alert) is not sent twice.
        spool.put_pending(&record("a")).unwrap();
        let summary = flush_with(&spool, false, &target);
        assert_eq!((summary.duplicates, summary.exit), (1, ExitCode::Success));
        assert_eq!(target.lock().unwrap().sent.len(), 1);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_target_that_cannot_be_opened_keeps_its_items_pending() {
        let root = temp_root("flush-open");
        let spool = Spool::new(&root);
        spool.put_pending(&record("a")).unwrap();
        let plan = prepare(&spool, &options(false)).unwrap();
        let mut open = |_: TargetKind, _: &str| -> Result<Box<dyn Target>> {
            Err(Error::Credentials("no secret for soar account default".into()))
        };
        let summary = run(&spool, plan, &options(false), &mut open, &mut |_| {});
        assert_eq!((summary.still_pending, summary.exit), (1, ExitCode::Credentials));
        let kept = spool.peek_pending(&item_id("a")).unwrap().unwrap();
        assert!(kept.last_error.contains("no secret"), "{}", kept.last_error);
        assert_eq!(kept.attempts, 1, "nothing was sent");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn abandoning_gives_adopted_claims_back() {
        let root = temp_root("flush-abandon");
        let spool = Spool::new(&root);
        let orphan = record("orphan");
        std::fs::create_dir_all(spool.inflight_dir()).unwrap();
        std::fs::write(
            spool.inflight_dir().join(format!("{}.{}.json", orphan.id, u32::MAX - 1)),
            serde_json::to_vec(&orphan).unwrap(),
        )
        .unwrap();
        let plan = prepare(&spool, &options(false)).unwrap();
        assert_eq!(plan.due(), 1);
        abandon(&spool, plan).unwrap();
        assert_eq!(spool.pending_ids().unwrap(), vec![orphan.id]);
        assert_eq!(files(&spool.inflight_dir()), 0);
        let _ = std::fs::remove_dir_all(&root);
    }
}
