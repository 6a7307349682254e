//! The Slack emulator answers as Slack's Web API specification says: scopes with `needed` and
//! `provided`, the scope headers, membership, archived channels, cursor paging and
//! `ratelimited` on any method (requests handed to `handle` directly).

use super::{Slack, apply_config, handle};
use crate::http::{Request, Response};
use serde_json::{Value, json};

/// Write methods take JSON; read methods take a form (as Slack's Web API does).
fn call(s: &mut Slack, method: &str, token: &str, body: Value) -> (Response, Value) {
    let (content_type, body) = if method.starts_with("chat.") {
        ("application/json", body.to_string())
    } else {
        let pairs: Vec<String> = body
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| {
                format!("{k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_string))
            })
            .collect();
        ("application/x-www-form-urlencoded", pairs.join("&"))
    };
    let req = Request {
        method: "POST".into(),
        path: format!("/api/{method}"),
        query: String::new(),
        headers: vec![
            ("Authorization".into(), format!("Bearer {token}")),
            ("Content-Type".into(), content_type.into()),
        ],
        body: body.into_bytes(),
        keep_alive: false,
    };
    let response = handle(s, &req);
    let json = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    (response, json)
}

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    crate::http::header(&response.headers, name)
}

#[test]
fn scopes_are_checked_and_reported() {
    let mut s = Slack::new();
    apply_config(&mut s, &json!({"slack_scopes": ["chat:write", "chat:write.public"]}));
    let (response, json) =
        call(&mut s, "conversations.history", "xoxb-test", json!({"channel": "C0123456789"}));
    assert_eq!(json["error"], "missing_scope");
    assert_eq!(json["needed"], "channels:history");
    assert_eq!(json["provided"], "chat:write,chat:write.public");
    assert_eq!(header(&response, "x-oauth-scopes"), Some("chat:write,chat:write.public"));
    assert!(header(&response, "x-accepted-oauth-scopes").unwrap().contains("channels:history"));
    let (_, json) =
        call(&mut s, "conversations.list", "xoxb-test", json!({"types": "public_channel"}));
    assert_eq!(
        (json["error"].as_str(), json["needed"].as_str()),
        (Some("missing_scope"), Some("channels:read"))
    );
    let (_, json) = call(&mut s, "users.info", "xoxb-test", json!({"user": "U1"}));
    assert_eq!(json["needed"], "users:read");
    let (_, json) = call(&mut s, "auth.test", "xoxb-test", json!({}));
    assert_eq!(json["ok"], true, "auth.test needs no scope");
    let (_, json) = call(&mut s, "auth.test", "xoxb-nope", json!({}));
    assert_eq!(json["error"], "invalid_auth");
}

#[test]
fn membership_archived_channels_and_public_posting() {
    let mut s = Slack::new();
    apply_config(
        &mut s,
        &json!({"slack_member_channels": [], "slack_archived_channels": ["#old"]}),
    );
    let post = |s: &mut Slack, channel: &str| {
        call(s, "chat.postMessage", "xoxb-test", json!({"channel": channel, "text": "t"})).1
    };
    assert_eq!(post(&mut s, "#soc")["ok"], true, "chat:write.public posts without joining");
    let id = post(&mut s, "#soc")["channel"].as_str().unwrap().to_string();
    let (_, json) = call(&mut s, "conversations.history", "xoxb-test", json!({"channel": id}));
    assert_eq!(json["error"], "not_in_channel");
    assert_eq!(post(&mut s, "#old")["error"], "is_archived");
    s.scopes.retain(|scope| scope != "chat:write.public");
    assert_eq!(post(&mut s, "#soc")["error"], "not_in_channel");
}

#[test]
fn history_and_list_page_with_cursors() {
    let mut s = Slack::new();
    s.known = Some((0..5).map(|n| format!("#c{n}")).collect());
    for n in 0..5 {
        let mut msg = serde_json::Map::new();
        msg.insert("text".into(), json!(format!("m{n}")));
        s.store("#c0", msg);
    }
    let id = super::channel_id("#c0");
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let (_, json) = call(
            &mut s,
            "conversations.history",
            "xoxb-test",
            json!({"channel": id, "limit": 2, "cursor": cursor}),
        );
        seen.extend(json["messages"].as_array().unwrap().iter().map(|m| m["text"].clone()));
        cursor = json["response_metadata"]["next_cursor"].as_str().unwrap().to_string();
        assert_eq!(json["has_more"], !cursor.is_empty());
        if cursor.is_empty() {
            break;
        }
    }
    assert_eq!(seen, ["m4", "m3", "m2", "m1", "m0"], "newest first, every page");
    let (_, json) = call(
        &mut s,
        "conversations.list",
        "xoxb-test",
        json!({"types": "public_channel,private_channel", "limit": 3}),
    );
    assert_eq!(json["channels"].as_array().unwrap().len(), 3);
    assert!(!json["response_metadata"]["next_cursor"].as_str().unwrap().is_empty());
}

#[test]
fn any_method_can_be_rate_limited() {
    let mut s = Slack::new();
    apply_config(&mut s, &json!({"slack_ratelimited": {"auth.test": 1}}));
    let (response, json) = call(&mut s, "auth.test", "xoxb-test", json!({}));
    assert_eq!((response.status, json["error"].as_str()), (429, Some("ratelimited")));
    assert_eq!(header(&response, "retry-after"), Some("1"));
    assert_eq!(call(&mut s, "auth.test", "xoxb-test", json!({})).1["ok"], true, "once");
}
