//! splunkd's search endpoints (Splunk REST API Reference, "Search endpoints"; splunk-sdk-python
//! `Jobs.export`, `Jobs.oneshot`, `Jobs.create`, `Job.cancel`, `Job.is_ready`):
//! `POST …/search/jobs/export` (JSON lines streamed), `POST …/search/jobs` with
//! `exec_mode=oneshot` (`{"results": […]}` at the end), a normal job (`{"sid"}`, its
//! `dispatchState`, its results, 204 while it runs) and its cancellation (`DELETE
//! search/jobs/<sid>` or `POST …/control action=cancel`). `/services/` and
//! `/servicesNS/<user>/<app>/`, `search/jobs` and `search/v2/jobs` alike. Every request is
//! recorded with its namespace and parameters; the rows, a delay and an error are knobs.

use super::{Splunkd, messages};
use crate::http::{Request, Response, decode, parse_form};
use crate::stream::{Outcome, Streamed};
use crate::{Emulator, lock};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The most rows a generated answer holds (bounded memory whatever a test asks).
const MAX_GENERATED: usize = 1_000_000;

/// One search received, and what became of it.
struct Logged {
    record: Map<String, Value>,
    outcome: Option<Arc<Outcome>>,
}

struct Job {
    log: usize,
    created: Instant,
    rows: Vec<Value>,
}

#[derive(Default)]
pub(crate) struct Searches {
    /// Rows every search answers (`search_rows`); when empty, `row_count` generated rows.
    pub rows: Vec<Value>,
    pub row_count: usize,
    /// Time a search takes: export and oneshot answer after it, a job is `RUNNING` for it.
    pub delay: Duration,
    /// When set, a search is refused with 400 and this FATAL message (bad SPL).
    pub error: Option<String>,
    log: Vec<Logged>,
    jobs: BTreeMap<String, Job>,
    cancels: Vec<String>,
    next_sid: u64,
    in_flight: Arc<AtomicUsize>,
    peak: usize,
}

/// A generated row: field values as strings, as splunkd's JSON output gives them.
fn generated(i: usize) -> Value {
    json!({"_time": format!("2024-01-01T00:{:02}:{:02}.000+00:00", i / 60 % 60, i % 60),
           "host": format!("host-{}", i % 5), "user": format!("user{}", i % 7),
           "src": format!("10.0.{}.{}", i / 250 % 250, i % 250),
           "action": if i.is_multiple_of(2) { "allowed" } else { "blocked" }, "row": i.to_string()})
}

impl Searches {
    fn rows(&self) -> Vec<Value> {
        if self.rows.is_empty() {
            (0..self.row_count.min(MAX_GENERATED)).map(generated).collect()
        } else {
            self.rows.clone()
        }
    }
    fn running_jobs(&self) -> usize {
        self.jobs.values().filter(|j| j.created.elapsed() < self.delay).count()
    }
    fn note_peak(&mut self) {
        let now = self.in_flight.load(Ordering::SeqCst) + self.running_jobs();
        self.peak = self.peak.max(now);
    }
    fn view(&self) -> Vec<Value> {
        self.log
            .iter()
            .map(|l| {
                let mut r = l.record.clone();
                if let Some(o) = &l.outcome {
                    r.insert("completed".into(), o.completed.load(Ordering::SeqCst).into());
                    r.insert("aborted".into(), o.aborted.load(Ordering::SeqCst).into());
                }
                Value::Object(r)
            })
            .collect()
    }
}

/// Query and form parameters, the form's last value winning.
fn params(req: &Request) -> BTreeMap<String, String> {
    let mut all = req.query_pairs();
    all.extend(parse_form(&req.body));
    all.into_iter().collect()
}

fn number(p: &BTreeMap<String, String>, name: &str, default: usize) -> usize {
    p.get(name).and_then(|v| v.trim().parse().ok()).unwrap_or(default)
}

/// `count` (default `default`; 0: all, as the REST reference says for results) after `offset`.
fn window(rows: Vec<Value>, p: &BTreeMap<String, String>, default: usize) -> Vec<Value> {
    let count = number(p, "count", default);
    let take = if count == 0 { usize::MAX } else { count };
    rows.into_iter().skip(number(p, "offset", 0)).take(take).collect()
}

/// The field names of the rows, in first-seen order (the `fields` of a JSON answer).
fn fields(rows: &[Value]) -> Vec<Value> {
    let mut names: Vec<String> = Vec::new();
    for key in rows.iter().filter_map(Value::as_object).flat_map(|r| r.keys()) {
        if !names.contains(key) {
            names.push(key.clone());
        }
    }
    names.into_iter().map(|n| json!({"name": n})).collect()
}

/// `search/jobs[/...]` under `/servicesNS/<user>/<app>/` (`namespace`) or `/services/`.
pub(super) fn handle(
    s: &mut Splunkd,
    req: &Request,
    namespace: Option<(&str, &str)>,
    rest: &[&str],
) -> Response {
    let rest = match rest {
        ["v2", "jobs", rest @ ..] | ["jobs", rest @ ..] => rest,
        _ => return messages(404, "ERROR", &format!("Not Found: {}", req.path)),
    };
    let p = params(req);
    let m = req.method.as_str();
    let searches = &mut s.searches;
    match rest {
        ["export"] if m == "POST" || m == "GET" => start(searches, req, namespace, &p, "export"),
        [] if m == "POST" => {
            let mode = if p.get("exec_mode").map(String::as_str) == Some("oneshot") {
                "oneshot"
            } else {
                "job"
            };
            start(searches, req, namespace, &p, mode)
        }
        [sid] if m == "GET" => job_status(searches, &decode(sid, false)),
        [sid] if m == "DELETE" => cancel(searches, &decode(sid, false), "DELETE"),
        [sid, "control"] if m == "POST" => match p.get("action").map(String::as_str) {
            Some("cancel") => cancel(searches, &decode(sid, false), "control"),
            _ => messages(400, "ERROR", "Unsupported action"),
        },
        [sid, "results"] if m == "GET" || m == "POST" => results(searches, &decode(sid, false), &p),
        _ => messages(404, "ERROR", &format!("Not Found: {}", req.path)),
    }
}

/// Records a search and answers it as its endpoint does.
fn start(
    s: &mut Searches,
    req: &Request,
    namespace: Option<(&str, &str)>,
    p: &BTreeMap<String, String>,
    endpoint: &str,
) -> Response {
    let mut record = Map::new();
    record.insert("endpoint".into(), endpoint.into());
    record.insert("method".into(), req.method.clone().into());
    record.insert("user".into(), namespace.map(|(u, _)| decode(u, false)).into());
    record.insert("app".into(), namespace.map(|(_, a)| decode(a, false)).into());
    for key in ["search", "earliest_time", "latest_time", "output_mode", "count", "max_count"] {
        record.insert(key.into(), p.get(key).cloned().into());
    }
    record.insert("params".into(), json!(p));
    let log = s.log.len();
    s.log.push(Logged { record, outcome: None });
    if p.get("search").is_none_or(|q| q.trim().is_empty()) {
        return messages(400, "ERROR", "Missing search parameter");
    }
    if let Some(error) = &s.error {
        return messages(400, "FATAL", error);
    }
    let rows = s.rows();
    if endpoint == "job" {
        // Results a job keeps: `max_count` (default 10000, REST reference `search/jobs`).
        let rows: Vec<Value> = rows.into_iter().take(number(p, "max_count", 10_000)).collect();
        s.next_sid += 1;
        let sid = format!("{}.{}", crate::util::now_micros() / 1_000_000, s.next_sid);
        s.log[log].record.insert("sid".into(), sid.clone().into());
        s.jobs.insert(sid.clone(), Job { log, created: Instant::now(), rows });
        s.note_peak();
        // `{"sid": …}` with output_mode=json (splunk-sdk-python `_load_sid`), else XML.
        return if p.get("output_mode").map(String::as_str) == Some("json") {
            Response::json(201, &json!({"sid": sid}))
        } else {
            let mut r = Response::raw(201, format!("<response><sid>{sid}</sid></response>").into());
            r.headers = vec![("Content-Type".into(), "text/xml".into())];
            r
        };
    }
    let body = if endpoint == "export" {
        // One JSON object per line: `{"preview":false,"offset":N,"result":{…}}` (the format
        // splunk-sdk-python's JSONResultsReader reads line by line), `lastrow` on the last.
        let rows = window(rows, p, 0);
        let last = rows.len().saturating_sub(1);
        let mut out = Vec::new();
        for (i, row) in rows.into_iter().enumerate() {
            let mut line = json!({"preview": false, "offset": i, "result": row});
            if i == last {
                line["lastrow"] = true.into();
            }
            out.extend_from_slice(line.to_string().as_bytes());
            out.push(b'\n');
        }
        out
    } else {
        // Oneshot: `count` defaults to 100 (REST reference, `search/jobs` output parameters).
        let rows = window(rows, p, 100);
        let offset = number(p, "offset", 0);
        let answer = json!({"preview": false, "init_offset": offset, "messages": [],
                            "fields": fields(&rows), "results": rows});
        serde_json::to_vec(&answer).unwrap_or_default()
    };
    let outcome = Outcome::start(&s.in_flight);
    s.log[log].outcome = Some(outcome.clone());
    s.note_peak();
    let mut r = Response::raw(200, body);
    r.stream = Some(Streamed { delay: s.delay, chunked: endpoint == "export", outcome });
    r
}

fn unknown_sid() -> Response {
    messages(404, "FATAL", "Unknown sid.")
}

/// `GET search/jobs/<sid>`: `dispatchState` `RUNNING` for the configured delay, then `DONE`.
fn job_status(s: &Searches, sid: &str) -> Response {
    let Some(job) = s.jobs.get(sid) else { return unknown_sid() };
    let done = job.created.elapsed() >= s.delay;
    let progress = if done {
        1.0
    } else {
        job.created.elapsed().as_secs_f64() / s.delay.as_secs_f64().max(f64::MIN_POSITIVE)
    };
    let content = json!({"sid": sid, "dispatchState": if done { "DONE" } else { "RUNNING" },
        "isDone": done, "isFailed": false, "doneProgress": progress,
        "resultCount": if done { job.rows.len() } else { 0 }});
    Response::json(200, &json!({"entry": [{"name": sid, "content": content}]}))
}

/// `GET search/jobs/<sid>/results`: 204 while the job runs, then `{"results": […]}`.
fn results(s: &mut Searches, sid: &str, p: &BTreeMap<String, String>) -> Response {
    let Some(job) = s.jobs.get(sid) else { return unknown_sid() };
    if job.created.elapsed() < s.delay {
        return Response::raw(204, Vec::new());
    }
    let rows = window(job.rows.clone(), p, 100);
    let log = job.log;
    if let Some(record) = s.log.get_mut(log) {
        record.record.insert("results_read".into(), true.into());
    }
    Response::json(
        200,
        &json!({"preview": false, "init_offset": number(p, "offset", 0), "messages": [],
                "fields": fields(&rows), "results": rows}),
    )
}

/// Cancels a job (`DELETE` or `control action=cancel`): it is gone afterwards (404).
fn cancel(s: &mut Searches, sid: &str, how: &str) -> Response {
    let Some(job) = s.jobs.remove(sid) else { return unknown_sid() };
    s.cancels.push(sid.to_string());
    if let Some(record) = s.log.get_mut(job.log) {
        record.record.insert("cancelled".into(), how.into());
    }
    messages(200, "INFO", "Search job cancelled.")
}

/// `/_emulator/config` keys: `search_rows` (list of objects), `search_row_count` (generated
/// rows), `search_delay_ms`, `search_error` (string; `null` clears).
pub(crate) fn apply_config(s: &mut Searches, c: &Value) {
    if let Some(rows) = c.get("search_rows").and_then(Value::as_array) {
        s.rows = rows.clone();
    }
    if let Some(n) = c.get("search_row_count").and_then(Value::as_u64) {
        s.row_count = usize::try_from(n).unwrap_or(MAX_GENERATED).min(MAX_GENERATED);
    }
    if let Some(ms) = c.get("search_delay_ms").and_then(Value::as_u64) {
        s.delay = Duration::from_millis(ms);
    }
    match c.get("search_error") {
        Some(Value::String(e)) => s.error = Some(e.clone()),
        Some(Value::Null) => s.error = None,
        _ => {}
    }
}

/// The state snapshot's `splunk_searches`.
pub(crate) fn snapshot(s: &Searches) -> Value {
    json!({"requests": s.view(), "cancels": s.cancels, "peak_concurrent": s.peak})
}

impl Emulator {
    /// Rows every search answers (replaces a generated count).
    pub fn set_search_rows(&self, rows: Vec<Value>) {
        lock(&self.shared.splunkd).searches.rows = rows;
    }
    /// `n` generated rows (`_time, host, user, src, action, row`) when no rows are set.
    pub fn set_search_row_count(&self, n: usize) {
        lock(&self.shared.splunkd).searches.row_count = n.min(MAX_GENERATED);
    }
    /// Time each search takes (export/oneshot answer after it; a job runs for it).
    pub fn set_search_delay(&self, delay: Duration) {
        lock(&self.shared.splunkd).searches.delay = delay;
    }
    /// Refuse every search with 400 and this FATAL message (`None`: run them).
    pub fn set_search_error(&self, message: Option<&str>) {
        lock(&self.shared.splunkd).searches.error = message.map(str::to_string);
    }
    /// Searches received, in order: `{"endpoint": "export"|"oneshot"|"job", "method", "user",
    /// "app", "search", "earliest_time", "latest_time", "output_mode", "count", "max_count",
    /// "params"}`, plus `completed`/`aborted` (export, oneshot), `sid`, `cancelled`
    /// (`"DELETE"`/`"control"`) and `results_read` (jobs).
    pub fn splunk_searches(&self) -> Vec<Value> {
        lock(&self.shared.splunkd).searches.view()
    }
    /// Sids cancelled, in order.
    pub fn splunk_search_cancels(&self) -> Vec<String> {
        lock(&self.shared.splunkd).searches.cancels.clone()
    }
    /// Searches running now: export/oneshot answers not finished and jobs not done.
    pub fn splunk_searches_running(&self) -> usize {
        let splunkd = lock(&self.shared.splunkd);
        splunkd.searches.in_flight.load(Ordering::SeqCst) + splunkd.searches.running_jobs()
    }
    /// The most searches seen running at once (counted when one starts).
    pub fn splunk_search_peak(&self) -> usize {
        lock(&self.shared.splunkd).searches.peak
    }
}
