//! StackFlow ITSM emulation: the inbound Splunk webhook (shared-secret header, creates incidents,
//! configurable undocumented response), the incidents read API (Bearer token, single + list with
//! filters) and the X-RateLimit-* headers carried by every StackFlow response.

use crate::http::{Request, Response};
use crate::util::{iso_now, now_micros, request_id};
use crate::{Shared, lock};
use serde_json::{Value, json};

pub(crate) struct StackFlow {
    pub secret: String,
    pub api_token: String,
    pub incidents: Vec<Value>,
    /// `None` = default 201 with the created incident summary.
    pub webhook_response: Option<(u16, Option<String>)>,
    /// Incidents (never asked for) put in front of the first page of every list answer,
    /// whatever `limit` asked: an answer far larger than a page, which a client must survive.
    pub page_padding: usize,
    next: u64,
    window_start: u64,
    window_count: u64,
}

fn error(status: u16, message: &str, code: &str) -> Response {
    Response::json(status, &json!({"error": message, "code": code, "requestId": request_id()}))
}

const LIMIT: u64 = 300;

/// Adds X-RateLimit-Limit/Remaining/Reset/Window (fixed 60 s window, 300 requests; advisory only).
pub(crate) fn rate_headers(shared: &Shared, mut resp: Response) -> Response {
    let mut sf = lock(&shared.stackflow);
    let now = now_micros() / 1_000_000;
    if now >= sf.window_start + 60 {
        sf.window_start = now;
        sf.window_count = 0;
    }
    sf.window_count += 1;
    let h = [
        ("X-RateLimit-Limit", LIMIT.to_string()),
        ("X-RateLimit-Remaining", LIMIT.saturating_sub(sf.window_count).to_string()),
        ("X-RateLimit-Reset", (sf.window_start + 60).to_string()),
        ("X-RateLimit-Window", "60".to_string()),
    ];
    for (k, v) in h {
        if !resp.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(k)) {
            resp.headers.push((k.into(), v));
        }
    }
    resp
}

impl StackFlow {
    pub fn new() -> StackFlow {
        StackFlow {
            secret: "sf-secret".into(),
            api_token: "sf-api-token".into(),
            incidents: Vec::new(),
            webhook_response: None,
            page_padding: 0,
            next: 1000,
            window_start: 0,
            window_count: 0,
        }
    }
    pub fn upsert(&mut self, mut inc: Value) {
        if let (None, Some(id)) = (inc.get("number"), inc.get("id").cloned()) {
            inc["number"] = id;
        }
        if inc.get("updated_at").is_none() && inc.is_object() {
            inc["updated_at"] = iso_now().into();
        }
        let id = inc.get("id").cloned();
        match self.incidents.iter_mut().find(|i| id.is_some() && i.get("id") == id.as_ref()) {
            Some(slot) => *slot = inc,
            None => self.incidents.push(inc),
        }
    }

    pub fn update(&mut self, id: &str, fields: &Value) -> bool {
        let Some(inc) =
            self.incidents.iter_mut().find(|i| i.get("id").and_then(Value::as_str) == Some(id))
        else {
            return false;
        };
        if let (Some(inc), Some(fields)) = (inc.as_object_mut(), fields.as_object()) {
            for (k, v) in fields.iter().filter(|(k, _)| k.as_str() != "id") {
                inc.insert(k.clone(), v.clone());
            }
            inc.insert("updated_at".into(), iso_now().into());
        }
        true
    }

    fn webhook(&mut self, req: &Request) -> Response {
        if req.header("x-stackflow-secret") != Some(self.secret.as_str()) {
            return error(401, "Invalid webhook secret", "UNAUTHORIZED");
        }
        let payload: Value = match serde_json::from_slice(&req.body) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return error(400, "Request body must be a JSON object", "VALIDATION_ERROR"),
            Err(e) => return error(400, &format!("Invalid JSON body: {e}"), "INVALID_JSON"),
        };
        if let Some((status, _)) = self.webhook_response.as_ref().filter(|(s, _)| *s >= 400) {
            let status = *status;
            return self.configured(status, None);
        }
        self.next += 1;
        let id = format!("INC{:07}", self.next);
        let s = |k: &str| payload.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let priority =
            Some(s("stackflow_priority")).filter(|p| !p.is_empty()).unwrap_or_else(|| "P3".into());
        let group = Some(s("stackflow_assignment_group")).filter(|g| !g.is_empty());
        let short = Some(s("search_name"))
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "Splunk alert".into());
        let now = iso_now();
        let inc = json!({
            "id": id, "number": id, "short_description": short, "description": s("message"),
            "priority": priority, "state": "new", "category": "monitoring", "severity": s("severity"),
            "assignment_group": group, "assigned_to": null, "opened_by": "splunk-integration",
            "source": "splunk", "created_at": now, "updated_at": now, "payload": payload,
        });
        let summary = json!({"id": id, "number": id, "state": "new", "priority": priority});
        self.incidents.push(inc);
        self.configured(201, Some(summary))
    }

    fn configured(&self, default_status: u16, summary: Option<Value>) -> Response {
        match &self.webhook_response {
            None => Response::json(default_status, &summary.unwrap_or(Value::Null)),
            Some((status, body)) => {
                Response::raw(*status, body.clone().unwrap_or_default().into_bytes())
            }
        }
    }

    fn list(&self, req: &Request) -> Response {
        let q = req.query_pairs();
        let ids: Vec<String> = q
            .iter()
            .filter(|(k, _)| k == "ids" || k == "id")
            .flat_map(|(_, v)| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            })
            .collect();
        let fields = ["state", "priority", "assignment_group", "assigned_to", "category"];
        let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
        let rows: Vec<&Value> = self
            .incidents
            .iter()
            .filter(|i| ids.is_empty() || ids.contains(&text(i.get("id"))))
            .filter(|i| {
                q.iter()
                    .filter(|(k, _)| fields.contains(&k.as_str()))
                    .all(|(k, v)| text(i.get(k)) == *v)
            })
            .filter(|i| {
                q.iter()
                    .find(|(k, _)| k == "q")
                    .is_none_or(|(_, t)| i.to_string().contains(t.as_str()))
            })
            .filter(|i| {
                // ISO 8601 UTC timestamps of one format compare as text.
                q.iter()
                    .find(|(k, _)| k == "created_after")
                    .is_none_or(|(_, after)| text(i.get("created_at")).as_str() >= after.as_str())
            })
            .collect();
        let limit = q
            .iter()
            .find(|(k, _)| k == "limit")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(50usize)
            .clamp(1, 200);
        let page = q
            .iter()
            .find(|(k, _)| k == "page")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(1usize)
            .max(1);
        let data: Vec<&Value> = rows.iter().skip((page - 1) * limit).take(limit).copied().collect();
        if self.page_padding > 0 && page == 1 {
            return padded(self.page_padding, &data, page, limit, rows.len());
        }
        Response::json(
            200,
            &json!({"data": data, "page": page, "limit": limit, "total": rows.len()}),
        )
    }
}

/// A list answer with `n` unrelated incidents before `data`, written straight into the body.
fn padded(n: usize, data: &[&Value], page: usize, limit: usize, total: usize) -> Response {
    let mut body = Vec::with_capacity(n.saturating_mul(300));
    body.extend_from_slice(
        format!("{{\"page\":{page},\"limit\":{limit},\"total\":{total},\"data\":[").as_bytes(),
    );
    for i in 0..n {
        let incident = json!({"id": format!("PAD{i:09}"), "number": format!("PAD{i:09}"),
            "state": "new", "priority": "P4", "assigned_to": null, "assignment_group": "other team",
            "short_description": "an incident of another team, in an answer far larger than a page",
            "updated_at": "2026-01-01T00:00:00Z"});
        body.extend_from_slice(incident.to_string().as_bytes());
        body.push(b',');
    }
    for item in data {
        body.extend_from_slice(item.to_string().as_bytes());
        body.push(b',');
    }
    if body.last() == Some(&b',') {
        body.pop();
    }
    body.extend_from_slice(b"]}");
    Response::raw(200, body)
}

pub(crate) fn handle(s: &mut StackFlow, req: &Request) -> Response {
    let path = req
        .path
        .strip_prefix("/prod/api/v1/")
        .or_else(|| req.path.strip_prefix("/prod/api/"))
        .unwrap_or("");
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match (req.method.as_str(), segs.as_slice()) {
        ("POST", ["webhooks", "inbound", "splunk"]) => s.webhook(req),
        (_, ["incidents", ..])
            if req.header("authorization") != Some(format!("Bearer {}", s.api_token).as_str()) =>
        {
            error(401, "Missing or invalid authorization token", "UNAUTHORIZED")
        }
        ("GET", ["incidents"]) => s.list(req),
        ("GET", ["incidents", id]) => {
            match s.incidents.iter().find(|i| i.get("id").and_then(Value::as_str) == Some(id)) {
                Some(i) => Response::json(200, i),
                None => error(404, "Incident not found", "NOT_FOUND"),
            }
        }
        _ => error(404, "Route not found", "NOT_FOUND"),
    }
}
