//! A KV store drain reads only what it can send (issue 27, PRODUCT §11, §18): each `spool
//! flush` asks the KV store for the oldest `flush_max_items` pending items of each account
//! (`sort` + `limit`), never the whole backlog; oldest first across runs, each item once.

use crate::cluster::{items, join_cluster, unavailable};
use crate::delivery::{SOAR, alert, assert_no_duplicates, flush, soar_home_with};
use crate::support::*;
use serde_json::Value;
use stackflow_emulator::Emulator;

const DATA: &str = "/servicesNS/nobody/stackflow/storage/collections/data/stackflow_spool";
const MAX_ITEMS: usize = 4;

fn status_of(run: &Run) -> Value {
    serde_json::from_str(run.stdout.trim()).unwrap_or_else(|_| panic!("status: {}", run.stdout))
}

/// The queries of the flush's plan (those that read the items' scheduling fields) since the
/// last clear: each must be a sorted page of at most `flush_max_items + 1` documents.
#[track_caller]
fn assert_plan_reads_bounded(splunkd: &Emulator) -> usize {
    let mut reads = 0;
    for request in splunkd.requests_to(DATA).iter().filter(|r| r.method == "GET") {
        let params = request.query_pairs();
        let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        if !param("fields").is_some_and(|fields| fields.contains("first_attempt_unix")) {
            continue;
        }
        reads += 1;
        let limit: usize = param("limit").and_then(|l| l.parse().ok()).unwrap_or(usize::MAX);
        let skip: usize = param("skip").and_then(|s| s.parse().ok()).unwrap_or(0);
        assert!(
            (1..=MAX_ITEMS + 1).contains(&limit) && skip + limit <= MAX_ITEMS + 1,
            "an unbounded plan read: {}",
            request.query
        );
        let sort = param("sort").unwrap_or_default();
        assert!(
            sort.starts_with("first_attempt_unix:1") || sort == "remote_hold_unix:-1",
            "not oldest first: {}",
            request.query
        );
    }
    reads
}

#[test]
fn a_kv_drain_reads_only_the_oldest_items_it_can_send_and_keeps_order_across_runs() {
    let emu = Emulator::start();
    let splunkd = Emulator::start();
    let home = soar_home_with(
        &emu,
        &splunkd,
        &format!("max_attempts = 1\nstore = kvstore\nflush_max_items = {MAX_ITEMS}"),
    );
    join_cluster(&home, &splunkd);
    const ALERTS: usize = 10;
    emu.fault("/rest/container", unavailable(), ALERTS);
    let mut sids = Vec::new();
    for n in 0..ALERTS {
        let sid = scheduler_sid(2900 + n as u32);
        home.run_alert(SOAR, &alert(&home, &splunkd, &sid, 1, "alert")).assert_code(7);
        sids.push(sid);
        // Distinct first-attempt times, so that "oldest first" is observable.
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(items(&splunkd).len(), ALERTS);

    // SOAR answers again: 4, 4, then the last 2, each run reading only what it can send.
    for (run_number, sent) in [(1, 4), (2, 4), (3, 2)] {
        splunkd.clear_requests();
        let run = flush(&home, &splunkd, &[]);
        let status = status_of(&run);
        assert_eq!(status["delivered"], sent, "run {run_number}: {status}\n{}", run.stderr);
        assert!(assert_plan_reads_bounded(&splunkd) > 0, "run {run_number}: no plan read");
        if run_number < 3 {
            run.assert_code(7).assert_line("WARN", "at least");
            assert_eq!(status["counts_capped"], true, "{status}");
            assert!(status["left_for_next_run"].as_u64() >= Some(1), "{status}");
        } else {
            run.assert_code(0);
            assert_eq!(status["pending"], 0, "{status}");
        }
    }
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
    assert_eq!(positions, (0..ALERTS).collect::<Vec<_>>(), "oldest first across runs");
    assert_eq!(created.len(), ALERTS, "each item once");
    assert_no_duplicates(&emu);
    assert!(items(&splunkd).is_empty(), "{:?}", items(&splunkd));
}
