//! Unit tests of `sync`.

use super::*;
use crate::splunk::splunk_csv::Table;

#[test]
fn keys_come_from_fields_receipts_and_event_ids() {
    let body = "event_id,soar_container_id,action,remote_id,status,stackflow_incident_id\n\
                e1,42,,,1,\n\
                e2,,stackflow_soar,7,,\n\
                e3,,stackflow_incident,INC9,2,\n\
                ,,,,,INC1\n\
                ,,,,,\n\
                \"e4\nmore\",x,,,,\n";
    let table = Table::decode(body.as_bytes()).unwrap();
    let keys = RowKeys::extract(&table, &Options::default());
    assert_eq!(keys.len(), 6);
    assert_eq!(
        (keys[0].event_id.as_deref(), keys[0].soar_id, keys[0].status.as_ref()),
        (Some("e1"), Some(42), "1")
    );
    assert_eq!(keys[1].soar_id, Some(7));
    assert_eq!(keys[1].incident_id, None);
    assert_eq!(keys[2].incident_id.as_deref(), Some("INC9"));
    assert_eq!(keys[2].soar_id, None);
    assert_eq!(keys[3].incident_id.as_deref(), Some("INC1"));
    assert!(!keys[4].has_any());
    assert_eq!((keys[5].event_id.as_deref(), keys[5].soar_id), (Some("e4"), None));
    let soar_only = Options { target: options::Target::Soar, ..Options::default() };
    let keys = RowKeys::extract(&table, &soar_only);
    assert_eq!(keys[3].incident_id, None);
    assert!(!keys[3].has_any());
    let other = Table::decode(b"a,b\n1,2\n").unwrap();
    assert!(RowKeys::extract(&other, &Options::default()).is_empty());
}

#[test]
fn getinfo_validates_without_io() {
    let mut command = StackflowSync::new();
    let info = SearchInfo {
        args: vec!["target=soar".into(), "dry_run=yes".into()],
        ..SearchInfo::default()
    };
    let config = command.getinfo(&info).unwrap();
    assert_eq!(config.command_type, CommandType::Stateful);
    assert_eq!(config.required_fields, None);
    assert!(command.options().dry_run);
    assert!(command.runtime.is_none());
    let bad = SearchInfo { args: vec!["target=x".into()], ..SearchInfo::default() };
    let error = command.getinfo(&bad).unwrap_err();
    assert!(error.message().contains("accepted: target=soar|stackflow|all"), "{error}");
}

#[test]
fn unique_keeps_first_seen_order() {
    assert_eq!(unique([3, 1, 3, 2, 1].into_iter()), [3, 1, 2]);
}
