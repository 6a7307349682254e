//! The war room's Slack methods answer as the spec says: name rules, `name_taken`, scopes by
//! channel type, invitations, user groups and pins (requests handed to `handle` directly).

use super::super::{Slack, apply_config, handle};
use crate::http::Request;
use serde_json::{Value, json};

fn call(s: &mut Slack, method: &str, body: Value) -> Value {
    let req = Request {
        method: "POST".into(),
        path: format!("/api/{method}"),
        query: String::new(),
        headers: vec![
            ("Authorization".into(), "Bearer xoxb-test".into()),
            ("Content-Type".into(), "application/json".into()),
        ],
        body: body.to_string().into_bytes(),
        keep_alive: false,
    };
    serde_json::from_slice(&handle(s, &req).body).unwrap()
}

#[test]
fn channel_names_follow_slacks_rules() {
    let mut s = Slack::new();
    let long = "a".repeat(81);
    for (name, code) in [
        ("", "invalid_name_required"),
        (long.as_str(), "invalid_name_maxlength"),
        ("Inc-1", "invalid_name_specials"),
        ("inc 1", "invalid_name_specials"),
        ("inc.1", "invalid_name_specials"),
        ("--_", "invalid_name_punctuation"),
    ] {
        assert_eq!(call(&mut s, "conversations.create", json!({"name": name}))["error"], code);
    }
    let name = format!("inc-20240101-brute_force-{}", "a".repeat(55));
    assert_eq!(name.len(), 80);
    let made = call(&mut s, "conversations.create", json!({"name": name}));
    assert_eq!(
        (made["ok"].as_bool(), made["channel"]["name"].as_str()),
        (Some(true), Some(name.as_str()))
    );
    assert_eq!(call(&mut s, "conversations.create", json!({"name": name}))["error"], "name_taken");
    apply_config(
        &mut s,
        &json!({"slack_method_errors": {"conversations.create": "restricted_action"}}),
    );
    assert_eq!(
        call(&mut s, "conversations.create", json!({"name": "inc-2"}))["error"],
        "restricted_action"
    );
}

#[test]
fn scopes_follow_the_channel_type() {
    let mut s = Slack::new();
    apply_config(&mut s, &json!({"slack_scopes": ["chat:write", "groups:write"]}));
    let refused = call(&mut s, "conversations.create", json!({"name": "inc-1"}));
    assert_eq!(
        (refused["error"].as_str(), refused["needed"].as_str()),
        (Some("missing_scope"), Some("channels:manage"))
    );
    let private =
        call(&mut s, "conversations.create", json!({"name": "inc-1", "is_private": true}));
    assert_eq!(private["channel"]["is_private"], true);
    let id = private["channel"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        call(&mut s, "conversations.invite", json!({"channel": id, "users": "U1"}))["ok"],
        true
    );
    let denied = call(&mut s, "pins.add", json!({"channel": id, "timestamp": "1.2"}));
    assert_eq!(denied["needed"], "pins:write");
    let denied = call(&mut s, "usergroups.users.list", json!({"usergroup": "S1"}));
    assert_eq!(denied["needed"], "usergroups:read");
}

#[test]
fn invitations_user_groups_and_pins() {
    let mut s = Slack::new();
    let made = call(&mut s, "conversations.create", json!({"name": "inc-7"}));
    let id = made["channel"]["id"].as_str().unwrap().to_string();
    let invite = |s: &mut Slack, users: &str| {
        call(s, "conversations.invite", json!({"channel": id, "users": users}))
    };
    assert_eq!(invite(&mut s, "U1, U2")["ok"], true);
    assert_eq!(invite(&mut s, "U2,U3")["error"], "already_in_channel");
    assert_eq!(invite(&mut s, "U0EMULATOR")["error"], "cant_invite_self");
    assert_eq!(invite(&mut s, "")["error"], "no_user");
    let unknown =
        call(&mut s, "conversations.invite", json!({"channel": "C0NOSUCH00", "users": "U1"}));
    assert_eq!(unknown["error"], "channel_not_found");
    apply_config(&mut s, &json!({"slack_usergroups": {"S0ONCALL": ["U7", "U8"]}}));
    let group = call(&mut s, "usergroups.users.list", json!({"usergroup": "S0ONCALL"}));
    assert_eq!(group["users"], json!(["U7", "U8"]));
    assert_eq!(
        call(&mut s, "usergroups.users.list", json!({"usergroup": "S9"}))["error"],
        "no_such_subteam"
    );
    let posted = call(&mut s, "chat.postMessage", json!({"channel": id, "text": "summary"}));
    let ts = posted["ts"].as_str().unwrap().to_string();
    assert_eq!(call(&mut s, "pins.add", json!({"channel": id, "timestamp": ts}))["ok"], true);
    assert_eq!(
        call(&mut s, "pins.add", json!({"channel": id, "timestamp": ts}))["error"],
        "already_pinned"
    );
    assert_eq!(
        call(&mut s, "pins.add", json!({"channel": id, "timestamp": "9.9"}))["error"],
        "message_not_found"
    );
    assert_eq!(call(&mut s, "pins.add", json!({"channel": id}))["error"], "no_item_specified");
    let snapshot = super::snapshot(&s);
    assert_eq!(snapshot["created"][0]["members"], json!(["U1", "U2"]));
    assert_eq!(snapshot["created"][0]["pins"], json!([ts]));
}
