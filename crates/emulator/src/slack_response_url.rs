//! Slack's `response_url` (Slack "Handling user interaction": every `block_actions` payload
//! carries one; a JSON POST with `response_type: "ephemeral"` and `replace_original: false`
//! shows the clicker a message only they see — python-slack-sdk `WebhookClient.send`), served
//! under `/actions/…` as `https://hooks.slack.com/actions/T…/…/…` is. Posts are recorded. Also
//! the knob that makes `chat.postEphemeral` answer `user_not_in_channel` (an error the Slack
//! Web API spec lists for that method), so that the fallback is exercised.
//!
//! Slash commands: a `slash_commands` Socket Mode envelope as Slack sends one (python-slack-sdk's
//! Socket Mode tests: `envelope_id`, `type`, `accepts_response_payload: true`, and a payload
//! with `command`, `text`, `user_id`, `user_name`, `channel_id`, `channel_name`, `team_id`,
//! `team_domain`, `api_app_id`, `response_url` (`https://hooks.slack.com/commands/T…/…/…`) and
//! `trigger_id`); its `response_url` is served under `/commands/` and recorded like the others.

use crate::http::{Request, Response};
use crate::{Emulator, lock};
use serde_json::{Value, json};

#[derive(Default)]
pub(crate) struct ResponseUrls {
    /// Slash commands sent so far (numbers their response URLs and envelopes).
    commands: u64,
    /// Bodies posted to a response URL (JSON), with the path they went to.
    pub posts: Vec<Value>,
    /// When set, `chat.postEphemeral` answers `{"ok": false, "error": <this>}`.
    pub refuse_ephemeral: Option<String>,
}

/// The path prefix of the emulated response URLs.
pub const PREFIX: &str = "/actions/";

/// The path prefix of the emulated slash-command response URLs.
pub const COMMANDS_PREFIX: &str = "/commands/";

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

/// A `slash_commands` envelope for `command text` typed by `user` in `channel`, with a fresh
/// response URL of this emulator (`base`).
pub(crate) fn slash_envelope(
    state: &mut ResponseUrls,
    base: &str,
    channel: &str,
    command: &str,
    text: &str,
    user: (&str, &str),
) -> Value {
    state.commands += 1;
    let n = state.commands;
    let name = channel.trim_start_matches('#');
    json!({
        "envelope_id": format!("slash-{n}-{}", crate::util::now_micros()),
        "type": "slash_commands",
        "accepts_response_payload": true,
        "payload": {
            "token": "emulator-verification-token", "team_id": "T0EMULATOR",
            "team_domain": "emulator", "channel_id": crate::slack::channel_id_of(channel),
            "channel_name": name, "user_id": user.0, "user_name": user.1, "command": command,
            "text": text, "api_app_id": "A0EMULATOR", "is_enterprise_install": "false",
            "response_url": format!("{base}{COMMANDS_PREFIX}T0EMULATOR/{n}/emulator-command-{n}"),
            "trigger_id": format!("{n}.0000000000.emulator{n:08x}"),
        }
    })
}

impl Emulator {
    /// Sends `/stackflow <text>` typed by `user` in `#soc` over Socket Mode (see
    /// [`socket_send_slash_command_in`](Self::socket_send_slash_command_in)).
    pub fn socket_send_slash_command(&self, text: &str, user: &str) -> Value {
        self.socket_send_slash_command_in("soc", "/stackflow", text, user)
    }
    /// Queues a `slash_commands` envelope (`command`, `text`, `user` with the `name` of
    /// `add_slack_user`'s object or the id, `channel` by name or id) for the next open
    /// connection and returns it (its `payload.response_url` posts are recorded in
    /// `slack_response_url_posts`).
    pub fn socket_send_slash_command_in(
        &self,
        channel: &str,
        command: &str,
        text: &str,
        user: &str,
    ) -> Value {
        let user_name = crate::slack::user_name(&lock(&self.shared.slack), user);
        let envelope = slash_envelope(
            &mut lock(&self.shared.response_urls),
            &self.url(),
            channel,
            command,
            text,
            (user, &user_name),
        );
        self.socket_send(envelope.clone());
        envelope
    }
}
