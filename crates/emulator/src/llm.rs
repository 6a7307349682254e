//! OpenAI-compatible chat completions emulation (`POST /v1/chat/completions`) for StackFlow's
//! LLM summaries: Bearer key check, an answer that repeats the placeholders (`<USER_1>`…) of the
//! last user message so that tests can see them restored, token usage, and a refusal mode
//! (`message.refusal`, `finish_reason: "content_filter"`). Slow or failing models are the
//! emulator's ordinary latency and faults on the `/v1/` prefix.

use crate::http::{Request, Response};
use serde_json::{Value, json};

pub(crate) struct Llm {
    pub key: String,
    pub refuse: bool,
    /// A fixed answer instead of the placeholder echo.
    pub answer: Option<String>,
}

impl Llm {
    pub fn new() -> Llm {
        Llm { key: "sk-test".into(), refuse: false, answer: None }
    }
}

/// The distinct `<WORD_N>` placeholders of a text, in order.
fn placeholders(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        let tail = &rest[open..];
        let Some(close) = tail.find('>') else { break };
        let inner = &tail[1..close];
        let ok = inner.split_once('_').is_some_and(|(word, number)| {
            !word.is_empty()
                && word.bytes().all(|b| b.is_ascii_uppercase())
                && !number.is_empty()
                && number.bytes().all(|b| b.is_ascii_digit())
        });
        if ok && !found.iter().any(|f| f == &tail[..=close]) {
            found.push(tail[..=close].to_string());
        }
        rest = &tail[1..];
    }
    found
}

pub(crate) fn handle(llm: &Llm, req: &Request) -> Response {
    if req.method != "POST" || req.path != "/v1/chat/completions" {
        return Response::json(
            404,
            &json!({"error": {"message": "not found", "type": "invalid_request_error"}}),
        );
    }
    let key = req.header("authorization").and_then(|a| a.strip_prefix("Bearer "));
    if key != Some(llm.key.as_str()) {
        return Response::json(
            401,
            &json!({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key"}}),
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return Response::json(
            400,
            &json!({"error": {"message": "body is not JSON", "type": "invalid_request_error"}}),
        );
    };
    let model = body.get("model").and_then(Value::as_str).unwrap_or("").to_string();
    let messages = body.get("messages").and_then(Value::as_array).cloned().unwrap_or_default();
    let user = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(|m| m.get("content").and_then(Value::as_str))
        .unwrap_or("")
        .to_string();
    let prompt_tokens: usize = messages
        .iter()
        .filter_map(|m| m.get("content").and_then(Value::as_str))
        .map(|c| c.split_whitespace().count())
        .sum();
    let (message, finish) = if llm.refuse {
        (
            json!({"role": "assistant", "content": null, "refusal": "I'm sorry, I can't help with that."}),
            "content_filter",
        )
    } else {
        let content = llm.answer.clone().unwrap_or_else(|| {
            format!("Model summary: the alert concerns {}.", placeholders(&user).join(", "))
        });
        (json!({"role": "assistant", "content": content}), "stop")
    };
    let completion_tokens =
        message.get("content").and_then(Value::as_str).map_or(0, |c| c.split_whitespace().count());
    Response::json(
        200,
        &json!({
            "id": format!("chatcmpl-{}", crate::util::request_id()),
            "object": "chat.completion",
            "created": crate::util::now_micros() / 1_000_000,
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}
        }),
    )
}
