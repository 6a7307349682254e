//! `stackflow_slack` end to end: the installed action posts Block Kit messages to the Slack
//! emulator; checks the bodies against Block Kit limits (an independent checker), routing,
//! thresholds, the digest cap, rate limits, `ok:false` errors, the ledger, and a golden message.

use crate::support::*;
use serde_json::{Value, json};
use stackflow::remotes::splunkd::Splunkd;
use stackflow::secret::Secret;
use stackflow::settings::Settings;
use stackflow::splunk::conf::ConfFile;
use stackflow_emulator::{Emulator, Fault};
use std::path::PathBuf;

const STANZA: &str = "stackflow_slack";
const TOKEN: &str = "xoxb-test";

/// An installed app wired to the emulator: Slack account `default` (channel `#soc-alerts`),
/// SOAR and StackFlow URLs for link buttons, the bot token in storage/passwords.
pub(crate) fn setup() -> (SplunkHome, Emulator) {
    let emulator = Emulator::start();
    let home = SplunkHome::new();
    let ca = home.root.join("emulator-ca.pem");
    emulator.write_ca(&ca).unwrap();
    home.write_local_conf(&format!(
        "[slack:default]\napi_url = {}/api\nchannel = #soc-alerts\nca_file = {}\n\n\
         [soar:default]\nurl = https://soar.example.com\n\n\
         [stackflow:default]\napi_url = https://acme.stackflow-tech.com/prod/api\n\n\
         [delivery]\nmax_attempts = 5\n",
        emulator.url(),
        ca.display()
    ));
    emulator.set_secret("stackflow", "slack.default", TOKEN);
    (home, emulator)
}

pub(crate) fn run_slack(
    home: &SplunkHome,
    emulator: &Emulator,
    sid: &str,
    rows: &[Vec<(&str, Cell)>],
    params: Value,
) -> Run {
    let results = home.write_results(sid, rows);
    let payload = payload(home, &emulator.url(), sid, &results, params);
    let run = home.run_alert(STANZA, &payload);
    run.assert_levelled_stderr().assert_no_secret(&[TOKEN]);
    run
}

/// The chat.postMessage bodies the emulator answered with HTTP 200, in order.
pub(crate) fn posted(emulator: &Emulator) -> Vec<Value> {
    emulator
        .requests_to("/api/chat.postMessage")
        .into_iter()
        .filter(|request| request.status == 200)
        .map(|request| request.json())
        .collect()
}

/// Messages Slack stored (accepted posts).
fn messages(emulator: &Emulator) -> Vec<Value> {
    emulator.slack_messages()
}

fn text_len(object: &Value) -> usize {
    object.get("text").and_then(Value::as_str).map_or(0, |text| text.chars().count())
}

/// Block Kit limits (Slack's Block Kit reference), checked independently of the code under test.
#[track_caller]
fn assert_block_kit_limits(body: &Value) {
    let text = body["text"].as_str().expect("a text fallback");
    assert!(!text.is_empty() && text.chars().count() <= 40_000, "text fallback");
    let blocks = body["blocks"].as_array().expect("blocks");
    assert!(blocks.len() <= 50, "{} blocks", blocks.len());
    for (i, block) in blocks.iter().enumerate() {
        let at = format!(
            "block {i}: {}",
            serde_json::to_string(block).unwrap().chars().take(200).collect::<String>()
        );
        if let Some(id) = block.get("block_id").and_then(Value::as_str) {
            assert!(id.chars().count() <= 255, "{at}");
        }
        match block["type"].as_str().unwrap() {
            "header" => {
                assert_eq!(block["text"]["type"], "plain_text", "{at}");
                assert!(text_len(&block["text"]) <= 150, "{at}");
            }
            "section" => {
                if let Some(text) = block.get("text") {
                    assert!(text_len(text) <= 3000, "{at}");
                }
                if let Some(fields) = block.get("fields") {
                    let fields = fields.as_array().unwrap();
                    assert!(fields.len() <= 10, "{at}");
                    for field in fields {
                        assert!(text_len(field) <= 2000, "{at}");
                    }
                }
                assert!(block.get("text").is_some() || block.get("fields").is_some(), "{at}");
            }
            "context" => {
                let elements = block["elements"].as_array().unwrap();
                assert!(!elements.is_empty() && elements.len() <= 10, "{at}");
                for element in elements {
                    assert!(text_len(element) <= 3000, "{at}");
                }
            }
            "actions" => {
                let elements = block["elements"].as_array().unwrap();
                assert!(!elements.is_empty() && elements.len() <= 25, "{at}");
                for button in elements {
                    assert!(text_len(&button["text"]) <= 75, "{at}");
                    for (key, max) in [("value", 2000), ("url", 3000), ("action_id", 255)] {
                        if let Some(value) = button.get(key).and_then(Value::as_str) {
                            assert!(value.chars().count() <= max, "{at}: {key}");
                        }
                    }
                }
            }
            "divider" => {}
            other => panic!("unexpected block type {other} in {at}"),
        }
    }
}

fn detection_row(rid: usize, severity: &str) -> Vec<(&'static str, Cell)> {
    vec![
        ("_time", one("1763750000")),
        ("user", Cell::One(format!("user{rid}"))),
        ("src", one("203.0.113.7")),
        ("dest", one("finance-db")),
        ("action", one("failure")),
        ("count", one("42")),
        ("severity", Cell::One(severity.to_string())),
    ]
}

fn dead_letters(home: &SplunkHome) -> usize {
    std::fs::read_dir(home.spool_dir().join("dead")).map(|dir| dir.count()).unwrap_or(0)
}

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/slack/full_message.json")
}

/// Replaces what changes between runs (the emulator's port) with stable placeholders.
fn normalise(value: &mut Value, port: u16) {
    match value {
        Value::String(text) => {
            *text = text.replace(&format!("127.0.0.1:{port}"), "127.0.0.1:PORT");
        }
        Value::Array(items) => items.iter_mut().for_each(|item| normalise(item, port)),
        Value::Object(map) => map.values_mut().for_each(|item| normalise(item, port)),
        _ => {}
    }
}

#[test]
fn slack_full_message_matches_golden_and_links_buttons() {
    let (home, emulator) = setup();
    let splunkd = Splunkd::new(
        &Settings::from_conf(ConfFile::default(), None, None),
        &emulator.url(),
        Secret::new(SESSION_KEY),
    )
    .unwrap();
    splunkd
        .kv_batch_save(
            "stackflow_links",
            &[
                json!({"_key": "soar:default:EVT-1", "event_id": "EVT-1", "soar_container_id": "4242"}),
                json!({"_key": "stackflow:default:EVT-1", "event_id": "EVT-1", "stackflow_incident_id": "INC0001001"}),
            ],
        )
        .unwrap();
    let row = vec![
        ("_time", one("1763750000")),
        ("rule_name", one("Brute Force Access Behavior Detected")),
        ("event_id", one("EVT-1")),
        ("urgency", one("high")),
        ("user", one("jdoe")),
        ("src", many(&["203.0.113.7", "198.51.100.23"])),
        ("dest", one("finance-db")),
        ("host", one("dc01")),
        ("action", one("failure")),
        ("count", one("42")),
        ("annotations.mitre_attack.mitre_tactic", one("credential-access")),
        ("annotations.mitre_attack.mitre_technique_id", one("T1110.001")),
        ("risk_score", one("80")),
        ("risk_object", one("jdoe")),
        ("risk_object_type", one("user")),
        ("comment", one("<!channel> please look & act")),
    ];
    let sid = scheduler_sid(1);
    let run = run_slack(
        &home,
        &emulator,
        &sid,
        &[row],
        json!({"account": "default", "channel": "#soc-high"}),
    );
    run.assert_code(0);
    let requests = emulator.requests_to("/api/chat.postMessage");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("authorization"), Some("Bearer xoxb-test"));
    let mut body = requests[0].json();
    assert_block_kit_limits(&body);
    assert_eq!(body["channel"], "#soc-high");
    let flat = body.to_string();
    assert!(flat.contains("https://soar.example.com/mission/4242"), "{flat}");
    assert!(
        flat.contains("https://acme.stackflow-tech.com/prod/api/incidents/INC0001001"),
        "{flat}"
    );
    assert!(flat.contains("Open in Splunk"), "{flat}");
    assert_eq!(body["blocks"][0]["text"]["text"], "🔴 HIGH · Brute Force Access Behavior Detected");

    normalise(&mut body, emulator.port());
    let pretty = serde_json::to_string_pretty(&body).unwrap() + "\n";
    let path = golden_path();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &pretty).unwrap();
    }
    let golden = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing: run with UPDATE_GOLDEN=1", path.display()));
    assert_eq!(
        pretty,
        golden,
        "message differs from {} (UPDATE_GOLDEN=1 rewrites it)",
        path.display()
    );

    // The ledger and the receipt facts keep the channel id and ts for chat.update / threading.
    let stored = messages(&emulator);
    let ts = stored[0]["ts"].as_str().unwrap().to_string();
    let ledger_dir = home.spool_dir().join("ledger");
    let entries: Vec<Value> = std::fs::read_dir(&ledger_dir)
        .unwrap()
        .map(|entry| {
            serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap()
        })
        .collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["remote_id"], ts.as_str());
    assert_eq!(entries[0]["details"]["slack_ts"], ts.as_str());
    assert_eq!(entries[0]["details"]["slack_channel"], stored[0]["channel"]);
    let permalink = format!(
        "https://slack.com/archives/{}/p{}",
        stored[0]["channel"].as_str().unwrap(),
        ts.replace('.', "")
    );
    assert_eq!(entries[0]["remote_url"], permalink.as_str());
}

#[test]
fn slack_huge_fields_stay_within_block_kit_limits() {
    let (home, emulator) = setup();
    let huge = "A<&>".repeat(2_560);
    let rows: Vec<Vec<(&str, Cell)>> = (0..60)
        .map(|i| {
            vec![
                ("rule_name", Cell::One(huge.clone())),
                ("user", Cell::One(format!("{i}{huge}"))),
                ("src", Cell::One(huge.clone())),
                ("dest", Cell::One(huge.clone())),
                ("host", Cell::One(huge.clone())),
                ("mitre_tactic", Cell::One(huge.clone())),
                ("mitre_technique", Cell::One(huge.clone())),
                ("risk_score", Cell::One(huge.clone())),
                ("risk_object", Cell::One(huge.clone())),
                ("count", Cell::One(huge.clone())),
                ("action", Cell::One(huge.clone())),
                ("_time", Cell::One(huge.clone())),
                ("severity", one("critical")),
            ]
        })
        .collect();
    let run = run_slack(
        &home,
        &emulator,
        &scheduler_sid(2),
        &rows,
        json!({"mode": "alert", "max_rows": "60"}),
    );
    run.assert_code(0);
    let bodies = posted(&emulator);
    assert_eq!(bodies.len(), 1, "one message per trigger");
    assert_block_kit_limits(&bodies[0]);
    assert_eq!(messages(&emulator).len(), 1, "Slack accepted it");
    assert!(bodies[0].to_string().contains("more results not shown"), "the rest is counted");
    // mrkdwn (everything but the plain_text header) carries row values escaped.
    let flat = Value::Array(bodies[0]["blocks"].as_array().unwrap()[1..].to_vec()).to_string();
    assert!(!flat.contains("A<&>"), "row values are escaped for mrkdwn");
    assert!(!bodies[0]["text"].as_str().unwrap().contains("A<&>"), "and in the fallback text");
    assert!(flat.contains("A&lt;&amp;&gt;"), "{}", &flat[..500]);
    assert_eq!(bodies[0]["channel"], "#soc-alerts", "the account's channel");
}

#[test]
fn slack_routes_by_severity_channels() {
    let (home, emulator) = setup();
    let rows = vec![
        detection_row(0, "critical"),
        detection_row(1, "high"),
        detection_row(2, "low"),
        detection_row(3, "unknown-word"),
    ];
    let run = run_slack(
        &home,
        &emulator,
        &scheduler_sid(3),
        &rows,
        json!({"mode": "row", "channel": "#soc", "severity_channels": "critical=#soc-critical,high=#soc-high"}),
    );
    run.assert_code(0);
    let channels: Vec<String> = posted(&emulator)
        .iter()
        .map(|body| body["channel"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(channels, vec!["#soc-critical", "#soc-high", "#soc", "#soc"]);
}

#[test]
fn slack_min_severity_skips_rows_below_threshold() {
    let (home, emulator) = setup();
    let rows = vec![
        detection_row(0, "low"),
        detection_row(1, "critical"),
        detection_row(2, "medium"),
        detection_row(3, "high"),
        detection_row(4, "informational"),
    ];
    let run =
        run_slack(&home, &emulator, &scheduler_sid(4), &rows, json!({"min_severity": "high"}));
    run.assert_code(0).assert_line("INFO", "3 row(s) below min_severity=high");
    let bodies = posted(&emulator);
    assert_eq!(bodies.len(), 1);
    let flat = bodies[0].to_string();
    assert!(flat.contains("user1") && flat.contains("user3"), "{flat}");
    assert!(
        !flat.contains("user0") && !flat.contains("user2") && !flat.contains("user4"),
        "{flat}"
    );
    assert!(bodies[0]["blocks"][0]["text"]["text"].as_str().unwrap().starts_with("🚨 CRITICAL"));

    // Nothing at or above the threshold: nothing is sent, and that is a success.
    emulator.clear_requests();
    let rows = vec![detection_row(0, "low"), detection_row(1, "medium")];
    let run =
        run_slack(&home, &emulator, &scheduler_sid(5), &rows, json!({"min_severity": "high"}));
    run.assert_code(0);
    assert!(emulator.requests_to("/api/chat.postMessage").is_empty());
}

#[test]
fn slack_row_mode_digest_cap_posts_max_rows_and_one_summary() {
    let (home, emulator) = setup();
    let rows: Vec<Vec<(&str, Cell)>> = (0..30).map(|i| detection_row(i, "high")).collect();
    let sid = scheduler_sid(6);
    let run = run_slack(
        &home,
        &emulator,
        &sid,
        &rows,
        json!({"mode": "row", "max_rows": "5", "summary_template": "{user} hit {dest} ({severity})"}),
    );
    run.assert_code(0).assert_line("WARN", "digest cap");
    let bodies = posted(&emulator);
    assert_eq!(bodies.len(), 6, "5 rows + 1 summary");
    for body in &bodies {
        assert_block_kit_limits(body);
    }
    for (i, body) in bodies[..5].iter().enumerate() {
        assert!(body.to_string().contains(&format!("user{i} hit finance-db (high)")), "{body}");
    }
    let summary = bodies[5].to_string();
    assert!(summary.contains("+25 more results not posted"), "{summary}");
    assert!(summary.contains(&format!("@go?sid={sid}")), "names the results link: {summary}");
}

#[test]
fn slack_rate_limits_are_paced_and_retried() {
    let (home, emulator) = setup();
    emulator.set_slack_channel_rate_limit(true);
    emulator.fault("/api/chat.postMessage", Fault::RetryAfter { status: 429, seconds: 1 }, 1);
    let rows: Vec<Vec<(&str, Cell)>> = (0..3).map(|i| detection_row(i, "high")).collect();
    let run = run_slack(&home, &emulator, &scheduler_sid(7), &rows, json!({"mode": "row"}));
    run.assert_code(0);
    let statuses: Vec<u16> = emulator
        .requests_to("/api/chat.postMessage")
        .iter()
        .map(|request| request.status)
        .collect();
    assert_eq!(
        statuses.iter().filter(|status| **status == 429).count(),
        1,
        "only the injected 429: posts to one channel are paced at 1/s: {statuses:?}"
    );
    assert_eq!(messages(&emulator).len(), 3, "all delivered: {statuses:?}");
    run.assert_line("WARN", "retrying");
}

#[test]
fn slack_channel_not_found_is_rejected_with_a_fix() {
    let (home, emulator) = setup();
    emulator.set_slack_known_channels(&["#soc-alerts"]);
    let run = run_slack(
        &home,
        &emulator,
        &scheduler_sid(8),
        &[detection_row(0, "high")],
        json!({"channel": "#nope"}),
    );
    run.assert_code(4).assert_line("ERROR", "channel_not_found").assert_line("ERROR", "\"#nope\"");
    run.assert_line("ERROR", "severity_channels");
    assert!(messages(&emulator).is_empty());
    assert_eq!(dead_letters(&home), 1, "kept as a dead letter");
}

#[test]
fn slack_invalid_auth_is_a_credentials_error() {
    let (home, emulator) = setup();
    emulator.set_slack_token("xoxb-rotated");
    let run =
        run_slack(&home, &emulator, &scheduler_sid(9), &[detection_row(0, "high")], json!({}));
    run.assert_code(5).assert_line("ERROR", "invalid_auth").assert_line("ERROR", "slack.default");
    assert!(messages(&emulator).is_empty());
}

#[test]
fn slack_missing_token_is_a_credentials_error() {
    let (home, emulator) = setup();
    home.append_local_conf(&format!(
        "\n[slack:lab]\napi_url = {}/api\nchannel = #x\n",
        emulator.url()
    ));
    let run = run_slack(
        &home,
        &emulator,
        &scheduler_sid(10),
        &[detection_row(0, "high")],
        json!({"account": "lab"}),
    );
    run.assert_code(5).assert_line("ERROR", "slack.lab");
    assert!(emulator.requests_to("/api/chat.postMessage").is_empty());
}

#[test]
fn slack_rerun_does_not_post_twice() {
    let (home, emulator) = setup();
    let rows: Vec<Vec<(&str, Cell)>> = (0..3).map(|i| detection_row(i, "high")).collect();
    let sid = scheduler_sid(11);
    run_slack(&home, &emulator, &sid, &rows, json!({"mode": "row"})).assert_code(0);
    run_slack(&home, &emulator, &sid, &rows, json!({"mode": "alert"})).assert_code(0);
    assert_eq!(messages(&emulator).len(), 4, "3 rows + 1 alert message");
    let again = run_slack(&home, &emulator, &sid, &rows, json!({"mode": "row"}));
    again.assert_code(0).assert_line("INFO", "outcome=duplicate");
    run_slack(&home, &emulator, &sid, &rows, json!({"mode": "alert"})).assert_code(0);
    assert_eq!(messages(&emulator).len(), 4, "a re-run posts nothing new");
}
