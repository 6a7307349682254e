//! The ledger of delivered dedupe keys, for remotes that do not deduplicate (StackFlow's
//! webhook, Slack): the `Ledger` trait and its records, with its two homes behind it like the
//! spool's — `ledger/file` (one small file per key under `<spool>/ledger/`, written atomically
//! after a delivery is confirmed; its presence means "already delivered, here is the remote
//! id") and `ledger/kv` (the KV store collection `stackflow_ledger`).
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
//! live in the KV store collection `stackflow_ledger` instead (`ledger/kv.rs`), so every member
//! sees them. Entries and markers a file ledger holds there (an earlier version, or a member
//! that used the file store) are still read, and `migrate_files` moves them into the
//! collection, so that none is orphaned.
//!
//! Retention (`[delivery] ledger_retention_days`, default 30): entries delivered longer ago are
//! removed by `expire`, which `spool flush` runs at most once an hour and `spool purge` always.
//! Sending markers are never expired: one outlives its item only while the item is pending,
//! and removing it could let a lost answer turn into a blind re-send.

pub mod file;
pub mod kv;

use crate::error::Result;
use serde::{Deserialize, Serialize};

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

pub trait Ledger: Send {
    /// The delivery of `dedupe_key`, if recorded. An error means the ledger cannot be read now
    /// (the KV store does not answer): the caller must not send blind.
    fn get(&self, dedupe_key: &str) -> Result<Option<LedgerEntry>>;
    /// When an earlier attempt at this key was started whose outcome is unknown.
    fn sending_since(&self, dedupe_key: &str) -> Result<Option<i64>>;
    /// Writes the marker before a send (durably: it must outlive a kill during the send).
    fn mark_sending(&self, dedupe_key: &str, started_unix: i64) -> Result<()>;
    /// Removes the marker once the remote's answer is known.
    fn clear_sending(&self, dedupe_key: &str);
    /// Records a confirmed delivery. Call only after the remote said it has the item.
    fn record(&self, entry: &LedgerEntry) -> Result<()>;
    /// Removes entries delivered more than `retention` ago (an unreadable entry by its file's
    /// age). Returns how many were removed.
    fn expire(&self, retention: std::time::Duration) -> Result<usize>;
    /// `expire`, unless it ran less than an hour ago (for `spool flush`, every minute).
    fn expire_hourly(&self, retention: std::time::Duration) -> Result<usize>;
}
