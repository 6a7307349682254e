//! A per-container claim across processes: SOAR does not deduplicate artifacts, and the
//! target's "which SDIs does the container already hold? post the rest" is two requests, so
//! two runs on the same notables (two analysts running the same ad-hoc action, an alert run
//! and a `spool flush`) could both see an SDI missing and both post it. The check-then-post
//! of one container therefore runs while holding an exclusive OS file lock on
//! `<spool_dir>/locks/soar-<hash of account and container SDI>.lock` (`std::fs::File::try_lock`:
//! `flock` on Unix, `LockFileEx` on Windows), which the OS releases when the holder exits or
//! is killed, so a crash never leaves a claim behind.
//!
//! The claim is local to one machine; on a search head cluster the KV store spool's leases
//! keep members from sending the same item (PRODUCT §11).

use crate::delivery::Outcome;
use crate::delivery::spool::item_id;
use crate::error::{Error, Result};
use crate::settings::Settings;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How often a waiting process tries the lock again.
const POLL: Duration = Duration::from_millis(20);

/// Where the claims of one account live, and how long to wait for one.
pub struct ContainerClaims {
    dir: PathBuf,
    account: String,
    /// Lock file prefix and what is claimed, for messages (`soar`, "SOAR container").
    prefix: &'static str,
    what: &'static str,
    /// A holder is doing at most a few requests of `[delivery] timeout_s` each; waiting longer
    /// than this means it is stuck, and the item is retried later instead.
    patience: Duration,
}

/// A held claim; dropping it releases the lock.
#[derive(Debug)]
pub struct Claim {
    _file: File,
}

impl ContainerClaims {
    pub fn new(settings: &Settings, account: &str) -> Result<ContainerClaims> {
        let delivery = settings.delivery()?;
        Ok(ContainerClaims {
            dir: delivery.spool_dir.join("locks"),
            account: account.to_string(),
            prefix: "soar",
            what: "SOAR container",
            patience: delivery.timeout.saturating_mul(3),
        })
    }

    pub fn in_dir(dir: PathBuf, account: &str, patience: Duration) -> ContainerClaims {
        ContainerClaims {
            dir,
            account: account.to_string(),
            prefix: "soar",
            what: "SOAR container",
            patience,
        }
    }

    /// The same claims for another shared object (a Slack storm): `<prefix>-<hash>.lock`.
    pub fn for_kind(
        settings: &Settings,
        account: &str,
        prefix: &'static str,
        what: &'static str,
    ) -> Result<ContainerClaims> {
        Ok(ContainerClaims { prefix, what, ..ContainerClaims::new(settings, account)? })
    }

    /// Waits (up to the patience) for the claim on the container with this SDI. A claim that
    /// cannot be had is a retry: the item stays spooled and nothing is posted twice.
    pub fn claim(&self, container_sdi: &str) -> std::result::Result<Claim, Outcome> {
        let file = self.open(container_sdi).map_err(|error| {
            Outcome::retry(format!("cannot take the {} claim: {error}", self.what), None)
        })?;
        let deadline = Instant::now() + self.patience;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Claim { _file: file }),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(POLL)
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(Outcome::retry(
                        format!(
                            "another stackflow process has been sending to the same {} for over {} s; will retry",
                            self.what,
                            self.patience.as_secs()
                        ),
                        None,
                    ));
                }
                Err(TryLockError::Error(error)) => {
                    return Err(Outcome::retry(
                        format!("cannot lock the {} claim: {error}", self.what),
                        None,
                    ));
                }
            }
        }
    }

    fn open(&self, container_sdi: &str) -> Result<File> {
        std::fs::create_dir_all(&self.dir).map_err(|error| Error::Spool {
            path: self.dir.clone(),
            detail: format!("cannot create the claims folder: {error}"),
        })?;
        let name = format!(
            "{}-{}.lock",
            self.prefix,
            item_id(&format!("{}\n{container_sdi}", self.account))
        );
        let path = self.dir.join(name);
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|error| Error::Spool { path, detail: format!("cannot open: {error}") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let dir = std::env::temp_dir().join(format!("stackflow-claims-{}", std::process::id()));
        let claims = ContainerClaims::in_dir(dir.clone(), "default", Duration::from_millis(60));
        let held = claims.claim("sid-1").expect("first claim");
        match claims.claim("sid-1") {
            Err(Outcome::Retry(retry)) => {
                assert!(retry.reason.contains("another"), "{}", retry.reason)
            }
            other => panic!("expected a retry, got {other:?}"),
        }
        let other_container = claims.claim("sid-2").expect("other containers are free");
        drop(held);
        drop(other_container);
        claims.claim("sid-1").expect("released on drop");
        let _ = std::fs::remove_dir_all(dir);
    }
}
