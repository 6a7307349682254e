//! The durable spool: items not delivered yet (`pending/`) and items the remote refused
//! (`dead/`), one JSON file per item, written so that a crash at any instant leaves either the
//! old state or the new one, never a torn file; and the claims that let several flushers work
//! on one spool without ever having an item in flight twice.
//!
//! Layout under the spool directory:
//! - `tmp/`        files being written (`<name>.<pid>.<n>.tmp`); left over only by a crash, and
//!   removed by `spool flush` once their writer is gone.
//! - `pending/`    `<id>.json`: an item waiting for `spool flush`.
//! - `inflight/`   `<id>.<pid>.json`: an item a flusher (process `pid`) claimed and is sending.
//! - `dead/`       `<id>.json`: a dead letter (rejected), kept until requeued or purged.
//! - `quarantine/` files that could not be read as an item (truncated, not JSON), kept for a human.
//! - `ledger/`     see `ledger/file.rs`.
//!
//! Write protocol: write `tmp/…`, fsync it, rename into place, fsync the folder. A rename within
//! one filesystem is atomic, so a reader sees the whole file or none. The item id is derived
//! from the dedupe key, so spooling the same item twice replaces, never duplicates.
//!
//! Claim protocol: a flusher claims an item by renaming `pending/<id>.json` to
//! `inflight/<id>.<its pid>.json`; exactly one rename succeeds, so exactly one flusher sends it.
//! It then writes the item's new state (nothing, `pending/` again, or `dead/`) and only then
//! removes its claim. A flusher killed mid-send leaves its claim behind; the next flusher adopts
//! claims whose process is gone (again by one atomic rename) and sends them: the dedupe key
//! makes that re-send harmless. No secret is ever written: items carry none.
//!
//! (One job, the file protocol: the record format is in `outbox/record.rs`, the file primitives
//! — atomic writes, listings, claim names and their owners — in `file/files.rs`, the `Store`
//! trait over them in `file/store.rs`, the tests in `file/tests.rs`.)

mod files;
mod store;

pub(crate) use files::modified_unix;
use files::{list_dir, owner_gone, split_claim_name, tmp_pid};
pub use files::{pid_alive, write_atomically};

use super::record::{
    Claim, ItemState, Listed, Page, Quarantined, SpoolRecord, SpoolRecordView, parse_record,
};

use crate::civil_time::now_unix;
use crate::error::{Error, Result};
use crate::fsync::sync_dir;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub(super) static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An alert run's claim file in `inflight/`.
#[derive(Debug)]
pub struct WriteAhead {
    pub path: PathBuf,
}

/// What `FileStore::recover` cleaned up.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Temp files of dead writers that were removed.
    pub removed_tmp: Vec<PathBuf>,
    /// Claims of dead flushers, now this process's claims.
    pub adopted: Vec<PathBuf>,
    /// Claims of dead flushers dropped because a newer `pending/` file of the same item exists.
    pub superseded: Vec<PathBuf>,
}

pub struct FileStore {
    root: PathBuf,
    /// Claims of delivered items were removed from `inflight/` since its last folder sync
    /// (`finish_delivered` groups those syncs; `settle`, or dropping the spool, does it).
    unsynced_removals: std::sync::atomic::AtomicBool,
    /// A dropped write-ahead claim kept in `tmp/` (a temp-file name of this process) for the
    /// next claim to overwrite: an alert run claims one batch after another, and creating and
    /// unlinking a file per batch made the filesystem's inode allocation a tenth of its CPU.
    recycled: std::sync::Mutex<Option<PathBuf>>,
}

impl Drop for FileStore {
    fn drop(&mut self) {
        if let Some(path) = self.recycled.get_mut().ok().and_then(Option::take) {
            let _ = fs::remove_file(path);
        }
        if let Err(error) = self.settle() {
            log::warn!("{error}");
        }
    }
}

pub(super) fn spool_error(path: &Path, error: impl std::fmt::Display) -> Error {
    Error::Spool { path: path.to_path_buf(), detail: error.to_string() }
}

pub(super) fn is_not_found(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::NotFound
}

impl FileStore {
    pub fn new(root: impl Into<PathBuf>) -> FileStore {
        FileStore {
            root: root.into(),
            unsynced_removals: Default::default(),
            recycled: Default::default(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn pending_dir(&self) -> PathBuf {
        self.root.join("pending")
    }

    pub fn dead_dir(&self) -> PathBuf {
        self.root.join("dead")
    }

    pub fn inflight_dir(&self) -> PathBuf {
        self.root.join("inflight")
    }

    pub fn quarantine_dir(&self) -> PathBuf {
        self.root.join("quarantine")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Stores an item to be re-sent later.
    pub fn put_pending(&self, record: &SpoolRecord) -> Result<PathBuf> {
        self.write_record(&self.pending_dir(), record)
    }

    /// Stores a rejected item as a dead letter.
    pub fn put_dead(&self, record: &SpoolRecord) -> Result<PathBuf> {
        self.write_record(&self.dead_dir(), record)
    }

    fn write_record(&self, dir: &Path, record: &SpoolRecord) -> Result<PathBuf> {
        let bytes = serde_json::to_vec(record)
            .map_err(|error| Error::Internal(format!("spool record: {error}")))?;
        let final_path = dir.join(format!("{}.json", record.id));
        write_atomically(&self.tmp_dir(), &final_path, &bytes)?;
        Ok(final_path)
    }

    /// Creates the folders and proves that a file can be written, renamed and removed: what a
    /// flush needs before it claims anything.
    pub fn check_usable(&self) -> Result<()> {
        for dir in [self.tmp_dir(), self.pending_dir(), self.inflight_dir(), self.dead_dir()] {
            fs::create_dir_all(&dir).map_err(|error| spool_error(&dir, error))?;
        }
        // Named like a temp file, so that a flusher killed right here leaves nothing `recover`
        // would not remove.
        let probe = self.tmp_dir().join(format!("probe.{}.0.tmp", std::process::id()));
        write_atomically(&self.tmp_dir(), &probe, b"probe")?;
        fs::remove_file(&probe).map_err(|error| spool_error(&probe, error))
    }

    /// Removes temp files left by crashed writers and adopts claims left by crashed flushers.
    /// Safe to run while other actions and flushers work: only files whose process is gone are
    /// touched, and each adoption is one atomic rename.
    pub fn recover(&self) -> Result<Recovery> {
        let mut recovery = Recovery::default();
        for (path, name) in list_dir(&self.tmp_dir())? {
            if owner_gone(tmp_pid(&name), &path) {
                match fs::remove_file(&path) {
                    Ok(()) => recovery.removed_tmp.push(path),
                    Err(error) if is_not_found(&error) => {}
                    Err(error) => return Err(spool_error(&path, error)),
                }
            }
        }
        let inflight = self.inflight_dir();
        let me = std::process::id();
        for (path, name) in list_dir(&inflight)? {
            let Some((id, pid)) = split_claim_name(&name) else {
                continue;
            };
            if !owner_gone(Some(pid), &path) {
                continue;
            }
            let pending = self.pending_dir().join(format!("{id}.json"));
            if pending.exists() {
                // The dead flusher already wrote the item's next state; its claim is stale.
                match fs::remove_file(&path) {
                    Ok(()) => recovery.superseded.push(path),
                    Err(error) if is_not_found(&error) => {}
                    Err(error) => return Err(spool_error(&path, error)),
                }
                continue;
            }
            let mine = inflight.join(format!("{id}.{me}.json"));
            match fs::rename(&path, &mine) {
                Ok(()) => recovery.adopted.push(mine),
                Err(error) if is_not_found(&error) => {} // another flusher adopted it
                Err(error) => return Err(spool_error(&path, error)),
            }
        }
        if !recovery.adopted.is_empty() || !recovery.superseded.is_empty() {
            sync_dir(&inflight).map_err(|error| spool_error(&inflight, error))?;
        }
        Ok(recovery)
    }

    /// Ids of the items in `pending/` (unread), in no particular order.
    pub fn pending_ids(&self) -> Result<Vec<String>> {
        Ok(list_dir(&self.pending_dir())?
            .into_iter()
            .filter_map(|(_, name)| name.strip_suffix(".json").map(str::to_string))
            .collect())
    }

    /// Reads a pending item without claiming it (to decide whether it is due).
    pub fn peek_pending(&self, id: &str) -> Option<std::result::Result<SpoolRecord, String>> {
        let path = self.pending_dir().join(format!("{id}.json"));
        match fs::read(&path) {
            Ok(bytes) => Some(parse_record(&bytes, id)),
            Err(_) => None,
        }
    }

    /// Claims `pending/<id>.json` for this process. `Ok(None)` when it is gone (delivered or
    /// claimed by another flusher meanwhile); `Err(Quarantined)` inside `Ok(Some(Err))` when the
    /// file is not a readable item (it is moved to `quarantine/`).
    pub fn claim(&self, id: &str) -> Result<Option<std::result::Result<Claim, Quarantined>>> {
        let from = self.pending_dir().join(format!("{id}.json"));
        let inflight = self.inflight_dir();
        fs::create_dir_all(&inflight).map_err(|error| spool_error(&inflight, error))?;
        let to = inflight.join(format!("{id}.{}.json", std::process::id()));
        match fs::rename(&from, &to) {
            Ok(()) => {}
            Err(error) if is_not_found(&error) => return Ok(None),
            Err(error) => return Err(spool_error(&from, error)),
        }
        self.open_claim(id, to, from).map(Some)
    }

    /// Turns an adopted claim file (from `recover`) into a claim.
    pub fn open_adopted(&self, path: &Path) -> Result<std::result::Result<Claim, Quarantined>> {
        let name = path.file_name().and_then(|name| name.to_str()).unwrap_or_default();
        let id = split_claim_name(name).map(|(id, _)| id.to_string()).unwrap_or_default();
        self.open_claim(&id, path.to_path_buf(), path.to_path_buf())
    }

    fn open_claim(
        &self,
        id: &str,
        path: PathBuf,
        original: PathBuf,
    ) -> Result<std::result::Result<Claim, Quarantined>> {
        let parsed = fs::read(&path)
            .map_err(|error| format!("cannot read it: {error}"))
            .and_then(|bytes| parse_record(&bytes, id));
        match parsed {
            Ok(record) => Ok(Ok(Claim { id: id.to_string(), path, record, token: 0 })),
            Err(problem) => {
                let moved_to = self.quarantine(&path, &format!("{id}.json"))?;
                Ok(Err(Quarantined { original, moved_to, problem }))
            }
        }
    }

    /// Moves a file to `quarantine/` (never overwriting an earlier one) and returns its new path.
    pub fn quarantine(&self, path: &Path, name: &str) -> Result<PathBuf> {
        let dir = self.quarantine_dir();
        fs::create_dir_all(&dir).map_err(|error| spool_error(&dir, error))?;
        let mut target = dir.join(name);
        let mut n = 1;
        while target.exists() {
            target = dir.join(format!("{name}.{n}"));
            n += 1;
        }
        fs::rename(path, &target).map_err(|error| spool_error(path, error))?;
        sync_dir(&dir).map_err(|error| spool_error(&dir, error))?;
        Ok(target)
    }

    /// An alert run's own claim on an item it is about to send, so that a kill mid-send leaves
    /// the item for `spool flush` (which adopts claims of dead processes). Written atomically
    /// (temp file and rename) but without fsync: it guards against a killed process, whose
    /// writes the kernel keeps, not against a power cut.
    pub fn write_ahead(&self, record: &SpoolRecordView<'_>) -> Result<WriteAhead> {
        let path = self.inflight_dir().join(format!("{}.{}.json", record.id, std::process::id()));
        let tmp_dir = self.tmp_dir();
        let recycled = self.recycled.lock().ok().and_then(|mut recycled| recycled.take());
        let tmp_path = recycled.unwrap_or_else(|| self.new_tmp_path(record.id));
        let written = (|| {
            fs::create_dir_all(&tmp_dir)?;
            fs::create_dir_all(self.inflight_dir())?;
            // Straight into the file: a SOAR batch is up to a megabyte, not worth a copy. A
            // recycled file is overwritten and then cut to length rather than truncated first,
            // so its page-cache pages and blocks are reused, not freed and allocated again for
            // every batch (a torn file here is still in tmp/, which no reader looks at).
            let file =
                fs::OpenOptions::new().write(true).create(true).truncate(false).open(&tmp_path)?;
            let mut writer = std::io::BufWriter::with_capacity(64 * 1024, file);
            record.write_json(&mut writer)?;
            let mut file = writer.into_inner().map_err(std::io::IntoInnerError::into_error)?;
            let length = std::io::Seek::stream_position(&mut file)?;
            file.set_len(length)?;
            fs::rename(&tmp_path, &path)
        })();
        if let Err(error) = written {
            let _ = fs::remove_file(&tmp_path);
            return Err(spool_error(&path, error));
        }
        Ok(WriteAhead { path })
    }

    /// A temp-file name of this process in `tmp/` (`recover` removes it once the process is
    /// gone).
    fn new_tmp_path(&self, id: &str) -> PathBuf {
        self.tmp_dir().join(format!(
            "{id}.json.{}.{}.tmp",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// Drops a write-ahead claim (the item's outcome is recorded elsewhere, or it was delivered):
    /// its file leaves `inflight/` at once, into `tmp/` for the next claim to overwrite.
    pub fn drop_write_ahead(&self, claim: WriteAhead) {
        let Ok(mut recycled) = self.recycled.lock() else {
            let _ = fs::remove_file(&claim.path);
            return;
        };
        let to = recycled.take().unwrap_or_else(|| self.new_tmp_path("write-ahead"));
        match fs::rename(&claim.path, &to) {
            Ok(()) => *recycled = Some(to),
            Err(_) => {
                if let Err(error) = fs::remove_file(&claim.path)
                    && !is_not_found(&error)
                {
                    log::warn!("cannot remove {}: {error}", claim.path.display());
                }
            }
        }
    }

    /// Removes `pending/<id>.json` if it is there: an alert run delivered (or dead-lettered) an
    /// item that an earlier run had spooled, so the flush need not send it again.
    pub fn forget_pending(&self, id: &str) {
        let path = self.pending_dir().join(format!("{id}.json"));
        match fs::remove_file(&path) {
            Ok(()) => log::debug!("{} is settled; removed its older spooled copy", path.display()),
            Err(error) if is_not_found(&error) => {}
            Err(error) => log::warn!("cannot remove {}: {error}", path.display()),
        }
    }

    /// The item went through: drop the claim. The folder is synced by `settle`, once for many
    /// items (see `Store::settle` for why that cannot cause a second send).
    pub fn finish_delivered(&self, claim: Claim) -> Result<()> {
        match fs::remove_file(&claim.path) {
            Ok(()) => {}
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Err(spool_error(&claim.path, error)),
        }
        self.unsynced_removals.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Syncs `inflight/` if claims were removed since the last sync.
    pub fn settle(&self) -> Result<()> {
        if self.unsynced_removals.swap(false, Ordering::Relaxed) {
            let dir = self.inflight_dir();
            sync_dir(&dir).map_err(|error| spool_error(&dir, error))?;
        }
        Ok(())
    }

    /// Not yet: the item (with its new attempt count and due time) goes back to `pending/`,
    /// then the claim is dropped.
    pub fn finish_retry(&self, claim: Claim, record: &SpoolRecord) -> Result<PathBuf> {
        let path = self.put_pending(record)?;
        self.drop_claim(&claim.path)?;
        Ok(path)
    }

    /// Rejected: the item becomes a dead letter, then the claim is dropped.
    pub fn finish_dead(&self, claim: Claim, record: &SpoolRecord) -> Result<PathBuf> {
        let path = self.put_dead(record)?;
        self.drop_claim(&claim.path)?;
        Ok(path)
    }

    fn drop_claim(&self, path: &Path) -> Result<()> {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(error) if is_not_found(&error) => {}
            Err(error) => return Err(spool_error(path, error)),
        }
        let dir = self.inflight_dir();
        sync_dir(&dir).map_err(|error| spool_error(&dir, error))
    }

    /// Every file of `pending/`, `inflight/`, `dead/` and `quarantine/`. Read-only.
    pub fn list(&self) -> Result<Vec<Listed>> {
        let mut listed = Vec::new();
        for state in
            [ItemState::Pending, ItemState::Inflight, ItemState::Dead, ItemState::Quarantine]
        {
            listed.extend(self.page_of(state, usize::MAX)?.items);
        }
        Ok(listed)
    }

    fn dir_of(&self, state: ItemState) -> PathBuf {
        match state {
            ItemState::Pending => self.pending_dir(),
            ItemState::Inflight => self.inflight_dir(),
            ItemState::Dead => self.dead_dir(),
            ItemState::Quarantine => self.quarantine_dir(),
        }
    }

    /// At most `limit` files of one state's folder, read as they come from the folder (no
    /// listing of the whole folder first), and whether there are more. Read-only.
    pub fn page_of(&self, state: ItemState, limit: usize) -> Result<Page> {
        let dir = self.dir_of(state);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(error) if is_not_found(&error) => return Ok(Page::default()),
            Err(error) => return Err(spool_error(&dir, error)),
        };
        let mut page = Page::default();
        for entry in entries {
            let entry = entry.map_err(|error| spool_error(&dir, error))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
            if name.starts_with('.') || !entry.file_type().is_ok_and(|kind| kind.is_file()) {
                continue;
            }
            if page.items.len() >= limit {
                page.more = true;
                break;
            }
            let path = entry.path();
            let id = match state {
                ItemState::Inflight => {
                    split_claim_name(&name).map(|(id, _)| id.to_string()).unwrap_or_default()
                }
                _ => name.strip_suffix(".json").unwrap_or(&name).to_string(),
            };
            let record = match (state, fs::read(&path)) {
                (ItemState::Quarantine, Ok(bytes)) => {
                    parse_record(&bytes, "").and_then(|_| Err("quarantined".to_string()))
                }
                (_, Ok(bytes)) => parse_record(&bytes, &id),
                (_, Err(error)) if is_not_found(&error) => continue,
                (_, Err(error)) => Err(format!("cannot read it: {error}")),
            };
            page.items.push(Listed { state, modified_unix: modified_unix(&path), path, record });
        }
        Ok(page)
    }

    /// Moves dead letters back to `pending/`, due now. `ids` empty means every dead letter.
    /// Returns the ids requeued and the ids asked for that are not dead letters.
    pub fn requeue(&self, ids: &[String]) -> Result<(Vec<String>, Vec<String>)> {
        let dead = self.dead_dir();
        let wanted: Vec<String> = if ids.is_empty() {
            list_dir(&dead)?
                .into_iter()
                .filter_map(|(_, name)| name.strip_suffix(".json").map(str::to_string))
                .collect()
        } else {
            ids.to_vec()
        };
        let mut done = Vec::new();
        let mut missing = Vec::new();
        if !wanted.is_empty() {
            self.mark_fresh()?; // the next flush scans for what this puts back
        }
        for id in wanted {
            let path = dead.join(format!("{id}.json"));
            let bytes = match fs::read(&path) {
                Ok(bytes) => bytes,
                Err(error) if is_not_found(&error) => {
                    missing.push(id);
                    continue;
                }
                Err(error) => return Err(spool_error(&path, error)),
            };
            let mut record = match parse_record(&bytes, &id) {
                Ok(record) => record,
                Err(problem) => {
                    let moved = self.quarantine(&path, &format!("{id}.json"))?;
                    log::error!(
                        "dead letter {} is not a readable item ({problem}); moved to {}",
                        path.display(),
                        moved.display()
                    );
                    continue;
                }
            };
            record.reject_class = None;
            record.flushes = 0;
            record.next_attempt_unix = now_unix();
            record.last_error = format!("requeued after: {}", record.last_error);
            self.put_pending(&record)?;
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(error) if is_not_found(&error) => {}
                Err(error) => return Err(spool_error(&path, error)),
            }
            sync_dir(&dead).map_err(|error| spool_error(&dead, error))?;
            done.push(id);
        }
        Ok((done, missing))
    }

    /// Deletes dead letters (and quarantined files) last touched more than `older_than` ago.
    pub fn purge(&self, older_than: Duration) -> Result<Vec<PathBuf>> {
        let cutoff = now_unix() - older_than.as_secs_f64();
        let mut removed = Vec::new();
        for dir in [self.dead_dir(), self.quarantine_dir()] {
            for (path, _) in list_dir(&dir)? {
                let when = fs::read(&path)
                    .ok()
                    .and_then(|bytes| serde_json::from_slice::<SpoolRecord>(&bytes).ok())
                    .map(|record| record.last_attempt_unix)
                    .unwrap_or_else(|| modified_unix(&path));
                if when < cutoff {
                    match fs::remove_file(&path) {
                        Ok(()) => removed.push(path),
                        Err(error) if is_not_found(&error) => {}
                        Err(error) => return Err(spool_error(&path, error)),
                    }
                }
            }
            if dir.is_dir() {
                sync_dir(&dir).map_err(|error| spool_error(&dir, error))?;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
pub(crate) mod tests;
