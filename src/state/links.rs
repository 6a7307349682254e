//! The objects the state input follows, from the KV store collection `stackflow_links`: every
//! object linked in the last `lookback_days`, and every older one not known to be closed
//! (PRODUCT §15, "Open cases are followed until they close": `lookback_days` bounds only
//! closed objects). Which old objects are closed is the checkpoint's knowledge (the last
//! status reported); an old link never polled before is polled once to learn it.

use crate::error::Result;
use crate::remotes::response as remote;
use crate::remotes::splunkd::Splunkd;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

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

impl Links {
    /// Adds one link record; the item's main record (`_key` without `#event_id`) wins.
    pub fn add(&mut self, record: &Value) {
        let key = remote::text(record.get("_key"));
        let main = !key.contains('#');
        let link = LinkRef {
            event_id: remote::text(record.get("event_id")),
            dedupe_key: key.split('#').next().unwrap_or_default().to_string(),
        };
        if let Some(id) = record.get("soar_container_id").and_then(remote::as_u64)
            && (main || !self.containers.contains_key(&id))
        {
            self.containers.insert(id, link.clone());
        }
        let incident = remote::text(record.get("stackflow_incident_id")).trim().to_string();
        if !incident.is_empty() && (main || !self.incidents.contains_key(&incident)) {
            self.incidents.insert(incident, link);
        }
    }

    /// Adds an old link's objects that are not known to be closed.
    fn add_open(&mut self, record: &Value, closed: &Closed) {
        let mut open = record.clone();
        if let Some(object) = open.as_object_mut() {
            let container = record.get("soar_container_id").and_then(remote::as_u64);
            if let Some(id) = container.map(|id| id.to_string())
                && closed.containers.contains(&id)
            {
                object.remove("soar_container_id");
                self.closed_containers.insert(id);
            }
            let incident = remote::text(record.get("stackflow_incident_id")).trim().to_string();
            if closed.incidents.contains(&incident) {
                object.remove("stackflow_incident_id");
                self.closed_incidents.insert(incident);
            }
        }
        self.add(&open);
    }

    /// Links updated since `since_unix`, then the older links of objects not known to be
    /// closed, page by page (each part bounded by [`MAX_LINKS`]).
    pub fn read(splunkd: &Splunkd, since_unix: f64, closed: &Closed) -> Result<Links> {
        let mut links = Links::default();
        let recent = json!({"updated": {"$gte": since_unix}});
        let complete = each_link(splunkd, &recent, &mut |record| links.add(record))?;
        if !complete {
            log::warn!(
                "stackflow_state: more than {MAX_LINKS} links in the look-back window; only the first {MAX_LINKS} are polled (lower lookback_days)"
            );
        }
        let old = json!({"updated": {"$lt": since_unix}});
        let complete = each_link(splunkd, &old, &mut |record| links.add_open(record, closed))?;
        if !complete {
            log::warn!(
                "stackflow_state: more than {MAX_LINKS} links older than the look-back window; open objects beyond the first {MAX_LINKS} are not followed"
            );
        }
        Ok(links)
    }
}

/// Every link matching `query` (at most [`MAX_LINKS`]); whether all were read.
fn each_link(splunkd: &Splunkd, query: &Value, add: &mut dyn FnMut(&Value)) -> Result<bool> {
    let collection = crate::audit::links::COLLECTION;
    let mut skip = 0;
    while skip < MAX_LINKS {
        let page =
            splunkd.kv_query_fields(collection, query, skip, LINKS_PAGE, Some(LINK_FIELDS))?;
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

    #[test]
    fn links_prefer_the_main_record() {
        let mut links = Links::default();
        links.add(&json!({"_key": "k1#e2", "event_id": "e2", "soar_container_id": 7}));
        links.add(&json!({"_key": "k1", "event_id": "e1", "soar_container_id": "7"}));
        links.add(&json!({"_key": "k2", "event_id": "e3", "stackflow_incident_id": "INC1"}));
        links.add(&json!({"_key": "k3", "slack_channel": "C1"}));
        assert_eq!(
            links.containers[&7],
            LinkRef { event_id: "e1".into(), dedupe_key: "k1".into() }
        );
        assert_eq!(links.incidents["INC1"].dedupe_key, "k2");
        assert_eq!((links.containers.len(), links.incidents.len()), (1, 1));
    }

    #[test]
    fn old_links_of_closed_objects_are_left_out() {
        let closed_containers = BTreeSet::from(["7".to_string()]);
        let closed_incidents = BTreeSet::from(["INC1".to_string()]);
        let closed = Closed { containers: &closed_containers, incidents: &closed_incidents };
        let mut links = Links::default();
        links.add_open(
            &json!({"_key": "k1", "soar_container_id": 7, "stackflow_incident_id": "INC2"}),
            &closed,
        );
        links.add_open(
            &json!({"_key": "k2", "soar_container_id": 8, "stackflow_incident_id": "INC1"}),
            &closed,
        );
        assert_eq!(links.containers.keys().copied().collect::<Vec<_>>(), [8]);
        assert_eq!(links.incidents.keys().cloned().collect::<Vec<_>>(), ["INC2"]);
        assert!(links.closed_containers.contains("7") && links.closed_incidents.contains("INC1"));
    }
}
