//! The war room (PRODUCT §17) end to end through the installed `stackflow_slack` action: a
//! high-risk alert routed with `war_room = true` opens one channel named per §17, invites the
//! user group's members and the listed users, posts and pins the summary and links the room
//! in the alert's thread; a second alert of the same notable reuses it; `name_taken` is
//! answered with another name; a workspace that forbids channels leaves the alert delivered
//! and says why in its thread.

use crate::slack::{posted, run_slack, setup};
use crate::support::*;
use crate::triage::rba_notable;
use serde_json::{Value, json};
use stackflow_emulator::{Emulator, Fault};

const ROUTE: &str = "\n[route:10_high_risk]\nmin_risk_score = 100\nchannel = #soc-risk\nwar_room = true\n\n\
    [slack_response]\nwar_room_prefix = ir\nwar_room_users = U0AAA1,U0BBB2\nwar_room_usergroup = S0ONCALL\n";

fn war_room_setup() -> (SplunkHome, Emulator) {
    let (home, emulator) = setup();
    home.append_local_conf(ROUTE);
    emulator.add_slack_usergroup("S0ONCALL", &["U0CCC3", "U0AAA1"]);
    (home, emulator)
}

fn notable(event_id: &str) -> Vec<(&'static str, Cell)> {
    let mut row = rba_notable();
    row.retain(|(name, _)| *name != "event_id");
    row.push(("event_id", one(event_id)));
    row
}

fn today() -> String {
    let (y, m, d, ..) =
        stackflow::civil_time::civil_from_unix(stackflow::civil_time::now_unix_secs() as i64);
    format!("{y:04}{m:02}{d:02}")
}

/// Thread replies posted (chat.postMessage with thread_ts).
fn thread_replies(emulator: &Emulator) -> Vec<Value> {
    posted(emulator).into_iter().filter(|body| body.get("thread_ts").is_some()).collect()
}

#[test]
fn a_high_risk_alert_opens_one_room_and_a_second_alert_reuses_it() {
    let (home, emulator) = war_room_setup();
    let run = run_slack(
        &home,
        &emulator,
        &scheduler_sid(51),
        &[notable("RBA-WR-1")],
        json!({"mode": "row"}),
    );
    run.assert_code(0);
    let rooms = emulator.slack_created_channels();
    assert_eq!(rooms.len(), 1, "{rooms:?}");
    let room = &rooms[0];
    let name = room["name"].as_str().unwrap();
    let expected =
        format!("ir-{}-risk-threshold-exceeded-for-object-over-24-hour-period-", today());
    assert!(name.starts_with(&expected), "{name} vs {expected}");
    let suffix = &name[expected.len()..];
    assert!(suffix.len() == 4 && suffix.bytes().all(|b| b.is_ascii_hexdigit()), "{name}");
    assert!(name.len() <= 80, "{name}");
    let mut members: Vec<String> = emulator.slack_channel_members(room["id"].as_str().unwrap());
    members.sort();
    assert_eq!(members, ["U0AAA1", "U0BBB2", "U0CCC3"], "listed users and the group, once each");

    let room_id = room["id"].as_str().unwrap();
    let pins = emulator.slack_pins(room_id);
    assert_eq!(pins.len(), 1, "{pins:?}");
    let pinned = emulator
        .slack_messages()
        .into_iter()
        .find(|m| m["channel"] == room_id && m["ts"] == pins[0].as_str())
        .expect("the pinned message");
    let flat = pinned.to_string();
    assert!(flat.contains("War room for"), "{flat}");
    assert!(flat.contains("Open in Splunk"), "links: {flat}");
    assert!(!flat.contains("stackflow_ack"), "no response buttons in the room: {flat}");

    let alert = posted(&emulator).into_iter().find(|b| b["channel"] == "#soc-risk").unwrap();
    assert!(alert.to_string().contains("Risk Threshold"), "{alert}");
    let replies = thread_replies(&emulator);
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(replies[0]["text"].as_str().unwrap().contains(&format!("<#{room_id}>")), "{replies:?}");
    let claims = emulator.kv_records("stackflow_interactions");
    assert_eq!(claims.len(), 1, "{claims:?}");
    assert_eq!(claims[0]["_key"], "war_room:RBA-WR-1");
    assert_eq!(claims[0]["channel_id"], room_id);
    let receipts = home.receipts();
    assert!(
        receipts
            .iter()
            .any(|r| r["message"].as_str().unwrap_or("").contains(&format!("war room {name}"))),
        "{receipts:?}"
    );

    // The same notable again: no second room, the existing one linked in the new thread.
    run_slack(&home, &emulator, &scheduler_sid(52), &[notable("RBA-WR-1")], json!({"mode": "row"}))
        .assert_code(0);
    assert_eq!(emulator.slack_created_channels().len(), 1, "one room per notable");
    let replies = thread_replies(&emulator);
    assert_eq!(replies.len(), 2);
    assert!(replies[1]["text"].as_str().unwrap().contains(&format!("<#{room_id}>")));
    assert_eq!(emulator.slack_pins(room_id).len(), 1);

    // Another notable: another room; a low-risk one: none.
    let mut low = notable("RBA-LOW");
    low.retain(|(name, _)| *name != "risk_score");
    low.push(("risk_score", one("20")));
    run_slack(
        &home,
        &emulator,
        &scheduler_sid(53),
        &[notable("RBA-WR-2"), low],
        json!({"mode": "row"}),
    )
    .assert_code(0);
    assert_eq!(emulator.slack_created_channels().len(), 2);
}

#[test]
fn a_taken_name_gets_another_suffix() {
    let (home, emulator) = war_room_setup();
    let taken = json!({"ok": false, "error": "name_taken"}).to_string();
    emulator.fault(
        "/api/conversations.create",
        Fault::Status {
            status: 200,
            body: taken,
            headers: vec![("Content-Type".into(), "application/json".into())],
        },
        2,
    );
    run_slack(&home, &emulator, &scheduler_sid(54), &[notable("RBA-WR-3")], json!({"mode": "row"}))
        .assert_code(0);
    let creates = emulator.requests_to("/api/conversations.create");
    assert_eq!(creates.len(), 3, "two taken, the third made");
    let names: Vec<String> =
        creates.iter().map(|r| r.json()["name"].as_str().unwrap().to_string()).collect();
    assert_ne!(names[0], names[2]);
    let rooms = emulator.slack_created_channels();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0]["name"], names[2].as_str());
}

#[test]
fn a_workspace_that_forbids_channels_keeps_the_alert_and_says_why() {
    let (home, emulator) = war_room_setup();
    emulator.set_slack_method_error("conversations.create", Some("restricted_action"));
    let run = run_slack(
        &home,
        &emulator,
        &scheduler_sid(55),
        &[notable("RBA-WR-4")],
        json!({"mode": "row"}),
    );
    run.assert_code(0);
    assert!(emulator.slack_created_channels().is_empty());
    let replies = thread_replies(&emulator);
    assert_eq!(replies.len(), 1, "{replies:?}");
    let text = replies[0]["text"].as_str().unwrap();
    assert!(text.contains("restricted_action") && text.contains("admin"), "{text}");
    assert!(run.stderr.contains("restricted_action"), "{}", run.stderr);
    assert!(emulator.kv_records("stackflow_interactions").is_empty(), "the claim is given back");
    // Once allowed, the next alert of the notable opens the room.
    emulator.set_slack_method_error("conversations.create", None);
    run_slack(&home, &emulator, &scheduler_sid(56), &[notable("RBA-WR-4")], json!({"mode": "row"}))
        .assert_code(0);
    assert_eq!(emulator.slack_created_channels().len(), 1);
}

/// `stackflow slack manifest`'s bot scopes.
fn manifest_scopes(home: &SplunkHome) -> Vec<String> {
    let run = home.run_stackflow(&["slack", "manifest", "--account", "default"], b"");
    run.assert_code(0);
    let manifest: Value = serde_json::from_str(&run.stdout).expect("the manifest is JSON");
    serde_json::from_value(manifest["oauth_config"]["scopes"]["bot"].clone()).unwrap()
}

const WAR_ROOM_SCOPES: [&str; 4] =
    ["channels:manage", "groups:write", "pins:write", "usergroups:read"];

#[test]
fn the_manifest_and_check_ask_for_war_room_scopes_only_when_configured() {
    let (home, emulator) = setup();
    let scopes = manifest_scopes(&home);
    assert!(scopes.iter().any(|s| s == "chat:write"), "{scopes:?}");
    for scope in WAR_ROOM_SCOPES.iter().chain(&["commands"]) {
        assert!(!scopes.iter().any(|s| s == scope), "{scope} without the feature: {scopes:?}");
    }
    let granted = [
        "chat:write",
        "chat:write.public",
        "channels:history",
        "groups:history",
        "channels:read",
        "groups:read",
    ];
    emulator.set_slack_scopes(&granted);
    let url = emulator.url();
    let check = |home: &SplunkHome| {
        let run = home.run_stackflow(
            &["check", "--splunkd-uri", &url],
            format!("{SESSION_KEY}\n").as_bytes(),
        );
        run.stdout
            .lines()
            .filter(|line| line.starts_with("WARN"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let warned = check(&home);
    assert!(
        WAR_ROOM_SCOPES.iter().all(|scope| warned.iter().all(|line| !line.contains(scope))),
        "{warned:?}"
    );

    home.append_local_conf(ROUTE);
    let scopes = manifest_scopes(&home);
    for scope in WAR_ROOM_SCOPES {
        assert!(scopes.iter().any(|s| s == scope), "{scope}: {scopes:?}");
    }
    assert!(!scopes.iter().any(|s| s == "commands"), "no triage template: {scopes:?}");
    let warned = check(&home);
    for scope in WAR_ROOM_SCOPES {
        assert!(
            warned.iter().any(|line| line.contains(&format!("the {scope} scope"))),
            "{scope}: {warned:?}"
        );
    }
}

#[test]
fn concurrent_alerts_of_one_notable_make_one_room() {
    let (home, emulator) = war_room_setup();
    std::thread::scope(|scope| {
        for n in 0..4u32 {
            let (home, emulator) = (&home, &emulator);
            scope.spawn(move || {
                run_slack(
                    home,
                    emulator,
                    &scheduler_sid(60 + n),
                    &[notable("RBA-WR-5")],
                    json!({"mode": "row"}),
                )
                .assert_code(0);
            });
        }
    });
    assert_eq!(emulator.slack_created_channels().len(), 1, "one room, whichever run won the claim");
    assert_eq!(emulator.requests_to("/api/conversations.create").len(), 1);
    let receipts = home.receipts();
    let notes: Vec<&str> = receipts
        .iter()
        .filter_map(|r| r["message"].as_str())
        .filter(|m| m.contains("war room"))
        .collect();
    assert_eq!(notes.len(), 4, "every alert says where the room is: {notes:?}");
}

mod button {
    //! The `stackflow_war_room` button through the installed listener.

    use crate::slack_socket::{
        Listener, assert_clean, click, interactions, post_message, responders, setup, wait_for,
    };
    use serde_json::Value;

    #[test]
    fn a_click_opens_the_room_and_a_second_click_links_it() {
        let setup = setup();
        let emu = &setup.emu;
        setup.home.append_local_conf(
            "\n[slack_response]\nwar_room_users = U0AAA1\nwar_room_usergroup = S0ONCALL\n",
        );
        emu.add_slack_usergroup("S0ONCALL", &["U0CCC3"]);
        responders(&setup);
        let message = post_message(emu, "dk-1");
        let listener = Listener::start(&setup);
        emu.socket_send(click("env-w1", "UALICE", "stackflow_war_room", "dk-1", &message, "200.1"));
        wait_for("the war room receipt", || interactions(&setup.home).len() == 1);
        let rooms = emu.slack_created_channels();
        assert_eq!(rooms.len(), 1, "{rooms:?}");
        let name = rooms[0]["name"].as_str().unwrap();
        assert!(name.starts_with("inc-") && name.contains("-brute-force-"), "{name}");
        let room_id = rooms[0]["id"].as_str().unwrap().to_string();
        let mut members = emu.slack_channel_members(&room_id);
        members.sort();
        assert_eq!(members, ["U0AAA1", "U0CCC3", "UALICE"], "the clicker, the list, the group");
        assert_eq!(emu.slack_pins(&room_id).len(), 1);
        let receipt = &interactions(&setup.home)[0];
        assert_eq!(receipt["action"], "war_room", "{receipt}");
        assert_eq!(receipt["outcome"], "done", "{receipt}");
        assert_eq!(receipt["event_id"], "NE-1", "{receipt}");
        assert_eq!(receipt["remote_id"], room_id.as_str(), "{receipt}");
        let replies: Vec<Value> = emu
            .slack_messages()
            .into_iter()
            .filter(|m| m["thread_ts"] == message.1.as_str())
            .collect();
        assert_eq!(replies.len(), 1, "the room's link is the one reply: {replies:?}");
        assert!(replies[0]["text"].as_str().unwrap().contains(&format!("<#{room_id}>")));

        // Another user clicks: the same room, linked again, that user invited.
        emu.socket_send(click("env-w2", "UCAROL", "stackflow_war_room", "dk-1", &message, "200.2"));
        wait_for("the second receipt", || interactions(&setup.home).len() == 2);
        assert_eq!(emu.slack_created_channels().len(), 1, "one room per notable");
        assert!(emu.slack_channel_members(&room_id).contains(&"UCAROL".to_string()));
        let second = &interactions(&setup.home)[1];
        assert_eq!(second["action"], "war_room");
        assert_eq!(second["outcome"], "done");
        assert!(second["message"].as_str().unwrap().contains("linked"), "{second}");

        // A refused user changes nothing.
        emu.socket_send(click("env-w3", "UBOB", "stackflow_war_room", "dk-1", &message, "200.3"));
        wait_for("the refusal", || interactions(&setup.home).len() == 3);
        assert_eq!(interactions(&setup.home)[2]["outcome"], "denied");
        assert_eq!(emu.slack_created_channels().len(), 1);
        assert_clean(&listener.stop());
    }

    #[test]
    fn a_missing_scope_is_a_failed_click_with_a_clear_reply() {
        let setup = setup();
        let emu = &setup.emu;
        responders(&setup);
        emu.set_slack_method_error("conversations.create", Some("missing_scope"));
        let message = post_message(emu, "dk-1");
        let listener = Listener::start(&setup);
        emu.socket_send(click("env-w4", "UALICE", "stackflow_war_room", "dk-1", &message, "201.1"));
        wait_for("the receipt", || interactions(&setup.home).len() == 1);
        let receipt = &interactions(&setup.home)[0];
        assert_eq!(
            (receipt["action"].as_str(), receipt["outcome"].as_str()),
            (Some("war_room"), Some("failed"))
        );
        assert!(receipt["message"].as_str().unwrap().contains("channels:manage"), "{receipt}");
        let replies: Vec<String> = emu
            .slack_messages()
            .into_iter()
            .filter(|m| m["thread_ts"] == message.1.as_str())
            .filter_map(|m| m["text"].as_str().map(str::to_string))
            .collect();
        assert!(
            replies
                .iter()
                .any(|text| text.contains("missing_scope") || text.contains("war-room scope")),
            "{replies:?}"
        );
        assert!(emu.slack_created_channels().is_empty());
        assert_clean(&listener.stop());
    }
}
