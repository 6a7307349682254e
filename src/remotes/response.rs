//! Reading a remote's answer: a response (or its classified failure) as JSON or a one-line
//! reason, and JSON scalars as text or ids. Shared by the read-back clients of every remote
//! and by the splunkd client's callers.
//!
//! Read-back failures are never thrown: they become a reason string that `| stackflowsync`
//! shows on the affected rows (`sync_action=error`) and once as an inspector WARN.

use crate::net::classify::{StatusClass, classify_status};
use crate::net::http::HttpResponse;
use crate::net::{Outcome, RejectClass};
use serde_json::Value;

/// A response as JSON, or why not (transport failure, non-2xx status, non-JSON body).
pub fn json_answer(
    response: std::result::Result<HttpResponse, Outcome>,
    what: &str,
) -> std::result::Result<Value, String> {
    let response = response.map_err(|outcome| reason(&outcome))?;
    if let StatusClass::Failed(outcome) = classify_status(&response, what) {
        return Err(reason(&outcome));
    }
    response.json().ok_or_else(|| format!("{what}: the answer is not JSON"))
}

/// The human reason of a failed outcome.
pub fn reason(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Retry(retry) => format!("{} (temporary; run the search again)", retry.reason),
        Outcome::Rejected(rejection) if rejection.class == RejectClass::Credentials => {
            format!("{} (check the token in storage/passwords)", rejection.reason)
        }
        Outcome::Rejected(rejection) => rejection.reason.clone(),
        Outcome::Delivered(delivered) => delivered.message.clone(),
    }
}

/// A JSON scalar as text (`null` and absent are empty).
pub fn text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| text(Some(item)))
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(","),
        Some(other) => other.to_string(),
    }
}

/// A JSON number or numeric string as an id.
pub fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_become_reasons() {
        let response = |status: u16, body: &str| {
            Ok(HttpResponse { status, headers: Vec::new(), body: body.as_bytes().to_vec() })
        };
        assert_eq!(json_answer(response(200, r#"{"a":1}"#), "X").unwrap()["a"], 1);
        let unauthorized = json_answer(
            response(401, r#"{"failed":true,"message":"Invalid token"}"#),
            "SOAR GET /rest/container",
        );
        assert_eq!(
            unauthorized.unwrap_err(),
            "SOAR GET /rest/container: HTTP 401: Invalid token (check the token in storage/passwords)"
        );
        let busy = json_answer(response(503, "down"), "X").unwrap_err();
        assert!(busy.contains("HTTP 503") && busy.contains("temporary"), "{busy}");
        assert_eq!(
            json_answer(response(200, "<html>"), "X").unwrap_err(),
            "X: the answer is not JSON"
        );
    }

    #[test]
    fn json_text() {
        assert_eq!(text(Some(&serde_json::json!(null))), "");
        assert_eq!(text(Some(&serde_json::json!(3))), "3");
        assert_eq!(text(Some(&serde_json::json!(["a", "b"]))), "a,b");
        assert_eq!(as_u64(&serde_json::json!("17")), Some(17));
    }
}
