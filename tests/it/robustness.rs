//! Robustness, end to end: hostile or nonsensical `Retry-After` headers from a remote and
//! out-of-range durations in the configuration never crash the action or a later `spool flush`
//! that meets the spooled item; a splunkd that cannot hand over a secret right now (5xx, 429,
//! unreachable) defers the items instead of dead-lettering them; a bug (a panic) is one FATAL
//! line and exit 9, never a trace; and the harness fails any test whose run crashed or hit an
//! internal error.

use crate::support::*;
use serde_json::{Value, json};
use stackflow_emulator::{Emulator, Fault};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

const SOAR: &str = "stackflow_soar";

/// An installed app whose `[soar:default]` points at `emu`, which also plays splunkd and holds
/// the SOAR token; fast in-run backoff (`retry_base_s = 0.05`).
fn soar_home(emu: &Emulator, delivery_extra: &str) -> SplunkHome {
    crate::delivery::soar_home_with(emu, emu, delivery_extra)
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

/// `stackflow spool list` from the installed app, with `STACKFLOW_TEST_PANIC=<place>`.
fn run_panicking(home: &SplunkHome, place: &str, expect: Expect) -> Run {
    let mut command = Command::new(home.app_dir().join(PLATFORM_DIR).join("bin").join("stackflow"));
    command.args(["spool", "list"]);
    let env = [("STACKFLOW_TEST_PANIC", place), ("RUST_BACKTRACE", "full")];
    home.run_command_expecting(command, b"", &env, expect)
}

#[test]
fn a_panic_is_one_fatal_line_and_exit_9_on_any_thread() {
    let home = SplunkHome::new();
    let line = regex::Regex::new(
        r"^FATAL internal error: STACKFLOW_TEST_PANIC=(main|thread)\S* .*at src/main\.rs:\d+:\d+$",
    )
    .unwrap();
    for place in ["main", "thread"] {
        let run = run_panicking(&home, place, Expect::InternalError);
        run.assert_code(9).assert_levelled_stderr();
        let lines: Vec<&str> = run.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{place}: one line, no backtrace; stderr:\n{}", run.stderr);
        assert!(line.is_match(lines[0]), "{place}: {:?}", lines[0]);
        assert!(lines[0].contains(&format!("STACKFLOW_TEST_PANIC={place}")), "{}", lines[0]);
        assert!(run.stdout.is_empty(), "{place}: stdout: {}", run.stdout);
    }
}

#[test]
fn the_harness_fails_a_test_whose_run_hit_an_internal_error() {
    let home = SplunkHome::new();
    for place in ["main", "thread"] {
        let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_panicking(&home, place, Expect::Ordinary)
        }));
        let message = match failed {
            Ok(run) => panic!("{place}: the harness let a panic pass: {run:?}"),
            Err(payload) => payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|text| text.to_string()))
                .unwrap_or_default(),
        };
        assert!(message.contains("internal error"), "{place}: {message}");
    }
    // The same run is fine when the test asks for it, and an ordinary run passes.
    run_panicking(&home, "main", Expect::InternalError).assert_code(9);
    run_panicking(&home, "", Expect::Ordinary).assert_code(0);
}

/// The harness hook's verdict on an output, as the message it fails the test with (None: the
/// run passes).
fn verdict(raw_status: i32, stderr: &str, expect: Expect) -> Option<String> {
    use std::os::unix::process::ExitStatusExt;
    let output = Output {
        status: std::process::ExitStatus::from_raw(raw_status),
        stdout: Vec::new(),
        stderr: stderr.as_bytes().to_vec(),
    };
    std::panic::catch_unwind(|| Run::from_output(output, Duration::ZERO, expect))
        .err()
        .map(|payload| payload.downcast_ref::<String>().cloned().unwrap_or_else(|| "?".to_string()))
}

#[test]
fn the_harness_fails_a_run_killed_by_a_signal_or_printing_a_panic() {
    // Raw wait statuses: a signal number alone is "killed by it"; `code << 8` is an exit.
    let sigabrt = 6;
    let sigsegv = 11;
    let exit = |code: i32| code << 8;
    assert!(verdict(sigabrt, "", Expect::Ordinary).unwrap().contains("signal 6"));
    assert!(verdict(sigabrt, "", Expect::InternalError).unwrap().contains("SIGABRT"));
    assert!(verdict(sigsegv, "", Expect::Ordinary).unwrap().contains("signal 11"));
    let trace = "INFO start\nthread 'main' panicked at src/x.rs:1:1:\nboom\n";
    assert!(verdict(exit(0), trace, Expect::Ordinary).unwrap().contains("panicked"));
    assert!(verdict(exit(9), trace, Expect::InternalError).unwrap().contains("panicked"));
    assert!(verdict(exit(9), "", Expect::Ordinary).unwrap().contains("exit 9"));
    let fatal = "FATAL internal error: boom at src/x.rs:1:1\n";
    assert!(verdict(exit(7), fatal, Expect::Ordinary).unwrap().contains("internal error"));
    assert_eq!(verdict(exit(9), fatal, Expect::InternalError), None);
    assert_eq!(verdict(exit(7), "WARN spooled\n", Expect::Ordinary), None);
    assert_eq!(verdict(exit(8), "FATAL cannot spool to /x: full\n", Expect::Ordinary), None);
}

/// Where the emulated splunkd serves the app's secrets.
const PASSWORDS: &str = "/servicesNS/nobody/stackflow/storage/passwords";

/// splunkd's answer when it cannot serve a request right now.
fn splunkd_busy(status: u16) -> Fault {
    Fault::Status {
        status,
        body:
            r#"{"messages":[{"type":"ERROR","text":"Service Unavailable: splunkd is restarting"}]}"#
                .into(),
        headers: vec![("Content-Type".into(), "application/json".into())],
    }
}

#[test]
fn splunkd_unavailable_while_reading_the_secret_defers_the_item() {
    let emu = Emulator::start();
    for (n, status) in [503, 502, 504, 500, 429, 408].into_iter().enumerate() {
        emu.reset();
        let home = soar_home(&emu, "max_attempts = 2");
        emu.fault(PASSWORDS, splunkd_busy(status), 1);
        let sid = scheduler_sid(9400 + n as u32);
        let run = home.run_alert(SOAR, &alert(&home, &emu, &sid));
        assert_eq!(run.code, 7, "splunkd HTTP {status}; stderr:\n{}", run.stderr);
        run.assert_levelled_stderr()
            .assert_line("ERROR", &format!("HTTP {status}"))
            .assert_line("WARN", "outcome=spooled")
            .assert_no_secret(&["soar-token", SESSION_KEY]);
        assert_eq!((pending(&home), dead(&home)), (1, 0), "splunkd HTTP {status}");
        assert!(emu.soar_containers().is_empty());
        // splunkd is back: the scripted input's flush reads the secret and delivers.
        flush_all(&home, &emu).assert_code(0).assert_line("INFO", "1 delivered");
        assert_eq!((pending(&home), dead(&home)), (0, 0), "splunkd HTTP {status}");
        assert_eq!(emu.soar_containers().len(), 1, "splunkd HTTP {status}");
    }
}

#[test]
fn splunkd_unavailable_during_a_flush_keeps_the_item_pending() {
    let emu = Emulator::start();
    let home = soar_home(&emu, "max_attempts = 1");
    emu.fault("/rest/container", splunkd_busy(503), 1);
    let sid = scheduler_sid(9410);
    home.run_alert(SOAR, &alert(&home, &emu, &sid)).assert_code(7);
    for status in [503, 429] {
        emu.fault(PASSWORDS, splunkd_busy(status), 1);
        let run = flush_all(&home, &emu);
        assert_eq!(run.code, 7, "splunkd HTTP {status}; stderr:\n{}", run.stderr);
        run.assert_levelled_stderr().assert_line("ERROR", "stays pending");
        assert_eq!((pending(&home), dead(&home)), (1, 0));
    }
    flush_all(&home, &emu).assert_code(0).assert_line("INFO", "1 delivered");
    assert_eq!(emu.soar_containers().len(), 1);
}

#[test]
fn splunkd_unreachable_while_reading_the_secret_defers_the_item() {
    let emu = Emulator::start();
    let splunkd = Emulator::start();
    let home = soar_home(&emu, "max_attempts = 2");
    splunkd.set_secret("stackflow", "soar.default", "soar-token");
    let payload = alert(&home, &splunkd, &scheduler_sid(9420));
    splunkd.stop();
    let run = home.run_alert(SOAR, &payload);
    run.assert_code(7).assert_levelled_stderr().assert_line(
        "ERROR",
        "unavailable: cannot read secret stackflow:soar.default from splunkd",
    );
    assert_eq!((pending(&home), dead(&home)), (1, 0));
    let splunkd = splunkd.restart_same_port();
    flush_all(&home, &splunkd).assert_code(0).assert_line("INFO", "1 delivered");
    assert_eq!(emu.soar_containers().len(), 1);
}

#[test]
fn a_secret_splunkd_refuses_or_lacks_is_still_a_credentials_dead_letter() {
    let emu = Emulator::start();
    let cases: [(u16, &str); 4] = [
        (401, "stackflow_user role"),
        (403, "stackflow_user role"),
        (404, "no secret \"soar.default\" in realm \"stackflow\""),
        (400, "cannot read secret stackflow:soar.default from splunkd at"),
    ];
    for (n, (status, message)) in cases.into_iter().enumerate() {
        emu.reset();
        let home = soar_home(&emu, "max_attempts = 2");
        emu.fault(PASSWORDS, splunkd_busy(status), 1);
        let run = home.run_alert(SOAR, &alert(&home, &emu, &scheduler_sid(9430 + n as u32)));
        assert_eq!(run.code, 5, "splunkd HTTP {status}; stderr:\n{}", run.stderr);
        run.assert_levelled_stderr().assert_line("ERROR", message);
        assert_eq!((pending(&home), dead(&home)), (0, 1), "splunkd HTTP {status}");
    }
}
