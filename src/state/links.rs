//! The objects the state input follows, from the KV store collection `stackflow_links`: every
//! object linked in the last `lookback_days`, and every older one not known to be closed
//! (PRODUCT §15, "Open cases are followed until they close": `lookback_days` bounds only
//! closed objects). Which old objects are closed is the checkpoint's knowledge (the last
//! status reported); an old link never polled before is polled once to learn it.
//!
//! A notable's container and incident are chosen by the one rule of `item::link` (the newest
//! `updated` wins, on a tie the main record), as `| stackflowsync` and the listener choose
//! them: an object that is no notable's choice any more is not followed. An object chosen by
//! several notables (an item that carried many) is named by the item's main record.

use crate::error::Result;
use crate::item::link::{COLLECTION, Link, Newest};
use crate::remotes::splunkd::Splunkd;
use serde_json::{Value, json};
use std::cmp::Ordering;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Links read per KV store request.
const LINKS_PAGE: usize = 1000;
/// Links in the look-back window read in one run at most, and older links at most.
const MAX_LINKS: usize = 100_000;
/// Only what a link contributes is read (KV store `fields`), so pages stay small.
const LINK_FIELDS: &str = "_key,event_id,soar_container_id,stackflow_incident_id,updated";

/// What a link ties an object to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkRef {
    pub event_id: String,
    pub dedupe_key: String,
}

impl LinkRef {
    fn of(link: &Link) -> LinkRef {
        LinkRef { event_id: link.event_id.clone(), dedupe_key: link.dedupe_key().to_string() }
    }
}

/// The objects this app created, from `stackflow_links`.
#[derive(Debug, Default)]
pub struct Links {
    pub containers: BTreeMap<u64, LinkRef>,
    pub incidents: BTreeMap<String, LinkRef>,
    /// Objects of old links left out because they are known to be closed: their checkpoint
    /// entries are kept (what was reported stays known), those of unlinked objects dropped.
    pub closed_containers: BTreeSet<String>,
    pub closed_incidents: BTreeSet<String>,
}

/// Objects known to be closed (from the checkpoint): their old links are not followed.
pub struct Closed<'a> {
    pub containers: &'a BTreeSet<String>,
    pub incidents: &'a BTreeSet<String>,
}

/// The records read so far, by notable (its `event_id`, or for a record without one its own
/// `_key`): the records that win its container and its incident.
#[derive(Default)]
struct Notables(HashMap<(bool, String), Newest>);

impl Notables {
    fn add(&mut self, record: &Value) {
        let link = Link::decode(record);
        let notable = match link.event_id.is_empty() {
            false => (true, link.event_id.clone()),
            true => (false, link.key.clone()),
        };
        self.0.entry(notable).or_default().offer(&link);
    }

    /// The objects to follow: each notable's choice, except old choices known to be closed.
    fn links(self, since_unix: f64, closed: &Closed) -> Links {
        let mut links = Links::default();
        let mut containers: BTreeMap<u64, Link> = BTreeMap::new();
        let mut incidents: BTreeMap<String, Link> = BTreeMap::new();
        let old = |link: &Link| link.updated < since_unix;
        for newest in self.0.into_values() {
            if let Some(link) = newest.container
                && let Some(id) = link.soar_id()
            {
                if old(&link) && closed.containers.contains(&id.to_string()) {
                    links.closed_containers.insert(id.to_string());
                } else {
                    name(containers.entry(id), link);
                }
            }
            if let Some(link) = newest.incident
                && let Some(id) = link.stackflow_incident_id.clone()
            {
                if old(&link) && closed.incidents.contains(&id) {
                    links.closed_incidents.insert(id);
                } else {
                    name(incidents.entry(id), link);
                }
            }
        }
        links.containers = containers.iter().map(|(id, link)| (*id, LinkRef::of(link))).collect();
        links.incidents =
            incidents.iter().map(|(id, link)| (id.clone(), LinkRef::of(link))).collect();
        links
    }
}

/// Names an object by `link` unless a better record names it already: the item's main record,
/// then the rule of `item::link`.
fn name<K: Ord>(named: Entry<'_, K, Link>, link: Link) {
    match named {
        Entry::Vacant(entry) => {
            entry.insert(link);
        }
        Entry::Occupied(mut entry) => {
            let held = entry.get();
            let main = link.is_main().cmp(&held.is_main());
            if main.then(link.precedence(held)) == Ordering::Greater {
                entry.insert(link);
            }
        }
    }
}

impl Links {
    /// Links updated since `since_unix`, then the older links, page by page (each part bounded
    /// by [`MAX_LINKS`]); each notable's objects chosen, old ones known to be closed left out.
    pub fn read(splunkd: &Splunkd, since_unix: f64, closed: &Closed) -> Result<Links> {
        let mut notables = Notables::default();
        let recent = json!({"updated": {"$gte": since_unix}});
        let complete = each_link(splunkd, &recent, &mut |record| notables.add(record))?;
        if !complete {
            log::warn!(
                "stackflow_state: more than {MAX_LINKS} links in the look-back window; only the first {MAX_LINKS} are polled (lower lookback_days)"
            );
        }
        let old = json!({"updated": {"$lt": since_unix}});
        let complete = each_link(splunkd, &old, &mut |record| notables.add(record))?;
        if !complete {
            log::warn!(
                "stackflow_state: more than {MAX_LINKS} links older than the look-back window; open objects beyond the first {MAX_LINKS} are not followed"
            );
        }
        Ok(notables.links(since_unix, closed))
    }
}

/// Every link matching `query` (at most [`MAX_LINKS`]); whether all were read.
fn each_link(splunkd: &Splunkd, query: &Value, add: &mut dyn FnMut(&Value)) -> Result<bool> {
    let mut skip = 0;
    while skip < MAX_LINKS {
        let page =
            splunkd.kv_query_fields(COLLECTION, query, skip, LINKS_PAGE, Some(LINK_FIELDS))?;
        page.iter().for_each(&mut *add);
        if page.len() < LINKS_PAGE {
            return Ok(true);
        }
        skip += page.len();
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> BTreeSet<String> {
        BTreeSet::new()
    }

    fn links_of(records: &[Value], since_unix: f64, closed: &Closed) -> Links {
        let mut notables = Notables::default();
        records.iter().for_each(|record| notables.add(record));
        notables.links(since_unix, closed)
    }

    #[test]
    fn links_prefer_the_main_record() {
        let (containers, incidents) = (none(), none());
        let closed = Closed { containers: &containers, incidents: &incidents };
        let links = links_of(
            &[
                json!({"_key": "k1#e2", "event_id": "e2", "soar_container_id": 7}),
                json!({"_key": "k1", "event_id": "e1", "soar_container_id": "7"}),
                json!({"_key": "k2", "event_id": "e3", "stackflow_incident_id": "INC1"}),
                json!({"_key": "k3", "slack_channel": "C1"}),
            ],
            0.0,
            &closed,
        );
        assert_eq!(
            links.containers[&7],
            LinkRef { event_id: "e1".into(), dedupe_key: "k1".into() }
        );
        assert_eq!(links.incidents["INC1"].dedupe_key, "k2");
        assert_eq!((links.containers.len(), links.incidents.len()), (1, 1));
    }

    #[test]
    fn a_notable_follows_its_newest_container_only() {
        let (containers, incidents) = (none(), none());
        let closed = Closed { containers: &containers, incidents: &incidents };
        let links = links_of(
            &[
                json!({"_key": "k1", "event_id": "e1", "soar_container_id": 7, "updated": 1}),
                json!({"_key": "k2#e1", "event_id": "e1", "soar_container_id": 8, "updated": 2}),
                json!({"_key": "k3", "event_id": "e3", "soar_container_id": 9, "updated": 2}),
                json!({"_key": "k4#e3", "event_id": "e3", "soar_container_id": 10, "updated": 2}),
            ],
            0.0,
            &closed,
        );
        assert_eq!(links.containers.keys().copied().collect::<Vec<_>>(), [8, 9]);
        assert_eq!(
            links.containers[&8],
            LinkRef { event_id: "e1".into(), dedupe_key: "k2".into() }
        );
        assert_eq!(links.containers[&9].event_id, "e3", "on a tie the main record");
    }

    #[test]
    fn old_links_of_closed_objects_are_left_out() {
        let closed_containers = BTreeSet::from(["7".to_string()]);
        let closed_incidents = BTreeSet::from(["INC1".to_string()]);
        let closed = Closed { containers: &closed_containers, incidents: &closed_incidents };
        let links = links_of(
            &[
                json!({"_key": "k1", "soar_container_id": 7, "stackflow_incident_id": "INC2"}),
                json!({"_key": "k2", "soar_container_id": 8, "stackflow_incident_id": "INC1"}),
                json!({"_key": "k3", "soar_container_id": 7, "updated": 20}),
            ],
            10.0,
            &closed,
        );
        assert_eq!(links.containers.keys().copied().collect::<Vec<_>>(), [7, 8]);
        assert_eq!(links.containers[&7].dedupe_key, "k3", "a recent link is followed");
        assert_eq!(links.incidents.keys().cloned().collect::<Vec<_>>(), ["INC2"]);
        assert!(links.closed_containers.contains("7") && links.closed_incidents.contains("INC1"));
    }
}
