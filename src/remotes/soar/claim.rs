//! A per-container claim across processes: SOAR does not deduplicate artifacts, and the
//! target's "which SDIs does the container already hold? post the rest" is two requests, so
//! two runs on the same notables (two analysts running the same ad-hoc action, an alert run
//! and a `spool flush`) could both see an SDI missing and both post it. The check-then-post
//! of one container therefore runs while holding an exclusive OS file lock on one slot of a
//! fixed lock table, `<spool_dir>/locks/soar-<slot>.lock` with the slot a hash of account and
//! container SDI (`std::fs::File::try_lock`: `flock` on Unix, `LockFileEx` on Windows), which
//! the OS releases when the holder exits or is killed, so a crash never leaves a claim behind.
//! The table has `SLOTS` files whatever the number of containers ever sent to (a drain of
//! 100,000 containers used to leave 100,000 lock files): two containers that share a slot are
//! merely not sent to at the same instant.
//!
//! Each holder writes its process token and the container's hash into the slot while it holds
//! the claim, so the next holder can tell whether somebody else held the container's slot
//! since its own last turn on that container: a process that created the container itself
//! skips the pre-check of later batches only while nobody else has touched the slot in
//! between (a turn of another container in the slot counts as somebody else: a pre-check too
//! many, never one too few).
//!
//! The claim is local to one machine; on a search head cluster the KV store spool's leases
//! keep members from sending the same item (PRODUCT §11).
//!
//! `spool flush` removes lock files nobody holds and nobody has taken anew for a day
//! (`sweep_stale`: the per-container files of earlier versions, and idle slots). A process may
//! have opened such a file just before it went: a claim therefore counts only once the locked
//! file is still the one at the path, else it opens the path again (the usual rule for lock
//! files that get removed).

use crate::error::{Error, Result};
use crate::item::item_id;
use crate::net::Outcome;
use crate::settings::Settings;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How often a waiting process tries the lock again.
const POLL: Duration = Duration::from_millis(20);

/// Lock files that no new holder has taken for this long are removed by `spool flush`.
pub const STALE_AFTER: Duration = Duration::from_secs(24 * 3600);

/// Slots of the lock table, per kind of claim (`soar`, `storm`): the most lock files a kind
/// ever leaves, and how many containers can be sent to at the same instant.
pub const SLOTS: u64 = 64;

/// The folder of the claims under a spool folder.
pub fn claims_dir(spool_dir: &Path) -> PathBuf {
    spool_dir.join("locks")
}

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

/// Reads the previous holder's turn and writes ours, `<process token> <container>` (the lock
/// is held).
fn take_turn(file: &mut File, container: &str) -> std::io::Result<bool> {
    let mut previous = String::new();
    file.seek(SeekFrom::Start(0))?;
    file.take(256).read_to_string(&mut previous)?;
    let token = format!("{} {container}", process_token());
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
            dir: claims_dir(&delivery.spool_dir),
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
        let cannot_open = |error: Error| {
            Outcome::retry(format!("cannot take the {} claim: {error}", self.what), None)
        };
        let mut file = self.open(container_sdi).map_err(cannot_open)?;
        let deadline = Instant::now() + self.patience;
        loop {
            match file.try_lock() {
                Ok(()) if !still_at(&file, &self.path(container_sdi)) => {
                    // Removed by a sweep after this process opened it: a lock on a file
                    // nobody else will open again is no claim.
                    file = self.open(container_sdi).map_err(cannot_open)?;
                }
                Ok(()) => {
                    // Unreadable token: assume the worst (someone else held it).
                    let container = self.container(container_sdi);
                    let others_since = take_turn(&mut file, &container).unwrap_or(true);
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

    /// Removes the lock files under `spool_dir` that nobody holds and that no new holder has
    /// taken for `STALE_AFTER` (each is removed while this process holds its lock); returns
    /// how many. Files it cannot read or lock are left for a later run.
    pub fn sweep_stale(spool_dir: &Path) -> usize {
        let Ok(entries) = std::fs::read_dir(claims_dir(spool_dir)) else {
            return 0;
        };
        let now = std::time::SystemTime::now();
        let stale = |path: &Path| {
            std::fs::metadata(path)
                .and_then(|metadata| metadata.modified())
                .ok()
                .and_then(|modified| now.duration_since(modified).ok())
                .is_some_and(|age| age >= STALE_AFTER)
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|extension| extension != "lock") || !stale(&path) {
                continue;
            }
            let Ok(file) = OpenOptions::new().read(true).write(true).open(&path) else {
                continue;
            };
            if file.try_lock().is_ok()
                && still_at(&file, &path)
                && stale(&path)
                && std::fs::remove_file(&path).is_ok()
            {
                removed += 1;
            }
        }
        removed
    }

    /// The container's hash (account and SDI), 32 hex digits.
    fn container(&self, container_sdi: &str) -> String {
        item_id(&format!("{}\n{container_sdi}", self.account))
    }

    /// The container's slot of the lock table.
    fn path(&self, container_sdi: &str) -> PathBuf {
        // Both halves of the hash folded (FNV's low bits alone spread poorly).
        let hash = u128::from_str_radix(&self.container(container_sdi), 16).unwrap_or(0);
        let slot = ((hash >> 64) as u64 ^ hash as u64) % SLOTS;
        self.dir.join(format!("{}-{slot:02}.lock", self.prefix))
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

/// Whether `path` still names `file` (not removed, not replaced by another file).
#[cfg(unix)]
fn still_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(held), Ok(named)) => held.dev() == named.dev() && held.ino() == named.ino(),
        _ => false,
    }
}

/// On Windows a file removed while open is pending deletion until its last handle closes, and
/// cannot be looked up or opened meanwhile: a claim then opens the path again (and, until the
/// removal completes, the item is retried later).
#[cfg(not(unix))]
fn still_at(_file: &File, path: &Path) -> bool {
    path.exists()
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

    #[test]
    fn the_sweep_removes_only_unheld_lock_files_unused_for_a_day() {
        let spool = std::env::temp_dir().join(format!("stackflow-sweep-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&spool);
        let claims =
            ContainerClaims::in_dir(claims_dir(&spool), "default", Duration::from_millis(60));
        assert_eq!(ContainerClaims::sweep_stale(&spool), 0, "no folder yet");
        let old = std::time::SystemTime::now() - STALE_AFTER - Duration::from_secs(60);
        let age = |sdi: &str| {
            let file = OpenOptions::new().write(true).open(claims.path(sdi)).unwrap();
            file.set_modified(old).unwrap();
        };
        drop(claims.claim("released").unwrap());
        drop(claims.claim("recent").unwrap());
        let held = claims.claim("held").unwrap();
        age("released");
        age("held");
        assert_eq!(ContainerClaims::sweep_stale(&spool), 1);
        assert!(!claims.path("released").exists());
        assert!(claims.path("recent").exists() && claims.path("held").exists());
        drop(held);
        assert!(claims.claim("released").unwrap().others_since, "a new file, a new turn");
        let _ = std::fs::remove_dir_all(&spool);
    }

    #[test]
    fn a_lock_file_removed_after_it_was_opened_is_no_claim() {
        let spool = std::env::temp_dir().join(format!("stackflow-moved-{}", std::process::id()));
        let claims =
            ContainerClaims::in_dir(claims_dir(&spool), "default", Duration::from_millis(60));
        let opened = claims.open("sdi").unwrap();
        let path = claims.path("sdi");
        assert!(still_at(&opened, &path));
        std::fs::remove_file(&path).unwrap();
        assert!(!still_at(&opened, &path), "removed");
        std::fs::write(&path, b"").unwrap();
        assert!(!still_at(&opened, &path), "replaced by another file");
        let claim = claims.claim("sdi").unwrap();
        assert!(still_at(&claim._file, &path));
        let _ = std::fs::remove_dir_all(&spool);
    }
}
