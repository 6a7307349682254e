//! The writer of `stackflow_links` (moved from `audit/links.rs`): the records that tie a
//! delivered item (its dedupe key is the `_key`) and the notables it carried (`event_id`) to the
//! remote objects — SOAR container, StackFlow incident, Slack message — so that
//! `| stackflowsync`, the state input, the listener and the dashboards can find them again
//! (PRODUCT §4 "Receipts and links").
//!
//! One record per delivered (or duplicate) item, keyed by its dedupe key, whose `event_id` is
//! the first row's. An item that carries several notables (SOAR `grouping=alert`) also gets one
//! record per further distinct `event_id`, keyed `<dedupe key>#<event_id>`, so that a lookup by
//! any of its notables' `event_id` finds the container. Records are upserted with
//! `batch_save`, at most `BATCH` per call; a failing call is a WARN line and never changes the
//! run's exit code (the items themselves are delivered).

use crate::delivery::deliverer::DeliveryReport;
use crate::item::TargetKind;
use crate::item::link::{COLLECTION, Link};
use crate::remotes::splunkd::Splunkd;
use serde_json::Value;

/// Records per `batch_save` call (splunkd's default `max_documents_per_batch_save` is 1000).
pub const BATCH: usize = 1000;

/// The link records of one item (none unless it was delivered or already there), encoded.
pub fn link_records(report: &DeliveryReport, updated: f64) -> Vec<Value> {
    links_of(report, updated).iter().map(Link::encode).collect()
}

/// The links of one item: its main record, then one per further notable.
fn links_of(report: &DeliveryReport, updated: f64) -> Vec<Link> {
    if !report.result.is_success() {
        return Vec::new();
    }
    let remote_id = report
        .delivered
        .as_ref()
        .and_then(|delivered| delivered.remote_id.clone())
        .filter(|id| !id.is_empty());
    let mut link = Link { updated, ..Link::default() };
    match report.item.target {
        TargetKind::Soar => link.soar_container_id = remote_id,
        TargetKind::Stackflow => link.stackflow_incident_id = remote_id,
        TargetKind::Slack => {
            link.slack_channel = report.detail(&["slack_channel", "channel"]);
            link.slack_ts = report.detail(&["slack_ts", "ts"]);
            // What a click on the message's buttons needs (PRODUCT §9: no search per click).
            if link.slack_channel.is_some() || link.slack_ts.is_some() {
                link.extra = crate::mapping::slack::link_fields(&report.item.request_value());
            }
        }
    }
    let names_nothing = link.soar_container_id.is_none()
        && link.stackflow_incident_id.is_none()
        && link.slack_channel.is_none()
        && link.slack_ts.is_none();
    if names_nothing {
        return Vec::new();
    }
    let context = &report.item.context;
    let mut event_ids: Vec<&str> = Vec::new();
    let first = context.rows.first().map(|row| row.event_id.as_str()).unwrap_or(&context.event_id);
    for event_id in
        std::iter::once(first).chain(context.rows.iter().map(|row| row.event_id.as_str()))
    {
        if !event_id.is_empty() && !event_ids.contains(&event_id) {
            event_ids.push(event_id);
        }
    }
    let key = &report.item.dedupe_key;
    let mut links = Vec::with_capacity(event_ids.len().max(1));
    links.push(Link { key: key.clone(), event_id: first.to_string(), ..link.clone() });
    for event_id in event_ids.iter().filter(|id| **id != first) {
        links.push(Link {
            key: format!("{key}#{event_id}"),
            event_id: event_id.to_string(),
            ..link.clone()
        });
    }
    links
}

/// Buffers link records and saves them in batches.
pub struct LinkWriter {
    splunkd: Option<Splunkd>,
    pending: Vec<Value>,
    batch: usize,
    saved: usize,
    failed: usize,
    warned_no_splunkd: bool,
}

impl LinkWriter {
    pub fn new(splunkd: Option<Splunkd>) -> LinkWriter {
        LinkWriter {
            splunkd,
            pending: Vec::new(),
            batch: BATCH,
            saved: 0,
            failed: 0,
            warned_no_splunkd: false,
        }
    }

    pub fn with_batch(mut self, batch: usize) -> LinkWriter {
        self.batch = batch.max(1);
        self
    }

    /// Records saved and records that could not be saved so far.
    pub fn counts(&self) -> (usize, usize) {
        (self.saved, self.failed)
    }

    pub fn push(&mut self, records: Vec<Value>) {
        self.pending.extend(records);
        while self.pending.len() >= self.batch {
            let rest = self.pending.split_off(self.batch);
            let chunk = std::mem::replace(&mut self.pending, rest);
            self.save(&chunk);
        }
    }

    /// Saves what is still buffered.
    pub fn flush(&mut self) {
        let chunk = std::mem::take(&mut self.pending);
        if !chunk.is_empty() {
            self.save(&chunk);
        }
    }

    fn save(&mut self, chunk: &[Value]) {
        let Some(splunkd) = &self.splunkd else {
            self.failed += chunk.len();
            if !self.warned_no_splunkd {
                self.warned_no_splunkd = true;
                log::warn!(
                    "links: splunkd is not reachable with this run's settings; {COLLECTION} is not updated"
                );
            }
            return;
        };
        match splunkd.kv_batch_save(COLLECTION, chunk) {
            Ok(()) => self.saved += chunk.len(),
            Err(error) => {
                self.failed += chunk.len();
                log::warn!("links: {} records not saved to {COLLECTION}: {error}", chunk.len());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::deliverer::Final;
    use crate::item::{DeliveryItem, ItemContext, RowRef};
    use crate::net::{Delivered, RejectClass};
    use serde_json::{Map, json};
    use std::time::Duration;

    pub fn report(
        target: TargetKind,
        result: Final,
        delivered: Option<Delivered>,
        rows: &[(&str, &str)],
    ) -> DeliveryReport {
        let rows: Vec<RowRef> = rows
            .iter()
            .map(|(rid, event_id)| RowRef {
                rid: rid.to_string(),
                event_id: event_id.to_string(),
                ..RowRef::default()
            })
            .collect();
        DeliveryReport {
            item: DeliveryItem {
                target,
                account: "default".into(),
                dedupe_key: "dk".into(),
                request: DeliveryItem::raw_from_value(&Value::Null),
                context: ItemContext {
                    rid: rows.first().map(|r| r.rid.clone()).unwrap_or_default(),
                    event_id: rows.first().map(|r| r.event_id.clone()).unwrap_or_default(),
                    rows,
                    ..ItemContext::default()
                },
                list_index: None,
            },
            result,
            attempts: 1,
            duration: Duration::from_millis(5),
            delivered,
            message: String::new(),
        }
    }

    #[test]
    fn soar_links_by_dedupe_key_and_every_notable() {
        let delivered = Delivered { remote_id: Some("42".into()), ..Delivered::default() };
        let report = report(
            TargetKind::Soar,
            Final::Delivered,
            Some(delivered),
            &[("0", "E1"), ("1", "E2"), ("2", "E1"), ("3", "")],
        );
        let records = link_records(&report, 10.5);
        assert_eq!(records.len(), 2);
        assert_eq!(
            records[0],
            json!({"_key": "dk", "event_id": "E1", "soar_container_id": 42, "updated": 10.5})
        );
        assert_eq!(
            records[1],
            json!({"_key": "dk#E2", "event_id": "E2", "soar_container_id": 42, "updated": 10.5})
        );
    }

    #[test]
    fn slack_and_stackflow_fields_and_nothing_for_failures() {
        let mut details = Map::new();
        details.insert("channel".into(), json!("C123"));
        details.insert("ts".into(), json!("1714557600.000100"));
        let delivered = Delivered { details, duplicate: true, ..Delivered::default() };
        let records = link_records(
            &report(TargetKind::Slack, Final::Duplicate, Some(delivered), &[("0", "")]),
            1.0,
        );
        assert_eq!(
            records,
            [
                json!({"_key": "dk", "event_id": "", "slack_channel": "C123", "slack_ts": "1714557600.000100", "updated": 1.0})
            ]
        );
        let delivered = Delivered { remote_id: Some("INC0001001".into()), ..Delivered::default() };
        let records = link_records(
            &report(TargetKind::Stackflow, Final::Delivered, Some(delivered), &[("0", "E")]),
            1.0,
        );
        assert_eq!(records[0]["stackflow_incident_id"], "INC0001001");
        for result in [Final::Spooled, Final::Lost, Final::Rejected(RejectClass::Remote)] {
            assert!(
                link_records(&report(TargetKind::Soar, result, None, &[("0", "E")]), 1.0)
                    .is_empty()
            );
        }
    }

    #[test]
    fn without_splunkd_records_are_counted_as_failed_not_kept() {
        let mut writer = LinkWriter::new(None).with_batch(2);
        writer.push(vec![json!({"_key": "a"}), json!({"_key": "b"}), json!({"_key": "c"})]);
        assert_eq!(writer.counts(), (0, 2));
        writer.flush();
        assert_eq!(writer.counts(), (0, 3));
    }
}
