//! A long outage at SOC scale (issue 27, PRODUCT §18): a flush while SOAR is still down probes
//! once and reads none of the backlog; `spool list` shows a page per state, not the backlog;
//! the per-container SOAR claim leaves a bounded lock table, not a file per container.

use crate::delivery::{
    SOAR, alert, assert_no_duplicates, assert_spool_clean, container_posts, files_in, flush,
    soar_home_with,
};
use crate::support::*;
use serde_json::Value;
use stackflow_emulator::{Emulator, Fault};

fn unavailable() -> Fault {
    Fault::Status {
        status: 503,
        body: r#"{"failed":true,"message":"down"}"#.into(),
        headers: vec![],
    }
}

fn first_attempt(path: &std::path::Path) -> f64 {
    let record: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    record["first_attempt_unix"].as_f64().unwrap()
}

/// Flushes while the remote stays down read nothing but their probe: items planted in
/// `pending/` behind the flush's back (here unreadable, which a read would quarantine) stay
/// untouched, the account still reports its whole backlog, and one probe goes out per run.
/// An item put by an alert run makes the next flush scan again.
#[test]
fn a_flush_while_soar_is_down_probes_once_and_reads_none_of_the_backlog() {
    let emu = Emulator::start();
    let splunkd = Emulator::start();
    let home = soar_home_with(&emu, &splunkd, "max_attempts = 1");
    const ALERTS: usize = 4;
    emu.fault("/rest/container", unavailable(), 100);
    for n in 0..ALERTS {
        let sid = scheduler_sid(2700 + n as u32);
        home.run_alert(SOAR, &alert(&home, &splunkd, &sid, 1, "alert")).assert_code(7);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let pending_dir = home.spool_dir().join("pending");
    // The first flush scans (it knows nothing yet) and finds the account down.
    flush(&home, &splunkd, &[]).assert_code(7).assert_line("WARN", "still down");
    let posts = container_posts(&emu);
    // Every item but the oldest (the probe) made unreadable behind the flush's back.
    let mut items = files_in(&pending_dir);
    items.sort_by(|a, b| first_attempt(a).total_cmp(&first_attempt(b)));
    for path in &items[1..] {
        std::fs::write(path, b"not an item").unwrap();
    }
    for run_number in 1..=3 {
        let run = flush(&home, &splunkd, &[]);
        run.assert_code(7).assert_line("WARN", "still down");
        assert_eq!(container_posts(&emu), posts + run_number, "one probe per run");
        let status: Value = serde_json::from_str(run.stdout.trim()).unwrap();
        assert_eq!(status["accounts"][0]["state"], "down", "{status}");
        assert_eq!(status["accounts"][0]["pending"], ALERTS as u64, "{status}");
        assert_eq!(status["pending"], ALERTS as u64, "{status}");
        assert!(files_in(&home.spool_dir().join("quarantine")).is_empty(), "{}", run.stderr);
        for path in &items[1..] {
            assert_eq!(std::fs::read(path).unwrap(), b"not an item", "{} was read", path.display());
        }
    }
    // An alert run spools one more item: the next flush scans, and so finds the planted files.
    let sid = scheduler_sid(2799);
    home.run_alert(SOAR, &alert(&home, &splunkd, &sid, 1, "alert")).assert_code(7);
    flush(&home, &splunkd, &[]).assert_code(8);
    assert_eq!(files_in(&home.spool_dir().join("quarantine")).len(), ALERTS - 1);
}

/// A backlog larger than a page: `spool list` prints one page of it and says there is more.
#[test]
fn spool_list_shows_a_page_of_a_large_backlog() {
    let emu = Emulator::start();
    let splunkd = Emulator::start();
    let home = soar_home_with(&emu, &splunkd, "max_attempts = 1");
    emu.stop();
    const ROWS: usize = 1_010;
    let sid = scheduler_sid(2710);
    home.run_alert(SOAR, &alert(&home, &splunkd, &sid, ROWS, "row")).assert_code(7);
    assert_eq!(files_in(&home.spool_dir().join("pending")).len(), ROWS);
    let run = home.run_stackflow(&["spool", "list", "--json"], b"");
    run.assert_code(0).assert_line("WARN", "more than 1000 items pending");
    assert_eq!(run.stdout.lines().count(), 1_000, "one page");
}

/// Sending to many containers leaves a fixed number of claim lock files, and the drain after
/// the outage creates every container once.
#[test]
fn soar_claims_leave_a_bounded_lock_table_not_a_file_per_container() {
    let emu = Emulator::start();
    let splunkd = Emulator::start();
    let home = soar_home_with(&emu, &splunkd, "max_attempts = 1");
    const ROWS: usize = 200;
    emu.fault("/rest/container", unavailable(), ROWS);
    let sid = scheduler_sid(2720);
    home.run_alert(SOAR, &alert(&home, &splunkd, &sid, ROWS, "row")).assert_code(7);
    flush(&home, &splunkd, &[]).assert_code(0).assert_line("INFO", "200 delivered");
    assert_eq!(emu.soar_containers().len(), ROWS);
    assert_no_duplicates(&emu);
    assert_spool_clean(&home);
    let locks = files_in(&home.spool_dir().join("locks"));
    assert!(locks.len() <= 64, "{} lock files for {ROWS} containers", locks.len());
}
