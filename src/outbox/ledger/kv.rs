//! The delivery ledger in the replicated KV store, for search head cluster members (PRODUCT
//! §11, `[delivery] store = kvstore`): the collection `stackflow_ledger` holds what `ledger/file.rs`
//! keeps in files on a standalone search head, so that a StackFlow incident or Slack message
//! delivered by one member is known to every member, and a *sending* marker left by a member
//! killed mid-send makes the next member ask the remote instead of sending blind. The member's
//! file ledger is still read for entries not moved yet, and `migrate_files` moves them.
//!
//! Documents: a delivery `{_key: <item id>, kind: "delivered", dedupe_key, remote_id,
//! remote_url, details (JSON text), delivered_unix}` and a marker `{_key: "sending.<item id>",
//! kind: "sending", dedupe_key, started_unix}`. Both are written with `batch_save`, which the
//! KV store REST API documents as an upsert (Splunk REST API reference, "storage/collections/
//! data/{collection}/batch_save"); no conditional write is needed: an entry only ever says
//! "delivered", and a marker only ever widens the window a lookup covers.

use super::file::FileLedger;
use super::{Ledger, LedgerEntry, SendingMarker};
use crate::civil_time::now_unix;
use crate::error::{Error, Result};
use crate::item::item_id;
use crate::remotes::splunkd::Splunkd;
use serde_json::{Value, json};
use std::fs;
use std::path::Path;

/// The collection (collections.conf).
pub const COLLECTION: &str = "stackflow_ledger";
/// Documents per query page and per `batch_save` of a migration.
const PAGE: usize = 500;

pub struct KvLedger {
    splunkd: Splunkd,
    /// The member's file ledger: read for entries not migrated yet, home of the hourly stamp.
    files: FileLedger,
}

fn marker_key(dedupe_key: &str) -> String {
    format!("sending.{}", item_id(dedupe_key))
}

fn text(document: &Value, field: &str) -> Option<String> {
    document.get(field).and_then(Value::as_str).map(str::to_string)
}

impl KvLedger {
    /// The ledger in `stackflow_ledger`; the member's file ledger under `spool_root` is still
    /// consulted for entries not migrated yet.
    pub fn new(splunkd: Splunkd, spool_root: &Path) -> KvLedger {
        KvLedger { splunkd, files: FileLedger::new(spool_root) }
    }

    /// The document recording `entry`.
    pub fn entry_document(entry: &LedgerEntry) -> Value {
        json!({
            "_key": item_id(&entry.dedupe_key),
            "kind": "delivered",
            "dedupe_key": entry.dedupe_key,
            "remote_id": entry.remote_id,
            "remote_url": entry.remote_url,
            "details": Value::Object(entry.details.clone()).to_string(),
            "delivered_unix": entry.delivered_unix,
        })
    }

    /// The document of a sending marker.
    pub fn marker_document(dedupe_key: &str, started_unix: i64) -> Value {
        json!({
            "_key": marker_key(dedupe_key),
            "kind": "sending",
            "dedupe_key": dedupe_key,
            "started_unix": started_unix,
        })
    }

    fn kv_get(&self, dedupe_key: &str) -> Result<Option<LedgerEntry>> {
        let Some(document) = self.splunkd.kv_get(COLLECTION, &item_id(dedupe_key))? else {
            return Ok(None);
        };
        if text(&document, "dedupe_key").as_deref() != Some(dedupe_key) {
            return Ok(None);
        }
        let details = text(&document, "details")
            .and_then(|details| serde_json::from_str::<Value>(&details).ok())
            .and_then(|details| match details {
                Value::Object(map) => Some(map),
                _ => None,
            })
            .unwrap_or_default();
        Ok(Some(LedgerEntry {
            dedupe_key: dedupe_key.to_string(),
            remote_id: text(&document, "remote_id"),
            remote_url: text(&document, "remote_url"),
            details,
            delivered_unix: document.get("delivered_unix").and_then(Value::as_f64).unwrap_or(0.0),
        }))
    }

    fn kv_sending_since(&self, dedupe_key: &str) -> Result<Option<i64>> {
        let document = self.splunkd.kv_get(COLLECTION, &marker_key(dedupe_key))?;
        Ok(document
            .filter(|document| text(document, "dedupe_key").as_deref() == Some(dedupe_key))
            .and_then(|document| document.get("started_unix").and_then(Value::as_i64)))
    }

    pub fn save(&self, documents: &[Value]) -> Result<()> {
        for chunk in documents.chunks(PAGE) {
            self.splunkd.kv_batch_save(COLLECTION, chunk)?;
        }
        Ok(())
    }

    fn kv_clear_sending(&self, dedupe_key: &str) -> Result<()> {
        self.splunkd.kv_delete(COLLECTION, &marker_key(dedupe_key))
    }

    /// Removes deliveries recorded before `cutoff_unix` (markers are never expired, see
    /// `ledger.rs`). Returns how many were removed.
    fn kv_expire(&self, cutoff_unix: f64) -> Result<usize> {
        let query = json!({"kind": "delivered", "delivered_unix": {"$lt": cutoff_unix}});
        let mut removed = 0;
        loop {
            // Always the first page: what was deleted no longer matches.
            let page = self.splunkd.kv_query_fields(COLLECTION, &query, 0, PAGE, Some("_key"))?;
            for document in &page {
                if let Some(key) = document.get("_key").and_then(Value::as_str) {
                    self.splunkd.kv_delete(COLLECTION, key)?;
                    removed += 1;
                }
            }
            if page.len() < PAGE {
                return Ok(removed);
            }
        }
    }
}

impl KvLedger {
    /// Moves the file ledger's entries and markers into the collection. A file is removed only
    /// once the KV store has its document.
    pub fn migrate_files(&self) -> Result<usize> {
        let dir = self.files.dir();
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(error) => {
                return Err(Error::Spool { path: dir.to_path_buf(), detail: error.to_string() });
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
        self.save(&documents)?;
        for path in &paths {
            if let Err(error) = fs::remove_file(path)
                && error.kind() != std::io::ErrorKind::NotFound
            {
                return Err(Error::Spool { path: path.clone(), detail: error.to_string() });
            }
        }
        if !paths.is_empty() {
            log::info!(
                "spool: moved {} ledger entries and sending markers from {} into the KV store collection {COLLECTION}",
                paths.len(),
                dir.display(),
            );
        }
        Ok(paths.len())
    }
}

impl Ledger for KvLedger {
    fn get(&self, dedupe_key: &str) -> Result<Option<LedgerEntry>> {
        if let Some(entry) = self.kv_get(dedupe_key)? {
            return Ok(Some(entry));
        }
        self.files.get(dedupe_key)
    }

    fn sending_since(&self, dedupe_key: &str) -> Result<Option<i64>> {
        if let Some(started) = self.kv_sending_since(dedupe_key)? {
            return Ok(Some(started));
        }
        self.files.sending_since(dedupe_key)
    }

    fn mark_sending(&self, dedupe_key: &str, started_unix: i64) -> Result<()> {
        self.save(&[KvLedger::marker_document(dedupe_key, started_unix)])
    }

    fn clear_sending(&self, dedupe_key: &str) {
        if let Err(error) = self.kv_clear_sending(dedupe_key) {
            // Harmless but for one lookup: a marker left makes the next attempt ask first.
            log::warn!("cannot remove the sending marker of {dedupe_key}: {error}");
        }
        self.files.remove_marker(dedupe_key);
    }

    fn record(&self, entry: &LedgerEntry) -> Result<()> {
        self.save(&[KvLedger::entry_document(entry)]).map_err(|error| {
            Error::Unavailable(format!("cannot record the delivery in the ledger: {error}"))
        })
    }

    fn expire(&self, retention: std::time::Duration) -> Result<usize> {
        let cutoff = now_unix() - retention.as_secs_f64();
        Ok(self.kv_expire(cutoff)? + self.files.expire_before(cutoff)?)
    }

    fn expire_hourly(&self, retention: std::time::Duration) -> Result<usize> {
        self.files.hourly(true, || self.expire(retention))
    }
}
