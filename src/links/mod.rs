//! The one owner of the KV store collection `stackflow_links` (issue 24): `write` saves the
//! records of delivered items (`LinkWriter`), and the reads here give every reader the records
//! decoded by the one decoder (`item::link::Link`) and judged by the one rule (the newest
//! `updated` wins, on a tie the main record) — for `| stackflowsync`, the Slack listener and
//! the alert actions. The state input reads the collection page by page (`state/links`) with
//! the same decoder and rule.

mod write;

pub use crate::item::link::{COLLECTION, Link, Newest, by_notable};
pub use write::{BATCH, LinkWriter, link_records};

use crate::error::Result;
use crate::net::url_encode;
use crate::remotes::splunkd::Splunkd;
use serde_json::json;
use std::collections::HashMap;

/// The KV store query's URL stays under this many bytes of encoded event ids (splunkd and
/// proxies refuse long request lines).
const MAX_KV_QUERY_BYTES: usize = 5_000;

/// The records of these notables, in queries whose URL stays small.
pub fn of_notables(splunkd: &Splunkd, event_ids: &[&str]) -> Result<Vec<Link>> {
    let mut links = Vec::new();
    let mut start = 0;
    while start < event_ids.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < event_ids.len() {
            let cost = url_encode(event_ids[end]).len() + 9;
            if end > start && bytes + cost > MAX_KV_QUERY_BYTES {
                break;
            }
            bytes += cost;
            end += 1;
        }
        let query = json!({"event_id": {"$in": event_ids[start..end]}});
        links.extend(splunkd.kv_query(COLLECTION, &query)?.iter().map(Link::decode));
        start = end;
    }
    Ok(links)
}

/// The container and incident of each of these notables, by the one rule.
pub fn newest_of_notables(
    splunkd: &Splunkd,
    event_ids: &[&str],
) -> Result<HashMap<String, Newest>> {
    Ok(by_notable(&of_notables(splunkd, event_ids)?))
}

/// The record a reference names: the record whose `_key` it is, else the winning record of the
/// notable whose `event_id` it is; `None` when StackFlow recorded neither.
pub fn by_reference(splunkd: &Splunkd, reference: &str) -> Result<Option<Link>> {
    if reference.is_empty() {
        return Ok(None);
    }
    if let Some(record) = splunkd.kv_get(COLLECTION, reference)? {
        return Ok(Some(Link::decode(&record)));
    }
    let links = of_notables(splunkd, &[reference])?;
    Ok(Link::newest(&links).cloned())
}
