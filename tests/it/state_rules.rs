//! The `stackflow_state` input against remotes that misbehave (PRODUCT §15): change times in
//! the future or unparsable never move the checkpoint, a page far larger than asked for is
//! read in bounded memory, and open cases are followed whatever the age of their link.

use crate::splunkd_rules::configure;
use crate::state::{Input, config_xml, container, events, input_executable, of};
use crate::support::{Expect, Run, spawn};
use crate::sync::seed_links;
use serde_json::{Value, json};
use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

const CONTAINERS: &str = "stackflow:soar:container";

fn now() -> f64 {
    stackflow::civil_time::now_unix()
}

fn link(key: &str, container: u64, updated: f64) -> Value {
    json!({"_key": key, "event_id": format!("e-{key}"), "soar_container_id": container, "updated": updated})
}

fn checkpoint(input: &Input) -> Value {
    let path = input.checkpoint_dir.join("default.json");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn container_ids(found: &[crate::state::Event]) -> Vec<u64> {
    let mut ids: Vec<u64> =
        of(found, CONTAINERS).iter().map(|e| e.data["container_id"].as_u64().unwrap()).collect();
    ids.sort();
    ids
}

#[test]
fn a_future_or_unparsable_change_time_never_moves_the_checkpoint() {
    let input = Input::new();
    let emu = input.emu();
    let future = emu.add_soar_container(json!({"name": "clock ahead", "label": "events",
        "source_data_identifier": "f", "update_time": "9999-12-31T23:59:59.000000Z"}));
    let garbage = emu.add_soar_container(json!({"name": "no clock", "label": "events",
        "source_data_identifier": "g", "update_time": "last tuesday"}));
    let fine = container(emu, 3, "ok");
    let now = now();
    seed_links(emu, &[link("kf", future, now), link("kg", garbage, now), link("ko", fine, now)]);

    let (run, found) = input.poll();
    run.assert_code(0);
    assert_eq!(container_ids(&found), [future, garbage, fine], "every object is reported");
    for id in [future, garbage] {
        let named = format!("SOAR container {id}:");
        assert!(
            run.stderr.lines().any(|line| line.contains("WARN") && line.contains(&named)),
            "a WARN names container {id}: {}",
            run.stderr
        );
    }
    let since = checkpoint(&input)["containers"]["since"].as_str().unwrap_or_default().to_string();
    let at = stackflow::civil_time::parse_iso8601(&since).expect("the cursor is a time");
    assert!(at <= stackflow::civil_time::now_unix() + 1.0, "cursor {since} is not ahead");

    // A later change of the well-behaved container is seen: nothing hides it.
    assert!(emu.update_soar_container(fine, json!({"status": "open", "owner_name": "carol"})));
    let (run, found) = input.poll();
    run.assert_code(0);
    let changed = of(&found, CONTAINERS);
    assert_eq!(changed.len(), 1, "{found:?}");
    assert_eq!(changed[0].data["container_id"], fine);
    assert_eq!(changed[0].data["owner"], "carol");
}

#[test]
fn a_checkpoint_left_in_the_future_by_an_older_version_heals() {
    let input = Input::new();
    let emu = input.emu();
    let fine = container(emu, 1, "ok");
    seed_links(emu, &[link("k1", fine, now())]);
    input.poll().0.assert_code(0);
    // What an older version wrote after reading `update_time` = year 9999.
    let mut saved = checkpoint(&input);
    saved["containers"]["since"] = json!("9999-12-31T23:59:59Z");
    std::fs::write(input.checkpoint_dir.join("default.json"), saved.to_string()).unwrap();
    assert!(emu.update_soar_container(fine, json!({"status": "closed"})));
    let (run, found) = input.poll();
    run.assert_code(0);
    assert_eq!(container_ids(&found), [fine], "{}", run.stderr);
    assert!(run.stderr.contains("cursor is not trusted"), "{}", run.stderr);
}

/// Polls once while sampling the input's peak resident set (VmHWM, /proc); the samples can
/// only under-estimate the peak.
fn poll_measuring(input: &Input) -> (Run, Vec<crate::state::Event>, u64) {
    let home = &input.setup.home;
    let mut command = home.command(Command::new(input_executable(home)));
    let started = Instant::now();
    let mut child = spawn(&mut command);
    let xml = config_xml(input.emu(), &input.checkpoint_dir, &[]);
    child.stdin.take().unwrap().write_all(xml.as_bytes()).unwrap();
    let status = format!("/proc/{}/status", child.id());
    let peak_kb = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut peak = 0u64;
            while let Ok(text) = std::fs::read_to_string(&status) {
                let hwm = text
                    .lines()
                    .find_map(|line| line.strip_prefix("VmHWM:"))
                    .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse().ok());
                match hwm {
                    Some(kb) => peak = peak.max(kb),
                    None => break, // a zombie: the process is over
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        });
        let output = child.wait_with_output().unwrap();
        (sampler.join().unwrap(), output)
    });
    let (peak_kb, output) = peak_kb;
    let run = Run::from_output(output, started.elapsed(), Expect::Ordinary);
    let found = events(&run.stdout);
    (run, found, peak_kb)
}

#[test]
fn a_page_of_100000_containers_is_read_in_bounded_memory() {
    let input = Input::new();
    let emu = input.emu();
    let ours = container(emu, 1, "ours");
    seed_links(emu, &[link("k1", ours, now())]);
    // SOAR puts 100,000 other containers in front of ours in the first page, whatever the
    // page size asked.
    configure(emu, json!({"soar_page_padding": 100_000}));
    let (run, found, peak_kb) = poll_measuring(&input);
    run.assert_code(0);
    assert_eq!(container_ids(&found), [ours], "{}", run.stderr);
    assert!(peak_kb < 64 * 1024, "peak RSS {peak_kb} kB (PRODUCT §15: under 64 MB)");
    assert!(emu.update_soar_container(ours, json!({"status": "closed"})));
    let (run, found, peak_kb) = poll_measuring(&input);
    run.assert_code(0);
    assert_eq!(of(&found, CONTAINERS)[0].data["status"], "closed", "{found:?}");
    assert!(peak_kb < 64 * 1024, "peak RSS {peak_kb} kB");
}

/// How id `id` appears in an encoded `_filter_id__in=[…]` list.
fn in_list(asked: &str, id: u64) -> bool {
    [format!("%5B{id}%5D"), format!("%5B{id}%2C"), format!("%2C{id}%2C"), format!("%2C{id}%5D")]
        .iter()
        .any(|form| asked.contains(form.as_str()))
}

/// The `_filter_id__in` lists of the container queries since the requests were cleared.
fn polled_ids(emu: &stackflow_emulator::Emulator) -> String {
    emu.requests_to("/rest/container")
        .iter()
        .map(|request| request.query.clone())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn an_open_case_linked_long_ago_is_followed_until_it_closes() {
    let input = Input::new();
    let emu = input.emu();
    let open = container(emu, 1, "old-open");
    let closed = container(emu, 2, "old-closed");
    let recent = container(emu, 3, "recent");
    assert!(emu.update_soar_container(closed, json!({"status": "closed"})));
    let forty_days = 40.0 * 86_400.0;
    let now = now();
    seed_links(
        emu,
        &[
            link("ko", open, now - forty_days),
            link("kc", closed, now - forty_days),
            link("kr", recent, now),
        ],
    );
    let (run, found) = input.poll();
    run.assert_code(0);
    assert_eq!(container_ids(&found), [open, closed, recent], "{}", run.stderr);

    // The 40-day-old case closes now: its closing is indexed.
    assert!(emu.update_soar_container(open, json!({"status": "closed", "owner_name": "dave"})));
    emu.clear_requests();
    let (run, found) = input.poll();
    run.assert_code(0);
    let events = of(&found, CONTAINERS);
    assert_eq!(events.len(), 1, "{found:?}");
    assert_eq!(events[0].data["container_id"], open);
    assert_eq!(events[0].data["status"], "closed");
    assert_eq!(events[0].data["event_id"], "e-ko");
    let asked = polled_ids(emu);
    assert!(in_list(&asked, open), "{asked}");
    assert!(!in_list(&asked, closed), "a closed old case is not polled: {asked}");

    // Closed now, and old: no longer polled; the recent link still is.
    emu.clear_requests();
    let (run, found) = input.poll();
    run.assert_code(0);
    assert!(found.is_empty(), "{found:?}");
    let asked = polled_ids(emu);
    assert!(in_list(&asked, recent), "{asked}");
    for id in [open, closed] {
        assert!(!in_list(&asked, id), "{id} polled: {asked}");
    }
}

#[test]
fn pages_that_never_end_are_read_to_a_bound_and_the_poll_goes_on() {
    let input = Input::new();
    let emu = input.emu();
    let ours = container(emu, 1, "ours");
    seed_links(emu, &[link("k1", ours, now())]);
    // Every container page claims a million pages and holds our container again.
    let page = json!({"count": 200_000_000u64, "num_pages": 1_000_000,
        "data": [{"id": ours, "status": "new", "update_time": "2026-01-01T00:00:00Z"}]});
    let fault = stackflow_emulator::Fault::Status {
        status: 200,
        body: page.to_string(),
        headers: vec![("Content-Type".into(), "application/json".into())],
    };
    emu.fault("/rest/container", fault, 2_000);
    let (run, found) = input.poll();
    run.assert_code(0);
    assert_eq!(container_ids(&found), [ours], "reported once: {found:?}");
    let asked = emu.requests_to("/rest/container").len();
    assert!(asked <= 500, "{asked} pages read");
    assert!(
        run.stderr.contains("WARN") && run.stderr.contains("beyond 500 pages"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_page_of_100000_incidents_is_read_in_bounded_memory() {
    let input = Input::new();
    let emu = input.emu();
    crate::state::incident(emu, "INC0004242", "new");
    seed_links(
        emu,
        &[
            json!({"_key": "i1", "event_id": "e1", "stackflow_incident_id": "INC0004242", "updated": now()}),
        ],
    );
    configure(emu, json!({"stackflow_page_padding": 100_000}));
    let (run, found, peak_kb) = poll_measuring(&input);
    run.assert_code(0);
    let incidents = of(&found, "stackflow:incident");
    assert_eq!(incidents.len(), 1, "only the linked incident: {}", run.stderr);
    assert_eq!(incidents[0].data["incident_id"], "INC0004242");
    assert!(peak_kb < 64 * 1024, "peak RSS {peak_kb} kB (PRODUCT §15: under 64 MB)");
}
