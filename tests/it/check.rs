//! `stackflow check` end to end: the installed binary validates a temp SPLUNK_HOME's
//! stackflow.conf and probes the emulated SOAR, StackFlow API, Slack and splunkd; asserts the
//! stdout table, the exit code, that nothing was created remotely and that no secret is printed.

use crate::support::*;
use stackflow_emulator::{Emulator, Fault};

const SOAR_TOKEN: &str = "soar-token";
const WEBHOOK_SECRET: &str = "sf-secret";
const API_TOKEN: &str = "sf-api-token";
const BOT_TOKEN: &str = "xoxb-test";
const KEY: &[u8] = b"test-session-key\n";

/// SOAR, StackFlow (webhook + API) and Slack accounts `default`, all on `soar_url`'s /
/// the emulator's URLs, trusted through the emulator's CA; `extra_soar` is appended to
/// `[soar:default]`.
fn setup_with(emulator: &Emulator, soar_url: &str, soar_extra: &str) -> SplunkHome {
    let home = SplunkHome::new();
    let ca = home.root.join("emulator-ca.pem");
    emulator.write_ca(&ca).unwrap();
    let url = emulator.url();
    let ca = ca.display();
    home.write_local_conf(&format!(
        "[splunkd]\nuri = {url}\n\n\
         [soar:default]\nurl = {soar_url}\nca_file = {ca}\n{soar_extra}\n\
         [stackflow:default]\nwebhook_url = {url}/prod/api/webhooks/inbound/splunk\napi_url = {url}/prod/api\nca_file = {ca}\n\n\
         [slack:default]\napi_url = {url}/api\nchannel = #soc\nca_file = {ca}\n"
    ));
    emulator.set_secret("stackflow", "soar.default", SOAR_TOKEN);
    emulator.set_secret("stackflow", "stackflow.default", WEBHOOK_SECRET);
    emulator.set_secret("stackflow", "stackflow_api.default", API_TOKEN);
    emulator.set_secret("stackflow", "slack.default", BOT_TOKEN);
    home
}

fn setup() -> (SplunkHome, Emulator) {
    let emulator = Emulator::start();
    let home = setup_with(&emulator, &emulator.url(), "");
    (home, emulator)
}

fn check(home: &SplunkHome, stdin: &[u8]) -> Run {
    let run = home.run_stackflow(&["check"], stdin);
    // Shown when a test fails (the harness captures it otherwise).
    println!("stdout:\n{}stderr:\n{}", run.stdout, run.stderr);
    run.assert_levelled_stderr().assert_no_secret(&[
        SOAR_TOKEN,
        WEBHOOK_SECRET,
        API_TOKEN,
        BOT_TOKEN,
        SESSION_KEY,
    ]);
    run
}

/// The stdout line whose second column is `what`: (status word, detail).
#[track_caller]
fn line(run: &Run, what: &str) -> (String, String) {
    for text in run.stdout.lines() {
        let mut parts = text.split_whitespace();
        let status = parts.next().unwrap_or("");
        let mut name: Vec<&str> = Vec::new();
        let rest: Vec<&str> = parts.collect();
        // `what` may be two words ("stackflow:default api").
        let words = what.split(' ').count();
        if rest.len() >= words {
            name.extend(&rest[..words]);
            if name.join(" ") == what {
                return (status.to_string(), rest[words..].join(" "));
            }
        }
    }
    panic!("no line for {what:?}; stdout:\n{}\nstderr:\n{}", run.stdout, run.stderr);
}

#[track_caller]
fn assert_line(run: &Run, what: &str, status: &str, text: &str) {
    let (got, detail) = line(run, what);
    assert_eq!(got, status, "{what}: {detail}\nstdout:\n{}", run.stdout);
    assert!(detail.contains(text), "{what}: {detail:?} lacks {text:?}\nstdout:\n{}", run.stdout);
}

/// Nothing was created or posted: check is read-only.
#[track_caller]
fn assert_no_side_effects(emulator: &Emulator) {
    assert!(emulator.requests_to("/prod/api/webhooks").is_empty(), "the webhook was called");
    assert!(emulator.stackflow_incidents().is_empty());
    assert!(emulator.soar_containers().is_empty());
    assert!(emulator.slack_messages().is_empty());
    assert!(emulator.requests().iter().all(|r| r.method == "GET" || r.path == "/api/auth.test"));
}

#[test]
fn all_good_reaches_every_endpoint_and_changes_nothing() {
    let (home, emulator) = setup();
    let run = check(&home, KEY);
    run.assert_code(0);
    assert_line(&run, "[splunkd]", "OK", "session key accepted");
    assert_line(&run, "soar:default", "OK", "reachable, token accepted");
    assert_line(&run, "stackflow:default webhook", "OK", "no test incident");
    assert_line(&run, "stackflow:default api", "OK", "API token accepted");
    assert_line(&run, "slack:default", "OK", "bot token accepted (team Emulator Workspace");
    assert_line(&run, "[delivery]", "OK", "writable");
    assert!(!run.stdout.lines().any(|l| l.starts_with("FAIL")), "{}", run.stdout);
    let summary = run.stdout.lines().last().unwrap();
    assert!(summary.contains("0 FAIL") && summary.contains("exit 0"), "{summary}");
    assert_no_side_effects(&emulator);
    // /rest/version is not emulated (404): the container list proved the token instead.
    let soar: Vec<String> = emulator
        .requests_to("/rest/")
        .iter()
        .map(|r| format!("{} {} {}", r.method, r.path, r.header("ph-auth-token").unwrap_or("")))
        .collect();
    assert_eq!(
        soar,
        [format!("GET /rest/version {SOAR_TOKEN}"), format!("GET /rest/container {SOAR_TOKEN}")]
    );
    let api = emulator.requests_to("/prod/api/incidents");
    assert_eq!(api.len(), 1);
    assert_eq!(api[0].header("authorization"), Some(format!("Bearer {API_TOKEN}").as_str()));
    assert_eq!(api[0].query, "limit=1");
    // The probe file was removed again.
    assert_eq!(std::fs::read_dir(home.spool_dir()).unwrap().count(), 0);
}

#[test]
fn a_wrong_soar_token_fails_with_credentials() {
    let (home, emulator) = setup();
    emulator.set_soar_token("the-real-token");
    let run = check(&home, KEY);
    run.assert_code(5);
    assert_line(&run, "soar:default", "FAIL", "HTTP 401");
    assert_line(&run, "soar:default", "FAIL", "\"soar.default\"");
    assert_line(&run, "slack:default", "OK", "bot token accepted");
    assert_no_side_effects(&emulator);
}

#[test]
fn a_wrong_slack_token_fails_with_credentials() {
    let (home, emulator) = setup();
    emulator.set_slack_token("xoxb-other");
    let run = check(&home, KEY);
    run.assert_code(5);
    assert_line(&run, "slack:default", "FAIL", "invalid_auth");
    assert_no_side_effects(&emulator);
}

#[test]
fn an_untrusted_certificate_says_set_ca_file() {
    let emulator = Emulator::start();
    let home = setup_with(&emulator, &emulator.url(), "");
    // The SOAR account without its CA: the emulator's certificate is not trusted.
    let conf = std::fs::read_to_string(home.app_dir().join("local/stackflow.conf")).unwrap();
    let ca_line = format!("ca_file = {}\n", home.root.join("emulator-ca.pem").display());
    home.write_local_conf(&conf.replacen(&ca_line, "", 1));
    let run = check(&home, KEY);
    run.assert_code(4);
    assert_line(&run, "soar:default", "FAIL", "not trusted");
    assert_line(&run, "soar:default", "FAIL", "set ca_file");
    assert_line(&run, "stackflow:default api", "OK", "reachable");
    assert!(emulator.requests_to("/rest/").is_empty());
}

#[test]
fn an_endpoint_that_is_down_exits_7() {
    let emulator = Emulator::start();
    let soar = Emulator::start();
    let soar_url = soar.url();
    soar.stop();
    let home = setup_with(&emulator, &soar_url, "");
    let run = check(&home, KEY);
    run.assert_code(7);
    assert_line(&run, "soar:default", "FAIL", "unreachable now");
    assert_line(&run, "slack:default", "OK", "reachable");
}

#[test]
fn an_invalid_setting_value_names_the_key() {
    let emulator = Emulator::start();
    let home = setup_with(&emulator, &emulator.url(), "verify_ssl = maybe\n");
    let run = check(&home, KEY);
    run.assert_code(4);
    assert_line(
        &run,
        "soar:default",
        "FAIL",
        "[soar:default] verify_ssl: \"maybe\" is not a boolean",
    );
    assert!(emulator.requests_to("/rest/").is_empty());
    assert_line(&run, "stackflow:default webhook", "OK", "settings valid");
}

#[test]
fn a_missing_secret_fails_with_credentials() {
    let (home, emulator) = setup();
    let fresh = Emulator::start();
    // Same conf, but splunkd (a fresh emulator) holds every secret except the Slack token.
    let conf = std::fs::read_to_string(home.app_dir().join("local/stackflow.conf")).unwrap();
    home.write_local_conf(&conf.replacen(&emulator.url(), &fresh.url(), 1));
    fresh.set_secret("stackflow", "soar.default", SOAR_TOKEN);
    fresh.set_secret("stackflow", "stackflow.default", WEBHOOK_SECRET);
    fresh.set_secret("stackflow", "stackflow_api.default", API_TOKEN);
    let run = check(&home, KEY);
    run.assert_code(5);
    assert_line(&run, "slack:default", "FAIL", "no secret \"slack.default\"");
    assert_line(&run, "soar:default", "OK", "token accepted");
    assert!(emulator.requests_to("/api/").is_empty(), "Slack was called without a token");
}

#[test]
fn without_a_session_key_settings_are_validated_but_secrets_fail() {
    let emulator = Emulator::start();
    let home = setup_with(&emulator, &emulator.url(), "");
    let run = check(&home, b"");
    run.assert_code(5);
    assert_line(&run, "[splunkd]", "FAIL", "no splunkd session key on stdin");
    assert_line(&run, "soar:default", "FAIL", "settings valid; secret \"soar.default\" not read");
    assert_line(&run, "stackflow:default api", "FAIL", "secret \"stackflow_api.default\" not read");
    assert_line(&run, "[delivery]", "OK", "writable");
    assert!(emulator.requests().is_empty(), "nothing can be called without secrets");
}

#[test]
fn check_help_is_complete() {
    let home = SplunkHome::new();
    let run = home.run_stackflow(&["check", "--help"], b"");
    run.assert_code(0);
    for text in ["--splunkd-uri", "session key", "Exit codes"] {
        assert!(run.stdout.contains(text), "{text:?} missing from:\n{}", run.stdout);
    }
}

#[test]
fn the_soar_version_is_reported_when_soar_has_rest_version() {
    let (home, emulator) = setup();
    let version = r#"{"version": "6.3.0.719"}"#;
    emulator.fault(
        "/rest/version",
        Fault::Status { status: 200, body: version.into(), headers: Vec::new() },
        1,
    );
    let run = check(&home, KEY);
    run.assert_code(0);
    assert_line(&run, "soar:default", "OK", "token accepted (SOAR 6.3.0.719)");
    assert_eq!(emulator.requests_to("/rest/").len(), 1, "no fallback needed");
}

#[test]
fn a_server_error_is_transient() {
    let (home, emulator) = setup();
    emulator.fault("/prod/api/incidents", Fault::RetryAfter { status: 503, seconds: 1 }, 1);
    let run = check(&home, KEY);
    run.assert_code(7);
    assert_line(&run, "stackflow:default api", "FAIL", "HTTP 503");
}

#[test]
fn routes_and_llm_accounts_are_validated() {
    let emulator = Emulator::start();
    let home = setup_with(
        &emulator,
        &emulator.url(),
        "\n[route:20_noise]\nsearch_name = *Test*\nsuppress = true\n\n\
         [route:10_risky]\nmin_risk_score = lots\nchannel = #soc-risk\n\n\
         [llm:default]\nurl = https://llm.example.com/v1/chat/completions\nmodel = soc-1\n\n\
         [llm:lab]\nurl = http://llm.example.com/v1/chat/completions\nmodel = soc-1\n",
    );
    let run = check(&home, KEY);
    run.assert_code(4);
    assert_line(
        &run,
        "[route:10_risky]",
        "FAIL",
        "[route:10_risky] min_risk_score: \"lots\" is not a number",
    );
    assert_line(&run, "[route:20_noise]", "OK", "route valid (suppress)");
    assert_line(&run, "[llm:default]", "OK", "model soc-1 at https://llm.example.com");
    assert_line(&run, "[llm:lab]", "FAIL", "[llm:lab] url");
    let unknown = run.stdout.lines().any(|line| {
        line.contains("unknown") && (line.contains("[route:") || line.contains("[llm:"))
    });
    assert!(!unknown, "routes and llm accounts are known stanzas: {}", run.stdout);
}

/// PRODUCT §15 "One table of settings": every key `README/stackflow.conf.spec` documents is
/// known to `check` (here a cluster's `[delivery]` stanza, the [limits], [notables],
/// [slack_response], an `[llm:…]` account and a route), while a typo still gets its WARN.
#[test]
fn documented_keys_are_never_called_unknown() {
    let emulator = Emulator::start();
    let home = setup_with(&emulator, &emulator.url(), "");
    let conf = std::fs::read_to_string(home.app_dir().join("local/stackflow.conf")).unwrap();
    let url = emulator.url();
    home.write_local_conf(&format!(
        "{conf}\n[delivery]\ntimeout_s = 30\nmax_attempts = 5\nretry_base_s = 0.5\n\
         flush_max_items = 5000\nflush_max_s = 50\nstore = kvstore\nlease_s = 120\n\
         kvstore_conflict_status = 409\nledger_retention_days = 14\nspool_dir =\n\n\
         [limits]\nmax_results_bytes = 2147483648\nmax_record_bytes = 67108864\n\
         max_field_bytes = 16777216\nmax_fields = 10000\n\n\
         [notables]\napi = auto\n\n\
         [slack_response]\nfalse_positive_disposition = disposition:3\n\
         escalate_account = default\nplaybook_account = default\n\n\
         [llm:default]\nurl = {url}/v1/chat/completions\nmodel = m\ntimeout_s = 8\n\
         max_tokens = 300\nredact_ips = true\nverify_ssl = true\n\n\
         [route:10_critical]\nfield.dest_priority = critical\nchannel = #soc-critical\n\n\
         [receipts]\nindex = stackflow\n"
    ));
    emulator.set_secret("stackflow", "llm.default", "llm-key");
    let run = check(&home, KEY);
    assert!(
        !run.stdout.contains("unknown"),
        "a documented key was called unknown:\n{}",
        run.stdout
    );

    home.write_local_conf(&format!("{conf}\n[delivery]\nflush_max_z = 50\n"));
    let run = check(&home, KEY);
    assert_line(&run, "[delivery]", "WARN", "unknown setting(s) ignored: flush_max_z");
}
