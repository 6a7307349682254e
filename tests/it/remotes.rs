//! The one URL policy and the remotes' edges, end to end: the installed binary run as splunkd
//! runs it (alert payload on stdin, `stackflowsync` chunks, `stackflow check`) with URLs an
//! attacker or a careless admin would write. Each test asserts that no token left over plain
//! HTTP (a plain TCP listener on a look-alike loopback address counts the connections it got),
//! the exit code, and that the error names the setting.

use crate::support::{SESSION_KEY, SplunkHome, one, payload, scheduler_sid};
use crate::sync::{execute, field, getinfo, run as run_sync, setup as sync_setup, table};
use serde_json::json;
use stackflow_emulator::Emulator;
use std::net::TcpListener;

/// A plain TCP port on 127.0.0.12 (loopback on Linux, but not the address the policy allows):
/// the old prefix check let `http://127.0.0.12:…` through and sent the token there.
struct Trap {
    listener: TcpListener,
}

impl Trap {
    fn open() -> Trap {
        let listener = TcpListener::bind("127.0.0.12:0").expect("bind 127.0.0.12");
        listener.set_nonblocking(true).unwrap();
        Trap { listener }
    }

    fn url(&self) -> String {
        format!("http://{}", self.listener.local_addr().unwrap())
    }

    /// Connections made to the trap (queued by the kernel whether or not we accepted them).
    fn connections(&self) -> usize {
        let mut count = 0;
        while self.listener.accept().is_ok() {
            count += 1;
        }
        count
    }
}

fn soar_home(emu: &Emulator, url: &str) -> SplunkHome {
    let (home, ca) = SplunkHome::trusting(emu);
    home.write_local_conf(&format!(
        "[soar:default]\nurl = {url}\nca_file = {}\n\n[delivery]\nmax_attempts = 2\n",
        ca.display()
    ));
    emu.set_secret("stackflow", "soar.default", "soar-token");
    home
}

fn run_soar_alert(home: &SplunkHome, emu: &Emulator, n: u32) -> crate::support::Run {
    let sid = scheduler_sid(n);
    let rows = vec![vec![("src", one("10.0.0.1")), ("user", one("alice"))]];
    let results = home.write_results(&sid, &rows);
    let payload = payload(home, &emu.url(), &sid, &results, json!({}));
    home.run_alert("stackflow_soar", &payload)
}

fn dead_letters(home: &SplunkHome) -> usize {
    std::fs::read_dir(home.spool_dir().join("dead")).map(|dir| dir.count()).unwrap_or(0)
}

#[test]
fn soar_alert_sends_no_token_over_plain_http_to_a_lookalike_loopback_address() {
    let emu = Emulator::start();
    let trap = Trap::open();
    let home = soar_home(&emu, &trap.url());
    let run = run_soar_alert(&home, &emu, 1);
    run.assert_code(4).assert_levelled_stderr().assert_no_secret(&["soar-token"]);
    assert!(run.stderr.contains("[soar:default] url"), "{}", run.stderr);
    assert!(run.stderr.contains("plain http"), "{}", run.stderr);
    assert_eq!(trap.connections(), 0, "nothing may reach the plain-http host");
    assert_eq!(dead_letters(&home), 1, "kept as a dead letter for requeue after the fix");
}

#[test]
fn soar_alert_refuses_user_info_instead_of_sending_to_the_host_after_the_at() {
    let emu = Emulator::start();
    let home = soar_home(&emu, "http://127.0.0.1:x@some.other.host");
    let run = run_soar_alert(&home, &emu, 2);
    run.assert_code(4).assert_levelled_stderr().assert_no_secret(&["soar-token"]);
    assert!(run.stderr.contains("user info"), "{}", run.stderr);
    assert!(emu.requests_to("/rest").is_empty());
}

#[test]
fn a_trailing_comment_in_a_url_is_a_configuration_error_not_a_retry() {
    let emu = Emulator::start();
    let home = soar_home(&emu, &format!("{}   # production SOAR", emu.url()));
    let run = run_soar_alert(&home, &emu, 3);
    run.assert_code(4).assert_levelled_stderr();
    assert!(run.stderr.contains("no trailing comments"), "{}", run.stderr);
    assert!(emu.requests_to("/rest").is_empty());
    assert!(
        !home.spool_dir().join("pending").exists()
            || std::fs::read_dir(home.spool_dir().join("pending")).unwrap().count() == 0
    );
}

#[test]
fn stackflowsync_sends_no_token_over_plain_http_to_lookalike_hosts() {
    let setup = sync_setup();
    let trap = Trap::open();
    let ca = setup.home.root.join("emulator-ca.pem");
    setup.home.write_local_conf(&format!(
        "[soar:default]\nurl = {}\nca_file = {ca}\n\n[stackflow:default]\napi_url = http://localhost.example.invalid/prod/api\n",
        trap.url(),
        ca = ca.display()
    ));
    let rows = crate::sync::csv(&[vec![
        ("event_id", one("e1")),
        ("soar_container_id", one("1")),
        ("stackflow_incident_id", one("INC1")),
    ]]);
    let (code, replies, stderr) =
        run_sync(&setup, &[getinfo(&setup.emu, &["target=all"]), execute(true, &rows)]);
    assert_eq!(code, 0, "{stderr}");
    let out = table(&replies[1]);
    assert_eq!(field(&out, 0, "sync_action"), "error");
    let message = field(&out, 0, "sync_message");
    assert!(message.contains("plain http"), "{message}");
    assert_eq!(trap.connections(), 0, "the SOAR token went to a plain-http host");
    assert!(!stderr.contains("soar-token") && !stderr.contains("sf-api-token"));
}

#[test]
fn a_soar_url_ending_in_rest_is_read_under_rest_once() {
    let setup = sync_setup();
    let ca = setup.home.root.join("emulator-ca.pem");
    setup.home.write_local_conf(&format!(
        "[soar:default]\nurl = {}/rest/\nca_file = {}\n",
        setup.emu.url(),
        ca.display()
    ));
    let rows = crate::sync::csv(&[vec![("event_id", one("e1")), ("soar_container_id", one("1"))]]);
    let (code, _, stderr) =
        run_sync(&setup, &[getinfo(&setup.emu, &["target=soar"]), execute(true, &rows)]);
    assert_eq!(code, 0, "{stderr}");
    let paths: Vec<String> = setup.emu.requests().into_iter().map(|r| r.path).collect();
    assert!(paths.iter().any(|p| p == "/rest/container"), "{paths:?}");
    assert!(paths.iter().all(|p| !p.starts_with("/rest/rest")), "{paths:?}");
}

#[test]
fn a_control_character_in_one_event_id_fails_only_that_row() {
    let setup = sync_setup();
    let rows = crate::sync::csv(&[
        vec![("event_id", one("bad\r\0id"))],
        vec![("event_id", one("good-id"))],
    ]);
    let (code, replies, stderr) =
        run_sync(&setup, &[getinfo(&setup.emu, &["target=soar"]), execute(true, &rows)]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(replies.len(), 2, "{stderr}");
    let out = table(&replies[1]);
    assert_eq!(field(&out, 1, "sync_action"), "not_found", "{}", field(&out, 1, "sync_message"));
    assert_ne!(field(&out, 0, "sync_action"), "error", "{}", field(&out, 0, "sync_message"));
}

#[test]
fn check_never_prints_credentials_embedded_in_urls() {
    let emu = Emulator::start();
    let home = SplunkHome::new();
    home.write_local_conf(&format!(
        "[splunkd]\nuri = {url}\n\n[soar:default]\nurl = https://admin:hunter2@soar.example.com\n\n[proxy]\nurl = http://proxyuser:pr0xypass@127.0.0.1:3128\n",
        url = emu.url()
    ));
    let run = home.run_stackflow(&["check"], format!("{SESSION_KEY}\n").as_bytes());
    run.assert_code(4).assert_levelled_stderr();
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(!all.contains("hunter2") && !all.contains("pr0xypass"), "{all}");
    assert!(all.contains("***@soar.example.com"), "{all}");
    assert!(all.contains("user info"), "{all}");
}

#[test]
fn the_apps_own_capability_guards_its_secrets() {
    let emu = Emulator::start();
    let home = soar_home(&emu, &emu.url());
    // A user who may list storage/passwords (another app gave them the capability) but does
    // not hold stackflow_read_credentials: nothing is read, nothing is sent.
    emu.set_capabilities(&["list_storage_passwords"]);
    let run = run_soar_alert(&home, &emu, 7);
    run.assert_code(5).assert_levelled_stderr().assert_no_secret(&["soar-token"]);
    assert!(
        run.stderr.contains("lacks the capability stackflow_read_credentials"),
        "{}",
        run.stderr
    );
    assert!(emu.requests_to("/servicesNS/nobody/stackflow/storage/passwords").is_empty());
    assert!(emu.requests_to("/rest").is_empty());
    // An admin (admin_all_objects) or a stackflow_user (who also needs splunkd's own
    // list_storage_passwords to read anything) passes.
    for capabilities in
        [&["admin_all_objects"][..], &["list_storage_passwords", "stackflow_read_credentials"][..]]
    {
        emu.set_capabilities(capabilities);
        run_soar_alert(&home, &emu, 8).assert_code(0);
    }
}

#[test]
fn check_keeps_urls_whole_when_it_shortens_a_reason() {
    let emu = Emulator::start();
    let (home, ca) = SplunkHome::trusting(&emu);
    let url = emu.url();
    home.write_local_conf(&format!(
        "[splunkd]\nuri = {url}\n\n[soar:default]\nurl = {url}\nca_file = {}\n",
        ca.display()
    ));
    emu.stop();
    let run = home.run_stackflow(&["check"], format!("{SESSION_KEY}\n").as_bytes());
    run.assert_code(7).assert_levelled_stderr();
    let soar = run.stdout.lines().find(|line| line.contains("soar:default")).unwrap_or_default();
    assert!(soar.contains("settings valid; secret \"soar.default\" not read"), "{soar}");
    assert!(soar.contains(&url), "the splunkd URL is cut: {soar}");
}
