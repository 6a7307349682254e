//! `/_emulator/*` control endpoints (not recorded, no faults): request log, state snapshot,
//! fault/latency injection, secrets, configuration and reset — for the binary's users.
//!
//! Fault JSON: `{"type":"status","status":503,"body":"…","headers":[["k","v"]]}`,
//! `{"type":"retry_after","status":429,"seconds":1}`, `{"type":"delay","ms":1500}`,
//! `{"type":"reset_mid_response"}`, `{"type":"close_without_response"}`.

use crate::http::{Request, Response};
use crate::{Fault, Shared, lock};
use serde_json::{Value, json};
use std::time::Duration;

/// State snapshot; `lists=false` leaves out the (possibly huge) SOAR object lists.
pub(crate) fn state(shared: &Shared, lists: bool) -> Value {
    let soar = lock(&shared.soar);
    let (nc, na, nr) = soar.counts();
    let mut soar_json = json!({"containers_count": nc, "artifacts_count": na,
        "playbook_runs_count": nr, "action_runs_count": soar.action_runs.len()});
    if lists {
        soar_json["containers"] = soar.containers_view().into();
        soar_json["artifacts"] = soar.artifacts.clone().into();
        soar_json["playbook_runs"] = soar.runs.clone().into();
        soar_json["action_runs"] = soar.action_runs.clone().into();
    }
    drop(soar);
    let splunkd = lock(&shared.splunkd);
    let notables: Vec<Value> = splunkd.notable_updates.iter().map(|f| json!(f)).collect();
    let kv = splunkd.kv_json();
    let searches = crate::splunkd::search_snapshot(&splunkd.searches);
    drop(splunkd);
    json!({
        "soar": soar_json,
        "stackflow_incidents": lock(&shared.stackflow).incidents,
        "slack_messages": lock(&shared.slack).messages,
        "kv": kv,
        "notable_updates": notables,
        "splunk_searches": searches,
        "slack_rooms": crate::slack::rooms_snapshot(&lock(&shared.slack)),
    })
}

fn parse_fault(v: &Value) -> Option<Fault> {
    let n = |k: &str| v.get(k).and_then(Value::as_u64);
    Some(match v.get("type")?.as_str()? {
        "status" => Fault::Status {
            status: n("status")? as u16,
            body: v.get("body").and_then(Value::as_str).unwrap_or("").to_string(),
            headers: serde_json::from_value(v.get("headers").cloned().unwrap_or(json!([]))).ok()?,
        },
        "retry_after" => Fault::RetryAfter {
            status: n("status").unwrap_or(429) as u16,
            seconds: n("seconds").unwrap_or(1),
        },
        "delay" => Fault::Delay(Duration::from_millis(n("ms")?)),
        "reset_mid_response" => Fault::ResetMidResponse,
        "close_without_response" => Fault::CloseWithoutResponse,
        _ => return None,
    })
}

fn apply_config(shared: &Shared, c: &Value) {
    let s = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
    let b = |k: &str| c.get(k).and_then(Value::as_bool);
    if let Some(v) = s("session_key") {
        lock(&shared.splunkd).session_key = v;
    }
    if let Some(status) = c.get("kv_conflict_status").and_then(Value::as_u64) {
        lock(&shared.splunkd).kv_conflict_status = status as u16;
    }
    if let Some(refuse) = b("kv_refuse_in") {
        lock(&shared.splunkd).kv_refuse_in = refuse;
    }
    crate::splunkd::apply_search_config(&mut lock(&shared.splunkd).searches, c);
    // `{"splunk_users": {"<name>": {"email", "roles", "capabilities"}}}`, as `add_splunk_user`.
    if let Some(users) = c.get("splunk_users").and_then(Value::as_object) {
        let mut splunkd = lock(&shared.splunkd);
        for (name, user) in users {
            splunkd.users.insert(name.clone(), user.clone());
        }
    }
    let mut soar = lock(&shared.soar);
    soar.token = s("soar_token").unwrap_or(soar.token.clone());
    soar.dedupe = b("soar_artifact_dedupe").unwrap_or(soar.dedupe);
    if let Some(n) = c.get("soar_page_padding").and_then(Value::as_u64) {
        soar.page_padding = usize::try_from(n).unwrap_or(usize::MAX).min(10_000_000);
    }
    drop(soar);
    let mut sf = lock(&shared.stackflow);
    sf.secret = s("stackflow_secret").unwrap_or(sf.secret.clone());
    sf.api_token = s("stackflow_api_token").unwrap_or(sf.api_token.clone());
    if let Some(n) = c.get("stackflow_page_padding").and_then(Value::as_u64) {
        sf.page_padding = usize::try_from(n).unwrap_or(usize::MAX).min(10_000_000);
    }
    if let Some(status) = c.get("stackflow_webhook_status").and_then(Value::as_u64) {
        sf.webhook_response = Some((status as u16, s("stackflow_webhook_body")));
    }
    drop(sf);
    let mut slack = lock(&shared.slack);
    slack.token = s("slack_token").unwrap_or(slack.token.clone());
    slack.rate_limit = b("slack_channel_rate_limit").unwrap_or(slack.rate_limit);
    if let Some(Ok(k)) =
        c.get("slack_known_channels").map(|v| serde_json::from_value::<Vec<String>>(v.clone()))
    {
        slack.known = Some(k);
    }
    crate::slack::apply_config(&mut slack, c);
    if let Some(r) = b("recording") {
        lock(&shared.log).disabled = !r;
    }
}

pub(crate) fn handle(shared: &Shared, req: &Request) -> Response {
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let ok = || Response::json(200, &json!({"ok": true}));
    let bad = |m: &str| Response::json(400, &json!({"ok": false, "error": m}));
    let sub = req.path.trim_start_matches("/_emulator/");
    match (req.method.as_str(), sub) {
        ("GET", "requests") => {
            let list: Vec<Value> = shared
                .requests()
                .into_iter()
                .map(|r| json!({"method": r.method, "path": r.path, "query": r.query, "headers": r.headers,
                                "body": String::from_utf8_lossy(&r.body), "status": r.status}))
                .collect();
            Response::json(200, &Value::Array(list))
        }
        ("GET", "state") => {
            Response::json(200, &state(shared, req.query_param("lists").as_deref() != Some("0")))
        }
        ("POST", "fault") => {
            let prefix = body.get("path_prefix").and_then(Value::as_str);
            match (prefix, body.get("fault").and_then(parse_fault)) {
                (Some(p), Some(f)) => {
                    shared.add_fault(
                        p,
                        f,
                        body.get("times").and_then(Value::as_u64).unwrap_or(1) as usize,
                    );
                    ok()
                }
                _ => bad("need path_prefix and a valid fault"),
            }
        }
        ("POST", "latency") => match (
            body.get("path_prefix").and_then(Value::as_str),
            body.get("ms").and_then(Value::as_u64),
        ) {
            (Some(p), Some(ms)) => {
                shared.set_latency(p, Duration::from_millis(ms));
                ok()
            }
            _ => bad("need path_prefix and ms"),
        },
        ("POST", "secret") => {
            let s = |k: &str| body.get(k).and_then(Value::as_str);
            match (s("realm"), s("username"), s("password")) {
                (realm, Some(u), Some(p)) => {
                    lock(&shared.splunkd).set_secret(realm.unwrap_or(""), u, p);
                    ok()
                }
                _ => bad("need username and password"),
            }
        }
        ("POST", "config") => {
            apply_config(shared, &body);
            ok()
        }
        ("POST", "clear_faults") => {
            lock(&shared.faults).clear();
            ok()
        }
        ("POST", "clear_requests") => {
            lock(&shared.log).items.clear();
            ok()
        }
        // Socket Mode (started with `--socket-mode`): queue an envelope, read the acks with
        // their latency (envelope written → ack read, measured here), count connections.
        ("POST", "socket/send") | ("GET", "socket/acks") | ("GET", "socket/connections") => {
            let socket = lock(&shared.slack).socket.as_ref().map(|(socket, _)| socket.clone());
            let Some(socket) = socket else { return bad("Socket Mode is not started") };
            match sub {
                "socket/send" => {
                    socket.send(body);
                    ok()
                }
                "socket/acks" => {
                    let acks: Vec<Value> = socket
                        .acks()
                        .into_iter()
                        .map(|ack| json!({"envelope_id": ack.envelope_id,
                            "latency_us": u64::try_from(ack.latency.as_micros()).unwrap_or(u64::MAX)}))
                        .collect();
                    Response::json(200, &Value::Array(acks))
                }
                _ => {
                    let (open, opened) = socket.connections();
                    Response::json(200, &json!({"open": open, "opened": opened}))
                }
            }
        }
        ("POST", "reset") => {
            shared.reset();
            ok()
        }
        _ => Response::json(404, &json!({"ok": false, "error": "unknown control endpoint"})),
    }
}
