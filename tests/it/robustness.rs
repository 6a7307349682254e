//! Robustness against what others send us, end to end: hostile or nonsensical `Retry-After`
//! headers from a remote and out-of-range durations in the configuration must never crash the
//! action or a later `spool flush` that meets the spooled item.

use crate::support::*;
use serde_json::{Value, json};
use stackflow_emulator::{Emulator, Fault};
use std::path::{Path, PathBuf};

const SOAR: &str = "stackflow_soar";

/// An installed app whose `[soar:default]` points at `emu`, which also plays splunkd and holds
/// the SOAR token; fast in-run backoff (`retry_base_s = 0.05`).
fn soar_home(emu: &Emulator, delivery_extra: &str) -> SplunkHome {
    let home = SplunkHome::new();
    let ca = home.root.join("emulator-ca.pem");
    emu.write_ca(&ca).unwrap();
    home.write_local_conf(&format!(
        "[soar:default]\nurl = {}\nca_file = {}\n\n[delivery]\nretry_base_s = 0.05\n{delivery_extra}\n",
        emu.url(),
        ca.display()
    ));
    emu.set_secret("stackflow", "soar.default", "soar-token");
    home
}

/// The results of a one-row alert for `sid` and the payload that names them (`splunkd` answers
/// for splunkd: `server_uri`).
fn alert(home: &SplunkHome, splunkd: &Emulator, sid: &str) -> Value {
    let rows = vec![vec![
        ("src", one("10.0.0.1")),
        ("dest", one("10.9.9.9")),
        ("user", one(&format!("{sid}-user"))),
        ("severity", one("high")),
    ]];
    let results = home.write_results(sid, &rows);
    payload(home, &splunkd.url(), sid, &results, json!({"account": "default"}))
}

/// `stackflow spool flush --all` as the scripted input runs it (session key on stdin).
fn flush_all(home: &SplunkHome, splunkd: &Emulator) -> Run {
    let url = splunkd.url();
    home.run_stackflow(
        &["spool", "flush", "--all", "--splunkd-uri", &url],
        format!("{SESSION_KEY}\n").as_bytes(),
    )
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default()
}

fn pending(home: &SplunkHome) -> usize {
    files_in(&home.spool_dir().join("pending")).len()
}

fn dead(home: &SplunkHome) -> usize {
    files_in(&home.spool_dir().join("dead")).len()
}

/// A throttling answer carrying `retry_after` verbatim.
fn throttled(status: u16, retry_after: &str) -> Fault {
    Fault::Status {
        status,
        body: r#"{"failed":true,"message":"Service temporarily unavailable"}"#.into(),
        headers: vec![("Retry-After".into(), retry_after.into())],
    }
}

/// `Retry-After` values no remote should send (RFC 9110 §10.2.3 allows a non-negative integer
/// or an HTTP-date), each with the status it comes with.
const HOSTILE_RETRY_AFTER: &[(u16, &str)] = &[
    (429, "99999999999999999999"),
    (503, "1e400"),
    (429, "-5"),
    (503, "NaN"),
    (503, "Fri, 31 Dec 9999 23:59:59 GMT"),
    (429, "18446744073709551616.5"),
];

#[test]
fn a_hostile_retry_after_spools_the_item_and_flush_survives_it() {
    let emu = Emulator::start();
    for (n, (status, retry_after)) in HOSTILE_RETRY_AFTER.iter().enumerate() {
        emu.reset();
        let home = soar_home(&emu, "max_attempts = 2");
        // Every attempt is throttled the same way until the remote recovers.
        emu.fault("/rest/container", throttled(*status, retry_after), 100);
        let sid = scheduler_sid(9100 + n as u32);
        let run = home.run_alert(SOAR, &alert(&home, &emu, &sid));
        let context = format!("HTTP {status} with Retry-After: {retry_after}");
        assert_eq!(run.code, 7, "{context}: the action must defer; stderr:\n{}", run.stderr);
        run.assert_levelled_stderr().assert_line("WARN", "outcome=spooled");
        assert_eq!((pending(&home), dead(&home)), (1, 0), "{context}");

        // The flush meets the same answer: the item stays pending, nothing crashes.
        let again = flush_all(&home, &emu);
        assert_eq!(again.code, 7, "{context}: flush; stderr:\n{}", again.stderr);
        again.assert_levelled_stderr().assert_line("WARN", "still pending");
        assert_eq!(pending(&home), 1, "{context}");
        let record: Value = serde_json::from_slice(
            &std::fs::read(&files_in(&home.spool_dir().join("pending"))[0]).unwrap(),
        )
        .unwrap();
        let wait = record["next_attempt_unix"].as_f64().unwrap()
            - record["last_attempt_unix"].as_f64().unwrap();
        assert!((0.0..=3600.0).contains(&wait), "{context}: next attempt in {wait} s");

        // The remote recovers: the next flush delivers it.
        emu.reset();
        emu.set_secret("stackflow", "soar.default", "soar-token");
        let delivered = flush_all(&home, &emu);
        delivered.assert_code(0).assert_levelled_stderr().assert_line("INFO", "1 delivered");
        assert_eq!((pending(&home), dead(&home)), (0, 0), "{context}");
        assert_eq!(emu.soar_containers().len(), 1, "{context}");
    }
}

#[test]
fn out_of_range_durations_in_the_configuration_never_crash() {
    let emu = Emulator::start();
    // `maxtime` beyond what a duration holds, or beyond what the clock can add: the action
    // still runs with a usable budget and delivers.
    for (n, maxtime) in
        ["1e300", "99999999999999999999", "1e19", "213503982334601d"].iter().enumerate()
    {
        emu.reset();
        let home = soar_home(&emu, "max_attempts = 2");
        let local = home.app_dir().join("local");
        std::fs::write(
            local.join("alert_actions.conf"),
            format!("[{SOAR}]\nmaxtime = {maxtime}\n"),
        )
        .unwrap();
        let sid = scheduler_sid(9200 + n as u32);
        let run = home.run_alert(SOAR, &alert(&home, &emu, &sid));
        assert_eq!(run.code, 0, "maxtime = {maxtime}; stderr:\n{}", run.stderr);
        run.assert_levelled_stderr();
        assert_eq!(emu.soar_containers().len(), 1, "maxtime = {maxtime}");
    }
    // `[delivery]` numbers out of range are configuration errors (exit 4) naming the key.
    for (n, (key, value)) in [
        ("timeout_s", "1e400"),
        ("timeout_s", "99999999999999999999"),
        ("timeout_s", "NaN"),
        ("timeout_s", "-5"),
        ("timeout_s", "0"),
        ("retry_base_s", "1e30"),
        ("retry_base_s", "inf"),
        ("max_attempts", "1e20"),
    ]
    .iter()
    .enumerate()
    {
        emu.reset();
        let home = soar_home(&emu, &format!("{key} = {value}"));
        let sid = scheduler_sid(9300 + n as u32);
        let run = home.run_alert(SOAR, &alert(&home, &emu, &sid));
        assert_eq!(run.code, 4, "{key} = {value}; stderr:\n{}", run.stderr);
        run.assert_levelled_stderr().assert_line("ERROR", &format!("[delivery] {key}"));
        assert!(emu.soar_containers().is_empty(), "{key} = {value}");
    }
}
