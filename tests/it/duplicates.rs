//! No duplicates on remotes that do not deduplicate (StackFlow's webhook, Slack) when an
//! answer is lost — a known answer such as a 429 is not a lost one, and a look-up that cannot
//! work sends again with a WARN — nor on SOAR artifacts when two runs race: the installed action and
//! `spool flush` run as splunkd runs them, against emulators that act and then reset the
//! connection (`Fault::ResetAfterProcessing`) or answer late while the flusher is killed.

use crate::delivery::flush;
use crate::support::{
    Cell, PLATFORM_DIR, SESSION_KEY, SplunkHome, one, payload, scheduler_sid, spawn,
};
use serde_json::json;
use stackflow_emulator::{Emulator, Fault};
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

const WEBHOOK: &str = "/prod/api/webhooks/inbound/splunk";

/// A StackFlow account whose webhook and incidents API are on `emu`, with both secrets.
fn stackflow_home(emu: &Emulator, api_token: bool) -> SplunkHome {
    let (home, ca) = SplunkHome::trusting(emu);
    home.write_local_conf(&format!(
        "[stackflow:default]\nwebhook_url = {}{WEBHOOK}\nca_file = {}\n\n\
         [delivery]\nmax_attempts = 3\nretry_base_s = 0.05\n",
        emu.url(),
        ca.display()
    ));
    emu.set_secret("stackflow", "stackflow.default", "sf-secret");
    if api_token {
        emu.set_secret("stackflow", "stackflow_api.default", "sf-api-token");
    }
    home
}

fn rows() -> Vec<Vec<(&'static str, Cell)>> {
    vec![vec![
        ("search_name", one("Excessive failed logins")),
        ("src", one("10.1.2.3")),
        ("severity", one("high")),
    ]]
}

fn run_action(home: &SplunkHome, emu: &Emulator, stanza: &str, n: u32) -> crate::support::Run {
    let sid = scheduler_sid(n);
    let results = home.write_results(&sid, &rows());
    let payload = payload(home, &emu.url(), &sid, &results, json!({}));
    home.run_alert(stanza, &payload)
}

#[test]
fn a_reset_after_stackflow_created_the_incident_does_not_create_a_second() {
    let emu = Emulator::start();
    let home = stackflow_home(&emu, true);
    emu.fault(WEBHOOK, Fault::ResetAfterProcessing, 1);
    let run = run_action(&home, &emu, "stackflow_incident", 1);
    run.assert_code(0).assert_levelled_stderr().assert_no_secret(&["sf-secret", "sf-api-token"]);
    assert_eq!(emu.stackflow_incidents().len(), 1, "{}", run.stderr);
    assert_eq!(emu.requests_to(WEBHOOK).len(), 1, "the webhook is not called again");
    let lookups = emu.requests_to("/prod/api/incidents");
    assert_eq!(lookups.len(), 1, "one lookup before the retry");
    assert!(lookups[0].query.contains("created_after="), "{}", lookups[0].query);
    assert!(run.stderr.contains("answer was lost"), "{}", run.stderr);
    // The receipt names the incident that the lost answer created.
    let incident = emu.stackflow_incidents()[0]["id"].clone();
    let receipts = home.receipts();
    assert!(
        receipts.iter().any(|r| r["remote_id"] == incident && r["outcome"] == "duplicate"),
        "{receipts:?}"
    );
}

#[test]
fn a_reset_after_slack_posted_the_message_does_not_post_it_again() {
    let emu = Emulator::start();
    let (home, ca) = SplunkHome::trusting(&emu);
    home.write_local_conf(&format!(
        "[slack:default]\napi_url = {}/api\nchannel = #soc-alerts\nca_file = {}\n\n\
         [delivery]\nmax_attempts = 3\nretry_base_s = 0.05\n",
        emu.url(),
        ca.display()
    ));
    emu.set_secret("stackflow", "slack.default", "xoxb-test");
    emu.fault("/api/chat.postMessage", Fault::ResetAfterProcessing, 1);
    let run = run_action(&home, &emu, "stackflow_slack", 2);
    run.assert_code(0).assert_levelled_stderr().assert_no_secret(&["xoxb-test"]);
    assert_eq!(emu.slack_messages().len(), 1, "{}", run.stderr);
    assert_eq!(emu.requests_to("/api/chat.postMessage").len(), 1);
    assert_eq!(emu.requests_to("/api/conversations.history").len(), 1);
    assert_eq!(
        emu.requests_to("/api/conversations.list").len(),
        1,
        "#soc-alerts resolved to its id"
    );
}

#[test]
fn a_lost_answer_and_a_remote_that_cannot_be_asked_wait_instead_of_duplicating() {
    let emu = Emulator::start();
    let home = stackflow_home(&emu, true);
    emu.fault(WEBHOOK, Fault::ResetAfterProcessing, 1);
    // The incidents API is down for the whole run: the item waits in the spool (exit 7).
    // (two lookups: attempts 2 and 3 of max_attempts = 3)
    emu.fault("/prod/api/incidents", Fault::RetryAfter { status: 503, seconds: 0 }, 2);
    let run = run_action(&home, &emu, "stackflow_incident", 3);
    run.assert_code(7).assert_levelled_stderr();
    assert_eq!(emu.stackflow_incidents().len(), 1);
    assert_eq!(emu.requests_to(WEBHOOK).len(), 1, "not sent blind a second time");
    // The API is back: the flush finds the incident and sends nothing.
    let flushed = flush(&home, &emu, &["--all"]);
    flushed.assert_code(0);
    assert_eq!(emu.stackflow_incidents().len(), 1, "{}", flushed.stderr);
    assert_eq!(emu.requests_to(WEBHOOK).len(), 1);
}

#[test]
fn a_429_from_stackflow_is_an_answer_and_the_next_attempt_sends_without_a_look_up() {
    let emu = Emulator::start();
    let home = stackflow_home(&emu, true);
    emu.fault(WEBHOOK, Fault::RetryAfter { status: 429, seconds: 0 }, 1);
    let run = run_action(&home, &emu, "stackflow_incident", 7);
    run.assert_code(0).assert_levelled_stderr();
    assert_eq!(emu.stackflow_incidents().len(), 1);
    assert_eq!(emu.requests_to(WEBHOOK).len(), 2, "refused once, then created");
    assert!(
        emu.requests_to("/prod/api/incidents").is_empty(),
        "a 429 says the incident was not created: nothing to look up\n{}",
        run.stderr
    );
}

#[test]
fn without_an_incidents_api_token_a_lost_answer_is_sent_again_with_a_warning() {
    let emu = Emulator::start();
    let home = stackflow_home(&emu, false);
    emu.fault(WEBHOOK, Fault::ResetAfterProcessing, 1);
    let run = run_action(&home, &emu, "stackflow_incident", 8);
    run.assert_code(0).assert_levelled_stderr();
    assert_eq!(emu.stackflow_incidents().len(), 2, "sent again: {}", run.stderr);
    let warning = run
        .stderr
        .lines()
        .find(|line| line.contains("WARN") && line.contains("possible duplicate"))
        .unwrap_or_else(|| panic!("no WARN naming the possible duplicate: {}", run.stderr));
    assert!(warning.contains("stackflow_api.default"), "{warning}");
}

#[test]
fn the_stackflow_look_up_reads_every_page_of_matches() {
    let emu = Emulator::start();
    let home = stackflow_home(&emu, true);
    std::fs::write(
        home.app_dir().join("local").join("stackflow.conf"),
        std::fs::read_to_string(home.app_dir().join("local").join("stackflow.conf"))
            .unwrap()
            .replace("max_attempts = 3", "max_attempts = 1"),
    )
    .unwrap();
    emu.fault(WEBHOOK, Fault::ResetAfterProcessing, 1);
    run_action(&home, &emu, "stackflow_incident", 9).assert_code(7);
    let created = emu.stackflow_incidents()[0].clone();
    let key = created["payload"]["dedupe_key"].as_str().expect("the stored dedupe key").to_string();
    // 250 incidents that mention the key (full-text matches) but are not ours come first: the
    // incident the lost answer created is on the second page of 200.
    for n in 0..250 {
        let mut decoy = created.clone();
        decoy["id"] =
            json!(if n == 0 { created["id"].clone() } else { json!(format!("DECOY{n}")) });
        decoy["payload"]["dedupe_key"] = json!(format!("other-{n}"));
        decoy["description"] = json!(format!("see {key}"));
        emu.add_stackflow_incident(decoy);
    }
    let mut ours = created.clone();
    ours["id"] = json!("INC9999999");
    emu.add_stackflow_incident(ours);
    let flushed = flush(&home, &emu, &["--all"]);
    flushed.assert_code(0);
    assert_eq!(emu.requests_to(WEBHOOK).len(), 1, "found, not sent again: {}", flushed.stderr);
    assert_eq!(emu.requests_to("/prod/api/incidents").len(), 2, "two pages");
    let receipts = home.receipts();
    assert!(
        receipts.iter().any(|r| r["remote_id"] == "INC9999999" && r["outcome"] == "duplicate"),
        "{receipts:?}"
    );
}

#[test]
fn a_flusher_killed_while_stackflow_creates_the_incident_leaves_no_duplicate() {
    let emu = Emulator::start();
    let home = stackflow_home(&emu, true);
    // StackFlow refuses for the whole run: the item is spooled.
    emu.fault(WEBHOOK, Fault::RetryAfter { status: 503, seconds: 0 }, 3);
    run_action(&home, &emu, "stackflow_incident", 4).assert_code(7);
    assert!(emu.stackflow_incidents().is_empty());
    // The next flush is killed while StackFlow is still creating the incident: as soon as the
    // webhook request has arrived (StackFlow answers 2 s later).
    emu.fault(WEBHOOK, Fault::Delay(Duration::from_millis(2000)), 1);
    let url = emu.url();
    let mut command = Command::new(home.app_dir().join(PLATFORM_DIR).join("bin").join("stackflow"));
    command.args(["spool", "flush", "--all", "--splunkd-uri", &url]);
    let mut child = spawn(&mut home.command(command));
    child.stdin.take().unwrap().write_all(format!("{SESSION_KEY}\n").as_bytes()).unwrap();
    let waited = Instant::now();
    while emu.requests_to(WEBHOOK).len() < 4 && waited.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill(); // SIGKILL, while the request is in StackFlow's hands
    let _ = child.wait();
    let waited = Instant::now();
    while emu.stackflow_incidents().is_empty() && waited.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(emu.stackflow_incidents().len(), 1, "the killed flusher's request arrived");
    let flushed = flush(&home, &emu, &["--all"]);
    flushed.assert_code(0);
    assert_eq!(emu.stackflow_incidents().len(), 1, "{}", flushed.stderr);
    assert_eq!(emu.requests_to(WEBHOOK).len(), 3 + 1, "3 refused, 1 created, none after");
}

/// Two runs of the same alert at once, each posting `rows` artifacts in batches.
fn race_two_soar_runs(n: u32, rows: usize) -> Emulator {
    let emu = Emulator::start();
    let (home, ca) = SplunkHome::trusting(&emu);
    home.write_local_conf(&format!(
        "[soar:default]\nurl = {}\nca_file = {}\n",
        emu.url(),
        ca.display()
    ));
    emu.set_secret("stackflow", "soar.default", "soar-token");
    // Slow artifact POSTs: the other run's pre-check comes back before the artifacts exist,
    // so without a claim it would post them all again.
    emu.set_latency("POST /rest/artifact", Duration::from_millis(300));
    let sid = scheduler_sid(n);
    let rows: Vec<Vec<(&str, Cell)>> = (0..rows)
        .map(|n| {
            vec![
                ("event_id", Cell::One(format!("E-{n}"))),
                ("src", Cell::One(format!("10.0.{}.{}", n / 250, n % 250))),
            ]
        })
        .collect();
    let results = home.write_results(&sid, &rows);
    let payload = payload(&home, &emu.url(), &sid, &results, json!({"grouping": "alert"}));
    let runs: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            (0..2).map(|_| scope.spawn(|| home.run_alert("stackflow_soar", &payload))).collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });
    for run in &runs {
        run.assert_code(0).assert_levelled_stderr();
    }
    emu
}

#[test]
fn two_concurrent_runs_on_the_same_notables_post_each_artifact_once() {
    let emu = race_two_soar_runs(5, 3);
    assert_eq!(emu.soar_containers().len(), 1);
    let artifacts = emu.soar_artifacts();
    assert_eq!(artifacts.len(), 3, "each SDI once: {artifacts:?}");
}

#[test]
fn interleaved_batches_of_two_runs_post_each_artifact_once() {
    // 1,100 rows: three batches each; the runs take turns on the container between batches.
    let emu = race_two_soar_runs(6, 1100);
    assert_eq!(emu.soar_containers().len(), 1);
    let artifacts = emu.soar_artifacts();
    let distinct: std::collections::HashSet<&str> =
        artifacts.iter().filter_map(|a| a["source_data_identifier"].as_str()).collect();
    assert_eq!((artifacts.len(), distinct.len()), (1100, 1100));
}
