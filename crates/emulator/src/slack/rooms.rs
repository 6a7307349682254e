//! The war room's Slack methods, answering as Slack's Web API specification
//! (`slackapi/slack-api-specs`, `web-api/slack_web_openapi_v2.json`) and method pages
//! (docs.slack.dev) say: `conversations.create` (name rules and `name_taken`),
//! `conversations.invite` (`users` as a comma list; `already_in_channel`, `cant_invite_self`),
//! `usergroups.users.list` and `pins.add` (`already_pinned`). The channels made, their
//! invited members and pins are kept for the state snapshot and the `Emulator` helpers;
//! user groups are a knob. `restricted_action` (a workspace that forbids creating channels)
//! is the generic per-method error knob: `set_slack_method_error("conversations.create", …)`.

use super::{Slack, channel_id, err, message_body, missing_scope};
use crate::http::{Request, Response};
use crate::util::now_micros;
use crate::{Emulator, lock};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// The bot's own user id (`auth.test`'s `user_id`): inviting it is `cant_invite_self`.
const BOT_USER: &str = "U0EMULATOR";
/// "Up to 1000 users may be listed" (spec, `conversations.invite` `users`).
const MAX_INVITES: usize = 1000;

#[derive(Default)]
pub(crate) struct Rooms {
    /// Channel objects made by `conversations.create`, in order.
    created: Vec<Value>,
    /// Users invited, by channel id, in order.
    members: HashMap<String, Vec<String>>,
    /// Pinned message timestamps, by channel id, in order.
    pins: HashMap<String, Vec<String>>,
    /// `usergroups.users.list` answers: user group id → user ids.
    pub usergroups: HashMap<String, Vec<String>>,
}

/// A string or boolean argument (form bodies carry `"true"`, JSON bodies `true`).
fn flag(args: &Map<String, Value>, name: &str) -> bool {
    match args.get(name) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true" || s == "1",
        _ => false,
    }
}

fn text<'a>(args: &'a Map<String, Value>, name: &str) -> &'a str {
    args.get(name).and_then(Value::as_str).unwrap_or("")
}

fn has(granted: &[String], scope: &str) -> bool {
    granted.iter().any(|g| g == scope)
}

/// docs.slack.dev `conversations.create`, "Naming": "Channel names may only contain lowercase
/// letters, numbers, hyphens, and underscores, and must be 80 characters or less"; the error
/// per broken rule as the method's error table names it (`invalid_name_required`,
/// `invalid_name_maxlength`, `invalid_name_punctuation` "contained only punctuation",
/// `invalid_name_specials` "unallowed special characters or upper case characters").
/// Letters outside ASCII are accepted when they are not upper case (unverified).
pub(crate) fn name_error(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        return Some("invalid_name_required");
    }
    if name.chars().count() > 80 {
        return Some("invalid_name_maxlength");
    }
    let allowed = |c: char| c == '-' || c == '_' || (c.is_alphanumeric() && !c.is_uppercase());
    if !name.chars().all(allowed) {
        return Some("invalid_name_specials");
    }
    if name.chars().all(|c| c == '-' || c == '_') {
        return Some("invalid_name_punctuation");
    }
    None
}

impl Slack {
    /// Whether a conversation of this name exists (made here, posted to, or known).
    fn name_exists(&self, name: &str) -> bool {
        self.names.values().any(|n| n == name)
            || self.known.iter().flatten().any(|k| k.trim_start_matches('#') == name)
    }
    /// The created room with this id or name.
    fn room(&self, channel: &str) -> Option<&Value> {
        let id = channel_id(channel);
        self.rooms.created.iter().find(|r| r["id"] == id.as_str())
    }
    /// The channel's id if this workspace knows it, else `None` (`channel_not_found`).
    fn known_id(&self, channel: &str) -> Option<String> {
        let id = channel_id(channel);
        (self.names.contains_key(&id) || self.name_exists(&self.name_of(channel))).then_some(id)
    }
    fn room_view(&self, room: &Value) -> Value {
        let id = room["id"].as_str().unwrap_or_default();
        let mut room = room.clone();
        room["members"] = json!(self.rooms.members.get(id).cloned().unwrap_or_default());
        room["pins"] = json!(self.rooms.pins.get(id).cloned().unwrap_or_default());
        room
    }
}

/// `conversations.create`: a public channel needs `channels:manage`, a private one
/// (`is_private`) `groups:write` (the bot scopes of the spec's `channels:write`/`groups:write`;
/// python-slack-sdk's OAuth scopes tutorial: "conversations.create … needs the scope
/// channels:manage"). The bot is its creator and first member.
pub(super) fn create(s: &mut Slack, req: &Request, granted: &[String]) -> Response {
    let Some(args) = message_body(req) else { return err("invalid_json") };
    let private = flag(&args, "is_private");
    let scope = if private { "groups:write" } else { "channels:manage" };
    if !has(granted, scope) {
        return missing_scope(scope, granted);
    }
    let name = text(&args, "name").to_string();
    if let Some(code) = name_error(&name) {
        return err(code);
    }
    if s.name_exists(&name) {
        return err("name_taken");
    }
    let id = channel_id(&name);
    s.names.insert(id.clone(), name.clone());
    if let Some(members) = s.members.as_mut() {
        members.insert(name.clone());
    }
    if let Some(known) = s.known.as_mut() {
        known.push(name.clone());
    }
    let channel = json!({"id": id, "name": name, "name_normalized": name, "is_channel": true,
        "is_group": false, "is_im": false, "is_mpim": false, "is_private": private,
        "is_archived": false, "is_general": false, "is_member": true, "is_shared": false,
        "created": now_micros() / 1_000_000, "creator": BOT_USER,
        "topic": {"value": "", "creator": "", "last_set": 0},
        "purpose": {"value": "", "creator": "", "last_set": 0}, "previous_names": []});
    s.rooms.created.push(channel.clone());
    Response::json(200, &json!({"ok": true, "channel": channel}))
}

/// `conversations.invite`: `channel` and `users` (comma-separated ids, at most 1000); the
/// spec's `cant_invite_self`, `already_in_channel` (the whole call is refused and nobody is
/// invited when one listed user is a member: unverified), `not_in_channel`, `is_archived`,
/// `no_user`, `too_many_users`.
pub(super) fn invite(s: &mut Slack, req: &Request, granted: &[String]) -> Response {
    let Some(args) = message_body(req) else { return err("invalid_json") };
    let channel = text(&args, "channel").to_string();
    let Some(id) = s.known_id(&channel) else { return err("channel_not_found") };
    let private = s.room(&id).is_some_and(|r| r["is_private"] == true);
    let scope = if private { "groups:write" } else { "channels:manage" };
    if !has(granted, scope) {
        return missing_scope(scope, granted);
    }
    let name = s.name_of(&id);
    if s.archived.contains(&name) {
        return err("is_archived");
    }
    if !s.is_member(&name) {
        return err("not_in_channel");
    }
    let users: Vec<String> = text(&args, "users")
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_string)
        .collect();
    if users.is_empty() {
        return err("no_user");
    }
    if users.len() > MAX_INVITES {
        return err("too_many_users");
    }
    if users.iter().any(|u| u == BOT_USER) {
        return err("cant_invite_self");
    }
    let members = s.rooms.members.entry(id.clone()).or_default();
    if users.iter().any(|u| members.contains(u)) {
        return err("already_in_channel");
    }
    for user in users {
        if !members.contains(&user) {
            members.push(user);
        }
    }
    let channel = json!({"id": id, "name": name, "is_channel": true, "is_private": private,
                         "is_member": true, "num_members": members.len() + 1});
    Response::json(200, &json!({"ok": true, "channel": channel}))
}

/// `usergroups.users.list` (`usergroups:read`): `{"ok": true, "users": [ids]}`; an unknown
/// group answers `no_such_subteam` (not in the spec's error list: unverified).
pub(super) fn usergroup_users(s: &Slack, req: &Request) -> Response {
    let mut params = req.query_pairs();
    params.extend(crate::http::parse_form(&req.body));
    let group = params.iter().find(|(k, _)| k == "usergroup").map(|(_, v)| v.as_str());
    let group = group
        .map(str::to_string)
        .or_else(|| message_body(req).map(|a| text(&a, "usergroup").to_string()))
        .unwrap_or_default();
    match s.rooms.usergroups.get(&group) {
        Some(users) => Response::json(200, &json!({"ok": true, "users": users})),
        None => err("no_such_subteam"),
    }
}

/// `pins.add` (`pins:write`): `channel` and `timestamp` of a message in it; the spec's
/// `channel_not_found`, `no_item_specified`, `message_not_found`, `already_pinned`.
pub(super) fn pin(s: &mut Slack, req: &Request) -> Response {
    let Some(args) = message_body(req) else { return err("invalid_json") };
    let Some(id) = s.known_id(text(&args, "channel")) else { return err("channel_not_found") };
    let ts = text(&args, "timestamp").to_string();
    if ts.is_empty() {
        return err("no_item_specified");
    }
    let exists = s.messages.iter().any(|m| m["channel"] == id.as_str() && m["ts"] == ts.as_str());
    if !exists {
        return err("message_not_found");
    }
    let pins = s.rooms.pins.entry(id).or_default();
    if pins.contains(&ts) {
        return err("already_pinned");
    }
    pins.push(ts);
    Response::json(200, &json!({"ok": true}))
}

/// The state snapshot's `slack_rooms`: channels created (with `members` and `pins`), and the
/// members and pins of every channel.
pub(crate) fn snapshot(s: &Slack) -> Value {
    let created: Vec<Value> = s.rooms.created.iter().map(|r| s.room_view(r)).collect();
    json!({"created": created, "members": s.rooms.members, "pins": s.rooms.pins,
           "usergroups": s.rooms.usergroups})
}

/// `/_emulator/config` key `slack_usergroups`: `{"<group id>": ["<user id>", …]}`.
pub(crate) fn apply_config(s: &mut Slack, c: &Value) {
    if let Some(groups) = c.get("slack_usergroups").and_then(Value::as_object) {
        for (group, users) in groups {
            let users = serde_json::from_value::<Vec<String>>(users.clone()).unwrap_or_default();
            s.rooms.usergroups.insert(group.clone(), users);
        }
    }
}

impl Emulator {
    /// Channels made by `conversations.create`, in order: the channel object with `members`
    /// (users invited) and `pins` (pinned message timestamps).
    pub fn slack_created_channels(&self) -> Vec<Value> {
        let slack = lock(&self.shared.slack);
        slack.rooms.created.iter().map(|r| slack.room_view(r)).collect()
    }
    /// Users invited to a channel (name or id), in order.
    pub fn slack_channel_members(&self, channel: &str) -> Vec<String> {
        let slack = lock(&self.shared.slack);
        slack.rooms.members.get(&channel_id(channel)).cloned().unwrap_or_default()
    }
    /// Timestamps of the messages pinned in a channel (name or id), in order.
    pub fn slack_pins(&self, channel: &str) -> Vec<String> {
        let slack = lock(&self.shared.slack);
        slack.rooms.pins.get(&channel_id(channel)).cloned().unwrap_or_default()
    }
    /// A user group `usergroups.users.list` knows, with its members.
    pub fn add_slack_usergroup(&self, id: &str, users: &[&str]) {
        let users = users.iter().map(|u| u.to_string()).collect();
        lock(&self.shared.slack).rooms.usergroups.insert(id.into(), users);
    }
}

#[cfg(test)]
#[path = "rooms_tests.rs"]
mod tests;
