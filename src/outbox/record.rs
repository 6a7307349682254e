//! The outbox's records, the same for files and the KV store: what is kept of one item
//! (`SpoolRecord`) and the alert run's fast way to write one (`SpoolRecordView::write_json`:
//! every item an alert sends is first written as a claim, and a SOAR batch is up to a megabyte
//! of JSON that must not be checked again on the way); an item's state, a listed item, a claim,
//! a quarantined item, and what a store's scan found for a flush's plan.

use crate::item::item_id;
use crate::item::{DeliveryItem, TargetKind};
use crate::net::RejectClass;
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::path::PathBuf;

/// Format version of the files, for future migrations.
pub const RECORD_VERSION: u32 = 1;

/// What the spool keeps about one item.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SpoolRecord {
    pub version: u32,
    pub id: String,
    pub item: DeliveryItem,
    /// Attempts so far, in the alert run and by flushes.
    pub attempts: u32,
    pub first_attempt_unix: f64,
    pub last_attempt_unix: f64,
    /// Not to be re-sent before this time (per-item backoff).
    pub next_attempt_unix: f64,
    pub last_error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_class: Option<RejectClass>,
    /// Flush attempts that ended in "retry later"; drives the spool backoff.
    #[serde(default)]
    pub flushes: u32,
    /// The remote asked (Retry-After) not to be contacted before this time: while any item of
    /// an account carries a later one, flushes do not probe that account (0: no such request).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub remote_hold_unix: f64,
}

fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

/// A `SpoolRecord` (without reject class or hold) that borrows its item: the alert run's
/// write-ahead claim, written with `write_json`.
#[derive(Debug)]
pub struct SpoolRecordView<'a> {
    pub version: u32,
    pub id: &'a str,
    pub item: &'a DeliveryItem,
    pub attempts: u32,
    pub first_attempt_unix: f64,
    pub last_attempt_unix: f64,
    pub next_attempt_unix: f64,
    pub last_error: &'a str,
    pub flushes: u32,
}

impl SpoolRecordView<'_> {
    /// Writes the JSON serde_json writes for the `SpoolRecord` with these values, field by
    /// field, with the item's request copied as it is: `RequestJson`'s `Serialize` would check
    /// it again first (see there), and this runs for every item of every alert.
    pub fn write_json(&self, out: &mut impl Write) -> io::Result<()> {
        let item = self.item;
        let mut record = Object::open(out)?;
        record.field("version", &self.version)?;
        record.field("id", self.id)?;
        record.key("item")?;
        let mut fields = Object::open(record.out)?;
        fields.field("target", &item.target)?;
        fields.field("account", &item.account)?;
        fields.field("dedupe_key", &item.dedupe_key)?;
        fields.key("request")?;
        fields.out.write_all(item.request.get().as_bytes())?;
        fields.field("context", &item.context)?;
        fields.close()?;
        record.field("attempts", &self.attempts)?;
        record.field("first_attempt_unix", &self.first_attempt_unix)?;
        record.field("last_attempt_unix", &self.last_attempt_unix)?;
        record.field("next_attempt_unix", &self.next_attempt_unix)?;
        record.field("last_error", self.last_error)?;
        record.field("flushes", &self.flushes)?;
        record.close()
    }
}

/// A JSON object being written: `{`, then `"key":value` pairs with commas between, then `}`.
struct Object<'w, W: Write> {
    out: &'w mut W,
    empty: bool,
}

impl<'w, W: Write> Object<'w, W> {
    fn open(out: &'w mut W) -> io::Result<Self> {
        out.write_all(b"{")?;
        Ok(Object { out, empty: true })
    }

    /// `"key":` (after a comma unless first); the caller writes the value.
    fn key(&mut self, key: &str) -> io::Result<()> {
        if !std::mem::take(&mut self.empty) {
            self.out.write_all(b",")?;
        }
        self.out.write_all(b"\"")?;
        self.out.write_all(key.as_bytes())?;
        self.out.write_all(b"\":")
    }

    /// `"key":value`, the value as serde_json writes it.
    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> io::Result<()> {
        self.key(key)?;
        serde_json::to_writer(&mut *self.out, value).map_err(io::Error::other)
    }

    fn close(self) -> io::Result<()> {
        self.out.write_all(b"}")
    }
}

/// Parses an item file; `id` (when not empty) must match the record's id.
pub(crate) fn parse_record(bytes: &[u8], id: &str) -> std::result::Result<SpoolRecord, String> {
    let record: SpoolRecord = serde_json::from_slice(bytes)
        .map_err(|error| format!("not a spool item ({} bytes): {error}", bytes.len()))?;
    if !id.is_empty() && record.id != id {
        return Err(format!("its id {} does not match its file name", record.id));
    }
    if record.id != item_id(&record.item.dedupe_key) {
        return Err("its id does not match its dedupe key".to_string());
    }
    Ok(record)
}

/// Where an item is: waiting, being sent, refused, or unreadable (a file's folder, or a KV
/// document's `state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemState {
    Pending,
    Inflight,
    Dead,
    Quarantine,
}

impl ItemState {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Pending => "pending",
            ItemState::Inflight => "inflight",
            ItemState::Dead => "dead",
            ItemState::Quarantine => "quarantine",
        }
    }
}

/// One item of the outbox as `spool list` shows it.
#[derive(Clone, Debug)]
pub struct Listed {
    pub state: ItemState,
    pub path: PathBuf,
    /// The record, or why the file cannot be read as one.
    pub record: std::result::Result<SpoolRecord, String>,
    /// Last modification, seconds since the epoch (0 when unknown).
    pub modified_unix: f64,
}

/// An item this process claimed (a file in `inflight/`, or a KV store lease) and must finish.
#[derive(Debug)]
pub struct Claim {
    pub id: String,
    pub path: PathBuf,
    pub record: SpoolRecord,
    /// The lease generation a KV store claim holds (0 for a file claim).
    pub token: u64,
}

/// A claimed item that was not readable: it has been moved to quarantine.
#[derive(Debug)]
pub struct Quarantined {
    pub original: PathBuf,
    pub moved_to: PathBuf,
    pub problem: String,
}

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
    /// A bounded scan (`Store::scan_bounded`) left pending items unread: counts are at least.
    pub more: bool,
}

/// What the last flush found: every account with pending items was down (or held by its
/// Retry-After), each with the item it probes with. While it holds, a flush probes each account
/// once with that item and reads nothing else of the backlog; a store drops it (`Store::outlook`
/// answers `None`) as soon as anything else may be pending (an item put, requeued, or left by a
/// crashed run).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Outlook {
    pub accounts: Vec<DownAccount>,
    /// The scan behind it was bounded and left items unread: its counts are at least.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub capped: bool,
}

/// One account the last flush found down.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DownAccount {
    pub target: TargetKind,
    pub account: String,
    /// The item the next flush probes with (the account's oldest), and its claim token.
    pub probe: String,
    pub token: u64,
    /// Pending items of the account when it was last counted.
    pub pending: usize,
    /// The remote's Retry-After: no probe before then (0: none).
    pub hold_until_unix: f64,
    pub reason: String,
}

/// At most this many items of a state a page of `spool list` or of the status line reads.
pub const PAGE: usize = 1000;

/// A page of one state's items, and whether the store holds more of them.
#[derive(Debug, Default)]
pub struct Page {
    pub items: Vec<Listed>,
    pub more: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::{ItemContext, RowRef, TargetKind};

    fn view_of(record: &SpoolRecord) -> SpoolRecordView<'_> {
        SpoolRecordView {
            version: record.version,
            id: &record.id,
            item: &record.item,
            attempts: record.attempts,
            first_attempt_unix: record.first_attempt_unix,
            last_attempt_unix: record.last_attempt_unix,
            next_attempt_unix: record.next_attempt_unix,
            last_error: &record.last_error,
            flushes: record.flushes,
        }
    }

    #[test]
    fn a_view_is_written_as_serde_writes_its_record_and_reads_back_as_it() {
        let request = serde_json::json!({
            "container": {"name": "a \"quoted\"\nname", "data": {"x": [1, 2.5, null]}},
            "artifacts": [{"cef": {"msg": "tab\there \\ é 😀"}}],
            "last_batch": true
        });
        let item = DeliveryItem {
            target: TargetKind::Soar,
            account: "prod \"eu\"".into(),
            dedupe_key: "sid:0\u{1}".into(),
            request: DeliveryItem::raw_from_value(&request),
            context: ItemContext {
                sid: "scheduler__admin".into(),
                rows: vec![RowRef {
                    rid: "7".into(),
                    event_id: "e\r1".into(),
                    ..RowRef::default()
                }],
                ..ItemContext::default()
            },
            list_index: None,
        };
        let record = SpoolRecord {
            version: RECORD_VERSION,
            id: "abc".into(),
            item,
            attempts: 3,
            first_attempt_unix: 1_700_000_000.123_456,
            last_attempt_unix: 1_700_000_001.5,
            next_attempt_unix: 1e10,
            last_error: "it said \"no\"".into(),
            reject_class: None,
            flushes: 2,
            remote_hold_unix: 0.0,
        };
        let mut written = Vec::new();
        view_of(&record).write_json(&mut written).unwrap();
        assert_eq!(
            String::from_utf8(written.clone()).unwrap(),
            serde_json::to_string(&record).unwrap()
        );
        let read: SpoolRecord = serde_json::from_slice(&written).unwrap();
        assert_eq!(read.item, record.item);
        assert_eq!(read.item.request_value(), request);
        assert_eq!((read.attempts, read.flushes, read.last_error), (3, 2, record.last_error));
    }
}
