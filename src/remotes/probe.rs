//! What a read-only probe of a remote (`stackflow check`, `| stackflowcheck`) found: a one-line
//! note when it worked, else a reason and its place in the exit-code table (PRODUCT §4).
//! Statuses and transport failures are classified by `delivery::classify`, as for deliveries.

use crate::error::ExitCode;
use crate::net::classify::{StatusClass, classify_status};
use crate::net::http::HttpResponse;
use crate::net::{Outcome, RejectClass};

/// A failed probe: why, and which exit code it stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeFailure {
    pub reason: String,
    pub code: ExitCode,
}

pub type ProbeResult = Result<String, ProbeFailure>;

impl ProbeFailure {
    pub fn new(reason: impl Into<String>, code: ExitCode) -> ProbeFailure {
        ProbeFailure { reason: reason.into(), code }
    }
}

/// Turns a probe's failed outcome into a reason and code. In a probe, a request refused for
/// its content (404 on a read-only GET) means the URL points at the wrong place: configuration.
pub fn failure(outcome: Outcome, credentials_hint: &str) -> ProbeFailure {
    match outcome {
        Outcome::Retry(retry) => {
            ProbeFailure::new(format!("unreachable now: {}", retry.reason), ExitCode::Deferred)
        }
        Outcome::Rejected(rejection) => match rejection.class {
            RejectClass::Configuration => {
                ProbeFailure::new(rejection.reason, ExitCode::Configuration)
            }
            RejectClass::Credentials => ProbeFailure::new(
                format!("{}{credentials_hint}", rejection.reason),
                ExitCode::Credentials,
            ),
            RejectClass::Remote => ProbeFailure::new(
                format!("{}: is the URL right?", rejection.reason),
                ExitCode::Configuration,
            ),
        },
        Outcome::Delivered(delivered) => ProbeFailure::new(delivered.message, ExitCode::Internal),
    }
}

/// A response's status, by the shared table.
pub fn judge(
    response: &HttpResponse,
    what: &str,
    credentials_hint: &str,
) -> Result<(), ProbeFailure> {
    match classify_status(response, what) {
        StatusClass::Success => Ok(()),
        StatusClass::Failed(outcome) => Err(failure(outcome, credentials_hint)),
    }
}

/// What to tell the admin when a secret was refused.
pub fn credentials_hint(user: &str) -> String {
    format!(
        "; the secret \"{user}\" in storage/passwords (realm \"stackflow\") is wrong: update it on the app's setup page or with `stackflow secret set {user}`"
    )
}
