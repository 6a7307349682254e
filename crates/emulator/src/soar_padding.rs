//! The `soar_page_padding` knob: a container list answer holding far more than a page.

use crate::http::Response;
use serde_json::{Value, json};

/// `answer` (a list envelope) with `n` synthetic containers before its own `data`, written
/// straight into the body (no `Value` of the whole page).
pub(crate) fn padded(answer: Response, n: usize) -> Response {
    let Ok(Value::Object(mut envelope)) = serde_json::from_slice::<Value>(&answer.body) else {
        return answer;
    };
    let data = envelope.remove("data").unwrap_or_else(|| json!([]));
    let mut body = Vec::with_capacity(n.saturating_mul(400));
    body.extend_from_slice(b"{");
    for (key, value) in &envelope {
        body.extend_from_slice(format!("{}:{},", json!(key), value).as_bytes());
    }
    body.extend_from_slice(b"\"data\":[");
    for i in 0..n {
        let id = 100_000_000 + i;
        let padding = json!({"id": id, "name": format!("unrelated container {i}"),
            "status": "new", "severity": "low", "label": "events", "owner_name": null,
            "close_time": null, "source_data_identifier": format!("padding-{i}"),
            "description": "a container of another team, in an answer far larger than a page",
            "create_time": "2026-01-01T00:00:00.000000Z", "update_time": "2026-01-01T00:00:00.000000Z",
            "container_type": "default", "sensitivity": "amber", "artifact_count": 0});
        body.extend_from_slice(padding.to_string().as_bytes());
        body.push(b',');
    }
    for (i, item) in data.as_array().map(Vec::as_slice).unwrap_or_default().iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item.to_string().as_bytes());
    }
    if body.last() == Some(&b',') {
        body.pop();
    }
    body.extend_from_slice(b"]}");
    Response::raw(200, body)
}
