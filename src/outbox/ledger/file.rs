//! The file ledger under `<spool>/ledger/`: one small file per delivered key
//! (`<id>.json`) and per send whose outcome is not known yet (`<id>.sending.json`), written
//! with the spool's atomic protocol; an hourly stamp file for `expire_hourly`.

use super::{Ledger, LedgerEntry, SendingMarker};
use crate::civil_time::now_unix;
use crate::error::{Error, Result};
use crate::item::item_id;
use crate::outbox::file::{modified_unix, write_atomically};
use std::fs;
use std::path::{Path, PathBuf};

/// `spool flush` expires the ledger at most this often (a stamp file records the last time).
const EXPIRE_EVERY_S: f64 = 3600.0;
const EXPIRE_STAMP: &str = ".expired";

pub struct FileLedger {
    dir: PathBuf,
    tmp_dir: PathBuf,
}

impl FileLedger {
    /// The file ledger under `<spool>/ledger/`.
    pub fn new(spool_root: &Path) -> FileLedger {
        FileLedger { dir: spool_root.join("ledger"), tmp_dir: spool_root.join("tmp") }
    }

    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, dedupe_key: &str) -> PathBuf {
        self.dir.join(format!("{}.json", item_id(dedupe_key)))
    }

    fn sending_path(&self, dedupe_key: &str) -> PathBuf {
        self.dir.join(format!("{}.sending.json", item_id(dedupe_key)))
    }

    /// Removes entries delivered before `cutoff`; markers stay.
    pub(super) fn expire_before(&self, cutoff: f64) -> Result<usize> {
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
                .unwrap_or_else(|| modified_unix(&path));
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

    /// Runs `expire` unless the stamp says it ran less than an hour ago, then stamps (creating
    /// the folder when `always_stamp`: a KV ledger's member keeps its stamp here too).
    pub(super) fn hourly(
        &self,
        always_stamp: bool,
        expire: impl FnOnce() -> Result<usize>,
    ) -> Result<usize> {
        let stamp = self.dir.join(EXPIRE_STAMP);
        let last = fs::metadata(&stamp).ok().map(|_| modified_unix(&stamp));
        if last.is_some_and(|last| now_unix() - last < EXPIRE_EVERY_S) {
            return Ok(0);
        }
        let removed = expire()?;
        if always_stamp {
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

    /// Removes a marker file, if there.
    pub(super) fn remove_marker(&self, dedupe_key: &str) {
        let path = self.sending_path(dedupe_key);
        if let Err(error) = fs::remove_file(&path)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            log::warn!("cannot remove {}: {error}", path.display());
        }
    }
}

impl Ledger for FileLedger {
    fn get(&self, dedupe_key: &str) -> Result<Option<LedgerEntry>> {
        let Ok(bytes) = fs::read(self.path(dedupe_key)) else { return Ok(None) };
        Ok(serde_json::from_slice::<LedgerEntry>(&bytes)
            .ok()
            .filter(|entry| entry.dedupe_key == dedupe_key))
    }

    fn sending_since(&self, dedupe_key: &str) -> Result<Option<i64>> {
        let Ok(bytes) = fs::read(self.sending_path(dedupe_key)) else { return Ok(None) };
        let Ok(marker) = serde_json::from_slice::<SendingMarker>(&bytes) else { return Ok(None) };
        Ok((marker.dedupe_key == dedupe_key).then_some(marker.started_unix))
    }

    fn mark_sending(&self, dedupe_key: &str, started_unix: i64) -> Result<()> {
        let marker = SendingMarker { dedupe_key: dedupe_key.to_string(), started_unix };
        let bytes = serde_json::to_vec(&marker)
            .map_err(|error| Error::Internal(format!("sending marker: {error}")))?;
        write_atomically(&self.tmp_dir, &self.sending_path(dedupe_key), &bytes)
    }

    fn clear_sending(&self, dedupe_key: &str) {
        self.remove_marker(dedupe_key);
    }

    fn record(&self, entry: &LedgerEntry) -> Result<()> {
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

    fn expire(&self, retention: std::time::Duration) -> Result<usize> {
        self.expire_before(now_unix() - retention.as_secs_f64())
    }

    fn expire_hourly(&self, retention: std::time::Duration) -> Result<usize> {
        self.hourly(false, || self.expire(retention))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_past_retention_expire_and_markers_stay() {
        let root = crate::outbox::file::tests::temp_root("ledger-expire");
        let ledger = FileLedger::new(&root);
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
        let root = crate::outbox::file::tests::temp_root("ledger");
        let ledger = FileLedger::new(&root);
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
