//! Loopback emulator of splunkd, Splunk SOAR, StackFlow ITSM, Slack and an OpenAI-compatible
//! model for StackFlow's tests and benchmarks: one HTTP(S) server on 127.0.0.1 answering all
//! five APIs by path, with request recording, fault injection and state inspection. This file
//! holds the public API.

mod control;
mod http;
mod llm;
mod proxy;
mod server;
mod slack;
mod slack_response_url;
mod socket_mode;
pub use socket_mode::Ack;
mod soar;
pub use proxy::ConnectProxy;
mod splunkd;
mod stackflow;
mod stream;
#[cfg(test)]
mod tests;
mod tls;
mod util;

use serde_json::Value;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// A scripted misbehaviour for the next matching request(s).
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Canned response.
    Status { status: u16, body: String, headers: Vec<(String, String)> },
    /// `status` (e.g. 429/503) with a `Retry-After: seconds` header and an API-shaped error body.
    RetryAfter { status: u16, seconds: u64 },
    /// Sleep, then answer normally (for client timeouts).
    Delay(Duration),
    /// Write the status line and part of the headers/body, then reset the socket (SO_LINGER 0).
    ResetMidResponse,
    /// Read the request, then close without answering.
    CloseWithoutResponse,
    /// Handle the request as usual (an incident is created, a message posted), then reset the
    /// socket instead of answering: the client cannot tell whether it worked.
    ResetAfterProcessing,
}

/// One request as received (recorded even when a fault answered it).
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// What we answered; 0 if the connection was dropped.
    pub status: u16,
}

impl Recorded {
    /// Header value, case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        http::header(&self.headers, name)
    }
    /// Body parsed as JSON; panics with the body text if it is not JSON (test helper).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body))
        })
    }
    /// `application/x-www-form-urlencoded` body decoded.
    pub fn form(&self) -> Vec<(String, String)> {
        http::parse_form(&self.body)
    }
    /// Decoded query string.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        http::parse_form(self.query.as_bytes())
    }
}

#[derive(Default)]
pub(crate) struct Log {
    next_seq: u64,
    items: Vec<(u64, Recorded)>,
    disabled: bool,
}

/// State shared by every listener incarnation of one emulator (survives stop/restart).
pub(crate) struct Shared {
    pub log: Mutex<Log>,
    pub faults: Mutex<Vec<(String, VecDeque<Fault>)>>,
    pub latency: Mutex<Vec<(String, Duration)>>,
    pub splunkd: Mutex<splunkd::Splunkd>,
    pub soar: Mutex<soar::Soar>,
    pub stackflow: Mutex<stackflow::StackFlow>,
    pub slack: Mutex<slack::Slack>,
    pub llm: Mutex<llm::Llm>,
    pub response_urls: Mutex<slack_response_url::ResponseUrls>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn new() -> Shared {
        Shared {
            log: Mutex::default(),
            faults: Mutex::default(),
            latency: Mutex::default(),
            splunkd: Mutex::new(splunkd::Splunkd::new()),
            soar: Mutex::new(soar::Soar::new()),
            stackflow: Mutex::new(stackflow::StackFlow::new()),
            slack: Mutex::new(slack::Slack::new()),
            llm: Mutex::new(llm::Llm::new()),
            response_urls: Mutex::default(),
        }
    }
    /// Back to a freshly started emulator (state, configuration, faults, latency, log).
    pub(crate) fn reset(&self) {
        // Recording is how the emulator was started (`--no-record`), not test state: keep it.
        let recording_disabled = lock(&self.log).disabled;
        *lock(&self.log) = Log { disabled: recording_disabled, ..Log::default() };
        lock(&self.faults).clear();
        lock(&self.latency).clear();
        *lock(&self.splunkd) = splunkd::Splunkd::new();
        let mut soar = soar::Soar::new();
        soar.slim = recording_disabled;
        *lock(&self.soar) = soar;
        *lock(&self.stackflow) = stackflow::StackFlow::new();
        let socket = lock(&self.slack).socket.take();
        let mut slack = slack::Slack::new();
        slack.socket = socket;
        *lock(&self.slack) = slack;
        *lock(&self.llm) = llm::Llm::new();
        *lock(&self.response_urls) = Default::default();
    }
    pub(crate) fn record(&self, r: Recorded) -> Option<u64> {
        let mut log = lock(&self.log);
        if log.disabled {
            return None;
        }
        let seq = log.next_seq;
        log.next_seq += 1;
        log.items.push((seq, r));
        Some(seq)
    }
    pub(crate) fn set_status(&self, seq: Option<u64>, status: u16) {
        let Some(seq) = seq else { return };
        let mut log = lock(&self.log);
        if let Ok(i) = log.items.binary_search_by_key(&seq, |(s, _)| *s) {
            log.items[i].1.status = status;
        }
    }
    pub(crate) fn requests(&self) -> Vec<Recorded> {
        lock(&self.log).items.iter().map(|(_, r)| r.clone()).collect()
    }
    pub(crate) fn add_fault(&self, prefix: &str, fault: Fault, times: usize) {
        let mut faults = lock(&self.faults);
        let idx = match faults.iter().position(|(p, _)| p == prefix) {
            Some(i) => i,
            None => {
                faults.push((prefix.to_string(), VecDeque::new()));
                faults.len() - 1
            }
        };
        faults[idx].1.extend(std::iter::repeat_n(fault, times));
    }
    pub(crate) fn take_fault(&self, path: &str) -> Option<Fault> {
        let mut faults = lock(&self.faults);
        faults
            .iter_mut()
            .filter(|(p, q)| path.starts_with(p.as_str()) && !q.is_empty())
            .max_by_key(|(p, _)| p.len())?
            .1
            .pop_front()
    }
    pub(crate) fn set_latency(&self, prefix: &str, delay: Duration) {
        let mut lat = lock(&self.latency);
        lat.retain(|(p, _)| p != prefix);
        if !delay.is_zero() {
            lat.push((prefix.to_string(), delay));
        }
    }
    pub(crate) fn latency_for(&self, path: &str) -> Option<Duration> {
        lock(&self.latency)
            .iter()
            .filter(|(p, _)| path.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, d)| *d)
    }
}

/// A running emulator; dropping it stops its listener and connections.
pub struct Emulator {
    shared: Arc<Shared>,
    run: Arc<server::Run>,
    port: u16,
    tls: Option<Arc<tls::Tls>>,
}

impl Emulator {
    /// HTTPS on 127.0.0.1:0 with a fresh test CA.
    pub fn start() -> Emulator {
        Emulator::start_on(0, true)
    }
    /// Plain HTTP on 127.0.0.1:0.
    pub fn start_plain() -> Emulator {
        Emulator::start_on(0, false)
    }
    /// Start on a given port (0 = any), HTTPS when `tls`.
    pub fn start_on(port: u16, tls: bool) -> Emulator {
        let tls = tls.then(|| Arc::new(tls::generate()));
        Emulator::launch(Arc::new(Shared::new()), port, tls)
    }
    fn launch(shared: Arc<Shared>, port: u16, tls: Option<Arc<tls::Tls>>) -> Emulator {
        let (run, port) =
            server::spawn(shared.clone(), port, tls.as_ref().map(|t| t.config.clone()));
        Emulator { shared, run, port, tls }
    }
    /// After [`stop`](Self::stop): listen on the same port again with the same CA and state.
    pub fn restart_same_port(&self) -> Emulator {
        Emulator::launch(self.shared.clone(), self.port, self.tls.clone())
    }
    /// Stop accepting, close the listener and every open connection.
    pub fn stop(&self) {
        self.run.stop();
    }
    /// `https://127.0.0.1:PORT` (or `http://`).
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", if self.tls.is_some() { "https" } else { "http" }, self.port)
    }
    pub fn port(&self) -> u16 {
        self.port
    }
    /// PEM of the CA that signed the server certificate (empty for plain HTTP).
    pub fn ca_pem(&self) -> String {
        self.tls.as_ref().map(|t| t.ca_pem.clone()).unwrap_or_default()
    }
    pub fn write_ca(&self, path: &std::path::Path) -> std::io::Result<()> {
        std::fs::write(path, self.ca_pem())
    }
    /// Every request received, in arrival order (control endpoints excluded).
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests()
    }
    /// Requests whose path (without query) starts with `path_prefix`.
    pub fn requests_to(&self, path_prefix: &str) -> Vec<Recorded> {
        let log = lock(&self.shared.log);
        log.items
            .iter()
            .filter(|(_, r)| r.path.starts_with(path_prefix))
            .map(|(_, r)| r.clone())
            .collect()
    }
    pub fn clear_requests(&self) {
        lock(&self.shared.log).items.clear();
    }
    /// Turn request recording off/on (benchmarks with huge bodies); default on.
    pub fn set_recording(&self, on: bool) {
        lock(&self.shared.log).disabled = !on;
        lock(&self.shared.soar).slim = !on;
    }
    /// The next `times` requests whose path starts with `path_prefix` get `fault` (FIFO per
    /// prefix; the longest matching prefix with a pending fault wins).
    pub fn fault(&self, path_prefix: &str, fault: Fault, times: usize) {
        self.shared.add_fault(path_prefix, fault, times);
    }
    /// Drop every pending fault.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }
    /// Delay every matching request (longest prefix wins; zero removes). A prefix may name the
    /// method too (`"POST /rest/artifact"`), which wins over a path-only prefix.
    pub fn set_latency(&self, path_prefix: &str, delay: Duration) {
        self.shared.set_latency(path_prefix, delay);
    }
    /// Reset everything to a freshly started emulator (same port and CA).
    pub fn reset(&self) {
        self.shared.reset();
    }
    /// Snapshot of all emulated state as JSON (`lists=false`: counts only for SOAR objects).
    pub fn state_json(&self, lists: bool) -> Value {
        control::state(&self.shared, lists)
    }

    // splunkd
    pub fn set_session_key(&self, key: &str) {
        lock(&self.shared.splunkd).session_key = key.into();
    }
    pub fn set_secret(&self, realm: &str, username: &str, clear_password: &str) {
        lock(&self.shared.splunkd).set_secret(realm, username, clear_password);
    }
    /// A stored secret's clear text (what `storage/passwords` holds now).
    pub fn secret(&self, realm: &str, username: &str) -> Option<String> {
        lock(&self.shared.splunkd).secret(realm, username)
    }
    /// Names written through `POST`/`DELETE storage/passwords`, in order.
    pub fn secret_writes(&self) -> Vec<String> {
        lock(&self.shared.splunkd).secret_writes.clone()
    }
    /// The KV store's status for an insert whose `_key` exists (default 409).
    pub fn set_kv_conflict_status(&self, status: u16) {
        lock(&self.shared.splunkd).kv_conflict_status = status;
    }
    pub fn kv_records(&self, collection: &str) -> Vec<Value> {
        lock(&self.shared.splunkd).kv_records(collection)
    }
    /// Decoded form bodies of accepted `POST /services/notable_update`.
    pub fn notable_updates(&self) -> Vec<Vec<(String, String)>> {
        lock(&self.shared.splunkd).notable_updates.clone()
    }
    /// Capabilities `GET /services/authentication/current-context` reports (default: admin-like,
    /// including `stackflow_update_notables`).
    pub fn set_capabilities(&self, capabilities: &[&str]) {
        lock(&self.shared.splunkd).capabilities =
            capabilities.iter().map(|capability| capability.to_string()).collect();
    }
    /// The session's user name and roles `current-context` reports (default `admin`, no roles).
    pub fn set_user(&self, username: &str, roles: &[&str]) {
        let mut splunkd = lock(&self.shared.splunkd);
        splunkd.username = username.into();
        splunkd.roles = roles.iter().map(|role| role.to_string()).collect();
    }
    /// The user name `current-context` reports (default `admin`).
    pub fn set_username(&self, username: &str) {
        lock(&self.shared.splunkd).username = username.into();
    }
    /// A Splunk user (`authentication/users/<name>`), with its effective capabilities.
    pub fn add_splunk_user(&self, name: &str, email: &str, roles: &[&str], capabilities: &[&str]) {
        lock(&self.shared.splunkd).users.insert(
            name.into(),
            serde_json::json!({"email": email, "roles": roles, "capabilities": capabilities}),
        );
    }
    /// Emulate Enterprise Security of this version (`None`: not installed).
    pub fn set_es_version(&self, version: Option<&str>) {
        lock(&self.shared.splunkd).es_version = version.map(str::to_string);
    }
    /// ES 8 finding updates received: `{"id", "notable_time", "body"}`.
    pub fn es8_updates(&self) -> Vec<Value> {
        lock(&self.shared.splunkd).es8_updates.clone()
    }
    /// ES 8 notes received: `{"id", "notable_time", "content"}`.
    pub fn es8_notes(&self) -> Vec<Value> {
        lock(&self.shared.splunkd).es8_notes.clone()
    }
    pub fn set_notable_status(&self, event_id: &str, status: &str) {
        lock(&self.shared.splunkd).notable_status.insert(event_id.into(), status.into());
    }
    /// Current status of a notable (set by `set_notable_status` or an accepted update).
    pub fn notable_status(&self, event_id: &str) -> Option<String> {
        lock(&self.shared.splunkd).notable_status.get(event_id).cloned()
    }

    // SOAR
    pub fn set_soar_token(&self, token: &str) {
        lock(&self.shared.soar).token = token.into();
    }
    pub fn soar_containers(&self) -> Vec<Value> {
        lock(&self.shared.soar).containers_view()
    }
    pub fn soar_artifacts(&self) -> Vec<Value> {
        lock(&self.shared.soar).artifacts.clone()
    }
    pub fn soar_playbook_runs(&self) -> Vec<Value> {
        lock(&self.shared.soar).runs.clone()
    }
    pub fn set_soar_artifact_dedupe(&self, on: bool) {
        lock(&self.shared.soar).dedupe = on;
    }
    /// Seed a container (any fields); returns its id.
    pub fn add_soar_container(&self, container: Value) -> u64 {
        lock(&self.shared.soar).seed_container(container)
    }
    /// Sets a run's status (its `update_time` moves; a final status sets `end_time`).
    pub fn set_soar_playbook_run_status(&self, run_id: &str, status: &str) {
        lock(&self.shared.soar).set_run_status(run_id, status);
    }
    /// Changes a container's fields (`update_time` moves); false if there is no such container.
    pub fn update_soar_container(&self, id: u64, fields: Value) -> bool {
        let fields = fields.as_object().cloned().unwrap_or_default();
        lock(&self.shared.soar).update_container(id, &fields)
    }

    // StackFlow
    pub fn set_stackflow_secret(&self, secret: &str) {
        lock(&self.shared.stackflow).secret = secret.into();
    }
    pub fn set_stackflow_api_token(&self, token: &str) {
        lock(&self.shared.stackflow).api_token = token.into();
    }
    pub fn stackflow_incidents(&self) -> Vec<Value> {
        lock(&self.shared.stackflow).incidents.clone()
    }
    /// Seed an incident for read-back (replaces one with the same `id`).
    pub fn add_stackflow_incident(&self, incident: Value) {
        lock(&self.shared.stackflow).upsert(incident);
    }
    /// Changes an incident's fields (`updated_at` moves); false if there is no such incident.
    pub fn update_stackflow_incident(&self, id: &str, fields: Value) -> bool {
        lock(&self.shared.stackflow).update(id, &fields)
    }
    /// Webhook answer: `status` and body (`None` = empty body). Statuses ≥ 400 create no incident.
    pub fn set_stackflow_webhook_response(&self, status: u16, body: Option<String>) {
        lock(&self.shared.stackflow).webhook_response = Some((status, body));
    }

    // Slack
    pub fn set_slack_token(&self, token: &str) {
        lock(&self.shared.slack).token = token.into();
    }
    pub fn slack_messages(&self) -> Vec<Value> {
        lock(&self.shared.slack).messages.clone()
    }
    pub fn set_slack_channel_rate_limit(&self, on: bool) {
        lock(&self.shared.slack).rate_limit = on;
    }
    /// Starts the Socket Mode WebSocket server (TLS with this emulator's CA when it has one);
    /// `apps.connections.open` answers with its URL from then on.
    pub fn start_socket_mode(&self) {
        let mut slack = lock(&self.shared.slack);
        if slack.socket.is_none() {
            let config = self.tls.as_ref().map(|t| t.config.clone());
            slack.socket =
                Some((Arc::new(socket_mode::SocketMode::start(config)), self.tls.is_some()));
        }
    }
    fn socket_mode(&self) -> Arc<socket_mode::SocketMode> {
        let slack = lock(&self.shared.slack);
        slack.socket.as_ref().map(|(s, _)| s.clone()).expect("start_socket_mode first")
    }
    /// Queues an envelope (e.g. an `interactive` one) for the next open connection.
    pub fn socket_send(&self, envelope: Value) {
        self.socket_mode().send(envelope);
    }
    /// Acknowledgements received, in order.
    pub fn socket_acks(&self) -> Vec<Ack> {
        self.socket_mode().acks()
    }
    /// (open now, opened since start) Socket Mode connections.
    pub fn socket_connections(&self) -> (usize, u64) {
        self.socket_mode().connections()
    }
    /// Envelopes not acknowledged yet.
    pub fn socket_unacked(&self) -> usize {
        self.socket_mode().unacked()
    }
    /// Sends Slack's `disconnect` message on every open connection.
    pub fn socket_disconnect(&self) {
        self.socket_mode().disconnect_all();
    }
    /// Drops every open connection without a close frame.
    pub fn socket_drop(&self) {
        self.socket_mode().drop_all();
    }
    pub fn set_slack_app_token(&self, token: &str) {
        lock(&self.shared.slack).app_token = token.into();
    }
    /// A user `users.info` knows (the `user` object, e.g. with `profile.email`).
    pub fn add_slack_user(&self, id: &str, user: Value) {
        lock(&self.shared.slack).users.insert(id.into(), user);
    }
    /// `chat.postEphemeral` requests received.
    pub fn slack_ephemeral(&self) -> Vec<Value> {
        lock(&self.shared.slack).ephemeral.clone()
    }
    /// A `response_url` for interaction `n` of this emulator (`/actions/…`).
    pub fn slack_response_url(&self, n: u64) -> String {
        slack_response_url::url_for(&self.url(), n)
    }
    /// Bodies posted to response URLs (each with its `path`).
    pub fn slack_response_url_posts(&self) -> Vec<Value> {
        lock(&self.shared.response_urls).posts.clone()
    }
    /// Makes `chat.postEphemeral` answer `{"ok": false, "error": <error>}` (`None`: normal).
    pub fn set_slack_ephemeral_refusal(&self, error: Option<&str>) {
        lock(&self.shared.response_urls).refuse_ephemeral = error.map(str::to_string);
    }
    /// Queues a text frame as it is (e.g. not JSON) for the next open connection.
    pub fn socket_send_raw(&self, text: &str) {
        self.socket_mode().send_raw(text);
    }
    /// Queues one copy of an envelope for every open connection (two listeners receiving the
    /// same click, as a cluster might after a re-delivery).
    pub fn socket_send_to_all(&self, envelope: Value) {
        self.socket_mode().send_to_all(envelope);
    }
    pub fn set_slack_known_channels(&self, channels: &[&str]) {
        lock(&self.shared.slack).known = Some(channels.iter().map(|c| c.to_string()).collect());
    }

    // OpenAI-compatible chat completions (`/v1/chat/completions`); slow or failing models are
    // `set_latency("/v1/", …)` and `fault("/v1/", …)`.
    pub fn set_llm_key(&self, key: &str) {
        lock(&self.shared.llm).key = key.into();
    }
    /// Answer every request with a refusal (`message.refusal`, `finish_reason: content_filter`).
    pub fn set_llm_refuse(&self, on: bool) {
        lock(&self.shared.llm).refuse = on;
    }
    /// A fixed answer instead of the default, which repeats the request's placeholders.
    pub fn set_llm_answer(&self, answer: Option<&str>) {
        lock(&self.shared.llm).answer = answer.map(str::to_string);
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.run.stop();
    }
}
