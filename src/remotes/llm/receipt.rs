//! Audit of model calls (PRODUCT §13): one line per call with sourcetype `stackflow:llm` —
//! `model, account, sid, rid, latency_ms, prompt_tokens, completion_tokens, redactions` (counts
//! by kind), `outcome (ok|timeout|error|refused)` and, when it failed, why — never the prompt,
//! the context or the answer. Written as stash files like delivery receipts (`receipts`), named
//! `*.stash_stackflow_llm` for their own batch input.

use crate::splunk::stash::{ReceiptWriter, line_of};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

pub const SOURCETYPE: &str = "stackflow:llm";
pub const EXTENSION: &str = "stash_stackflow_llm";

#[derive(Clone, Debug, Default, Serialize)]
pub struct LlmReceipt {
    pub action: String,
    pub model: String,
    pub account: String,
    pub sid: String,
    pub rid: String,
    pub search_name: String,
    pub dedupe_key: String,
    pub latency_ms: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub redactions: BTreeMap<&'static str, u64>,
    pub outcome: String,
    pub message: String,
}

/// Writes one stash file per call (calls are few: one per message, within a time budget).
pub fn write(splunk_home: Option<&Path>, index: &str, receipt: &LlmReceipt) {
    let Some(home) = splunk_home else {
        log::warn!(
            "SPLUNK_HOME is unknown: the stackflow:llm receipt of this model call is not written"
        );
        return;
    };
    let time = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut writer = ReceiptWriter::new(home, index).with_sourcetype(SOURCETYPE, EXTENSION);
    let written = line_of(time, receipt)
        .and_then(|line| writer.push_line(line))
        .and_then(|()| writer.flush().map(|_| ()));
    if let Err(error) = written {
        log::warn!("cannot write the stackflow:llm receipt: {error}");
    }
}
