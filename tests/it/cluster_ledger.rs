//! Search head clusters and the remotes that do not deduplicate (StackFlow's webhook, Slack),
//! end to end (PRODUCT §5, §11): the delivery ledger and the sending markers live in the KV
//! store collection `stackflow_ledger`, so what one member delivered no other member sends
//! again, a file ledger left by the file store is migrated, and a member killed after its
//! request left but before its ledger write makes the next member look the item up on the
//! remote instead of sending it a second time.

use crate::cluster::{flush_at_once, items, join_cluster, unavailable};
use crate::delivery::{files_in, flush};
use crate::support::*;
use serde_json::{Value, json};
use stackflow_emulator::{Emulator, Fault};
use std::collections::HashSet;
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

const LEDGER: &str = "stackflow_ledger";
const WEBHOOK: &str = "/prod/api/webhooks/inbound/splunk";
const POST_MESSAGE: &str = "/api/chat.postMessage";
const STACKFLOW: &str = "stackflow_incident";
const SLACK: &str = "stackflow_slack";

/// A member with a StackFlow account (webhook and incidents API) and a Slack account on `emu`,
/// their secrets in `splunkd`'s storage/passwords; `delivery_extra` goes under `[delivery]`.
fn member(emu: &Emulator, splunkd: &Emulator, delivery_extra: &str) -> SplunkHome {
    let (home, ca) = SplunkHome::trusting(emu);
    write_conf(&home, emu, &ca, delivery_extra);
    join_cluster(&home, splunkd);
    splunkd.set_secret("stackflow", "stackflow.default", "sf-secret");
    splunkd.set_secret("stackflow", "stackflow_api.default", "sf-api-token");
    splunkd.set_secret("stackflow", "slack.default", "xoxb-test");
    home
}

fn write_conf(home: &SplunkHome, emu: &Emulator, ca: &std::path::Path, delivery_extra: &str) {
    home.write_local_conf(&format!(
        "[stackflow:default]\nwebhook_url = {url}{WEBHOOK}\nca_file = {ca}\n\n\
         [slack:default]\napi_url = {url}/api\nchannel = #soc-alerts\nca_file = {ca}\n\n\
         [delivery]\nretry_base_s = 0.05\nmax_attempts = 1\nlease_s = 2\n{delivery_extra}\n",
        url = emu.url(),
        ca = ca.display()
    ));
}

fn run(home: &SplunkHome, splunkd: &Emulator, stanza: &str, n: u32) -> Run {
    let sid = scheduler_sid(n);
    let rows = vec![vec![
        ("search_name", one("Excessive failed logins")),
        ("src", one(&format!("10.1.2.{n}"))),
        ("severity", one("high")),
    ]];
    let results = home.write_results(&sid, &rows);
    home.run_alert(stanza, &payload(home, &splunkd.url(), &sid, &results, json!({})))
}

fn ledger_docs(splunkd: &Emulator, kind: &str) -> Vec<Value> {
    splunkd.kv_records(LEDGER).into_iter().filter(|doc| doc["kind"] == kind).collect()
}

#[test]
fn what_one_member_delivered_no_other_member_sends_again_and_file_ledgers_are_migrated() {
    let emu = Emulator::start();
    let splunkd = Emulator::start();
    let (a, ca) = SplunkHome::trusting(&emu);
    // A starts on the file store (as an earlier version did): its ledger is a file.
    write_conf(&a, &emu, &ca, "store = file");
    join_cluster(&a, &splunkd);
    let b = member(&emu, &splunkd, "");
    run(&a, &splunkd, STACKFLOW, 1).assert_code(0);
    assert_eq!(files_in(&a.spool_dir().join("ledger")).len(), 1, "a file ledger entry");
    assert!(ledger_docs(&splunkd, "delivered").is_empty());
    // … and its spool: an item StackFlow refused for now waits in A's files.
    emu.fault(WEBHOOK, unavailable(), 1);
    run(&a, &splunkd, STACKFLOW, 3).assert_code(7);
    assert_eq!(files_in(&a.spool_dir().join("pending")).len(), 1);
    // A moves to the KV store: its next flush migrates both instead of orphaning them, then
    // delivers the item from the collection.
    write_conf(&a, &emu, &ca, "");
    join_cluster(&a, &splunkd);
    let flushed = flush(&a, &splunkd, &["--all"]);
    flushed.assert_code(0).assert_line("INFO", "ledger entries");
    flushed.assert_line("INFO", "into the KV store collection stackflow_spool");
    assert!(files_in(&a.spool_dir().join("pending")).is_empty());
    assert!(items(&splunkd).is_empty(), "{}", flushed.stderr);
    assert_eq!(emu.stackflow_incidents().len(), 2, "{}", flushed.stderr);
    let names: Vec<_> = files_in(&a.spool_dir().join("ledger"))
        .into_iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    assert!(names.is_empty(), "migrated, not left behind: {names:?}");
    assert_eq!(ledger_docs(&splunkd, "delivered").len(), 2);
    // B runs the same alert: the KV store ledger says it is delivered; nothing is sent.
    let again = run(&b, &splunkd, STACKFLOW, 1);
    again.assert_code(0);
    assert_eq!(emu.stackflow_incidents().len(), 2, "{}", again.stderr);
    assert_eq!(emu.requests_to(WEBHOOK).len(), 3, "1 delivered, 1 refused, 1 delivered");
    assert!(b.receipts().iter().any(|r| r["outcome"] == "duplicate"), "{:?}", b.receipts());
    // Slack, directly in the KV store this time.
    run(&a, &splunkd, SLACK, 2).assert_code(0);
    run(&b, &splunkd, SLACK, 2).assert_code(0);
    assert_eq!(emu.slack_messages().len(), 1);
    assert_eq!(emu.requests_to(POST_MESSAGE).len(), 1);
    assert_eq!(ledger_docs(&splunkd, "delivered").len(), 3);
    assert!(ledger_docs(&splunkd, "sending").is_empty(), "markers cleared once answered");
    assert!(files_in(&b.spool_dir().join("ledger")).iter().all(|p| !p.ends_with(".json")));
}

#[test]
fn three_members_with_one_killed_between_send_and_ledger_write_deliver_stackflow_and_slack_once() {
    let emu = Emulator::start();
    let splunkd = Emulator::start();
    let members: Vec<SplunkHome> = (0..3).map(|_| member(&emu, &splunkd, "")).collect();
    const ALERTS: u32 = 6;
    // StackFlow and Slack down while the alerts fire, on every member in turn.
    emu.fault(WEBHOOK, unavailable(), ALERTS as usize);
    emu.fault(POST_MESSAGE, unavailable(), ALERTS as usize);
    for n in 0..ALERTS {
        let home = &members[n as usize % 3];
        run(home, &splunkd, STACKFLOW, 100 + n).assert_code(7);
        run(home, &splunkd, SLACK, 200 + n).assert_code(7);
    }
    // Two members move their items into the KV store while both remotes still refuse.
    emu.fault(WEBHOOK, unavailable(), 2);
    emu.fault(POST_MESSAGE, unavailable(), 2);
    for home in &members[..2] {
        flush(home, &splunkd, &[]).assert_code(7);
    }
    // The third is killed once its first StackFlow request has reached StackFlow, which
    // creates the incident 1.5 s later: the answer never comes back, no ledger entry is
    // written, the sending marker stays in the KV store.
    let refused = emu.requests_to(WEBHOOK).len();
    emu.fault(WEBHOOK, Fault::Delay(Duration::from_millis(1500)), 1);
    let binary = members[2].app_dir().join(PLATFORM_DIR).join("bin").join("stackflow");
    let mut command = Command::new(&binary);
    command.args(["spool", "flush", "--splunkd-uri", &splunkd.url()]);
    let mut child = spawn(&mut members[2].command(command));
    child.stdin.take().unwrap().write_all(format!("{SESSION_KEY}\n").as_bytes()).unwrap();
    let waited = Instant::now();
    while emu.requests_to(WEBHOOK).len() <= refused && waited.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill(); // SIGKILL, while the request is in StackFlow's hands
    let _ = child.wait();
    // (Markers of the refused attempts are there too: a 503 is retried after a lookup.)
    assert!(!ledger_docs(&splunkd, "sending").is_empty(), "the killed member's marker");
    let waited = Instant::now();
    while emu.stackflow_incidents().is_empty() && waited.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(emu.stackflow_incidents().len(), 1, "the killed member's request arrived");
    // The other two flush at once, run after run, StackFlow flapping, until nothing is left.
    let mut looked_up = false;
    let mut rounds = 0;
    while !items(&splunkd).is_empty() {
        rounds += 1;
        assert!(rounds <= 12, "not drained after {rounds} rounds: {:?}", items(&splunkd));
        if rounds % 2 == 0 {
            emu.fault(WEBHOOK, unavailable(), 1);
        }
        for run in flush_at_once(&members[..2], &splunkd) {
            run.assert_no_secret(&["sf-secret", "sf-api-token", "xoxb-test"]);
            looked_up |= run.stderr.contains("whose answer was lost had delivered it");
        }
        if !items(&splunkd).is_empty() {
            std::thread::sleep(Duration::from_millis(700)); // let the dead member's lease expire
        }
    }
    assert!(looked_up, "the killed member's item was looked up on StackFlow, not resent");
    let incidents = emu.stackflow_incidents();
    assert_eq!(incidents.len(), ALERTS as usize, "every StackFlow alert once: {incidents:?}");
    let messages = emu.slack_messages();
    assert_eq!(messages.len(), ALERTS as usize, "every Slack alert once: {messages:?}");
    let texts: HashSet<String> = messages.iter().map(|m| m["text"].to_string()).collect();
    assert_eq!(texts.len(), ALERTS as usize, "no message twice");
    assert!(items(&splunkd).is_empty(), "nothing left pending");
    assert_eq!(ledger_docs(&splunkd, "delivered").len(), 2 * ALERTS as usize);
    assert!(ledger_docs(&splunkd, "sending").is_empty(), "every marker resolved");
    for home in &members {
        for dir in ["pending", "inflight", "dead", "ledger"] {
            let left: Vec<_> = files_in(&home.spool_dir().join(dir))
                .into_iter()
                .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
                .collect();
            assert!(left.is_empty(), "{dir} on a member: {left:?}");
        }
    }
}
