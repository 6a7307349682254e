//! One attempt at an item with everything that keeps it from duplicating around it: for a
//! remote that does not deduplicate (StackFlow's webhook, Slack), the ledger of delivered keys,
//! the *sending* marker written before the request leaves, and — when an earlier attempt's
//! answer was lost — a lookup on the remote before anything is sent again. Shared by the alert
//! run's deliverer and `spool flush`.
//!
//! The marker stays only while the outcome is truly unknown (PRODUCT §15): an answer that says
//! the request was not taken (429, `ratelimited`, a refused connection, a refusal) clears it,
//! and a lookup that cannot work for a lasting reason sends again with a WARN naming the
//! possible duplicate — an alert is never held forever for bookkeeping.

use crate::civil_time::now_unix;
use crate::item::{DeliveryItem, Lookup, Target};
use crate::net::{Delivered, Outcome};
use crate::outbox::ledger::{Ledger, LedgerEntry};

/// One attempt with the ledger around it (see `attempt_once`).
#[derive(Clone, Debug)]
pub struct Attempt {
    pub outcome: Outcome,
    /// False when the local ledger or a lookup that found the item answered: nothing was sent.
    pub sent: bool,
    /// A problem recording the delivery in the ledger (the item was delivered all the same).
    pub ledger_error: Option<String>,
}

/// Seconds subtracted from a sending marker's time when asking the remote, for clock skew
/// between this host and the remote's `created_at` / Slack's `ts`.
const CLOCK_SKEW_S: i64 = 300;

/// One attempt at `item`. For a target without server-side dedupe the ledger is consulted
/// first (a hit is a duplicate, nothing is sent); a *sending* marker left by an earlier
/// attempt whose outcome is unknown makes us ask the remote before sending again; the marker
/// is written before the send and cleared once the answer is known; the ledger entry is
/// written only after the remote confirmed. Shared by the alert run and `spool flush`.
pub fn attempt_once(ledger: &dyn Ledger, item: &DeliveryItem, target: &mut dyn Target) -> Attempt {
    if !target.needs_ledger() {
        return Attempt { outcome: target.attempt(item), sent: true, ledger_error: None };
    }
    let key = &item.dedupe_key;
    let unreadable = |error: crate::error::Error| Attempt {
        outcome: Outcome::retry(
            format!("the delivery ledger cannot be read now ({error}); not sent until it can be"),
            None,
        ),
        sent: false,
        ledger_error: None,
    };
    let (known, since) = match (ledger.get(key), ledger.sending_since(key)) {
        (Ok(known), Ok(since)) => (known, since),
        (Err(error), _) | (_, Err(error)) => return unreadable(error),
    };
    if let Some(entry) = known {
        return Attempt {
            outcome: Outcome::Delivered(Delivered {
                remote_id: entry.remote_id,
                remote_url: entry.remote_url,
                duplicate: true,
                details: entry.details,
                message: "already delivered earlier (ledger); not sent again".into(),
            }),
            sent: false,
            ledger_error: None,
        };
    }
    if let Some(started) = since {
        match target.find_delivered(item, started.saturating_sub(CLOCK_SKEW_S)) {
            Lookup::Found(mut delivered) => {
                delivered.duplicate = true;
                delivered.message = format!(
                    "an earlier attempt whose answer was lost had delivered it ({}); not sent again",
                    delivered.message
                );
                let ledger_error = record(ledger, key, &delivered);
                return Attempt {
                    outcome: Outcome::Delivered(delivered),
                    sent: false,
                    ledger_error,
                };
            }
            Lookup::Absent => {
                log::info!(
                    "{key}: an earlier attempt's answer was lost; the remote does not have it, sending again"
                )
            }
            Lookup::Unknown(reason) => {
                return Attempt {
                    outcome: Outcome::retry(
                        format!(
                            "an earlier attempt's answer was lost and the remote cannot be asked now whether it arrived ({reason}); not sent again until it can be"
                        ),
                        None,
                    ),
                    // The lookup was a request to the remote: it counts as an attempt.
                    sent: true,
                    ledger_error: None,
                };
            }
            Lookup::Impossible(reason) => log::warn!(
                "{key}: an earlier attempt's answer was lost and the remote cannot be asked whether it arrived ({reason}); sending again: possible duplicate of {key} (see docs/delivery.md)"
            ),
            Lookup::Unsupported => log::warn!(
                "{key}: an earlier attempt's answer was lost and this account cannot look the item up (see docs/delivery.md); sending again: possible duplicate of {key}"
            ),
        }
    }
    let started = now_unix() as i64;
    match ledger.mark_sending(key, started) {
        Ok(()) => {}
        // The KV store ledger does not answer: another member could not tell that this send
        // happened if its answer were lost, so nothing is sent now.
        Err(error @ crate::error::Error::Unavailable(_)) => return unreadable(error),
        Err(error) => {
            log::warn!("{error}; if this attempt's answer is lost, a retry may duplicate the item")
        }
    }
    let outcome = target.attempt(item);
    let ledger_error = match &outcome {
        Outcome::Delivered(delivered) => record(ledger, key, delivered),
        // The remote refused, or said it did not take the request: nothing was created, and
        // the next attempt sends directly.
        Outcome::Rejected(_) => {
            ledger.clear_sending(key);
            None
        }
        Outcome::Retry(retry) if !retry.maybe_taken => {
            ledger.clear_sending(key);
            None
        }
        // The answer may have been lost after the remote acted: the marker stays.
        Outcome::Retry(_) => None,
    };
    Attempt { outcome, sent: true, ledger_error }
}

/// Records a confirmed delivery and clears the sending marker (kept when the entry could not
/// be written, so that the next attempt asks the remote instead of sending blind).
fn record(ledger: &dyn Ledger, key: &str, delivered: &Delivered) -> Option<String> {
    let entry = LedgerEntry {
        dedupe_key: key.to_string(),
        remote_id: delivered.remote_id.clone(),
        remote_url: delivered.remote_url.clone(),
        details: delivered.details.clone(),
        delivered_unix: now_unix(),
    };
    match ledger.record(&entry) {
        Ok(()) => {
            ledger.clear_sending(key);
            None
        }
        Err(error) => {
            log::warn!("{error}; a replay will ask the remote before sending this item again");
            Some(error.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::file::tests::{item, temp_root};
    use crate::outbox::ledger::file::FileLedger;

    /// A remote without dedupe whose lookups answer from a script.
    struct Remote {
        attempts: Vec<Outcome>,
        lookups: Vec<Lookup>,
        sent: usize,
        asked: Vec<i64>,
    }

    impl Target for Remote {
        fn attempt(&mut self, _: &DeliveryItem) -> Outcome {
            self.sent += 1;
            self.attempts.remove(0)
        }
        fn needs_ledger(&self) -> bool {
            true
        }
        fn find_delivered(&mut self, _: &DeliveryItem, since_unix: i64) -> Lookup {
            self.asked.push(since_unix);
            self.lookups.remove(0)
        }
    }

    fn delivered(id: &str) -> Delivered {
        Delivered { remote_id: Some(id.into()), ..Delivered::default() }
    }

    #[test]
    fn a_lost_answer_is_looked_up_before_anything_is_sent_again() {
        let root = temp_root("attempt-found");
        let ledger = FileLedger::new(&root);
        let item = item("k1");
        let mut remote = Remote {
            attempts: vec![Outcome::retry("connection reset", None)],
            lookups: vec![Lookup::Found(delivered("INC7"))],
            sent: 0,
            asked: Vec::new(),
        };
        let first = attempt_once(&ledger, &item, &mut remote);
        assert!(matches!(first.outcome, Outcome::Retry(_)));
        let marked =
            ledger.sending_since("k1").unwrap().expect("the marker outlives a lost answer");
        let second = attempt_once(&ledger, &item, &mut remote);
        match second.outcome {
            Outcome::Delivered(found) => {
                assert!(found.duplicate);
                assert_eq!(found.remote_id.as_deref(), Some("INC7"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!((remote.sent, second.sent), (1, false), "nothing sent the second time");
        assert_eq!(remote.asked, vec![marked - CLOCK_SKEW_S]);
        assert_eq!(ledger.sending_since("k1").unwrap(), None, "cleared once the answer is known");
        assert_eq!(ledger.get("k1").unwrap().unwrap().remote_id.as_deref(), Some("INC7"));
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn an_unanswerable_lookup_waits_and_an_absent_item_is_sent() {
        let root = temp_root("attempt-unknown");
        let ledger = FileLedger::new(&root);
        let item = item("k2");
        let mut remote = Remote {
            attempts: vec![Outcome::retry("timeout", None), Outcome::Delivered(delivered("M1"))],
            lookups: vec![Lookup::Unknown("API down".into()), Lookup::Absent],
            sent: 0,
            asked: Vec::new(),
        };
        attempt_once(&ledger, &item, &mut remote);
        let waited = attempt_once(&ledger, &item, &mut remote);
        assert!(
            matches!(waited.outcome, Outcome::Retry(ref retry) if retry.reason.contains("API down"))
        );
        assert_eq!(remote.sent, 1, "not sent blind");
        let sent = attempt_once(&ledger, &item, &mut remote);
        assert!(matches!(sent.outcome, Outcome::Delivered(ref d) if !d.duplicate));
        assert_eq!(remote.sent, 2);
        assert_eq!(ledger.sending_since("k2").unwrap(), None);
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn a_known_answer_clears_the_marker_and_the_next_attempt_sends_directly() {
        let root = temp_root("attempt-429");
        let ledger = FileLedger::new(&root);
        let item = item("k4");
        let mut remote = Remote {
            attempts: vec![
                Outcome::not_taken("HTTP 429: ratelimited", None),
                Outcome::Delivered(delivered("M2")),
            ],
            lookups: Vec::new(),
            sent: 0,
            asked: Vec::new(),
        };
        attempt_once(&ledger, &item, &mut remote);
        assert_eq!(ledger.sending_since("k4").unwrap(), None, "a 429 is an answer");
        let sent = attempt_once(&ledger, &item, &mut remote);
        assert!(matches!(sent.outcome, Outcome::Delivered(ref d) if !d.duplicate));
        assert!(remote.asked.is_empty(), "no lookup");
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn a_lookup_that_cannot_work_sends_again() {
        let root = temp_root("attempt-impossible");
        let ledger = FileLedger::new(&root);
        let item = item("k5");
        let mut remote = Remote {
            attempts: vec![Outcome::retry("reset", None), Outcome::Delivered(delivered("M3"))],
            lookups: vec![Lookup::Impossible("missing_scope".into())],
            sent: 0,
            asked: Vec::new(),
        };
        attempt_once(&ledger, &item, &mut remote);
        let again = attempt_once(&ledger, &item, &mut remote);
        assert!(matches!(again.outcome, Outcome::Delivered(ref d) if !d.duplicate));
        assert_eq!((remote.sent, remote.asked.len()), (2, 1));
        assert_eq!(ledger.sending_since("k5").unwrap(), None);
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn a_refusal_clears_the_marker() {
        let root = temp_root("attempt-refused");
        let ledger = FileLedger::new(&root);
        let mut remote = Remote {
            attempts: vec![Outcome::rejected(crate::net::RejectClass::Remote, "400")],
            lookups: Vec::new(),
            sent: 0,
            asked: Vec::new(),
        };
        attempt_once(&ledger, &item("k3"), &mut remote);
        assert_eq!(ledger.sending_since("k3").unwrap(), None);
        let _ = std::fs::remove_dir_all(root);
    }
}
