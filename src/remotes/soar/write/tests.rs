//! Unit tests of the SOAR target (`write`).

use super::*;
use crate::mapping::soar::SoarMapper;
use crate::mapping::{AlertContext, RowMapper};
use crate::splunk::results::{FieldValue, Row};
use std::sync::Arc;

/// Items as an alert run maps them: 1,001 rows, one with two `src` values and an escaped
/// `event_id`, in batches of up to 500 artifacts with the playbook on the last.
fn mapped_items() -> Vec<DeliveryItem> {
    let context = AlertContext {
        action: "stackflow_soar".into(),
        sid: "scheduler__admin__search__RMD5_at_1763750000_7".into(),
        search_name: "Brute Force".into(),
        params: [("playbook".to_string(), "7".to_string())].into_iter().collect(),
        ..AlertContext::default()
    };
    let mut mapper = SoarMapper::new(context).unwrap();
    let mut items = Vec::new();
    for n in 0..1001 {
        let src = if n == 499 {
            FieldValue::Multi(vec!["10.0.0.1".into(), "10.0.0.2".into()])
        } else {
            FieldValue::Single(format!("10.1.{}.{}", n / 256, n % 256))
        };
        let event_id = FieldValue::Single(format!("E\"{n}\\"));
        items.extend(
            mapper
                .push(&Row::from_pairs(&n.to_string(), &[("src", src), ("event_id", event_id)]))
                .unwrap(),
        );
    }
    items.extend(mapper.finish().unwrap());
    items
}

/// Container SDI, batch, last batch, playbook, and each artifact's text, SDI, automation.
type Summary = (String, u32, bool, Option<String>, Vec<(String, String, bool)>);

fn summary(item: &DeliveryItem) -> Summary {
    let (head, artifacts) =
        read_request(item).unwrap_or_else(|_| panic!("{} reads", item.dedupe_key));
    let artifacts = artifacts
        .into_iter()
        .map(|a| (a.text.to_string(), a.sdi.into_owned(), a.run_automation))
        .collect();
    (head.container.source_data_identifier, head.batch, head.last_batch, head.playbook, artifacts)
}

#[test]
fn the_mappers_index_reads_as_the_full_parse_does() {
    let items = mapped_items();
    assert_eq!(items.len(), 3);
    for item in &items {
        let index = item.list_index.as_deref().expect("mapped items carry their index");
        assert!(from_index(item.request.get(), index).is_some(), "the index fits");
        let parsed = DeliveryItem { list_index: None, ..item.clone() };
        assert_eq!(summary(item), summary(&parsed));
    }
    let last = summary(&items[2]);
    assert_eq!((last.1, last.2, last.3.as_deref()), (2, true, Some("7")));
    assert!(last.4.last().unwrap().2, "the last artifact runs automation");
    assert_eq!(summary(&items[0]).4[0].1, "E\"0\\");
}

#[test]
fn an_index_that_does_not_fit_the_text_is_not_used() {
    let item = mapped_items().remove(0);
    let mut index = (**item.list_index.as_ref().unwrap()).clone();
    index.list.end = item.request.get().len() + 1;
    assert!(from_index(item.request.get(), &index).is_none());
    let broken = DeliveryItem { list_index: Some(Arc::new(index)), ..item.clone() };
    assert_eq!(summary(&broken), summary(&item));
    let mut index = (**item.list_index.as_ref().unwrap()).clone();
    index.elements[3].id = 0..index.ids.len() + 1;
    assert!(from_index(item.request.get(), &index).is_none());
    let broken = DeliveryItem { list_index: Some(Arc::new(index)), ..item.clone() };
    assert_eq!(summary(&broken), summary(&item));
}

#[test]
fn failed_is_authoritative() {
    let body =
        serde_json::json!({"failed": true, "message": "Severity matching query does not exist."});
    assert_eq!(failed_message(&body).as_deref(), Some("Severity matching query does not exist."));
    assert_eq!(failed_message(&serde_json::json!({"success": true, "id": 3})), None);
}

#[test]
fn ids_may_be_numbers_or_strings() {
    assert_eq!(id_of(Some(&serde_json::json!(42))), Some(42));
    assert_eq!(id_of(Some(&serde_json::json!("42"))), Some(42));
    assert_eq!(id_of(Some(&serde_json::json!("x"))), None);
}
