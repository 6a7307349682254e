//! Splunk SOAR REST emulation: containers (create with validation, SDI dedupe, inline artifacts,
//! partial update), artifacts (object or bulk array, cef_types checks, optional SDI dedupe),
//! playbook runs, action runs (`soar_actions.rs`), and list endpoints with page/page_size/sort/order/`_filter_*` semantics.

#[path = "soar_actions.rs"]
mod actions;
#[path = "soar_literal.rs"]
mod literal;
#[path = "soar_padding.rs"]
mod padding;

use crate::http::{Request, Response};
use crate::util::iso_now;
use literal::parse_literal;
use padding::padded;
use serde_json::{Map, Value, json};
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

pub(crate) struct Soar {
    pub token: String,
    pub dedupe: bool,
    containers: Vec<Value>,
    sdi: HashMap<String, u64>,
    pub artifacts: Vec<Value>,
    by_container: HashMap<u64, Vec<u64>>,
    artifact_sdi: HashMap<(u64, String), u64>,
    pub runs: Vec<Value>,
    /// Action runs (`soar_actions.rs`).
    pub action_runs: Vec<Value>,
    /// Keep only id, container and SDI of each artifact (benchmarks: 100,000s of artifacts).
    pub slim: bool,
    /// Containers (ids above any real one, never linked) put in front of the first page of
    /// every container list, whatever `page_size` asked: a SOAR whose answer holds far more
    /// than a page (SOAR's REST API documents `page_size` as a request, and `page_size=0` as
    /// "all"; a client must survive an answer of any size).
    pub page_padding: usize,
}

const LABELS: [&str; 3] = ["events", "notable", "incident"];
const SEVERITIES: [&str; 3] = ["high", "medium", "low"];
const SENSITIVITIES: [&str; 4] = ["white", "green", "amber", "red"];

fn failed(status: u16, message: &str) -> Response {
    Response::json(status, &json!({"failed": true, "message": message}))
}

fn as_id(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn check_enum(
    obj: &Map<String, Value>,
    field: &str,
    allowed: &[&str],
    what: &str,
) -> Result<(), String> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        Some(Value::String(s)) if field == "label" => Err(format!("{s} is not a known label.")),
        Some(v) => Err(format!("{what} matching query does not exist. ({field}={v})")),
    }
}

fn validate_artifact(obj: &Map<String, Value>) -> Result<(), String> {
    check_enum(obj, "severity", &SEVERITIES, "Severity")?;
    let cef = match obj.get("cef") {
        None | Some(Value::Null) => None,
        Some(Value::Object(c)) => Some(c),
        Some(_) => return Err("cef must be a JSON object".into()),
    };
    match obj.get("cef_types") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(types)) => types.iter().try_for_each(|(k, v)| {
            if !cef.is_some_and(|c| c.contains_key(k)) {
                return Err(format!("cef_types key '{k}' is not a key of cef"));
            }
            match v.as_array() {
                Some(a) if a.iter().all(Value::is_string) => Ok(()),
                _ => Err(format!("cef_types['{k}'] must be a list of strings")),
            }
        }),
        Some(_) => Err("cef_types must be a JSON object".into()),
    }
}

impl Soar {
    pub fn new() -> Soar {
        Soar {
            token: "soar-token".into(),
            dedupe: false,
            containers: Vec::new(),
            sdi: HashMap::new(),
            artifacts: Vec::new(),
            by_container: HashMap::new(),
            artifact_sdi: HashMap::new(),
            runs: Vec::new(),
            action_runs: Vec::new(),
            slim: false,
            page_padding: 0,
        }
    }
    fn container_out(&self, c: &Value) -> Value {
        let mut c = c.clone();
        let n = as_id(c.get("id")).and_then(|id| self.by_container.get(&id)).map_or(0, Vec::len);
        c["artifact_count"] = n.into();
        c
    }
    pub fn containers_view(&self) -> Vec<Value> {
        self.containers.iter().map(|c| self.container_out(c)).collect()
    }
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.containers.len(), self.artifacts.len(), self.runs.len())
    }
    fn store_container(&mut self, mut obj: Map<String, Value>) -> u64 {
        let id = self.containers.len() as u64 + 1;
        obj.insert("id".into(), id.into());
        for (k, v) in [
            ("status", json!("new")),
            ("severity", json!("medium")),
            ("sensitivity", json!("amber")),
        ] {
            obj.entry(k).or_insert(v);
        }
        for k in ["owner_name", "close_time", "owner"] {
            obj.entry(k).or_insert(Value::Null);
        }
        obj.entry("create_time").or_insert_with(|| iso_now().into());
        obj.entry("update_time").or_insert_with(|| iso_now().into());
        obj.entry("container_type").or_insert_with(|| "default".into());
        if let Some(sdi) = obj.get("source_data_identifier").and_then(Value::as_str) {
            self.sdi.insert(sdi.to_string(), id);
        }
        self.containers.push(Value::Object(obj));
        id
    }
    pub fn seed_container(&mut self, c: Value) -> u64 {
        let mut obj = c.as_object().cloned().unwrap_or_default();
        obj.remove("id");
        self.store_container(obj)
    }
    pub fn set_run_status(&mut self, run_id: &str, status: &str) {
        if let Some(r) =
            run_id.trim().parse::<usize>().ok().and_then(|i| self.runs.get_mut(i.wrapping_sub(1)))
        {
            r["status"] = status.into();
            r["update_time"] = iso_now().into();
            if status != "running" {
                r["end_time"] = iso_now().into();
            }
        }
    }
    /// Changes a container's fields as an analyst or a playbook would (`update_time` moves;
    /// closing sets `close_time`). False when there is no such container.
    pub fn update_container(&mut self, id: u64, fields: &Map<String, Value>) -> bool {
        let Some(c) = id
            .checked_sub(1)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.containers.get_mut(i))
            .and_then(Value::as_object_mut)
        else {
            return false;
        };
        let closing = fields.get("status").and_then(Value::as_str) == Some("closed");
        for (k, v) in fields.iter().filter(|(k, _)| k.as_str() != "id") {
            c.insert(k.clone(), v.clone());
        }
        if closing && c.get("close_time").is_none_or(Value::is_null) {
            c.insert("close_time".into(), iso_now().into());
        }
        c.insert("update_time".into(), iso_now().into());
        true
    }

    fn create_container(&mut self, body: Value) -> Response {
        let Value::Object(mut obj) = body else {
            return failed(400, "Request body must be a JSON object");
        };
        let inline = obj.remove("artifacts");
        let named = obj.get("name").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
        if !named || !obj.get("label").is_some_and(Value::is_string) {
            return failed(400, "name and label are required fields");
        }
        let checks = check_enum(&obj, "label", &LABELS, "Label")
            .and_then(|_| check_enum(&obj, "severity", &SEVERITIES, "Severity"))
            .and_then(|_| check_enum(&obj, "sensitivity", &SENSITIVITIES, "Sensitivity"));
        if let Err(m) = checks {
            return failed(400, &m);
        }
        if obj.get("status").is_some_and(|s| !s.is_string() && !s.is_null()) {
            return failed(400, "'int' object has no attribute 'lower'");
        }
        if let Some(existing) =
            obj.get("source_data_identifier").and_then(Value::as_str).and_then(|s| self.sdi.get(s))
        {
            let body = json!({"failed": true, "existing_container_id": existing, "message": "duplicate source_data_identifier"});
            return Response::json(400, &body);
        }
        let arts = match inline {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a,
            Some(_) => return failed(400, "artifacts must be a list"),
        };
        for a in &arts {
            match a.as_object().map(validate_artifact) {
                Some(Ok(())) => {}
                Some(Err(m)) => return failed(400, &m),
                None => return failed(400, "artifact must be a JSON object"),
            }
        }
        let id = self.store_container(obj);
        let ids: Vec<Value> = arts
            .into_iter()
            .filter_map(|a| self.create_artifact(a, Some(id)).1.get("id").cloned())
            .collect();
        Response::json(200, &json!({"success": true, "id": id, "new_artifact_ids": ids}))
    }

    /// One artifact; returns (HTTP status, per-item result).
    fn create_artifact(&mut self, item: Value, container: Option<u64>) -> (u16, Value) {
        let Value::Object(mut obj) = item else {
            return (400, json!({"failed": true, "message": "artifact must be a JSON object"}));
        };
        let cid = match container.or_else(|| as_id(obj.get("container_id"))) {
            Some(c) => c,
            None => {
                let m = "An argument string must include the following fields: container_id";
                return (400, json!({"failed": true, "message": m}));
            }
        };
        if cid == 0 || cid as usize > self.containers.len() {
            return (
                400,
                json!({"failed": true, "message": format!("Invalid container_id {cid}: container not found")}),
            );
        }
        if let Err(m) = validate_artifact(&obj) {
            return (400, json!({"failed": true, "message": m}));
        }
        let sdi = obj.get("source_data_identifier").and_then(Value::as_str).map(str::to_string);
        if let Some(existing) = sdi
            .as_ref()
            .filter(|_| self.dedupe)
            .and_then(|s| self.artifact_sdi.get(&(cid, s.clone())))
        {
            let body = json!({"failed": true, "existing_artifact_id": existing, "message": "artifact already exists"});
            return (400, body);
        }
        let id = self.artifacts.len() as u64 + 1;
        obj.remove("container_id");
        obj.insert("id".into(), id.into());
        obj.insert("container".into(), cid.into());
        obj.entry("create_time").or_insert_with(|| iso_now().into());
        obj.entry("update_time").or_insert_with(|| iso_now().into());
        if self.slim {
            obj.retain(|key, _| {
                matches!(key.as_str(), "id" | "container" | "source_data_identifier")
            });
        }
        self.artifacts.push(Value::Object(obj));
        self.by_container.entry(cid).or_default().push(id);
        if let Some(s) = sdi {
            self.artifact_sdi.entry((cid, s)).or_insert(id);
        }
        (200, json!({"success": true, "id": id, "container_id": cid}))
    }

    fn playbook_run(&mut self, body: Value) -> Response {
        let Some(obj) = body.as_object() else {
            return failed(400, "Request body must be a JSON object");
        };
        let cid = as_id(obj.get("container_id"));
        let Some(cid) = cid.filter(|&c| c > 0 && c as usize <= self.containers.len()) else {
            return failed(
                404,
                &format!("Container {} not found", obj.get("container_id").unwrap_or(&Value::Null)),
            );
        };
        let Some(playbook) = obj.get("playbook_id").filter(|p| p.is_string() || p.is_number())
        else {
            return failed(400, "playbook_id is required");
        };
        if obj.get("run") != Some(&Value::Bool(true)) {
            return failed(400, "run must be true");
        }
        let id = self.runs.len() + 1;
        let scope = obj.get("scope").cloned().unwrap_or_else(|| "new".into());
        self.runs.push(json!({"id": id, "status": "running", "container": cid, "playbook": playbook, "scope": scope,
                              "message": "", "cancelled": false, "start_time": iso_now(), "end_time": null,
                              "update_time": iso_now()}));
        Response::json(200, &json!({"playbook_run_id": id.to_string(), "received": true}))
    }
}

pub(crate) fn handle(s: &mut Soar, req: &Request) -> Response {
    if req.header("ph-auth-token") != Some(s.token.as_str()) {
        return failed(401, "Invalid token");
    }
    let segs: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    let body = || serde_json::from_slice::<Value>(&req.body);
    let id = |seg: &str| seg.parse::<usize>().ok().filter(|&i| i > 0);
    match (req.method.as_str(), &segs[1..]) {
        ("POST", ["container"]) => match body() {
            Ok(v) => s.create_container(v),
            Err(e) => failed(400, &format!("Invalid JSON: {e}")),
        },
        ("POST", ["container", cid]) => {
            match (id(cid).filter(|&i| i <= s.containers.len()), body()) {
                (Some(i), Ok(Value::Object(upd))) => {
                    s.update_container(i as u64, &upd);
                    Response::json(200, &json!({"success": true, "id": i}))
                }
                (None, _) => failed(404, "Requested item not found"),
                _ => failed(400, "Request body must be a JSON object"),
            }
        }
        ("POST", ["artifact"]) => match body() {
            Ok(Value::Array(items)) => {
                let results: Vec<Value> =
                    items.into_iter().map(|a| s.create_artifact(a, None).1).collect();
                Response::json(200, &Value::Array(results))
            }
            Ok(v) => {
                let (status, r) = s.create_artifact(v, None);
                Response::json(status, &r)
            }
            Err(e) => failed(400, &format!("Invalid JSON: {e}")),
        },
        ("POST", ["playbook_run"]) => match body() {
            Ok(v) => s.playbook_run(v),
            Err(e) => failed(400, &format!("Invalid JSON: {e}")),
        },
        ("POST", ["playbook_run", rid]) => match id(rid).and_then(|i| s.runs.get_mut(i - 1)) {
            Some(r)
                if body().ok().and_then(|b| b.get("cancel").cloned())
                    == Some(Value::Bool(true)) =>
            {
                r["status"] = "cancelled".into();
                r["cancelled"] = true.into();
                r["update_time"] = iso_now().into();
                Response::json(200, &json!({"success": true}))
            }
            Some(_) => failed(400, "Unsupported update"),
            None => failed(404, "Requested item not found"),
        },
        ("GET", ["container"]) => {
            let answer = list(s.containers.iter(), req, None, |c| s.container_out(c));
            let first = req.query_param("page").is_none_or(|page| page == "0");
            if s.page_padding == 0 || answer.status != 200 || !first {
                return answer;
            }
            padded(answer, s.page_padding)
        }
        ("GET", ["container", cid]) => match id(cid).and_then(|i| s.containers.get(i - 1)) {
            Some(c) => Response::json(200, &s.container_out(c)),
            None => failed(404, "Requested item not found"),
        },
        ("GET", ["container", cid, "artifacts"]) => {
            let ids = id(cid)
                .and_then(|c| s.by_container.get(&(c as u64)))
                .map(Vec::as_slice)
                .unwrap_or_default();
            list(ids.iter().map(|&i| &s.artifacts[i as usize - 1]), req, None, Value::clone)
        }
        ("GET", ["container", cid, "playbook_runs"]) => {
            let c = id(cid).unwrap_or(0) as u64;
            list(
                s.runs.iter().filter(|r| as_id(r.get("container")) == Some(c)),
                req,
                None,
                Value::clone,
            )
        }
        ("GET", ["artifact"]) => {
            let fc = req
                .query_param("_filter_container")
                .or_else(|| req.query_param("_filter_container_id"));
            match fc.map(|v| lit_id(&v)) {
                Some(c) => {
                    let ids = c
                        .and_then(|c| s.by_container.get(&c))
                        .map(Vec::as_slice)
                        .unwrap_or_default();
                    list(
                        ids.iter().map(|&i| &s.artifacts[i as usize - 1]),
                        req,
                        Some("container"),
                        Value::clone,
                    )
                }
                None => list(s.artifacts.iter(), req, None, Value::clone),
            }
        }
        ("GET", ["artifact", aid]) => match id(aid).and_then(|i| s.artifacts.get(i - 1)) {
            Some(a) => Response::json(200, a),
            None => failed(404, "Requested item not found"),
        },
        ("GET", [what @ ("action_run" | "app_run"), rest @ ..]) => {
            actions::handle(s, req, what, rest)
        }
        ("GET", ["playbook_run"]) => list(s.runs.iter(), req, None, Value::clone),
        ("GET", ["playbook_run", rid]) => match id(rid).and_then(|i| s.runs.get(i - 1)) {
            Some(r) => Response::json(200, r),
            None => failed(404, "Requested item not found"),
        },
        _ => failed(404, &format!("Not found: {} {}", req.method, req.path)),
    }
}

fn lit_id(v: &str) -> Option<u64> {
    as_id(Some(&parse_literal(v).ok()?))
}

/// Equality tolerant of number-vs-numeric-string.
fn loose_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::Number(n)) | (Value::Number(n), Value::String(x)) => {
            x.trim() == n.to_string()
        }
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn cmp_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x.as_f64().partial_cmp(&y.as_f64()).unwrap_or(Ordering::Equal)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        _ => a.to_string().cmp(&b.to_string()),
    }
}

struct Filter {
    field: String,
    op: String,
    arg: Value,
    exclude: bool,
    /// For `in` with a list of strings only: the strings, and their trimmed forms (a number
    /// loosely equals a string whose trimmed text is its decimal form). Hash lookups keep
    /// `_filter_source_data_identifier__in=[…hundreds…]` over thousands of containers cheap;
    /// the answer is the same as the linear `loose_eq` scan.
    in_strings: Option<(HashSet<String>, HashSet<String>)>,
}

impl Filter {
    fn test(&self, obj: &Value) -> bool {
        let v = obj.get(&self.field).unwrap_or(&Value::Null);
        let text = |x: &Value| x.as_str().map(str::to_string).unwrap_or_else(|| x.to_string());
        let hit = match self.op.as_str() {
            "exact" | "" => loose_eq(v, &self.arg),
            "iexact" => text(v).eq_ignore_ascii_case(&text(&self.arg)),
            "in" => match (&self.in_strings, v) {
                (Some((exact, _)), Value::String(x)) => exact.contains(x),
                (Some((_, trimmed)), Value::Number(n)) => trimmed.contains(&n.to_string()),
                _ => self.arg.as_array().is_some_and(|a| a.iter().any(|x| loose_eq(v, x))),
            },
            "contains" => text(v).contains(&text(&self.arg)),
            "icontains" => text(v).to_lowercase().contains(&text(&self.arg).to_lowercase()),
            "startswith" => text(v).starts_with(&text(&self.arg)),
            "isnull" => v.is_null() == (self.arg == Value::Bool(true)),
            "gt" => cmp_values(v, &self.arg) == Ordering::Greater,
            "gte" => cmp_values(v, &self.arg) != Ordering::Less,
            "lt" => cmp_values(v, &self.arg) == Ordering::Less,
            "lte" => cmp_values(v, &self.arg) != Ordering::Greater,
            _ => false,
        };
        hit != self.exclude
    }
}

/// The hash sets of an `in` filter whose list holds strings only.
fn in_strings(op: &str, arg: &Value) -> Option<(HashSet<String>, HashSet<String>)> {
    let items = arg.as_array().filter(|_| op == "in")?;
    let strings: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
    let strings = strings?;
    Some((
        strings.iter().map(|s| s.to_string()).collect(),
        strings.iter().map(|s| s.trim().to_string()).collect(),
    ))
}

const OPS: [&str; 11] = [
    "exact",
    "iexact",
    "in",
    "contains",
    "icontains",
    "startswith",
    "isnull",
    "gt",
    "gte",
    "lt",
    "lte",
];

/// Generic SOAR list: filters, sort/order, page/page_size, `{"count","num_pages","data"}`.
fn list<'a>(
    items: impl Iterator<Item = &'a Value>,
    req: &Request,
    skip_field: Option<&str>,
    out: impl Fn(&Value) -> Value,
) -> Response {
    let q = req.query_pairs();
    let param = |n: &str| q.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    for (key, value) in &q {
        if (key.starts_with("_filter_") || key.starts_with("_exclude_"))
            && let Err(error) = parse_literal(value)
        {
            return failed(400, &format!("Invalid filter {key}: {error}"));
        }
    }
    let filters: Vec<Filter> = q
        .iter()
        .filter_map(|(k, v)| {
            let (rest, exclude) = match (k.strip_prefix("_filter_"), k.strip_prefix("_exclude_")) {
                (Some(r), _) => (r, false),
                (_, Some(r)) => (r, true),
                _ => return None,
            };
            let (field, op) = match rest.rsplit_once("__") {
                Some((f, o)) if OPS.contains(&o) => (f, o),
                _ => (rest, "exact"),
            };
            let field = if field == "container_id" { "container" } else { field };
            (Some(field) != skip_field || op != "exact").then(|| {
                let arg = parse_literal(v).unwrap_or(Value::Null);
                Filter {
                    field: field.into(),
                    op: op.into(),
                    in_strings: in_strings(op, &arg),
                    arg,
                    exclude,
                }
            })
        })
        .collect();
    let mut rows: Vec<&Value> = items.filter(|o| filters.iter().all(|f| f.test(o))).collect();
    let sort = param("sort").unwrap_or("id");
    if sort != "id" {
        rows.sort_by(|a, b| {
            cmp_values(a.get(sort).unwrap_or(&Value::Null), b.get(sort).unwrap_or(&Value::Null))
        });
    }
    if param("order").is_some_and(|o| o.eq_ignore_ascii_case("desc")) {
        rows.reverse();
    }
    let count = rows.len();
    let page_size: usize = param("page_size").and_then(|v| v.parse().ok()).unwrap_or(10);
    let page: usize = param("page").and_then(|v| v.parse().ok()).unwrap_or(0);
    let (num_pages, data): (usize, Vec<Value>) = if page_size == 0 {
        (usize::from(count > 0), rows.into_iter().map(&out).collect())
    } else {
        (
            count.div_ceil(page_size),
            rows.into_iter().skip(page * page_size).take(page_size).map(&out).collect(),
        )
    };
    Response::json(200, &json!({"count": count, "num_pages": num_pages, "data": data}))
}

#[cfg(test)]
mod filter_tests {
    use super::*;

    fn filter(list: &str, hashed: bool) -> Filter {
        let arg = parse_literal(list).unwrap();
        let in_strings = if hashed { in_strings("in", &arg) } else { None };
        Filter { field: "f".into(), op: "in".into(), arg, exclude: false, in_strings }
    }

    #[test]
    fn hashed_in_lists_answer_like_the_linear_scan() {
        let values =
            [json!("a"), json!(" 7"), json!(7), json!(7.5), json!("7"), json!(null), json!("b")];
        for (list, hashable) in
            [(r#"["a", " 7", "x"]"#, true), ("['7.5']", true), ("[7, 'a']", false), ("[]", true)]
        {
            assert_eq!(filter(list, true).in_strings.is_some(), hashable, "{list}");
            for value in &values {
                let obj = json!({"f": value});
                let (fast, slow) = (filter(list, true).test(&obj), filter(list, false).test(&obj));
                assert_eq!(fast, slow, "{list} {value}");
            }
        }
        assert!(filter(r#"["a", " 7"]"#, true).test(&json!({"f": 7})));
        assert!(!filter(r#"["a", " 7"]"#, true).test(&json!({"f": "7"})));
    }

    #[test]
    fn literals_follow_python() {
        assert_eq!(
            parse_literal(r#"["a\"b", 'c\'d', "\u0000\r", 3, None]"#).unwrap(),
            json!(["a\"b", "c'd", "\u{0}\r", 3, null])
        );
        assert!(parse_literal("[\"a\rb\"]").unwrap_err().contains("EOL"));
        assert!(parse_literal("[\"a\0b\"]").unwrap_err().contains("null bytes"));
        assert_eq!(parse_literal("(1,2,)").unwrap(), json!([1, 2]));
    }
}
