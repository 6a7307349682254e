//! Delivery that loses nothing (PRODUCT §5), end to end: the installed SOAR action and
//! `stackflow spool …` against the emulator with faults — retries, Retry-After, timeouts,
//! resets, rejections as dead letters, an unusable spool, the scripted-input flush, and a
//! crash loop that SIGKILLs actions and flushers at random points.

use crate::support::*;
use serde_json::{Value, json};
use stackflow_emulator::{Emulator, Fault};
use std::collections::{BTreeMap, HashSet};
use std::hash::BuildHasher;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub(crate) const SOAR: &str = "stackflow_soar";

/// An installed app pointed at the emulator's SOAR, with the token in storage/passwords of
/// `splunkd` (another emulator when SOAR is to go down) and fast backoff (`retry_base_s = 0.05`).
pub(crate) fn soar_home_with(
    emu: &Emulator,
    splunkd: &Emulator,
    delivery_extra: &str,
) -> SplunkHome {
    let (home, ca) = SplunkHome::trusting(emu);
    home.write_local_conf(&format!(
        "[soar:default]\nurl = {}\nca_file = {}\n\n[delivery]\nretry_base_s = 0.05\n{delivery_extra}\n",
        emu.url(),
        ca.display()
    ));
    splunkd.set_secret("stackflow", "soar.default", "soar-token");
    home
}

fn soar_home(emu: &Emulator, delivery_extra: &str) -> SplunkHome {
    soar_home_with(emu, emu, delivery_extra)
}

fn rows(sid_tag: &str, n: usize) -> Vec<Vec<(&'static str, Cell)>> {
    (0..n)
        .map(|i| {
            vec![
                ("src", one(&format!("10.0.{i}.1"))),
                ("dest", one("10.9.9.9")),
                ("user", one(&format!("{sid_tag}-user{i}"))),
                ("severity", one("high")),
            ]
        })
        .collect()
}

/// Writes the results of `n` rows for `sid` and returns the alert payload (`splunkd` is the
/// emulator answering for splunkd: `server_uri`).
pub(crate) fn alert(
    home: &SplunkHome,
    splunkd: &Emulator,
    sid: &str,
    n: usize,
    grouping: &str,
) -> Value {
    let results = home.write_results(sid, &rows(sid, n));
    payload(
        home,
        &splunkd.url(),
        sid,
        &results,
        json!({"account": "default", "grouping": grouping}),
    )
}

/// `stackflow spool flush` as the scripted input runs it (session key on stdin).
pub(crate) fn flush(home: &SplunkHome, splunkd: &Emulator, extra: &[&str]) -> Run {
    let url = splunkd.url();
    let mut args = vec!["spool", "flush", "--splunkd-uri", url.as_str()];
    args.extend_from_slice(extra);
    home.run_stackflow(&args, format!("{SESSION_KEY}\n").as_bytes())
}

pub(crate) fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default()
}

pub(crate) fn container_posts(emu: &Emulator) -> usize {
    emu.requests_to("/rest/container").iter().filter(|r| r.method == "POST").count()
}

/// Every container and artifact source data identifier is unique; returns the container SDIs.
#[track_caller]
pub(crate) fn assert_no_duplicates(emu: &Emulator) -> HashSet<String> {
    let mut containers = HashSet::new();
    for container in emu.soar_containers() {
        let sdi = container["source_data_identifier"].as_str().unwrap_or_default().to_string();
        assert!(containers.insert(sdi.clone()), "container {sdi} created twice");
    }
    let mut artifacts = HashSet::new();
    for artifact in emu.soar_artifacts() {
        let key = format!(
            "{}/{}",
            artifact["container"],
            artifact["source_data_identifier"].as_str().unwrap_or_default()
        );
        assert!(artifacts.insert(key.clone()), "artifact {key} created twice");
    }
    containers
}

#[track_caller]
pub(crate) fn assert_spool_clean(home: &SplunkHome) {
    let spool = home.spool_dir();
    for dir in ["pending", "inflight", "tmp", "quarantine"] {
        let left = files_in(&spool.join(dir));
        assert!(left.is_empty(), "{dir}/ not empty: {left:?}");
    }
}

#[test]
fn endpoint_down_then_up_spools_and_flush_delivers() {
    let emu = Emulator::start();
    let splunkd = Emulator::start();
    let home = soar_home_with(&emu, &splunkd, "max_attempts = 2");
    emu.stop();
    let sid = scheduler_sid(101);
    let run = home.run_alert(SOAR, &alert(&home, &splunkd, &sid, 3, "alert"));
    run.assert_code(7).assert_levelled_stderr().assert_line("WARN", "outcome=spooled");
    let pending = files_in(&home.spool_dir().join("pending"));
    assert_eq!(pending.len(), 1, "one item (the alert's container) spooled");
    let spooled = std::fs::read_to_string(&pending[0]).unwrap();
    assert!(
        !spooled.contains("soar-token") && !spooled.contains(SESSION_KEY),
        "a secret was spooled"
    );
    assert!(spooled.contains(&sid), "the item carries its request: {spooled}");

    // Still down: the flush keeps it pending (exit 7).
    flush(&home, &splunkd, &["--all"]).assert_code(7).assert_line("WARN", "still pending");
    assert_eq!(files_in(&home.spool_dir().join("pending")).len(), 1);

    let emu = emu.restart_same_port();
    // The remote answers again: the next scheduled flush delivers, whatever the item's backoff
    // (PRODUCT §11: one probe per account and run, then drain).
    let run = flush(&home, &splunkd, &[]);
    run.assert_code(0)
        .assert_levelled_stderr()
        .assert_line("INFO", "delivered")
        .assert_line("INFO", "1 delivered");
    run.assert_no_secret(&["soar-token", SESSION_KEY]);
    assert_eq!(emu.soar_containers().len(), 1);
    assert_eq!(emu.soar_artifacts().len(), 3);
    assert_no_duplicates(&emu);
    assert_spool_clean(&home);
    let status: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!((status["pending"].as_u64(), status["delivered"].as_u64()), (Some(0), Some(1)));
    assert_eq!(status["exit_code"], 0);
    // The flush leaves the same trail as an alert run: receipts (one per row) saying the rows
    // were delivered, success lines for Incident Review, and the link to the container.
    let mut delivered_receipts = 0;
    for entry in std::fs::read_dir(home.root.join("var/spool/splunk")).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with("stash_stackflow") {
            for line in std::fs::read_to_string(&path).unwrap().lines().skip(1) {
                let receipt: Value = serde_json::from_str(line).unwrap();
                if receipt["outcome"] == "delivered" {
                    assert!(
                        receipt["message"].as_str().unwrap().contains("spool flush"),
                        "{receipt}"
                    );
                    assert_eq!(receipt["remote_id"], "1");
                    delivered_receipts += 1;
                }
            }
        }
    }
    assert_eq!(delivered_receipts, 3, "one delivered receipt per row of the spooled item");
    let log = home.modalert_log("stackflow_soar");
    assert_eq!(
        log.lines().filter(|line| line.contains("action_status=\"success\"")).count(),
        3,
        "{log}"
    );
    assert!(
        splunkd.kv_records("stackflow_links").iter().any(|link| link["soar_container_id"] == 1)
    );
}

#[test]
fn service_unavailable_then_ok_is_retried_within_max_attempts() {
    let emu = Emulator::start();
    let home = soar_home(&emu, "max_attempts = 5");
    let unavailable = Fault::Status {
        status: 503,
        body: r#"{"failed":true,"message":"busy"}"#.into(),
        headers: vec![],
    };
    emu.fault("/rest/container", unavailable, 3);
    let run = home.run_alert(SOAR, &alert(&home, &emu, &scheduler_sid(102), 2, "alert"));
    run.assert_code(0).assert_line("WARN", "HTTP 503").assert_line("INFO", "outcome=delivered");
    assert_eq!(container_posts(&emu), 4, "3 refused + 1 accepted");
    assert_eq!(emu.soar_containers().len(), 1);
    assert_eq!(emu.soar_artifacts().len(), 2);
    assert_spool_clean(&home);
}

#[test]
fn service_unavailable_beyond_max_attempts_is_spooled() {
    let emu = Emulator::start();
    let home = soar_home(&emu, "max_attempts = 2");
    emu.fault(
        "/rest/container",
        Fault::Status { status: 502, body: String::new(), headers: vec![] },
        2,
    );
    let run = home.run_alert(SOAR, &alert(&home, &emu, &scheduler_sid(103), 1, "alert"));
    run.assert_code(7).assert_line("WARN", "outcome=spooled");
    assert_eq!(container_posts(&emu), 2);
    assert_eq!(files_in(&home.spool_dir().join("pending")).len(), 1);
}

/// Runs `during` while noting when POSTs to `path` arrive, by polling the emulator's log every
/// millisecond: each noted time is at most ~1 ms after the real arrival.
fn arrivals<T>(emu: &Emulator, path: &str, during: impl FnOnce() -> T) -> (T, Vec<Instant>) {
    let stop = AtomicBool::new(false);
    let times = Mutex::new(Vec::new());
    let result = std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut seen = 0;
            while !stop.load(Ordering::SeqCst) {
                let count = emu.requests_to(path).iter().filter(|r| r.method == "POST").count();
                let now = Instant::now();
                while seen < count {
                    times.lock().unwrap().push(now);
                    seen += 1;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let result = during();
        stop.store(true, Ordering::SeqCst);
        result
    });
    (result, times.into_inner().unwrap())
}

#[test]
fn retry_after_is_waited_for() {
    let emu = Emulator::start();
    let home = soar_home(&emu, "max_attempts = 3");
    emu.fault("/rest/container", Fault::RetryAfter { status: 429, seconds: 1 }, 1);
    let payload = alert(&home, &emu, &scheduler_sid(104), 1, "alert");
    let (run, times) = arrivals(&emu, "/rest/container", || home.run_alert(SOAR, &payload));
    run.assert_code(0).assert_line("WARN", "HTTP 429");
    assert_eq!(times.len(), 2, "one refused, one accepted");
    // Noted arrivals lag the real ones by at most one poll (~1 ms) each.
    let gap = times[1] - times[0];
    assert!(gap >= Duration::from_millis(998), "the retry came {gap:?} after a Retry-After: 1");
    assert_eq!(emu.soar_containers().len(), 1);
}

#[test]
fn a_response_slower_than_the_timeout_is_retried() {
    let emu = Emulator::start();
    let home = soar_home(&emu, "timeout_s = 1\nmax_attempts = 3");
    emu.fault("/rest/container", Fault::Delay(Duration::from_secs(3)), 1);
    let run = home.run_alert(SOAR, &alert(&home, &emu, &scheduler_sid(105), 2, "alert"));
    run.assert_levelled_stderr().assert_line("WARN", "SOAR POST /rest/container");
    assert!(run.code == 0 || run.code == 7, "exit {}: {}", run.code, run.stderr);
    if run.code == 7 {
        flush(&home, &emu, &["--all"]).assert_code(0);
    }
    assert!(container_posts(&emu) >= 2);
    // The slow request may have created the container after we gave up: never a second one.
    let answered = || emu.requests_to("/rest/container").iter().all(|r| r.status != 0);
    let started = Instant::now();
    while !answered() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(answered(), "the delayed request was never answered");
    assert_eq!(emu.soar_containers().len(), 1);
    assert_eq!(emu.soar_artifacts().len(), 2);
    assert_no_duplicates(&emu);
}

#[test]
fn a_connection_reset_mid_response_is_retried() {
    let emu = Emulator::start();
    let home = soar_home(&emu, "max_attempts = 3");
    emu.fault("/rest/container", Fault::ResetMidResponse, 1);
    let run = home.run_alert(SOAR, &alert(&home, &emu, &scheduler_sid(106), 1, "alert"));
    run.assert_code(0).assert_line("WARN", "retrying");
    assert_eq!(container_posts(&emu), 2);
    assert_eq!(emu.soar_containers().len(), 1);
    assert_spool_clean(&home);
}

#[test]
fn unauthorized_is_a_dead_letter_without_retry() {
    let emu = Emulator::start();
    let home = soar_home(&emu, "max_attempts = 5");
    emu.set_soar_token("another-token");
    let run = home.run_alert(SOAR, &alert(&home, &emu, &scheduler_sid(107), 1, "alert"));
    run.assert_code(5).assert_line("ERROR", "HTTP 401").assert_no_secret(&["soar-token"]);
    assert_eq!(container_posts(&emu), 1, "no retry after 401");
    assert_eq!(files_in(&home.spool_dir().join("dead")).len(), 1);
    assert!(files_in(&home.spool_dir().join("pending")).is_empty());
}

#[test]
fn untrusted_certificate_is_a_configuration_dead_letter() {
    let emu = Emulator::start();
    let home = soar_home(&emu, "");
    home.write_local_conf(&format!(
        "[soar:default]\nurl = {}\n\n[delivery]\nretry_base_s = 0.05\n",
        emu.url()
    ));
    let run = home.run_alert(SOAR, &alert(&home, &emu, &scheduler_sid(108), 1, "alert"));
    run.assert_code(4).assert_line("ERROR", "not trusted");
    assert!(emu.soar_containers().is_empty());
    assert_eq!(files_in(&home.spool_dir().join("dead")).len(), 1);
}

#[test]
fn bad_request_keeps_the_server_message_and_requeue_purge_work() {
    let emu = Emulator::start();
    let home = soar_home(&emu, "max_attempts = 5");
    let refused = Fault::Status {
        status: 400,
        body: r#"{"failed":true,"message":"Invalid label: 'secops'"}"#.into(),
        headers: vec![("Content-Type".into(), "application/json".into())],
    };
    emu.fault("/rest/container", refused, 1);
    let sid = scheduler_sid(109);
    let run = home.run_alert(SOAR, &alert(&home, &emu, &sid, 2, "alert"));
    run.assert_code(6).assert_line("ERROR", "Invalid label: 'secops'");
    assert_eq!(container_posts(&emu), 1, "no retry after 400");
    let dead = files_in(&home.spool_dir().join("dead"));
    assert_eq!(dead.len(), 1);
    assert!(std::fs::read_to_string(&dead[0]).unwrap().contains("Invalid label: 'secops'"));

    let table = home.run_stackflow(&["spool", "list"], b"");
    table.assert_code(0);
    let line = table
        .stdout
        .lines()
        .find(|line| line.starts_with("dead"))
        .unwrap_or_else(|| panic!("{}", table.stdout));
    assert!(
        line.contains("soar")
            && line.contains("default")
            && line.contains("Invalid label: 'secops'"),
        "{line}"
    );
    let listed = home.run_stackflow(&["spool", "list", "--json"], b"");
    listed.assert_code(0);
    let entries: Vec<Value> =
        listed.stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(entries.len(), 1);
    let entry = &entries[0];
    assert_eq!((entry["state"].as_str(), entry["target"].as_str()), (Some("dead"), Some("soar")));
    assert_eq!(entry["attempts"], 1);
    assert!(entry["dedupe_key"].as_str().unwrap().contains(&sid), "{entry}");
    assert!(entry["last_error"].as_str().unwrap().contains("Invalid label"), "{entry}");
    let id = entry["id"].as_str().unwrap().to_string();

    // The flush status line (indexed as stackflow:flush) lists it for the dashboard's table.
    let status: Value = serde_json::from_str(flush(&home, &emu, &[]).stdout.trim()).unwrap();
    assert_eq!(status["dead_letters"], 1);
    let listed = status["dead_letter_list"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{status}");
    let letter = &listed[0];
    assert_eq!(
        (letter["action"].as_str(), letter["account"].as_str(), letter["reason_class"].as_str()),
        (Some("stackflow_soar"), Some("default"), Some("remote"))
    );
    assert!(letter["message"].as_str().unwrap().contains("Invalid label: 'secops'"), "{letter}");
    assert!(letter["age_s"].as_f64().is_some(), "{letter}");
    assert_eq!(letter["requeue"], format!("stackflow spool requeue {id}"));

    // The cause is fixed: requeue, flush, delivered once.
    home.run_stackflow(&["spool", "requeue", "nonexistent"], b"").assert_code(2);
    home.run_stackflow(&["spool", "requeue", &id], b"").assert_code(0);
    assert_eq!(files_in(&home.spool_dir().join("pending")).len(), 1);
    flush(&home, &emu, &[]).assert_code(0);
    assert_eq!(emu.soar_containers().len(), 1);
    assert_eq!(emu.soar_artifacts().len(), 2);
    assert_spool_clean(&home);

    // Purge removes dead letters older than N days, and only those.
    emu.fault(
        "/rest/container",
        Fault::Status {
            status: 400,
            body: r#"{"failed":true,"message":"no"}"#.into(),
            headers: vec![],
        },
        1,
    );
    home.run_alert(SOAR, &alert(&home, &emu, &scheduler_sid(110), 1, "alert")).assert_code(6);
    home.run_stackflow(&["spool", "purge", "--older-than-days", "1"], b"").assert_code(0);
    assert_eq!(files_in(&home.spool_dir().join("dead")).len(), 1);
    home.run_stackflow(&["spool", "purge", "--older-than-days", "0"], b"")
        .assert_code(0)
        .assert_line("INFO", "removed 1");
    assert!(files_in(&home.spool_dir().join("dead")).is_empty());
}

#[test]
fn an_unusable_spool_is_fatal_and_nothing_is_claimed() {
    let emu = Emulator::start();
    let home = SplunkHome::new();
    let blocker = home.root.join("not-a-directory");
    std::fs::write(&blocker, b"a regular file").unwrap();
    let spool_dir = blocker.join("spool");
    let ca = home.root.join("emulator-ca.pem");
    emu.write_ca(&ca).unwrap();
    home.write_local_conf(&format!(
        "[soar:default]\nurl = {}\nca_file = {}\n\n[delivery]\nretry_base_s = 0.05\nmax_attempts = 2\nspool_dir = {}\n",
        emu.url(),
        ca.display(),
        spool_dir.display()
    ));
    emu.set_secret("stackflow", "soar.default", "soar-token");
    emu.fault(
        "/rest/container",
        Fault::Status { status: 503, body: String::new(), headers: vec![] },
        10,
    );
    let run = home.run_alert(SOAR, &alert(&home, &emu, &scheduler_sid(111), 2, "alert"));
    run.assert_code(8)
        .assert_levelled_stderr()
        .assert_line("FATAL", &spool_dir.display().to_string());
    assert!(!run.stderr.contains("outcome=delivered"), "{}", run.stderr);
    assert!(emu.soar_containers().is_empty());

    let flushed = flush(&home, &emu, &[]);
    flushed.assert_code(8).assert_line("FATAL", &blocker.display().to_string());
    let listed = home.run_stackflow(&["spool", "list"], b"");
    listed.assert_code(8).assert_line("FATAL", &blocker.display().to_string());
}

#[test]
fn scripted_input_flush_is_quiet_when_empty_and_explains_a_missing_session_key() {
    let emu = Emulator::start();
    let splunkd = Emulator::start();
    let home = soar_home_with(&emu, &splunkd, "max_attempts = 1");
    // Empty spool: exit 0 and a single DEBUG line, even with no session key at all.
    let quiet = home.run_stackflow(&["spool", "flush"], b"");
    quiet.assert_code(0);
    assert_eq!(quiet.stderr.lines().count(), 1, "{}", quiet.stderr);
    quiet.assert_line("DEBUG", "nothing due");

    emu.stop();
    home.run_alert(SOAR, &alert(&home, &splunkd, &scheduler_sid(112), 1, "alert")).assert_code(7);
    let emu = emu.restart_same_port();
    let url = splunkd.url();
    let no_key = home.run_stackflow(&["spool", "flush", "--all", "--splunkd-uri", &url], b"");
    no_key.assert_code(5).assert_line("ERROR", "passAuth");
    assert_eq!(files_in(&home.spool_dir().join("pending")).len(), 1, "the item stays pending");
    assert!(emu.soar_containers().is_empty());
    flush(&home, &splunkd, &["--all"]).assert_code(0);
    assert_eq!(emu.soar_containers().len(), 1);
}

#[test]
fn flush_quarantines_a_corrupt_item_and_removes_crash_leftovers() {
    let emu = Emulator::start();
    let splunkd = Emulator::start();
    let home = soar_home_with(&emu, &splunkd, "max_attempts = 1");
    emu.stop();
    home.run_alert(SOAR, &alert(&home, &splunkd, &scheduler_sid(113), 1, "alert")).assert_code(7);
    let emu = emu.restart_same_port();
    let spool = home.spool_dir();
    let torn = spool.join("pending").join("0123456789abcdef0123456789abcdef.json");
    std::fs::write(&torn, br#"{"version":1,"id":"0123"#).unwrap();
    let leftover = spool.join("tmp").join(format!("abc.json.{}.0.tmp", u32::MAX - 1));
    std::fs::write(&leftover, b"{\"half").unwrap();
    let run = flush(&home, &splunkd, &["--all"]);
    run.assert_code(8).assert_line("ERROR", &torn.display().to_string()).assert_line(
        "ERROR",
        "1 delivered, 0 already there, 0 still pending, 0 rejected (dead letters), 1 quarantined",
    );
    assert!(spool.join("quarantine").join("0123456789abcdef0123456789abcdef.json").is_file());
    assert!(!leftover.exists(), "tmp leftover not removed");
    assert_eq!(emu.soar_containers().len(), 1);
    let listed = home.run_stackflow(&["spool", "list"], b"");
    assert!(listed.stdout.lines().any(|line| line.starts_with("quarantine")), "{}", listed.stdout);
}

/// SplitMix64: a small deterministic generator for the crash loop.
struct Rng(u64);

impl Rng {
    fn for_iteration(iteration: u32) -> Rng {
        let build =
            std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default();
        Rng(build.hash_one(iteration))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Starts a command with splunkd's environment, feeds stdin, and SIGKILLs it after `after`.
pub(crate) fn start_and_kill(home: &SplunkHome, command: Command, stdin: Vec<u8>, after: Duration) {
    let mut child = spawn(&mut home.command(command));
    let mut input = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    std::thread::sleep(after);
    let _ = child.kill(); // SIGKILL
    let _ = child.wait(); // reap it: a zombie would look alive
    let _ = writer.join();
}

#[test]
fn crash_loop_kills_actions_and_flushers_yet_every_row_arrives_once() {
    let emu = Emulator::start();
    let home = soar_home(&emu, "max_attempts = 3");
    emu.set_latency("/rest/", Duration::from_millis(50));
    const ITERATIONS: u32 = 15;
    const ROWS: usize = 4;
    let flusher = home.app_dir().join(PLATFORM_DIR).join("bin").join("stackflow");
    let url = emu.url();
    let mut payloads = BTreeMap::new();
    for iteration in 0..ITERATIONS {
        let mut rng = Rng::for_iteration(iteration);
        let sid = scheduler_sid(1000 + iteration);
        let grouping = if iteration % 2 == 0 { "row" } else { "alert" };
        let payload = alert(&home, &emu, &sid, ROWS, grouping);
        let (exe, args) = home.alert_command(SOAR);
        let mut action = Command::new(exe);
        action.args(&args);
        start_and_kill(
            &home,
            action,
            payload.to_string().into_bytes(),
            Duration::from_millis(rng.below(300)),
        );
        let mut flush_cmd = Command::new(&flusher);
        flush_cmd.args(["spool", "flush", "--all", "--splunkd-uri", &url]);
        start_and_kill(
            &home,
            flush_cmd,
            format!("{SESSION_KEY}\n").into_bytes(),
            Duration::from_millis(rng.below(300)),
        );
        payloads.insert(sid, payload);
        // Whatever was interrupted, nothing reached SOAR twice.
        assert_no_duplicates(&emu);
    }
    // Every item an action had begun to send is in the spool: flushing empties it.
    flush_until_empty(&home, &emu);
    assert_no_duplicates(&emu);
    // ... so no container is left half-filled by a kill between its creation and its artifacts.
    let mut artifacts_of: BTreeMap<String, usize> = BTreeMap::new();
    for artifact in emu.soar_artifacts() {
        *artifacts_of.entry(artifact["container"].to_string()).or_default() += 1;
    }
    for container in emu.soar_containers() {
        let sdi = container["source_data_identifier"].as_str().unwrap_or_default();
        let expected = if payloads.contains_key(sdi) { ROWS } else { 1 };
        let found = artifacts_of.get(&container["id"].to_string()).copied().unwrap_or(0);
        assert_eq!(found, expected, "container {sdi} after the flushes");
    }
    // Rows a killed action never reached exist only in the results file: a re-run of each
    // alert sends those and finds the rest already in SOAR.
    for payload in payloads.values() {
        let run = home.run_alert(SOAR, payload);
        assert!(run.code == 0, "re-run: exit {}\n{}", run.code, run.stderr);
    }
    flush_until_empty(&home, &emu);
    let containers = assert_no_duplicates(&emu);
    let per_row = ITERATIONS as usize / 2 + ITERATIONS as usize % 2;
    assert_eq!(containers.len(), per_row * ROWS + (ITERATIONS as usize - per_row), "containers");
    assert_eq!(emu.soar_artifacts().len(), ITERATIONS as usize * ROWS, "one artifact per row");
    assert_spool_clean(&home);
    assert!(files_in(&home.spool_dir().join("dead")).is_empty());
    // No file left anywhere in the spool is torn.
    for dir in ["pending", "dead", "ledger"] {
        for file in files_in(&home.spool_dir().join(dir)) {
            serde_json::from_slice::<Value>(&std::fs::read(&file).unwrap())
                .unwrap_or_else(|error| panic!("{} is corrupt: {error}", file.display()));
        }
    }
}

fn flush_until_empty(home: &SplunkHome, emu: &Emulator) {
    for _ in 0..10 {
        let run = flush(home, emu, &["--all"]);
        assert!(run.code == 0 || run.code == 7, "flush: exit {}\n{}", run.code, run.stderr);
        let spool = home.spool_dir();
        if files_in(&spool.join("pending")).is_empty()
            && files_in(&spool.join("inflight")).is_empty()
        {
            return;
        }
    }
    panic!(
        "the spool did not empty in 10 flushes: {:?}",
        files_in(&home.spool_dir().join("pending"))
    );
}

#[test]
fn concurrent_flushers_send_each_item_once() {
    let emu = Emulator::start();
    let splunkd = Emulator::start();
    let home = soar_home_with(&emu, &splunkd, "max_attempts = 1");
    emu.stop();
    const ROWS: usize = 12;
    home.run_alert(SOAR, &alert(&home, &splunkd, &scheduler_sid(120), ROWS, "row")).assert_code(7);
    assert_eq!(files_in(&home.spool_dir().join("pending")).len(), ROWS);
    let emu = emu.restart_same_port();
    emu.set_latency("/rest/container", Duration::from_millis(40));
    let runs: Vec<Run> = std::thread::scope(|scope| {
        let flushers: Vec<_> =
            (0..3).map(|_| scope.spawn(|| flush(&home, &splunkd, &["--all"]))).collect();
        flushers.into_iter().map(|flusher| flusher.join().unwrap()).collect()
    });
    for run in &runs {
        run.assert_code(0).assert_levelled_stderr();
    }
    assert_eq!(container_posts(&emu), ROWS, "an item was in flight twice");
    assert_eq!(emu.soar_containers().len(), ROWS);
    assert_eq!(emu.soar_artifacts().len(), ROWS);
    assert_spool_clean(&home);
}

#[test]
fn flush_removes_claim_lock_files_unused_for_a_day_and_claims_still_work() {
    let emu = Emulator::start();
    let splunkd = Emulator::start();
    let home = soar_home_with(&emu, &splunkd, "max_attempts = 1");
    home.run_alert(SOAR, &alert(&home, &splunkd, &scheduler_sid(114), 1, "alert")).assert_code(0);
    let locks = home.spool_dir().join("locks");
    let used = files_in(&locks);
    assert_eq!(used.len(), 1, "the container's claim leaves its lock file: {used:?}");
    let two_days_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 86_400);
    let age = |path: &std::path::Path| {
        std::fs::File::options().write(true).open(path).unwrap().set_modified(two_days_ago).unwrap()
    };
    age(&used[0]);
    let fresh = locks.join("soar-fresh.lock");
    std::fs::write(&fresh, b"").unwrap();
    let other = locks.join("notes.txt");
    std::fs::write(&other, b"").unwrap();
    age(&other);

    let run = home.run_stackflow(&["spool", "flush"], b"");
    run.assert_code(0).assert_line("INFO", "removed 1 claim lock files unused for a day");
    assert!(!used[0].exists(), "the stale lock file is removed");
    assert!(fresh.exists() && other.exists(), "recent lock files and other files stay");

    // The same container again: the claim makes a new lock file, and nothing is posted twice.
    home.run_alert(SOAR, &alert(&home, &splunkd, &scheduler_sid(114), 1, "alert")).assert_code(0);
    assert!(used[0].exists());
    assert_eq!(emu.soar_containers().len(), 1);
    assert_eq!(emu.soar_artifacts().len(), 1);
}
