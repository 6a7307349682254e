//! The outbox: where an item waits when its remote could not take it now, and what was
//! already delivered. `record` (the neutral record types: the item as spooled, its state, a
//! claim, what a scan found), `store` (the one `Store` trait: put, claim, list, requeue, purge,
//! and what `delivery::flush` drains through) with its two homes behind it — `file` (one file
//! per item: pending, in flight, dead letters, quarantine; `file/files` atomic writes and claim
//! names, `file/store` the trait over them) and `kv` (the KV store collection of a search head
//! cluster) — and `ledger` (delivered keys and sending markers for remotes that don't
//! deduplicate; the same shape: `ledger/file`, `ledger/kv`). `open` decides file or KV store
//! once. Stores only: delivering what they hold is `delivery/`'s job.

pub mod file;
pub mod kv;
pub mod ledger;
pub mod record;
pub mod store;

pub use file::write_atomically;

use crate::remotes::splunkd::Splunkd;
use crate::settings::{DeliverySettings, StoreKind};
use store::Store;

/// The outbox this instance uses: the KV store on a cluster member (`[delivery] store =
/// kvstore`) when splunkd is at hand, else the file spool under `[delivery] spool_dir`.
pub fn open(delivery: &DeliverySettings, splunkd: Option<Splunkd>) -> Box<dyn Store> {
    let local = file::FileStore::new(&delivery.spool_dir);
    match (delivery.store, splunkd) {
        (StoreKind::KvStore, Some(splunkd)) => Box::new(kv::KvStore::new(
            splunkd,
            local,
            delivery.lease_s,
            delivery.kvstore_conflict_status,
        )),
        _ => Box::new(local),
    }
}
