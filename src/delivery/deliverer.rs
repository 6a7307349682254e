//! Turns attempts into a final result for one item: retry with backoff inside the run's time
//! budget, then spool what is still undeliverable, dead-letter what was rejected, and consult
//! the ledger for remotes that do not deduplicate.
//!
//! Invariant: an item is reported `Delivered` only when the remote said so; when neither the
//! remote nor the spool took it, the report says `Lost` (exit 8) and names the spool path.
//! Durations from outside (the run's budget from `maxtime`, a remote's `Retry-After`) are
//! bounded before they meet the clock, so no value of theirs can overflow it.

use super::attempt::attempt_once;
use crate::civil_time::now_unix;
use crate::error::{Error, ExitCode};
use crate::item::{DeliveryItem, Target, item_id};
use crate::net::retry::{Backoff, bounded_retry_after, jitter_unit};
use crate::net::{Delivered, Outcome, RejectClass};
use crate::outbox::file::FileStore;
use crate::outbox::ledger::Ledger;
use crate::outbox::ledger::file::FileLedger;
use crate::outbox::record::{ItemState, RECORD_VERSION, SpoolRecord, SpoolRecordView};
use crate::outbox::store::Store;
use crate::settings::DeliverySettings;
use std::time::{Duration, Instant};

/// How an item ended in this run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Final {
    Delivered,
    /// The remote (or the ledger) already had it.
    Duplicate,
    /// Safely in the spool; `spool flush` will retry.
    Spooled,
    /// Refused for good; kept as a dead letter.
    Rejected(RejectClass),
    /// Neither delivered nor spooled: data at risk.
    Lost,
}

impl Final {
    pub fn exit_code(self) -> ExitCode {
        match self {
            Final::Delivered | Final::Duplicate => ExitCode::Success,
            Final::Spooled => ExitCode::Deferred,
            Final::Rejected(RejectClass::Remote) => ExitCode::Rejected,
            Final::Rejected(RejectClass::Credentials) => ExitCode::Credentials,
            Final::Rejected(RejectClass::Configuration) => ExitCode::Configuration,
            Final::Lost => ExitCode::DataAtRisk,
        }
    }

    /// The receipt's `outcome` word (PRODUCT §4).
    pub fn outcome_word(self) -> &'static str {
        match self {
            Final::Delivered => "delivered",
            Final::Duplicate => "duplicate",
            Final::Spooled => "spooled",
            Final::Rejected(_) => "rejected",
            Final::Lost => "lost",
        }
    }

    pub fn is_success(self) -> bool {
        matches!(self, Final::Delivered | Final::Duplicate)
    }
}

/// What happened to one item.
#[derive(Clone, Debug)]
pub struct DeliveryReport {
    pub item: DeliveryItem,
    pub result: Final,
    pub attempts: u32,
    pub duration: Duration,
    pub delivered: Option<Delivered>,
    pub message: String,
}

impl DeliveryReport {
    /// A string from `Delivered.details` (strings as-is, numbers as text), the first of `keys`.
    pub fn detail(&self, keys: &[&str]) -> Option<String> {
        let details = &self.delivered.as_ref()?.details;
        keys.iter().find_map(|key| match details.get(*key)? {
            serde_json::Value::String(text) if !text.is_empty() => Some(text.clone()),
            serde_json::Value::Number(number) => Some(number.to_string()),
            _ => None,
        })
    }

    pub fn exit_code(&self) -> ExitCode {
        self.result.exit_code()
    }
}

pub struct Deliverer {
    /// The local file spool of the write-ahead claim of the item being sent.
    spool: FileStore,
    /// Where items this run cannot deliver go (`outbox::open`: files, or a cluster member's
    /// KV store, so that any member can flush them).
    outbox: Box<dyn Store>,
    ledger: Box<dyn Ledger>,
    max_attempts: u32,
    backoff: Backoff,
    deadline: Instant,
}

impl Deliverer {
    /// `budget` is the time this run may spend retrying (derived from the action's maxtime).
    pub fn new(spool_root: &std::path::Path, max_attempts: u32, budget: Duration) -> Deliverer {
        Deliverer {
            spool: FileStore::new(spool_root),
            outbox: Box::new(FileStore::new(spool_root)),
            ledger: Box::new(FileLedger::new(spool_root)),
            max_attempts: max_attempts.max(1),
            backoff: Backoff::default(),
            deadline: deadline_after(budget),
        }
    }

    /// The deliverer an alert run uses: `[delivery]` settings and the run's time budget.
    pub fn from_settings(delivery: &DeliverySettings, budget: Duration) -> Deliverer {
        Deliverer::new(&delivery.spool_dir, delivery.max_attempts, budget)
            .with_backoff(Backoff::with_base(delivery.retry_base))
    }

    /// Spools to `outbox` and keeps the ledger that goes with it (`outbox::open`: the KV
    /// store on a search head cluster member). The write-ahead claim of an item being sent
    /// stays a local file (it needs a local fsync; the next flush on this member adopts it
    /// after a crash).
    pub fn with_outbox(mut self, outbox: Box<dyn Store>) -> Deliverer {
        self.ledger = outbox.ledger();
        self.outbox = outbox;
        self
    }

    /// Puts `record` in the outbox. Returns where it went.
    fn put(&self, record: &SpoolRecord, state: ItemState) -> Result<String, Error> {
        self.outbox.put(record, state)
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Deliverer {
        self.backoff = backoff;
        self
    }

    pub fn spool(&self) -> &FileStore {
        &self.spool
    }

    /// Delivers one item, retrying transient failures while attempts and time remain.
    ///
    /// While it is being sent the item is claimed in the spool (`inflight/<id>.<pid>.json`):
    /// if this process is killed mid-send, the next `spool flush` adopts and re-sends it.
    pub fn deliver(&mut self, item: DeliveryItem, target: &mut dyn Target) -> DeliveryReport {
        let first_attempt_unix = now_unix();
        let write_ahead =
            if target.needs_ledger() && matches!(self.ledger.get(&item.dedupe_key), Ok(Some(_))) {
                None // a duplicate: nothing will be sent
            } else {
                let wait = self.backoff.spool_delay(0, None, jitter_unit());
                let id = item_id(&item.dedupe_key);
                let record = SpoolRecordView {
                    version: RECORD_VERSION,
                    id: &id,
                    item: &item,
                    attempts: 0,
                    first_attempt_unix,
                    last_attempt_unix: first_attempt_unix,
                    next_attempt_unix: first_attempt_unix + wait.as_secs_f64(),
                    last_error: "the alert run sending it was interrupted",
                    flushes: 0,
                };
                match self.spool.write_ahead(&record) {
                    Ok(claim) => Some(claim),
                    Err(error) => {
                        log::debug!("{error}; sending without a write-ahead claim");
                        None
                    }
                }
            };
        let report = self.deliver_claimed(item, target, first_attempt_unix);
        if matches!(report.result, Final::Delivered | Final::Duplicate | Final::Rejected(_)) {
            self.spool.forget_pending(&item_id(&report.item.dedupe_key));
        }
        if let Some(claim) = write_ahead {
            // When even the spool failed (Lost), the claim is the last copy: leave it.
            if report.result != Final::Lost {
                self.spool.drop_write_ahead(claim);
            }
        }
        report
    }

    fn deliver_claimed(
        &mut self,
        item: DeliveryItem,
        target: &mut dyn Target,
        first_attempt_unix: f64,
    ) -> DeliveryReport {
        let started = Instant::now();
        let mut attempts = 0;
        let mut last_error = String::new();
        let mut last_after = None;
        loop {
            if Instant::now() >= self.deadline {
                if last_error.is_empty() {
                    last_error = "the run's time budget (maxtime) is spent".into();
                }
                break;
            }
            let attempt = attempt_once(self.ledger.as_ref(), &item, target);
            if attempt.sent {
                attempts += 1;
            }
            match attempt.outcome {
                Outcome::Delivered(delivered) => {
                    let result =
                        if delivered.duplicate { Final::Duplicate } else { Final::Delivered };
                    let message = match attempt.ledger_error {
                        Some(error) => format!("{}; {error}", delivered.message),
                        None => delivered.message.clone(),
                    };
                    return DeliveryReport {
                        item,
                        result,
                        attempts,
                        duration: started.elapsed(),
                        delivered: Some(delivered),
                        message,
                    };
                }
                Outcome::Rejected(rejection) => {
                    let report = self.dead_letter(
                        item,
                        rejection.class,
                        &rejection.reason,
                        attempts,
                        first_attempt_unix,
                    );
                    return DeliveryReport { duration: started.elapsed(), ..report };
                }
                Outcome::Retry(retry) => {
                    last_error = retry.reason.clone();
                    last_after = bounded_retry_after(retry.after);
                    if attempts >= self.max_attempts {
                        break;
                    }
                    let delay = self.backoff.delay(attempts, last_after, jitter_unit());
                    let remaining = self.deadline.saturating_duration_since(Instant::now());
                    if delay >= remaining {
                        log::warn!(
                            "{} item {}: attempt {attempts} failed ({}); the next retry ({:.1}s) would not fit in the run's time budget",
                            item.target.as_str(),
                            item.context.rid,
                            retry.reason,
                            delay.as_secs_f64()
                        );
                        break;
                    }
                    log::warn!(
                        "{} item {}: attempt {attempts} failed ({}); retrying in {:.1}s",
                        item.target.as_str(),
                        item.context.rid,
                        retry.reason,
                        delay.as_secs_f64()
                    );
                    std::thread::sleep(delay);
                }
            }
        }
        let report = self.defer_after(item, attempts, &last_error, first_attempt_unix, last_after);
        DeliveryReport { duration: started.elapsed(), ..report }
    }

    /// Puts an item in the spool for `spool flush`.
    pub fn defer(
        &mut self,
        item: DeliveryItem,
        attempts: u32,
        reason: &str,
        first_attempt_unix: f64,
    ) -> DeliveryReport {
        self.defer_after(item, attempts, reason, first_attempt_unix, None)
    }

    /// `defer`, not before the remote's `Retry-After` when it gave one.
    pub fn defer_after(
        &mut self,
        item: DeliveryItem,
        attempts: u32,
        reason: &str,
        first_attempt_unix: f64,
        retry_after: Option<Duration>,
    ) -> DeliveryReport {
        let now = now_unix();
        let wait = self.backoff.spool_delay(0, retry_after, jitter_unit());
        let next = now + wait.as_secs_f64();
        let record = spool_record(item, attempts, reason, first_attempt_unix, next, None);
        let written = self.put(&record, ItemState::Pending);
        let item = record.item;
        match written {
            Ok(place) => DeliveryReport {
                item,
                result: Final::Spooled,
                attempts,
                duration: Duration::ZERO,
                delivered: None,
                message: format!(
                    "not delivered yet ({reason}); spooled as {place} for `stackflow spool flush`"
                ),
            },
            Err(error) => lost(item, attempts, reason, &error),
        }
    }

    /// Keeps a rejected item as a dead letter (also used for items that cannot be attempted
    /// at all, e.g. when the account's secret is missing).
    pub fn dead_letter(
        &mut self,
        item: DeliveryItem,
        class: RejectClass,
        reason: &str,
        attempts: u32,
        first_attempt_unix: f64,
    ) -> DeliveryReport {
        let now = now_unix();
        let record = spool_record(item, attempts, reason, first_attempt_unix, now, Some(class));
        let written = self.put(&record, ItemState::Dead);
        let item = record.item;
        match written {
            Ok(place) => DeliveryReport {
                item,
                result: Final::Rejected(class),
                attempts,
                duration: Duration::ZERO,
                delivered: None,
                message: format!("{reason} (kept as dead letter {place})"),
            },
            Err(error) => lost(item, attempts, reason, &error),
        }
    }
}

/// No run is given more than a day: splunkd's `maxtime` stops an alert action long before.
const MAX_BUDGET: Duration = Duration::from_secs(24 * 3600);

/// The instant a run's budget ends. The budget comes from the configuration (`maxtime`), so it
/// is bounded first and added with `checked_add` (an `Instant` overflows far sooner than a
/// `Duration`); were even that to fail, the budget is spent and items go to the spool.
fn deadline_after(budget: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(budget.min(MAX_BUDGET)).unwrap_or(now)
}

/// What the spool keeps of an item the run could not deliver; the item is moved in, not
/// copied (a SOAR batch can be large).
fn spool_record(
    item: DeliveryItem,
    attempts: u32,
    reason: &str,
    first_attempt_unix: f64,
    next_attempt_unix: f64,
    reject_class: Option<RejectClass>,
) -> SpoolRecord {
    SpoolRecord {
        version: RECORD_VERSION,
        id: item_id(&item.dedupe_key),
        item,
        attempts,
        first_attempt_unix,
        last_attempt_unix: now_unix(),
        next_attempt_unix,
        last_error: reason.to_string(),
        reject_class,
        flushes: 0,
        remote_hold_unix: 0.0,
    }
}

fn lost(item: DeliveryItem, attempts: u32, reason: &str, error: &Error) -> DeliveryReport {
    DeliveryReport {
        item,
        result: Final::Lost,
        attempts,
        duration: Duration::ZERO,
        delivered: None,
        message: format!("not delivered ({reason}) and {error}: this item is at risk"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::outbox::file::tests::{item, temp_root};
    use std::collections::VecDeque;

    /// A target that answers from a script (then delivers), counting what it was sent.
    pub(crate) struct Scripted {
        pub answers: VecDeque<Outcome>,
        pub sent: Vec<String>,
        pub ledger: bool,
    }

    impl Scripted {
        pub(crate) fn new(answers: Vec<Outcome>) -> Scripted {
            Scripted { answers: answers.into(), sent: Vec::new(), ledger: false }
        }
    }

    impl Target for Scripted {
        fn attempt(&mut self, item: &DeliveryItem) -> Outcome {
            self.sent.push(item.dedupe_key.clone());
            self.answers.pop_front().unwrap_or_else(|| {
                Outcome::Delivered(Delivered {
                    remote_id: Some(format!("R-{}", self.sent.len())),
                    ..Delivered::default()
                })
            })
        }

        fn needs_ledger(&self) -> bool {
            self.ledger
        }
    }

    fn fast(root: &std::path::Path, max_attempts: u32) -> Deliverer {
        Deliverer::new(root, max_attempts, Duration::from_secs(30))
            .with_backoff(Backoff::with_base(Duration::from_millis(1)))
    }

    fn busy() -> Outcome {
        Outcome::retry("HTTP 503", None)
    }

    #[test]
    fn transient_failures_are_retried_until_delivered() {
        let root = temp_root("retry");
        let mut target = Scripted::new(vec![busy(), busy()]);
        let report = fast(&root, 5).deliver(item("a"), &mut target);
        assert_eq!((report.result, report.attempts), (Final::Delivered, 3));
        assert_eq!(target.sent.len(), 3);
        assert!(!root.join("pending").exists());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn exhausted_attempts_spool_the_item_with_what_a_resend_needs() {
        let root = temp_root("exhaust");
        let mut target = Scripted::new(vec![busy(), busy(), busy()]);
        let report = fast(&root, 2).deliver(item("b"), &mut target);
        assert_eq!((report.result, report.attempts), (Final::Spooled, 2));
        assert_eq!(report.exit_code(), ExitCode::Deferred);
        let record = FileStore::new(&root).peek_pending(&item_id("b")).unwrap().unwrap();
        assert_eq!(record.item, item("b"));
        assert_eq!((record.attempts, record.last_error.as_str()), (2, "HTTP 503"));
        assert!(record.next_attempt_unix > record.last_attempt_unix);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn retry_after_is_waited_for() {
        let root = temp_root("after");
        let after = Duration::from_millis(300);
        let mut target = Scripted::new(vec![Outcome::retry("HTTP 429", Some(after))]);
        let started = Instant::now();
        let report = fast(&root, 3).deliver(item("c"), &mut target);
        assert_eq!(report.result, Final::Delivered);
        assert!(started.elapsed() >= after, "{:?}", started.elapsed());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_retry_that_does_not_fit_the_budget_spools_instead_of_waiting() {
        let root = temp_root("budget");
        let mut target =
            Scripted::new(vec![Outcome::retry("HTTP 429", Some(Duration::from_secs(3600)))]);
        let mut deliverer = Deliverer::new(&root, 5, Duration::from_secs(5));
        let report = deliverer.deliver(item("d"), &mut target);
        assert_eq!((report.result, target.sent.len()), (Final::Spooled, 1));
        let record = FileStore::new(&root).peek_pending(&item_id("d")).unwrap().unwrap();
        assert!(record.next_attempt_unix - record.last_attempt_unix >= 3599.0);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn any_budget_and_any_retry_after_are_bounded() {
        let root = temp_root("bounds");
        // A target may build its answer by hand (not through `Outcome::retry`).
        let after = Some(Duration::MAX);
        let mut target = Scripted::new(vec![Outcome::Retry(crate::net::RetryLater {
            reason: "HTTP 429".into(),
            after,
            maybe_taken: false,
        })]);
        let mut deliverer = Deliverer::new(&root, 1, Duration::MAX);
        let report = deliverer.deliver(item("j"), &mut target);
        assert_eq!((report.result, target.sent.len()), (Final::Spooled, 1));
        let record = FileStore::new(&root).peek_pending(&item_id("j")).unwrap().unwrap();
        let wait = record.next_attempt_unix - record.last_attempt_unix;
        assert!((3599.0..=3601.0).contains(&wait), "{wait}");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn rejections_become_dead_letters_without_retry() {
        let root = temp_root("reject");
        for (class, code) in [
            (RejectClass::Remote, ExitCode::Rejected),
            (RejectClass::Credentials, ExitCode::Credentials),
            (RejectClass::Configuration, ExitCode::Configuration),
        ] {
            let mut target = Scripted::new(vec![Outcome::rejected(class, "HTTP 400: bad label")]);
            let report = fast(&root, 5).deliver(item("e"), &mut target);
            assert_eq!((report.exit_code(), target.sent.len()), (code, 1));
            assert!(report.message.contains("bad label"), "{}", report.message);
        }
        let dead =
            std::fs::read_to_string(root.join("dead").join(format!("{}.json", item_id("e"))))
                .unwrap();
        assert!(dead.contains("bad label"), "{dead}");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn an_unusable_spool_is_reported_lost_naming_the_path() {
        let root = temp_root("lost");
        std::fs::create_dir_all(root.parent().unwrap()).unwrap();
        std::fs::write(&root, b"file").unwrap();
        let spool_root = root.join("spool");
        let mut target = Scripted::new(vec![busy()]);
        let report = fast(&spool_root, 1).deliver(item("f"), &mut target);
        assert_eq!((report.result, report.exit_code()), (Final::Lost, ExitCode::DataAtRisk));
        assert!(report.message.contains(&root.display().to_string()), "{}", report.message);
        assert!(report.delivered.is_none());
        let _ = std::fs::remove_file(&root);
    }

    #[test]
    fn the_ledger_prevents_a_second_send() {
        let root = temp_root("ledger");
        let mut target = Scripted::new(vec![]);
        target.ledger = true;
        let first = fast(&root, 5).deliver(item("g"), &mut target);
        assert_eq!(first.result, Final::Delivered);
        let second = fast(&root, 5).deliver(item("g"), &mut target);
        assert_eq!((second.result, second.attempts), (Final::Duplicate, 0));
        assert_eq!(second.delivered.unwrap().remote_id.as_deref(), Some("R-1"));
        assert_eq!(target.sent.len(), 1);
        // A target that dedupes by itself never consults the ledger.
        let mut plain = Scripted::new(vec![]);
        fast(&root, 5).deliver(item("g"), &mut plain);
        assert_eq!(plain.sent.len(), 1);
        let _ = std::fs::remove_dir_all(&root);
    }

    /// Looks at the spool while it is being sent, as a kill at that instant would leave it.
    struct Peeking {
        root: std::path::PathBuf,
        seen: Vec<SpoolRecord>,
    }

    impl Target for Peeking {
        fn attempt(&mut self, _item: &DeliveryItem) -> Outcome {
            for entry in std::fs::read_dir(self.root.join("inflight")).unwrap() {
                let bytes = std::fs::read(entry.unwrap().path()).unwrap();
                self.seen.push(serde_json::from_slice(&bytes).unwrap());
            }
            Outcome::Delivered(Delivered::default())
        }
    }

    #[test]
    fn delivering_an_item_settles_an_older_spooled_copy() {
        let root = temp_root("settle");
        let mut target = Scripted::new(vec![busy()]);
        assert_eq!(fast(&root, 1).deliver(item("i"), &mut target).result, Final::Spooled);
        assert!(FileStore::new(&root).peek_pending(&item_id("i")).is_some());
        assert_eq!(fast(&root, 1).deliver(item("i"), &mut target).result, Final::Delivered);
        assert!(FileStore::new(&root).peek_pending(&item_id("i")).is_none());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn an_item_is_claimed_in_the_spool_while_it_is_sent() {
        let root = temp_root("write-ahead");
        let mut target = Peeking { root: root.clone(), seen: Vec::new() };
        let report = fast(&root, 5).deliver(item("h"), &mut target);
        assert_eq!(report.result, Final::Delivered);
        assert_eq!(target.seen.len(), 1, "one claim while sending");
        assert_eq!(target.seen[0].item, item("h"));
        assert_eq!(std::fs::read_dir(root.join("inflight")).unwrap().count(), 0);
        assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);
        let _ = std::fs::remove_dir_all(&root);
    }
}
