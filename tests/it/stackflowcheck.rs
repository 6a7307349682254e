//! `| stackflowcheck` and `stackflow check --json` end to end: the installed binary run as
//! splunkd runs the generating chunked command (getinfo, then an empty execute request, the
//! search's session key in `searchinfo`), its rows parsed from the reply, and what the
//! emulators received.

use crate::support::*;
use crate::sync::{chunk, field, table};
use serde_json::{Value, json};
use stackflow::splunk::chunked::{Chunk, read_chunk};
use stackflow_emulator::Emulator;

const SECRETS: [&str; 4] = ["soar-token", "sf-secret", "sf-api-token", "xoxb-test"];

/// Accounts `default` of every kind and `[soar:prod]`, all on the emulator; every secret of
/// `default` stored, none of `prod`.
fn setup() -> (SplunkHome, Emulator) {
    let emulator = Emulator::start();
    let (home, ca) = SplunkHome::trusting(&emulator);
    let (url, ca) = (emulator.url(), ca.display().to_string());
    home.write_local_conf(&format!(
        "[splunkd]\nuri = {url}\nca_file = {ca}\n\n\
         [soar:default]\nurl = {url}\nca_file = {ca}\n\n\
         [soar:prod]\nurl = {url}\nca_file = {ca}\n\n\
         [stackflow:default]\nwebhook_url = {url}/prod/api/webhooks/inbound/splunk\napi_url = {url}/prod/api\nca_file = {ca}\n\n\
         [slack:default]\napi_url = {url}/api\nchannel = #soc\nca_file = {ca}\n"
    ));
    for (user, secret) in
        ["soar.default", "stackflow.default", "stackflow_api.default", "slack.default"]
            .into_iter()
            .zip(SECRETS)
    {
        emulator.set_secret("stackflow", user, secret);
    }
    (home, emulator)
}

fn getinfo(emulator: &Emulator, args: &[&str]) -> Vec<u8> {
    chunk(
        &json!({"action": "getinfo", "preview": false,
                "searchinfo": {"args": args, "raw_args": args, "dispatch_dir": "", "sid": "1700000000.7",
                "app": "stackflow", "owner": "admin", "username": "admin",
                "session_key": SESSION_KEY, "splunkd_uri": emulator.url(), "splunk_version": "9.4.1",
                "search": "%7C%20stackflowcheck", "command": "stackflowcheck",
                "maxresultrows": 50000, "earliest_time": "0", "latest_time": "0"}}),
        b"",
    )
}

/// Runs `| stackflowcheck <args>` as splunkd does; returns the exit code and the replies.
fn search(home: &SplunkHome, emulator: &Emulator, args: &[&str]) -> (i32, Vec<Chunk>) {
    let execute = chunk(&json!({"action": "execute", "finished": true}), b"");
    let run =
        home.run_stackflow(&["check", "--chunked"], &[getinfo(emulator, args), execute].concat());
    println!("stdout:\n{}stderr:\n{}", run.stdout, run.stderr);
    run.assert_levelled_stderr().assert_no_secret(&SECRETS).assert_no_secret(&[SESSION_KEY]);
    let mut input = run.stdout.as_bytes();
    let mut replies = Vec::new();
    while let Some(reply) = read_chunk(&mut input).expect("replies are well-framed chunks") {
        replies.push(reply);
    }
    (run.code, replies)
}

/// The rows of the execute reply as (kind, account, check) → (status, detail, remedy).
fn rows_of(reply: &Chunk) -> Vec<[String; 6]> {
    let table = table(reply);
    assert_eq!(table.header(), ["kind", "account", "check", "status", "detail", "remedy"]);
    (0..table.n_rows())
        .map(|row| {
            ["kind", "account", "check", "status", "detail", "remedy"]
                .map(|f| field(&table, row, f))
        })
        .collect()
}

#[track_caller]
fn row<'a>(rows: &'a [[String; 6]], kind: &str, account: &str, check: &str) -> &'a [String; 6] {
    rows.iter()
        .find(|r| r[0] == kind && r[1] == account && r[2] == check)
        .unwrap_or_else(|| panic!("no row {kind} {account} {check}: {rows:#?}"))
}

#[test]
fn every_account_is_one_row_per_check_with_status_detail_and_remedy() {
    let (home, emulator) = setup();
    let (code, replies) = search(&home, &emulator, &[]);
    assert_eq!(code, 0);
    assert_eq!(replies.len(), 2, "one getinfo reply, one execute reply");
    assert_eq!(replies[0].metadata["generating"], Value::Bool(true));
    assert_eq!(replies[0].metadata["type"], "stateful");
    assert_eq!(replies[1].metadata["finished"], Value::Bool(true));
    let rows = rows_of(&replies[1]);
    let splunkd = row(&rows, "app", "", "splunkd");
    assert_eq!(splunkd[3], "OK", "{splunkd:?}");
    assert!(splunkd[4].contains("session key accepted (user admin)"), "{splunkd:?}");
    assert_eq!(row(&rows, "soar", "default", "endpoint")[3], "OK");
    assert_eq!(row(&rows, "stackflow", "default", "webhook")[3], "OK");
    assert_eq!(row(&rows, "stackflow", "default", "api")[3], "OK");
    assert_eq!(row(&rows, "slack", "default", "endpoint")[3], "OK");
    assert_eq!(row(&rows, "app", "", "delivery")[3], "OK");
    let prod = row(&rows, "soar", "prod", "endpoint");
    assert_eq!(prod[3], "FAIL");
    assert!(prod[4].contains("no secret \"soar.prod\""), "{prod:?}");
    assert!(
        prod[5].contains("setup page")
            && prod[5].contains("stackflow secret set")
            && prod[5].contains("soar.prod"),
        "{prod:?}"
    );
    assert!(rows.iter().filter(|r| r[3] == "OK").all(|r| r[5].is_empty()), "{rows:#?}");
    // Every stanza and key the app ships is known to the checks.
    assert!(!rows.iter().any(|r| r[4].contains("unknown")), "{rows:#?}");
    // The search's own session key read the secrets; check is read-only.
    let secret_reads = emulator.requests_to("/servicesNS/nobody/stackflow/storage/passwords");
    assert!(!secret_reads.is_empty());
    assert!(secret_reads.iter().all(|r| r.method == "GET"
        && r.header("authorization") == Some(&format!("Splunk {SESSION_KEY}"))));
    assert!(emulator.requests_to("/prod/api/webhooks").is_empty(), "the webhook was called");
    assert!(emulator.soar_containers().is_empty() && emulator.slack_messages().is_empty());
}

#[test]
fn account_and_kind_select_which_remotes_are_probed() {
    let (home, emulator) = setup();
    let (code, replies) = search(&home, &emulator, &["account=default", "kind=soar"]);
    assert_eq!(code, 0);
    let rows = rows_of(&replies[1]);
    let accounts: Vec<(&str, &str)> =
        rows.iter().filter(|r| r[0] != "app").map(|r| (r[0].as_str(), r[1].as_str())).collect();
    assert_eq!(accounts, [("soar", "default")], "{rows:#?}");
    assert!(emulator.requests_to("/api/").is_empty(), "Slack was probed");
    assert!(emulator.requests_to("/prod/api/").is_empty(), "StackFlow was probed");
    assert!(!emulator.requests_to("/rest/").is_empty(), "SOAR was not probed");

    // An account that does not exist is one FAIL row saying so.
    let (code, replies) = search(&home, &emulator, &["account=nosuch"]);
    assert_eq!(code, 0, "a failed check is a row, not a failed search");
    let rows = rows_of(&replies[1]);
    let missing = row(&rows, "all", "nosuch", "settings");
    assert_eq!(missing[3], "FAIL");
    assert!(missing[4].contains("no account \"nosuch\""), "{missing:?}");
}

#[test]
fn bad_arguments_fail_the_search_at_getinfo() {
    let (home, emulator) = setup();
    for (args, needle) in [
        (&["kind=jira"][..], "not one of soar, stackflow, slack, all"),
        (&["account=a/b"], "not an account name"),
        (&["verbose=true"], "unknown option"),
    ] {
        let (code, replies) = search(&home, &emulator, args);
        assert_eq!(code, 2, "{args:?}");
        assert_eq!(replies.len(), 1, "{args:?}");
        let error = replies[0].metadata["error"].as_str().unwrap_or_default();
        assert!(error.contains(needle), "{args:?}: {error}");
    }
    assert!(emulator.requests().is_empty(), "getinfo must not reach anything");
}

#[test]
fn check_json_prints_one_object_per_check_and_a_summary() {
    let (home, emulator) = setup();
    let run = home.run_stackflow(&["check", "--json"], format!("{SESSION_KEY}\n").as_bytes());
    run.assert_no_secret(&SECRETS);
    assert_eq!(run.code, 5, "soar.prod has no secret: {}", run.stdout);
    let lines: Vec<Value> =
        run.stdout.lines().map(|line| serde_json::from_str(line).expect("JSON line")).collect();
    let (summary, checks) = lines.split_last().unwrap();
    assert_eq!(summary["exit_code"], 5);
    assert!(summary["summary"].as_str().unwrap().contains("1 FAIL"), "{summary}");
    for check in checks {
        for key in ["kind", "account", "check", "status", "detail", "remedy"] {
            assert!(check[key].is_string(), "{key} in {check}");
        }
    }
    let soar_prod = checks.iter().find(|c| c["kind"] == "soar" && c["account"] == "prod").unwrap();
    assert_eq!(soar_prod["status"], "FAIL");
    drop(emulator);
}
