//! HTTP outcome classification: every response or transport failure becomes delivered,
//! retry later, or rejected (PRODUCT §5).
//!
//! Retry: 408, 429, 5xx except 501, timeouts, refused or reset connections, an interrupted TLS
//! handshake. Rejected: other 4xx with the server's own message; 401/403 as credentials; a
//! certificate we do not trust as configuration. `classify_response` adds the generic body
//! table on top (a `"failed": true` body is a rejection even under 200; an
//! `existing_container_id` / `existing_artifact_id` answer means "already delivered"); further
//! target-specific bodies (Slack `ok:false`) are judged by the targets.

use super::http::{HttpResponse, TransportError, TransportErrorKind};
use super::{Delivered, Outcome, RejectClass};

/// What the status line alone says about a response.
#[derive(Clone, Debug, PartialEq)]
pub enum StatusClass {
    Success,
    /// Classified as retry or rejected already.
    Failed(Outcome),
}

/// Classifies a response by status. `what` names the call for messages ("SOAR POST /rest/container").
pub fn classify_status(response: &HttpResponse, what: &str) -> StatusClass {
    let status = response.status;
    match status {
        200..=299 => StatusClass::Success,
        401 | 403 => StatusClass::Failed(Outcome::rejected(
            RejectClass::Credentials,
            format!("{what}: HTTP {status}: {}", server_message(response)),
        )),
        408 | 429 => StatusClass::Failed(Outcome::retry(
            format!("{what}: HTTP {status}: {}", server_message(response)),
            response.retry_after(),
        )),
        501 => StatusClass::Failed(Outcome::rejected(
            RejectClass::Remote,
            format!("{what}: HTTP 501 (not implemented): {}", server_message(response)),
        )),
        500..=599 => StatusClass::Failed(Outcome::retry(
            format!("{what}: HTTP {status}: {}", server_message(response)),
            response.retry_after(),
        )),
        _ => StatusClass::Failed(Outcome::rejected(
            RejectClass::Remote,
            format!("{what}: HTTP {status}: {}", server_message(response)),
        )),
    }
}

/// The whole generic table for one response: "already there" answers first (SOAR answers a
/// duplicate source data identifier with `{"failed": true, "existing_container_id": N}`, under
/// 200 or 400 depending on the version), then the status, then a `"failed": true` body under a
/// 2xx status (a rejection with the server's message). A plain 2xx is delivered with the body's
/// `id`, if any, as the remote id.
pub fn classify_response(response: &HttpResponse, what: &str) -> Outcome {
    let json = response.json();
    if let Some(existing) = json.as_ref().and_then(existing_id) {
        return Outcome::Delivered(Delivered {
            remote_id: Some(existing),
            duplicate: true,
            message: format!("{what}: the remote already has it"),
            ..Delivered::default()
        });
    }
    match classify_status(response, what) {
        StatusClass::Failed(outcome) => outcome,
        StatusClass::Success => {
            let failed = json
                .as_ref()
                .and_then(|body| body.get("failed"))
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
            if failed {
                return Outcome::rejected(
                    RejectClass::Remote,
                    format!(
                        "{what}: HTTP {} but the body says failed: {}",
                        response.status,
                        server_message(response)
                    ),
                );
            }
            let remote_id = json.as_ref().and_then(|body| body.get("id")).and_then(id_text);
            Outcome::Delivered(Delivered {
                remote_id,
                message: format!("{what}: HTTP {}", response.status),
                ..Delivered::default()
            })
        }
    }
}

/// `existing_container_id` / `existing_artifact_id` of a body, as text.
fn existing_id(body: &serde_json::Value) -> Option<String> {
    ["existing_container_id", "existing_artifact_id"]
        .iter()
        .find_map(|key| body.get(*key).and_then(id_text))
}

fn id_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Number(number) => Some(number.to_string()),
        serde_json::Value::String(text) if !text.is_empty() => Some(text.clone()),
        _ => None,
    }
}

/// A transport failure as an outcome.
pub fn classify_transport(error: &TransportError, what: &str) -> Outcome {
    use TransportErrorKind as Kind;
    match error.kind {
        Kind::Timeout
        | Kind::ConnectionRefused
        | Kind::ConnectionReset
        | Kind::TlsInterrupted
        | Kind::HostNotFound => Outcome::retry(format!("{what}: {}", error.message), None),
        Kind::CertificateNotTrusted => Outcome::rejected(
            RejectClass::Configuration,
            format!(
                "{what}: the server's TLS certificate is not trusted ({}); set ca_file to the CA that signed it",
                error.message
            ),
        ),
        Kind::BadUrl => {
            Outcome::rejected(RejectClass::Configuration, format!("{what}: {}", error.message))
        }
        Kind::Other => Outcome::retry(format!("{what}: {}", error.message), None),
    }
}

/// The most useful human text in an error body: common JSON message keys, else the raw text.
pub fn server_message(response: &HttpResponse) -> String {
    if let Some(json) = response.json() {
        for key in ["message", "error", "text", "detail"] {
            if let Some(text) = json.get(key).and_then(|value| value.as_str()) {
                return text.to_string();
            }
        }
        if let Some(text) = json.pointer("/messages/0/text").and_then(|value| value.as_str()) {
            return text.to_string();
        }
        if let Some(text) = json.as_str() {
            return text.to_string();
        }
    }
    let excerpt = response.body_excerpt();
    if excerpt.is_empty() { "(empty body)".to_string() } else { excerpt }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn response(status: u16, body: &str, headers: &[(&str, &str)]) -> HttpResponse {
        HttpResponse {
            status,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn class_of(status: u16) -> &'static str {
        match classify_status(&response(status, "", &[]), "x") {
            StatusClass::Success => "delivered",
            StatusClass::Failed(Outcome::Retry(_)) => "retry",
            StatusClass::Failed(Outcome::Rejected(_)) => "rejected",
            StatusClass::Failed(Outcome::Delivered(_)) => "impossible",
        }
    }

    #[test]
    fn statuses_follow_the_product_table() {
        for status in [200, 201, 202, 204] {
            assert_eq!(class_of(status), "delivered", "{status}");
        }
        for status in [408, 429, 500, 502, 503, 504, 599] {
            assert_eq!(class_of(status), "retry", "{status}");
        }
        for status in [400, 401, 403, 404, 409, 422, 501] {
            assert_eq!(class_of(status), "rejected", "{status}");
        }
    }

    #[test]
    fn retry_after_and_server_message_are_kept() {
        let limited =
            response(429, r#"{"ok":false,"error":"ratelimited"}"#, &[("Retry-After", "7")]);
        match classify_status(&limited, "Slack chat.postMessage") {
            StatusClass::Failed(Outcome::Retry(retry)) => {
                assert_eq!(retry.after, Some(Duration::from_secs(7)));
                assert!(retry.reason.contains("ratelimited"), "{}", retry.reason);
            }
            other => panic!("{other:?}"),
        }
        let bad = response(400, r#"{"failed":true,"message":"bad label"}"#, &[]);
        match classify_status(&bad, "SOAR") {
            StatusClass::Failed(Outcome::Rejected(rejection)) => {
                assert_eq!(rejection.class, RejectClass::Remote);
                assert!(rejection.reason.contains("HTTP 400: bad label"), "{}", rejection.reason);
            }
            other => panic!("{other:?}"),
        }
    }

    fn outcome_word(outcome: &Outcome) -> &'static str {
        match outcome {
            Outcome::Delivered(delivered) if delivered.duplicate => "duplicate",
            Outcome::Delivered(_) => "delivered",
            Outcome::Retry(_) => "retry",
            Outcome::Rejected(rejection) => match rejection.class {
                RejectClass::Remote => "rejected",
                RejectClass::Credentials => "credentials",
                RejectClass::Configuration => "configuration",
            },
        }
    }

    #[test]
    fn the_generic_table_covers_status_and_body() {
        type Case<'a> = (u16, &'a str, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (200, r#"{"id":12,"success":true}"#, &[], "delivered"),
            (201, "", &[], "delivered"),
            (204, "", &[], "delivered"),
            (200, r#"{"failed":true,"message":"bad cef"}"#, &[], "rejected"),
            (200, r#"{"failed":true,"existing_container_id":7}"#, &[], "duplicate"),
            (400, r#"{"failed":true,"existing_container_id":7}"#, &[], "duplicate"),
            (200, r#"{"existing_artifact_id":"9"}"#, &[], "duplicate"),
            (400, r#"{"failed":true,"message":"bad label"}"#, &[], "rejected"),
            (401, r#"{"failed":true,"message":"bad token"}"#, &[], "credentials"),
            (403, "", &[], "credentials"),
            (404, "not found", &[], "rejected"),
            (408, "", &[], "retry"),
            (409, "", &[], "rejected"),
            (422, "", &[], "rejected"),
            (429, "", &[("Retry-After", "3")], "retry"),
            (500, "", &[], "retry"),
            (501, "", &[], "rejected"),
            (502, "<html>bad gateway</html>", &[], "retry"),
            (503, "", &[], "retry"),
            (504, "", &[], "retry"),
        ];
        for (status, body, headers, expected) in cases {
            let outcome = classify_response(&response(*status, body, headers), "x");
            assert_eq!(outcome_word(&outcome), *expected, "{status} {body}: {outcome:?}");
        }
    }

    #[test]
    fn rejections_carry_the_server_message_and_ids_are_kept() {
        match classify_response(
            &response(200, r#"{"failed":true,"message":"bad cef"}"#, &[]),
            "SOAR",
        ) {
            Outcome::Rejected(rejection) => {
                assert!(rejection.reason.contains("bad cef"), "{}", rejection.reason)
            }
            other => panic!("{other:?}"),
        }
        match classify_response(
            &response(400, r#"{"failed":true,"existing_container_id":7}"#, &[]),
            "SOAR",
        ) {
            Outcome::Delivered(delivered) => assert_eq!(delivered.remote_id.as_deref(), Some("7")),
            other => panic!("{other:?}"),
        }
        match classify_response(&response(201, r#"{"id":"INC0001"}"#, &[]), "StackFlow") {
            Outcome::Delivered(delivered) => {
                assert_eq!(delivered.remote_id.as_deref(), Some("INC0001"));
                assert!(!delivered.duplicate);
            }
            other => panic!("{other:?}"),
        }
        let nested = response(400, r#"{"messages":[{"type":"ERROR","text":"nope"}]}"#, &[]);
        assert_eq!(server_message(&nested), "nope");
        assert_eq!(server_message(&response(400, "", &[])), "(empty body)");
    }

    #[test]
    fn transport_failures_follow_the_product_table() {
        use TransportErrorKind as Kind;
        let cases = [
            (Kind::Timeout, "retry"),
            (Kind::ConnectionRefused, "retry"),
            (Kind::ConnectionReset, "retry"),
            (Kind::TlsInterrupted, "retry"),
            (Kind::HostNotFound, "retry"),
            (Kind::Other, "retry"),
            (Kind::CertificateNotTrusted, "configuration"),
            (Kind::BadUrl, "configuration"),
        ];
        for (kind, expected) in cases {
            let error = TransportError { kind, message: "m".into() };
            assert_eq!(outcome_word(&classify_transport(&error, "x")), expected, "{kind:?}");
        }
    }

    #[test]
    fn untrusted_certificates_are_configuration_errors() {
        let error = TransportError {
            kind: TransportErrorKind::CertificateNotTrusted,
            message: "UnknownIssuer".into(),
        };
        match classify_transport(&error, "SOAR") {
            Outcome::Rejected(rejection) => {
                assert_eq!(rejection.class, RejectClass::Configuration);
                assert!(rejection.reason.contains("not trusted"), "{}", rejection.reason);
                assert!(rejection.reason.contains("ca_file"), "{}", rejection.reason);
            }
            other => panic!("{other:?}"),
        }
    }
}
