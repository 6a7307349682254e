//! The unit of delivery and the contract every remote meets: `DeliveryItem` (everything a
//! re-send needs except secrets, made by the mappers, stored by the outbox), its `item_id`,
//! and the `Target` trait a remote implements — one idempotent attempt answered with an
//! `Outcome`, and, for a remote that does not deduplicate, `find_delivered` (`Lookup`).
//! Below `mapping/` and `remotes/`, above `net/`: the types both sides share, and nothing else;
//! `link` the `stackflow_links` record, its decoder and encoder and the one rule for which
//! container or incident a notable has.

pub mod link;

use crate::net::{Delivered, Outcome};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::ops::Range;
use std::sync::Arc;

/// Which remote an item is for. The spool stores this name to rebuild the target on flush.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Soar,
    Stackflow,
    Slack,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Soar => "soar",
            TargetKind::Stackflow => "stackflow",
            TargetKind::Slack => "slack",
        }
    }

    /// The alert action stanza that produces items for this target.
    pub fn action_name(self) -> &'static str {
        match self {
            TargetKind::Soar => "stackflow_soar",
            TargetKind::Stackflow => "stackflow_incident",
            TargetKind::Slack => "stackflow_slack",
        }
    }
}

/// Where an item came from: what receipts, the modular-action log and links need.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemContext {
    pub action: String,
    pub sid: String,
    /// Row number (0-based) or the per-result alert's `result_id`; for an item that carries
    /// several rows, the first one.
    pub rid: String,
    #[serde(default)]
    pub orig_sid: String,
    #[serde(default)]
    pub orig_rid: String,
    #[serde(default)]
    pub event_id: String,
    #[serde(default)]
    pub search_name: String,
    #[serde(default)]
    pub app: String,
    #[serde(default)]
    pub owner: String,
    #[serde(default)]
    pub results_link: String,
    /// Every row this item carries (rid, orig_sid, orig_rid, event_id), for per-row status lines.
    #[serde(default)]
    pub rows: Vec<RowRef>,
}

/// A row an item carries.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowRef {
    pub rid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub orig_sid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub orig_rid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub event_id: String,
}

/// One unit of delivery: what to send, to which account, under which dedupe key. Holds no
/// secret: targets read credentials at send time.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeliveryItem {
    pub target: TargetKind,
    pub account: String,
    /// Stable across re-runs and re-sends; the idempotency key.
    pub dedupe_key: String,
    /// Target-specific request (SOAR container + artifacts, StackFlow payload, Slack message),
    /// kept as JSON text: an item is serialised once by its mapper and then written to the
    /// spool and read by its target without being rebuilt as a tree of values.
    pub request: RequestJson,
    pub context: ItemContext,
    /// The mapper's map of `request`, kept with the item in the process that mapped it so that
    /// its target does not parse the text again; never spooled (an item read back from the
    /// spool has none, and its target parses and checks it in full).
    #[serde(skip)]
    pub list_index: Option<Arc<ListIndex>>,
}

/// Where the parts of a request whose bulk is one JSON list (SOAR's artifacts) lie in its
/// text, as its mapper wrote them: the list, each element, and each element's identifier.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListIndex {
    /// The list's contents, between its `[` and `]`.
    pub list: Range<usize>,
    pub elements: Vec<ListElement>,
    /// The elements' identifiers, one after the other (`ListElement::id` are ranges of it).
    pub ids: String,
}

/// One element of an indexed list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListElement {
    /// The element's JSON text in the request.
    pub text: Range<usize>,
    /// Its identifier (SOAR: the source data identifier) in `ListIndex::ids`.
    pub id: Range<usize>,
    /// Marked by the mapper (SOAR: the artifact that runs automation).
    pub flagged: bool,
}

impl ListIndex {
    /// The identifier of `element`.
    pub fn id(&self, element: &ListElement) -> Option<&str> {
        self.ids.get(element.id.clone())
    }
}

/// Items are equal when their content is: the in-process `list_index` is not part of it.
impl PartialEq for DeliveryItem {
    fn eq(&self, other: &Self) -> bool {
        self.target == other.target
            && self.account == other.account
            && self.dedupe_key == other.dedupe_key
            && self.request == other.request
            && self.context == other.context
    }
}

impl DeliveryItem {
    /// Serialises a target's request into an item's JSON text.
    pub fn encode_request<T: Serialize>(request: &T) -> crate::error::Result<RequestJson> {
        serde_json::to_string(request).map(RequestJson::encoded).map_err(|error| {
            crate::error::Error::Internal(format!("cannot encode a request: {error}"))
        })
    }

    /// A request already built as a JSON value (Slack, StackFlow: one small request per item).
    pub fn raw_from_value(value: &serde_json::Value) -> RequestJson {
        // Serialising a `Value` cannot fail: its keys are strings and its numbers finite.
        RequestJson::encoded(serde_json::to_string(value).unwrap_or_else(|_| "null".into()))
    }

    /// The request as a JSON value (small requests; SOAR batches deserialise into their type).
    pub fn request_value(&self) -> serde_json::Value {
        serde_json::from_str(self.request.get()).unwrap_or(serde_json::Value::Null)
    }
}

/// A request's JSON text: one JSON value. Made in this process only by serde_json's encoder or
/// by a mapper writing JSON with its escaping (SOAR batches, up to a megabyte each, where a
/// second pass to check the text would cost as much as writing it), so it is taken as it is;
/// read back from a spool file or the KV store it is checked in full (`Deserialize` goes
/// through `RawValue`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestJson(String);

impl RequestJson {
    /// Text written by serde_json or with its escaping (see the type's doc). Debug builds, and
    /// so every test, check it.
    pub(crate) fn encoded(text: String) -> RequestJson {
        debug_assert!(
            serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok(),
            "a request is not one JSON value"
        );
        RequestJson(text)
    }

    pub fn get(&self) -> &str {
        &self.0
    }

    /// The text's buffer, for the mapper's next request (`RowMapper::reuse`).
    pub fn into_bytes(self) -> Vec<u8> {
        self.0.into_bytes()
    }
}

/// Written as the JSON value it is (not as a string). Checked through a borrowed `RawValue`
/// here, which costs a pass over the text: the alert's write-ahead, which writes every item,
/// goes through `spool::record` instead.
impl Serialize for RequestJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue = serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RequestJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(RequestJson(Box::<str>::from(raw).into()))
    }
}

/// A remote that items can be delivered to. `Send` so that delivery can run on its own thread
/// while the next rows are read and mapped.
pub trait Target: Send {
    /// One attempt at delivering `item`: may make several requests (SOAR: container, artifact
    /// pre-check, artifacts, playbook run), must be safe to repeat (idempotent by the item's
    /// dedupe key), and answers with a value, never a panic.
    fn attempt(&mut self, item: &DeliveryItem) -> Outcome;

    /// True when the remote does not deduplicate by itself (StackFlow's webhook, Slack): the
    /// deliverer then consults and updates the local ledger of delivered dedupe keys.
    fn needs_ledger(&self) -> bool {
        false
    }

    /// For a remote that does not deduplicate: after an attempt whose outcome is unknown (the
    /// request left, then a reset, a timeout or a kill), whether the remote holds the item —
    /// created at or after `since_unix` — so that it is not sent twice.
    fn find_delivered(&mut self, item: &DeliveryItem, since_unix: i64) -> Lookup {
        let _ = (item, since_unix);
        Lookup::Unsupported
    }
}

/// What a remote said when asked whether it already holds an item.
#[derive(Clone, Debug, PartialEq)]
pub enum Lookup {
    /// It does: the earlier attempt worked.
    Found(Delivered),
    /// It does not: sending is safe.
    Absent,
    /// The question could not be answered now (remote down, rate limited): the item waits
    /// rather than risk a duplicate.
    Unknown(String),
    /// The question cannot be answered for a lasting reason (a missing scope, a channel the
    /// bot has not joined, no read-back token): the item is sent again with a WARN naming the
    /// possible duplicate, never held forever for bookkeeping (PRODUCT §15).
    Impossible(String),
    /// This remote or account cannot be asked (e.g. no read-back API configured): the item is
    /// sent, and the possible duplicate is logged.
    Unsupported,
}

/// A file-name-safe id for a dedupe key: a 128-bit FNV-1a hash in hex.
pub fn item_id(dedupe_key: &str) -> String {
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for byte in dedupe_key.as_bytes() {
        hash ^= *byte as u128;
        hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
    }
    format!("{hash:032x}")
}
