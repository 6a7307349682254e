//! Unit tests of the state input's options (links: `links.rs`, cursors: `clock.rs`).

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
