//! Search head clusters (PRODUCT §11), end to end: members are separate SPLUNK_HOMEs sharing
//! one emulated splunkd KV store; the spool lives in the collection `stackflow_spool`, items
//! spooled on one member are flushed by another, dead letters are listed and requeued from any
//! member, and a member killed mid-send loses nothing while flushes run everywhere at once.

use crate::delivery::{
    SOAR, alert, assert_no_duplicates, files_in, flush, soar_home_with, start_and_kill,
};
use crate::support::*;
use serde_json::Value;
use stackflow_emulator::{Emulator, Fault};
use std::process::Command;
use std::time::Duration;

const SPOOL: &str = "stackflow_spool";

/// A cluster member: the app pointed at SOAR, server.conf saying it is an SHC member (so the
/// KV store spool is the default), splunkd reachable for `spool list|requeue|purge`.
fn member(emu: &Emulator, splunkd: &Emulator, delivery_extra: &str) -> SplunkHome {
    let home = soar_home_with(emu, splunkd, delivery_extra);
    join_cluster(&home, splunkd);
    home
}

/// Makes `home` a search head cluster member whose splunkd (KV store) is `splunkd`.
pub(crate) fn join_cluster(home: &SplunkHome, splunkd: &Emulator) {
    home.append_local_conf(&format!("\n[splunkd]\nuri = {}\n", splunkd.url()));
    let system_local = home.root.join("etc/system/local");
    std::fs::create_dir_all(&system_local).unwrap();
    std::fs::write(
        system_local.join("server.conf"),
        "[shclustering]\nmode = member\nid = 5E4A6C2B-0000-4000-8000-000000000001\n",
    )
    .unwrap();
}

pub(crate) fn unavailable() -> Fault {
    Fault::Status {
        status: 503,
        body: r#"{"failed":true,"message":"down"}"#.into(),
        headers: vec![],
    }
}

pub(crate) fn items(splunkd: &Emulator) -> Vec<Value> {
    splunkd.kv_records(SPOOL).into_iter().filter(|doc| doc["kind"] == "item").collect()
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

#[track_caller]
fn assert_no_live_lease(splunkd: &Emulator) {
    let now = now();
    for doc in splunkd.kv_records(SPOOL) {
        let expires = doc["lease_expires_unix"].as_f64().or(doc["expires_unix"].as_f64());
        if doc["kind"] == "item" {
            assert!(expires.unwrap_or(0.0) <= now, "an item still leased: {doc}");
        }
    }
}

/// One flush on each of `members` at the same time; each must exit 0 or 7.
pub(crate) fn flush_at_once(members: &[SplunkHome], splunkd: &Emulator) -> Vec<Run> {
    let runs: Vec<Run> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            members.iter().map(|home| scope.spawn(|| flush(home, splunkd, &[]))).collect();
        handles.into_iter().map(|handle| handle.join().unwrap()).collect()
    });
    for run in &runs {
        assert!(run.code == 0 || run.code == 7, "flush: exit {}\n{}", run.code, run.stderr);
    }
    runs
}

fn list_json(home: &SplunkHome) -> Vec<Value> {
    let run =
        home.run_stackflow(&["spool", "list", "--json"], format!("{SESSION_KEY}\n").as_bytes());
    run.assert_code(0);
    run.stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

#[test]
fn an_item_spooled_on_one_member_is_flushed_by_another_and_dead_letters_are_shared() {
    let emu = Emulator::start();
    let splunkd = Emulator::start();
    let a = member(&emu, &splunkd, "max_attempts = 1");
    let b = member(&emu, &splunkd, "max_attempts = 1");
    emu.fault("/rest/container", unavailable(), 2);
    // The alert run on A spools straight into the KV store, not into A's files.
    let run = a.run_alert(SOAR, &alert(&a, &splunkd, &scheduler_sid(1301), 2, "alert"));
    run.assert_code(7);
    assert!(files_in(&a.spool_dir().join("pending")).is_empty(), "{}", run.stderr);
    let receipts = a.receipts();
    assert!(
        receipts.iter().any(|r| r["outcome"] == "spooled"
            && r["message"].as_str().is_some_and(|m| m.contains("KV store collection"))),
        "{receipts:?}"
    );
    assert_eq!(items(&splunkd).len(), 1, "{}", run.stderr);
    // A flushes while SOAR is still down: one probe, the item stays pending.
    flush(&a, &splunkd, &[]).assert_code(7);
    let pending = items(&splunkd);
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(
        (pending[0]["state"].as_str(), pending[0]["target"].as_str()),
        (Some("pending"), Some("soar"))
    );
    let record = pending[0]["record"].as_str().unwrap();
    assert!(
        !record.contains("soar-token") && !record.contains(SESSION_KEY),
        "a secret in the KV store"
    );
    // B, which never saw the alert, delivers it.
    let run = flush(&b, &splunkd, &[]);
    run.assert_code(0).assert_line("INFO", "1 delivered");
    assert_eq!(emu.soar_containers().len(), 1);
    assert!(items(&splunkd).is_empty());

    // A rejection on B becomes a dead letter every member lists, and any member requeues it.
    emu.fault(
        "/rest/container",
        Fault::Status {
            status: 400,
            body: r#"{"failed":true,"message":"Invalid label"}"#.into(),
            headers: vec![],
        },
        1,
    );
    b.run_alert(SOAR, &alert(&b, &splunkd, &scheduler_sid(1302), 1, "alert")).assert_code(6);
    flush(&b, &splunkd, &[]).assert_code(0);
    let listed = list_json(&a);
    let dead: Vec<&Value> = listed.iter().filter(|entry| entry["state"] == "dead").collect();
    assert_eq!(dead.len(), 1, "{listed:?}");
    assert!(dead[0]["last_error"].as_str().unwrap().contains("Invalid label"), "{listed:?}");
    let id = dead[0]["id"].as_str().unwrap().to_string();
    a.run_stackflow(&["spool", "requeue", &id], format!("{SESSION_KEY}\n").as_bytes())
        .assert_code(0);
    flush(&a, &splunkd, &[]).assert_code(0).assert_line("INFO", "1 delivered");
    assert_eq!(emu.soar_containers().len(), 2);
    assert!(items(&splunkd).is_empty());
    assert_no_duplicates(&emu);
}

#[test]
fn the_kv_store_spool_needs_a_session_key_and_says_so() {
    let emu = Emulator::start();
    let splunkd = Emulator::start();
    let a = member(&emu, &splunkd, "");
    a.run_stackflow(&["spool", "list"], b"").assert_code(5).assert_line("ERROR", "session key");
}

#[test]
fn three_members_flushing_at_once_with_one_killed_mid_send_deliver_every_row_once() {
    let emu = Emulator::start();
    let splunkd = Emulator::start();
    let members: Vec<SplunkHome> =
        (0..3).map(|_| member(&emu, &splunkd, "max_attempts = 1\nlease_s = 2")).collect();
    const ALERTS: usize = 12;
    // SOAR down while the alerts fire, on every member in turn.
    emu.fault("/rest/container", unavailable(), ALERTS);
    for n in 0..ALERTS {
        let home = &members[n % 3];
        home.run_alert(SOAR, &alert(home, &splunkd, &scheduler_sid(1400 + n as u32), 2, "alert"))
            .assert_code(7);
    }
    // Each member moves its items into the KV store (SOAR still refusing: one probe each).
    emu.fault("/rest/container", unavailable(), 3);
    for home in &members {
        flush(home, &splunkd, &[]).assert_code(7);
    }
    assert_eq!(items(&splunkd).len(), ALERTS);
    // Member 3 is killed while sending (SOAR is slow now); its leased item must come back.
    emu.set_latency("/rest/container", Duration::from_millis(400));
    let binary = members[2].app_dir().join(PLATFORM_DIR).join("bin").join("stackflow");
    let mut command = Command::new(&binary);
    command.args(["spool", "flush", "--splunkd-uri", &splunkd.url()]);
    start_and_kill(
        &members[2],
        command,
        format!("{SESSION_KEY}\n").into_bytes(),
        Duration::from_millis(600),
    );
    let leased_by_the_dead = items(&splunkd)
        .iter()
        .filter(|doc| doc["lease_expires_unix"].as_f64().unwrap_or(0.0) > now())
        .count();
    // The item it was sending, and those it had delivered whose deletion was still batched:
    // all come back once the lease expires, and none is delivered twice (counts below).
    assert!(leased_by_the_dead >= 1, "killed while it held an item");
    let mut taken_over = false;
    emu.set_latency("/rest/container", Duration::from_millis(20));
    // SOAR flaps while the other two flush at once, run after run, until nothing is left.
    let mut rounds = 0;
    while !items(&splunkd).is_empty() {
        rounds += 1;
        assert!(rounds <= 12, "not drained after {rounds} rounds: {:?}", items(&splunkd));
        if rounds % 2 == 1 {
            emu.fault("/rest/container", unavailable(), 1);
        }
        for run in flush_at_once(&members[..2], &splunkd) {
            taken_over |= run.stderr.contains("whose lease expired; taking it over");
        }
        if !items(&splunkd).is_empty() {
            std::thread::sleep(Duration::from_millis(700)); // let the dead member's lease expire
        }
    }
    assert!(taken_over, "the killed member's item was taken over once its lease expired");
    let containers = assert_no_duplicates(&emu);
    assert_eq!(containers.len(), ALERTS, "every alert delivered exactly once");
    assert_eq!(emu.soar_artifacts().len(), ALERTS * 2, "every row exactly once");
    assert!(items(&splunkd).is_empty(), "nothing left pending");
    assert_no_live_lease(&splunkd);
    for home in &members {
        for dir in ["pending", "inflight", "dead"] {
            assert!(files_in(&home.spool_dir().join(dir)).is_empty(), "{dir} on a member");
        }
    }
}

#[test]
fn a_busy_kv_store_defers_and_loses_nothing() {
    let emu = Emulator::start();
    let splunkd = Emulator::start();
    let a = member(&emu, &splunkd, "max_attempts = 1");
    emu.fault("/rest/container", unavailable(), 1);
    a.run_alert(SOAR, &alert(&a, &splunkd, &scheduler_sid(1501), 1, "alert")).assert_code(7);
    splunkd.fault("/servicesNS/nobody/stackflow/storage/collections", unavailable(), 1);
    let run = flush(&a, &splunkd, &[]);
    run.assert_code(7).assert_line("ERROR", "cannot be read now");
    assert!(!run.stderr.contains("FATAL"), "{}", run.stderr);
    // Nothing lost: still on the member, or moved into the KV store once splunkd answered
    // again (the status line's listing moves local items too).
    let kept = files_in(&a.spool_dir().join("pending")).len() + items(&splunkd).len();
    assert_eq!(kept, 1, "{}", run.stderr);
    flush(&a, &splunkd, &[]).assert_code(0).assert_line("INFO", "1 delivered");
    assert_eq!(emu.soar_containers().len(), 1);
    assert!(items(&splunkd).is_empty());
}

#[test]
fn an_alert_run_killed_mid_send_on_a_member_leaves_its_item_for_the_kv_store() {
    let emu = Emulator::start();
    let splunkd = Emulator::start();
    let a = member(&emu, &splunkd, "max_attempts = 1");
    // SOAR answers slowly: the run is killed while its write-ahead claim is a local file.
    emu.set_latency("/rest/container", Duration::from_millis(1500));
    let payload = alert(&a, &splunkd, &scheduler_sid(1601), 2, "alert");
    let (exe, args) = a.alert_command(SOAR);
    let mut action = Command::new(exe);
    action.args(&args);
    start_and_kill(&a, action, payload.to_string().into_bytes(), Duration::from_millis(700));
    assert_eq!(files_in(&a.spool_dir().join("inflight")).len(), 1, "the run's claim is left");
    assert!(items(&splunkd).is_empty());
    emu.set_latency("/rest/container", Duration::ZERO);
    // The member's next flush adopts the claim, moves it into the KV store and delivers it.
    let run = flush(&a, &splunkd, &["--all"]);
    run.assert_code(0).assert_line("INFO", "into the KV store collection stackflow_spool");
    assert!(files_in(&a.spool_dir().join("inflight")).is_empty(), "{}", run.stderr);
    assert!(items(&splunkd).is_empty(), "{}", run.stderr);
    let containers = assert_no_duplicates(&emu);
    assert_eq!(containers.len(), 1);
    assert_eq!(emu.soar_artifacts().len(), 2, "every row once");
}

#[test]
fn claims_taken_ahead_that_wait_past_a_quarter_of_the_lease_are_renewed_and_sent_once() {
    let emu = Emulator::start();
    let splunkd = Emulator::start();
    let members: Vec<SplunkHome> =
        (0..2).map(|_| member(&emu, &splunkd, "max_attempts = 1\nlease_s = 1")).collect();
    const ALERTS: usize = 6;
    emu.fault("/rest/container", unavailable(), ALERTS);
    for n in 0..ALERTS {
        let home = &members[n % 2];
        home.run_alert(SOAR, &alert(home, &splunkd, &scheduler_sid(1700 + n as u32), 2, "alert"))
            .assert_code(7);
    }
    emu.fault("/rest/container", unavailable(), 2);
    for home in &members {
        flush(home, &splunkd, &[]).assert_code(7);
    }
    assert_eq!(items(&splunkd).len(), ALERTS);
    // Every container request takes at least 150 ms, so the third item a flush claimed ahead
    // has waited more than a quarter of the 1 s lease when its turn comes: it is claimed
    // again (the next generation) before it is sent.
    emu.set_latency("/rest/container", Duration::from_millis(150));
    let mut rounds = 0;
    while !items(&splunkd).is_empty() {
        rounds += 1;
        assert!(rounds <= 6, "not drained after {rounds} rounds: {:?}", items(&splunkd));
        flush_at_once(&members, &splunkd);
    }
    let mut leases: std::collections::HashMap<(String, String), usize> = Default::default();
    for doc in splunkd.kv_records(SPOOL).into_iter().filter(|doc| doc["kind"] == "lease") {
        let key = (doc["item"].as_str().unwrap().to_string(), doc["owner"].to_string());
        *leases.entry(key).or_default() += 1;
    }
    assert!(leases.values().any(|&n| n >= 2), "a claim renewed by its holder: {leases:?}");
    let containers = assert_no_duplicates(&emu);
    assert_eq!(containers.len(), ALERTS, "every alert delivered exactly once");
    assert_eq!(emu.soar_artifacts().len(), ALERTS * 2, "every row exactly once");
    assert_no_live_lease(&splunkd);
}
