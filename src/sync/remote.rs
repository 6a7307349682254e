//! Helpers shared by the SOAR and StackFlow readers of `| stackflowsync`: the HTTP client of an
//! account stanza, URL checks, and turning a response into JSON or a one-line reason.
//!
//! Read-back failures are never thrown: they become a reason string that the command shows on
//! the affected rows (`sync_action=error`) and once as an inspector WARN.

use crate::delivery::classify::{StatusClass, classify_status, classify_transport};
use crate::delivery::http::{HttpClient, HttpOptions, HttpResponse, TransportError};
use crate::delivery::{Outcome, RejectClass};
use crate::error::{Error, Result};
use crate::settings::Settings;
use serde_json::Value;
use std::time::Duration;

/// The HTTP client for an account stanza: its TLS settings, the proxy, `[delivery] timeout_s`.
pub fn client(settings: &Settings, stanza: &str) -> Result<HttpClient> {
    let timeout = match settings.delivery() {
        Ok(delivery) => delivery.timeout,
        // Only the spool folder can be missing here; the read-back does not need it.
        Err(Error::Config { key, .. }) if key == "spool_dir" => Duration::from_secs(30),
        Err(error) => return Err(error),
    };
    let options =
        HttpOptions { tls: settings.tls(stanza, true)?, proxy: settings.proxy(), timeout };
    HttpClient::new(&options, stanza)
}

/// `scheme://host[:port]` of an absolute URL.
pub fn origin(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let host_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if host_len == 0 {
        return None;
    }
    Some(&url[..url.len() - rest.len() + host_len])
}

/// An https URL (plain http only for the loopback host), without a trailing slash.
pub fn check_url(stanza: &str, key: &str, url: &str) -> Result<String> {
    let url = url.trim().trim_end_matches('/');
    let Some(origin) = origin(url) else {
        return Err(Error::config(
            stanza,
            key,
            format!("\"{url}\" is not an absolute https:// URL"),
        ));
    };
    let lower = origin.to_ascii_lowercase();
    let host = lower.split_once("://").map(|(_, host)| host).unwrap_or_default();
    let host = host.rsplit_once('@').map(|(_, host)| host).unwrap_or(host);
    let loopback =
        host.starts_with("127.0.0.1") || host.starts_with("localhost") || host.starts_with("[::1]");
    if lower.starts_with("https://") || (lower.starts_with("http://") && loopback) {
        Ok(url.to_string())
    } else {
        Err(Error::config(
            stanza,
            key,
            format!(
                "\"{url}\" is not an https:// URL (plain http is allowed for 127.0.0.1/localhost only)"
            ),
        ))
    }
}

/// A response as JSON, or why not (transport failure, non-2xx status, non-JSON body).
pub fn json_answer(
    response: std::result::Result<HttpResponse, TransportError>,
    what: &str,
) -> std::result::Result<Value, String> {
    let response = response.map_err(|error| reason(&classify_transport(&error, what)))?;
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
    fn origins_and_url_checks() {
        assert_eq!(
            origin("https://acme.example.com:8443/prod/api"),
            Some("https://acme.example.com:8443")
        );
        assert_eq!(origin("https://acme.example.com"), Some("https://acme.example.com"));
        assert_eq!(origin("acme"), None);
        assert_eq!(
            check_url("s", "url", "https://soar.example.com/").unwrap(),
            "https://soar.example.com"
        );
        assert!(check_url("s", "url", "http://127.0.0.1:8000").is_ok());
        let message =
            check_url("soar:default", "url", "http://soar.example.com").unwrap_err().to_string();
        assert!(
            message.contains("[soar:default] url") && message.contains("not an https:// URL"),
            "{message}"
        );
    }

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
