//! A record of the KV store collection `stackflow_links`, pure: the one `Link` type, its one
//! decoder and encoder, the collection's name, and the one rule for "which container / incident
//! belongs to this notable" (issue 24). The records are written and read in `links/`; they are
//! here, below `remotes/` and `mapping/`, so the Slack target can read them too.
//!
//! A delivered item has a *main* record keyed by its dedupe key (`event_id` its first row's) and
//! one record per further notable keyed `<dedupe key>#<event_id>` (PRODUCT §4 "Receipts and
//! links"). A notable can therefore have several records — a SOAR container, a StackFlow
//! incident, a Slack message, and a later item that carried it again. The rule: among a
//! notable's records that name the object, the newest `updated` wins; on a tie the main record
//! (a `_key` without `#`); on a tie again the smaller `_key`, so the answer never depends on the
//! order the store returned them in.

use serde_json::{Map, Value, json};
use std::cmp::Ordering;
use std::collections::HashMap;

/// The one name of the collection.
pub const COLLECTION: &str = "stackflow_links";

/// One `stackflow_links` record.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Link {
    /// `_key`: the item's dedupe key, or `<dedupe key>#<event_id>`.
    pub key: String,
    /// The notable's `event_id` (empty for an item without one).
    pub event_id: String,
    /// The SOAR container's id, as text (written as a number when it is one).
    pub soar_container_id: Option<String>,
    pub stackflow_incident_id: Option<String>,
    pub slack_channel: Option<String>,
    pub slack_ts: Option<String>,
    /// Unix seconds of the write (0 when absent or not a number).
    pub updated: f64,
    /// Every other field (what a click on a Slack message needs: `search_name`, `playbooks`, …).
    pub extra: Map<String, Value>,
}

/// The named fields; everything else is `extra`.
const NAMED: [&str; 7] = [
    "_key",
    "event_id",
    "soar_container_id",
    "stackflow_incident_id",
    "slack_channel",
    "slack_ts",
    "updated",
];

/// A field as trimmed text: a string or a number; `None` when empty or another type.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) => Some(text.trim().to_string()).filter(|text| !text.is_empty()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

impl Link {
    /// The one decoder. Never fails: a field of an unexpected type reads as absent.
    pub fn decode(record: &Value) -> Link {
        let updated = match record.get("updated") {
            Some(Value::Number(number)) => number.as_f64(),
            Some(Value::String(text)) => text.trim().parse::<f64>().ok(),
            _ => None,
        };
        let extra = record
            .as_object()
            .map(|fields| {
                fields
                    .iter()
                    .filter(|(name, _)| !NAMED.contains(&name.as_str()))
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect()
            })
            .unwrap_or_default();
        Link {
            key: text(record.get("_key")).unwrap_or_default(),
            event_id: text(record.get("event_id")).unwrap_or_default(),
            soar_container_id: text(record.get("soar_container_id")),
            stackflow_incident_id: text(record.get("stackflow_incident_id")),
            slack_channel: text(record.get("slack_channel")),
            slack_ts: text(record.get("slack_ts")),
            updated: updated.filter(|updated| updated.is_finite()).unwrap_or(0.0),
            extra,
        }
    }

    /// The one encoder: the named fields over `extra`; `_key`, `event_id` and `updated`
    /// always. The collection types `soar_container_id` as a number; text that is not one is
    /// kept as text.
    pub fn encode(&self) -> Value {
        let mut fields = self.extra.clone();
        fields.insert("_key".into(), Value::String(self.key.clone()));
        fields.insert("event_id".into(), Value::String(self.event_id.clone()));
        if let Some(id) = &self.soar_container_id {
            let value = id.parse::<u64>().map(Value::from).unwrap_or(Value::String(id.clone()));
            fields.insert("soar_container_id".into(), value);
        }
        let mut put = |name: &str, value: &Option<String>| {
            if let Some(value) = value {
                fields.insert(name.into(), Value::String(value.clone()));
            }
        };
        put("stackflow_incident_id", &self.stackflow_incident_id);
        put("slack_channel", &self.slack_channel);
        put("slack_ts", &self.slack_ts);
        fields.insert("updated".into(), json!(self.updated));
        Value::Object(fields)
    }

    /// The item's main record (a `_key` without `#<event_id>`).
    pub fn is_main(&self) -> bool {
        !self.key.contains('#')
    }

    /// The dedupe key of the item this record belongs to.
    pub fn dedupe_key(&self) -> &str {
        self.key.split('#').next().unwrap_or_default()
    }

    /// The SOAR container's id when it is a number.
    pub fn soar_id(&self) -> Option<u64> {
        self.soar_container_id.as_deref()?.parse().ok()
    }

    /// The rule: newer `updated` first, then the main record, then the smaller `_key`.
    /// `Greater` when `self` wins over `other`.
    pub fn precedence(&self, other: &Link) -> Ordering {
        self.updated
            .total_cmp(&other.updated)
            .then(self.is_main().cmp(&other.is_main()))
            .then_with(|| other.key.cmp(&self.key))
    }

    /// The record that wins among some of one notable's records.
    pub fn newest<'a>(links: impl IntoIterator<Item = &'a Link>) -> Option<&'a Link> {
        links.into_iter().max_by(|a, b| a.precedence(b))
    }
}

/// The winning records of one notable: the one that names its container, the one that names
/// its incident.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Newest {
    pub container: Option<Link>,
    pub incident: Option<Link>,
}

impl Newest {
    /// Takes one more of the notable's records into account.
    pub fn offer(&mut self, link: &Link) {
        let better = |held: &Option<Link>| {
            held.as_ref().is_none_or(|held| link.precedence(held) == Ordering::Greater)
        };
        if link.soar_id().is_some() && better(&self.container) {
            self.container = Some(link.clone());
        }
        if link.stackflow_incident_id.is_some() && better(&self.incident) {
            self.incident = Some(link.clone());
        }
    }

    pub fn soar_id(&self) -> Option<u64> {
        self.container.as_ref()?.soar_id()
    }

    pub fn incident_id(&self) -> Option<&str> {
        self.incident.as_ref()?.stackflow_incident_id.as_deref()
    }
}

/// The winners of every notable (`event_id`) among `links`; records without one are left out.
pub fn by_notable<'a>(links: impl IntoIterator<Item = &'a Link>) -> HashMap<String, Newest> {
    let mut notables: HashMap<String, Newest> = HashMap::new();
    for link in links.into_iter().filter(|link| !link.event_id.is_empty()) {
        notables.entry(link.event_id.clone()).or_default().offer(link);
    }
    notables
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_and_encode_round_trip() {
        let record = json!({"_key": "dk#E2", "event_id": "E2", "soar_container_id": 42,
            "stackflow_incident_id": "INC1", "slack_channel": "C1", "slack_ts": "1.2",
            "updated": 10.5, "playbooks": "block_ip"});
        let link = Link::decode(&record);
        assert_eq!(link.soar_id(), Some(42));
        assert_eq!((link.dedupe_key(), link.is_main()), ("dk", false));
        assert_eq!(link.extra.len(), 1);
        assert_eq!(link.encode(), record);
        let text = Link::decode(&json!({"soar_container_id": " x1 ", "updated": "7"}));
        assert_eq!((text.soar_container_id.as_deref(), text.soar_id()), (Some("x1"), None));
        assert_eq!(text.updated, 7.0);
        assert_eq!(text.encode()["soar_container_id"], "x1");
        assert_eq!(Link::decode(&json!({"updated": "NaN", "event_id": 5})).updated, 0.0);
        assert_eq!(Link::decode(&json!("not an object")), Link::default());
    }

    #[test]
    fn newest_wins_then_the_main_record_then_the_smaller_key() {
        let link = |key: &str, container: u64, updated: f64| {
            Link::decode(&json!({"_key": key, "event_id": "E", "soar_container_id": container,
                "updated": updated}))
        };
        let main = link("k1", 7, 1.0);
        let newer = link("k2#E", 8, 2.0);
        let tied = link("k3#E", 9, 1.0);
        let tied_smaller = link("k0#E", 10, 1.0);
        for order in [[&main, &newer, &tied], [&tied, &newer, &main]] {
            assert_eq!(Link::newest(order).unwrap().key, "k2#E");
            assert_eq!(by_notable(order)["E"].soar_id(), Some(8));
        }
        assert_eq!(Link::newest([&tied, &main, &tied_smaller]).unwrap().key, "k1");
        assert_eq!(Link::newest([&tied, &tied_smaller]).unwrap().key, "k0#E");
        // Container and incident are decided apart: a newer Slack record changes neither.
        let incident = Link::decode(&json!({"_key": "i1", "event_id": "E",
            "stackflow_incident_id": "INC1", "updated": 0}));
        let slack =
            Link::decode(&json!({"_key": "s1", "event_id": "E", "slack_ts": "1", "updated": 9}));
        let found = by_notable([&main, &incident, &slack, &link("x", 0, 0.0)]);
        assert_eq!((found["E"].soar_id(), found["E"].incident_id()), (Some(7), Some("INC1")));
        assert!(by_notable([&Link::default()]).is_empty());
    }
}
