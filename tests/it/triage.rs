//! Triage (PRODUCT §13) end to end: template summaries of realistic ES notables posted by the
//! installed `stackflow_slack` action, checked against golden files.

use crate::slack::{posted, run_slack, setup};
use crate::support::*;
use serde_json::{Value, json};
use stackflow_emulator::{Emulator, Fault};
use std::path::PathBuf;
use std::time::Duration;

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

const LLM_KEY: &str = "sk-test";

/// The Slack installation of `setup` plus `[llm:default]` at the emulator's chat completions.
fn setup_llm(extra: &str) -> (SplunkHome, Emulator) {
    let (home, emulator) = setup();
    let ca = home.root.join("emulator-ca.pem");
    let conf = home.app_dir().join("local/stackflow.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str(&format!(
        "\n[llm:default]\nurl = {}/v1/chat/completions\nmodel = soc-summarizer\nca_file = {}\n{extra}",
        emulator.url(),
        ca.display()
    ));
    std::fs::write(&conf, text).unwrap();
    emulator.set_secret("stackflow", "llm.default", LLM_KEY);
    (home, emulator)
}

/// A brute-force notable full of PII: user names, an e-mail, addresses, a card, a phone
/// number and a bearer token.
fn pii_notable() -> Vec<(&'static str, Cell)> {
    vec![
        ("_time", one("1763750060")),
        ("rule_name", one("Brute Force Access Behavior Detected")),
        ("urgency", one("high")),
        ("user", one("svc_backup")),
        ("src_user", one("ACME\\jdoe")),
        ("src", one("203.0.113.7")),
        ("dest", one("2001:db8::42")),
        ("action", one("failure")),
        ("count", one("137")),
        ("email", one("jane.doe@acme.example")),
        ("comment", one("jdoe called from +1 415 555 0134 and paid with 4111 1111 1111 1111")),
        ("http_header", one("Authorization: Bearer abcDEF123456ghiJKL")),
        ("app_version", one("10.0.19041.1")),
    ]
}

const RAW_PII: &[&str] = &[
    "svc_backup",
    "jdoe",
    "203.0.113.7",
    "2001:db8::42",
    "jane.doe@acme.example",
    "415 555 0134",
    "4111 1111 1111 1111",
    "abcDEF123456ghiJKL",
];

fn llm_receipts(home: &SplunkHome) -> Vec<Value> {
    home.stash_lines(".stash_stackflow_llm")
        .into_iter()
        .map(|(header, line)| {
            assert!(header.contains("sourcetype=\"stackflow:llm\""), "{header}");
            line
        })
        .collect()
}

#[test]
fn llm_summary_never_sees_pii_and_the_posted_text_has_it_restored() {
    let (home, emulator) = setup_llm("");
    let run = run_slack(
        &home,
        &emulator,
        &scheduler_sid(21),
        &[pii_notable()],
        json!({"mode": "row", "summary": "llm"}),
    );
    run.assert_code(0).assert_no_secret(&[LLM_KEY]);
    let calls = emulator.requests_to("/v1/chat/completions");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].header("authorization"), Some("Bearer sk-test"));
    let sent = String::from_utf8(calls[0].body.clone()).unwrap();
    for raw in RAW_PII {
        assert!(!sent.contains(raw), "{raw:?} reached the model: {sent}");
    }
    for placeholder in
        ["<USER_", "<EMAIL_1>", "<IP_1>", "<IP_2>", "<CARD_1>", "<PHONE_1>", "<SECRET_1>"]
    {
        assert!(sent.contains(placeholder), "{placeholder} missing: {sent}");
    }
    assert!(sent.contains("10.0.19041.1"), "a version number is not an address: {sent}");
    assert_eq!(calls[0].json()["model"], "soc-summarizer");

    let bodies = posted(&emulator);
    assert_eq!(bodies.len(), 1);
    let summary = summary_of(&bodies[0]);
    assert!(summary.starts_with("Model summary: the alert concerns"), "{summary}");
    for restored in [
        "svc_backup",
        "203.0.113.7",
        "2001:db8::42",
        "jane.doe@acme.example",
        "4111 1111 1111 1111",
    ] {
        assert!(summary.contains(restored), "{restored} not restored: {summary}");
    }
    assert!(!summary.contains("abcDEF123456ghiJKL") && summary.contains("[secret]"), "{summary}");
    assert!(!summary.contains("<USER_") && !summary.contains("<IP_"), "{summary}");
    assert!(bodies[0]["text"].as_str().unwrap().contains("Model summary"), "fallback text too");
    assert!(bodies[0].get("llm").is_none(), "the model context is not sent to Slack");

    let receipts = llm_receipts(&home);
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    let receipt = &receipts[0];
    assert_eq!(receipt["outcome"], "ok");
    assert_eq!(receipt["model"], "soc-summarizer");
    assert_eq!(receipt["account"], "default");
    assert_eq!(receipt["sid"], scheduler_sid(21));
    assert_eq!(receipt["rid"], "0");
    assert!(receipt["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(receipt["completion_tokens"].as_u64().unwrap() > 0);
    assert!(receipt["latency_ms"].is_u64());
    for kind in ["user", "email", "ip", "card", "phone", "secret"] {
        assert!(receipt["redactions"][kind].as_u64().unwrap_or(0) >= 1, "{kind}: {receipt}");
    }
    let flat = receipt.to_string();
    for raw in RAW_PII {
        assert!(!flat.contains(raw), "{raw:?} in the audit: {flat}");
    }
    for line in run.stderr.lines() {
        for raw in ["jane.doe@acme.example", "4111 1111 1111 1111", "abcDEF123456ghiJKL"] {
            assert!(!line.contains(raw), "{raw} logged: {line}");
        }
    }
}

#[test]
fn redact_ips_false_keeps_addresses_for_the_model() {
    let (home, emulator) = setup_llm("redact_ips = false\n");
    let run = run_slack(
        &home,
        &emulator,
        &scheduler_sid(22),
        &[pii_notable()],
        json!({"mode": "row", "summary": "llm"}),
    );
    run.assert_code(0);
    let sent =
        String::from_utf8(emulator.requests_to("/v1/chat/completions")[0].body.clone()).unwrap();
    assert!(sent.contains("203.0.113.7") && sent.contains("2001:db8::42"), "{sent}");
    assert!(!sent.contains("jane.doe@acme.example") && !sent.contains("svc_backup"), "{sent}");
}

/// The template summary of `pii_notable` as the message shows it.
fn template_of(home_run: &[Value]) -> String {
    summary_of(&home_run[0])
}

#[test]
fn a_slow_model_posts_the_template_summary_within_the_budget() {
    let (home, emulator) = setup_llm("timeout_s = 1\n");
    emulator.set_latency("/v1/", Duration::from_secs(20));
    let run = run_slack(
        &home,
        &emulator,
        &scheduler_sid(23),
        &[pii_notable()],
        json!({"mode": "row", "summary": "llm"}),
    );
    run.assert_code(0);
    assert!(
        run.elapsed < Duration::from_secs(15),
        "the alert waited for the model ({:?}) instead of its 1 s budget",
        run.elapsed
    );
    let bodies = posted(&emulator);
    assert_eq!(bodies.len(), 1);
    let summary = template_of(&bodies);
    assert!(
        summary.starts_with("Brute Force Access Behavior Detected (high severity)."),
        "{summary}"
    );
    let receipts = llm_receipts(&home);
    assert_eq!(receipts[0]["outcome"], "timeout", "{receipts:?}");
    assert!(run.stderr.contains("using the template summary"), "{}", run.stderr);
}

#[test]
fn a_failing_or_refusing_model_posts_the_template_summary() {
    for (case, sid) in [("error", 24), ("refused", 25), ("unauthorised", 26)] {
        let (home, emulator) = setup_llm("");
        match case {
            "error" => emulator.fault(
                "/v1/",
                Fault::Status { status: 500, body: "{}".into(), headers: Vec::new() },
                1,
            ),
            "refused" => emulator.set_llm_refuse(true),
            _ => emulator.set_llm_key("sk-other"),
        }
        let run = run_slack(
            &home,
            &emulator,
            &scheduler_sid(sid),
            &[pii_notable()],
            json!({"mode": "row", "summary": "llm"}),
        );
        run.assert_code(0);
        let bodies = posted(&emulator);
        assert_eq!(bodies.len(), 1, "{case}");
        assert!(template_of(&bodies).starts_with("Brute Force Access Behavior Detected"), "{case}");
        let expected = if case == "refused" { "refused" } else { "error" };
        assert_eq!(llm_receipts(&home)[0]["outcome"], expected, "{case}");
    }
}

#[test]
fn an_unusable_llm_account_still_posts_and_is_audited() {
    let (home, emulator) = setup();
    let run = run_slack(
        &home,
        &emulator,
        &scheduler_sid(27),
        &[brute_force_notable()],
        json!({"mode": "row", "summary": "llm"}),
    );
    run.assert_code(0);
    assert_eq!(posted(&emulator).len(), 1);
    assert!(run.stderr.contains("[llm:default]"), "{}", run.stderr);
    assert_eq!(llm_receipts(&home)[0]["outcome"], "error");
}

fn add_conf(home: &SplunkHome, extra: &str) {
    let conf = home.app_dir().join("local/stackflow.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push('\n');
    text.push_str(extra);
    std::fs::write(&conf, text).unwrap();
}

const ROUTES: &str = "[route:30_lab_noise]\nsearch_name = *Brute*\nfield.dest = lab-*\nsuppress = true\n\n\
    [route:10_risky]\nmin_risk_score = 200\nchannel = #soc-risk\nmention = S0614TZR7\n\n\
    [route:20_critical]\nmin_severity = critical\nchannel = #soc-critical\nbuttons = none\n";

#[test]
fn routes_send_to_their_channels_and_a_suppressed_alert_leaves_a_receipt() {
    let (home, emulator) = setup();
    add_conf(&home, ROUTES);
    let mut critical = brute_force_notable();
    critical.retain(|(name, _)| *name != "urgency" && *name != "event_id");
    critical.push(("urgency", one("critical")));
    critical.push(("event_id", one("BF-CRIT")));
    let mut lab = brute_force_notable();
    lab.retain(|(name, _)| *name != "dest" && *name != "event_id");
    lab.push(("dest", one("lab-7")));
    lab.push(("event_id", one("BF-LAB")));
    let rows = [rba_notable(), critical, lab, travel_notable()];
    let sid = scheduler_sid(31);
    let run = run_slack(&home, &emulator, &sid, &rows, json!({"mode": "row"}));
    run.assert_code(0);
    let bodies = posted(&emulator);
    let channels: Vec<&str> = bodies.iter().map(|b| b["channel"].as_str().unwrap()).collect();
    assert_eq!(
        channels,
        ["#soc-risk", "#soc-critical", "#soc-alerts"],
        "the lab row is not posted"
    );
    assert!(
        summary_of(&bodies[0]).starts_with("<!subteam^S0614TZR7> "),
        "{}",
        summary_of(&bodies[0])
    );
    assert!(bodies[0]["text"].as_str().unwrap().starts_with("<!subteam^S0614TZR7> "));
    // A route's `buttons` are the response buttons (PRODUCT §9); the link buttons stay.
    let flat = bodies[1].to_string();
    assert!(!flat.contains("stackflow_ack"), "buttons = none: {flat}");
    assert!(flat.contains("Open in Splunk"), "buttons = none keeps the links: {flat}");
    let flat = bodies[2].to_string();
    for action in ["stackflow_ack", "stackflow_escalate", "stackflow_false_positive"] {
        assert!(flat.contains(action), "no route: the default buttons: {flat}");
    }

    let receipts = home.receipts();
    let suppressed: Vec<&Value> =
        receipts.iter().filter(|r| r["outcome"] == "suppressed").collect();
    assert_eq!(suppressed.len(), 1, "{receipts:?}");
    assert_eq!(suppressed[0]["rid"], "2");
    assert_eq!(suppressed[0]["event_id"], "BF-LAB");
    assert_eq!(suppressed[0]["sid"], sid);
    assert!(suppressed[0]["message"].as_str().unwrap().contains("[route:30_lab_noise]"));
    assert_eq!(receipts.iter().filter(|r| r["outcome"] == "delivered").count(), 3);
    assert!(run.stderr.contains("outcome=suppressed"), "{}", run.stderr);
}

#[test]
fn an_invalid_route_stops_the_slack_action_with_exit_4() {
    let (home, emulator) = setup();
    add_conf(&home, "[route:10_bad]\nmin_severity = urgent\nchannel = #x\n");
    let run = run_slack(&home, &emulator, &scheduler_sid(32), &[rba_notable()], json!({}));
    run.assert_code(4);
    assert!(run.stderr.contains("[route:10_bad] min_severity"), "{}", run.stderr);
    assert!(posted(&emulator).is_empty());
}

#[test]
fn a_storm_of_50_alerts_of_one_rule_yields_one_message_with_the_count() {
    let (home, emulator) = setup();
    let params = json!({"mode": "row", "aggregate_window_s": "600"});
    // 50 alert runs of the same rule and entity, five processes at a time.
    for wave in 0..10u32 {
        std::thread::scope(|scope| {
            for n in 0..5u32 {
                let (home, emulator, params) = (&home, &emulator, params.clone());
                scope.spawn(move || {
                    let mut row = brute_force_notable();
                    row.retain(|(name, _)| *name != "event_id");
                    row.push(("event_id", one(&format!("BF-{wave}-{n}"))));
                    let sid = scheduler_sid(1000 + wave * 10 + n);
                    run_slack(home, emulator, &sid, &[row], params).assert_code(0);
                });
            }
        });
    }
    let posts: Vec<Value> = posted(&emulator);
    assert_eq!(posts.len(), 1, "one message for the storm");
    let updates: Vec<Value> = emulator
        .requests_to("/api/chat.update")
        .into_iter()
        .filter(|request| request.status == 200)
        .map(|request| request.json())
        .collect();
    assert_eq!(updates.len(), 49);
    let last = updates.last().unwrap();
    assert!(last["text"].as_str().unwrap().contains("49 more in the last"), "{last}");
    assert_eq!(last["blocks"][1]["type"], "context");
    let records = emulator.kv_records("stackflow_storms");
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["count"].as_u64(), Some(50));
    assert_eq!(records[0]["entity"], "svc_backup");
    let receipts = home.receipts();
    assert_eq!(receipts.iter().filter(|r| r["outcome"] == "delivered").count(), 50);
    let ts: std::collections::BTreeSet<&str> =
        receipts.iter().filter_map(|r| r["slack_ts"].as_str()).collect();
    assert_eq!(ts.len(), 1, "every alert points at the storm's message: {ts:?}");

    // Another entity is another storm.
    let mut other = brute_force_notable();
    other.retain(|(name, _)| *name != "user");
    other.push(("user", one("alice")));
    run_slack(&home, &emulator, &scheduler_sid(2000), &[other], params).assert_code(0);
    assert_eq!(posted(&emulator).len(), 2);
}
