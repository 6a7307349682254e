//! Hostile and odd input, end to end: the installed `stackflow_soar` action run as splunkd runs
//! it, given a results "file" that is a FIFO, a directory or a device. Each test checks the exit
//! code of PRODUCT §4, the stderr line, and that SOAR received nothing.

use crate::support::{Run, SplunkHome, payload, scheduler_sid};
use serde_json::json;
use stackflow_emulator::Emulator;
use std::path::{Path, PathBuf};
use std::process::Command;

const STANZA: &str = "stackflow_soar";

/// A Splunk home whose `[soar:default]` points at a running emulator that also plays splunkd;
/// `extra_conf` is appended to local/stackflow.conf.
struct Setup {
    home: SplunkHome,
    emu: Emulator,
}

fn setup(extra_conf: &str) -> Setup {
    let home = SplunkHome::new();
    let emu = Emulator::start();
    let ca = home.root.join("soar-ca.pem");
    emu.write_ca(&ca).unwrap();
    home.write_local_conf(&format!(
        "[soar:default]\nurl = {}\nca_file = {}\n\n[delivery]\nmax_attempts = 2\n\n{extra_conf}\n",
        emu.url(),
        ca.display()
    ));
    emu.set_secret("stackflow", "soar.default", "soar-token");
    Setup { home, emu }
}

impl Setup {
    fn run_file(&self, sid: &str, results: &Path) -> Run {
        let payload = payload(&self.home, &self.emu.url(), sid, results, json!({}));
        self.home.run_alert(STANZA, &payload)
    }

    #[track_caller]
    fn assert_nothing_sent(&self) {
        let sent = self.emu.requests_to("/rest");
        assert!(sent.is_empty(), "SOAR received {} request(s)", sent.len());
    }
}

#[cfg(unix)]
#[test]
fn a_fifo_as_results_file_is_refused_at_once() {
    let s = setup("");
    let sid = scheduler_sid(130);
    let fifo = s.home.dispatch_dir(&sid).join("results.csv.gz");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo");
    // Nobody writes to it: reading it would wait until splunkd's maxtime.
    let run = s.run_file(&sid, &fifo);
    run.assert_code(3).assert_levelled_stderr();
    run.assert_line("ERROR", &fifo.display().to_string());
    run.assert_line("ERROR", "not a regular file (a FIFO)");
    s.assert_nothing_sent();
}

#[test]
fn a_directory_or_a_device_as_results_file_is_refused() {
    let s = setup("");
    let sid = scheduler_sid(131);
    let dir = s.home.dispatch_dir(&sid);
    let mut cases = vec![(dir.clone(), "not a regular file (a directory)")];
    if cfg!(unix) && Path::new("/dev/zero").exists() {
        cases.push((PathBuf::from("/dev/zero"), "not a regular file (a device)"));
    }
    for (path, why) in cases {
        let run = s.run_file(&sid, &path);
        run.assert_code(3).assert_levelled_stderr();
        run.assert_line("ERROR", &path.display().to_string());
        run.assert_line("ERROR", why);
    }
    s.assert_nothing_sent();
}
