//! Triage (PRODUCT §13) end to end: template summaries of realistic ES notables posted by the
//! installed `stackflow_slack` action, checked against golden files.

use crate::slack::{posted, run_slack, setup};
use crate::support::*;
use serde_json::{Value, json};
use std::path::PathBuf;

/// An RBA risk notable ("Risk Threshold Exceeded For Object Over 24 Hour Period").
pub(crate) fn rba_notable() -> Vec<(&'static str, Cell)> {
    vec![
        ("_time", one("1763750000")),
        ("rule_name", one("Risk Threshold Exceeded For Object Over 24 Hour Period")),
        ("event_id", one("RBA-1")),
        ("urgency", one("critical")),
        ("risk_object", one("jdoe@acme.example")),
        ("risk_object_type", one("user")),
        ("risk_score", one("260")),
        ("risk_event_count", one("7")),
        ("source_count", one("4")),
        (
            "annotations.mitre_attack.mitre_tactic",
            many(&["initial-access", "execution", "credential-access"]),
        ),
        ("annotations.mitre_attack.mitre_technique_id", many(&["T1078", "T1059.001", "T1110"])),
        (
            "rule_description",
            one(
                "The risk score of an object exceeded 100 within 24 hours across several detections",
            ),
        ),
    ]
}

/// An ES brute-force notable.
pub(crate) fn brute_force_notable() -> Vec<(&'static str, Cell)> {
    vec![
        ("_time", one("1763750060")),
        ("rule_name", one("Brute Force Access Behavior Detected")),
        ("rule_title", one("Brute force access by 203.0.113.7 against vpn-gw-01")),
        ("event_id", one("BF-1")),
        ("urgency", one("high")),
        ("user", one("svc_backup")),
        ("src", one("203.0.113.7")),
        ("dest", one("vpn-gw-01")),
        ("action", one("failure")),
        ("count", one("137")),
        ("annotations.mitre_attack.mitre_tactic", one("credential-access")),
        ("annotations.mitre_attack.mitre_technique_id", one("T1110.001")),
    ]
}

/// An ES impossible-travel notable ("Geographically Improbable Access Detected").
pub(crate) fn travel_notable() -> Vec<(&'static str, Cell)> {
    vec![
        ("_time", one("1763750120")),
        ("rule_name", one("Geographically Improbable Access Detected")),
        ("event_id", one("GEO-1")),
        ("urgency", one("medium")),
        ("user", one("alice")),
        ("src", many(&["81.2.69.160", "175.45.176.3"])),
        ("src_city", one("London")),
        ("src_country", one("United Kingdom")),
        ("dest", one("vpn.acme.example")),
        ("distance", one("9550 km")),
        ("speed", one("3183 km/h")),
        ("mitre_tactic", one("initial-access")),
        ("mitre_technique", one("T1078")),
        (
            "description",
            one("Two logins from places too far apart to travel between in the time between them"),
        ),
    ]
}

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/summary").join(name)
}

#[track_caller]
fn assert_golden(name: &str, actual: &str) {
    let path = golden(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing: run with UPDATE_GOLDEN=1", path.display()));
    assert_eq!(actual, expected, "differs from {} (UPDATE_GOLDEN=1 rewrites it)", path.display());
}

/// The summary section of a one-row message: the block after the header and the context.
fn summary_of(body: &Value) -> String {
    body["blocks"][2]["text"]["text"].as_str().expect("a summary section").to_string()
}

#[test]
fn template_summaries_of_es_notables_match_golden_files() {
    let (home, emulator) = setup();
    let rows = [rba_notable(), brute_force_notable(), travel_notable()];
    let run = run_slack(&home, &emulator, &scheduler_sid(16), &rows, json!({"mode": "row"}));
    run.assert_code(0);
    let bodies = posted(&emulator);
    assert_eq!(bodies.len(), 3);
    for (body, name) in bodies.iter().zip(["rba.txt", "brute_force.txt", "impossible_travel.txt"]) {
        let summary = summary_of(body);
        for bad in ["null", "  ", "()", " ."] {
            assert!(!summary.contains(bad), "{bad:?} in {summary}");
        }
        assert_golden(name, &(summary + "\n"));
    }
}
