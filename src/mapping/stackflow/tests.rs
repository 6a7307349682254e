//! Unit tests of `stackflow`.

use super::*;
use crate::splunk::results::FieldValue::{Multi, Single};
use std::collections::BTreeMap;

fn context(params: &[(&str, &str)]) -> AlertContext {
    AlertContext {
        action: STANZA.into(),
        sid: "scheduler__admin__search__RMD5_at_1763750000_7".into(),
        search_name: "Brute Force Access Behavior Detected".into(),
        rows_total: 3,
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        trigger_time: 1_763_750_042,
        ..AlertContext::default()
    }
}

fn row(rid: &str, pairs: &[(&str, &str)]) -> Row {
    let pairs: Vec<(&str, FieldValue)> =
        pairs.iter().map(|(k, v)| (*k, Single(v.to_string()))).collect();
    Row::from_pairs(rid, &pairs)
}

fn map(params: &[(&str, &str)], rows: &[Row]) -> Vec<DeliveryItem> {
    let mut mapper = IncidentMapper::new(context(params)).unwrap();
    let mut items = Vec::new();
    for row in rows {
        items.extend(mapper.push(row).unwrap());
    }
    items.extend(mapper.finish().unwrap());
    items
}

fn text(item: &DeliveryItem, key: &str) -> String {
    item.request_value()
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no {key} in {}", item.request.get()))
}

#[test]
fn alert_mode_resolves_the_template_from_the_first_row() {
    let rows = [
        row(
            "0",
            &[
                ("severity", "high"),
                ("host", "web01"),
                ("source", "/var/log/secure"),
                ("message", "5 failures"),
            ],
        ),
        row("1", &[("severity", "critical"), ("host", "web02")]),
    ];
    let items = map(&[], &rows);
    assert_eq!(items.len(), 1);
    let item = &items[0];
    let request = item.request_value();
    let body = request.as_object().unwrap();
    for key in TEMPLATE_FIELDS {
        assert!(body[key].is_string(), "{key}: {}", body[key]);
    }
    assert_eq!(text(item, "search_name"), "Brute Force Access Behavior Detected");
    assert_eq!(text(item, "result_count"), "3");
    assert_eq!(text(item, "search_uri"), "scheduler__admin__search__RMD5_at_1763750000_7");
    assert_eq!(text(item, "severity"), "high");
    assert_eq!(text(item, "host"), "web01");
    assert_eq!(text(item, "source"), "/var/log/secure");
    assert_eq!(text(item, "message"), "5 failures");
    assert_eq!(text(item, "stackflow_priority"), "P2");
    assert_eq!(text(item, "stackflow_assignment_group"), "");
    assert_eq!(text(item, "timestamp"), "1763750042");
    assert_eq!(text(item, "short_description"), "Brute Force Access Behavior Detected on web01");
    assert_eq!(text(item, "ci_identifier"), "");
    assert_eq!(text(item, "source_ip"), "");
    assert_eq!(item.dedupe_key, "stackflow:default:scheduler__admin__search__RMD5_at_1763750000_7");
    assert_eq!(text(item, "dedupe_key"), item.dedupe_key);
    assert_eq!(item.target, TargetKind::Stackflow);
    assert_eq!(item.context.rid, "0");
}

#[test]
fn row_mode_makes_one_incident_per_row_with_distinct_stable_keys() {
    let rows =
        [row("0", &[("host", "a")]), row("1", &[("host", "a")]), row("2", &[("event_id", "E-9")])];
    let params = [("mode", "row"), ("account", "prod")];
    let items = map(&params, &rows);
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|item| text(item, "result_count") == "1"));
    assert_ne!(items[0].dedupe_key, items[1].dedupe_key, "rid is part of the hash");
    assert!(items[0].dedupe_key.starts_with("stackflow:prod:"));
    assert_eq!(items[2].dedupe_key, "stackflow:prod:E-9");
    let again = map(&params, &rows);
    let keys: Vec<&str> = items.iter().map(|item| item.dedupe_key.as_str()).collect();
    let keys_again: Vec<&str> = again.iter().map(|item| item.dedupe_key.as_str()).collect();
    assert_eq!(keys, keys_again);
    assert_eq!(items[1].context.rid, "1");
}

#[test]
fn row_hash_ignores_field_order_but_not_values() {
    let a = Row::from_pairs(
        "0",
        &[("x", Single("1".into())), ("y", Multi(vec!["a".into(), "b".into()]))],
    );
    let b = Row::from_pairs(
        "0",
        &[("y", Multi(vec!["a".into(), "b".into()])), ("x", Single("1".into()))],
    );
    let c = Row::from_pairs(
        "0",
        &[("x", Single("1".into())), ("y", Multi(vec!["a".into(), "c".into()]))],
    );
    assert_eq!(row_hash("s", "0", &a), row_hash("s", "0", &b));
    assert_ne!(row_hash("s", "0", &a), row_hash("s", "0", &c));
    assert_ne!(row_hash("s", "0", &a), row_hash("t", "0", &a));
    assert_eq!(row_hash("s", "0", &a).len(), 32);
}

#[test]
fn per_result_alerts_add_the_result_id() {
    let mut context = context(&[]);
    context.result_id = Some("4".into());
    let key = dedupe_key(&context, Mode::Alert, &row("4", &[]));
    assert_eq!(key, "stackflow:default:scheduler__admin__search__RMD5_at_1763750000_7:4");
}

#[test]
fn priority_precedence_row_field_then_severity_then_urgency_then_medium() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("stackflow_priority", "p1"), ("severity", "low")], "P1"),
        (&[("stackflow_priority", " P4 "), ("severity", "critical")], "P4"),
        (&[("stackflow_priority", "P9"), ("severity", "critical")], "P1"),
        (&[("stackflow_priority", "urgent"), ("severity", "High")], "P2"),
        (&[("severity", "informational")], "P4"),
        (&[("urgency", "critical")], "P1"),
        (&[("severity", "low"), ("urgency", "critical")], "P4"),
        (&[("severity", "weird")], "P3"),
        (&[], "P3"),
    ];
    for (pairs, expected) in cases {
        let items = map(&[], &[row("0", pairs)]);
        assert_eq!(text(&items[0], "stackflow_priority"), *expected, "{pairs:?}");
    }
}

#[test]
fn urgency_stands_in_for_a_missing_severity() {
    let items = map(&[], &[row("0", &[("urgency", "high")])]);
    assert_eq!(text(&items[0], "severity"), "high");
    assert_eq!(text(&items[0], "stackflow_priority"), "P2");
}

#[test]
fn severity_mapping_overrides_merge_over_the_defaults() {
    let params = [("severity_mapping", "high=p1, critical = P1 ,custom=P2,")];
    let items = map(&params, &[row("0", &[("severity", "HIGH")])]);
    assert_eq!(text(&items[0], "stackflow_priority"), "P1");
    let items = map(&params, &[row("0", &[("severity", "custom")])]);
    assert_eq!(text(&items[0], "stackflow_priority"), "P2");
    let items = map(&params, &[row("0", &[("severity", "low")])]);
    assert_eq!(text(&items[0], "stackflow_priority"), "P4", "defaults stay");
    let items = map(&[("severity_mapping", "medium=P2")], &[row("0", &[("severity", "bogus")])]);
    assert_eq!(text(&items[0], "stackflow_priority"), "P2", "unknown severities count as medium");
}

#[test]
fn assignment_group_row_field_wins_over_the_param() {
    let params = [("assignment_group", "SOC Tier 1")];
    let items = map(&params, &[row("0", &[])]);
    assert_eq!(text(&items[0], "stackflow_assignment_group"), "SOC Tier 1");
    let items = map(&params, &[row("0", &[("stackflow_assignment_group", "Network")])]);
    assert_eq!(text(&items[0], "stackflow_assignment_group"), "Network");
}

#[test]
fn notables_map_rule_name_dest_and_src() {
    let notable = row(
        "0",
        &[
            ("rule_name", "Excessive Failed Logins"),
            ("dest", "db01"),
            ("src", "10.1.2.3"),
            ("urgency", "critical"),
            ("event_id", "AAAA-1"),
            ("rule_title", "Excessive failed logins from 10.1.2.3"),
        ],
    );
    let items = map(&[("mode", "row")], &[notable]);
    let item = &items[0];
    assert_eq!(text(item, "short_description"), "Excessive Failed Logins");
    assert_eq!(text(item, "ci_identifier"), "db01");
    assert_eq!(text(item, "source_ip"), "10.1.2.3");
    assert_eq!(text(item, "severity"), "critical");
    assert_eq!(text(item, "stackflow_priority"), "P1");
    assert_eq!(
        text(item, "message"),
        "Excessive Failed Logins (critical severity). Activity from 10.1.2.3 to db01. Why notable: \
         Excessive failed logins from 10.1.2.3."
    );
    assert_eq!(item.dedupe_key, "stackflow:default:AAAA-1");
    assert_eq!(item.context.event_id, "AAAA-1");
}

#[test]
fn notable_mapping_overrides_replace_per_incident_field_and_add_fields() {
    let params = [(
        "notable_mapping",
        "signature=short_description,user=caller_id,dest_ip=ci_identifier,dest=ci_identifier",
    )];
    let r = row(
        "0",
        &[
            ("rule_name", "R"),
            ("signature", "Sig"),
            ("user", "bob"),
            ("dest", "db01"),
            ("src", "1.2.3.4"),
        ],
    );
    let item = &map(&params, &[r])[0];
    assert_eq!(text(item, "short_description"), "Sig");
    assert_eq!(text(item, "caller_id"), "bob");
    assert_eq!(text(item, "ci_identifier"), "db01", "dest_ip absent: the next source wins");
    assert_eq!(text(item, "source_ip"), "1.2.3.4", "defaults for other fields stay");
}

#[test]
fn notable_mapping_can_feed_template_fields_without_beating_the_row() {
    let params = [("notable_mapping", "risk_level=severity")];
    let item = &map(&params, &[row("0", &[("risk_level", "critical")])])[0];
    assert_eq!(text(item, "severity"), "critical");
    assert_eq!(text(item, "stackflow_priority"), "P1");
    let item = &map(&params, &[row("0", &[("risk_level", "critical"), ("severity", "low")])])[0];
    assert_eq!(text(item, "severity"), "low");
}

#[test]
fn bad_parameters_are_configuration_errors_naming_the_param() {
    let cases = [
        ("severity_mapping", "critical"),
        ("severity_mapping", "critical=P5"),
        ("severity_mapping", "=P1"),
        ("notable_mapping", "rule_name"),
        ("notable_mapping", "rule_name=short description"),
        ("notable_mapping", "x=dedupe_key"),
        ("mode", "batch"),
    ];
    for (param, value) in cases {
        let error = IncidentMapper::new(context(&[(param, value)]))
            .err()
            .unwrap_or_else(|| panic!("{param}={value}"));
        match &error {
            Error::Config { file, stanza, key, .. } => {
                assert_eq!(file, "alert_actions.conf");
                assert_eq!(stanza, "stackflow_incident");
                assert_eq!(key, &format!("param.{param}"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(error.exit_code(), crate::error::ExitCode::Configuration);
    }
}

#[test]
fn message_falls_back_to_a_one_line_summary() {
    let long = format!("line one\nline two {}", "x".repeat(600));
    let item = &map(&[], &[row("0", &[("_raw", &long)])])[0];
    let message = text(item, "message");
    assert!(message.starts_with("line one line two x"), "{message}");
    assert_eq!(message.chars().count(), SUMMARY_MAX_CHARS);
    let item = &map(&[], &[row("0", &[("description", "d"), ("_raw", "r")])])[0];
    assert!(text(item, "message").ends_with("Why notable: D."), "the template summary");
    let item = &map(&[], &[row("0", &[("_raw", "r"), ("_time", "1")])])[0];
    assert_eq!(text(item, "message"), "r", "no context field: the raw event");
    let item = &map(&[], &[row("0", &[("sourcetype", "x"), ("_time", "1")])])[0];
    assert_eq!(text(item, "message"), "sourcetype=x");
}

#[test]
fn alert_mode_sends_one_incident_from_the_first_row_carrying_every_row() {
    let mut mapper = IncidentMapper::new(context(&[])).unwrap();
    assert!(mapper.push(&row("0", &[("host", "first")])).unwrap().is_empty());
    assert!(mapper.push(&row("1", &[("host", "second")])).unwrap().is_empty());
    let items = mapper.finish().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(text(&items[0], "host"), "first");
    let rids: Vec<&str> = items[0].context.rows.iter().map(|r| r.rid.as_str()).collect();
    assert_eq!(rids, vec!["0", "1"]);
    assert!(mapper.finish().unwrap().is_empty());
}
