//! What one attempt at a remote came to: delivered, retry later, or rejected — HTTP status is
//! data, never an error. Every remote's client (targets and the splunkd client alike) answers
//! with an `Outcome`; `classify` makes one from a status or a transport failure.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The result of one attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Delivered(Delivered),
    Retry(RetryLater),
    Rejected(Rejection),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Delivered {
    pub remote_id: Option<String>,
    pub remote_url: Option<String>,
    /// The remote already had it (SOAR `existing_container_id`, a ledger hit).
    pub duplicate: bool,
    /// Target-specific facts worth keeping (e.g. Slack `channel` and `ts`).
    pub details: serde_json::Map<String, serde_json::Value>,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RetryLater {
    pub reason: String,
    /// The remote's `Retry-After`, when it said (at most `retry::MAX_RETRY_AFTER` when built
    /// with `Outcome::retry`; the deliverer and the flusher bound it again all the same).
    pub after: Option<Duration>,
    /// Whether the remote may have acted on the request (a timeout or reset after it was
    /// written, an ambiguous answer). False when the answer says it was not taken (429,
    /// `ratelimited`, a refused connection, a TLS failure before the request): for a remote
    /// without dedupe the sending marker is then cleared and the next attempt sends directly.
    pub maybe_taken: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RejectClass {
    /// The remote refused the content (4xx, SOAR `failed`): exit 6.
    Remote,
    /// The remote refused our credentials (401/403), or none could be read: exit 5.
    Credentials,
    /// Our configuration cannot work (untrusted certificate, bad URL, unknown account): exit 4.
    Configuration,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub reason: String,
    pub class: RejectClass,
}

impl Outcome {
    /// Retry later, after at least `after` (bounded by `retry::MAX_RETRY_AFTER`).
    pub fn retry(reason: impl Into<String>, after: Option<Duration>) -> Outcome {
        Outcome::Retry(RetryLater {
            reason: reason.into(),
            after: super::retry::bounded_retry_after(after),
            maybe_taken: true,
        })
    }

    /// Retry later, the remote having said that it did not take the request (see
    /// `RetryLater::maybe_taken`).
    pub fn not_taken(reason: impl Into<String>, after: Option<Duration>) -> Outcome {
        Outcome::Retry(RetryLater {
            reason: reason.into(),
            after: super::retry::bounded_retry_after(after),
            maybe_taken: false,
        })
    }

    pub fn rejected(class: RejectClass, reason: impl Into<String>) -> Outcome {
        Outcome::Rejected(Rejection { reason: reason.into(), class })
    }
}
