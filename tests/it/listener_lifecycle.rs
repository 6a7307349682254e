//! The Socket Mode listener against what real splunkd and Slack do (PRODUCT §15), driven as
//! splunkd drives the installed modular input (XML configuration on stdin) with clicks from
//! the emulated Socket Mode server: an expired session key, a splunkd / KV store outage in the
//! middle of a click, one effect per notable across clicks and listeners, buttons naming no
//! notable, envelopes of any size, approvals whose container only SOAR knows, ephemeral
//! replies refused by Slack, and outside text kept inert in mrkdwn.

use crate::slack_socket::{
    Listener, Setup, acked, approval_request, assert_clean, button_value, click, interactions,
    playbook_setup, post_message, responders, seed, setup, setup_with_remotes, wait_for,
};
use crate::support::{SESSION_KEY, modinput_config};
use serde_json::{Value, json};
use stackflow_emulator::{Emulator, Fault};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn checkpoint_dir(setup: &Setup) -> PathBuf {
    let dir = setup.home.root.join("var/lib/splunk/modinputs/stackflow_slack_socket");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn config(emu: &Emulator, checkpoint: &Path) -> String {
    modinput_config(&emu.url(), checkpoint, "stackflow_slack_socket://default", 0, &[])
}

/// Files of kept clicks under the checkpoint folder.
fn kept_files(checkpoint: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![checkpoint.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                found.push(path);
            }
        }
    }
    found
}

fn ephemeral_texts(emu: &Emulator) -> Vec<String> {
    emu.slack_ephemeral().iter().map(|e| e["text"].as_str().unwrap_or("").to_string()).collect()
}

#[test]
fn an_expired_session_keeps_the_click_exits_fatal_and_acts_once_after_the_restart() {
    let setup = setup();
    let emu = &setup.emu;
    responders(&setup);
    let checkpoint = checkpoint_dir(&setup);
    let message = post_message(emu, "dk-1");
    let mut listener = Listener::start_with(&setup, &config(emu, &checkpoint));
    wait_for("a connection", || emu.socket_connections().0 == 1);
    // splunkd now accepts only a fresh key: the input's key has expired.
    emu.set_session_key("a-fresh-session-key");
    emu.socket_send(click("env-x", "UALICE", "stackflow_ack", "dk-1", &message, "11.1"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = listener.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the listener did not exit on an expired session");
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = listener.child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(status.code(), Some(5), "{stderr}");
    assert!(
        stderr.lines().any(|l| l.starts_with("FATAL") && l.contains("session expired")),
        "{stderr}"
    );
    assert!(!stderr.contains(SESSION_KEY), "{stderr}");
    assert_eq!(acked(emu, "env-x"), 1);
    assert!(emu.notable_updates().is_empty());
    assert!(interactions(&setup.home).is_empty(), "the click has not ended yet");
    assert!(
        ephemeral_texts(emu).iter().any(|t| t.contains("queued")),
        "{:?}",
        ephemeral_texts(emu)
    );
    assert_eq!(kept_files(&checkpoint).len(), 1, "kept in checkpoint_dir");

    // splunkd restarts the input with a key it accepts: the kept click is acted on, once.
    emu.set_session_key(SESSION_KEY);
    let listener = Listener::start_with(&setup, &config(emu, &checkpoint));
    wait_for("the kept click's receipt", || interactions(&setup.home).len() == 1);
    let receipt = &interactions(&setup.home)[0];
    assert_eq!(receipt["outcome"], "done", "{receipt}");
    assert_eq!(receipt["envelope_id"], "env-x");
    assert_eq!(emu.notable_updates().len(), 1);
    assert!(kept_files(&checkpoint).is_empty());
    assert_clean(&listener.stop());
    // And not again at the next start.
    let listener = Listener::start_with(&setup, &config(emu, &checkpoint));
    wait_for("a connection", || emu.socket_connections().0 == 1);
    assert_clean(&listener.stop());
    assert_eq!(emu.notable_updates().len(), 1);
    assert_eq!(interactions(&setup.home).len(), 1);
}

#[test]
fn a_splunkd_outage_during_a_click_is_retried_then_kept_and_ends_in_one_receipt() {
    let setup = setup();
    let emu = &setup.emu;
    responders(&setup);
    let checkpoint = checkpoint_dir(&setup);
    let message = post_message(emu, "dk-1");
    let listener = Listener::start_with(&setup, &config(emu, &checkpoint));
    wait_for("a connection", || emu.socket_connections().0 == 1);
    let unavailable = Fault::Status { status: 503, body: String::new(), headers: vec![] };
    emu.fault("/services/notable_update", unavailable, 10_000);
    emu.socket_send(click("env-o", "UALICE", "stackflow_ack", "dk-1", &message, "12.1"));
    wait_for("the queued reply", || ephemeral_texts(emu).iter().any(|t| t.contains("queued")));
    let tries = emu.requests_to("/services/notable_update").len();
    assert!(tries >= 2, "retried within the click's budget: {tries}");
    assert!(interactions(&setup.home).is_empty());
    let pending: Vec<Value> = emu
        .kv_records("stackflow_interactions")
        .into_iter()
        .filter(|r| r["state"] == "pending")
        .collect();
    assert_eq!(pending.len(), 1, "kept in the KV store: {pending:?}");

    // splunkd is back: the next click first takes up the kept one.
    emu.clear_faults();
    emu.socket_send(click("env-p", "UCAROL", "stackflow_escalate", "dk-9", &message, "12.2"));
    wait_for("two receipts", || interactions(&setup.home).len() == 2);
    let receipts = interactions(&setup.home);
    let kept = receipts.iter().find(|r| r["envelope_id"] == "env-o").unwrap();
    assert_eq!(kept["outcome"], "done", "{kept}");
    assert_eq!(emu.notable_updates().len(), 1);
    let ok_updates =
        emu.requests_to("/services/notable_update").iter().filter(|r| r.status == 200).count();
    assert_eq!(ok_updates, 1);
    assert_clean(&listener.stop());
    assert!(
        emu.kv_records("stackflow_interactions").iter().all(|r| r["state"] != "pending"),
        "{:?}",
        emu.kv_records("stackflow_interactions")
    );
    assert_eq!(interactions(&setup.home).len(), 2, "one receipt per click");
}

#[test]
fn a_hundred_acknowledgements_on_two_listeners_make_one_notable_update() {
    let setup = setup();
    let emu = &setup.emu;
    responders(&setup);
    let message = post_message(emu, "dk-1");
    let first = Listener::start(&setup);
    let second = Listener::start(&setup);
    wait_for("two connections", || emu.socket_connections().0 == 2);
    // The same click reaches both listeners.
    emu.socket_send_to_all(click("env-same", "UALICE", "stackflow_ack", "dk-1", &message, "13.0"));
    wait_for("two receipts", || interactions(&setup.home).len() == 2);
    assert_eq!(acked(emu, "env-same"), 2);
    for n in 1..100 {
        let user = if n % 2 == 0 { "UALICE" } else { "UCAROL" };
        let ts = format!("13.{n}");
        emu.socket_send(click(&format!("env-{n}"), user, "stackflow_ack", "dk-1", &message, &ts));
    }
    wait_for("101 receipts", || interactions(&setup.home).len() == 101);
    let receipts = interactions(&setup.home);
    let done: Vec<&Value> = receipts.iter().filter(|r| r["outcome"] == "done").collect();
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!(emu.notable_updates().len(), 1);
    assert_eq!(emu.requests_to("/api/chat.update").len(), 1);
    let duplicates = receipts.iter().filter(|r| r["outcome"] == "duplicate").count();
    assert_eq!(duplicates, 100);
    let later: Vec<&Value> = receipts.iter().filter(|r| r["envelope_id"] != "env-same").collect();
    assert!(
        later
            .iter()
            .all(|r| r["message"].as_str().unwrap().contains("already acknowledged by alice")),
        "{later:?}"
    );
    assert!(
        ephemeral_texts(emu).iter().any(|t| t.contains("already acknowledged by alice")),
        "{:?}",
        ephemeral_texts(emu)
    );
    assert_clean(&first.stop());
    assert_clean(&second.stop());
}

#[test]
fn a_button_naming_no_recorded_notable_changes_nothing() {
    let setup = setup();
    let emu = &setup.emu;
    responders(&setup);
    let message = post_message(emu, "no-such-key");
    let listener = Listener::start(&setup);
    emu.socket_send(click("env-n", "UALICE", "stackflow_ack", "no-such-key", &message, "14.1"));
    wait_for("the receipt", || interactions(&setup.home).len() == 1);
    let receipt = &interactions(&setup.home)[0];
    assert_eq!(receipt["outcome"], "failed", "{receipt}");
    assert!(emu.notable_updates().is_empty(), "{:?}", emu.notable_updates());
    assert!(emu.requests_to("/services/notable_update").is_empty());
    assert!(emu.requests_to("/api/chat.update").is_empty());
    let texts = ephemeral_texts(emu);
    assert!(texts.iter().any(|t| t.contains("names no notable")), "{texts:?}");
    assert_clean(&listener.stop());
}

#[test]
fn a_two_megabyte_envelope_is_acknowledged_and_acted_on_and_a_broken_frame_is_acked() {
    let setup = setup();
    let emu = &setup.emu;
    responders(&setup);
    let message = post_message(emu, "dk-1");
    let listener = Listener::start(&setup);
    emu.socket_send_raw(r#"{"envelope_id": "env-broken", "type": "interactive", "payload": {"#);
    let mut big = click("env-big", "UALICE", "stackflow_ack", "dk-1", &message, "15.1");
    big["payload"]["message"]["text"] = json!("x".repeat(2 * 1024 * 1024));
    emu.socket_send(big);
    wait_for("the big envelope's receipt", || interactions(&setup.home).len() == 1);
    assert_eq!(acked(emu, "env-big"), 1);
    assert_eq!(acked(emu, "env-broken"), 1);
    assert_eq!(interactions(&setup.home)[0]["outcome"], "done");
    assert_eq!(emu.notable_updates().len(), 1);
    assert_eq!(emu.socket_connections().1, 1, "never a reason to reconnect");
    // Idle memory stays low (the 16+ MiB frame limit allocates nothing while idle).
    let status = std::fs::read_to_string(format!("/proc/{}/status", listener.child.id()));
    if let Ok(status) = status {
        let hwm = status.lines().find(|l| l.starts_with("VmHWM")).unwrap_or("").to_string();
        eprintln!("listener after a 2 MB envelope: {hwm}");
    }
    assert_clean(&listener.stop());
}

#[test]
fn an_approved_playbook_finds_its_container_by_source_data_identifier() {
    let setup = setup_with_remotes("");
    let emu = &setup.emu;
    responders(&setup);
    let container = emu.add_soar_container(
        json!({"name": "Brute force", "label": "events", "source_data_identifier": "NE-1"}),
    );
    seed(
        emu,
        "stackflow_links",
        &[json!({"_key": "dk-1", "event_id": "NE-1", "playbooks": "block_ip", "updated": 1})],
    );
    seed(
        emu,
        "stackflow_slack_users",
        &[
            json!({"_key": "UERIN", "splunk_user": "erin"}),
            json!({"_key": "UDAVE", "splunk_user": "dave"}),
        ],
    );
    emu.add_splunk_user("erin", "erin@example.com", &["soc"], &["stackflow_respond"]);
    emu.add_splunk_user("dave", "dave@example.com", &["soc"], &["stackflow_approve"]);
    let message = post_message(emu, "dk-1");
    let listener = Listener::start(&setup);
    emu.socket_send(click(
        "env-1",
        "UERIN",
        "stackflow_playbook",
        "dk-1|block_ip",
        &message,
        "16.1",
    ));
    wait_for("the request", || interactions(&setup.home).len() == 1);
    let request = approval_request(emu, &message);
    let value = button_value(&request, "stackflow_approve");
    emu.socket_send(click("env-2", "UDAVE", "stackflow_approve", &value, &request, "16.2"));
    wait_for("the approval", || interactions(&setup.home).len() == 2);
    let receipt = &interactions(&setup.home)[1];
    assert_eq!(receipt["outcome"], "done", "{receipt}");
    let posts: Vec<_> =
        emu.requests_to("/rest/playbook_run").into_iter().filter(|r| r.method == "POST").collect();
    assert_eq!(posts.len(), 1);
    let runs = emu.soar_playbook_runs();
    assert_eq!(runs[0]["container"], container);
    // The approval message said "running" until the run id was known.
    let updates: Vec<String> = emu
        .requests_to("/api/chat.update")
        .iter()
        .map(|r| r.json())
        .filter(|u| u["ts"] == request.1.as_str())
        .map(|u| u["blocks"].to_string())
        .collect();
    assert!(updates.len() >= 2 && updates[0].contains("running"), "{updates:?}");
    assert!(
        updates.last().unwrap().contains(&format!("run {} started", runs[0]["id"])),
        "{updates:?}"
    );
    assert_clean(&listener.stop());
}

#[test]
fn a_refused_ephemeral_reply_goes_through_the_response_url() {
    let setup = setup();
    let emu = &setup.emu;
    responders(&setup);
    let message = post_message(emu, "dk-1");
    emu.set_slack_ephemeral_refusal(Some("user_not_in_channel"));
    let listener = Listener::start(&setup);
    let mut envelope = click("env-r", "UNOBODY", "stackflow_ack", "dk-1", &message, "17.1");
    envelope["payload"]["response_url"] = json!(emu.slack_response_url(1));
    emu.socket_send(envelope);
    wait_for("the receipt", || interactions(&setup.home).len() == 1);
    wait_for("the response_url post", || !emu.slack_response_url_posts().is_empty());
    let posts = emu.slack_response_url_posts();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0]["response_type"], "ephemeral");
    assert_eq!(posts[0]["replace_original"], false);
    assert!(posts[0]["text"].as_str().unwrap().contains("not mapped"), "{posts:?}");
    // A response_url elsewhere than Slack (or the account's API origin) is never posted to.
    let mut envelope = click("env-s", "UNOBODY", "stackflow_ack", "dk-1", &message, "17.2");
    envelope["payload"]["response_url"] = json!("https://attacker.example.com/actions/x");
    emu.socket_send(envelope);
    wait_for("the second receipt", || interactions(&setup.home).len() == 2);
    assert_eq!(emu.slack_response_url_posts().len(), 1);
    assert_clean(&listener.stop());
}

#[test]
fn outside_text_is_inert_in_what_the_listener_writes() {
    let (setup, _container, _) = playbook_setup();
    let emu = &setup.emu;
    seed(
        emu,
        "stackflow_links",
        &[json!({"_key": "dk-1", "event_id": "NE-1", "search_name": "Brute force",
            "playbooks": "<!channel>,isolate_host", "updated": 1})],
    );
    let message = post_message(emu, "dk-1");
    let listener = Listener::start(&setup);
    emu.socket_send(click(
        "env-1",
        "UERIN",
        "stackflow_playbook",
        "dk-1|<!channel>",
        &message,
        "18.1",
    ));
    wait_for("the request", || interactions(&setup.home).len() == 1);
    assert_eq!(interactions(&setup.home)[0]["outcome"], "awaiting_approval");
    let request = approval_request(emu, &message);
    let value = button_value(&request, "stackflow_approve");
    // SOAR refuses the run with a message that would ping the channel.
    emu.fault(
        "/rest/playbook_run",
        Fault::Status {
            status: 400,
            body: r#"{"failed": true, "message": "<!channel> <https://evil.example|click>"}"#
                .into(),
            headers: vec![],
        },
        1,
    );
    emu.socket_send(click("env-2", "UDAVE", "stackflow_approve", &value, &request, "18.2"));
    wait_for("the approval", || interactions(&setup.home).len() == 2);
    assert_eq!(interactions(&setup.home)[1]["outcome"], "failed");
    let written: Vec<String> = emu
        .requests_to("/api/chat.")
        .iter()
        .filter(|r| r.path.ends_with("chat.update") || r.path.ends_with("chat.postMessage"))
        .map(|r| r.json().to_string())
        .collect();
    let listener_written = &written[1..]; // the first is the test's own post
    assert!(listener_written.iter().all(|w| !w.contains("<!channel>")), "{listener_written:?}");
    assert!(listener_written.iter().all(|w| !w.contains("<https://evil")), "{listener_written:?}");
    assert!(
        listener_written.iter().any(|w| w.contains("&lt;!channel&gt;")),
        "{listener_written:?}"
    );
    assert!(
        listener_written.iter().any(|w| w.contains("&lt;!channel&gt; &lt;https://evil")),
        "the remote error quoted, escaped: {listener_written:?}"
    );
    assert_clean(&listener.stop());
}
