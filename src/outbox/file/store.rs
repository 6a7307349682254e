//! The `Store` trait over the file protocol of `file.rs`: what a flush, an alert run and the
//! `spool` commands ask of a standalone search head's outbox; and the flush's outlook
//! (`outlook.json`), which holds while the flag `fresh` is absent: `put` and `requeue` create
//! that flag before they write (durably: the root folder is synced when the flag is new), and a
//! scan removes it before it lists, so an item put during a scan makes the next flush scan
//! again.

use super::{FileStore, spool_error, write_atomically};
use crate::error::Result;
use crate::outbox::ledger::Ledger;
use crate::outbox::ledger::file::FileLedger;
use crate::outbox::record::{
    Candidate, Claim, Claimed, ItemState, Listed, Outlook, Page, Quarantined, Scan, SpoolRecord,
    Summary,
};
use crate::outbox::store::Store;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The outlook of the last flush, in the spool's root.
const OUTLOOK: &str = "outlook.json";
/// In the root: something was put in `pending/` since the last scan began.
const FRESH: &str = "fresh";

impl FileStore {
    /// Says that `pending/` got an item the last scan did not see (before the item is written).
    pub(super) fn mark_fresh(&self) -> Result<()> {
        let root = self.root();
        fs::create_dir_all(root).map_err(|error| spool_error(root, error))?;
        let path = root.join(FRESH);
        match fs::OpenOptions::new().create_new(true).write(true).open(&path) {
            Ok(_) => crate::fsync::sync_dir(root).map_err(|error| spool_error(root, error)),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(error) => Err(spool_error(&path, error)),
        }
    }

    fn clear_fresh(&self) -> Result<()> {
        let path = self.root().join(FRESH);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(error) if super::is_not_found(&error) => Ok(()),
            Err(error) => Err(spool_error(&path, error)),
        }
    }
}

impl Store for FileStore {
    fn location(&self) -> String {
        self.root().display().to_string()
    }

    fn ledger(&self) -> Box<dyn Ledger> {
        Box::new(FileLedger::new(self.root()))
    }

    fn put(&self, record: &SpoolRecord, state: ItemState) -> Result<String> {
        let path = match state {
            ItemState::Dead => self.put_dead(record)?,
            _ => {
                self.mark_fresh()?;
                self.put_pending(record)?
            }
        };
        Ok(path.display().to_string())
    }

    fn scan(&self) -> Result<Scan> {
        self.check_usable()?;
        let recovery = self.recover()?;
        for path in &recovery.removed_tmp {
            log::info!("spool: removed {} (a write interrupted by a crash)", path.display());
        }
        for path in &recovery.superseded {
            log::info!("spool: removed {} (a stale claim; the item is pending)", path.display());
        }
        for path in &recovery.adopted {
            log::info!(
                "spool: {} was being sent by a process that is gone; sending it again",
                path.display()
            );
        }
        // Before listing: whatever is put from now on makes the next flush scan again.
        self.clear_fresh()?;
        let mut pending = Vec::new();
        for id in self.pending_ids()? {
            if let Some(record) = self.peek_pending(&id) {
                pending.push(Candidate { id, token: 0, record: record.map(Summary::of) });
            }
        }
        Ok(Scan { adopted: recovery.adopted, pending, more: false })
    }

    fn claim(&self, id: &str, _token: u64) -> Result<Claimed> {
        FileStore::claim(self, id)
    }

    fn open_adopted(&self, path: &Path) -> Result<std::result::Result<Claim, Quarantined>> {
        FileStore::open_adopted(self, path)
    }

    fn finish_delivered(&self, claim: Claim) -> Result<()> {
        FileStore::finish_delivered(self, claim)
    }

    fn finish_retry(&self, claim: Claim, record: &SpoolRecord) -> Result<()> {
        FileStore::finish_retry(self, claim, record).map(|_| ())
    }

    fn finish_dead(&self, claim: Claim, record: &SpoolRecord) -> Result<String> {
        FileStore::finish_dead(self, claim, record).map(|path| path.display().to_string())
    }

    fn settle(&self) -> Result<()> {
        FileStore::settle(self)
    }

    fn list(&self) -> Result<Vec<Listed>> {
        FileStore::list(self)
    }

    fn requeue(&self, ids: &[String]) -> Result<(Vec<String>, Vec<String>)> {
        FileStore::requeue(self, ids)
    }

    fn purge(&self, older_than: Duration) -> Result<Vec<PathBuf>> {
        FileStore::purge(self, older_than)
    }

    fn page(&self, state: ItemState, limit: usize) -> Result<Page> {
        self.page_of(state, limit)
    }

    /// The last flush's outlook, unless something was put since its scan began, or a claim
    /// (an alert run sending, or one killed mid-send) is in `inflight/`: then a scan.
    fn outlook(&self) -> Result<Option<Outlook>> {
        if self.root().join(FRESH).exists() || self.page_of(ItemState::Inflight, 0)?.more {
            return Ok(None);
        }
        let Ok(bytes) = fs::read(self.root().join(OUTLOOK)) else { return Ok(None) };
        Ok(serde_json::from_slice(&bytes).ok())
    }

    fn save_outlook(&self, outlook: Option<&Outlook>) -> Result<()> {
        let path = self.root().join(OUTLOOK);
        match outlook {
            Some(outlook) => {
                let bytes = serde_json::to_vec(outlook)
                    .map_err(|error| crate::error::Error::Internal(error.to_string()))?;
                write_atomically(&self.tmp_dir(), &path, &bytes)
            }
            None => match fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(error) if super::is_not_found(&error) => Ok(()),
                Err(error) => Err(spool_error(&path, error)),
            },
        }
    }
}
