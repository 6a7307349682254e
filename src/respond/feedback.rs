//! What the clicker and the channel see (PRODUCT §9 "Feedback in Slack"): the original
//! message updated in place (`chat.update`: the acted-on buttons give way to a context line),
//! the outcome as a thread reply (`chat.postMessage` with `thread_ts`), refusals as ephemeral
//! replies (`chat.postEphemeral`, seen by the clicker only; when Slack refuses it with
//! `user_not_in_channel` / `not_in_channel`, through the click's `response_url` instead, as
//! PRODUCT §15 and Slack "Handling user interaction" say). Failures here are logged, never
//! undo an effect. Block Kit limits hold: a context element's text is cut to 3000 characters
//! and at most 50 blocks are kept (Slack "Block Kit" reference).

use super::click::{Action, Click};
use crate::mapping::slack::escape_mrkdwn;
use crate::net::http::HttpClient;
use crate::remotes::slack::SlackApi;
use serde_json::{Value, json};

const MAX_BLOCKS: usize = 50;
const MAX_TEXT: usize = 3000;

pub fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_TEXT - 1) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// The message's blocks without the buttons in `remove` (an `actions` block left empty goes),
/// followed by a context line.
pub fn updated_blocks(blocks: Option<&Value>, remove: &[&str], line: &str) -> Value {
    let mut out: Vec<Value> = Vec::new();
    for block in blocks.and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        if block.get("type").and_then(Value::as_str) == Some("actions") {
            let kept: Vec<Value> = block
                .get("elements")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter(|element| {
                    let id = element.get("action_id").and_then(Value::as_str).unwrap_or("");
                    !remove.contains(&id)
                })
                .cloned()
                .collect();
            if kept.is_empty() {
                continue;
            }
            let mut block = block.clone();
            block["elements"] = Value::Array(kept);
            out.push(block);
        } else {
            out.push(block.clone());
        }
    }
    out.truncate(MAX_BLOCKS - 1);
    out.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": cut(line)}]}));
    Value::Array(out)
}

/// Calls `method`; Slack's error code when it refused (logged), `None` when it took it.
fn call(slack: &SlackApi, method: &str, body: &Value) -> Option<String> {
    let bytes = body.to_string().into_bytes();
    match slack.call(method, &bytes) {
        Ok(response) => {
            let json = response.json().unwrap_or_default();
            if json.get("ok").and_then(Value::as_bool) != Some(true) {
                let error = json.get("error").and_then(Value::as_str).unwrap_or("no JSON answer");
                log::warn!("Slack {method}: {error} (HTTP {})", response.status);
                return Some(error.chars().take(100).collect());
            }
            None
        }
        Err(outcome) => {
            log::warn!("Slack {method}: {}", crate::remotes::response::reason(&outcome));
            Some("transport".into())
        }
    }
}

/// `chat.update` of the clicked message.
pub fn update_message(slack: &SlackApi, click: &Click, line: &str) {
    let blocks =
        updated_blocks(click.message_blocks.as_ref(), &click.action.buttons_removed(), line);
    let text = if click.message_text.is_empty() { cut(line) } else { click.message_text.clone() };
    let body = json!({"channel": click.channel_id, "ts": click.message_ts, "text": text,
                      "blocks": blocks});
    let _ = call(slack, "chat.update", &body);
}

/// A reply in the message's thread.
pub fn reply_in_thread(slack: &SlackApi, click: &Click, text: &str) {
    let body =
        json!({"channel": click.channel_id, "thread_ts": click.thread_ts, "text": cut(text)});
    let _ = call(slack, "chat.postMessage", &body);
}

/// A message of ours (`chat.postMessage` with `channel`, `thread_ts`, `text`, `blocks`).
pub fn post_message(slack: &SlackApi, body: &Value) {
    let _ = call(slack, "chat.postMessage", body);
}

/// The approval request of a containment playbook, in the message's thread: the question and
/// *Approve* / *Deny* buttons whose value is the request's interaction key (a reference only).
pub fn post_approval_request(slack: &SlackApi, click: &Click, text: &str, request_key: &str) {
    let body = json!({"channel": click.channel_id, "thread_ts": click.thread_ts, "text": cut(text),
    "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": cut(text)}},
        {"type": "actions", "elements": [
            Action::Approve.button(request_key), Action::Deny.button(request_key)]}
    ]});
    let _ = call(slack, "chat.postMessage", &body);
}

/// An ephemeral reply to the clicker alone: `chat.postEphemeral`, else — when Slack refuses it
/// because the bot or the user is not in the channel — the click's `response_url`. `text` is
/// plain: it is escaped here (it may quote user names and remote errors).
pub fn tell_clicker(slack: &SlackApi, replies: &HttpClient, click: &Click, text: &str) {
    let text = escape_mrkdwn(text);
    let text = text.as_str();
    let body = json!({"channel": click.channel_id, "user": click.user_id, "text": cut(text)});
    let refused = call(slack, "chat.postEphemeral", &body);
    if let Some("user_not_in_channel" | "not_in_channel" | "channel_not_found") = refused.as_deref()
    {
        reply_by_response_url(slack, replies, click, text);
    }
}

/// Whether a `response_url` may be posted to: `https://` on Slack's webhook host, or on the
/// account's own API origin (a Slack-compatible gateway). A payload is not trusted to send
/// the listener anywhere else.
pub fn response_url_allowed(slack: &SlackApi, url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://") else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') || url.chars().any(char::is_whitespace) {
        return false;
    }
    let origin = &url[..8 + authority.len()];
    origin.eq_ignore_ascii_case("https://hooks.slack.com")
        || origin.eq_ignore_ascii_case(slack.account.api_url.origin())
}

/// `POST response_url` with `{"response_type": "ephemeral", "replace_original": false, "text"}`
/// (Slack "Handling user interaction"; python-slack-sdk's `WebhookClient.send`).
fn reply_by_response_url(slack: &SlackApi, replies: &HttpClient, click: &Click, text: &str) {
    if !response_url_allowed(slack, &click.response_url) {
        log::warn!(
            "Slack refused the ephemeral reply to {} and the click has no usable response_url",
            click.user_id
        );
        return;
    }
    let body = json!({"response_type": "ephemeral", "replace_original": false, "text": cut(text)});
    let headers = [("Content-Type", "application/json; charset=utf-8")];
    match replies.post(&click.response_url, &headers, body.to_string().as_bytes()) {
        Ok(response) if (200..300).contains(&response.status) => {}
        Ok(response) => log::warn!("Slack response_url: HTTP {}", response.status),
        Err(error) => log::warn!("Slack response_url: {:?}", error.kind),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const ACK: &str = "stackflow_ack";
    const ESCALATE: &str = "stackflow_escalate";
    fn buttons_removed_by(action: Action) -> Vec<&'static str> {
        action.buttons_removed()
    }

    #[test]
    fn acted_on_buttons_give_way_to_a_context_line() {
        let blocks = json!([
            {"type": "header", "text": {"type": "plain_text", "text": "x"}},
            {"type": "actions", "elements": [
                {"type": "button", "action_id": ACK}, {"type": "button", "action_id": ESCALATE},
                {"type": "button", "action_id": "open_splunk", "url": "https://s"}]}
        ]);
        let after = updated_blocks(Some(&blocks), &buttons_removed_by(Action::Ack), "Acknowledged");
        let ids: Vec<&str> = after[1]["elements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action_id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [ESCALATE, "open_splunk"]);
        assert_eq!(after[2]["elements"][0]["text"], "Acknowledged");
        let closed =
            updated_blocks(Some(&blocks), &buttons_removed_by(Action::FalsePositive), "FP");
        assert_eq!(closed[1]["elements"].as_array().unwrap().len(), 1);
        let many = Value::Array(vec![json!({"type": "divider"}); 80]);
        let capped = updated_blocks(Some(&many), &[], &"y".repeat(5000));
        assert_eq!(capped.as_array().unwrap().len(), MAX_BLOCKS);
        assert!(capped[49]["elements"][0]["text"].as_str().unwrap().chars().count() <= MAX_TEXT);
        assert_eq!(updated_blocks(None, &[], "z").as_array().unwrap().len(), 1);
    }
}
