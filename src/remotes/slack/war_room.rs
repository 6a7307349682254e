//! The war room (PRODUCT §17, seed "Dynamic Incident War Room Creation"): one Slack channel
//! per notable, opened by a route with `war_room = true` after its alert is posted, or by the
//! `stackflow_war_room` button. `conversations.create` names it `<[slack_response]
//! war_room_prefix>-<yyyymmdd>-<rule slug>-<4 hex>` (`name_taken`: another suffix, at most
//! [`MAX_NAME_TRIES`] times); `conversations.invite` adds the requesting user,
//! `war_room_users` and the members of `war_room_usergroup` (`usergroups.users.list`); the
//! alert's summary, key fields and links are posted and pinned (`pins.add`); the room is
//! linked in the alert's thread. (Methods, scopes and errors: Slack Web API spec.)
//!
//! Exactly once per notable: the room is claimed by a conditional insert of `war_room:<event
//! id>` into the KV store collection `stackflow_interactions` before anything is created, and
//! the channel id is written to the claim as soon as Slack made it; a later request (another
//! alert, a click, another cluster member) finds the claim and links the existing room. A
//! room Slack refused (`restricted_action`, `missing_scope`, …) gives its claim back, so the
//! request can be made again once an admin fixed it.

#[path = "war_room/name.rs"]
pub mod name;

use super::SlackApi;
use crate::error::{Error, Result};
use crate::remotes::splunkd::Splunkd;
use crate::settings::Settings;
use serde_json::{Value, json};

/// Where rooms are claimed (the interactions collection of PRODUCT §9).
pub const CLAIMS_COLLECTION: &str = "stackflow_interactions";
/// `conversations.create` tries at most this many names.
pub const MAX_NAME_TRIES: u32 = 5;
/// "Up to 1000 users may be listed" (Slack Web API spec, `conversations.invite` `users`).
pub const MAX_INVITES: usize = 1000;
/// A claim without a channel older than this is taken over (its holder died mid-way).
const STALE_CLAIM_S: f64 = 300.0;

/// `[slack_response] war_room_*`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WarRoomSettings {
    pub prefix: String,
    pub users: Vec<String>,
    pub usergroup: Option<String>,
    pub private: bool,
    pub conflict_status: u16,
}

impl WarRoomSettings {
    pub fn from_settings(settings: &Settings) -> Result<WarRoomSettings> {
        let get = |key: &str| settings.conf.get_nonempty("slack_response", key).map(str::trim);
        let id_ok = |id: &str| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric());
        let users: Vec<String> = get("war_room_users")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .collect();
        if let Some(bad) = users.iter().find(|id| !id_ok(id)) {
            return Err(Error::config(
                "slack_response",
                "war_room_users",
                format!("\"{bad}\" is not a Slack user id (U… or W…)"),
            ));
        }
        let usergroup = get("war_room_usergroup").map(str::to_string);
        if let Some(group) = usergroup.as_deref().filter(|group| !id_ok(group)) {
            return Err(Error::config(
                "slack_response",
                "war_room_usergroup",
                format!("\"{group}\" is not a Slack user group id (S…)"),
            ));
        }
        let private = match get("war_room_private") {
            None => false,
            Some(value) => crate::splunk::conf::parse_bool(value).ok_or_else(|| {
                Error::config("slack_response", "war_room_private", "is not a boolean")
            })?,
        };
        Ok(WarRoomSettings {
            prefix: get("war_room_prefix").unwrap_or("inc").to_string(),
            users,
            usergroup,
            private,
            conflict_status: settings.delivery()?.kvstore_conflict_status,
        })
    }
}

/// What a room is asked for.
pub struct RoomRequest<'a> {
    /// The notable's `event_id` (else the alert's dedupe key): one room per value.
    pub event_id: &'a str,
    /// The rule, for the name and the heading.
    pub rule: &'a str,
    /// The Slack user who asked (a click), invited.
    pub requested_by: Option<&'a str>,
    /// The alert's message as posted (its blocks are the room's summary).
    pub alert: &'a Value,
    /// The alert message (channel id, ts): the room is linked in its thread.
    pub thread: Option<(&'a str, &'a str)>,
}

/// How it went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RoomOutcome {
    /// Made now.
    Created { channel_id: String, name: String, invited: usize },
    /// Made before (for this notable): linked again.
    Existing { channel_id: String, name: String },
    /// Another request is making it right now.
    InProgress,
    /// Slack or the KV store refused; `code` is Slack's error code when it gave one.
    Failed { code: Option<String>, message: String },
}

/// A Slack answer with `ok: true`, or the code / reason it failed with.
fn call(
    api: &SlackApi,
    method: &str,
    body: &Value,
) -> std::result::Result<Value, (Option<String>, String)> {
    let bytes = serde_json::to_vec(body).map_err(|error| (None, error.to_string()))?;
    let response = api
        .call(method, &bytes)
        .map_err(|outcome| (None, crate::remotes::response::reason(&outcome)))?;
    parse(method, response)
}

fn parse(
    method: &str,
    response: crate::net::http::HttpResponse,
) -> std::result::Result<Value, (Option<String>, String)> {
    let Some(json) = response.json() else {
        return Err((
            None,
            format!("Slack {method}: HTTP {}: {}", response.status, response.body_excerpt()),
        ));
    };
    if json.get("ok").and_then(Value::as_bool) == Some(true) {
        return Ok(json);
    }
    let code = json.get("error").and_then(Value::as_str).unwrap_or("unknown_error").to_string();
    let needed = json
        .get("needed")
        .and_then(Value::as_str)
        .map(|scope| format!(" (needs {scope})"))
        .unwrap_or_default();
    Err((Some(code.clone()), format!("Slack {method}: {code}{needed}")))
}

/// A clear sentence for a refusal to create the room.
pub fn explain(code: Option<&str>, message: &str) -> String {
    match code {
        Some("restricted_action") => "the workspace does not let this app create channels (Slack: restricted_action); ask a Slack admin to allow it".to_string(),
        Some("missing_scope") => format!("the Slack app lacks a war-room scope ({message}); add channels:manage, groups:write, pins:write and usergroups:read (`stackflow slack manifest`), reinstall the app and store the new token"),
        Some("name_taken") => format!("no free channel name after {MAX_NAME_TRIES} tries (Slack: name_taken)"),
        _ => message.to_string(),
    }
}

/// Opens (or links) the room for `request`.
pub fn open_room(
    api: &SlackApi,
    splunkd: &Splunkd,
    config: &WarRoomSettings,
    request: &RoomRequest,
) -> RoomOutcome {
    let key = name::claim_key(request.event_id);
    let now = crate::civil_time::now_unix();
    let claim = json!({"_key": key, "kind": "war_room", "state": "creating", "event_id": request.event_id,
        "rule": request.rule, "channel_id": "", "name": "", "updated": now});
    let failed = |error: Error| RoomOutcome::Failed {
        code: None,
        message: format!("KV store {CLAIMS_COLLECTION}: {error}"),
    };
    let won = match splunkd.kv_insert(CLAIMS_COLLECTION, &claim, config.conflict_status) {
        Ok(won) => won,
        Err(error) => return failed(error),
    };
    if !won {
        let record = match splunkd.kv_get(CLAIMS_COLLECTION, &key) {
            Ok(record) => record.unwrap_or(Value::Null),
            Err(error) => return failed(error),
        };
        let text =
            |name: &str| record.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
        let channel_id = text("channel_id");
        if !channel_id.is_empty() {
            let name = text("name");
            if let Some(user) = request.requested_by {
                invite(api, &channel_id, &[user.to_string()]);
            }
            link_in_thread(api, request, &channel_id);
            return RoomOutcome::Existing { channel_id, name };
        }
        let updated = record.get("updated").and_then(Value::as_f64).unwrap_or(0.0);
        if now - updated < STALE_CLAIM_S {
            return RoomOutcome::InProgress;
        }
        log::warn!("war room {key}: the claim of a request that stopped mid-way is taken over");
    }
    let outcome = create(api, config, request);
    let (channel_id, name) = match outcome {
        Ok(made) => made,
        Err((code, message)) => {
            if let Err(error) = splunkd.kv_delete(CLAIMS_COLLECTION, &key) {
                log::warn!("war room {key}: the claim could not be given back ({error})");
            }
            let message = explain(code.as_deref(), &message);
            return RoomOutcome::Failed { code, message };
        }
    };
    let mut done = claim.clone();
    done["state"] = json!("created");
    done["channel_id"] = json!(channel_id);
    done["name"] = json!(name);
    done["updated"] = json!(crate::civil_time::now_unix());
    if let Err(error) = splunkd.kv_update(CLAIMS_COLLECTION, &key, &done) {
        log::warn!(
            "war room {key}: {name} ({channel_id}) made, but the claim could not record it ({error})"
        );
    }
    let mut users: Vec<String> = request.requested_by.map(str::to_string).into_iter().collect();
    users.extend(config.users.iter().cloned());
    if let Some(group) = &config.usergroup {
        match call(api, "usergroups.users.list", &json!({"usergroup": group})) {
            Ok(json) => users.extend(
                json.get("users")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_string),
            ),
            Err((_, message)) => log::warn!(
                "war room {name}: the members of user group {group} are not invited: {message}"
            ),
        }
    }
    let mut unique: Vec<String> = Vec::new();
    for user in users {
        if !unique.contains(&user) && unique.len() < MAX_INVITES {
            unique.push(user);
        }
    }
    let invited = invite(api, &channel_id, &unique);
    match call(
        api,
        "chat.postMessage",
        &name::room_message(&channel_id, request.rule, request.alert),
    ) {
        Ok(json) => {
            let ts = json.get("ts").and_then(Value::as_str).unwrap_or_default();
            if let Err((_, message)) =
                call(api, "pins.add", &json!({"channel": channel_id, "timestamp": ts}))
            {
                log::warn!("war room {name}: the summary is not pinned: {message}");
            }
        }
        Err((_, message)) => {
            log::warn!("war room {name}: the summary could not be posted: {message}")
        }
    }
    link_in_thread(api, request, &channel_id);
    RoomOutcome::Created { channel_id, name, invited }
}

/// `conversations.create`, another name on `name_taken`.
fn create(
    api: &SlackApi,
    config: &WarRoomSettings,
    request: &RoomRequest,
) -> std::result::Result<(String, String), (Option<String>, String)> {
    let now = crate::civil_time::now_unix_secs().min(i64::MAX as u64) as i64;
    let mut last = (None, String::new());
    for attempt in 0..MAX_NAME_TRIES {
        let name = name::room_name(
            &config.prefix,
            now,
            request.rule,
            &name::hex4(request.event_id, attempt),
        );
        match call(
            api,
            "conversations.create",
            &json!({"name": name, "is_private": config.private}),
        ) {
            Ok(json) => {
                let id = json
                    .pointer("/channel/id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if id.is_empty() {
                    return Err((
                        None,
                        "Slack conversations.create: the answer has no channel id".into(),
                    ));
                }
                return Ok((id, name));
            }
            Err((Some(code), message)) if code == "name_taken" => {
                log::info!("war room: {name} is taken, trying another suffix");
                last = (Some(code), message);
            }
            Err(refused) => return Err(refused),
        }
    }
    Err(last)
}

/// Invites `users` (one call; when Slack refuses it because one is a member already, one by
/// one). Returns how many were invited.
fn invite(api: &SlackApi, channel_id: &str, users: &[String]) -> usize {
    if users.is_empty() {
        return 0;
    }
    match call(
        api,
        "conversations.invite",
        &json!({"channel": channel_id, "users": users.join(",")}),
    ) {
        Ok(_) => users.len(),
        Err((Some(code), _)) if code == "already_in_channel" && users.len() > 1 => users
            .iter()
            .filter(|user| {
                call(api, "conversations.invite", &json!({"channel": channel_id, "users": user}))
                    .is_ok()
            })
            .count(),
        Err((Some(code), _)) if code == "already_in_channel" => 0,
        Err((_, message)) => {
            log::warn!("war room {channel_id}: not every user is invited: {message}");
            0
        }
    }
}

fn link_in_thread(api: &SlackApi, request: &RoomRequest, channel_id: &str) {
    let Some((channel, ts)) = request.thread else { return };
    let text = match request.requested_by {
        Some(user) => {
            format!(":rotating_light: War room: <#{channel_id}> (asked for by <@{user}>)")
        }
        None => format!(":rotating_light: War room: <#{channel_id}>"),
    };
    if let Err((_, message)) =
        call(api, "chat.postMessage", &json!({"channel": channel, "thread_ts": ts, "text": text}))
    {
        log::warn!("war room {channel_id}: not linked in the alert's thread: {message}");
    }
}
