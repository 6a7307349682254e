//! Slack's `response_url` (Slack "Handling user interaction": every `block_actions` payload
//! carries one; a JSON POST with `response_type: "ephemeral"` and `replace_original: false`
//! shows the clicker a message only they see — python-slack-sdk `WebhookClient.send`), served
//! under `/actions/…` as `https://hooks.slack.com/actions/T…/…/…` is. Posts are recorded. Also
//! the knob that makes `chat.postEphemeral` answer `user_not_in_channel` (an error the Slack
//! Web API spec lists for that method), so that the fallback is exercised.

use crate::http::{Request, Response};
use serde_json::{Value, json};

#[derive(Default)]
pub(crate) struct ResponseUrls {
    /// Bodies posted to a response URL (JSON), with the path they went to.
    pub posts: Vec<Value>,
    /// When set, `chat.postEphemeral` answers `{"ok": false, "error": <this>}`.
    pub refuse_ephemeral: Option<String>,
}

/// The path prefix of the emulated response URLs.
pub const PREFIX: &str = "/actions/";

/// A response URL for a click, as Slack mints one per interaction.
pub fn url_for(base: &str, n: u64) -> String {
    format!("{base}{PREFIX}T0EMULATOR/{n}/emulator-response-{n}")
}

/// `POST /actions/…`: Slack answers a plain `ok` (HTTP 200) or `invalid_payload` (400).
pub(crate) fn handle(state: &mut ResponseUrls, req: &Request) -> Response {
    if req.method != "POST" {
        return Response::json(405, &json!({"ok": false, "error": "method_not_allowed"}));
    }
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&req.body) else {
        return Response::json(400, &json!({"ok": false, "error": "invalid_payload"}));
    };
    let has_text = body.get("text").and_then(Value::as_str).is_some_and(|t| !t.is_empty());
    if !has_text && body.get("blocks").is_none() {
        return Response::json(400, &json!({"ok": false, "error": "no_text"}));
    }
    body.insert("path".into(), json!(req.path));
    state.posts.push(Value::Object(body));
    Response::json(200, &json!({"ok": true}))
}

/// The `chat.postEphemeral` refusal, when the knob is set.
pub(crate) fn refused_ephemeral(state: &ResponseUrls, req: &Request) -> Option<Response> {
    let error = state.refuse_ephemeral.as_ref()?;
    (req.method == "POST" && req.path == "/api/chat.postEphemeral")
        .then(|| Response::json(200, &json!({"ok": false, "error": error})))
}
