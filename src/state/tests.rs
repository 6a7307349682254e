//! Unit tests of the state input's pure parts: options, links, cursors.

use super::*;

fn stanza(params: &[(&str, &str)]) -> Stanza {
    Stanza {
        name: "stackflow_state://prod".into(),
        app: "stackflow".into(),
        params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

#[test]
fn options_have_defaults_and_bounds() {
    let options = InputOptions::from_stanza(&stanza(&[("interval", "300")])).unwrap();
    assert_eq!(options.account, "prod");
    assert_eq!((options.lookback_days, options.max_events, options.overlap_s), (30, 10_000, 300));
    assert_eq!(options.run_time_field, "update_time");
    let options = InputOptions::from_stanza(&stanza(&[
        ("account", "lab"),
        ("max_events", "5"),
        ("run_time_field", ""),
    ]))
    .unwrap();
    assert_eq!((options.account.as_str(), options.max_events), ("lab", 5));
    assert_eq!(options.run_time_field, "update_time", "an empty param is the default");
    let options = InputOptions::from_stanza(&stanza(&[("run_time_field", "none")])).unwrap();
    assert_eq!(options.run_time_field, "", "none: no time filter on runs");
    for (name, value) in [
        ("max_events", "0"),
        ("max_events", "-1"),
        ("lookback_days", "99999999999999999999"),
        ("account", "a/b"),
        ("run_time_field", "x&y"),
        ("overlap_s", "1e3"),
    ] {
        let error = InputOptions::from_stanza(&stanza(&[(name, value)])).unwrap_err();
        assert!(error.contains(name), "{name}: {error}");
    }
}

#[test]
fn links_prefer_the_main_record() {
    let mut links = Links::default();
    links.add(&json!({"_key": "k1#e2", "event_id": "e2", "soar_container_id": 7}));
    links.add(&json!({"_key": "k1", "event_id": "e1", "soar_container_id": "7"}));
    links.add(&json!({"_key": "k2", "event_id": "e3", "stackflow_incident_id": "INC1"}));
    links.add(&json!({"_key": "k3", "slack_channel": "C1"}));
    assert_eq!(links.containers[&7], LinkRef { event_id: "e1".into(), dedupe_key: "k1".into() });
    assert_eq!(links.incidents["INC1"].dedupe_key, "k2");
    assert_eq!((links.containers.len(), links.incidents.len()), (1, 1));
}

#[test]
fn cursors_move_by_instant_with_an_overlap() {
    assert_eq!(with_overlap("2026-01-01T00:05:00.5Z", 300), "2026-01-01T00:00:00Z");
    assert_eq!(with_overlap("not a time", 300), "not a time");
    assert!(!with_overlap("1970-01-01T00:00:00Z", u64::MAX).is_empty(), "saturates");
    let newer = later(Some("2026-01-01T00:00:00.9Z".into()), "2026-01-01T00:00:01Z");
    assert_eq!(newer.as_deref(), Some("2026-01-01T00:00:01Z"));
    let kept = later(Some("2026-01-01T00:00:02Z".into()), "2026-01-01T00:00:01.5Z");
    assert_eq!(kept.as_deref(), Some("2026-01-01T00:00:02Z"));
    assert_eq!(later(None, "").as_deref(), None);
}
