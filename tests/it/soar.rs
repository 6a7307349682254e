//! `stackflow_soar` (Send to SOAR) end to end: the installed action run as splunkd runs it,
//! against the SOAR + splunkd emulator; each test checks what SOAR received (or that nothing
//! was sent), the exit code and the stderr lines.

use crate::support::{Cell, SplunkHome, gzip, many, one, payload, scheduler_sid};
use serde_json::{Value, json};
use stackflow_emulator::Emulator;
use std::path::PathBuf;

const STANZA: &str = "stackflow_soar";

/// A Splunk home whose `[soar:default]` points at a running emulator that also plays splunkd.
struct Setup {
    home: SplunkHome,
    emu: Emulator,
    ca: PathBuf,
}

fn setup() -> Setup {
    let home = SplunkHome::new();
    let emu = Emulator::start();
    let ca = home.root.join("soar-ca.pem");
    emu.write_ca(&ca).unwrap();
    home.write_local_conf(&format!(
        "[soar:default]\nurl = {}\nca_file = {}\n\n[delivery]\nmax_attempts = 2\n",
        emu.url(),
        ca.display()
    ));
    emu.set_secret("stackflow", "soar.default", "soar-token");
    Setup { home, emu, ca }
}

impl Setup {
    fn run(&self, sid: &str, rows: &[Vec<(&str, Cell)>], params: Value) -> crate::support::Run {
        let results = self.home.write_results(sid, rows);
        let payload = payload(&self.home, &self.emu.url(), sid, &results, params);
        self.home.run_alert(STANZA, &payload)
    }

    fn rest_requests(&self) -> Vec<stackflow_emulator::Recorded> {
        self.emu.requests_to("/rest")
    }

    fn artifact_posts(&self) -> Vec<stackflow_emulator::Recorded> {
        self.emu.requests_to("/rest/artifact").into_iter().filter(|r| r.method == "POST").collect()
    }
}

fn auth_rows() -> Vec<Vec<(&'static str, Cell)>> {
    (0..3)
        .map(|n| {
            vec![
                ("_time", one(&format!("176375000{n}.250"))),
                ("_raw", one(&format!("Failed password for alice from 10.0.0.{n}"))),
                ("_bkt", one("main~12~ABC")),
                ("_cd", one("12:345")),
                ("date_hour", one("9")),
                ("punct", one("__:")),
                ("src", Cell::One(format!("10.0.0.{n}"))),
                ("user", one("alice")),
                ("dest_host", one("web01")),
                ("action", one("failure")),
                ("signature", one("Brute Force Access")),
                ("urgency", one("critical")),
            ]
        })
        .collect()
}

#[test]
fn digest_alert_creates_one_container_with_cef_artifacts() {
    let s = setup();
    let sid = scheduler_sid(1);
    let run = s.run(&sid, &auth_rows(), json!({"tags": "splunk,brute-force"}));
    run.assert_code(0).assert_levelled_stderr().assert_no_secret(&["soar-token"]);
    run.assert_line(
        "INFO",
        "SOAR container 1 (created) batch 0: 3 artifacts posted, 0 already present",
    );

    let containers = s.emu.soar_containers();
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    assert_eq!(container["source_data_identifier"], sid.as_str());
    assert_eq!(container["name"], "Brute Force Access Behavior Detected");
    assert_eq!(container["label"], "events");
    assert_eq!(container["severity"], "high");
    assert_eq!(container["sensitivity"], "amber");
    assert_eq!(container["tags"], json!(["splunk", "brute-force"]));
    assert_eq!(container["data"]["sid"], sid.as_str());

    let posts = s.artifact_posts();
    assert_eq!(posts.len(), 1, "one bulk POST for the batch");
    assert_eq!(posts[0].header("ph-auth-token"), Some("soar-token"));
    assert_eq!(posts[0].header("content-type"), Some("application/json"));
    let artifacts = s.emu.soar_artifacts();
    assert_eq!(artifacts.len(), 3);
    for (n, artifact) in artifacts.iter().enumerate() {
        assert_eq!(artifact["container"], 1);
        assert_eq!(artifact["label"], "event");
        assert_eq!(artifact["severity"], "high");
        assert_eq!(artifact["name"], format!("Splunk result {n}"));
        assert_eq!(artifact["cef"]["sourceAddress"], format!("10.0.0.{n}"));
        assert_eq!(artifact["cef"]["destinationUserName"], "alice");
        assert_eq!(artifact["cef"]["destinationHostName"], "web01");
        assert_eq!(artifact["cef"]["act"], "failure");
        assert_eq!(artifact["cef_types"]["sourceAddress"], json!(["ip"]));
        assert_eq!(artifact["cef_types"]["destinationUserName"], json!(["user name"]));
        assert_eq!(artifact["cef_types"]["destinationHostName"], json!(["host name"]));
        assert_eq!(artifact["data"]["signature"], "Brute Force Access");
        assert_eq!(artifact["data"]["_raw"], format!("Failed password for alice from 10.0.0.{n}"));
        assert_eq!(artifact["data"]["_time"], format!("176375000{n}.250"));
        for dropped in ["_bkt", "_cd", "date_hour", "punct", "src"] {
            assert!(artifact["data"].get(dropped).is_none(), "{dropped} in data: {artifact}");
        }
        assert_eq!(artifact["run_automation"], n == 2, "run_automation only on the last");
    }
}

#[test]
fn per_result_alert_names_the_result_in_the_container() {
    let s = setup();
    let sid = scheduler_sid(2);
    let results = s.home.write_per_result(
        &sid,
        7,
        vec![("src", one("192.0.2.7")), ("user", one("bob")), ("severity", one("low"))],
    );
    let mut payload = payload(&s.home, &s.emu.url(), &sid, &results, json!({}));
    payload["result_id"] = json!("7");
    let run = s.home.run_alert(STANZA, &payload);
    run.assert_code(0).assert_levelled_stderr();

    let containers = s.emu.soar_containers();
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0]["source_data_identifier"], format!("{sid}:7"));
    assert_eq!(containers[0]["severity"], "low");
    let artifacts = s.emu.soar_artifacts();
    assert_eq!(artifacts.len(), 1);
    assert_eq!(artifacts[0]["name"], "Splunk result 7");
    assert_eq!(artifacts[0]["cef"]["sourceAddress"], "192.0.2.7");
    assert_eq!(artifacts[0]["run_automation"], true);
}

#[test]
fn multivalue_src_becomes_one_artifact_per_value() {
    let s = setup();
    let sid = scheduler_sid(3);
    let rows = vec![vec![
        ("src", many(&["10.1.1.1", "10.2.2.2", "10.3.3.3"])),
        ("user", one("carol")),
        ("signature", many(&["auth", "vpn"])),
    ]];
    s.run(&sid, &rows, json!({})).assert_code(0);
    let artifacts = s.emu.soar_artifacts();
    assert_eq!(artifacts.len(), 3);
    let sources: Vec<&str> =
        artifacts.iter().map(|a| a["cef"]["sourceAddress"].as_str().unwrap()).collect();
    assert_eq!(sources, ["10.1.1.1", "10.2.2.2", "10.3.3.3"]);
    let sdis: Vec<&str> =
        artifacts.iter().map(|a| a["source_data_identifier"].as_str().unwrap()).collect();
    let base = sdis[0].strip_suffix(":0").expect("split artifacts carry :<index>");
    assert_eq!(sdis, [format!("{base}:0"), format!("{base}:1"), format!("{base}:2")]);
    // Every other field of the row is copied into each artifact; an unmapped multivalue field
    // stays a list in `data`.
    for artifact in &artifacts {
        assert_eq!(artifact["cef"]["destinationUserName"], "carol");
        assert_eq!(artifact["data"]["signature"], json!(["auth", "vpn"]));
    }
    let automation: Vec<bool> =
        artifacts.iter().map(|a| a["run_automation"].as_bool().unwrap()).collect();
    assert_eq!(automation, [false, false, true]);
}

#[test]
fn two_multivalue_cef_fields_make_the_cartesian_product() {
    let s = setup();
    let sid = scheduler_sid(4);
    let rows =
        vec![vec![("src", many(&["10.1.1.1", "10.2.2.2"])), ("dest", many(&["a", "b", "c"]))]];
    s.run(&sid, &rows, json!({})).assert_code(0);
    let artifacts = s.emu.soar_artifacts();
    assert_eq!(artifacts.len(), 6);
    let pairs: Vec<(String, String)> = artifacts
        .iter()
        .map(|a| {
            (
                a["cef"]["sourceAddress"].as_str().unwrap().to_string(),
                // Names, not addresses: the host-name key (PRODUCT §15).
                a["cef"]["destinationHostName"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert!(pairs.contains(&("10.2.2.2".into(), "c".into())));
    assert_eq!(pairs.iter().collect::<std::collections::HashSet<_>>().len(), 6);
}

#[test]
fn unicode_newlines_and_quotes_survive_to_soar() {
    let s = setup();
    let sid = scheduler_sid(5);
    let tricky = "Jérôme 日本語 🚀 said \"hi\",\nthen 'bye'\r\n\ttab $dollar$ \\back";
    let rows = vec![vec![
        ("user", one(tricky)),
        ("message", one(tricky)),
        ("comment", one(tricky)),
        ("src", many(&["é1", "日本"])),
    ]];
    s.run(&sid, &rows, json!({"container_name": "Alert for {user}"})).assert_code(0);
    let containers = s.emu.soar_containers();
    assert_eq!(containers[0]["name"], format!("Alert for {tricky}"));
    let artifacts = s.emu.soar_artifacts();
    assert_eq!(artifacts.len(), 2);
    for artifact in &artifacts {
        assert_eq!(artifact["cef"]["destinationUserName"], tricky);
        assert_eq!(artifact["cef"]["message"], tricky);
        assert_eq!(artifact["data"]["comment"], tricky);
    }
    // Not IP addresses: the host-name key (PRODUCT §15).
    assert_eq!(artifacts[0]["cef"]["sourceHostName"], "é1");
    assert_eq!(artifacts[1]["cef"]["sourceHostName"], "日本");
    // The bytes on the wire are UTF-8 JSON, not escaped or re-encoded.
    let body = &s.artifact_posts()[0].body;
    assert!(String::from_utf8(body.clone()).unwrap().contains("Jérôme 日本語 🚀"));
}

#[test]
fn rerun_adds_no_container_and_no_artifact() {
    let s = setup();
    let sid = scheduler_sid(6);
    s.run(&sid, &auth_rows(), json!({"playbook": "local/triage"})).assert_code(0);
    assert_eq!(s.emu.soar_containers().len(), 1);
    assert_eq!(s.emu.soar_artifacts().len(), 3);
    assert_eq!(s.emu.soar_playbook_runs().len(), 1);
    s.emu.clear_requests();

    let second = s.run(&sid, &auth_rows(), json!({"playbook": "local/triage"}));
    second.assert_code(0).assert_levelled_stderr();
    second.assert_line(
        "INFO",
        "SOAR container 1 (already there) batch 0: 0 artifacts posted, 3 already present",
    );
    assert_eq!(s.emu.soar_containers().len(), 1, "no new container");
    assert_eq!(s.emu.soar_artifacts().len(), 3, "no new artifact");
    assert_eq!(s.emu.soar_playbook_runs().len(), 1, "the playbook is not run again");
    assert!(s.artifact_posts().is_empty(), "nothing posted to /rest/artifact");
    let checks: Vec<_> =
        s.emu.requests_to("/rest/artifact").into_iter().filter(|r| r.method == "GET").collect();
    assert_eq!(checks.len(), 1);
    let query = checks[0].query_pairs();
    assert!(query.contains(&("_filter_container".into(), "1".into())), "{query:?}");
    assert!(query.contains(&("page_size".into(), "0".into())), "{query:?}");
    assert!(query.iter().any(|(k, _)| k == "_filter_source_data_identifier__in"), "{query:?}");
}

#[test]
fn rerun_after_a_partial_delivery_posts_only_the_missing_artifacts() {
    let s = setup();
    let sid = scheduler_sid(7);
    let rows = auth_rows();
    s.run(&sid, &rows[..2], json!({})).assert_code(0);
    assert_eq!(s.emu.soar_artifacts().len(), 2);
    s.run(&sid, &rows, json!({})).assert_code(0).assert_line(
        "INFO",
        "SOAR container 1 (already there) batch 0: 1 artifacts posted, 2 already present",
    );
    let artifacts = s.emu.soar_artifacts();
    assert_eq!(artifacts.len(), 3);
    assert_eq!(artifacts[2]["cef"]["sourceAddress"], "10.0.0.2");
    assert_eq!(artifacts[2]["run_automation"], true);
}

#[test]
fn grouping_row_makes_one_container_per_row() {
    let s = setup();
    let sid = scheduler_sid(8);
    let rows = vec![
        vec![
            ("event_id", one("AAAA-1@@notable@@0123")),
            ("rule_name", one("Excessive Failed Logins")),
            ("src", one("10.9.9.1")),
            ("urgency", one("medium")),
        ],
        vec![
            ("event_id", one("BBBB-2@@notable@@4567")),
            ("rule_name", one("Excessive Failed Logins")),
            ("src", one("10.9.9.2")),
            ("urgency", one("informational")),
        ],
        vec![("src", one("10.9.9.3"))],
    ];
    let run = s.run(&sid, &rows, json!({"grouping": "row", "playbook": "7"}));
    run.assert_code(0).assert_levelled_stderr();
    let containers = s.emu.soar_containers();
    assert_eq!(containers.len(), 3);
    assert_eq!(containers[0]["source_data_identifier"], "AAAA-1@@notable@@0123");
    assert_eq!(containers[1]["source_data_identifier"], "BBBB-2@@notable@@4567");
    let hashed = containers[2]["source_data_identifier"].as_str().unwrap();
    assert_eq!(hashed.len(), 32, "no event_id: a hash of sid + rid + row");
    assert_eq!(containers[0]["name"], "Excessive Failed Logins");
    assert_eq!(containers[0]["severity"], "medium");
    assert_eq!(containers[1]["severity"], "low");
    assert_eq!(containers[2]["name"], "Brute Force Access Behavior Detected");
    let artifacts = s.emu.soar_artifacts();
    assert_eq!(artifacts.len(), 3);
    for (n, artifact) in artifacts.iter().enumerate() {
        assert_eq!(artifact["container"], n as u64 + 1);
        assert_eq!(artifact["run_automation"], true, "the last artifact of each container");
    }
    let runs = s.emu.soar_playbook_runs();
    assert_eq!(runs.len(), 3);
    let mut run_containers: Vec<u64> =
        runs.iter().map(|r| r["container"].as_u64().unwrap()).collect();
    run_containers.sort();
    assert_eq!(run_containers, [1, 2, 3]);

    s.run(&sid, &rows, json!({"grouping": "row", "playbook": "7"})).assert_code(0);
    assert_eq!(s.emu.soar_containers().len(), 3);
    assert_eq!(s.emu.soar_artifacts().len(), 3);
    assert_eq!(s.emu.soar_playbook_runs().len(), 3);
}

#[test]
fn playbook_runs_once_on_the_new_container() {
    let s = setup();
    let sid = scheduler_sid(9);
    let run = s.run(&sid, &auth_rows(), json!({"playbook": "local/triage"}));
    run.assert_code(0).assert_line("INFO", "playbook local/triage started");
    let posts = s.emu.requests_to("/rest/playbook_run");
    assert_eq!(posts.len(), 1);
    assert_eq!(
        posts[0].json(),
        json!({"container_id": 1, "playbook_id": "local/triage", "scope": "new", "run": true})
    );
    // After the artifacts, never before them.
    let paths: Vec<String> = s.rest_requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/rest/container", "/rest/artifact", "/rest/playbook_run"]);
}

#[test]
fn large_alert_is_sent_in_batches_to_one_container() {
    let s = setup();
    let sid = scheduler_sid(10);
    let rows: Vec<Vec<(&str, Cell)>> = (0..1203)
        .map(|n| {
            vec![
                ("src", Cell::One(format!("10.{}.{}.{}", n / 65536, (n / 256) % 256, n % 256))),
                ("user", one("x")),
            ]
        })
        .collect();
    s.run(&sid, &rows, json!({"playbook": "9"})).assert_code(0);
    assert_eq!(s.emu.soar_containers().len(), 1);
    let posts = s.artifact_posts();
    let sizes: Vec<usize> = posts.iter().map(|p| p.json().as_array().unwrap().len()).collect();
    assert_eq!(sizes, [500, 500, 203]);
    let artifacts = s.emu.soar_artifacts();
    assert_eq!(artifacts.len(), 1203);
    assert_eq!(artifacts.iter().filter(|a| a["run_automation"] == true).count(), 1);
    assert_eq!(artifacts[1202]["run_automation"], true);
    assert_eq!(s.emu.soar_playbook_runs().len(), 1);

    s.emu.clear_requests();
    s.run(&sid, &rows, json!({"playbook": "9"})).assert_code(0);
    assert_eq!(s.emu.soar_artifacts().len(), 1203);
    assert!(s.artifact_posts().is_empty());
    for check in s.emu.requests_to("/rest/artifact") {
        assert!(check.path.len() + check.query.len() < 6 * 1024 + 100, "pre-check URL too long");
    }
}

#[test]
fn field_mapping_overrides_the_table() {
    let s = setup();
    let sid = scheduler_sid(11);
    let rows =
        vec![vec![("src", one("10.0.0.1")), ("user", one("dave")), ("process", one("sshd"))]];
    s.run(
        &sid,
        &rows,
        json!({"field_mapping": "src=deviceAddress, user=, process=deviceProcessName"}),
    )
    .assert_code(0);
    let artifact = &s.emu.soar_artifacts()[0];
    assert_eq!(artifact["cef"], json!({"deviceAddress": "10.0.0.1", "deviceProcessName": "sshd"}));
    assert_eq!(
        artifact["cef_types"],
        json!({"deviceAddress": ["ip"], "deviceProcessName": ["process name"]})
    );
    assert_eq!(artifact["data"]["user"], "dave");
}

#[test]
fn wrong_token_exits_5_and_creates_nothing() {
    let s = setup();
    s.emu.set_secret("stackflow", "soar.default", "not-the-token");
    let run = s.run(&scheduler_sid(12), &auth_rows(), json!({}));
    run.assert_code(5).assert_levelled_stderr().assert_no_secret(&["not-the-token"]);
    run.assert_line("ERROR", "HTTP 401");
    assert!(s.emu.soar_containers().is_empty());
    assert!(s.emu.soar_artifacts().is_empty());
    assert_eq!(s.rest_requests().len(), 1, "one refused container POST, nothing more");
}

#[test]
fn untrusted_certificate_exits_4_and_names_ca_file() {
    let s = setup();
    let other = Emulator::start();
    other.write_ca(&s.ca).unwrap();
    let run = s.run(&scheduler_sid(13), &auth_rows(), json!({}));
    run.assert_code(4).assert_levelled_stderr();
    run.assert_line("ERROR", "not trusted");
    run.assert_line("ERROR", "ca_file");
    assert!(s.rest_requests().is_empty(), "the TLS handshake failed: no request reached SOAR");
    assert!(s.emu.soar_containers().is_empty());
}

#[test]
fn soar_down_spools_the_item_and_exits_7() {
    let home = SplunkHome::new();
    let splunkd = Emulator::start();
    let soar = Emulator::start();
    let ca = home.root.join("soar-ca.pem");
    soar.write_ca(&ca).unwrap();
    home.write_local_conf(&format!(
        "[soar:default]\nurl = {}\nca_file = {}\n\n[delivery]\nmax_attempts = 1\n",
        soar.url(),
        ca.display()
    ));
    splunkd.set_secret("stackflow", "soar.default", "soar-token");
    soar.stop();
    let sid = scheduler_sid(14);
    let results = home.write_results(&sid, &auth_rows());
    let run = home.run_alert(STANZA, &payload(&home, &splunkd.url(), &sid, &results, json!({})));
    run.assert_code(7).assert_levelled_stderr();
    run.assert_line("WARN", "spool");
    let pending: Vec<_> = std::fs::read_dir(home.spool_dir().join("pending"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    assert_eq!(pending.len(), 1);
    let record: Value = serde_json::from_slice(&std::fs::read(&pending[0]).unwrap()).unwrap();
    let text = record.to_string();
    assert!(text.contains(&format!("\"dedupe_key\":\"{sid}:0\"")), "{text}");
    assert!(!text.contains("soar-token"), "no secret in the spool");
}

#[test]
fn bad_results_exit_3_and_send_nothing() {
    let s = setup();
    let sid = scheduler_sid(15);
    let dir = s.home.dispatch_dir(&sid);
    let good = gzip(crate::support::splunk_csv(&auth_rows()).as_bytes());
    let corrupt = dir.join("corrupt.csv.gz");
    std::fs::write(&corrupt, b"\x1f\x8b\x08\x00garbage that is not deflate").unwrap();
    let truncated_gzip = dir.join("truncated.csv.gz");
    std::fs::write(&truncated_gzip, &good[..good.len() / 2]).unwrap();
    let short_row = dir.join("short_row.csv.gz");
    std::fs::write(&short_row, gzip(b"src,user,__mv_src,__mv_user\n10.0.0.1,alice,,\n10.0.0.2\n"))
        .unwrap();
    let missing = dir.join("nope.csv.gz");
    for path in [corrupt, truncated_gzip, short_row, missing] {
        let run = s.home.run_alert(STANZA, &payload(&s.home, &s.emu.url(), &sid, &path, json!({})));
        run.assert_code(3).assert_levelled_stderr();
        assert!(run.stderr.contains("bad results file"), "{}", run.stderr);
    }
    assert!(s.rest_requests().is_empty(), "nothing sent to SOAR");
}

#[test]
fn bad_payloads_exit_2_and_send_nothing() {
    let s = setup();
    let (exe, args) = s.home.alert_command(STANZA);
    for input in [
        &b"{\"sid\": \"x\", \"configuration\": "[..],
        &b"<?xml version=\"1.0\"?><alert><sid>x</sid></alert>"[..],
    ] {
        let mut command = std::process::Command::new(&exe);
        command.args(&args);
        let run = s.home.run_command(command, input);
        run.assert_code(2).assert_levelled_stderr();
    }
    assert!(s.emu.requests().is_empty(), "nothing sent anywhere");
}

#[test]
fn unknown_account_exits_4_naming_the_configured_accounts() {
    let s = setup();
    let run = s.run(&scheduler_sid(16), &auth_rows(), json!({"account": "nope"}));
    run.assert_code(4).assert_levelled_stderr();
    run.assert_line("ERROR", "unknown soar account \"nope\" (configured: default)");
    assert!(s.rest_requests().is_empty());
}

#[test]
fn missing_secret_exits_5_and_sends_nothing() {
    let home = SplunkHome::new();
    let emu = Emulator::start();
    let ca = home.root.join("soar-ca.pem");
    emu.write_ca(&ca).unwrap();
    home.write_local_conf(&format!(
        "[soar:default]\nurl = {}\nca_file = {}\n",
        emu.url(),
        ca.display()
    ));
    let sid = scheduler_sid(17);
    let results = home.write_results(&sid, &auth_rows());
    let run = home.run_alert(STANZA, &payload(&home, &emu.url(), &sid, &results, json!({})));
    run.assert_code(5).assert_levelled_stderr();
    run.assert_line("ERROR", "soar.default");
    assert!(emu.requests_to("/rest").is_empty());
}

#[test]
fn bad_parameters_exit_4_before_anything_is_sent() {
    let s = setup();
    for (params, key) in [
        (json!({"grouping": "per_host"}), "param.grouping"),
        (json!({"sensitivity": "purple"}), "param.sensitivity"),
        (json!({"field_mapping": "src"}), "param.field_mapping"),
    ] {
        let run = s.run(&scheduler_sid(18), &auth_rows(), params);
        run.assert_code(4).assert_levelled_stderr();
        assert!(run.stderr.contains(key), "{}", run.stderr);
    }
    assert!(s.emu.requests().is_empty());
}

#[test]
fn unknown_label_is_rejected_with_soars_message() {
    let s = setup();
    let run = s.run(&scheduler_sid(19), &auth_rows(), json!({"label": "no_such_label"}));
    run.assert_code(6).assert_levelled_stderr();
    run.assert_line("ERROR", "no_such_label is not a known label");
    assert!(s.emu.soar_containers().is_empty());
    assert!(s.artifact_posts().is_empty());
}

#[test]
fn plain_http_is_refused_for_remote_hosts() {
    let s = setup();
    s.home.write_local_conf("[soar:default]\nurl = http://soar.example.com\n");
    let run = s.run(&scheduler_sid(20), &auth_rows(), json!({}));
    run.assert_code(4).assert_line("ERROR", "[soar:default] url");
    assert!(s.emu.requests().is_empty());
}

#[test]
fn a_lost_response_is_retried_with_a_pre_check_and_no_duplicates() {
    let s = setup();
    s.emu.fault("/rest/artifact", stackflow_emulator::Fault::ResetMidResponse, 1);
    let run = s.run(&scheduler_sid(21), &auth_rows(), json!({}));
    run.assert_code(0).assert_levelled_stderr();
    run.assert_line("WARN", "retrying");
    assert_eq!(s.emu.soar_containers().len(), 1);
    assert_eq!(s.emu.soar_artifacts().len(), 3);
    let calls: Vec<String> =
        s.emu.requests_to("/rest/artifact").iter().map(|r| r.method.clone()).collect();
    assert_eq!(calls, ["POST", "GET", "POST"], "the re-send asks SOAR what it already has");
    assert_eq!(s.emu.requests_to("/rest/container").len(), 1, "the container id is remembered");
}

#[test]
fn the_account_label_applies_unless_the_alert_sets_one() {
    let s = setup();
    s.home.append_local_conf("\n[soar:default]\nlabel = notable\n");
    s.run(&scheduler_sid(22), &auth_rows(), json!({})).assert_code(0);
    s.run(&scheduler_sid(23), &auth_rows(), json!({"label": "incident"})).assert_code(0);
    let labels: Vec<Value> = s.emu.soar_containers().iter().map(|c| c["label"].clone()).collect();
    assert_eq!(labels, [json!("notable"), json!("incident")]);
}

#[test]
fn splunkd_unreachable_spools_the_items_instead_of_dead_lettering_them() {
    let s = setup();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let splunkd_down = format!("https://127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let sid = scheduler_sid(18);
    let results = s.home.write_results(&sid, &auth_rows());
    let run = s.home.run_alert(STANZA, &payload(&s.home, &splunkd_down, &sid, &results, json!({})));
    run.assert_code(7).assert_levelled_stderr();
    run.assert_line("ERROR", "cannot read secret stackflow:soar.default");
    assert!(s.rest_requests().is_empty());
    let pending = std::fs::read_dir(s.home.spool_dir().join("pending")).unwrap().count();
    assert_eq!(pending, 1, "the alert's one item waits in the spool");
    assert!(!s.home.spool_dir().join("dead").exists());
}

#[test]
fn the_configured_proxy_carries_every_soar_call_but_not_splunkd() {
    let s = setup();
    let splunkd = Emulator::start();
    splunkd.set_secret("stackflow", "soar.default", "soar-token");
    let proxy = stackflow_emulator::ConnectProxy::start();
    s.home.append_local_conf(&format!("\n[proxy]\nurl = {}\n", proxy.url()));
    let sid = scheduler_sid(19);
    let results = s.home.write_results(&sid, &auth_rows());
    let run =
        s.home.run_alert(STANZA, &payload(&s.home, &splunkd.url(), &sid, &results, json!({})));
    run.assert_code(0).assert_levelled_stderr();
    assert_eq!(s.emu.soar_containers().len(), 1);
    let direct = splunkd.requests_to("/servicesNS/");
    assert!(direct.iter().any(|r| r.path.contains("/storage/passwords/")), "secret read direct");
    let soar = format!("127.0.0.1:{}", s.emu.port());
    let connects = proxy.connects();
    assert!(!connects.is_empty(), "SOAR calls did not go through the proxy");
    assert!(connects.iter().all(|c| c == &soar), "only SOAR goes through the proxy: {connects:?}");
}
