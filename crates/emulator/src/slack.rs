//! Slack Web API emulation: `apps.connections.open` (pointing at `socket_mode`), `users.info`,
//! `chat.postEphemeral`, `chat.postMessage` and `chat.update` (JSON or form bodies, Bearer or
//! form token), `auth.test`, `conversations.history` (with message `metadata` when
//! `include_all_metadata` is set) and `conversations.list`, Block Kit limit validation,
//! known-channel checks, unique `ts` assignment and an optional per-channel 1 message/second
//! rate limit.

use crate::http::{Request, Response, parse_form};
use crate::util::now_micros;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub(crate) struct Slack {
    pub token: String,
    /// The app-level token `apps.connections.open` takes.
    pub app_token: String,
    /// The Socket Mode server, once started, and whether it speaks TLS.
    pub socket: Option<(std::sync::Arc<crate::socket_mode::SocketMode>, bool)>,
    /// `users.info` answers by user id (the `user` object).
    pub users: HashMap<String, Value>,
    /// `chat.postEphemeral` messages received (the request as JSON).
    pub ephemeral: Vec<Value>,
    pub messages: Vec<Value>,
    pub rate_limit: bool,
    pub known: Option<Vec<String>>,
    /// Channel names by the ids we gave them.
    names: HashMap<String, String>,
    last_post: HashMap<String, u64>,
    last_ts: u64,
}

fn err(code: &str) -> Response {
    Response::json(200, &json!({"ok": false, "error": code}))
}

impl Slack {
    pub fn new() -> Slack {
        Slack {
            token: "xoxb-test".into(),
            app_token: "xapp-test".into(),
            socket: None,
            users: HashMap::new(),
            ephemeral: Vec::new(),
            messages: Vec::new(),
            rate_limit: false,
            known: None,
            names: HashMap::new(),
            last_post: HashMap::new(),
            last_ts: 0,
        }
    }
    fn next_ts(&mut self) -> String {
        self.last_ts = now_micros().max(self.last_ts + 1);
        format!("{}.{:06}", self.last_ts / 1_000_000, self.last_ts % 1_000_000)
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

fn text_len(obj: &Value) -> usize {
    obj.get("text").and_then(Value::as_str).map_or(0, |t| t.chars().count())
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what.to_string()) }
}

fn str_len(v: &Value, k: &str) -> usize {
    v.get(k).and_then(Value::as_str).map_or(0, |s| s.chars().count())
}

fn validate_element(e: &Value) -> Result<(), String> {
    if e.get("type").and_then(Value::as_str) != Some("button") {
        return Ok(());
    }
    let text = e.get("text").ok_or("button without text")?;
    check(text_len(text) <= 75, "button text must be at most 75 characters")?;
    check(str_len(e, "value") <= 2000, "button value must be at most 2000 characters")?;
    check(str_len(e, "url") <= 3000, "button url must be at most 3000 characters")?;
    check(str_len(e, "action_id") <= 255, "action_id must be at most 255 characters")?;
    let style = e.get("style").and_then(Value::as_str);
    check(
        style.is_none_or(|s| s == "primary" || s == "danger"),
        "button style must be primary or danger",
    )?;
    if let Some(c) = e.get("confirm") {
        let lens = [("title", 100), ("text", 300), ("confirm", 30), ("deny", 30)];
        for (k, max) in lens {
            check(
                c.get(k).map_or(0, text_len) <= max,
                &format!("confirm {k} must be at most {max} characters"),
            )?;
        }
    }
    Ok(())
}

/// Block Kit limits for messages (including the checks slack_sdk misses).
fn validate_blocks(blocks: &Value) -> Result<(), String> {
    let blocks = blocks.as_array().ok_or("blocks must be an array")?;
    check(blocks.len() <= 50, "no more than 50 blocks per message")?;
    for (i, b) in blocks.iter().enumerate() {
        let at = |m: &str| format!("{m} [json-pointer:/blocks/{i}]");
        check(str_len(b, "block_id") <= 255, &at("block_id must be at most 255 characters"))?;
        let elements =
            b.get("elements").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        match b.get("type").and_then(Value::as_str) {
            Some("header") => check(
                b.get("text").is_some_and(|t| text_len(t) <= 150),
                &at("header text required, at most 150 characters"),
            )?,
            Some("section") => {
                let fields = b.get("fields").and_then(Value::as_array);
                check(
                    b.get("text").is_some() || fields.is_some(),
                    &at("section needs text or fields"),
                )?;
                check(
                    b.get("text").is_none_or(|t| text_len(t) <= 3000),
                    &at("section text must be at most 3000 characters"),
                )?;
                check(fields.is_none_or(|f| f.len() <= 10), &at("no more than 10 fields"))?;
                check(
                    fields.is_none_or(|f| f.iter().all(|x| text_len(x) <= 2000)),
                    &at("field text must be at most 2000 characters"),
                )?;
                b.get("accessory").map_or(Ok(()), validate_element).map_err(|m| at(&m))?;
            }
            Some("actions") => {
                check(
                    !elements.is_empty() && elements.len() <= 25,
                    &at("actions needs 1 to 25 elements"),
                )?;
                elements.iter().try_for_each(validate_element).map_err(|m| at(&m))?;
            }
            Some("context") => check(
                !elements.is_empty() && elements.len() <= 10,
                &at("context needs 1 to 10 elements"),
            )?,
            Some("divider" | "image" | "input" | "rich_text" | "markdown" | "file" | "video") => {}
            other => return Err(at(&format!("unsupported block type {other:?}"))),
        }
    }
    Ok(())
}

/// `auth.test`: who the token belongs to (Bearer header or form `token`); nothing is posted.
fn auth_test(s: &Slack, req: &Request) -> Response {
    let bearer =
        req.header("authorization").and_then(|a| a.strip_prefix("Bearer ")).map(str::to_string);
    let token = bearer
        .or_else(|| parse_form(&req.body).into_iter().find(|(k, _)| k == "token").map(|(_, v)| v));
    match token {
        None => err("not_authed"),
        Some(t) if t != s.token => err("invalid_auth"),
        Some(_) => Response::json(
            200,
            &json!({"ok": true, "url": "https://emulator.slack.com/", "team": "Emulator Workspace",
                    "user": "stackflow", "team_id": "T0EMULATOR", "user_id": "U0EMULATOR",
                    "bot_id": "B0EMULATOR"}),
        ),
    }
}

/// Query and form parameters of a read method, and whether the bot token came with them.
fn read_params(s: &Slack, req: &Request) -> Result<Vec<(String, String)>, Response> {
    let mut params = req.query_pairs();
    params.extend(parse_form(&req.body));
    let bearer =
        req.header("authorization").and_then(|a| a.strip_prefix("Bearer ")).map(str::to_string);
    let token =
        bearer.or_else(|| params.iter().find(|(k, _)| k == "token").map(|(_, v)| v.clone()));
    match token {
        None => Err(err("not_authed")),
        Some(t) if t != s.token => Err(err("invalid_auth")),
        Some(_) => Ok(params),
    }
}

/// `conversations.history`: the channel's messages newest first, `oldest` exclusive; message
/// `metadata` only with `include_all_metadata=true`.
fn history(s: &Slack, req: &Request) -> Response {
    let params = match read_params(s, req) {
        Ok(params) => params,
        Err(response) => return response,
    };
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let Some(channel) = param("channel") else { return err("channel_not_found") };
    if !s.names.contains_key(channel) && channel_id(channel) != channel {
        return err("channel_not_found");
    }
    let oldest: f64 = param("oldest").and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let limit: usize = param("limit").and_then(|v| v.parse().ok()).unwrap_or(100).clamp(1, 999);
    let metadata = param("include_all_metadata").is_some_and(|v| v == "true" || v == "1");
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
    let has_more = found.len() > limit;
    found.truncate(limit);
    Response::json(200, &json!({"ok": true, "messages": found, "has_more": has_more}))
}

/// `conversations.list`: the known channels, else every channel posted to.
fn list_channels(s: &Slack, req: &Request) -> Response {
    if let Err(response) = read_params(s, req) {
        return response;
    }
    let names: Vec<String> = match &s.known {
        Some(known) => known.iter().map(|c| c.trim_start_matches('#').to_string()).collect(),
        None => s.names.values().cloned().collect(),
    };
    let channels: Vec<Value> =
        names.iter().map(|name| json!({"id": channel_id(name), "name": name})).collect();
    Response::json(
        200,
        &json!({"ok": true, "channels": channels, "response_metadata": {"next_cursor": ""}}),
    )
}

/// `apps.connections.open`: the app-level token only (a bot token is `not_allowed_token_type`).
fn connections_open(s: &Slack, req: &Request) -> Response {
    let bearer = req.header("authorization").and_then(|a| a.strip_prefix("Bearer "));
    match bearer {
        None => err("not_authed"),
        Some(t) if t == s.token => err("not_allowed_token_type"),
        Some(t) if t != s.app_token => err("invalid_auth"),
        Some(_) => match &s.socket {
            None => err("socket_mode_not_enabled"),
            Some((socket, tls)) => {
                Response::json(200, &json!({"ok": true, "url": socket.url(*tls)}))
            }
        },
    }
}

/// `users.info`: the seeded user (`user` param), else `user_not_found`.
fn users_info(s: &Slack, req: &Request) -> Response {
    let params = match read_params(s, req) {
        Ok(params) => params,
        Err(response) => return response,
    };
    let user = params.iter().find(|(k, _)| k == "user").map(|(_, v)| v.as_str()).unwrap_or("");
    match s.users.get(user) {
        Some(found) => Response::json(200, &json!({"ok": true, "user": found})),
        None => err("user_not_found"),
    }
}

/// `chat.postEphemeral`: recorded; needs `channel`, `user` and `text` or `blocks`.
fn post_ephemeral(s: &mut Slack, req: &Request) -> Response {
    let Some(mut msg) = message_body(req) else { return err("invalid_json") };
    let bearer =
        req.header("authorization").and_then(|a| a.strip_prefix("Bearer ")).map(str::to_string);
    let token = bearer.or_else(|| msg.remove("token").and_then(|t| t.as_str().map(str::to_string)));
    if token.as_deref() != Some(s.token.as_str()) {
        return err("invalid_auth");
    }
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

pub(crate) fn handle(s: &mut Slack, req: &Request) -> Response {
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/api/apps.connections.open") => return connections_open(s, req),
        ("GET" | "POST", "/api/users.info") => return users_info(s, req),
        ("POST", "/api/chat.postEphemeral") => return post_ephemeral(s, req),
        ("POST", "/api/auth.test") => return auth_test(s, req),
        ("GET" | "POST", "/api/conversations.history") => return history(s, req),
        ("GET" | "POST", "/api/conversations.list") => return list_channels(s, req),
        _ => {}
    }
    let update = match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/api/chat.postMessage") => false,
        ("POST", "/api/chat.update") => true,
        _ => return Response::json(404, &json!({"ok": false, "error": "unknown_method"})),
    };
    let Some(mut msg) = message_body(req) else { return err("invalid_json") };
    let bearer =
        req.header("authorization").and_then(|a| a.strip_prefix("Bearer ")).map(str::to_string);
    let token = bearer.or_else(|| msg.remove("token").and_then(|t| t.as_str().map(str::to_string)));
    match token {
        None => return err("not_authed"),
        Some(t) if t != s.token => return err("invalid_auth"),
        _ => {}
    }
    let channel = msg.get("channel").and_then(Value::as_str).unwrap_or("").to_string();
    let name = channel.trim_start_matches('#');
    if channel.is_empty()
        || s.known.as_ref().is_some_and(|k| !k.iter().any(|c| c.trim_start_matches('#') == name))
    {
        return err("channel_not_found");
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
    if let Some(Err(m)) = msg.get("blocks").map(validate_blocks) {
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
