//! The `stackflow_slack_socket` modular input end to end: the installed app's launcher started
//! the way splunkd starts a modular input (XML configuration on stdin, then stdin closed),
//! connected over TLS to the emulator's Socket Mode server; clicks arrive as `interactive`
//! envelopes and their effects are read back from the emulators (notable updates, messages,
//! ephemeral replies, KV records) and from the interaction receipts. The listener is stopped
//! with SIGTERM, as splunkd does.

use crate::support::{Run, SESSION_KEY, SplunkHome, modinput_config, spawn};
use serde_json::{Value, json};
use stackflow_emulator::{Emulator, Fault};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const BOT_TOKEN: &str = "xoxb-test";
const APP_TOKEN: &str = "xapp-test";

pub(crate) struct Setup {
    pub(crate) home: SplunkHome,
    pub(crate) emu: Emulator,
}

pub(crate) fn setup() -> Setup {
    let emu = Emulator::start();
    emu.start_socket_mode();
    let (home, ca) = SplunkHome::trusting(&emu);
    home.write_local_conf(&format!(
        "[slack:default]\napi_url = {}/api\nca_file = {}\nchannel = #soc\n",
        emu.url(),
        ca.display()
    ));
    emu.set_secret("stackflow", "slack.default", BOT_TOKEN);
    emu.set_secret("stackflow", "slack_app.default", APP_TOKEN);
    Setup { home, emu }
}

/// `setup()` plus the StackFlow and SOAR accounts escalations and playbooks go to.
pub(crate) fn setup_with_remotes(extra: &str) -> Setup {
    let emu = Emulator::start();
    emu.start_socket_mode();
    let (home, ca) = SplunkHome::trusting(&emu);
    let (url, ca) = (emu.url(), ca.display().to_string());
    home.write_local_conf(&format!(
        "[slack:default]\napi_url = {url}/api\nca_file = {ca}\nchannel = #soc\n\n\
         [stackflow:default]\nwebhook_url = {url}/prod/api/webhooks/inbound/splunk\napi_url = {url}/prod/api\nca_file = {ca}\n\n\
         [soar:default]\nurl = {url}\nca_file = {ca}\n\n{extra}"
    ));
    emu.set_secret("stackflow", "slack.default", BOT_TOKEN);
    emu.set_secret("stackflow", "slack_app.default", APP_TOKEN);
    emu.set_secret("stackflow", "stackflow.default", "sf-secret");
    emu.set_secret("stackflow", "stackflow_api.default", "sf-api-token");
    emu.set_secret("stackflow", "soar.default", "soar-token");
    Setup { home, emu }
}

fn input_executable(home: &SplunkHome) -> PathBuf {
    home.modinput_executable("stackflow_slack_socket")
}

pub(crate) fn config_xml(emu: &Emulator) -> String {
    let stanza = "stackflow_slack_socket://default";
    modinput_config(&emu.url(), Path::new("/nonexistent"), stanza, 0, &[])
}

/// A running listener.
pub(crate) struct Listener {
    pub(crate) child: Child,
    pub(crate) started: Instant,
}

impl Listener {
    pub(crate) fn start(setup: &Setup) -> Listener {
        Listener::start_with(setup, &config_xml(&setup.emu))
    }

    /// Started with this modular input configuration.
    pub(crate) fn start_with(setup: &Setup, config: &str) -> Listener {
        let mut command = setup.home.command(Command::new(input_executable(&setup.home)));
        let mut child = spawn(&mut command);
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(config.as_bytes()).unwrap();
        drop(stdin); // splunkd closes stdin once the configuration is written
        Listener { child, started: Instant::now() }
    }

    /// SIGKILL: the listener dies wherever it is (a crash, an OOM kill).
    pub(crate) fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the run as the harness judges any run.
    pub(crate) fn stop(self) -> Run {
        let status = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        assert!(status.unwrap().success());
        let output = self.child.wait_with_output().unwrap();
        Run::from_output(output, self.started.elapsed(), crate::support::Expect::Ordinary)
    }
}

/// Waits (generously) for a condition the listener must bring about.
#[track_caller]
pub(crate) fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn acked(emu: &Emulator, envelope_id: &str) -> usize {
    emu.socket_acks().iter().filter(|ack| ack.envelope_id == envelope_id).count()
}

/// Interaction receipts in the order they were written (one stash file each).
pub(crate) fn interactions(home: &SplunkHome) -> Vec<Value> {
    let lines = home.stash_lines(".stash_stackflow_interaction");
    assert!(
        lines.iter().all(|(header, _)| header.contains("sourcetype=\"stackflow:interaction\"")),
        "{lines:?}"
    );
    let mut found: Vec<Value> = lines.into_iter().map(|(_, line)| line).collect();
    found.sort_by(|a, b| a["time"].as_f64().unwrap().total_cmp(&b["time"].as_f64().unwrap()));
    found
}

pub(crate) fn assert_clean(run: &Run) {
    run.assert_code(0).assert_levelled_stderr().assert_no_secret(&[
        SESSION_KEY,
        BOT_TOKEN,
        APP_TOKEN,
        "emulator-ticket",
    ]);
}

#[test]
fn scheme_and_validation() {
    let setup = setup();
    let mut command = Command::new(input_executable(&setup.home));
    command.arg("--scheme");
    let run = setup.home.run_command(command, b"");
    run.assert_code(0);
    assert!(
        run.stdout.contains("<title>StackFlow Slack buttons (Socket Mode)</title>"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("<arg name=\"account\">"), "{}", run.stdout);
    let items = |account: &str| {
        format!(
            r#"<items><server_host>sh1</server_host><server_uri>{}</server_uri><session_key>{SESSION_KEY}</session_key><checkpoint_dir>/x</checkpoint_dir><item name="stackflow_slack_socket://x"><param name="account">{account}</param></item></items>"#,
            setup.emu.url()
        )
    };
    let mut command = Command::new(input_executable(&setup.home));
    command.arg("--validate-arguments");
    setup.home.run_command(command, items("soc-1").as_bytes()).assert_code(0);
    let mut command = Command::new(input_executable(&setup.home));
    command.arg("--validate-arguments");
    let refused = setup.home.run_command(command, items("a/b").as_bytes());
    refused.assert_code(2);
    assert!(refused.stdout.contains("<error><message>"), "{}", refused.stdout);
}

#[test]
fn every_envelope_is_acked_across_disconnects_and_lost_sockets_until_sigterm() {
    let setup = setup();
    let emu = &setup.emu;
    let listener = Listener::start(&setup);
    wait_for("a first connection", || emu.socket_connections().0 == 1);
    emu.socket_send(
        json!({"envelope_id": "env-1", "type": "events_api", "payload": {"event": {}}}),
    );
    wait_for("env-1 acked", || acked(emu, "env-1") == 1);

    // Slack's refresh: `disconnect`, then a new connection (a fresh apps.connections.open).
    emu.socket_disconnect();
    wait_for("a second connection", || emu.socket_connections().1 == 2);
    emu.socket_send(json!({"envelope_id": "env-2", "type": "events_api", "payload": {}}));
    wait_for("env-2 acked", || acked(emu, "env-2") == 1);

    // The socket dies without a close frame; envelopes queued meanwhile still arrive.
    emu.socket_drop();
    for n in 3..8 {
        emu.socket_send(
            json!({"envelope_id": format!("env-{n}"), "type": "events_api", "payload": {}}),
        );
    }
    wait_for("a third connection", || emu.socket_connections().1 >= 3);
    wait_for("every envelope acked", || emu.socket_unacked() == 0);
    for n in 1..8 {
        assert_eq!(acked(emu, &format!("env-{n}")), 1, "env-{n} acked exactly once");
    }
    // Garbage frames are skipped, and the envelope after them is still handled.
    emu.socket_send(json!("not an object"));
    emu.socket_send(json!({"type": "interactive", "payload": {"type": "block_actions"}}));
    emu.socket_send(json!({"envelope_id": "env-8", "type": "interactive", "payload": [1, 2]}));
    wait_for("env-8 acked", || acked(emu, "env-8") == 1);
    let opened = emu.requests_to("/api/apps.connections.open");
    assert!(opened.len() >= 3, "one apps.connections.open per connection");
    assert!(opened.iter().all(|r| r.header("authorization") == Some("Bearer xapp-test")));

    let run = listener.stop();
    assert_clean(&run);
    assert!(run.stderr.contains("INFO Socket Mode: hello received"), "{}", run.stderr);
    assert!(run.stderr.contains("Slack asked to reconnect (refresh_requested)"), "{}", run.stderr);
    wait_for("the connection closed", || emu.socket_connections().0 == 0);
}

#[test]
fn a_missing_app_token_is_a_credentials_error() {
    let setup = setup();
    setup.emu.set_slack_app_token("xapp-other");
    let mut command = Command::new(input_executable(&setup.home));
    command.env("STACKFLOW_UNUSED", "1");
    let run = setup.home.run_command(command, config_xml(&setup.emu).as_bytes());
    run.assert_code(5).assert_no_secret(&[APP_TOKEN, BOT_TOKEN, SESSION_KEY]);
    assert!(run.stderr.contains("slack_app.default"), "{}", run.stderr);
}

/// Posts a message with StackFlow's buttons (as the alert action would) and returns its
/// channel id, ts and blocks.
pub(crate) fn post_message(emu: &Emulator, reference: &str) -> (String, String, Value) {
    let button = |action_id: &str, text: &str| {
        json!({"type": "button", "action_id": action_id, "value": reference,
               "text": {"type": "plain_text", "text": text}})
    };
    let blocks = json!([
        {"type": "header", "text": {"type": "plain_text", "text": "HIGH: Brute force"}},
        {"type": "actions", "elements": [button("stackflow_ack", "Acknowledge"),
            button("stackflow_escalate", "Escalate"), button("stackflow_false_positive", "False positive"),
            {"type": "button", "action_id": "open_splunk", "url": "https://splunk.example.com/x",
             "text": {"type": "plain_text", "text": "Open in Splunk"}}]}
    ]);
    let client = stackflow::net::http::HttpClient::new(
        &stackflow::net::http::HttpOptions {
            tls: stackflow::settings::TlsSettings { verify: false, ca_file: None },
            proxy: None,
            timeout: Duration::from_secs(10),
        },
        "test",
    )
    .unwrap();
    let body = json!({"channel": "#soc", "text": "HIGH: Brute force", "blocks": blocks});
    let answer = client
        .post(
            &format!("{}/api/chat.postMessage", emu.url()),
            &[("Authorization", "Bearer xoxb-test"), ("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
        .unwrap()
        .json()
        .unwrap();
    (answer["channel"].as_str().unwrap().into(), answer["ts"].as_str().unwrap().into(), blocks)
}

/// An `interactive` envelope: `user` clicked `action_id` on the message.
pub(crate) fn click(
    envelope_id: &str,
    user: &str,
    action_id: &str,
    value: &str,
    message: &(String, String, Value),
    action_ts: &str,
) -> Value {
    let (channel, ts, blocks) = message;
    json!({"envelope_id": envelope_id, "type": "interactive", "accepts_response_payload": false,
           "payload": {"type": "block_actions", "user": {"id": user, "username": user.to_lowercase()},
             "container": {"type": "message", "channel_id": channel, "message_ts": ts},
             "channel": {"id": channel}, "message": {"ts": ts, "text": "HIGH: Brute force", "blocks": blocks},
             "actions": [{"action_id": action_id, "value": value, "type": "button", "action_ts": action_ts}]}})
}

pub(crate) fn seed(emu: &Emulator, collection: &str, records: &[Value]) {
    use stackflow::remotes::splunkd::Splunkd;
    use stackflow::secret::Secret;
    use stackflow::settings::Settings;
    use stackflow::splunk::conf::ConfFile;
    let settings = Settings::from_conf(ConfFile::default(), None, None);
    let splunkd = Splunkd::new(&settings, &emu.url(), Secret::new(SESSION_KEY)).unwrap();
    splunkd.kv_batch_save(collection, records).unwrap();
}

pub(crate) fn responders(setup: &Setup) {
    let emu = &setup.emu;
    seed(
        emu,
        "stackflow_links",
        &[json!({"_key": "dk-1", "event_id": "NE-1", "search_name": "Brute force",
        "slack_channel": "C1", "slack_ts": "1.1", "updated": 1})],
    );
    seed(emu, "stackflow_slack_users", &[json!({"_key": "UALICE", "splunk_user": "alice"})]);
    emu.add_splunk_user(
        "alice",
        "alice@example.com",
        &["stackflow_responder"],
        &["stackflow_respond", "edit_notable_events"],
    );
    emu.add_splunk_user("bob", "bob@example.com", &["user"], &["search"]);
    emu.add_splunk_user(
        "carol",
        "Carol@Example.com",
        &["stackflow_responder"],
        &["stackflow_respond"],
    );
    emu.add_slack_user("UBOB", json!({"id": "UBOB", "profile": {"email": "bob@example.com"}}));
    emu.add_slack_user(
        "UCAROL",
        json!({"id": "UCAROL", "profile": {"email": "carol@example.com"}}),
    );
}

#[test]
fn acknowledge_acts_once_across_redelivery_and_restart() {
    let setup = setup();
    let emu = &setup.emu;
    responders(&setup);
    let message = post_message(emu, "dk-1");
    let listener = Listener::start(&setup);
    emu.socket_send(click("env-a", "UALICE", "stackflow_ack", "dk-1", &message, "100.1"));
    wait_for("the ack receipt", || interactions(&setup.home).len() == 1);

    let updates = emu.notable_updates();
    assert_eq!(updates.len(), 1, "{updates:?}");
    let field = |name: &str| updates[0].iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(field("ruleUIDs").as_deref(), Some("NE-1"));
    assert_eq!(field("status").as_deref(), Some("2"));
    assert_eq!(field("newOwner").as_deref(), Some("alice"));
    assert_eq!(field("comment").as_deref(), Some("Acknowledged in Slack by alice"));
    let receipt = &interactions(&setup.home)[0];
    for (name, value) in [
        ("slack_user_id", "UALICE"),
        ("splunk_user", "alice"),
        ("action", "ack"),
        ("event_id", "NE-1"),
        ("dedupe_key", "dk-1"),
        ("outcome", "done"),
        ("notable_status_after", "2"),
        ("search_name", "Brute force"),
    ] {
        assert_eq!(receipt[name], value, "{name} in {receipt}");
    }
    // The message lost its Acknowledge button and gained the context line; the thread says so.
    let messages = emu.slack_messages();
    let update = messages
        .iter()
        .rfind(|m| m["ts"] == message.1.as_str() && m.get("thread_ts").is_none())
        .unwrap();
    let text = update.to_string();
    assert!(!text.contains("stackflow_ack") && text.contains("stackflow_escalate"), "{text}");
    assert!(text.contains("Acknowledged by <@UALICE> (alice) at "), "{text}");
    assert_eq!(emu.requests_to("/api/chat.update").len(), 1);
    let replies: Vec<&Value> =
        messages.iter().filter(|m| m["thread_ts"] == message.1.as_str()).collect();
    assert_eq!(replies.len(), 1, "{replies:?}");

    // Slack delivers the same envelope again: acknowledged, not acted on.
    emu.socket_send(click("env-a", "UALICE", "stackflow_ack", "dk-1", &message, "100.1"));
    wait_for("the duplicate receipt", || interactions(&setup.home).len() == 2);
    assert_eq!(interactions(&setup.home)[1]["outcome"], "duplicate");
    assert_eq!(emu.notable_updates().len(), 1);

    // A restarted listener remembers (stackflow_interactions).
    assert_clean(&listener.stop());
    let listener = Listener::start(&setup);
    emu.socket_send(click("env-a", "UALICE", "stackflow_ack", "dk-1", &message, "100.1"));
    wait_for("the duplicate receipt after the restart", || interactions(&setup.home).len() == 3);
    assert_eq!(interactions(&setup.home)[2]["outcome"], "duplicate");
    assert_eq!(emu.notable_updates().len(), 1);
    assert_eq!(emu.requests_to("/api/chat.update").len(), 1);
    assert_eq!(acked(emu, "env-a"), 3);
    let records = emu.kv_records("stackflow_interactions");
    let clicks: Vec<&Value> = records.iter().filter(|r| r["kind"] == "click").collect();
    assert_eq!(clicks.len(), 1, "{records:?}");
    assert_eq!(clicks[0]["outcome"], "done");
    // The effect's own claim names who acknowledged.
    let claim = records.iter().find(|r| r["_key"] == "ack:NE-1").expect("the ack claim");
    assert_eq!(claim["splunk_user"], "alice", "{claim}");
    assert_clean(&listener.stop());
}

#[test]
fn unmapped_and_unauthorised_users_change_nothing_and_are_told_why() {
    let setup = setup();
    let emu = &setup.emu;
    responders(&setup);
    let message = post_message(emu, "dk-1");
    let listener = Listener::start(&setup);
    emu.socket_send(click("env-1", "UNOBODY", "stackflow_ack", "dk-1", &message, "1.1"));
    emu.socket_send(click("env-2", "UBOB", "stackflow_false_positive", "dk-1", &message, "1.2"));
    wait_for("two receipts", || interactions(&setup.home).len() == 2);
    let receipts = interactions(&setup.home);
    assert!(receipts.iter().all(|r| r["outcome"] == "denied"), "{receipts:?}");
    assert_eq!(receipts[0]["splunk_user"], "");
    assert!(receipts[0]["message"].as_str().unwrap().contains("not mapped"), "{receipts:?}");
    assert_eq!(receipts[1]["splunk_user"], "bob");
    assert!(receipts[1]["message"].as_str().unwrap().contains("stackflow_respond"), "{receipts:?}");
    assert!(emu.notable_updates().is_empty());
    assert!(emu.requests_to("/api/chat.update").is_empty());
    let ephemeral = emu.slack_ephemeral();
    assert_eq!(ephemeral.len(), 2, "{ephemeral:?}");
    assert_eq!(ephemeral[0]["user"], "UNOBODY");
    assert_eq!(ephemeral[1]["user"], "UBOB");

    // Mapped by e-mail (case-insensitive) and allowed: false positive closes the notable.
    emu.socket_send(click("env-3", "UCAROL", "stackflow_false_positive", "dk-1", &message, "1.3"));
    wait_for("the third receipt", || interactions(&setup.home).len() == 3);
    let receipt = &interactions(&setup.home)[2];
    assert_eq!(receipt["outcome"], "done", "{receipt}");
    assert_eq!(receipt["splunk_user"], "carol");
    let updates = emu.notable_updates();
    assert_eq!(updates.len(), 1);
    let field = |name: &str| updates[0].iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(field("status").as_deref(), Some("5"));
    assert_eq!(field("disposition").as_deref(), Some("disposition:3"));
    let update = emu.requests_to("/api/chat.update")[0].json();
    let text = update["blocks"].to_string();
    assert!(!text.contains("stackflow_") && text.contains("open_splunk"), "{text}");
    assert!(text.contains("Marked false positive by <@UCAROL> (carol)"), "{text}");
    assert_clean(&listener.stop());
}

#[test]
fn escalate_creates_one_stackflow_incident_with_a_raised_priority() {
    let setup = setup_with_remotes("");
    let emu = &setup.emu;
    responders(&setup);
    seed(
        emu,
        "stackflow_links",
        &[json!({"_key": "dk-1", "event_id": "NE-1", "search_name": "Brute force",
            "rule_name": "Brute force on web01", "severity": "high", "sid": "sid-9",
            "escalate_to": "stackflow", "slack_channel": "C1", "slack_ts": "1.1", "updated": 1})],
    );
    let message = post_message(emu, "dk-1");
    let listener = Listener::start(&setup);
    emu.socket_send(click("env-e", "UALICE", "stackflow_escalate", "dk-1", &message, "5.1"));
    wait_for("the escalation receipt", || interactions(&setup.home).len() == 1);
    let receipt = &interactions(&setup.home)[0];
    assert_eq!(receipt["outcome"], "done", "{receipt}");
    assert_eq!(receipt["action"], "escalate");
    let incidents = emu.stackflow_incidents();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let incident = incidents[0].to_string();
    // high maps to P2; an escalation is one step higher.
    assert!(incident.contains("\"P1\""), "{incident}");
    assert!(incident.contains("NE-1"), "{incident}");
    assert!(!receipt["remote_id"].as_str().unwrap().is_empty(), "{receipt}");
    let update = emu.requests_to("/api/chat.update")[0].json();
    let text = update["blocks"].to_string();
    assert!(!text.contains("stackflow_escalate") && text.contains("stackflow_ack"), "{text}");
    assert!(text.contains("Escalated by <@UALICE> (alice)"), "{text}");
    let replies: Vec<Value> =
        emu.slack_messages().into_iter().filter(|m| m["thread_ts"] == message.1.as_str()).collect();
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(replies[0]["text"].as_str().unwrap().contains("StackFlow incident"), "{replies:?}");
    // The incident is linked to the notable (found by stackflowsync and the playbook button).
    let links = emu.kv_records("stackflow_links");
    assert!(
        links.iter().any(|l| l["event_id"] == "NE-1" && l.get("stackflow_incident_id").is_some()),
        "{links:?}"
    );

    // Another responder escalates the same notable: one escalation per notable.
    emu.socket_send(click("env-f", "UCAROL", "stackflow_escalate", "dk-1", &message, "5.2"));
    wait_for("the second receipt", || interactions(&setup.home).len() == 2);
    assert_eq!(emu.stackflow_incidents().len(), 1);
    let second = &interactions(&setup.home)[1];
    assert_eq!(second["outcome"], "duplicate", "{second}");
    assert!(second["message"].as_str().unwrap().contains("already escalated by alice"), "{second}");
    assert_clean(&listener.stop());
}

#[test]
fn escalate_to_soar_creates_a_container_and_an_outage_spools_it() {
    let setup = setup_with_remotes("[delivery]\nmax_attempts = 1\n");
    let emu = &setup.emu;
    responders(&setup);
    seed(
        emu,
        "stackflow_links",
        &[json!({"_key": "dk-1", "event_id": "NE-1", "search_name": "Brute force",
            "severity": "high", "sid": "sid-9", "escalate_to": "soar", "updated": 1})],
    );
    let message = post_message(emu, "dk-1");
    // SOAR is down for every attempt of this run.
    emu.fault(
        "/rest/container",
        stackflow_emulator::Fault::Status { status: 503, body: String::new(), headers: vec![] },
        10,
    );
    let listener = Listener::start(&setup);
    emu.socket_send(click("env-s", "UALICE", "stackflow_escalate", "dk-1", &message, "6.1"));
    wait_for("the escalation receipt", || interactions(&setup.home).len() == 1);
    let receipt = &interactions(&setup.home)[0];
    assert!(receipt["message"].as_str().unwrap().contains("queued"), "{receipt}");
    assert!(emu.soar_containers().is_empty());
    let pending = crate::delivery::files_in(&setup.home.spool_dir().join("pending"));
    assert_eq!(pending.len(), 1, "the escalation waits in the spool");
    assert_clean(&listener.stop());
    // SOAR is back: the ordinary spool flush delivers it, once.
    emu.clear_faults();
    crate::delivery::flush(&setup.home, emu, &[]).assert_code(0);
    assert_eq!(emu.soar_containers().len(), 1, "{:?}", emu.soar_containers());
    crate::delivery::flush(&setup.home, emu, &[]).assert_code(0);
    assert_eq!(emu.soar_containers().len(), 1, "never twice");
}

/// The approval request posted in the thread of `message`, as a message to click on.
pub(crate) fn approval_request(
    emu: &Emulator,
    message: &(String, String, Value),
) -> (String, String, Value) {
    let found = emu
        .slack_messages()
        .into_iter()
        .rfind(|m| {
            m["thread_ts"] == message.1.as_str() && m.to_string().contains("stackflow_approve")
        })
        .expect("an approval request in the thread");
    (message.0.clone(), found["ts"].as_str().unwrap().into(), found["blocks"].clone())
}

pub(crate) fn button_value(message: &(String, String, Value), action_id: &str) -> String {
    message
        .2
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .find(|e| e["action_id"] == action_id)
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A notable linked to a SOAR container, offering two playbooks; erin may request and
/// approve, dave may approve.
pub(crate) fn playbook_setup() -> (Setup, u64, (String, String, Value)) {
    let setup = setup_with_remotes("");
    let emu = &setup.emu;
    responders(&setup);
    let container = emu.add_soar_container(json!({"name": "Brute force", "label": "events"}));
    seed(
        emu,
        "stackflow_links",
        &[
            json!({"_key": "dk-1", "event_id": "NE-1", "search_name": "Brute force",
                "playbooks": "block_ip,isolate_host", "updated": 1}),
            json!({"_key": "soar:default:NE-1", "event_id": "NE-1", "soar_container_id": container,
                "updated": 2}),
        ],
    );
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
    let message = post_message(emu, "dk-1");
    (setup, container, message)
}

#[test]
fn a_containment_playbook_runs_once_after_a_second_persons_approval() {
    let (setup, container, message) = playbook_setup();
    let emu = &setup.emu;
    let listener = Listener::start(&setup);

    // A playbook the message did not offer is not asked for.
    emu.socket_send(click(
        "env-0",
        "UERIN",
        "stackflow_playbook",
        "dk-1|wipe_disk",
        &message,
        "7.0",
    ));
    wait_for("the refused request", || interactions(&setup.home).len() == 1);
    assert_eq!(interactions(&setup.home)[0]["outcome"], "failed");

    emu.socket_send(click(
        "env-1",
        "UERIN",
        "stackflow_playbook",
        "dk-1|block_ip",
        &message,
        "7.1",
    ));
    wait_for("the request receipt", || interactions(&setup.home).len() == 2);
    let receipt = &interactions(&setup.home)[1];
    assert_eq!(receipt["outcome"], "awaiting_approval", "{receipt}");
    assert_eq!(receipt["playbook"], "block_ip");
    assert_eq!(receipt["requested_by"], "erin");
    let update = emu.requests_to("/api/chat.update").last().unwrap().json();
    assert!(
        update["blocks"]
            .to_string()
            .contains("Containment *block_ip* requested by <@UERIN> (erin)")
    );
    let request = approval_request(emu, &message);
    let value = button_value(&request, "stackflow_approve");
    assert!(!value.contains("block_ip") && !value.contains("NE-1"), "a reference only: {value}");

    // The requester may not approve; a user without stackflow_approve may not either.
    emu.socket_send(click("env-2", "UERIN", "stackflow_approve", &value, &request, "7.2"));
    emu.socket_send(click("env-3", "UCAROL", "stackflow_approve", &value, &request, "7.3"));
    wait_for("two refusals", || interactions(&setup.home).len() == 4);
    let receipts = interactions(&setup.home);
    assert_eq!(receipts[2]["outcome"], "denied");
    assert!(receipts[2]["message"].as_str().unwrap().contains("you requested"), "{receipts:?}");
    assert_eq!(receipts[2]["playbook"], "block_ip");
    assert_eq!(receipts[3]["outcome"], "denied");
    assert!(receipts[3]["message"].as_str().unwrap().contains("stackflow_approve"), "{receipts:?}");
    assert!(emu.soar_playbook_runs().is_empty());
    let ephemeral = emu.slack_ephemeral();
    assert!(ephemeral.iter().any(|e| e["user"] == "UERIN"), "{ephemeral:?}");

    // Another approver: the playbook runs on the notable's container, once.
    emu.socket_send(click("env-4", "UDAVE", "stackflow_approve", &value, &request, "7.4"));
    wait_for("the approval", || interactions(&setup.home).len() == 5);
    let receipt = &interactions(&setup.home)[4];
    assert_eq!(receipt["outcome"], "done", "{receipt}");
    assert_eq!(receipt["approved_by"], "dave");
    assert_eq!(receipt["requested_by"], "erin");
    let runs = emu.soar_playbook_runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["container"], container);
    assert_eq!(runs[0]["playbook"], "block_ip");
    assert_eq!(runs[0]["scope"], "new");
    assert_eq!(receipt["remote_id"], runs[0]["id"].to_string().as_str());
    let update = emu.requests_to("/api/chat.update").last().unwrap().json();
    assert_eq!(update["ts"], request.1.as_str());
    assert!(update["blocks"].to_string().contains("Approved by <@UDAVE> (dave)"), "{update}");

    // Re-delivered, clicked again, or after a restart: never a second run.
    emu.socket_send(click("env-4", "UDAVE", "stackflow_approve", &value, &request, "7.4"));
    emu.socket_send(click("env-5", "UDAVE", "stackflow_approve", &value, &request, "7.5"));
    wait_for("two more receipts", || interactions(&setup.home).len() == 7);
    assert_clean(&listener.stop());
    let listener = Listener::start(&setup);
    emu.socket_send(click("env-6", "UDAVE", "stackflow_approve", &value, &request, "7.6"));
    wait_for("the receipt after the restart", || interactions(&setup.home).len() == 8);
    assert!(interactions(&setup.home)[5..].iter().all(|r| r["outcome"] == "duplicate"));
    assert_eq!(emu.soar_playbook_runs().len(), 1);

    // A second request, denied: recorded, nothing runs.
    emu.socket_send(click(
        "env-7",
        "UERIN",
        "stackflow_playbook",
        "dk-1|isolate_host",
        &message,
        "7.7",
    ));
    wait_for("the second request", || interactions(&setup.home).len() == 9);
    let second = approval_request(emu, &message);
    let value = button_value(&second, "stackflow_deny");
    emu.socket_send(click("env-8", "UDAVE", "stackflow_deny", &value, &second, "7.8"));
    wait_for("the denial", || interactions(&setup.home).len() == 10);
    let receipt = &interactions(&setup.home)[9];
    assert_eq!(receipt["outcome"], "denied", "{receipt}");
    assert_eq!(receipt["playbook"], "isolate_host");
    assert_eq!(emu.soar_playbook_runs().len(), 1);
    let update = emu.requests_to("/api/chat.update").last().unwrap().json();
    assert!(update["blocks"].to_string().contains("Denied by <@UDAVE> (dave)"), "{update}");
    assert_clean(&listener.stop());
}

#[test]
fn a_listener_killed_in_the_middle_of_a_click_does_not_act_on_it_twice() {
    let setup = setup();
    let emu = &setup.emu;
    responders(&setup);
    let message = post_message(emu, "dk-1");
    // The message update hangs: the listener is caught after the notable changed and before
    // the click was recorded as done.
    emu.fault("/api/chat.update", stackflow_emulator::Fault::Delay(Duration::from_secs(5)), 1);
    let listener = Listener::start(&setup);
    emu.socket_send(click("env-k", "UALICE", "stackflow_ack", "dk-1", &message, "9.1"));
    wait_for("the notable update", || emu.notable_updates().len() == 1);
    wait_for("the message update under way", || !emu.requests_to("/api/chat.update").is_empty());
    // A click being handled does not hold up the socket: the next envelope is acknowledged
    // while the first click still waits on Slack.
    emu.socket_send(json!({"envelope_id": "env-next", "type": "events_api", "payload": {}}));
    wait_for("env-next acked", || acked(emu, "env-next") == 1);
    assert!(interactions(&setup.home).is_empty(), "the first click is still under way");
    listener.kill();
    assert!(interactions(&setup.home).is_empty(), "killed before its receipt");
    let records = emu.kv_records("stackflow_interactions");
    assert_eq!(records[0]["state"], "started", "{records:?}");

    // Slack re-delivers the envelope to the restarted listener: acknowledged, not acted on.
    let listener = Listener::start(&setup);
    emu.socket_send(click("env-k", "UALICE", "stackflow_ack", "dk-1", &message, "9.1"));
    wait_for("the duplicate receipt", || interactions(&setup.home).len() == 1);
    let receipt = &interactions(&setup.home)[0];
    assert_eq!(receipt["outcome"], "duplicate", "{receipt}");
    assert!(receipt["message"].as_str().unwrap().contains("interrupted"), "{receipt}");
    assert_eq!(emu.notable_updates().len(), 1, "the notable changed once");
    assert_eq!(acked(emu, "env-k"), 2);
    assert_clean(&listener.stop());
}

#[test]
fn an_approved_playbook_whose_answer_is_lost_runs_once() {
    let (setup, container, message) = playbook_setup();
    let emu = &setup.emu;
    let listener = Listener::start(&setup);
    emu.socket_send(click(
        "env-1",
        "UERIN",
        "stackflow_playbook",
        "dk-1|block_ip",
        &message,
        "8.1",
    ));
    wait_for("the request receipt", || interactions(&setup.home).len() == 1);
    let request = approval_request(emu, &message);
    let value = button_value(&request, "stackflow_approve");
    // SOAR queues the run, then the connection is reset before the answer: a blind retry
    // would start the containment a second time.
    emu.fault("/rest/playbook_run", Fault::ResetAfterProcessing, 1);
    emu.socket_send(click("env-2", "UDAVE", "stackflow_approve", &value, &request, "8.2"));
    wait_for("the approval", || interactions(&setup.home).len() == 2);
    let receipt = &interactions(&setup.home)[1];
    let runs = emu.soar_playbook_runs();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["container"], container);
    assert_eq!(receipt["outcome"], "done", "{receipt}");
    assert_eq!(receipt["remote_id"], runs[0]["id"].to_string().as_str());

    // A refused answer (503) is retried: SOAR shows no new run, so the request is sent again.
    emu.socket_send(click(
        "env-3",
        "UERIN",
        "stackflow_playbook",
        "dk-1|isolate_host",
        &message,
        "8.3",
    ));
    wait_for("the second request", || interactions(&setup.home).len() == 3);
    let second = approval_request(emu, &message);
    let value = button_value(&second, "stackflow_approve");
    emu.fault(
        "/rest/playbook_run",
        Fault::Status { status: 503, body: "{}".into(), headers: vec![] },
        1,
    );
    emu.socket_send(click("env-4", "UDAVE", "stackflow_approve", &value, &second, "8.4"));
    wait_for("the second approval", || interactions(&setup.home).len() == 4);
    let receipt = &interactions(&setup.home)[3];
    assert_eq!(receipt["outcome"], "done", "{receipt}");
    let runs = emu.soar_playbook_runs();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[1]["playbook"], "isolate_host");
    assert_eq!(
        emu.requests_to("/rest/playbook_run").iter().filter(|r| r.method == "POST").count(),
        3,
        "one lost answer (not retried), one 503 and its retry"
    );
    assert_clean(&listener.stop());
}
