//! The `Store` trait over the file protocol of `file.rs`: what a flush, an alert run and the
//! `spool` commands ask of a standalone search head's outbox.

use super::FileStore;
use crate::error::Result;
use crate::outbox::ledger::Ledger;
use crate::outbox::ledger::file::FileLedger;
use crate::outbox::record::{
    Candidate, Claim, Claimed, ItemState, Listed, Quarantined, Scan, SpoolRecord, Summary,
};
use crate::outbox::store::Store;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
            _ => self.put_pending(record)?,
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
        let mut pending = Vec::new();
        for id in self.pending_ids()? {
            if let Some(record) = self.peek_pending(&id) {
                pending.push(Candidate { id, token: 0, record: record.map(Summary::of) });
            }
        }
        Ok(Scan { adopted: recovery.adopted, pending })
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
}
