//! One rule for "which container belongs to this notable" (issue 24, item 4), end to end: a
//! notable with two `stackflow_links` records — the item's main record and a newer
//! `<dedupe key>#<event_id>` record of another item pointing at another container — is given the
//! same container by `| stackflowsync`, by the `stackflow_state` input and by the Slack listener
//! (a playbook runs on it): the newest `updated` wins, on a tie the main record.

use crate::slack_socket::{
    Listener, assert_clean, button_value, click, interactions, post_message, seed,
    setup_with_remotes, wait_for,
};
use crate::state::{config_xml, events, input_executable, of};
use crate::support::{one, splunk_csv};
use crate::sync::{execute, field, getinfo, table};
use serde_json::json;
use stackflow::splunk::chunked::read_chunk;
use std::process::Command;

#[test]
fn sync_the_state_input_and_the_listener_pick_the_same_container() {
    let setup = setup_with_remotes("");
    let emu = &setup.emu;
    let older = emu.add_soar_container(json!({"name": "first", "label": "events",
        "severity": "high", "source_data_identifier": "other-1"}));
    let newer = emu.add_soar_container(json!({"name": "grouped", "label": "events",
        "severity": "high", "source_data_identifier": "other-2"}));
    let now = stackflow::civil_time::now_unix();
    // The main record sorts first by `_key` and is written first: "first hit" finds it.
    seed(
        emu,
        "stackflow_links",
        &[
            json!({"_key": "a-main", "event_id": "NE-7", "soar_container_id": older,
                "search_name": "Brute force", "playbooks": "block_ip", "updated": now - 60.0}),
            json!({"_key": "b-group#NE-7", "event_id": "NE-7", "soar_container_id": newer,
                "search_name": "Brute force", "playbooks": "block_ip", "updated": now}),
        ],
    );

    // `| stackflowsync`.
    let rows = splunk_csv(&[vec![("event_id", one("NE-7"))]]);
    let sync = setup.home.run_stackflow(
        &["sync"],
        &[getinfo(emu, &["target=soar", "update_notables=false"]), execute(true, &rows)].concat(),
    );
    assert_eq!(sync.code, 0, "{}", sync.stderr);
    let mut replies = Vec::new();
    let mut input = sync.stdout.as_bytes();
    while let Some(reply) = read_chunk(&mut input).unwrap() {
        replies.push(reply);
    }
    let out = table(&replies[1]);
    assert_eq!(field(&out, 0, "soar_container_id"), newer.to_string(), "stackflowsync");

    // The state input: the notable's changes come from its container only.
    let checkpoint_dir = setup.home.root.join("var/lib/splunk/modinputs/stackflow_state");
    std::fs::create_dir_all(&checkpoint_dir).unwrap();
    let xml = config_xml(emu, &checkpoint_dir, &[]);
    let run = setup.home.run_command(Command::new(input_executable(&setup.home)), xml.as_bytes());
    run.assert_code(0);
    let found = events(&run.stdout);
    let containers: Vec<(u64, String)> = of(&found, "stackflow:soar:container")
        .iter()
        .map(|e| {
            (e.data["container_id"].as_u64().unwrap(), e.data["event_id"].as_str().unwrap().into())
        })
        .filter(|(_, event_id)| event_id == "NE-7")
        .collect();
    assert_eq!(containers, [(newer, "NE-7".to_string())], "the state input: {}", run.stdout);

    // The listener: a playbook requested by the notable's event id runs on the same container.
    seed(
        emu,
        "stackflow_slack_users",
        &[
            json!({"_key": "UERIN", "splunk_user": "erin"}),
            json!({"_key": "UDAVE", "splunk_user": "dave"}),
        ],
    );
    emu.add_splunk_user(
        "erin",
        "erin@example.com",
        &["soc_lead"],
        &["stackflow_respond", "stackflow_approve"],
    );
    emu.add_splunk_user("dave", "dave@example.com", &["soc_lead"], &["stackflow_approve"]);
    let message = post_message(emu, "NE-7");
    let listener = Listener::start(&setup);
    emu.socket_send(click(
        "env-1",
        "UERIN",
        "stackflow_playbook",
        "NE-7|block_ip",
        &message,
        "7.1",
    ));
    wait_for("the request receipt", || interactions(&setup.home).len() == 1);
    assert_eq!(interactions(&setup.home)[0]["outcome"], "awaiting_approval");
    let request = crate::slack_socket::approval_request(emu, &message);
    let value = button_value(&request, "stackflow_approve");
    emu.socket_send(click("env-2", "UDAVE", "stackflow_approve", &value, &request, "7.2"));
    wait_for("the approval", || interactions(&setup.home).len() == 2);
    let receipt = &interactions(&setup.home)[1];
    assert_eq!(receipt["outcome"], "done", "{receipt}");
    let runs = emu.soar_playbook_runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["container"], newer, "the listener");
    assert_clean(&listener.stop());
}
