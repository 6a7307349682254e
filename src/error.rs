//! The crate's one error type and the exit-code table every command shares.
//!
//! An `Error` names what failed and where (file, stanza, key, row, URL); its `exit_code`
//! places it in the documented table of PRODUCT §4. HTTP statuses are never errors here:
//! they are classified into delivery outcomes (`delivery::Outcome`). Secrets never appear in
//! an error message: nothing that holds a `Secret` can be formatted into one.

use std::fmt;
use std::path::PathBuf;

/// Process exit codes (PRODUCT §4). The numbers are a contract with the acceptance suite,
/// with the README and with splunkd.log searches: never renumber.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ExitCode {
    /// Every item delivered (or already there), or nothing to send.
    Success = 0,
    /// Bad invocation or payload: no `--execute`, XML payload, malformed JSON.
    BadInvocation = 2,
    /// Bad results: `results_file` missing, unreadable, corrupt gzip, truncated or malformed CSV.
    BadResults = 3,
    /// Configuration: unknown account, missing or invalid setting, TLS certificate not trusted.
    Configuration = 4,
    /// Credentials: secret missing or unreadable, or the remote answered 401/403.
    Credentials = 5,
    /// Rejected by the remote (other 4xx, SOAR `failed`); kept as a dead letter.
    Rejected = 6,
    /// Deferred: not delivered yet, safely spooled; `spool flush` will retry.
    Deferred = 7,
    /// Could not deliver and could not spool: data at risk.
    DataAtRisk = 8,
    /// Internal error (a bug).
    Internal = 9,
}

impl ExitCode {
    /// Rank for "the worst wins" when items end differently: 8, 9, 4, 5, 6, 7, 0 (and 2, 3,
    /// which stop a run before any item exists, rank with the invocation errors).
    fn severity(self) -> u8 {
        match self {
            ExitCode::DataAtRisk => 9,
            ExitCode::Internal => 8,
            ExitCode::BadInvocation => 7,
            ExitCode::BadResults => 6,
            ExitCode::Configuration => 5,
            ExitCode::Credentials => 4,
            ExitCode::Rejected => 3,
            ExitCode::Deferred => 2,
            ExitCode::Success => 0,
        }
    }

    /// The worse of two outcomes, by the order of PRODUCT §4.
    pub fn worst(self, other: ExitCode) -> ExitCode {
        if other.severity() > self.severity() { other } else { self }
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Everything that can stop a command. Each variant carries the context a Splunk admin needs
/// to fix the problem without reading the source.
#[derive(Debug)]
pub enum Error {
    /// The process was started the wrong way (missing `--execute`, bad arguments).
    Invocation(String),
    /// The alert payload on stdin is not the JSON splunkd sends.
    Payload(String),
    /// The results file cannot be read as Splunk's gzip CSV.
    Results { path: PathBuf, detail: String },
    /// A setting is missing or invalid.
    Config { file: String, stanza: String, key: String, problem: String },
    /// A secret is missing or unreadable, or the remote refused our credentials.
    Credentials(String),
    /// The remote refused the item for good (not retryable).
    Rejected(String),
    /// A service we need (the local splunkd) could not be reached now; worth retrying later.
    Unavailable(String),
    /// A filesystem operation failed.
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
    /// The spool could not take an item: the data is at risk.
    Spool { path: PathBuf, detail: String },
    /// The chunked search protocol was violated (by splunkd or by us).
    Protocol(String),
    /// A bug: something the program assumed cannot happen did.
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Invocation(_) | Error::Payload(_) | Error::Protocol(_) => {
                ExitCode::BadInvocation
            }
            Error::Results { .. } => ExitCode::BadResults,
            Error::Config { .. } => ExitCode::Configuration,
            Error::Credentials(_) => ExitCode::Credentials,
            Error::Rejected(_) => ExitCode::Rejected,
            Error::Unavailable(_) => ExitCode::Deferred,
            Error::Spool { .. } => ExitCode::DataAtRisk,
            Error::Io { .. } | Error::Internal(_) => ExitCode::Internal,
        }
    }

    /// Reports the error on stderr the one way every command does — a `FATAL` line when data
    /// is at risk or it is a bug, an `ERROR` line otherwise — and answers its exit code.
    pub fn report(&self) -> ExitCode {
        let code = self.exit_code();
        if code == ExitCode::DataAtRisk || code == ExitCode::Internal {
            crate::logging::fatal(&self.to_string());
        } else {
            log::error!("{self}");
        }
        code
    }

    /// A configuration problem in `stackflow.conf`.
    pub fn config(stanza: &str, key: &str, problem: impl Into<String>) -> Error {
        Error::Config {
            file: "stackflow.conf".into(),
            stanza: stanza.into(),
            key: key.into(),
            problem: problem.into(),
        }
    }

    pub fn results(path: impl Into<PathBuf>, detail: impl Into<String>) -> Error {
        Error::Results { path: path.into(), detail: detail.into() }
    }

    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io { op, path: path.into(), source }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invocation(message) => write!(f, "bad invocation: {message}"),
            Error::Payload(message) => write!(f, "bad alert payload: {message}"),
            Error::Results { path, detail } => {
                write!(f, "bad results file {}: {detail}", path.display())
            }
            Error::Config { file, stanza, problem, .. } if stanza.is_empty() => {
                write!(f, "configuration: {file}: {problem}")
            }
            Error::Config { file, stanza, key, problem } if key.is_empty() => {
                write!(f, "configuration: {file} [{stanza}]: {problem}")
            }
            Error::Config { file, stanza, key, problem } => {
                write!(f, "configuration: {file} [{stanza}] {key}: {problem}")
            }
            Error::Credentials(message) => write!(f, "credentials: {message}"),
            Error::Rejected(message) => write!(f, "rejected: {message}"),
            Error::Unavailable(message) => write!(f, "unavailable: {message}"),
            Error::Io { op, path, source } => write!(f, "cannot {op} {}: {source}", path.display()),
            Error::Spool { path, detail } => {
                write!(f, "cannot spool to {}: {detail}", path.display())
            }
            Error::Protocol(message) => write!(f, "search protocol: {message}"),
            Error::Internal(message) => {
                write!(f, "internal error (a bug, please report it): {message}")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ExitCode::*;

    #[test]
    fn worst_follows_the_documented_order() {
        let order = [DataAtRisk, Internal, Configuration, Credentials, Rejected, Deferred, Success];
        for (i, better_or_equal) in order.iter().enumerate() {
            for worse in &order[..=i] {
                assert_eq!(better_or_equal.worst(*worse), *worse);
                assert_eq!(worse.worst(*better_or_equal), *worse);
            }
        }
    }
}
