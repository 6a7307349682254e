//! Turns attempts into a final result for one item: retry with backoff inside the run's time
//! budget, then spool what is still undeliverable, dead-letter what was rejected, and consult
//! the ledger for remotes that do not deduplicate.
//!
//! Invariant: an item is reported `Delivered` only when the remote said so; when neither the
//! remote nor the spool took it, the report says `Lost` (exit 8) and names the spool path.

use super::ledger::{Ledger, LedgerEntry};
use super::retry::{Backoff, jitter_unit};
use super::spool::{RECORD_VERSION, Spool, SpoolRecord, item_id, now_unix};
use super::{Delivered, DeliveryItem, Outcome, RejectClass, Target};
use crate::error::{Error, ExitCode};
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
    pub fn exit_code(&self) -> ExitCode {
        self.result.exit_code()
    }
}

pub struct Deliverer {
    spool: Spool,
    ledger: Ledger,
    max_attempts: u32,
    backoff: Backoff,
    deadline: Instant,
}

impl Deliverer {
    /// `budget` is the time this run may spend retrying (derived from the action's maxtime).
    pub fn new(spool_root: &std::path::Path, max_attempts: u32, budget: Duration) -> Deliverer {
        Deliverer {
            spool: Spool::new(spool_root),
            ledger: Ledger::new(spool_root),
            max_attempts: max_attempts.max(1),
            backoff: Backoff::default(),
            deadline: Instant::now() + budget,
        }
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Deliverer {
        self.backoff = backoff;
        self
    }

    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    /// Delivers one item, retrying transient failures while attempts and time remain.
    pub fn deliver(&mut self, item: DeliveryItem, target: &mut dyn Target) -> DeliveryReport {
        let started = Instant::now();
        let first_attempt_unix = now_unix();
        if target.needs_ledger() {
            if let Some(entry) = self.ledger.get(&item.dedupe_key) {
                let delivered = Delivered {
                    remote_id: entry.remote_id,
                    remote_url: entry.remote_url,
                    duplicate: true,
                    details: entry.details,
                    message: "already delivered (ledger)".into(),
                };
                return DeliveryReport {
                    item,
                    result: Final::Duplicate,
                    attempts: 0,
                    duration: started.elapsed(),
                    delivered: Some(delivered),
                    message: "already delivered earlier; not sent again".into(),
                };
            }
        }
        let mut attempts = 0;
        let mut last_error = String::new();
        loop {
            if Instant::now() >= self.deadline {
                if last_error.is_empty() {
                    last_error = "the run's time budget (maxtime) is spent".into();
                }
                break;
            }
            attempts += 1;
            match target.attempt(&item) {
                Outcome::Delivered(delivered) => {
                    let result =
                        if delivered.duplicate { Final::Duplicate } else { Final::Delivered };
                    let mut message = delivered.message.clone();
                    if target.needs_ledger() {
                        let entry = LedgerEntry {
                            dedupe_key: item.dedupe_key.clone(),
                            remote_id: delivered.remote_id.clone(),
                            remote_url: delivered.remote_url.clone(),
                            details: delivered.details.clone(),
                            delivered_unix: now_unix(),
                        };
                        if let Err(error) = self.ledger.record(&entry) {
                            log::warn!("{error}; a replay could send this item again");
                            message = format!("{message}; {error}");
                        }
                    }
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
                    if attempts >= self.max_attempts {
                        break;
                    }
                    let delay = self.backoff.delay(attempts, retry.after, jitter_unit());
                    let remaining = self.deadline.saturating_duration_since(Instant::now());
                    if delay >= remaining {
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
        let report = self.defer(item, attempts, &last_error, first_attempt_unix);
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
        let now = now_unix();
        let record = SpoolRecord {
            version: RECORD_VERSION,
            id: item_id(&item.dedupe_key),
            item: item.clone(),
            attempts,
            first_attempt_unix,
            last_attempt_unix: now,
            next_attempt_unix: now + 60.0,
            last_error: reason.to_string(),
            reject_class: None,
        };
        match self.spool.put_pending(&record) {
            Ok(path) => DeliveryReport {
                item,
                result: Final::Spooled,
                attempts,
                duration: Duration::ZERO,
                delivered: None,
                message: format!(
                    "not delivered yet ({reason}); spooled as {} for `stackflow spool flush`",
                    path.display()
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
        let record = SpoolRecord {
            version: RECORD_VERSION,
            id: item_id(&item.dedupe_key),
            item: item.clone(),
            attempts,
            first_attempt_unix,
            last_attempt_unix: now,
            next_attempt_unix: now,
            last_error: reason.to_string(),
            reject_class: Some(class),
        };
        match self.spool.put_dead(&record) {
            Ok(path) => DeliveryReport {
                item,
                result: Final::Rejected(class),
                attempts,
                duration: Duration::ZERO,
                delivered: None,
                message: format!("{reason} (kept as dead letter {})", path.display()),
            },
            Err(error) => lost(item, attempts, reason, &error),
        }
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
