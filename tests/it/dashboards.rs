//! The *Response*, *StackFlow incidents* and *Detection tuning* dashboards query only
//! sourcetypes and fields the app writes: the fields of the stackflow_state input's events
//! (collected from a real run of the installed input against the emulators), of the receipts
//! and of the Slack interaction receipts (their writers' own serialisation). Every identifier a panel's search reads must be one of those, a field the
//! search itself defines (`eval x=`, `as x`), or one Splunk adds (`_time`, `sourcetype`…).

use crate::state::{Input, container, incident, start_run};
use serde_json::json;
use stackflow::splunk::stash::Receipt;
use std::collections::{BTreeMap, BTreeSet};

const DASHBOARDS: [&str; 3] =
    ["stackflow_response.xml", "stackflow_incidents.xml", "stackflow_tuning.xml"];
const SPLUNK_FIELDS: [&str; 7] =
    ["_time", "_raw", "index", "sourcetype", "source", "host", "count"];
/// SPL commands, functions and keywords the dashboards use.
const SPL_WORDS: [&str; 34] = [
    "bin",
    "span",
    "xyseries",
    "untable",
    "dc",
    "sum",
    "head",
    "index",
    "stats",
    "latest",
    "earliest",
    "values",
    "min",
    "max",
    "avg",
    "by",
    "as",
    "where",
    "eval",
    "if",
    "case",
    "now",
    "round",
    "true",
    "null",
    "table",
    "sort",
    "coalesce",
    "isnotnull",
    "tostring",
    "AND",
    "OR",
    "NOT",
    "search",
];

/// Sourcetype → the fields its events carry.
fn emitted() -> BTreeMap<String, BTreeSet<String>> {
    let input = Input::new();
    let emu = input.emu();
    let c = container(emu, 1, "e1");
    start_run(emu, c);
    emu.add_soar_action_run(c, json!({"status": "success", "result_summary": {"malicious": 1}}));
    incident(emu, "INC0000001", "new");
    let now = stackflow::civil_time::now_unix();
    crate::sync::seed_links(
        emu,
        &[
            json!({"_key": "k1", "event_id": "e1", "soar_container_id": c, "updated": now}),
            json!({"_key": "k2", "event_id": "e1", "stackflow_incident_id": "INC0000001", "updated": now}),
        ],
    );
    let (run, events) = input.poll();
    run.assert_code(0);
    let mut fields: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for event in &events {
        let keys = event.data.as_object().unwrap().keys().cloned();
        fields.entry(event.sourcetype.clone()).or_default().extend(keys);
    }
    assert_eq!(fields.len(), 4, "one event of each sourcetype: {fields:?}");
    let receipt = Receipt {
        target: Some("x".into()),
        slack_channel: Some("C".into()),
        slack_ts: Some("1".into()),
        ..Receipt::default()
    };
    let line: serde_json::Value = serde_json::from_str(&receipt.to_line().unwrap()).unwrap();
    fields.insert("stackflow:receipt".into(), line.as_object().unwrap().keys().cloned().collect());
    let click = stackflow::respond::click::Click::parse(&json!({"type": "block_actions",
        "user": {"id": "U1", "username": "alice"},
        "container": {"type": "message", "channel_id": "C1", "message_ts": "1.1"},
        "actions": [{"action_id": "stackflow_false_positive", "value": "k", "action_ts": "2"}]}))
    .unwrap();
    let interaction = stackflow::respond::interaction_fields(
        &click,
        Some("alice"),
        "",
        &stackflow::respond::Context::default(),
        &stackflow::respond::Outcome::new(stackflow::respond::Verdict::Done, ""),
        "default",
        serde_json::Map::new(),
    );
    let mut keys: BTreeSet<String> = interaction.keys().cloned().collect();
    // A triage run's receipt adds its own fields (PRODUCT §16).
    let template = stackflow::mapping::triage::Template::all(
        &stackflow::splunk::conf::ConfFile::parse_str("[triage:t]\nsearch = index=main\n"),
    )
    .unwrap();
    keys.extend(stackflow::triage::receipt_fields(&template[0], None).keys().cloned());
    keys.insert("time".into());
    fields.insert(stackflow::respond::SOURCETYPE.into(), keys);
    fields
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&")
}

/// The problems of one search: unknown sourcetypes, identifiers nothing writes.
fn check_query(query: &str, emitted: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut problems = Vec::new();
    let sourcetype = regex::Regex::new(r#"sourcetype\s*==?\s*"([^"]+)""#).unwrap();
    let sourcetypes: Vec<String> =
        sourcetype.captures_iter(query).map(|c| c[1].to_string()).collect();
    if sourcetypes.is_empty() {
        problems.push(format!("no sourcetype named: {query}"));
    }
    let mut known: BTreeSet<String> = SPLUNK_FIELDS.iter().map(|f| f.to_string()).collect();
    for name in &sourcetypes {
        match emitted.get(name) {
            Some(fields) => known.extend(fields.iter().cloned()),
            None => problems.push(format!("sourcetype {name} is not written by the app")),
        }
    }
    let bare = regex::Regex::new(r#""[^"]*"|\$[^$]*\$|index=\w+"#).unwrap().replace_all(query, " ");
    let defined =
        regex::Regex::new(r"(?:\beval\s+|,\s*|\bas\s+)([A-Za-z_]\w*)(?:\s*=[^=]|\b)").unwrap();
    // `untable <x> <name field> <value field>` defines the last two.
    let untable = regex::Regex::new(r"\buntable\s+\w+\s+(\w+)\s+(\w+)").unwrap();
    for capture in untable.captures_iter(&bare) {
        known.extend([capture[1].to_string(), capture[2].to_string()]);
    }
    for capture in defined.captures_iter(&bare) {
        let whole = capture.get(0).unwrap().as_str();
        if whole.trim_start().starts_with("as") || whole.contains('=') {
            known.insert(capture[1].to_string());
        }
    }
    let identifier = regex::Regex::new(r"\b[A-Za-z_][A-Za-z0-9_]*\b").unwrap();
    for word in identifier.find_iter(&bare).map(|m| m.as_str()) {
        if !known.contains(word) && !SPL_WORDS.contains(&word) {
            problems.push(format!("{word}: no sourcetype of the search writes it"));
        }
    }
    problems
}

#[test]
fn every_panel_queries_only_what_the_app_writes() {
    let emitted = emitted();
    let home = crate::support::SplunkHome::new();
    let app = home.app_dir();
    let search = regex::Regex::new(
        r#"(?s)<search(?: id="(\w+)")?(?: base="(\w+)")?>\s*<query>(.*?)</query>"#,
    )
    .unwrap();
    let drilldown = regex::Regex::new(r"\$row\.(\w+)\|?\w*\$").unwrap();
    let panel = regex::Regex::new(r"(?s)<panel>(.*?)</panel>").unwrap();
    for name in DASHBOARDS {
        let text = std::fs::read_to_string(app.join("default/data/ui/views").join(name)).unwrap();
        let nav = std::fs::read_to_string(app.join("default/data/ui/nav/default.xml")).unwrap();
        assert!(
            nav.contains(&format!("<view name=\"{}\"", name.trim_end_matches(".xml"))),
            "{name} in the nav"
        );
        let mut bases = BTreeMap::new();
        let mut checked = 0;
        for capture in search.captures_iter(&text) {
            let query = unescape(&capture[3]);
            let full = match capture.get(2) {
                Some(base) => format!("{} | {query}", bases[base.as_str()]),
                None => query.clone(),
            };
            if let Some(id) = capture.get(1) {
                bases.insert(id.as_str().to_string(), query.clone());
            }
            let problems = check_query(&full, &emitted);
            assert!(problems.is_empty(), "{name}: {problems:?}\n{full}");
            checked += 1;
        }
        assert!(checked >= 4, "{name}: {checked} searches");
        // A drilldown link uses a field of its panel's table.
        for body in panel.captures_iter(&text) {
            for field in drilldown.captures_iter(&body[1]) {
                let table = body[1].rsplit("| table ").next().unwrap().split('<').next().unwrap();
                assert!(
                    table.split_whitespace().any(|f| f == &field[1]),
                    "{name}: $row.{}$ not in the table",
                    &field[1]
                );
            }
        }
        assert!(text.contains("$row."), "{name} has drilldowns");
    }
    // The checker fails on a field nothing writes and on a foreign sourcetype.
    let wrong = check_query(
        r#"index=stackflow sourcetype="stackflow:incident" | stats count by soar_priority"#,
        &emitted,
    );
    assert_eq!(wrong, ["soar_priority: no sourcetype of the search writes it"]);
    let foreign =
        check_query(r#"index=stackflow sourcetype="stackflow:change" | stats count"#, &emitted);
    assert_eq!(foreign, ["sourcetype stackflow:change is not written by the app"]);
    let cross = check_query(
        r#"index=stackflow sourcetype="stackflow:incident" | table container_id"#,
        &emitted,
    );
    assert_eq!(cross.len(), 1, "a container field is not an incident field: {cross:?}");
}
