//! Recovery after an outage (PRODUCT §11, §14), end to end: the installed SOAR action spools
//! while SOAR refuses, scheduled flushes (no `--all`) probe the account once per run while it is
//! still down, the items age to a long backoff, and the first scheduled flush after SOAR
//! answers again delivers the whole backlog, oldest first, once each; and the ledger's retention.

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

fn status_of(run: &Run) -> Value {
    serde_json::from_str(run.stdout.trim())
        .unwrap_or_else(|_| panic!("status line: {}", run.stdout))
}

#[test]
fn after_a_long_outage_the_next_scheduled_flush_delivers_the_whole_backlog() {
    let emu = Emulator::start();
    let splunkd = Emulator::start();
    let home = soar_home_with(&emu, &splunkd, "max_attempts = 1");
    // SOAR refuses the three alerts' sends and the three flushes' probes, then answers again.
    const ALERTS: usize = 3;
    const DOWN_FLUSHES: usize = 3;
    emu.fault("/rest/container", unavailable(), ALERTS + DOWN_FLUSHES);
    let mut sids = Vec::new();
    for n in 0..ALERTS {
        let sid = scheduler_sid(1200 + n as u32);
        home.run_alert(SOAR, &alert(&home, &splunkd, &sid, 2, "alert")).assert_code(7);
        sids.push(sid);
        // Distinct first-attempt times, so that "oldest first" is observable.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(files_in(&home.spool_dir().join("pending")).len(), ALERTS);
    assert_eq!(container_posts(&emu), ALERTS);

    // Scheduled flushes while SOAR is down: one probe for the account per run, not one per item.
    for run_number in 1..=DOWN_FLUSHES {
        let run = flush(&home, &splunkd, &[]);
        run.assert_code(7).assert_line("WARN", "still down");
        assert_eq!(container_posts(&emu), ALERTS + run_number, "one probe per run");
        let status = status_of(&run);
        let accounts = status["accounts"].as_array().unwrap();
        assert_eq!(accounts.len(), 1, "{status}");
        assert_eq!(accounts[0]["target"], "soar");
        assert_eq!(accounts[0]["account"], "default");
        assert_eq!(accounts[0]["state"], "down");
        assert_eq!(accounts[0]["pending"], ALERTS as u64);
        assert_eq!(accounts[0]["next_probe_unix"], Value::Null, "next probe: the next flush");
        assert!(accounts[0]["reason"].as_str().unwrap().contains("503"), "{status}");
    }

    // Hours later: every item has failed many flushes and sits at the one-hour backoff cap.
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    for path in files_in(&home.spool_dir().join("pending")) {
        let mut record: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        record["flushes"] = 40.into();
        record["next_attempt_unix"] = (now + 3500.0).into();
        std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
    }

    // SOAR answers again: the next scheduled flush delivers everything, oldest first, once.
    let run = flush(&home, &splunkd, &[]);
    run.assert_code(0).assert_levelled_stderr().assert_line("INFO", "3 delivered");
    let status = status_of(&run);
    assert_eq!((status["pending"].as_u64(), status["delivered"].as_u64()), (Some(0), Some(3)));
    let account = &status["accounts"][0];
    assert_eq!((account["state"].as_str(), account["delivered"].as_u64()), (Some("up"), Some(3)));
    assert_eq!(account["pending"], 0);
    let created: Vec<Value> = emu.soar_containers();
    let positions: Vec<usize> = sids
        .iter()
        .map(|sid| {
            created
                .iter()
                .position(|c| c.to_string().contains(sid.as_str()))
                .unwrap_or_else(|| panic!("no container for {sid}: {created:?}"))
        })
        .collect();
    assert_eq!(positions, vec![0, 1, 2], "oldest first");
    assert_eq!(emu.soar_artifacts().len(), ALERTS * 2);
    assert_no_duplicates(&emu);
    assert_spool_clean(&home);
}

/// Ledger hygiene: `spool purge` removes ledger entries older than
/// `[delivery] ledger_retention_days` and keeps recent ones and sending markers.
#[test]
fn purge_expires_the_ledger_by_retention() {
    let emu = Emulator::start();
    let home = soar_home_with(&emu, &emu, "ledger_retention_days = 7");
    let ledger = home.spool_dir().join("ledger");
    std::fs::create_dir_all(&ledger).unwrap();
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    for (name, age_days) in [("old", 8.0), ("recent", 6.0)] {
        let entry = serde_json::json!({
            "dedupe_key": name, "remote_id": "INC1", "remote_url": null,
            "delivered_unix": now - age_days * 86400.0,
        });
        std::fs::write(ledger.join(format!("{name}.json")), entry.to_string()).unwrap();
    }
    let marker = serde_json::json!({"dedupe_key": "in-doubt", "started_unix": 1});
    std::fs::write(ledger.join("in-doubt.sending.json"), marker.to_string()).unwrap();
    home.run_stackflow(&["spool", "purge"], b"")
        .assert_code(0)
        .assert_line("INFO", "removed 1 ledger entries");
    let mut left: Vec<String> = files_in(&ledger)
        .iter()
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, vec!["in-doubt.sending.json", "recent.json"]);
    // The scheduled flush expires too (at most hourly): a stamp file records the run.
    flush(&home, &emu, &[]).assert_code(0);
    assert!(ledger.join(".expired").is_file());
}
