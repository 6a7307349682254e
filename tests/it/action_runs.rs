//! SOAR's results back on the notable (PRODUCT §17), end to end through the installed
//! `stackflow_state` input: one `stackflow:soar:action_run` event per finished action run of a
//! linked container, and one notable comment per finished playbook run (ES 7 `notable_update`,
//! ES 8 notes), never twice across polls.

use crate::state::{Input, container, of};
use crate::sync::seed_links;
use serde_json::json;

fn linked_container(input: &Input) -> u64 {
    let emu = input.emu();
    let c1 = container(emu, 1, "e1");
    let now = stackflow::civil_time::now_unix();
    seed_links(
        emu,
        &[json!({"_key": "k1", "event_id": "e1", "soar_container_id": c1, "updated": now})],
    );
    c1
}

/// The comments `notable_update` received: (ruleUIDs, comment).
fn es7_comments(emu: &stackflow_emulator::Emulator) -> Vec<(String, String)> {
    emu.notable_updates()
        .iter()
        .filter_map(|form| {
            let get = |key: &str| form.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
            Some((get("ruleUIDs")?, get("comment")?))
        })
        .collect()
}

#[test]
fn finished_runs_are_one_event_and_one_comment_each() {
    let input = Input::new();
    let emu = input.emu();
    let c1 = linked_container(&input);
    let other = container(emu, 2, "not ours");
    let lookup = emu.add_soar_action_run(
        c1,
        json!({"action": "lookup ip", "app": "VirusTotal", "status": "success",
               "message": "1 action succeeded", "result_summary": {"malicious": 7}}),
    );
    let block = emu.add_soar_action_run(c1, json!({"action": "block ip", "status": "running"}));
    emu.add_soar_action_run(other, json!({"action": "lookup ip", "status": "success"}));
    let run = emu.add_soar_playbook_run(c1, "local/containment", "running");

    let (first, found) = input.poll();
    first.assert_code(0);
    let actions = of(&found, "stackflow:soar:action_run");
    assert_eq!(actions.len(), 1, "finished runs of linked containers only: {actions:?}");
    let event = &actions[0].data;
    assert_eq!(event["action_run_id"], lookup);
    assert_eq!(event["container_id"], c1);
    assert_eq!(event["action"], "lookup ip");
    assert_eq!(event["app"], "VirusTotal");
    assert_eq!(event["status"], "success");
    assert_eq!(event["message"], "1 action succeeded");
    assert_eq!(event["summary"], r#"{"malicious":7}"#);
    assert_eq!(event["event_id"], "e1");
    assert!(es7_comments(emu).is_empty(), "a running playbook is not commented");

    // The running action and the playbook finish: one event, one comment.
    assert!(
        emu.update_soar_action_run(
            block,
            json!({"status": "failed", "message": "firewall refused"})
        )
    );
    emu.finish_soar_playbook_run(run, "success", "blocked 10.0.0.9");
    let (second, found) = input.poll();
    second.assert_code(0);
    let actions = of(&found, "stackflow:soar:action_run");
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(actions[0].data["action_run_id"], block);
    assert_eq!(actions[0].data["status"], "failed");
    assert_eq!(actions[0].data["message"], "firewall refused");
    let comments = es7_comments(emu);
    assert_eq!(comments.len(), 1, "{comments:?}");
    assert_eq!(comments[0].0, "e1");
    assert!(comments[0].1.contains("local/containment"), "{comments:?}");
    assert!(comments[0].1.contains("success"), "{comments:?}");
    assert!(comments[0].1.contains("blocked 10.0.0.9"), "{comments:?}");
    let updates = emu.notable_updates();
    assert!(
        updates.iter().all(|form| form.iter().all(|(k, _)| k != "status")),
        "a comment only, the status untouched: {updates:?}"
    );

    // A third poll adds nothing.
    let (third, found) = input.poll();
    third.assert_code(0);
    assert!(of(&found, "stackflow:soar:action_run").is_empty(), "{found:?}");
    assert_eq!(es7_comments(emu).len(), 1, "once per run");
}

#[test]
fn es8_gets_a_note_and_a_refused_comment_is_tried_again_once() {
    let input = Input::new();
    let emu = input.emu();
    emu.set_es_version(Some("8.1.0"));
    let c1 = linked_container(&input);
    let run = emu.add_soar_playbook_run(c1, "local/enrich", "running");
    input.poll().0.assert_code(0);
    emu.finish_soar_playbook_run(run, "failed", "asset offline");
    // splunkd refuses the note once: the comment stays due.
    emu.fault(
        "/servicesNS/nobody/missioncontrol/public/v2/investigations/",
        stackflow_emulator::Fault::RetryAfter { status: 503, seconds: 0 },
        1,
    );
    input.poll().0.assert_code(0);
    let (again, _) = input.poll();
    again.assert_code(0);
    input.poll().0.assert_code(0);
    let notes = emu.es8_notes();
    assert_eq!(notes.len(), 1, "{notes:?}");
    let note = notes[0].to_string();
    assert!(
        note.contains("local/enrich") && note.contains("failed") && note.contains("asset offline"),
        "{note}"
    );
}

#[test]
fn comments_can_be_turned_off() {
    let input = Input::new();
    let emu = input.emu();
    input.setup.home.append_local_conf("\n[notables]\ncomment_playbook_results = false\n");
    let c1 = linked_container(&input);
    let run = emu.add_soar_playbook_run(c1, "local/enrich", "running");
    input.poll().0.assert_code(0);
    emu.finish_soar_playbook_run(run, "success", "done");
    let (poll, found) = input.poll();
    poll.assert_code(0);
    assert_eq!(of(&found, "stackflow:soar:playbook_run").len(), 1);
    assert!(es7_comments(emu).is_empty());
}
