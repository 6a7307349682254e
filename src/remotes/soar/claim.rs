//! A per-container claim across processes: SOAR does not deduplicate artifacts, and the
//! target's "which SDIs does the container already hold? post the rest" is two requests, so
//! two runs on the same notables (two analysts running the same ad-hoc action, an alert run
//! and a `spool flush`) could both see an SDI missing and both post it. The check-then-post
//! of one container therefore runs while holding an exclusive OS file lock on
//! `<spool_dir>/locks/soar-<hash of account and container SDI>.lock` (`std::fs::File::try_lock`:
//! `flock` on Unix, `LockFileEx` on Windows), which the OS releases when the holder exits or
//! is killed, so a crash never leaves a claim behind.
//!
//! Each holder writes its process token into the lock file while it holds the claim, so the
//! next holder can tell whether somebody else held it since its own last turn: a process that
//! created the container itself skips the pre-check of later batches only while nobody else
//! has touched the container in between.
//!
//! The claim is local to one machine; on a search head cluster the KV store spool's leases
//! keep members from sending the same item (PRODUCT §11).

use crate::delivery::Outcome;
use crate::delivery::spool::item_id;
use crate::error::{Error, Result};
use crate::settings::Settings;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::OnceLock;
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
    /// Another process held this claim since this process last did (or this process never
    /// did): what this process remembers about the container may be stale.
    pub others_since: bool,
}

/// This process's token in lock files: pid and start time, unique across processes.
fn process_token() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{}:{started}", std::process::id())
    })
}

/// Reads the previous holder's token and writes ours (the lock is held).
fn take_turn(file: &mut File) -> std::io::Result<bool> {
    let mut previous = String::new();
    file.seek(SeekFrom::Start(0))?;
    file.take(256).read_to_string(&mut previous)?;
    let token = process_token();
    if previous != token {
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(token.as_bytes())?;
    }
    Ok(previous != token)
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
                Ok(()) => {
                    let mut file = file;
                    // Unreadable token: assume the worst (someone else held it).
                    let others_since = take_turn(&mut file).unwrap_or(true);
                    return Ok(Claim { _file: file, others_since });
                }
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

    fn path(&self, container_sdi: &str) -> PathBuf {
        let name = format!(
            "{}-{}.lock",
            self.prefix,
            item_id(&format!("{}\n{container_sdi}", self.account))
        );
        self.dir.join(name)
    }

    fn open(&self, container_sdi: &str) -> Result<File> {
        std::fs::create_dir_all(&self.dir).map_err(|error| Error::Spool {
            path: self.dir.clone(),
            detail: format!("cannot create the claims folder: {error}"),
        })?;
        let path = self.path(container_sdi);
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
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
        assert!(held.others_since, "never held by this process before");
        match claims.claim("sid-1") {
            Err(Outcome::Retry(retry)) => {
                assert!(retry.reason.contains("another"), "{}", retry.reason)
            }
            other => panic!("expected a retry, got {other:?}"),
        }
        let other_container = claims.claim("sid-2").expect("other containers are free");
        drop(held);
        drop(other_container);
        let again = claims.claim("sid-1").expect("released on drop");
        assert!(!again.others_since, "nobody else held it in between");
        drop(again);
        // Another process's turn (its token in the file) makes the next claim say so.
        std::fs::write(claims.path("sid-1"), "1:2").unwrap();
        assert!(claims.claim("sid-1").unwrap().others_since);
        assert!(!claims.claim("sid-1").unwrap().others_since);
        let _ = std::fs::remove_dir_all(dir);
    }
}
