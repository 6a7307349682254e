//! The delivery ledger in the replicated KV store, for search head cluster members (PRODUCT
//! §11, `[delivery] store = kvstore`): the collection `stackflow_ledger` holds what `ledger.rs`
//! keeps in files on a standalone search head, so that a StackFlow incident or Slack message
//! delivered by one member is known to every member, and a *sending* marker left by a member
//! killed mid-send makes the next member ask the remote instead of sending blind.
//!
//! Documents: a delivery `{_key: <item id>, kind: "delivered", dedupe_key, remote_id,
//! remote_url, details (JSON text), delivered_unix}` and a marker `{_key: "sending.<item id>",
//! kind: "sending", dedupe_key, started_unix}`. Both are written with `batch_save`, which the
//! KV store REST API documents as an upsert (Splunk REST API reference, "storage/collections/
//! data/{collection}/batch_save"); no conditional write is needed: an entry only ever says
//! "delivered", and a marker only ever widens the window a lookup covers.

use super::ledger::LedgerEntry;
use crate::error::Result;
use crate::item::item_id;
use crate::remotes::splunkd::Splunkd;
use serde_json::{Value, json};

/// The collection (collections.conf).
pub const COLLECTION: &str = "stackflow_ledger";
/// Documents per query page and per `batch_save` of a migration.
const PAGE: usize = 500;

pub struct KvLedger {
    splunkd: Splunkd,
}

fn marker_key(dedupe_key: &str) -> String {
    format!("sending.{}", item_id(dedupe_key))
}

fn text(document: &Value, field: &str) -> Option<String> {
    document.get(field).and_then(Value::as_str).map(str::to_string)
}

impl KvLedger {
    pub fn new(splunkd: Splunkd) -> KvLedger {
        KvLedger { splunkd }
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

    pub fn get(&self, dedupe_key: &str) -> Result<Option<LedgerEntry>> {
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

    pub fn sending_since(&self, dedupe_key: &str) -> Result<Option<i64>> {
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

    pub fn clear_sending(&self, dedupe_key: &str) -> Result<()> {
        self.splunkd.kv_delete(COLLECTION, &marker_key(dedupe_key))
    }

    /// Removes deliveries recorded before `cutoff_unix` (markers are never expired, see
    /// `ledger.rs`). Returns how many were removed.
    pub fn expire(&self, cutoff_unix: f64) -> Result<usize> {
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
