//! Slack as the real Slack answers (PRODUCT §15), end to end: the installed action and
//! `spool flush` against the Slack emulator with the scopes, membership, archived channels,
//! paging and `ratelimited` answers Slack's Web API specification documents. A known answer
//! (429) is not a lost one; a look-up that cannot work for a lasting reason re-sends with a
//! WARN; look-ups page to the end; error codes land on their documented exit codes; a storm
//! message past its edit window is posted afresh; `check` names the scopes the token lacks.

use crate::delivery::flush;
use crate::slack::{posted, run_slack, setup};
use crate::support::*;
use crate::triage::brute_force_notable;
use serde_json::{Value, json};
use stackflow_emulator::{Emulator, Fault};

const CHANNEL: &str = "#soc-alerts";

fn rows() -> Vec<Vec<(&'static str, Cell)>> {
    vec![vec![
        ("search_name", one("Excessive failed logins")),
        ("src", one("10.1.2.3")),
        ("severity", one("high")),
    ]]
}

/// `[delivery] max_attempts` for this home (the alert's own retries within its run).
fn attempts(home: &SplunkHome, n: u32) {
    let conf = home.app_dir().join("local").join("stackflow.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    let text =
        text.replace("max_attempts = 5", &format!("max_attempts = {n}\nretry_base_s = 0.05"));
    std::fs::write(conf, text).unwrap();
}

/// The scopes `docs/slack.md` once asked for, and nothing else; the bot has joined no channel.
fn write_only(emulator: &Emulator) {
    emulator.set_slack_scopes(&["chat:write", "chat:write.public"]);
    emulator.set_slack_member_channels(Some(&[]));
}

fn our_messages(emulator: &Emulator) -> Vec<Value> {
    emulator
        .slack_messages()
        .into_iter()
        .filter(|message| message["metadata"]["event_type"] == "stackflow_alert")
        .collect()
}

#[test]
fn a_429_is_an_answer_and_the_next_flush_posts_exactly_once() {
    let (home, emulator) = setup();
    attempts(&home, 1);
    write_only(&emulator);
    emulator.slack_ratelimit("chat.postMessage", 1, 0);
    let run = run_slack(&home, &emulator, &scheduler_sid(1), &rows(), json!({}));
    run.assert_code(7);
    assert!(emulator.slack_messages().is_empty());
    let flushed = flush(&home, &emulator, &["--all"]);
    flushed.assert_code(0);
    assert_eq!(our_messages(&emulator).len(), 1, "{}", flushed.stderr);
    assert!(
        emulator.requests_to("/api/conversations.").is_empty(),
        "a 429 needs no look-up: {}",
        flushed.stderr
    );
    let receipts = home.receipts();
    assert!(receipts.iter().any(|r| r["outcome"] == "delivered"), "{receipts:?}");
}

#[test]
fn a_lost_answer_whose_look_up_cannot_work_is_sent_again_with_a_warning() {
    for (case, setup_emulator) in [
        ("missing_scope", write_only as fn(&Emulator)),
        ("not_in_channel", |emulator: &Emulator| emulator.set_slack_member_channels(Some(&[]))),
    ] {
        let (home, emulator) = setup();
        attempts(&home, 3);
        setup_emulator(&emulator);
        emulator.fault("/api/chat.postMessage", Fault::ResetAfterProcessing, 1);
        let run = run_slack(&home, &emulator, &scheduler_sid(2), &rows(), json!({}));
        run.assert_code(0);
        assert_eq!(our_messages(&emulator).len(), 2, "{case}: sent again: {}", run.stderr);
        let warning = run
            .stderr
            .lines()
            .find(|line| line.contains("WARN") && line.contains("possible duplicate"))
            .unwrap_or_else(|| panic!("{case}: no WARN naming the duplicate: {}", run.stderr));
        assert!(warning.contains(case), "{case}: {warning}");
        assert!(warning.contains(CHANNEL), "{case}: {warning}");
    }
}

#[test]
fn the_look_up_pages_through_channels_and_history_to_find_the_message() {
    let (home, emulator) = setup();
    attempts(&home, 1);
    // 2,500 channels: ours is on the third page of conversations.list (1,000 a page).
    let mut channels: Vec<String> = (0..2_499).map(|n| format!("#team-{n:04}")).collect();
    channels.push(CHANNEL.to_string());
    let refs: Vec<&str> = channels.iter().map(String::as_str).collect();
    emulator.set_slack_known_channels(&refs);
    emulator.fault("/api/chat.postMessage", Fault::ResetAfterProcessing, 1);
    run_slack(&home, &emulator, &scheduler_sid(3), &rows(), json!({})).assert_code(7);
    assert_eq!(our_messages(&emulator).len(), 1, "the lost answer's message");
    // 450 newer messages: ours is on the third page of conversations.history (200 a page).
    for n in 0..450 {
        emulator.add_slack_message(CHANNEL, &format!("chatter {n}"), None);
    }
    let flushed = flush(&home, &emulator, &["--all"]);
    flushed.assert_code(0);
    assert_eq!(our_messages(&emulator).len(), 1, "found, not posted again: {}", flushed.stderr);
    assert_eq!(emulator.requests_to("/api/conversations.history").len(), 3);
    assert_eq!(emulator.requests_to("/api/conversations.list").len(), 3);
    let receipts = home.receipts();
    assert!(receipts.iter().any(|r| r["outcome"] == "duplicate"), "{receipts:?}");
}

#[test]
fn slack_error_codes_land_on_their_documented_exit_codes() {
    // (how the emulator refuses, expected exit) — Slack Web API spec, chat.postMessage errors.
    let cases: [(&str, i32); 9] = [
        ("is_archived", 4),
        ("channel_not_found", 4),
        ("restricted_action_read_only_channel", 4),
        ("msg_too_long", 6),
        ("too_many_attachments", 6),
        ("invalid_auth", 5),
        ("not_allowed_token_type", 5),
        ("ekm_access_denied", 5),
        ("team_added_to_org", 7),
    ];
    for (n, (code, exit)) in cases.into_iter().enumerate() {
        let (home, emulator) = setup();
        attempts(&home, 1);
        if code == "is_archived" {
            emulator.set_slack_archived_channels(&[CHANNEL]);
        } else {
            emulator.set_slack_method_error("chat.postMessage", Some(code));
        }
        let run = run_slack(&home, &emulator, &scheduler_sid(10 + n as u32), &rows(), json!({}));
        assert_eq!(run.code, exit, "{code}: {}", run.stderr);
        assert!(run.stderr.contains(code), "{code}: {}", run.stderr);
        assert!(emulator.slack_messages().is_empty());
    }
}

#[test]
fn a_storm_message_past_its_edit_window_is_posted_afresh() {
    let (home, emulator) = setup();
    let params = json!({"mode": "row", "aggregate_window_s": "600"});
    let row = |n: u32| {
        let mut row = brute_force_notable();
        row.retain(|(name, _)| *name != "event_id");
        row.push(("event_id", one(&format!("BF-{n}"))));
        row
    };
    run_slack(&home, &emulator, &scheduler_sid(30), &[row(0)], params.clone()).assert_code(0);
    assert_eq!(posted(&emulator).len(), 1);
    for (n, code) in [(1, "edit_window_closed"), (2, "is_inactive")] {
        emulator.set_slack_method_error("chat.update", Some(code));
        let run = run_slack(&home, &emulator, &scheduler_sid(30 + n), &[row(n)], params.clone());
        run.assert_code(0);
        assert_eq!(posted(&emulator).len(), 1 + n as usize, "{code}: {}", run.stderr);
    }
    // The fresh message starts the storm again: the next alert updates it.
    emulator.set_slack_method_error("chat.update", None);
    run_slack(&home, &emulator, &scheduler_sid(40), &[row(9)], params).assert_code(0);
    assert_eq!(posted(&emulator).len(), 3);
    let update = emulator.requests_to("/api/chat.update").last().map(|request| request.json());
    let newest = our_messages(&emulator).last().cloned().unwrap();
    assert_eq!(update.unwrap()["ts"], newest["ts"], "the newest post is the storm's message");
}

#[test]
fn check_names_each_scope_the_bot_token_lacks() {
    let emulator = Emulator::start();
    let (home, ca) = SplunkHome::trusting(&emulator);
    home.write_local_conf(&format!(
        "[slack:default]\napi_url = {}/api\nchannel = {CHANNEL}\nca_file = {}\n",
        emulator.url(),
        ca.display()
    ));
    emulator.set_secret("stackflow", "slack.default", "xoxb-test");
    emulator.set_slack_scopes(&["chat:write", "chat:write.public", "channels:read"]);
    let url = emulator.url();
    let run = home
        .run_stackflow(&["check", "--splunkd-uri", &url], format!("{SESSION_KEY}\n").as_bytes());
    println!("stdout:\n{}stderr:\n{}", run.stdout, run.stderr);
    run.assert_levelled_stderr().assert_no_secret(&["xoxb-test"]);
    let warned: Vec<&str> = run.stdout.lines().filter(|line| line.starts_with("WARN")).collect();
    for scope in ["channels:history", "groups:history", "groups:read"] {
        assert!(warned.iter().any(|line| line.contains(scope)), "{scope}: {warned:?}");
    }
    for granted in ["chat:write ", "channels:read "] {
        assert!(warned.iter().all(|line| !line.contains(granted)), "{granted}: {warned:?}");
    }
    assert!(emulator.slack_messages().is_empty(), "check posts nothing");
    // The installed app offers the manifest that grants them all.
    let manifest = home.app_dir().join("appserver/static/slack_app_manifest.json");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(manifest).unwrap()).unwrap();
    let bot = manifest["oauth_config"]["scopes"]["bot"].as_array().unwrap();
    for scope in ["chat:write", "channels:history", "groups:history", "groups:read"] {
        assert!(bot.iter().any(|granted| granted == scope), "{scope}");
    }
}
