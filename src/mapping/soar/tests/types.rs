//! Unit tests of PRODUCT §15 "CEF types follow the value": host names under the host-name
//! keys, ES endpoint fields under SOAR's CEF keys with their `contains`, Splunk-internal fields
//! left out, and the written bytes still serde's for every mix (property test).

use super::*;
use proptest::prelude::*;

fn cef_types(artifact: &Artifact) -> BTreeMap<String, Vec<String>> {
    artifact.cef_types.clone()
}

#[test]
fn an_address_field_holding_a_host_name_goes_to_the_host_name_key() {
    let row = Row::from_pairs(
        "0",
        &[("dest", one("finance-db")), ("src", one("203.0.113.7")), ("dvc", one("fw01.corp"))],
    );
    let artifacts = row_artifacts(&row, &FieldMapping::default(), "n", "high");
    assert_eq!(artifacts.len(), 1);
    let artifact = &artifacts[0];
    assert_eq!(artifact.cef.get("destinationHostName"), Some(&json_str("finance-db")));
    assert_eq!(artifact.cef.get("destinationAddress"), None);
    assert_eq!(artifact.cef.get("sourceAddress"), Some(&json_str("203.0.113.7")));
    assert_eq!(artifact.cef.get("deviceHostname"), Some(&json_str("fw01.corp")));
    assert_eq!(artifact.cef.get("dvc"), None);
    let types = cef_types(artifact);
    assert_eq!(types["destinationHostName"], ["host name"]);
    assert_eq!(types["deviceHostname"], ["host name"]);
    assert_eq!(types["sourceAddress"], ["ip"]);
    // A multivalue of addresses and names: each value under its own key, one artifact per
    // combination; IPv6 and networks stay addresses.
    let mixed = Row::from_pairs(
        "1",
        &[("dest", many(&["10.0.0.5", "web01", "2001:db8::7", "10.0.0.0/8"]))],
    );
    let artifacts = row_artifacts(&mixed, &FieldMapping::default(), "n", "high");
    let seen: Vec<(Option<&str>, Option<&str>)> = artifacts
        .iter()
        .map(|a| {
            (
                a.cef.get("destinationAddress").and_then(Value::as_str),
                a.cef.get("destinationHostName").and_then(Value::as_str),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (Some("10.0.0.5"), Some("web01")),
            (Some("2001:db8::7"), Some("web01")),
            (Some("10.0.0.0/8"), Some("web01")),
        ]
    );
    // `dest_host` after `dest` holding a name: the key is taken, so it stays in `data`.
    let both = Row::from_pairs("2", &[("dest", one("web01")), ("dest_host", one("web01.corp"))]);
    let artifact = &row_artifacts(&both, &FieldMapping::default(), "n", "high")[0];
    assert_eq!(artifact.cef["destinationHostName"], "web01");
    assert_eq!(artifact.data["dest_host"], "web01.corp");
}

fn json_str(text: &str) -> Value {
    Value::String(text.to_string())
}

#[test]
fn es_endpoint_fields_reach_soar_under_cef_keys_with_their_contains() {
    let row = Row::from_pairs(
        "0",
        &[
            ("process_name", one("powershell.exe")),
            ("parent_process_name", one("winword.exe")),
            ("process_hash", one("9f86d081884c7d659a2feaa0c55ad015")),
            ("file_name", one("invoice.docm")),
            ("file_path", one("C:\\Users\\jdoe\\Downloads\\invoice.docm")),
            ("url", one("http://evil.example/x")),
            ("registry_path", one("HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run")),
        ],
    );
    let artifact = &row_artifacts(&row, &FieldMapping::default(), "n", "high")[0];
    let expected = [
        ("deviceProcessName", "powershell.exe", Some("process name")),
        ("sourceProcessName", "winword.exe", Some("process name")),
        ("fileHash", "9f86d081884c7d659a2feaa0c55ad015", Some("hash")),
        ("fileName", "invoice.docm", Some("file name")),
        ("filePath", "C:\\Users\\jdoe\\Downloads\\invoice.docm", Some("file path")),
        ("requestURL", "http://evil.example/x", Some("url")),
        ("registryPath", "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run", None),
    ];
    for (key, value, contains) in expected {
        assert_eq!(artifact.cef.get(key), Some(&json_str(value)), "{key}");
        assert_eq!(artifact.cef_types.get(key).map(|types| types[0].as_str()), contains, "{key}");
    }
    assert!(artifact.data.is_empty(), "{:?}", artifact.data);
    // `file_hash` and `process_hash` share `fileHash`: the first in the file takes it.
    let both = Row::from_pairs("1", &[("file_hash", one("aaa")), ("process_hash", one("bbb"))]);
    let artifact = &row_artifacts(&both, &FieldMapping::default(), "n", "high")[0];
    assert_eq!(artifact.cef["fileHash"], "aaa");
    assert_eq!(artifact.data["process_hash"], "bbb");
}

#[test]
fn splunk_internal_fields_are_not_sent_but_time_and_raw_are() {
    let internal = [
        "_cd",
        "_bkt",
        "_si",
        "_serial",
        "_indextime",
        "_sourcetype",
        "splunk_server",
        "splunk_server_group",
        "linecount",
        "punct",
        "date_hour",
        "date_wday",
        "timestartpos",
        "timeendpos",
    ];
    let mut pairs: Vec<(&str, FieldValue)> =
        internal.iter().map(|name| (*name, one("internal-value"))).collect();
    pairs.push(("_time", one("1763750000")));
    pairs.push(("_raw", one("the event")));
    let row = Row::from_pairs("0", &pairs);
    let artifact = &row_artifacts(&row, &FieldMapping::default(), "n", "high")[0];
    let text = serde_json::to_string(artifact).unwrap();
    assert!(!text.contains("internal-value"), "{text}");
    assert_eq!(artifact.data["_time"], "1763750000");
    assert_eq!(artifact.data["_raw"], "the event");
}

/// Names of fields that map to address keys, host-name keys and others.
fn name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "src",
        "dest",
        "dvc",
        "src_ip",
        "dest_ip",
        "dvc_ip",
        "src_host",
        "dest_host",
        "dvc_host",
        "process",
        "process_name",
        "file_hash",
        "process_hash",
        "user",
        "other",
        "_time",
        "punct",
    ])
}

/// Values: addresses, networks, names, empty, awkward text.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])),
        any::<u128>().prop_map(|bits| std::net::Ipv6Addr::from(bits).to_string()),
        Just("10.0.0.0/8".to_string()),
        Just(String::new()),
        "[a-z][a-z0-9.-]{0,12}",
        "\\PC{0,8}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever mix of addresses and names a row holds, the hand-written JSON is serde's, for
    /// the default table and with overrides.
    #[test]
    fn written_bytes_match_serde_for_any_mix_of_addresses_and_names(
        fields in prop::collection::vec((name(), prop::collection::vec(value(), 1..14)), 0..6),
    ) {
        let pairs: Vec<(&str, FieldValue)> = fields
            .iter()
            .map(|(name, values)| {
                let value = if values.len() == 1 {
                    Single(values[0].clone())
                } else {
                    Multi(values.clone())
                };
                (*name, value)
            })
            .collect();
        let row = Row::from_pairs("0", &pairs);
        writer::assert_wire_matches(&row, &FieldMapping::default());
        writer::assert_wire_matches(&row, &FieldMapping::parse("dest_ip=sourceAddress,other=dvc").unwrap());
    }
}

#[test]
fn one_notable_has_one_severity_in_every_action_the_highest_of_a_multivalue() {
    use crate::mapping::slack::Severity;
    use crate::mapping::stackflow::{IncidentSettings, incident_payload};
    let context = AlertContext::default();
    let settings = IncidentSettings::from_context(&context).unwrap();
    for (pairs, soar, slack, stackflow, priority) in [
        (
            vec![("severity", many(&["low", "critical", "medium"]))],
            "high",
            Severity::Critical,
            "critical",
            "P1",
        ),
        (vec![("urgency", many(&["informational", "high"]))], "high", Severity::High, "high", "P2"),
        (
            vec![("severity", many(&["nonsense", "low"])), ("urgency", one("critical"))],
            "low",
            Severity::Low,
            "low",
            "P4",
        ),
        (vec![("severity", many(&["crit", "info"]))], "high", Severity::Critical, "crit", "P1"),
    ] {
        let row = Row::from_pairs("0", &pairs);
        assert_eq!(row_severity(&row), soar, "{pairs:?}");
        assert_eq!(Severity::of_row(&row), slack, "{pairs:?}");
        let body = incident_payload(&context, &settings, &row, "k");
        assert_eq!(body["severity"], stackflow, "{pairs:?}");
        assert_eq!(body["stackflow_priority"], priority, "{pairs:?}");
    }
}
