//! `stackflow_incident` end to end: the installed action run as splunkd runs it, against a
//! StackFlow emulator (the inbound Splunk webhook) and a separate splunkd emulator (secrets),
//! so that StackFlow can go down while splunkd stays up.

use crate::support::{Cell, Run, SESSION_KEY, SplunkHome, many, one, payload, scheduler_sid};
use serde_json::{Value, json};
use stackflow_emulator::{Emulator, Fault, Recorded};
use std::path::Path;

const STANZA: &str = "stackflow_incident";
const WEBHOOK: &str = "/prod/api/webhooks/inbound/splunk";
/// The emulator's default webhook secret.
const SECRET: &str = "sf-secret";

struct Fixture {
    home: SplunkHome,
    splunkd: Emulator,
    stackflow: Emulator,
}

impl Fixture {
    fn new() -> Fixture {
        let home = SplunkHome::new();
        let splunkd = Emulator::start();
        let stackflow = Emulator::start();
        let ca = home.root.join("stackflow-ca.pem");
        stackflow.write_ca(&ca).unwrap();
        home.write_local_conf(&format!(
            "[stackflow:default]\nwebhook_url = {}{WEBHOOK}\nca_file = {}\n\n\
             [delivery]\nmax_attempts = 4\nretry_base_s = 0.05\n",
            stackflow.url(),
            ca.display()
        ));
        splunkd.set_secret("stackflow", "stackflow.default", SECRET);
        Fixture { home, splunkd, stackflow }
    }

    fn payload(&self, sid: &str, results: &Path, params: Value) -> Value {
        payload(&self.home, &self.splunkd.url(), sid, results, params)
    }

    fn run(&self, sid: &str, rows: &[Vec<(&str, Cell)>], params: Value) -> Run {
        let results = self.home.write_results(sid, rows);
        let run = self.home.run_alert(STANZA, &self.payload(sid, &results, params));
        run.assert_levelled_stderr().assert_no_secret(&[SECRET, SESSION_KEY]);
        run
    }

    fn posts(&self) -> Vec<Recorded> {
        self.stackflow.requests_to(WEBHOOK)
    }

    fn bodies(&self) -> Vec<Value> {
        self.posts().iter().map(Recorded::json).collect()
    }

    fn dead_letters(&self) -> usize {
        count_files(&self.home.spool_dir().join("dead"))
    }
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|entry| {
                    entry.file_type().map(|t| t.is_file()).unwrap_or(false)
                        && !entry.file_name().to_string_lossy().starts_with('.')
                })
                .count()
        })
        .unwrap_or(0)
}

fn text<'a>(body: &'a Value, key: &str) -> &'a str {
    body.get(key).and_then(Value::as_str).unwrap_or_else(|| panic!("no string {key} in {body}"))
}

fn brute_force_rows() -> Vec<Vec<(&'static str, Cell)>> {
    vec![
        vec![
            ("_time", one("1763750000")),
            ("host", one("web01")),
            ("source", one("/var/log/secure")),
            ("severity", one("high")),
            ("message", one("12 failed logins for root")),
            ("user", many(&["root", "admin"])),
        ],
        vec![("host", one("web02")), ("severity", one("critical")), ("message", one("other"))],
    ]
}

#[test]
fn alert_mode_sends_the_resolved_template_from_the_first_row_with_the_secret() {
    let fx = Fixture::new();
    let sid = scheduler_sid(1);
    let run = fx.run(
        &sid,
        &brute_force_rows(),
        json!({"account": "default", "mode": "alert", "verbose": "1"}),
    );
    run.assert_code(0)
        .assert_line("INFO", "outcome=delivered")
        .assert_line("INFO", "remote_id=INC");
    let posts = fx.posts();
    assert_eq!(posts.len(), 1, "one incident per trigger");
    // Each result row of the alert gets its own status line naming the one incident.
    let log = fx.home.modalert_log("stackflow_incident");
    let statuses: Vec<&str> =
        log.lines().filter(|line| line.contains("action_status=\"success\"")).collect();
    assert_eq!(statuses.len(), 2, "{log}");
    assert!(statuses.iter().all(|line| line.contains("remote_id=\"INC")), "{log}");
    let post = &posts[0];
    assert_eq!(post.method, "POST");
    assert_eq!(post.header("x-stackflow-secret"), Some(SECRET));
    assert!(post.header("content-type").unwrap_or_default().starts_with("application/json"));
    let body = post.json();
    for key in [
        "search_name",
        "result_count",
        "search_uri",
        "severity",
        "host",
        "source",
        "message",
        "stackflow_priority",
        "stackflow_assignment_group",
        "timestamp",
        "short_description",
        "ci_identifier",
        "source_ip",
        "dedupe_key",
    ] {
        assert!(body[key].is_string(), "{key} is not a top-level string: {body}");
    }
    assert_eq!(text(&body, "search_name"), "Brute Force Access Behavior Detected");
    assert_eq!(text(&body, "result_count"), "2");
    assert_eq!(text(&body, "search_uri"), sid);
    assert_eq!(text(&body, "severity"), "high");
    assert_eq!(text(&body, "host"), "web01");
    assert_eq!(text(&body, "source"), "/var/log/secure");
    assert_eq!(text(&body, "message"), "12 failed logins for root");
    assert_eq!(text(&body, "stackflow_priority"), "P2");
    assert_eq!(text(&body, "stackflow_assignment_group"), "");
    let timestamp: u64 = text(&body, "timestamp").parse().expect("epoch seconds");
    assert!(timestamp > 1_700_000_000, "{timestamp}");
    assert_eq!(text(&body, "short_description"), "Brute Force Access Behavior Detected on web01");
    assert_eq!(text(&body, "dedupe_key"), format!("stackflow:default:{sid}"));
    let incidents = fx.stackflow.stackflow_incidents();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["priority"], "P2");
    // The verbose run logs the URL at DEBUG, never the secret (checked by Fixture::run).
    run.assert_line("DEBUG", WEBHOOK);
}

#[test]
fn row_mode_creates_one_incident_per_row() {
    let fx = Fixture::new();
    let sid = scheduler_sid(2);
    let rows = vec![
        vec![("host", one("a")), ("severity", one("low"))],
        vec![("host", one("b")), ("severity", one("low"))],
        vec![("host", one("c")), ("event_id", one("NOTABLE-3"))],
    ];
    fx.run(&sid, &rows, json!({"mode": "row"})).assert_code(0);
    let bodies = fx.bodies();
    assert_eq!(bodies.len(), 3);
    assert_eq!(fx.stackflow.stackflow_incidents().len(), 3);
    let hosts: Vec<&str> = bodies.iter().map(|b| text(b, "host")).collect();
    assert_eq!(hosts, ["a", "b", "c"]);
    assert!(bodies.iter().all(|b| text(b, "result_count") == "1"));
    let keys: Vec<&str> = bodies.iter().map(|b| text(b, "dedupe_key")).collect();
    assert_ne!(keys[0], keys[1]);
    assert!(
        keys[0].starts_with("stackflow:default:") && keys[0] != format!("stackflow:default:{sid}")
    );
    assert_eq!(keys[2], "stackflow:default:NOTABLE-3");
}

#[test]
fn priority_precedence_and_severity_mapping_override() {
    let fx = Fixture::new();
    let rows = vec![
        vec![("stackflow_priority", one("p4")), ("severity", one("critical"))],
        vec![("stackflow_priority", one("urgent")), ("severity", one("high"))],
        vec![("severity", one("medium"))],
        vec![("urgency", one("low"))],
        vec![("host", one("h")), ("stackflow_assignment_group", one("Network Ops"))],
    ];
    let params = json!({
        "mode": "row",
        "assignment_group": "SOC Tier 1",
        "severity_mapping": "high=P1,medium=P2",
    });
    fx.run(&scheduler_sid(3), &rows, params).assert_code(0);
    let bodies = fx.bodies();
    let priorities: Vec<&str> = bodies.iter().map(|b| text(b, "stackflow_priority")).collect();
    // row field (valid) > severity mapping (overridden high, medium) > urgency > medium default
    assert_eq!(priorities, ["P4", "P1", "P2", "P4", "P2"]);
    let groups: Vec<&str> = bodies.iter().map(|b| text(b, "stackflow_assignment_group")).collect();
    assert_eq!(groups, ["SOC Tier 1", "SOC Tier 1", "SOC Tier 1", "SOC Tier 1", "Network Ops"]);
    assert_eq!(text(&bodies[3], "severity"), "low", "urgency stands in for severity");
}

fn notable() -> Vec<(&'static str, Cell)> {
    vec![
        ("event_id", one("0A1B2C3D-notable-1")),
        ("rule_name", one("Excessive Failed Logins")),
        ("rule_title", one("Excessive failed logins from 10.9.8.7 to db01")),
        ("signature", one("Brute force")),
        ("dest", one("db01")),
        ("src", one("10.9.8.7")),
        ("user", one("svc_backup")),
        ("urgency", one("critical")),
        ("orig_sid", one("scheduler__orig")),
        ("orig_rid", one("4")),
    ]
}

#[test]
fn notables_map_to_incident_fields_by_default() {
    let fx = Fixture::new();
    fx.run(&scheduler_sid(4), &[notable()], json!({"mode": "row"})).assert_code(0);
    let body = &fx.bodies()[0];
    assert_eq!(text(body, "short_description"), "Excessive Failed Logins");
    assert_eq!(text(body, "ci_identifier"), "db01");
    assert_eq!(text(body, "source_ip"), "10.9.8.7");
    assert_eq!(text(body, "severity"), "critical");
    assert_eq!(text(body, "stackflow_priority"), "P1");
    assert_eq!(
        text(body, "message"),
        "Excessive Failed Logins (critical severity). User svc_backup triggered \"Brute force\" \
         from 10.9.8.7 to db01. Why notable: Excessive failed logins from 10.9.8.7 to db01.",
        "the template summary (PRODUCT §13) when the row has no message"
    );
    assert_eq!(text(body, "dedupe_key"), "stackflow:default:0A1B2C3D-notable-1");
}

#[test]
fn notable_mapping_param_overrides_and_extends_the_mapping() {
    let fx = Fixture::new();
    let params = json!({
        "mode": "row",
        "notable_mapping": "signature=short_description,user=caller_id,src=ci_identifier",
    });
    fx.run(&scheduler_sid(5), &[notable()], params).assert_code(0);
    let body = &fx.bodies()[0];
    assert_eq!(text(body, "short_description"), "Brute force");
    assert_eq!(text(body, "caller_id"), "svc_backup");
    assert_eq!(text(body, "ci_identifier"), "10.9.8.7");
    assert_eq!(text(body, "source_ip"), "10.9.8.7", "the default for source_ip stays");
}

#[test]
fn invalid_mappings_are_configuration_errors_before_anything_is_sent() {
    let fx = Fixture::new();
    for (n, params) in [
        json!({"severity_mapping": "critical=P0"}),
        json!({"severity_mapping": "critical"}),
        json!({"notable_mapping": "rule_name=dedupe_key"}),
    ]
    .into_iter()
    .enumerate()
    {
        let key = params.as_object().unwrap().keys().next().unwrap().clone();
        let run = fx.run(&scheduler_sid(60 + n as u32), &brute_force_rows(), params);
        run.assert_code(4)
            .assert_line("ERROR", &format!("alert_actions.conf [stackflow_incident] param.{key}"));
    }
    assert!(fx.stackflow.requests().is_empty(), "nothing may be sent");
}

#[test]
fn a_plain_http_webhook_on_a_remote_host_is_refused() {
    let fx = Fixture::new();
    fx.home.append_local_conf(
        "\n[stackflow:plain]\nwebhook_url = http://stackflow.example.com/prod/api/webhooks/inbound/splunk\n",
    );
    fx.splunkd.set_secret("stackflow", "stackflow.plain", SECRET);
    let run = fx.run(&scheduler_sid(7), &brute_force_rows(), json!({"account": "plain"}));
    run.assert_code(4).assert_line("ERROR", "webhook_url");
    assert_eq!(fx.dead_letters(), 1, "the item is kept as a dead letter");
}

#[test]
fn a_rerun_sends_nothing_and_says_already_delivered() {
    let fx = Fixture::new();
    let sid = scheduler_sid(8);
    fx.run(&sid, &brute_force_rows(), json!({})).assert_code(0);
    assert_eq!(fx.posts().len(), 1);
    let again = fx.run(&sid, &brute_force_rows(), json!({}));
    again.assert_code(0).assert_line("INFO", "already delivered");
    assert_eq!(fx.posts().len(), 1, "the second run posts nothing");
    assert_eq!(fx.stackflow.stackflow_incidents().len(), 1);
}

#[test]
fn a_spooled_incident_is_replayed_once() {
    let fx = Fixture::new();
    let sid = scheduler_sid(9);
    fx.stackflow.stop();
    let run = fx.run(&sid, &brute_force_rows(), json!({}));
    run.assert_code(7).assert_line("WARN", "spool");
    assert!(fx.stackflow.stackflow_incidents().is_empty());
    let pending = fx.home.spool_dir().join("pending");
    assert_eq!(count_files(&pending), 1);
    for entry in std::fs::read_dir(&pending).unwrap().flatten() {
        let stored = std::fs::read_to_string(entry.path()).unwrap_or_default();
        assert!(!stored.contains(SECRET) && !stored.contains(SESSION_KEY), "a secret was spooled");
    }
    let stackflow = fx.stackflow.restart_same_port();
    let flush = fx.home.run_stackflow(
        &["spool", "flush", "--all", "--splunkd-uri", &fx.splunkd.url()],
        format!("{SESSION_KEY}\n").as_bytes(),
    );
    flush.assert_levelled_stderr().assert_no_secret(&[SECRET, SESSION_KEY]);
    flush.assert_code(0);
    assert_eq!(stackflow.stackflow_incidents().len(), 1);
    let replayed = &stackflow.stackflow_incidents()[0]["payload"];
    assert_eq!(replayed["dedupe_key"], format!("stackflow:default:{sid}"));
    assert_eq!(replayed["host"], "web01");
    // splunkd re-runs the action for the same trigger: the ledger knows it.
    let again = fx.run(&sid, &brute_force_rows(), json!({}));
    again.assert_code(0).assert_line("INFO", "already delivered");
    assert_eq!(stackflow.stackflow_incidents().len(), 1);
}

#[test]
fn a_wrong_secret_is_a_credentials_error_kept_as_dead_letter() {
    let fx = Fixture::new();
    fx.splunkd.set_secret("stackflow", "stackflow.default", "not-the-secret");
    let run = fx.run(&scheduler_sid(10), &brute_force_rows(), json!({}));
    run.assert_code(5)
        .assert_line("ERROR", "webhook secret is wrong")
        .assert_line("ERROR", "stackflow.default")
        .assert_no_secret(&["not-the-secret"]);
    assert_eq!(fx.posts().len(), 1, "401 is not retried");
    assert_eq!(fx.posts()[0].status, 401);
    assert!(fx.stackflow.stackflow_incidents().is_empty());
    assert_eq!(fx.dead_letters(), 1);
}

#[test]
fn a_missing_secret_is_a_credentials_error_without_sending() {
    let fx = Fixture::new();
    fx.home.append_local_conf(&format!(
        "\n[stackflow:nosecret]\nwebhook_url = {}{WEBHOOK}\nca_file = {}\n",
        fx.stackflow.url(),
        fx.home.root.join("stackflow-ca.pem").display()
    ));
    let run = fx.run(&scheduler_sid(11), &brute_force_rows(), json!({"account": "nosecret"}));
    run.assert_code(5).assert_line("ERROR", "stackflow.nosecret");
    assert!(fx.posts().is_empty());
}

#[test]
fn rate_limits_are_honoured_then_the_incident_is_created() {
    let fx = Fixture::new();
    fx.stackflow.fault(WEBHOOK, Fault::RetryAfter { status: 429, seconds: 1 }, 1);
    fx.run(&scheduler_sid(12), &brute_force_rows(), json!({}))
        .assert_code(0)
        .assert_line("WARN", "429");
    let statuses: Vec<u16> = fx.posts().iter().map(|p| p.status).collect();
    assert_eq!(statuses, [429, 201]);
    assert_eq!(fx.stackflow.stackflow_incidents().len(), 1);
}

#[test]
fn stackflow_rate_headers_without_retry_after_are_honoured() {
    // Remaining 0 and a reset an hour away: honouring it means not hammering StackFlow again
    // in this run but spooling the incident for `spool flush` (exit 7) after one POST.
    let fx = Fixture::new();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let fault = Fault::Status {
        status: 429,
        body: r#"{"error":"Rate limit exceeded","code":"RATE_LIMITED"}"#.into(),
        headers: vec![
            ("X-RateLimit-Remaining".into(), "0".into()),
            ("X-RateLimit-Reset".into(), (now + 3600).to_string()),
        ],
    };
    fx.stackflow.fault(WEBHOOK, fault, 1);
    fx.run(&scheduler_sid(13), &brute_force_rows(), json!({}))
        .assert_code(7)
        .assert_line("WARN", "Rate limit exceeded");
    let statuses: Vec<u16> = fx.posts().iter().map(|p| p.status).collect();
    assert_eq!(statuses, [429]);
    assert_eq!(count_files(&fx.home.spool_dir().join("pending")), 1);
}

#[test]
fn a_rejected_incident_exits_6_with_stackflows_message() {
    let fx = Fixture::new();
    let fault = Fault::Status {
        status: 400,
        body: r#"{"error":"Invalid assignment group 'Nope'","code":"VALIDATION_ERROR","requestId":"7f3a"}"#.into(),
        headers: vec![],
    };
    fx.stackflow.fault(WEBHOOK, fault, 1);
    let run = fx.run(&scheduler_sid(14), &brute_force_rows(), json!({"assignment_group": "Nope"}));
    run.assert_code(6)
        .assert_line("ERROR", "HTTP 400: Invalid assignment group 'Nope' (code VALIDATION_ERROR");
    assert_eq!(fx.posts().len(), 1, "a 400 is not retried");
    assert_eq!(fx.dead_letters(), 1);
}

#[test]
fn server_errors_are_retried_until_stackflow_answers() {
    let fx = Fixture::new();
    let fault =
        Fault::Status { status: 500, body: r#"{"error":"Internal"}"#.into(), headers: vec![] };
    fx.stackflow.fault(WEBHOOK, fault, 2);
    fx.run(&scheduler_sid(15), &brute_force_rows(), json!({}))
        .assert_code(0)
        .assert_line("WARN", "HTTP 500")
        .assert_line("INFO", "outcome=delivered");
    let statuses: Vec<u16> = fx.posts().iter().map(|p| p.status).collect();
    assert_eq!(statuses, [500, 500, 201]);
    assert_eq!(fx.stackflow.stackflow_incidents().len(), 1);
}

#[test]
fn an_empty_202_counts_as_delivered_without_a_remote_id() {
    let fx = Fixture::new();
    fx.stackflow.set_stackflow_webhook_response(202, None);
    let run = fx.run(&scheduler_sid(16), &brute_force_rows(), json!({}));
    run.assert_code(0).assert_line("INFO", "outcome=delivered");
    assert!(!run.stderr.contains("remote_id="), "{}", run.stderr);
    assert_eq!(fx.posts().len(), 1);
}

#[test]
fn a_409_duplicate_counts_as_already_there() {
    let fx = Fixture::new();
    let fault = Fault::Status {
        status: 409,
        body: r#"{"error":"Duplicate record","code":"DUPLICATE","id":"INC0000042"}"#.into(),
        headers: vec![],
    };
    fx.stackflow.fault(WEBHOOK, fault, 1);
    let run = fx.run(&scheduler_sid(17), &brute_force_rows(), json!({}));
    run.assert_code(0)
        .assert_line("INFO", "outcome=duplicate")
        .assert_line("INFO", "remote_id=INC0000042");
    assert_eq!(fx.posts().len(), 1);
    assert_eq!(fx.dead_letters(), 0);
}

#[test]
fn per_result_alerts_key_the_incident_by_result_id() {
    let fx = Fixture::new();
    let sid = scheduler_sid(18);
    let file =
        fx.home.write_per_result(&sid, 0, vec![("host", one("web09")), ("severity", one("low"))]);
    let mut payload = fx.payload(&sid, &file, json!({}));
    payload["result_id"] = json!("3");
    let run = fx.home.run_alert(STANZA, &payload);
    run.assert_levelled_stderr().assert_code(0);
    let body = &fx.bodies()[0];
    assert_eq!(text(body, "dedupe_key"), format!("stackflow:default:{sid}:3"));
    assert_eq!(text(body, "result_count"), "1");
    assert_eq!(text(body, "host"), "web09");
    assert_eq!(text(body, "stackflow_priority"), "P4");
}

#[test]
fn read_back_finds_incidents_by_id_with_the_api_token() {
    use stackflow::remotes::splunkd::Splunkd;
    use stackflow::remotes::stackflow::StackflowApi;
    use stackflow::remotes::stackflow::read::StackflowReader;
    use stackflow::secret::Secret;
    use stackflow::settings::Settings;
    use stackflow::splunk::conf::ConfFile;

    let fx = Fixture::new();
    fx.splunkd.set_secret("stackflow", "stackflow_api.default", "sf-api-token");
    fx.stackflow.add_stackflow_incident(json!({
        "id": "INC0000007", "state": "in_progress", "priority": "P2", "assigned_to": "jane@example.com"
    }));
    fx.stackflow
        .add_stackflow_incident(json!({"id": "INC0000008", "state": "new", "priority": "P4"}));
    let conf = format!(
        "[stackflow:default]\nwebhook_url = {}{WEBHOOK}\nca_file = {}\n",
        fx.stackflow.url(),
        fx.home.root.join("stackflow-ca.pem").display()
    );
    let settings =
        Settings::from_conf(ConfFile::parse_str(&conf), None, Some(fx.home.root.clone()));
    let splunkd = Splunkd::new(&settings, &fx.splunkd.url(), Secret::new(SESSION_KEY)).unwrap();
    let mut reader =
        StackflowReader::new(StackflowApi::open(&settings, &splunkd, "default").unwrap());
    let found = reader.incidents(&["INC0000007", "INC9999999"]).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let incident = &found["INC0000007"];
    assert_eq!(incident.state, "in_progress");
    assert_eq!(incident.priority, "P2");
    assert_eq!(incident.assigned_to, "jane@example.com");
    assert_eq!(
        reader.incident_url("INC0000007"),
        format!("{}/prod/api/incidents/INC0000007", fx.stackflow.url())
    );
    let reads = fx.stackflow.requests_to("/prod/api/incidents");
    assert_eq!(reads.len(), 1, "one request for all ids");
    assert_eq!(reads[0].header("authorization"), Some("Bearer sf-api-token"));

    fx.stackflow.set_stackflow_api_token("rotated");
    let refused = reader.incidents(&["INC0000007"]).unwrap_err();
    assert!(refused.contains("HTTP 401") && refused.contains("check the token"), "{refused}");
}
