//! ES Adaptive Response and the audit trail: `param._cam` of every action, the receipt input
//! and props, and what a run leaves in Splunk — ModularAction log lines (checked against a
//! regex written from the reference grammar, not with the code's own formatter), receipt stash
//! files (field by field) and `stackflow_links` records in the emulated KV store — for
//! scheduled, ad hoc and real-time sids, and for failures.

use crate::support::{Cell, SESSION_KEY, SplunkHome, one, payload, scheduler_sid};
use regex::Regex;
use serde_json::{Map, Value, json};
use stackflow::audit::Audit;
use stackflow::delivery::deliverer::{DeliveryReport, Final};
use stackflow::item::{DeliveryItem, ItemContext, TargetKind};
use stackflow::mapping::AlertContext;
use stackflow::net::{Delivered, RejectClass};
use stackflow::remotes::splunkd::Splunkd;
use stackflow::secret::Secret;
use stackflow::settings::Settings;
use stackflow::splunk::conf::ConfFile;
use stackflow::splunk::results::{FieldValue, Row};
use stackflow_emulator::{Emulator, Fault};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

const STANZAS: [&str; 3] = ["stackflow_soar", "stackflow_incident", "stackflow_slack"];

// ---- the app's conf files -------------------------------------------------------------------

fn app_conf(name: &str) -> ConfFile {
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("app").join("stackflow");
    ConfFile::load_app_conf(&app, name).unwrap()
}

/// Every parameter an action ships with is on its alert form and in the spec (a parameter the
/// admin cannot see or look up is not configurable).
#[test]
fn every_action_parameter_is_on_the_form_and_in_the_spec() {
    let conf = app_conf("alert_actions.conf");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("app/stackflow");
    let spec = std::fs::read_to_string(root.join("README/alert_actions.conf.spec")).unwrap();
    for stanza in STANZAS {
        let form =
            std::fs::read_to_string(root.join(format!("default/data/ui/alerts/{stanza}.html")))
                .unwrap();
        let spec_part = spec.split(&format!("[{stanza}]")).nth(1).unwrap_or_default();
        let spec_part = spec_part.split("\n[").next().unwrap_or_default();
        let params: Vec<&String> = conf
            .stanza(stanza)
            .unwrap()
            .keys()
            .filter(|key| key.starts_with("param.") && *key != "param._cam")
            .collect();
        assert!(!params.is_empty(), "[{stanza}]");
        for param in params {
            assert!(form.contains(&format!("action.{stanza}.{param}\"")), "{stanza}.html: {param}");
            assert!(spec_part.contains(&format!("\n{param} =")), "spec [{stanza}]: {param}");
        }
    }
}

#[test]
fn every_action_declares_a_valid_common_action_model() {
    let conf = app_conf("alert_actions.conf");
    let views = Path::new(env!("CARGO_MANIFEST_DIR")).join("app/stackflow/default/data/ui/views");
    for stanza in STANZAS {
        let text = conf
            .get_nonempty(stanza, "param._cam")
            .unwrap_or_else(|| panic!("[{stanza}] has no param._cam"));
        let cam: Value = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("[{stanza}] param._cam is not JSON: {e}\n{text}"));
        for key in ["category", "task", "subject"] {
            let list = cam[key]
                .as_array()
                .unwrap_or_else(|| panic!("[{stanza}] _cam.{key} is not a list"));
            assert!(
                !list.is_empty() && list.iter().all(|v| v.as_str().is_some_and(|s| !s.is_empty())),
                "[{stanza}] _cam.{key}"
            );
        }
        let technology =
            cam["technology"].as_array().unwrap_or_else(|| panic!("[{stanza}] _cam.technology"));
        assert!(!technology.is_empty());
        for entry in technology {
            for key in ["vendor", "product"] {
                assert!(
                    entry[key].as_str().is_some_and(|s| !s.is_empty()),
                    "[{stanza}] technology.{key}: {entry}"
                );
            }
        }
        assert_eq!(cam["supports_adhoc"], json!(true), "[{stanza}] must run from Incident Review");
        let drilldown = cam["drilldown_uri"]
            .as_str()
            .unwrap_or_else(|| panic!("[{stanza}] _cam.drilldown_uri"));
        let view = drilldown.split('?').next().unwrap().rsplit('/').next().unwrap();
        assert!(
            views.join(format!("{view}.xml")).is_file(),
            "[{stanza}] drilldown view {view} is not in the app"
        );
        assert!(
            drilldown.contains("$sid$") && drilldown.contains("$rid$"),
            "[{stanza}] drilldown_uri: {drilldown}"
        );
        assert_eq!(conf.get(stanza, "payload_format"), Some("json"));
    }
}

#[test]
fn receipts_are_picked_up_and_their_time_is_read() {
    let inputs = app_conf("inputs.conf");
    let batch = inputs
        .stanza_names()
        .find(|name| name.starts_with("batch://") && name.ends_with("...stash_stackflow"))
        .expect("a batch input for ...stash_stackflow")
        .to_string();
    assert_eq!(inputs.get(&batch, "move_policy"), Some("sinkhole"));
    assert_eq!(inputs.get(&batch, "sourcetype"), Some("stackflow:receipt"));

    let props = app_conf("props.conf");
    let st = "stackflow:receipt";
    assert_eq!(
        props.get(st, "HEADER_MODE"),
        Some("firstline"),
        "the ***SPLUNK*** header must be honoured"
    );
    let prefix = Regex::new(props.get_nonempty(st, "TIME_PREFIX").unwrap()).unwrap();
    assert_eq!(props.get(st, "TIME_FORMAT"), Some("%s.%6N"));
    let lookahead: usize =
        props.get_nonempty(st, "MAX_TIMESTAMP_LOOKAHEAD").unwrap().parse().unwrap();
    // A receipt as the code writes it, with a message that mentions "time" itself.
    let receipt = stackflow::splunk::stash::Receipt {
        time: Duration::from_micros(1_763_750_000_000_001),
        message: "said \"time\": 5".into(),
        ..Default::default()
    };
    let line = receipt.to_line().unwrap();
    let found = prefix.find(&line).expect("TIME_PREFIX matches a receipt");
    assert_eq!(found.start(), 1, "the first match is the leading time key: {line}");
    let after = &line[found.end()..];
    let stamp = Regex::new(r"^\d{10}\.\d{6}[,}]").unwrap();
    assert!(stamp.is_match(after), "%s.%6N reads {after:?}");
    assert!("1763750000.000001".len() <= lookahead);
}

// ---- the ModularAction log grammar (reference §3.2), independent of the code ----------------

const FIXED_ORDER: [&str; 13] = [
    "worker",
    "signature",
    "action_name",
    "search_name",
    "sid",
    "orig_sid",
    "rid",
    "orig_rid",
    "app",
    "user",
    "digest_mode",
    "action_mode",
    "action_status",
];

#[derive(Debug)]
struct LogLine {
    level: String,
    pairs: Vec<(String, String)>,
}

impl LogLine {
    fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Parses every line of a modalert log, asserting the grammar and the key order.
fn parse_log(text: &str) -> Vec<LogLine> {
    let line_re = Regex::new(
        r#"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},\d{3}\+0000 (DEBUG|INFO|WARNING|ERROR|CRITICAL) sendmodaction - ([A-Za-z_]+="(?:[^"\\]|\\.)*"(?: [A-Za-z_]+="(?:[^"\\]|\\.)*")*)$"#,
    )
    .unwrap();
    let pair_re = Regex::new(r#"([A-Za-z_]+)="((?:[^"\\]|\\.)*)""#).unwrap();
    let mut lines = Vec::new();
    for raw in text.lines() {
        let captures = line_re
            .captures(raw)
            .unwrap_or_else(|| panic!("not the sendmodaction grammar: {raw:?}"));
        let pairs: Vec<(String, String)> = pair_re
            .captures_iter(&captures[2])
            .map(|pair| (pair[1].to_string(), unescape(&pair[2])))
            .collect();
        // fixed keys first, in the fixed order; then extra keys sorted; no empty values
        let mut last_fixed = None;
        let mut extras: Vec<&str> = Vec::new();
        for (key, value) in &pairs {
            assert!(!value.is_empty(), "empty pair {key} in {raw}");
            match FIXED_ORDER.iter().position(|k| k == key) {
                Some(position) => {
                    assert!(extras.is_empty(), "fixed key {key} after extra keys: {raw}");
                    assert!(
                        last_fixed.is_none_or(|last| position > last),
                        "{key} out of order: {raw}"
                    );
                    last_fixed = Some(position);
                }
                None => extras.push(key),
            }
        }
        let mut sorted = extras.clone();
        sorted.sort();
        assert_eq!(extras, sorted, "extra keys not sorted: {raw}");
        lines.push(LogLine { level: captures[1].to_string(), pairs });
    }
    lines
}

// ---- runs of the audit module against the emulated splunkd ----------------------------------

struct Fixture {
    home: SplunkHome,
    emulator: Emulator,
}

impl Fixture {
    fn new() -> Fixture {
        let home = SplunkHome::new();
        let local = home.root.join("etc/system/local");
        std::fs::create_dir_all(&local).unwrap();
        std::fs::write(local.join("server.conf"), "[general]\nserverName = sh-test-1\n").unwrap();
        Fixture { home, emulator: Emulator::start() }
    }

    fn settings(&self) -> Settings {
        let conf = ConfFile::parse_str("[receipts]\nindex = sec_audit\n");
        Settings::from_conf(conf, Some(self.home.app_dir()), Some(self.home.root.clone()))
    }

    fn audit(&self, context: &AlertContext) -> Audit {
        let settings = self.settings();
        let splunkd =
            Splunkd::new(&settings, &self.emulator.url(), Secret::new(SESSION_KEY)).unwrap();
        Audit::new(context, &settings, Some(splunkd))
    }

    fn log(&self, stanza: &str) -> Vec<LogLine> {
        parse_log(&self.home.modalert_log(stanza))
    }

    /// Every receipt in every stash file, after checking each file's name and header.
    fn receipts(&self) -> Vec<Map<String, Value>> {
        let spool = self.home.root.join("var/spool/splunk");
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(&spool).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        let name_re = Regex::new(r"^\d{10}_\d+\.stash_stackflow$").unwrap();
        let mut receipts = Vec::new();
        for file in files {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            assert!(name_re.is_match(&name), "unexpected file in var/spool/splunk: {name}");
            let text = std::fs::read_to_string(&file).unwrap();
            let mut lines = text.lines();
            assert_eq!(
                lines.next().unwrap(),
                r#"***SPLUNK*** index="sec_audit" source="stackflow" sourcetype="stackflow:receipt""#
            );
            for line in lines {
                assert!(line.starts_with("{\"time\":"), "time first: {line}");
                match serde_json::from_str::<Value>(line).unwrap() {
                    Value::Object(map) => receipts.push(map),
                    other => panic!("not an object: {other}"),
                }
            }
        }
        receipts
    }
}

fn context(sid: &str, search_name: &str) -> AlertContext {
    AlertContext {
        action: "stackflow_soar".into(),
        sid: sid.into(),
        search_name: search_name.into(),
        app: "SplunkEnterpriseSecuritySuite".into(),
        owner: "analyst".into(),
        server_host: "payload-host:8089".into(),
        rows_total: 2,
        params: BTreeMap::from([("account".to_string(), "default".to_string())]),
        ..AlertContext::default()
    }
}

fn row(rid: &str, fields: &[(&str, &str)]) -> Row {
    let pairs: Vec<(&str, FieldValue)> =
        fields.iter().map(|(name, value)| (*name, FieldValue::Single(value.to_string()))).collect();
    Row::from_pairs(rid, &pairs)
}

fn report(
    context: &AlertContext,
    target: TargetKind,
    rows: &[&Row],
    result: Final,
    delivered: Option<Delivered>,
    message: &str,
) -> DeliveryReport {
    let item_context: ItemContext = context.item_context(rows);
    DeliveryReport {
        item: DeliveryItem {
            target,
            account: "default".into(),
            dedupe_key: format!("dk-{}", rows[0].rid),
            request: DeliveryItem::raw_from_value(&Value::Null),
            context: item_context,
            list_index: None,
        },
        result,
        attempts: 2,
        duration: Duration::from_millis(1500),
        delivered,
        message: message.into(),
    }
}

fn container(id: &str) -> Option<Delivered> {
    Some(Delivered {
        remote_id: Some(id.into()),
        remote_url: Some(format!("https://soar.example.com/mission/{id}")),
        message: "created".into(),
        ..Delivered::default()
    })
}

#[test]
fn a_scheduled_run_logs_invocation_and_status_per_row_and_leaves_receipts_and_links() {
    let fixture = Fixture::new();
    let sid = scheduler_sid(7);
    let context = context(&sid, "Threat - Brute Force - Rule");
    let rows = [
        row("0", &[("src", "10.0.0.1"), ("event_id", "E-0")]),
        row("1", &[("src", "10.0.0.2"), ("event_id", "E-1")]),
    ];
    let mut audit = fixture.audit(&context);
    for row in &rows {
        audit.invoked(row);
    }
    // one container for both rows (grouping=alert)
    audit.record(&report(
        &context,
        TargetKind::Soar,
        &[&rows[0], &rows[1]],
        Final::Delivered,
        container("42"),
        "created",
    ));
    audit.finish();

    let lines = fixture.log("stackflow_soar");
    assert_eq!(lines.len(), 5, "{lines:#?}"); // 2 invocations, 2 status lines, 1 events line
    for (line, rid) in lines[..2].iter().zip(["0", "1"]) {
        assert_eq!(line.level, "INFO");
        assert_eq!(line.get("signature"), Some("Invoking modular action"));
        assert_eq!(line.get("rid"), Some(rid));
        assert_eq!(line.get("action_status"), None);
    }
    for (line, rid) in lines[2..4].iter().zip(["0", "1"]) {
        assert_eq!(line.level, "INFO");
        assert_eq!(line.get("worker"), Some("sh-test-1"));
        assert_eq!(line.get("action_name"), Some("stackflow_soar"));
        assert_eq!(line.get("search_name"), Some("Threat - Brute Force - Rule"));
        assert_eq!(line.get("sid"), Some(sid.as_str()));
        assert_eq!(line.get("rid"), Some(rid));
        assert_eq!(line.get("app"), Some("SplunkEnterpriseSecuritySuite"));
        assert_eq!(line.get("user"), Some("analyst"));
        assert_eq!(line.get("digest_mode"), Some("1"));
        assert_eq!(line.get("action_mode"), Some("saved"));
        assert_eq!(line.get("action_status"), Some("success"));
        assert_eq!(line.get("remote_id"), Some("42"));
        assert_eq!(line.get("remote_url"), Some("https://soar.example.com/mission/42"));
        assert_eq!(line.get("outcome"), Some("delivered"));
        assert_eq!(line.get("orig_sid"), None, "empty pairs are dropped");
    }
    assert_eq!(lines[4].get("signature"), Some("Successfully created splunk events"));
    assert_eq!(lines[4].get("event_count"), Some("2"));

    let receipts = fixture.receipts();
    assert_eq!(receipts.len(), 2);
    for (receipt, (rid, event_id)) in receipts.iter().zip([("0", "E-0"), ("1", "E-1")]) {
        assert!(receipt["time"].as_f64().unwrap() > 1.7e9);
        let expect = json!({
            "action": "stackflow_soar", "account": "default", "sid": sid, "rid": rid, "orig_sid": "", "orig_rid": "",
            "event_id": event_id, "search_name": "Threat - Brute Force - Rule", "dedupe_key": "dk-0",
            "remote_id": "42", "remote_url": "https://soar.example.com/mission/42", "outcome": "delivered",
            "attempts": 2, "duration_ms": 1500, "message": "created",
        });
        for (key, value) in expect.as_object().unwrap() {
            assert_eq!(receipt.get(key), Some(value), "receipt field {key}: {receipt:?}");
        }
        assert_eq!(
            receipt.len(),
            expect.as_object().unwrap().len() + 1,
            "no other fields: {receipt:?}"
        );
    }
    assert!(
        std::fs::read_dir(fixture.home.root.join("var/run/stackflow/receipts"))
            .unwrap()
            .next()
            .is_none()
    );

    let mut links = fixture.emulator.kv_records("stackflow_links");
    links.sort_by_key(|record| record["_key"].as_str().unwrap_or_default().to_string());
    assert_eq!(links.len(), 2, "{links:?}");
    assert_eq!(links[0]["_key"], "dk-0");
    assert_eq!(links[0]["event_id"], "E-0");
    assert_eq!(links[0]["soar_container_id"], 42);
    assert!(links[0]["updated"].as_f64().unwrap() > 1.7e9);
    assert_eq!(links[1]["_key"], "dk-0#E-1");
    assert_eq!(links[1]["event_id"], "E-1");
    assert_eq!(links[1]["soar_container_id"], 42);
}

#[test]
fn an_ad_hoc_run_from_incident_review_keeps_the_notables_ids() {
    let fixture = Fixture::new();
    let mut context = context("1714557600.1228", "");
    context.params.insert("action_name".into(), "soar_forward".into());
    let notable = row(
        "0",
        &[
            ("orig_sid", "scheduler__admin__SA__RMD5abc_at_1714557600_42"),
            ("orig_rid", "3"),
            ("event_id", "NOTABLE@@notable@@1"),
        ],
    );
    let mut audit = fixture.audit(&context);
    audit.invoked(&notable);
    audit.record(&report(
        &context,
        TargetKind::Soar,
        &[&notable],
        Final::Duplicate,
        container("77"),
        "already there",
    ));
    audit.finish();

    let lines = fixture.log("stackflow_soar");
    assert_eq!(lines.len(), 3);
    for line in &lines[..2] {
        assert_eq!(line.get("action_mode"), Some("adhoc"));
        assert_eq!(
            line.get("action_name"),
            Some("soar_forward"),
            "configuration.action_name overrides"
        );
        assert_eq!(line.get("sid"), Some("1714557600.1228"));
        assert_eq!(line.get("orig_sid"), Some("scheduler__admin__SA__RMD5abc_at_1714557600_42"));
        assert_eq!(line.get("orig_rid"), Some("3"));
        assert_eq!(line.get("rid"), Some("0"));
        assert_eq!(line.get("search_name"), None);
    }
    assert_eq!(lines[1].get("action_status"), Some("success"));
    assert_eq!(lines[1].get("outcome"), Some("duplicate"));
    let receipts = fixture.receipts();
    assert_eq!(receipts.len(), 1);
    assert_eq!(receipts[0]["orig_sid"], "scheduler__admin__SA__RMD5abc_at_1714557600_42");
    assert_eq!(receipts[0]["orig_rid"], "3");
    assert_eq!(receipts[0]["event_id"], "NOTABLE@@notable@@1");
    assert_eq!(receipts[0]["outcome"], "duplicate");
    let links = fixture.emulator.kv_records("stackflow_links");
    assert_eq!(links.len(), 1);
    assert_eq!(links[0]["event_id"], "NOTABLE@@notable@@1");
    assert_eq!(links[0]["soar_container_id"], 77);
}

#[test]
fn a_real_time_run_moves_the_snapshot_from_the_sid_to_the_rid() {
    let fixture = Fixture::new();
    let context =
        context("rt_scheduler__admin__search__RMD5910195c23186c103_at_1425692383_0.5", "RT rule");
    let first = row("0", &[("host", "a")]);
    let mut audit = fixture.audit(&context);
    audit.invoked(&first);
    audit.record(&report(
        &context,
        TargetKind::Soar,
        &[&first],
        Final::Delivered,
        container("9"),
        "created",
    ));
    audit.finish();
    let lines = fixture.log("stackflow_soar");
    for line in &lines[..2] {
        assert_eq!(
            line.get("sid"),
            Some("rt_scheduler__admin__search__RMD5910195c23186c103_at_1425692383_0")
        );
        assert_eq!(line.get("rid"), Some("0.5"));
        assert_eq!(line.get("action_mode"), Some("saved"));
    }
    let receipts = fixture.receipts();
    assert_eq!(
        receipts[0]["sid"],
        "rt_scheduler__admin__search__RMD5910195c23186c103_at_1425692383_0"
    );
    assert_eq!(receipts[0]["rid"], "0.5");
}

#[test]
fn failures_log_failure_status_and_receipts_but_no_links() {
    let fixture = Fixture::new();
    let mut context = context(&scheduler_sid(8), "Quotes \"inside\" a name");
    context.result_id = Some("4".into());
    let rejected = row("4", &[("event_id", "E-4")]);
    let mut audit = fixture.audit(&context);
    audit.invoked(&rejected);
    audit.record(&report(
        &context,
        TargetKind::Soar,
        &[&rejected],
        Final::Rejected(RejectClass::Remote),
        None,
        "SOAR answered HTTP 400: label \"bogus\" does not exist",
    ));
    let spooled = row("4", &[]);
    audit.record(&report(
        &context,
        TargetKind::Soar,
        &[&spooled],
        Final::Spooled,
        None,
        "HTTP 503; spooled",
    ));
    audit.finish();

    let lines = fixture.log("stackflow_soar");
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert_eq!(
        lines[0].get("search_name"),
        Some("Quotes \"inside\" a name"),
        "quotes survive the round trip"
    );
    assert_eq!(lines[1].level, "ERROR");
    assert_eq!(lines[1].get("action_status"), Some("failure"));
    assert_eq!(lines[1].get("digest_mode"), Some("0"), "per-result alert");
    assert_eq!(lines[1].get("rid"), Some("4"));
    assert_eq!(lines[1].get("outcome"), Some("rejected"));
    assert_eq!(
        lines[1].get("message"),
        Some("SOAR answered HTTP 400: label \"bogus\" does not exist")
    );
    assert_eq!(lines[1].get("remote_id"), None);
    assert_eq!(lines[2].level, "WARNING");
    assert_eq!(lines[2].get("action_status"), Some("failure"));
    assert_eq!(lines[2].get("outcome"), Some("spooled"));
    assert!(lines[2].get("signature").unwrap().contains("will be retried"));

    let receipts = fixture.receipts();
    let outcomes: Vec<&str> = receipts.iter().map(|r| r["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["rejected", "spooled"]);
    assert_eq!(receipts[0]["message"], "SOAR answered HTTP 400: label \"bogus\" does not exist");
    assert_eq!(receipts[0]["remote_id"], "");
    assert!(fixture.emulator.kv_records("stackflow_links").is_empty());
    assert!(
        fixture.emulator.requests_to("/servicesNS/nobody/stackflow/storage/collections").is_empty()
    );
}

#[test]
fn slack_and_stackflow_links_and_a_failing_kv_store_is_not_fatal() {
    let fixture = Fixture::new();
    let mut slack = context(&scheduler_sid(9), "r");
    slack.action = "stackflow_slack".into();
    let first = row("0", &[("event_id", "E-9")]);
    let mut details = Map::new();
    details.insert("channel".into(), json!("C024BE91L"));
    details.insert("ts".into(), json!("1714557600.000200"));
    let delivered = Delivered { details, ..Delivered::default() };
    let mut audit = fixture.audit(&slack);
    audit.invoked(&first);
    audit.record(&report(
        &slack,
        TargetKind::Slack,
        &[&first],
        Final::Delivered,
        Some(delivered),
        "posted",
    ));
    audit.finish();
    let receipts = fixture.receipts();
    assert_eq!(receipts[0]["slack_channel"], "C024BE91L");
    assert_eq!(receipts[0]["slack_ts"], "1714557600.000200");
    let links = fixture.emulator.kv_records("stackflow_links");
    assert_eq!(links.len(), 1);
    assert_eq!(links[0]["slack_channel"], "C024BE91L");
    assert_eq!(links[0]["slack_ts"], "1714557600.000200");
    assert_eq!(links[0]["event_id"], "E-9");

    let mut incident = context(&scheduler_sid(10), "r");
    incident.action = "stackflow_incident".into();
    let delivered = Delivered { remote_id: Some("INC0001001".into()), ..Delivered::default() };
    let second = row("5", &[("event_id", "E-9")]);
    fixture.emulator.fault(
        "/servicesNS/nobody/stackflow/storage/collections/data/stackflow_links",
        Fault::Status { status: 503, body: "{\"messages\":[]}".into(), headers: Vec::new() },
        1,
    );
    let mut audit = fixture.audit(&incident);
    audit.record(&report(
        &incident,
        TargetKind::Stackflow,
        &[&second],
        Final::Delivered,
        Some(delivered.clone()),
        "created",
    ));
    audit.finish(); // the 503 is a WARN line, not a panic
    assert_eq!(
        fixture.emulator.kv_records("stackflow_links").len(),
        1,
        "the failed save added nothing"
    );
    let mut audit = fixture.audit(&incident);
    audit.record(&report(
        &incident,
        TargetKind::Stackflow,
        &[&second],
        Final::Delivered,
        Some(delivered),
        "created",
    ));
    audit.finish();
    let links = fixture.emulator.kv_records("stackflow_links");
    assert_eq!(links.len(), 2, "{links:?}");
    let link = links.iter().find(|l| l["_key"] == "dk-5").unwrap();
    assert_eq!(link["stackflow_incident_id"], "INC0001001");
    assert_eq!(link["event_id"], "E-9");
    assert_eq!(fixture.receipts().len(), 3, "receipts do not depend on the KV store");
}

// ---- end to end: the installed Send to SOAR action, as splunkd runs it ----------------------

struct SoarRun {
    home: SplunkHome,
    emulator: Emulator,
}

impl SoarRun {
    fn new() -> SoarRun {
        let home = SplunkHome::new();
        let emulator = Emulator::start();
        let ca = home.root.join("soar-ca.pem");
        emulator.write_ca(&ca).unwrap();
        home.write_local_conf(&format!(
            "[soar:default]\nurl = {}\nca_file = {}\n\n[delivery]\nmax_attempts = 1\n\n[receipts]\nindex = sec_audit\n",
            emulator.url(),
            ca.display()
        ));
        emulator.set_secret("stackflow", "soar.default", "soar-token");
        let local = home.root.join("etc/system/local");
        std::fs::create_dir_all(&local).unwrap();
        std::fs::write(local.join("server.conf"), "[general]\nserverName = sh-test-1\n").unwrap();
        SoarRun { home, emulator }
    }

    fn run(
        &self,
        sid: &str,
        search_name: &str,
        rows: &[Vec<(&str, Cell)>],
        params: Value,
    ) -> crate::support::Run {
        let results = self.home.write_results(sid, rows);
        let mut payload = payload(&self.home, &self.emulator.url(), sid, &results, params);
        payload["search_name"] = json!(search_name);
        self.home.run_alert("stackflow_soar", &payload)
    }

    fn fixture(self) -> Fixture {
        Fixture { home: self.home, emulator: self.emulator }
    }
}

fn notable_rows() -> Vec<Vec<(&'static str, Cell)>> {
    (0..2)
        .map(|n| {
            vec![
                ("src", Cell::One(format!("10.1.0.{n}"))),
                ("rule_name", one("Brute Force")),
                ("urgency", one("high")),
                ("orig_sid", one("scheduler__admin__SA__RMD5abc_at_1714557600_42")),
                ("orig_rid", Cell::One(n.to_string())),
                ("event_id", Cell::One(format!("ABC@@notable@@{n}"))),
            ]
        })
        .collect()
}

#[test]
fn an_ad_hoc_run_repeated_from_incident_review_creates_nothing_and_logs_success_again() {
    let setup = SoarRun::new();
    let sid = "1714557700.4242";
    setup
        .run(sid, "", &notable_rows(), json!({"account": "default"}))
        .assert_code(0)
        .assert_levelled_stderr();
    let containers = setup.emulator.soar_containers().len();
    let artifacts = setup.emulator.soar_artifacts().len();
    assert_eq!(containers, 1);
    assert_eq!(artifacts, 2);
    // the same ad hoc search again (a preview re-run)
    setup
        .run(sid, "", &notable_rows(), json!({"account": "default"}))
        .assert_code(0)
        .assert_levelled_stderr();
    assert_eq!(setup.emulator.soar_containers().len(), containers, "no second container");
    assert_eq!(setup.emulator.soar_artifacts().len(), artifacts, "no artifact posted twice");
    let container_id = setup.emulator.soar_containers()[0]["id"].to_string();

    let fixture = setup.fixture();
    let lines = fixture.log("stackflow_soar");
    let status: Vec<&LogLine> = lines.iter().filter(|l| l.get("action_status").is_some()).collect();
    assert_eq!(status.len(), 4, "one status line per row per run: {lines:#?}");
    for line in &status {
        assert_eq!(line.get("action_status"), Some("success"));
        assert_eq!(line.get("action_mode"), Some("adhoc"));
        assert_eq!(line.get("sid"), Some(sid));
        assert_eq!(line.get("orig_sid"), Some("scheduler__admin__SA__RMD5abc_at_1714557600_42"));
        assert_eq!(line.get("worker"), Some("sh-test-1"));
        assert_eq!(line.get("remote_id"), Some(container_id.as_str()));
    }
    let invocations =
        lines.iter().filter(|l| l.get("signature") == Some("Invoking modular action")).count();
    assert_eq!(invocations, 4);
    let receipts = fixture.receipts();
    assert_eq!(receipts.len(), 4);
    let rids: Vec<(&str, &str)> = receipts
        .iter()
        .map(|r| (r["rid"].as_str().unwrap(), r["orig_rid"].as_str().unwrap()))
        .collect();
    assert_eq!(rids, [("0", "0"), ("1", "1"), ("0", "0"), ("1", "1")]);
    assert!(
        receipts
            .iter()
            .all(|r| r["remote_id"] == container_id.as_str() && r["action"] == "stackflow_soar")
    );
    let links = fixture.emulator.kv_records("stackflow_links");
    let mut event_ids: Vec<&str> = links.iter().map(|l| l["event_id"].as_str().unwrap()).collect();
    event_ids.sort();
    assert_eq!(event_ids, ["ABC@@notable@@0", "ABC@@notable@@1"]);
    assert!(
        links.iter().all(|l| l["soar_container_id"].to_string().as_str() == container_id.as_str())
    );
}

#[test]
fn a_rejected_soar_container_logs_failure_for_every_row() {
    let setup = SoarRun::new();
    let sid = scheduler_sid(31);
    let run = setup.run(
        &sid,
        "Rule",
        &notable_rows(),
        json!({"account": "default", "label": "no_such_label"}),
    );
    run.assert_code(6).assert_levelled_stderr();
    let fixture = setup.fixture();
    let lines = fixture.log("stackflow_soar");
    let status: Vec<&LogLine> = lines.iter().filter(|l| l.get("action_status").is_some()).collect();
    assert_eq!(status.len(), 2, "{lines:#?}");
    for line in status {
        assert_eq!(line.level, "ERROR");
        assert_eq!(line.get("action_status"), Some("failure"));
        assert_eq!(line.get("outcome"), Some("rejected"));
        assert!(line.get("message").is_some());
    }
    let receipts = fixture.receipts();
    assert_eq!(receipts.len(), 2);
    assert!(receipts.iter().all(|r| r["outcome"] == "rejected"));
    assert!(fixture.emulator.kv_records("stackflow_links").is_empty());
}

#[test]
fn a_failing_kv_store_is_a_warn_line_and_keeps_exit_code_0() {
    let setup = SoarRun::new();
    setup.emulator.fault(
        "/servicesNS/nobody/stackflow/storage/collections/data/stackflow_links",
        Fault::Status {
            status: 500,
            body: "{\"messages\":[{\"type\":\"ERROR\",\"text\":\"KV Store is down\"}]}".into(),
            headers: Vec::new(),
        },
        5,
    );
    let run = setup.run(&scheduler_sid(32), "Rule", &notable_rows(), json!({"account": "default"}));
    run.assert_code(0).assert_levelled_stderr().assert_line("WARN", "stackflow_links");
    assert_eq!(setup.emulator.soar_containers().len(), 1);
    let fixture = setup.fixture();
    assert!(fixture.emulator.kv_records("stackflow_links").is_empty());
    assert_eq!(fixture.receipts().len(), 2, "receipts are written anyway");
}
