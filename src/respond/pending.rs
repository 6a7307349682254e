//! Clicks kept for later (PRODUCT §15 "Long-running inputs and an expired session"): a click
//! already acknowledged to Slack that cannot be finished now — splunkd or the KV store out
//! beyond the click's budget, or splunkd refusing the input's session key — is kept, in
//! `stackflow_interactions` as `state = pending` when the KV store takes it, else as a file in
//! the modular input's `checkpoint_dir`, and acted on once later: at the next start, and
//! before the next click or every `RESUME_EVERY` while running. A pending record in the KV
//! store is taken by one listener only (a conditional insert of `resume:<click>:<since>`);
//! the checkpoint folder belongs to this input alone.

use super::{INTERACTIONS_COLLECTION, Responder};
use crate::civil_time::now;
use crate::outbox::write_atomically;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How often a running listener looks for kept clicks when no click comes.
pub const RESUME_EVERY: Duration = Duration::from_secs(60);
/// A kept click tried this many times more is failed (never held forever).
const MAX_RESUMES: u64 = 20;
/// Kept clicks read per look (the rest wait for the next one).
const PAGE: usize = 50;
/// A checkpoint file larger than this is not ours.
const MAX_FILE: u64 = 64 * 1024 * 1024;
const FOLDER: &str = "stackflow_pending_clicks";

/// A click kept for later.
#[derive(Clone, Debug)]
pub struct Kept {
    pub envelope_id: String,
    pub payload: Value,
    /// Times it was taken up again.
    pub resumes: u64,
}

/// Where a kept click went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeptIn {
    Kv,
    File,
    Nowhere,
}

fn folder(checkpoint_dir: &Path) -> PathBuf {
    checkpoint_dir.join(FOLDER)
}

/// Keeps a click: the KV store first (unless splunkd is known to refuse us), else the
/// checkpoint folder.
pub fn keep(responder: &Responder, click_key: &str, kept: &Kept, kv_usable: bool) -> KeptIn {
    let payload = kept.payload.to_string();
    if kv_usable {
        let record = json!({"_key": click_key, "kind": "click", "state": "pending",
            "outcome": "", "account": responder.account, "envelope_id": kept.envelope_id,
            "payload": payload, "resumes": kept.resumes,
            "pending_since": now().as_secs_f64(), "updated": now().as_secs_f64()});
        match responder.splunkd.kv_update(INTERACTIONS_COLLECTION, click_key, &record) {
            Ok(()) => return KeptIn::Kv,
            Err(error) => {
                log::warn!("Socket Mode: click {click_key} not kept in the KV store: {error}")
            }
        }
    }
    let Some(dir) = responder.checkpoint_dir.as_deref() else {
        log::error!("Socket Mode: click {click_key} cannot be kept: no checkpoint_dir");
        return KeptIn::Nowhere;
    };
    let file = json!({"envelope_id": kept.envelope_id, "payload": kept.payload,
                      "resumes": kept.resumes});
    let path = folder(dir).join(format!("{click_key}.json"));
    match write_atomically(&folder(dir), &path, file.to_string().as_bytes()) {
        Ok(()) => KeptIn::File,
        Err(error) => {
            log::error!("Socket Mode: click {click_key} cannot be kept: {error}");
            KeptIn::Nowhere
        }
    }
}

/// The clicks kept in the checkpoint folder (file path and click).
pub fn files(checkpoint_dir: &Path) -> Vec<(PathBuf, Kept)> {
    let Ok(entries) = std::fs::read_dir(folder(checkpoint_dir)) else { return Vec::new() };
    let mut found = Vec::new();
    for entry in entries.flatten().take(PAGE) {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let small = entry.metadata().map(|m| m.len() <= MAX_FILE).unwrap_or(false);
        let parsed = small
            .then(|| std::fs::read(&path).ok())
            .flatten()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
        match parsed.as_ref().and_then(kept_of_file) {
            Some(kept) => found.push((path, kept)),
            None => {
                log::error!("Socket Mode: {} is not a kept click; removed", path.display());
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    found
}

fn kept_of_file(value: &Value) -> Option<Kept> {
    Some(Kept {
        envelope_id: value.get("envelope_id")?.as_str()?.to_string(),
        payload: value.get("payload")?.clone(),
        resumes: value.get("resumes").and_then(Value::as_u64).unwrap_or(0),
    })
}

/// The clicks of this account kept in the KV store that this listener took up (each by a
/// conditional insert, so no other listener takes it too).
pub fn take_from_kv(responder: &Responder) -> crate::error::Result<Vec<(String, Kept)>> {
    let query = json!({"state": "pending", "account": responder.account});
    let records = responder.splunkd.kv_query_page(INTERACTIONS_COLLECTION, &query, 0, PAGE)?;
    let mut taken = Vec::new();
    for record in records {
        let text = |name: &str| record.get(name).and_then(Value::as_str).unwrap_or("").to_string();
        let key = text("_key");
        let since = record.get("pending_since").and_then(Value::as_f64).unwrap_or(0.0);
        let Ok(payload) = serde_json::from_str::<Value>(&text("payload")) else {
            log::error!("Socket Mode: kept click {key} has no readable payload");
            continue;
        };
        let claim = json!({"_key": format!("resume:{key}:{since}"), "kind": "resume",
                           "updated": now().as_secs_f64()});
        if !responder.splunkd.kv_insert(
            INTERACTIONS_COLLECTION,
            &claim,
            responder.conflict_status,
        )? {
            continue;
        }
        let resumes = record.get("resumes").and_then(Value::as_u64).unwrap_or(0);
        taken.push((key, Kept { envelope_id: text("envelope_id"), payload, resumes }));
    }
    Ok(taken)
}

/// Whether a kept click has been tried often enough.
pub fn exhausted(kept: &Kept) -> bool {
    kept.resumes >= MAX_RESUMES
}
