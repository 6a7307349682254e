//! Slack Web API emulation, answering as Slack's published Web API specification
//! (`slackapi/slack-api-specs`, `web-api/slack_web_openapi_v2.json`) and SDK documentation
//! (`slackapi/python-slack-sdk`) say: `apps.connections.open` (pointing at `socket_mode`),
//! `users.info`, `chat.postEphemeral`, `chat.postMessage` and `chat.update` (JSON or form
//! bodies, Bearer or form token), `auth.test`, `conversations.history` (with message
//! `metadata` when `include_all_metadata` is set) and `conversations.list`; the war room's
//! `conversations.create`, `conversations.invite`, `usergroups.users.list` and `pins.add` are
//! in `slack/rooms.rs`.
//!
//! Per-token granted scopes, checked by every method (`missing_scope` with `needed` and
//! `provided`, as the spec's error schemas carry them); `x-oauth-scopes` and
//! `x-accepted-oauth-scopes` headers on every answer (as Slack's responses carry them, e.g. in
//! the SDK's file-upload tutorial log); channel membership (`not_in_channel`; posting to a public
//! channel without membership needs `chat:write.public`, SDK docs "web.md"); archived channels
//! (`is_archived`); cursor paging (`limit`, `cursor`, `response_metadata.next_cursor`); a
//! `ratelimited` knob on every method (HTTP 429, `Retry-After`); Block Kit limit validation;
//! unique `ts` assignment and an optional per-channel 1 message/second rate limit. The knobs
//! are in `slack/knobs.rs`.

mod blocks;
mod knobs;
mod rooms;
#[cfg(test)]
mod tests;
pub(crate) use knobs::apply_config;
pub(crate) use rooms::snapshot as rooms_snapshot;

use crate::http::{Request, Response, parse_form};
use crate::util::now_micros;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};

/// The bot token's scopes by default: every scope the product's features use, and the read
/// scopes of the other conversation types, so that a test that sets none is never refused.
pub(crate) const BROAD_SCOPES: &[&str] = &[
    "chat:write",
    "chat:write.public",
    "channels:history",
    "groups:history",
    "im:history",
    "mpim:history",
    "channels:read",
    "groups:read",
    "im:read",
    "mpim:read",
    "users:read",
    "users:read.email",
    "commands",
    "channels:manage",
    "groups:write",
    "pins:write",
    "usergroups:read",
];

pub(crate) struct Slack {
    pub token: String,
    /// The app-level token `apps.connections.open` takes.
    pub app_token: String,
    /// The bot token's granted scopes.
    pub scopes: Vec<String>,
    /// Other tokens this workspace knows, with their scopes.
    pub tokens: HashMap<String, Vec<String>>,
    /// The Socket Mode server, once started, and whether it speaks TLS.
    pub socket: Option<(std::sync::Arc<crate::socket_mode::SocketMode>, bool)>,
    /// `users.info` answers by user id (the `user` object).
    pub users: HashMap<String, Value>,
    /// `chat.postEphemeral` messages received (the request as JSON).
    pub ephemeral: Vec<Value>,
    pub messages: Vec<Value>,
    pub rate_limit: bool,
    pub known: Option<Vec<String>>,
    /// Channels (names without `#`) the bot is a member of; `None`: every channel.
    pub members: Option<HashSet<String>>,
    /// Archived channels (names without `#`).
    pub archived: HashSet<String>,
    /// Method → (calls still to answer 429 `ratelimited`, `Retry-After` seconds).
    pub ratelimited: HashMap<String, (usize, u64)>,
    /// Method → the `ok:false` error code it answers (until cleared).
    pub errors: HashMap<String, String>,
    /// Channel names by the ids we gave them.
    names: HashMap<String, String>,
    last_post: HashMap<String, u64>,
    last_ts: u64,
    /// Channels created, invitations, pins and user groups (`slack/rooms.rs`).
    rooms: rooms::Rooms,
}

fn err(code: &str) -> Response {
    Response::json(200, &json!({"ok": false, "error": code}))
}

impl Slack {
    pub fn new() -> Slack {
        Slack {
            token: "xoxb-test".into(),
            app_token: "xapp-test".into(),
            scopes: BROAD_SCOPES.iter().map(|s| s.to_string()).collect(),
            tokens: HashMap::new(),
            socket: None,
            users: HashMap::new(),
            ephemeral: Vec::new(),
            messages: Vec::new(),
            rate_limit: false,
            known: None,
            members: None,
            archived: HashSet::new(),
            ratelimited: HashMap::new(),
            errors: HashMap::new(),
            names: HashMap::new(),
            last_post: HashMap::new(),
            last_ts: 0,
            rooms: rooms::Rooms::default(),
        }
    }

    fn next_ts(&mut self) -> String {
        self.last_ts = now_micros().max(self.last_ts + 1);
        format!("{}.{:06}", self.last_ts / 1_000_000, self.last_ts % 1_000_000)
    }

    /// The scopes granted to `token`, `None` for a token this workspace does not know. An
    /// app-level token holds `connections:write` (Slack's Socket Mode docs).
    fn scopes_of(&self, token: &str) -> Option<Vec<String>> {
        if token == self.token {
            Some(self.scopes.clone())
        } else if token == self.app_token {
            Some(vec!["connections:write".into()])
        } else {
            self.tokens.get(token).cloned()
        }
    }

    /// The channel's name (without `#`) for a name or an id we gave out.
    fn name_of(&self, channel: &str) -> String {
        if let Some(name) = self.names.get(channel) {
            return name.clone();
        }
        let known = self.known.iter().flatten().map(|c| c.trim_start_matches('#'));
        for name in known {
            if channel_id(name) == channel {
                return name.to_string();
            }
        }
        channel.trim_start_matches('#').to_string()
    }

    fn is_member(&self, name: &str) -> bool {
        self.members.as_ref().is_none_or(|members| members.contains(name))
    }

    /// Stores a message as `chat.postMessage` would (knobs' seeding and posts).
    fn store(&mut self, channel: &str, mut msg: Map<String, Value>) -> (String, String) {
        let cid = channel_id(channel);
        if cid != channel {
            self.names.insert(cid.clone(), channel.trim_start_matches('#').to_string());
        }
        let ts = self.next_ts();
        msg.insert("channel".into(), cid.clone().into());
        msg.insert("ts".into(), ts.clone().into());
        self.messages.push(Value::Object(msg));
        (cid, ts)
    }
}

/// A channel ID for a name (`#soc` → stable fake `C…`); IDs pass through.
fn channel_id(ch: &str) -> String {
    let is_id = ch.len() >= 9
        && ch.starts_with(['C', 'D', 'G'])
        && ch.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if is_id {
        return ch.to_string();
    }
    let h = ch
        .trim_start_matches('#')
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("C{:010X}", h & 0xff_ffff_ffff)
}

/// The id this emulator gives a channel (name or id), for the other modules.
pub(crate) fn channel_id_of(channel: &str) -> String {
    channel_id(channel)
}

/// A user's `name` (as `add_slack_user` gave it), else the id.
pub(crate) fn user_name(s: &Slack, user: &str) -> String {
    s.users.get(user).and_then(|u| u["name"].as_str()).unwrap_or(user).to_string()
}

/// Reads the message as a JSON object from a JSON or form body (form `blocks`/`attachments`
/// are JSON strings).
fn message_body(req: &Request) -> Option<Map<String, Value>> {
    let json_ct = req.header("content-type").is_some_and(|c| c.contains("json"));
    if json_ct || req.body.first() == Some(&b'{') {
        return serde_json::from_slice(&req.body).ok();
    }
    let mut m = Map::new();
    for (k, v) in parse_form(&req.body) {
        let parsed = match k.as_str() {
            "blocks" | "attachments" | "metadata" => {
                serde_json::from_str(&v).unwrap_or(Value::String(v))
            }
            _ => Value::String(v),
        };
        m.insert(k, parsed);
    }
    Some(m)
}

/// The token of a request: `Authorization: Bearer`, else a form, query or JSON `token`.
fn request_token(req: &Request) -> Option<String> {
    if let Some(bearer) = req.header("authorization").and_then(|a| a.strip_prefix("Bearer ")) {
        return Some(bearer.to_string());
    }
    let mut params = req.query_pairs();
    params.extend(parse_form(&req.body));
    if let Some((_, token)) = params.into_iter().find(|(k, _)| k == "token") {
        return Some(token);
    }
    serde_json::from_slice::<Value>(&req.body)
        .ok()?
        .get("token")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The scopes a method accepts (the spec's `security.slackAuth` list; for the chat methods the
/// spec names the legacy `chat:write:bot`, which a bot token holds as `chat:write`). `None`:
/// the method is not emulated.
fn accepted_scopes(method: &str) -> Option<&'static [&'static str]> {
    Some(match method {
        "chat.postMessage" | "chat.update" | "chat.postEphemeral" => &["chat:write"],
        "conversations.history" => {
            &["channels:history", "groups:history", "im:history", "mpim:history"]
        }
        "conversations.list" => &["channels:read", "groups:read", "im:read", "mpim:read"],
        "users.info" => &["users:read"],
        "apps.connections.open" => &["connections:write"],
        "auth.test" => &[],
        // The spec lists the user scopes `channels:write`, `groups:write`, `im:write`,
        // `mpim:write`; a bot token holds `channels:manage` for public channels.
        "conversations.create" | "conversations.invite" => {
            &["channels:manage", "groups:write", "im:write", "mpim:write"]
        }
        "usergroups.users.list" => &["usergroups:read"],
        "pins.add" => &["pins:write"],
        _ => return None,
    })
}

/// `missing_scope`, with the spec's `needed` and `provided` fields.
fn missing_scope(needed: &str, granted: &[String]) -> Response {
    Response::json(
        200,
        &json!({"ok": false, "error": "missing_scope", "needed": needed, "provided": granted.join(",")}),
    )
}

/// Query and form parameters of a read method.
fn read_params(req: &Request) -> Vec<(String, String)> {
    let mut params = req.query_pairs();
    params.extend(parse_form(&req.body));
    params
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// One page of `items` from the request's `cursor` (an opaque offset) and `limit`.
fn page(items: Vec<Value>, params: &[(String, String)], max: usize) -> (Vec<Value>, String) {
    let limit: usize = param(params, "limit").and_then(|v| v.parse().ok()).unwrap_or(100);
    let limit = limit.clamp(1, max);
    let offset: usize = param(params, "cursor")
        .and_then(|c| c.strip_prefix("b2Zmc2V0:"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let end = offset.saturating_add(limit);
    let next = if end < items.len() { format!("b2Zmc2V0:{end}") } else { String::new() };
    (items.into_iter().skip(offset).take(limit).collect(), next)
}

/// `auth.test`: who the token belongs to; nothing is posted.
fn auth_test() -> Response {
    Response::json(
        200,
        &json!({"ok": true, "url": "https://emulator.slack.com/", "team": "Emulator Workspace",
                "user": "stackflow", "team_id": "T0EMULATOR", "user_id": "U0EMULATOR",
                "bot_id": "B0EMULATOR"}),
    )
}

/// `conversations.history`: the channel's messages newest first, `oldest` exclusive, paged;
/// message `metadata` only with `include_all_metadata=true`. A public channel needs
/// `channels:history` and membership (`not_in_channel` otherwise).
fn history(s: &Slack, req: &Request, granted: &[String]) -> Response {
    let params = read_params(req);
    let Some(channel) = param(&params, "channel") else { return err("channel_not_found") };
    if !s.names.contains_key(channel) && channel_id(channel) != channel {
        return err("channel_not_found");
    }
    if !granted.iter().any(|g| g == "channels:history") {
        return missing_scope("channels:history", granted);
    }
    if !s.is_member(&s.name_of(channel)) {
        return err("not_in_channel");
    }
    let oldest: f64 = param(&params, "oldest").and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let metadata = param(&params, "include_all_metadata").is_some_and(|v| v == "true" || v == "1");
    let ts_of = |m: &Value| m.get("ts").and_then(Value::as_str).and_then(|t| t.parse::<f64>().ok());
    let mut found: Vec<Value> = s
        .messages
        .iter()
        .filter(|m| m.get("channel").and_then(Value::as_str) == Some(channel))
        .filter(|m| ts_of(m).is_some_and(|ts| ts > oldest))
        .map(|m| {
            let mut out = json!({"type": "message", "subtype": "bot_message", "bot_id": "B0EMULATOR",
                                 "ts": m.get("ts"), "text": m.get("text").cloned().unwrap_or_default()});
            if let (true, Some(meta)) = (metadata, m.get("metadata")) {
                out["metadata"] = meta.clone();
            }
            out
        })
        .collect();
    found.reverse();
    let (messages, next) = page(found, &params, 999);
    Response::json(
        200,
        &json!({"ok": true, "messages": messages, "has_more": !next.is_empty(),
                "pin_count": 0, "response_metadata": {"next_cursor": next}}),
    )
}

/// `conversations.list`: the known channels, else every channel posted to; paged; each
/// requested type needs its read scope (`public_channel` → `channels:read`, `private_channel`
/// → `groups:read`).
fn list_channels(s: &Slack, req: &Request, granted: &[String]) -> Response {
    let params = read_params(req);
    let types = param(&params, "types").unwrap_or("public_channel");
    for (kind, scope) in [("public_channel", "channels:read"), ("private_channel", "groups:read")] {
        if types.split(',').any(|t| t.trim() == kind) && !granted.iter().any(|g| g == scope) {
            return missing_scope(scope, granted);
        }
    }
    let exclude_archived = param(&params, "exclude_archived").is_some_and(|v| v == "true");
    let mut names: Vec<String> = match &s.known {
        Some(known) => known.iter().map(|c| c.trim_start_matches('#').to_string()).collect(),
        None => s.names.values().cloned().collect(),
    };
    names.sort();
    names.dedup();
    let channels: Vec<Value> = names
        .iter()
        .filter(|name| !(exclude_archived && s.archived.contains(*name)))
        .map(|name| {
            json!({"id": channel_id(name), "name": name, "is_channel": true, "is_private": false,
                   "is_archived": s.archived.contains(name), "is_member": s.is_member(name)})
        })
        .collect();
    let (channels, next) = page(channels, &params, 1000);
    Response::json(
        200,
        &json!({"ok": true, "channels": channels, "response_metadata": {"next_cursor": next}}),
    )
}

/// `apps.connections.open`: the app-level token only (a bot token is `not_allowed_token_type`).
fn connections_open(s: &Slack, token: &str) -> Response {
    if token == s.token {
        return err("not_allowed_token_type");
    }
    match &s.socket {
        None => err("socket_mode_not_enabled"),
        Some((socket, tls)) => Response::json(200, &json!({"ok": true, "url": socket.url(*tls)})),
    }
}

/// `users.info`: the seeded user (`user` param), else `user_not_found`; the profile's e-mail
/// only with `users:read.email` (Slack's users:read.email scope page).
fn users_info(s: &Slack, req: &Request, granted: &[String]) -> Response {
    let params = read_params(req);
    let user = param(&params, "user").unwrap_or("");
    match s.users.get(user) {
        Some(found) => {
            let mut found = found.clone();
            if !granted.iter().any(|g| g == "users:read.email")
                && let Some(profile) = found.get_mut("profile").and_then(Value::as_object_mut)
            {
                profile.remove("email");
            }
            Response::json(200, &json!({"ok": true, "user": found}))
        }
        None => err("user_not_found"),
    }
}

/// `chat.postEphemeral`: recorded; needs `channel`, `user` and `text` or `blocks`.
fn post_ephemeral(s: &mut Slack, req: &Request) -> Response {
    let Some(mut msg) = message_body(req) else { return err("invalid_json") };
    msg.remove("token");
    let has = |k: &str| msg.get(k).and_then(Value::as_str).is_some_and(|v| !v.is_empty());
    if !has("channel") || !has("user") {
        return err("channel_not_found");
    }
    if !has("text") && msg.get("blocks").is_none() {
        return err("no_text");
    }
    s.ephemeral.push(Value::Object(msg));
    Response::json(200, &json!({"ok": true, "message_ts": "0000000000.000001"}))
}

/// Every request: the `ratelimited` knob, the token, the method's scope, then the method; the
/// answer carries `x-oauth-scopes` (the token's) and `x-accepted-oauth-scopes` (the method's).
pub(crate) fn handle(s: &mut Slack, req: &Request) -> Response {
    let method = req.path.strip_prefix("/api/").unwrap_or_default().to_string();
    let Some(accepted) = accepted_scopes(&method) else {
        return Response::json(404, &json!({"ok": false, "error": "unknown_method"}));
    };
    let token = request_token(req);
    let granted = token.as_deref().and_then(|t| s.scopes_of(t));
    let response = route(s, req, &method, token.as_deref(), granted.as_deref(), accepted);
    let mut response = response.with_header("x-accepted-oauth-scopes", accepted.join(","));
    if let Some(granted) = granted {
        response = response.with_header("x-oauth-scopes", granted.join(","));
    }
    response
}

fn route(
    s: &mut Slack,
    req: &Request,
    method: &str,
    token: Option<&str>,
    granted: Option<&[String]>,
    accepted: &[&str],
) -> Response {
    if let Some((left, seconds)) = s.ratelimited.get_mut(method).filter(|(left, _)| *left > 0) {
        // Slack's rate-limit answer: HTTP 429, `Retry-After`, `ratelimited` (Slack's
        // "Rate limits" page; the SDK's RateLimitErrorRetryHandler reads the same header).
        *left -= 1;
        let seconds = *seconds;
        return Response::json(429, &json!({"ok": false, "error": "ratelimited"}))
            .with_header("Retry-After", seconds.to_string());
    }
    let (Some(token), Some(granted)) = (token, granted) else {
        return err(if token.is_none() { "not_authed" } else { "invalid_auth" });
    };
    if method == "apps.connections.open" {
        return connections_open(s, token);
    }
    if token == s.app_token {
        return err("not_allowed_token_type");
    }
    // History and list choose their scope by conversation type; the others need one of theirs.
    let typed = matches!(
        method,
        "conversations.history"
            | "conversations.list"
            | "conversations.create"
            | "conversations.invite"
    );
    if !typed && !accepted.is_empty() && !accepted.iter().any(|a| granted.iter().any(|g| g == a)) {
        return missing_scope(accepted[0], granted);
    }
    if let Some(code) = s.errors.get(method) {
        return err(&code.clone());
    }
    match method {
        "users.info" => users_info(s, req, granted),
        "chat.postEphemeral" => post_ephemeral(s, req),
        "auth.test" => auth_test(),
        "conversations.history" => history(s, req, granted),
        "conversations.list" => list_channels(s, req, granted),
        "conversations.create" => rooms::create(s, req, granted),
        "conversations.invite" => rooms::invite(s, req, granted),
        "usergroups.users.list" => rooms::usergroup_users(s, req),
        "pins.add" => rooms::pin(s, req),
        "chat.update" => post_or_update(s, req, granted, true),
        _ => post_or_update(s, req, granted, false),
    }
}

fn post_or_update(s: &mut Slack, req: &Request, granted: &[String], update: bool) -> Response {
    let Some(mut msg) = message_body(req) else { return err("invalid_json") };
    msg.remove("token");
    let channel = msg.get("channel").and_then(Value::as_str).unwrap_or("").to_string();
    let name = s.name_of(&channel);
    if channel.is_empty()
        || s.known.as_ref().is_some_and(|k| !k.iter().any(|c| c.trim_start_matches('#') == name))
    {
        return err("channel_not_found");
    }
    if s.archived.contains(&name) {
        // chat.postMessage: `is_archived`; chat.update: `is_inactive` ("frozen, archived or
        // deleted channel"), as the spec lists each method's errors.
        return err(if update { "is_inactive" } else { "is_archived" });
    }
    if !s.is_member(&name) && !granted.iter().any(|g| g == "chat:write.public") {
        return err("not_in_channel");
    }
    let cid = channel_id(&channel);
    if cid != channel {
        s.names.insert(cid.clone(), name.to_string());
    }
    let has_blocks = msg.get("blocks").and_then(Value::as_array).is_some_and(|b| !b.is_empty());
    let has_text = msg.get("text").and_then(Value::as_str).is_some_and(|t| !t.is_empty());
    if !update && !has_blocks && !has_text && msg.get("attachments").is_none() {
        return err("no_text");
    }
    if let Some(Err(m)) = msg.get("blocks").map(blocks::validate_blocks) {
        return Response::json(
            200,
            &json!({"ok": false, "error": "invalid_blocks", "response_metadata": {"messages": [format!("[ERROR] {m}")]}}),
        );
    }
    let ts = if update {
        let Some(ts) = msg.get("ts").and_then(Value::as_str).map(str::to_string) else {
            return err("message_not_found");
        };
        let exists = s.messages.iter().any(|m| {
            m.get("ts").and_then(Value::as_str) == Some(&ts)
                && m.get("channel").and_then(Value::as_str) == Some(&cid)
        });
        if !exists {
            return err("message_not_found");
        }
        ts
    } else {
        let now = now_micros();
        if s.rate_limit && s.last_post.get(&cid).is_some_and(|&t| now < t + 1_000_000) {
            return Response::json(429, &json!({"ok": false, "error": "ratelimited"}))
                .with_header("Retry-After", "1");
        }
        s.last_post.insert(cid.clone(), now);
        s.next_ts()
    };
    msg.insert("channel".into(), cid.clone().into());
    msg.insert("ts".into(), ts.clone().into());
    let mut message = json!({"type": "message", "subtype": "bot_message", "bot_id": "B0EMULATOR", "ts": ts,
                             "text": msg.get("text").cloned().unwrap_or_else(|| "".into())});
    if let Some(b) = msg.get("blocks") {
        message["blocks"] = b.clone();
    }
    let mut resp = json!({"ok": true, "channel": cid, "ts": ts, "message": message});
    if update {
        resp["text"] = msg.get("text").cloned().unwrap_or_else(|| "".into());
    }
    s.messages.push(Value::Object(msg));
    Response::json(200, &resp)
}
