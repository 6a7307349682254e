//! The one interface `spool flush` works through, over the two places a spool can live: local
//! files (`spool.rs`, standalone search heads) and the replicated KV store (`kvspool.rs`, search
//! head cluster members). The flusher's policy (probe, drain, bounds, reporting) is written once
//! in `flush.rs` against this trait.

use super::ledger::Ledger;
use super::spool::{Claim, Quarantined, Spool, SpoolRecord};
use crate::error::Result;
use crate::item::TargetKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What claiming one pending item gave: `None` when another flusher has it or it is gone.
pub type Claimed = Option<std::result::Result<Claim, Quarantined>>;

/// A pending item a store found: its id, the token its claim must present (the KV store's lease
/// generation; 0 for files), and what the flusher's plan needs of its record when readable
/// (not the request itself: a plan over a large backlog must not hold every request).
#[derive(Debug)]
pub struct Candidate {
    pub id: String,
    pub token: u64,
    pub record: std::result::Result<Summary, String>,
}

/// The part of a pending record the plan orders by.
#[derive(Debug)]
pub struct Summary {
    pub target: TargetKind,
    pub account: String,
    pub first_attempt_unix: f64,
    pub next_attempt_unix: f64,
    pub remote_hold_unix: f64,
}

impl Summary {
    pub fn of(record: SpoolRecord) -> Summary {
        Summary {
            target: record.item.target,
            account: record.item.account,
            first_attempt_unix: record.first_attempt_unix,
            next_attempt_unix: record.next_attempt_unix,
            remote_hold_unix: record.remote_hold_unix,
        }
    }
}

/// What a store found to do: claims of crashed flushers it adopted, and the pending items.
#[derive(Debug, Default)]
pub struct Scan {
    pub adopted: Vec<PathBuf>,
    pub pending: Vec<Candidate>,
}

pub trait Store {
    /// Where the spool is, for log lines (a folder, or `KV store collection stackflow_spool`).
    fn location(&self) -> String;
    /// The delivery ledger and sending markers that go with this store.
    fn ledger(&self) -> Ledger;
    /// Checks the store, cleans up after crashes, lists the pending items.
    fn scan(&self) -> Result<Scan>;
    /// Claims a pending item: `Ok(None)` when another flusher has it or it is gone.
    fn claim(
        &self,
        id: &str,
        token: u64,
    ) -> Result<Option<std::result::Result<Claim, Quarantined>>>;
    /// Claims several pending items, in order; one answer per item as `claim` gives it. The KV
    /// store leases them with one conditional insert each but reads them with one query and
    /// writes their leases with one `batch_save`; other stores claim one by one.
    fn claim_many(&self, wanted: &[(String, u64)]) -> Result<Vec<Claimed>> {
        wanted.iter().map(|(id, token)| self.claim(id, *token)).collect()
    }
    /// How many pending items a flush claims before sending the first of them (1: each just
    /// before it is sent). A process that dies holds at most this many leases.
    fn claim_ahead(&self) -> usize {
        1
    }
    /// How long a claim taken ahead may wait to be sent: an older one is claimed again (a new
    /// lease) before sending, so that an item is never sent under a lease about to expire.
    fn claim_hold(&self) -> Duration {
        Duration::MAX
    }
    /// Opens a claim adopted by `scan`.
    fn open_adopted(&self, path: &Path) -> Result<std::result::Result<Claim, Quarantined>>;
    fn finish_delivered(&self, claim: Claim) -> Result<()>;
    fn finish_retry(&self, claim: Claim, record: &SpoolRecord) -> Result<()>;
    /// Returns where the dead letter is kept, for the log line.
    fn finish_dead(&self, claim: Claim, record: &SpoolRecord) -> Result<String>;
    /// Makes the removals of delivered items that the store grouped durable (the file store's
    /// folder sync, the KV store's batched deletes). `finish_delivered` groups them only
    /// because a delivered item that reappears after a crash is not sent twice: the remote
    /// deduplicates (SOAR) or the ledger, written before, says it was delivered.
    fn settle(&self) -> Result<()>;
}

impl Store for Spool {
    fn location(&self) -> String {
        self.root().display().to_string()
    }

    fn ledger(&self) -> Ledger {
        Ledger::new(self.root())
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

    fn claim(
        &self,
        id: &str,
        _token: u64,
    ) -> Result<Option<std::result::Result<Claim, Quarantined>>> {
        Spool::claim(self, id)
    }

    fn open_adopted(&self, path: &Path) -> Result<std::result::Result<Claim, Quarantined>> {
        Spool::open_adopted(self, path)
    }

    fn finish_delivered(&self, claim: Claim) -> Result<()> {
        Spool::finish_delivered(self, claim)
    }

    fn finish_retry(&self, claim: Claim, record: &SpoolRecord) -> Result<()> {
        Spool::finish_retry(self, claim, record).map(|_| ())
    }

    fn finish_dead(&self, claim: Claim, record: &SpoolRecord) -> Result<String> {
        Spool::finish_dead(self, claim, record).map(|path| path.display().to_string())
    }

    fn settle(&self) -> Result<()> {
        Spool::settle(self)
    }
}

/// The spool this instance uses, as the `spool` commands open it.
pub enum Outbox {
    File(Spool),
    Kv(Box<super::kvspool::KvSpool>),
}

impl Outbox {
    pub fn store(&self) -> &dyn Store {
        match self {
            Outbox::File(spool) => spool,
            Outbox::Kv(kv) => kv.as_ref(),
        }
    }

    pub fn location(&self) -> String {
        self.store().location()
    }

    pub fn list(&self) -> Result<Vec<super::spool::Listed>> {
        match self {
            Outbox::File(spool) => spool.list(),
            Outbox::Kv(kv) => {
                kv.migrate()?;
                kv.list()
            }
        }
    }

    pub fn requeue(&self, ids: &[String]) -> Result<(Vec<String>, Vec<String>)> {
        match self {
            Outbox::File(spool) => spool.requeue(ids),
            Outbox::Kv(kv) => {
                kv.migrate()?;
                kv.requeue(ids)
            }
        }
    }

    pub fn purge(&self, older_than: std::time::Duration) -> Result<Vec<PathBuf>> {
        match self {
            Outbox::File(spool) => spool.purge(older_than),
            Outbox::Kv(kv) => {
                kv.migrate()?;
                kv.purge(older_than)
            }
        }
    }
}
