//! The ledger of delivered dedupe keys, for remotes that do not deduplicate (StackFlow's
//! webhook, Slack). One small file per key under `<spool>/ledger/`, written atomically after a
//! delivery is confirmed; its presence means "already delivered, here is the remote id".
//!
//! Before each send a *sending* marker (`<id>.sending.json`) is written with the same atomic
//! protocol: "this item may have reached the remote since <time>". It is removed when the
//! remote's answer is known (delivered → entry; rejected → nothing was created). A marker that
//! is still there when the item is attempted again (a reset or timeout after the request left,
//! or a kill in that window) makes the deliverer ask the remote first (`Target::find_delivered`)
//! instead of sending blind.
//!
//! Entries are written with the spool's atomic protocol (temp file in `<spool>/tmp/`, fsync,
//! rename, fsync).
//!
//! With `[delivery] store = kvstore` (search head cluster members) the ledger and the markers
//! live in the KV store collection `stackflow_ledger` instead (`kvledger.rs`), so every member
//! sees them. Entries and markers a file ledger holds there (an earlier version, or a member
//! that used the file store) are still read, and `migrate_files` moves them into the
//! collection, so that none is orphaned.
//!
//! Retention (`[delivery] ledger_retention_days`, default 30): entries delivered longer ago are
//! removed by `expire`, which `spool flush` runs at most once an hour and `spool purge` always.
//! Sending markers are never expired: one outlives its item only while the item is pending,
//! and removing it could let a lost answer turn into a blind re-send.

use super::kvledger::KvLedger;
use super::spool::write_atomically;
use crate::civil_time::now_unix;
use crate::error::{Error, Result};
use crate::item::item_id;
use crate::remotes::splunkd::Splunkd;
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LedgerEntry {
    pub dedupe_key: String,
    pub remote_id: Option<String>,
    pub remote_url: Option<String>,
    #[serde(default)]
    pub details: serde_json::Map<String, serde_json::Value>,
    pub delivered_unix: f64,
}

/// "An attempt at this key started at `started_unix`; its outcome is not known."
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct SendingMarker {
    dedupe_key: String,
    started_unix: i64,
}

pub struct Ledger {
    dir: PathBuf,
    tmp_dir: PathBuf,
    /// The KV store collection, when the ledger lives there (the files are then only read).
    kv: Option<KvLedger>,
}

impl Ledger {
    /// The file ledger under `<spool>/ledger/`.
    pub fn new(spool_root: &Path) -> Ledger {
        Ledger { dir: spool_root.join("ledger"), tmp_dir: spool_root.join("tmp"), kv: None }
    }

    /// The ledger in the KV store collection `stackflow_ledger`; the member's file ledger under
    /// `spool_root` is still consulted for entries not migrated yet.
    pub fn in_kvstore(spool_root: &Path, splunkd: Splunkd) -> Ledger {
        Ledger { kv: Some(KvLedger::new(splunkd)), ..Ledger::new(spool_root) }
    }

    /// The delivery of `dedupe_key`, if recorded. An error means the ledger cannot be read now
    /// (the KV store does not answer): the caller must not send blind.
    pub fn get(&self, dedupe_key: &str) -> Result<Option<LedgerEntry>> {
        if let Some(kv) = &self.kv
            && let Some(entry) = kv.get(dedupe_key)?
        {
            return Ok(Some(entry));
        }
        Ok(self.file_get(dedupe_key))
    }

    /// When an earlier attempt at this key was started whose outcome is unknown.
    pub fn sending_since(&self, dedupe_key: &str) -> Result<Option<i64>> {
        if let Some(kv) = &self.kv
            && let Some(started) = kv.sending_since(dedupe_key)?
        {
            return Ok(Some(started));
        }
        Ok(self.file_sending_since(dedupe_key))
    }

    fn path(&self, dedupe_key: &str) -> PathBuf {
        self.dir.join(format!("{}.json", item_id(dedupe_key)))
    }

    fn file_get(&self, dedupe_key: &str) -> Option<LedgerEntry> {
        let bytes = fs::read(self.path(dedupe_key)).ok()?;
        serde_json::from_slice::<LedgerEntry>(&bytes)
            .ok()
            .filter(|entry| entry.dedupe_key == dedupe_key)
    }

    fn sending_path(&self, dedupe_key: &str) -> PathBuf {
        self.dir.join(format!("{}.sending.json", item_id(dedupe_key)))
    }

    fn file_sending_since(&self, dedupe_key: &str) -> Option<i64> {
        let bytes = fs::read(self.sending_path(dedupe_key)).ok()?;
        let marker: SendingMarker = serde_json::from_slice(&bytes).ok()?;
        (marker.dedupe_key == dedupe_key).then_some(marker.started_unix)
    }

    /// Writes the marker before a send (durably: it must outlive a kill during the send).
    pub fn mark_sending(&self, dedupe_key: &str, started_unix: i64) -> Result<()> {
        if let Some(kv) = &self.kv {
            return kv.save(&[KvLedger::marker_document(dedupe_key, started_unix)]);
        }
        let marker = SendingMarker { dedupe_key: dedupe_key.to_string(), started_unix };
        let bytes = serde_json::to_vec(&marker)
            .map_err(|error| Error::Internal(format!("sending marker: {error}")))?;
        write_atomically(&self.tmp_dir, &self.sending_path(dedupe_key), &bytes)
    }

    /// Removes the marker once the remote's answer is known.
    pub fn clear_sending(&self, dedupe_key: &str) {
        if let Some(kv) = &self.kv
            && let Err(error) = kv.clear_sending(dedupe_key)
        {
            // Harmless but for one lookup: a marker left makes the next attempt ask first.
            log::warn!("cannot remove the sending marker of {dedupe_key}: {error}");
        }
        let path = self.sending_path(dedupe_key);
        if let Err(error) = fs::remove_file(&path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            log::warn!("cannot remove {}: {error}", path.display());
        }
    }

    /// Records a confirmed delivery. Call only after the remote said it has the item.
    pub fn record(&self, entry: &LedgerEntry) -> Result<()> {
        if let Some(kv) = &self.kv {
            return kv.save(&[KvLedger::entry_document(entry)]).map_err(|error| {
                Error::Unavailable(format!("cannot record the delivery in the ledger: {error}"))
            });
        }
        let path = self.path(&entry.dedupe_key);
        let bytes = serde_json::to_vec(entry)
            .map_err(|error| Error::Internal(format!("ledger entry: {error}")))?;
        write_atomically(&self.tmp_dir, &path, &bytes).map_err(|error| match error {
            Error::Spool { path, detail } => Error::Spool {
                path,
                detail: format!("cannot record the delivery in the ledger: {detail}"),
            },
            other => other,
        })
    }
}

/// `spool flush` expires the ledger at most this often (a stamp file records the last time).
const EXPIRE_EVERY_S: f64 = 3600.0;
const EXPIRE_STAMP: &str = ".expired";

impl Ledger {
    /// Removes entries delivered more than `retention` ago (an unreadable entry by its file's
    /// age). Returns how many were removed.
    pub fn expire(&self, retention: std::time::Duration) -> Result<usize> {
        let cutoff = now_unix() - retention.as_secs_f64();
        let in_kv = match &self.kv {
            Some(kv) => kv.expire(cutoff)?,
            None => 0,
        };
        Ok(in_kv + self.expire_files(cutoff)?)
    }

    fn expire_files(&self, cutoff: f64) -> Result<usize> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(error) => {
                return Err(Error::Spool { path: self.dir.clone(), detail: error.to_string() });
            }
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".json") || name.ends_with(".sending.json") {
                continue;
            }
            let delivered = fs::read(&path)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<LedgerEntry>(&bytes).ok())
                .map(|entry| entry.delivered_unix)
                .unwrap_or_else(|| super::spool::modified_unix(&path));
            if delivered < cutoff {
                match fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                    Err(error) => {
                        return Err(Error::Spool { path, detail: error.to_string() });
                    }
                }
            }
        }
        Ok(removed)
    }

    /// `expire`, unless it ran less than an hour ago (for `spool flush`, every minute).
    pub fn expire_hourly(&self, retention: std::time::Duration) -> Result<usize> {
        let stamp = self.dir.join(EXPIRE_STAMP);
        let last = fs::metadata(&stamp).ok().map(|_| super::spool::modified_unix(&stamp));
        if last.is_some_and(|last| now_unix() - last < EXPIRE_EVERY_S) {
            return Ok(0);
        }
        let removed = self.expire(retention)?;
        if self.kv.is_some() {
            // The stamp is this member's: create its folder even when no file entry exists.
            fs::create_dir_all(&self.dir).map_err(|error| Error::Spool {
                path: self.dir.clone(),
                detail: error.to_string(),
            })?;
        }
        if self.dir.is_dir() {
            fs::write(&stamp, b"")
                .map_err(|error| Error::Spool { path: stamp.clone(), detail: error.to_string() })?;
        }
        Ok(removed)
    }
}

impl Ledger {
    /// Moves the file ledger's entries and markers into the KV store collection (nothing to do
    /// for a file ledger). A file is removed only once the KV store has its document.
    pub fn migrate_files(&self) -> Result<usize> {
        let Some(kv) = &self.kv else { return Ok(0) };
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(error) => {
                return Err(Error::Spool { path: self.dir.clone(), detail: error.to_string() });
            }
        };
        let (mut documents, mut paths) = (Vec::new(), Vec::new());
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(bytes) = fs::read(&path) else { continue };
            let document = if name.ends_with(".sending.json") {
                serde_json::from_slice::<SendingMarker>(&bytes).ok().map(|marker| {
                    KvLedger::marker_document(&marker.dedupe_key, marker.started_unix)
                })
            } else if name.ends_with(".json") {
                serde_json::from_slice::<LedgerEntry>(&bytes)
                    .ok()
                    .map(|entry| KvLedger::entry_document(&entry))
            } else {
                continue;
            };
            // An unreadable file stays (and keeps being read as a miss), like on the file store.
            if let Some(document) = document {
                documents.push(document);
                paths.push(path);
            }
        }
        kv.save(&documents)?;
        for path in &paths {
            if let Err(error) = fs::remove_file(path)
                && error.kind() != std::io::ErrorKind::NotFound
            {
                return Err(Error::Spool { path: path.clone(), detail: error.to_string() });
            }
        }
        if !paths.is_empty() {
            log::info!(
                "spool: moved {} ledger entries and sending markers from {} into the KV store collection {}",
                paths.len(),
                self.dir.display(),
                super::kvledger::COLLECTION
            );
        }
        Ok(paths.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_past_retention_expire_and_markers_stay() {
        let root = crate::outbox::spool::tests::temp_root("ledger-expire");
        let ledger = Ledger::new(&root);
        let now = crate::civil_time::now_unix();
        for (key, age_days) in [("old", 40.0), ("recent", 2.0)] {
            let entry = LedgerEntry {
                dedupe_key: key.into(),
                delivered_unix: now - age_days * 86400.0,
                ..LedgerEntry::default()
            };
            ledger.record(&entry).unwrap();
        }
        ledger.mark_sending("pending-for-long", 1).unwrap();
        let month = std::time::Duration::from_secs(30 * 86400);
        assert_eq!(ledger.expire_hourly(month).unwrap(), 1);
        assert_eq!(ledger.get("old").unwrap(), None);
        assert!(ledger.get("recent").unwrap().is_some());
        assert_eq!(ledger.sending_since("pending-for-long").unwrap(), Some(1));
        // Within the hour the flush does not scan again; purge (expire) always does.
        assert_eq!(ledger.expire_hourly(std::time::Duration::ZERO).unwrap(), 0);
        assert_eq!(ledger.expire(std::time::Duration::ZERO).unwrap(), 1);
        assert_eq!(ledger.sending_since("pending-for-long").unwrap(), Some(1));
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn entries_round_trip_and_other_keys_miss() {
        let root = crate::outbox::spool::tests::temp_root("ledger");
        let ledger = Ledger::new(&root);
        assert_eq!(ledger.get("k").unwrap(), None);
        let entry = LedgerEntry {
            dedupe_key: "k".into(),
            remote_id: Some("INC0001".into()),
            delivered_unix: 1.0,
            ..LedgerEntry::default()
        };
        ledger.record(&entry).unwrap();
        assert_eq!(ledger.get("k").unwrap(), Some(entry));
        assert_eq!(ledger.get("k2").unwrap(), None);
        assert_eq!(fs::read_dir(root.join("tmp")).unwrap().count(), 0);
        let _ = fs::remove_dir_all(&root);
    }
}
