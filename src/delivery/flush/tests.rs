use super::*;
use crate::delivery::deliverer::tests::Scripted;
use crate::item::item_id;
use crate::outbox::file::FileStore as Spool;
use crate::outbox::file::tests::{record, temp_root};
use crate::outbox::record::{ItemState, Listed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A shared scripted target, so that the test can inspect it after the flush.
struct Shared(Arc<Mutex<Scripted>>);

impl Target for Shared {
    fn attempt(&mut self, item: &crate::item::DeliveryItem) -> Outcome {
        self.0.lock().unwrap().attempt(item)
    }
    fn needs_ledger(&self) -> bool {
        self.0.lock().unwrap().needs_ledger()
    }
}

fn options(all: bool) -> FlushOptions {
    FlushOptions {
        all,
        backoff: Backoff::with_base(Duration::from_millis(50)),
        ..Default::default()
    }
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

/// An item spooled `age_s` seconds ago, backing off until `due_in_s` from now.
fn aged(key: &str, age_s: f64, due_in_s: f64) -> SpoolRecord {
    let mut record = record(key);
    record.first_attempt_unix = now_unix() - age_s;
    record.next_attempt_unix = now_unix() + due_in_s;
    record
}

#[test]
fn a_recovered_remote_gets_its_whole_backlog_oldest_first_whatever_the_backoff() {
    let root = temp_root("flush-recovered");
    let spool = Spool::new(&root);
    // After a long outage every item sits at a long backoff; none is due.
    spool.put_pending(&aged("newest", 10.0, 3000.0)).unwrap();
    spool.put_pending(&aged("oldest", 30_000.0, 3500.0)).unwrap();
    spool.put_pending(&aged("middle", 600.0, 1200.0)).unwrap();
    let target = Arc::new(Mutex::new(Scripted::new(vec![])));
    let summary = flush_with(&spool, false, &target);
    assert_eq!((summary.delivered, summary.not_due, summary.exit), (3, 0, ExitCode::Success));
    assert_eq!(target.lock().unwrap().sent, vec!["oldest", "middle", "newest"]);
    assert_eq!(summary.accounts.len(), 1);
    let account = &summary.accounts[0];
    assert_eq!((account.state, account.delivered, account.pending), (AccountState::Up, 3, 0));
    assert_eq!(files(&spool.pending_dir()) + files(&spool.inflight_dir()), 0);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn due_items_go_before_items_still_backing_off() {
    let root = temp_root("flush-due-first");
    let spool = Spool::new(&root);
    // The oldest item keeps failing on its own (long backoff); a younger one is due.
    spool.put_pending(&aged("stubborn", 9000.0, 3000.0)).unwrap();
    spool.put_pending(&aged("due", 60.0, -1.0)).unwrap();
    let target = Arc::new(Mutex::new(Scripted::new(vec![])));
    flush_with(&spool, false, &target);
    assert_eq!(target.lock().unwrap().sent, vec!["due", "stubborn"]);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_remote_still_down_costs_one_probe_per_account_per_run() {
    let root = temp_root("flush-probe");
    let spool = Spool::new(&root);
    for n in 0..5 {
        spool.put_pending(&aged(&format!("soar{n}"), 100.0 - n as f64, 0.0)).unwrap();
    }
    let mut other = aged("other-account", 50.0, 0.0);
    other.item.account = "second".into();
    spool.put_pending(&other).unwrap();
    let target = Arc::new(Mutex::new(Scripted::new(
        (0..6).map(|_| Outcome::retry("connection refused", None)).collect(),
    )));
    for run in 1..=3 {
        let summary = flush_with(&spool, false, &target);
        assert_eq!((summary.still_pending, summary.exit), (6, ExitCode::Deferred));
        assert_eq!(target.lock().unwrap().sent.len(), 2 * run, "one probe per account per run");
        let states: Vec<_> = summary.accounts.iter().map(|a| (a.state, a.pending)).collect();
        assert_eq!(states, vec![(AccountState::Down, 5), (AccountState::Down, 1)]);
        assert!(summary.accounts[0].reason.contains("connection refused"));
        assert_eq!(summary.accounts[0].next_probe_unix, None, "next probe: the next flush");
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn retry_after_holds_the_account_until_then() {
    let root = temp_root("flush-hold");
    let spool = Spool::new(&root);
    spool.put_pending(&aged("a", 20.0, 0.0)).unwrap();
    spool.put_pending(&aged("b", 10.0, 0.0)).unwrap();
    let target = Arc::new(Mutex::new(Scripted::new(vec![Outcome::retry(
        "HTTP 429",
        Some(Duration::from_secs(300)),
    )])));
    let summary = flush_with(&spool, false, &target);
    let hold = summary.accounts[0].next_probe_unix.expect("held until the Retry-After");
    assert!((hold - now_unix() - 300.0).abs() < 5.0, "{hold}");
    // The next run does not probe the held account at all.
    let summary = flush_with(&spool, false, &target);
    assert_eq!(target.lock().unwrap().sent.len(), 1);
    assert_eq!((summary.not_due, summary.accounts[0].state), (2, AccountState::Held));
    // --all does.
    let summary = flush_with(&spool, true, &target);
    assert_eq!(summary.delivered, 2);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_run_stops_at_its_item_bound_and_the_next_run_goes_on() {
    let root = temp_root("flush-bound");
    let spool = Spool::new(&root);
    for n in 0..5 {
        spool.put_pending(&aged(&format!("item{n}"), 100.0 - n as f64, 0.0)).unwrap();
    }
    let target = Arc::new(Mutex::new(Scripted::new(vec![])));
    let bounded = FlushOptions { max_items: 2, ..options(false) };
    let run_once = |spool: &Spool| {
        let plan = prepare(spool, &bounded).unwrap();
        let target = target.clone();
        let mut open = move |_: TargetKind, _: &str| -> Result<Box<dyn Target>> {
            Ok(Box::new(Shared(target.clone())))
        };
        run(spool, plan, &bounded, &mut open, &mut |_| {})
    };
    let summary = run_once(&spool);
    assert_eq!((summary.delivered, summary.left_for_next_run), (2, 3));
    assert_eq!(summary.exit, ExitCode::Deferred);
    assert_eq!(run_once(&spool).delivered, 2);
    assert_eq!(run_once(&spool).delivered, 1);
    assert_eq!(target.lock().unwrap().sent, vec!["item0", "item1", "item2", "item3", "item4"]);
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
    std::fs::write(spool.tmp_dir().join(format!("x.json.{}.0.tmp", u32::MAX - 1)), b"{").unwrap();
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

/// The file spool claiming `n` items ahead, as the KV store does (`Store::claim_ahead`).
struct Ahead {
    spool: Spool,
    n: usize,
}

impl Store for Ahead {
    fn location(&self) -> String {
        self.spool.location()
    }
    fn ledger(&self) -> Box<dyn Ledger> {
        Store::ledger(&self.spool)
    }
    fn put(&self, record: &SpoolRecord, state: ItemState) -> Result<String> {
        Store::put(&self.spool, record, state)
    }
    fn scan(&self) -> Result<crate::outbox::record::Scan> {
        Store::scan(&self.spool)
    }
    fn claim(&self, id: &str, token: u64) -> Result<Claimed> {
        Store::claim(&self.spool, id, token)
    }
    fn claim_ahead(&self) -> usize {
        self.n
    }
    fn open_adopted(
        &self,
        path: &std::path::Path,
    ) -> Result<std::result::Result<Claim, crate::outbox::record::Quarantined>> {
        Store::open_adopted(&self.spool, path)
    }
    fn finish_delivered(&self, claim: Claim) -> Result<()> {
        Store::finish_delivered(&self.spool, claim)
    }
    fn finish_retry(&self, claim: Claim, record: &SpoolRecord) -> Result<()> {
        Store::finish_retry(&self.spool, claim, record)
    }
    fn finish_dead(&self, claim: Claim, record: &SpoolRecord) -> Result<String> {
        Store::finish_dead(&self.spool, claim, record)
    }
    fn settle(&self) -> Result<()> {
        Store::settle(&self.spool)
    }
    fn list(&self) -> Result<Vec<Listed>> {
        Store::list(&self.spool)
    }
    fn requeue(&self, ids: &[String]) -> Result<(Vec<String>, Vec<String>)> {
        Store::requeue(&self.spool, ids)
    }
    fn purge(&self, older_than: std::time::Duration) -> Result<Vec<std::path::PathBuf>> {
        Store::purge(&self.spool, older_than)
    }
}

fn flush_ahead(
    store: &Ahead,
    options: &FlushOptions,
    target: &Arc<Mutex<Scripted>>,
) -> FlushSummary {
    let plan = prepare(store, options).unwrap();
    let target = target.clone();
    let mut open = move |_: TargetKind, _: &str| -> Result<Box<dyn Target>> {
        Ok(Box::new(Shared(target.clone())))
    };
    run(store, plan, options, &mut open, &mut |_| {})
}

#[test]
fn claims_taken_ahead_are_sent_in_order() {
    let root = temp_root("flush-ahead-order");
    let store = Ahead { spool: Spool::new(&root), n: 3 };
    for n in 0..7 {
        store.spool.put_pending(&aged(&format!("item{n}"), 100.0 - n as f64, 0.0)).unwrap();
    }
    let target = Arc::new(Mutex::new(Scripted::new(vec![])));
    let summary = flush_ahead(&store, &options(false), &target);
    assert_eq!((summary.delivered, summary.exit), (7, ExitCode::Success));
    let expected: Vec<String> = (0..7).map(|n| format!("item{n}")).collect();
    assert_eq!(target.lock().unwrap().sent, expected);
    assert_eq!(files(&store.spool.pending_dir()) + files(&store.spool.inflight_dir()), 0);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn claims_taken_ahead_for_an_account_found_down_are_given_back_unsent() {
    let root = temp_root("flush-ahead-down");
    let store = Ahead { spool: Spool::new(&root), n: 4 };
    for n in 0..5 {
        store.spool.put_pending(&aged(&format!("soar{n}"), 100.0 - n as f64, 0.0)).unwrap();
    }
    let mut other = aged("other-account", 50.0, 0.0);
    other.item.account = "second".into();
    store.spool.put_pending(&other).unwrap();
    let target = Arc::new(Mutex::new(Scripted::new(
        (0..6).map(|_| Outcome::retry("connection refused", None)).collect(),
    )));
    let summary = flush_ahead(&store, &options(false), &target);
    assert_eq!((summary.still_pending, summary.exit), (6, ExitCode::Deferred));
    assert_eq!(target.lock().unwrap().sent.len(), 2, "one probe per account, nothing more");
    let states: Vec<_> = summary.accounts.iter().map(|a| (a.state, a.pending)).collect();
    assert_eq!(states, vec![(AccountState::Down, 5), (AccountState::Down, 1)]);
    assert_eq!((files(&store.spool.pending_dir()), files(&store.spool.inflight_dir())), (6, 0));
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn claims_taken_ahead_stay_within_the_runs_item_bound() {
    let root = temp_root("flush-ahead-bound");
    let store = Ahead { spool: Spool::new(&root), n: 5 };
    for n in 0..5 {
        store.spool.put_pending(&aged(&format!("item{n}"), 100.0 - n as f64, 0.0)).unwrap();
    }
    let target = Arc::new(Mutex::new(Scripted::new(vec![])));
    let bounded = FlushOptions { max_items: 2, ..options(false) };
    let summary = flush_ahead(&store, &bounded, &target);
    assert_eq!((summary.delivered, summary.left_for_next_run), (2, 3));
    assert_eq!((files(&store.spool.pending_dir()), files(&store.spool.inflight_dir())), (3, 0));
    let _ = std::fs::remove_dir_all(&root);
}
