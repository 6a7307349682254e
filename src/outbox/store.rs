//! The one interface over the two places the outbox can live: local files (`file`, standalone
//! search heads) and the replicated KV store (`kv`, search head cluster members). Alert runs put
//! what they cannot deliver through it, `spool flush` drains through it (the flusher's policy —
//! probe, drain, bounds, reporting — is written once in `delivery::flush` against this trait),
//! and the `spool` commands list, requeue and purge through it.

use super::ledger::Ledger;
use super::record::{
    Claim, Claimed, ItemState, Listed, Outlook, Page, Quarantined, Scan, SpoolRecord,
};
use crate::error::Result;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub trait Store: Send {
    /// Where the spool is, for log lines (a folder, or `KV store collection stackflow_spool`).
    fn location(&self) -> String;
    /// The delivery ledger and sending markers that go with this store.
    fn ledger(&self) -> Box<dyn Ledger>;
    /// Keeps `record` in `state` (pending or dead); the same item id already there is replaced
    /// (files) or wins (KV store: same dedupe key). Returns where it went, for the log line.
    fn put(&self, record: &SpoolRecord, state: ItemState) -> Result<String>;
    /// Moves what an earlier version or the alert runs left elsewhere into this store (the KV
    /// store takes the member's local files and file ledger); nothing to do for files.
    fn migrate(&self) -> Result<usize> {
        Ok(0)
    }
    /// Checks the store, cleans up after crashes, lists the pending items.
    fn scan(&self) -> Result<Scan>;
    /// `scan`, reading at most about `limit` pending items of each account: the oldest due
    /// ones, then the oldest not due (a flush sends at most `flush_max_items`, so reading more
    /// would only cost time and memory). Stores whose scan is cheap read everything.
    fn scan_bounded(&self, _limit: usize) -> Result<Scan> {
        self.scan()
    }
    /// Claims a pending item: `Ok(None)` when another flusher has it or it is gone.
    fn claim(&self, id: &str, token: u64) -> Result<Claimed>;
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
    /// Every item, as `spool list` shows it.
    fn list(&self) -> Result<Vec<Listed>>;
    /// Dead letters back to pending, due now (`ids` empty: all). Returns requeued and missing ids.
    fn requeue(&self, ids: &[String]) -> Result<(Vec<String>, Vec<String>)>;
    /// Deletes dead letters and quarantined items last touched more than `older_than` ago.
    fn purge(&self, older_than: Duration) -> Result<Vec<PathBuf>>;
    /// At most `limit` items in `state` (in no particular order), and whether there are more:
    /// what `spool list` and the flush's status line show, without reading the whole backlog.
    fn page(&self, state: ItemState, limit: usize) -> Result<Page> {
        let mut items: Vec<Listed> =
            self.list()?.into_iter().filter(|item| item.state == state).collect();
        let more = items.len() > limit;
        items.truncate(limit);
        Ok(Page { items, more })
    }
    /// What the last flush found down, while nothing else may be pending (see `Outlook`): a
    /// flush then probes those accounts without reading the backlog. `None`: scan.
    fn outlook(&self) -> Result<Option<Outlook>> {
        Ok(None)
    }
    /// Keeps (or, `None`, drops) what this flush found for the next one.
    fn save_outlook(&self, _outlook: Option<&Outlook>) -> Result<()> {
        Ok(())
    }
}
