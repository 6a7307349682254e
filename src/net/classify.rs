//! HTTP outcome classification: every response or transport failure becomes delivered,
//! retry later, or rejected (PRODUCT §5).
//!
//! Retry: 408, 429, 5xx except 501, timeouts, refused or reset connections, an interrupted TLS
//! handshake. Of those, the answers that say the request was not taken (408, 429, 503, a
//! refused connection, an unknown host, a TLS failure, which comes before the request is
//! written) are `Outcome::not_taken`: a remote without dedupe is then sent to directly on the
//! next attempt; a timeout, a reset or another 5xx may have come after the remote acted. Rejected: other 4xx with the server's own message; 401/403 as credentials; a
//! certificate we do not trust as configuration. Bodies (SOAR `failed` and
//! `existing_container_id`, Slack `ok:false`, …) are judged by each target on top of the
//! status; the local splunkd's answers to secret reads go through the same table
//! (`splunk::rest`).

use super::http::{HttpResponse, TransportError, TransportErrorKind};
use super::{Outcome, RejectClass};

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
        // "Request Timeout", "Too Many Requests", "Service Unavailable": not processed.
        408 | 429 | 503 => StatusClass::Failed(Outcome::not_taken(
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

/// A transport failure as an outcome.
pub fn classify_transport(error: &TransportError, what: &str) -> Outcome {
    use TransportErrorKind as Kind;
    match error.kind {
        Kind::ConnectionRefused | Kind::TlsInterrupted | Kind::HostNotFound => {
            Outcome::not_taken(format!("{what}: {}", error.message), None)
        }
        Kind::Timeout | Kind::ConnectionReset => {
            Outcome::retry(format!("{what}: {}", error.message), None)
        }
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
    fn the_server_message_is_found_in_common_shapes() {
        let cases = [
            (r#"{"message":"bad label"}"#, "bad label"),
            (r#"{"ok":false,"error":"ratelimited"}"#, "ratelimited"),
            (r#"{"messages":[{"type":"ERROR","text":"nope"}]}"#, "nope"),
            (r#""plain JSON text""#, "plain JSON text"),
            ("<html>bad gateway</html>", "<html>bad gateway</html>"),
            ("", "(empty body)"),
        ];
        for (body, expected) in cases {
            assert_eq!(server_message(&response(400, body, &[])), expected, "{body}");
        }
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
    fn only_answers_that_say_so_are_not_taken() {
        let taken = |outcome: Outcome| match outcome {
            Outcome::Retry(retry) => retry.maybe_taken,
            other => panic!("{other:?}"),
        };
        for (status, maybe) in [(408, false), (429, false), (503, false), (500, true), (502, true)]
        {
            let StatusClass::Failed(outcome) = classify_status(&response(status, "", &[]), "x")
            else {
                panic!("{status}")
            };
            assert_eq!(taken(outcome), maybe, "{status}");
        }
        use TransportErrorKind as Kind;
        for (kind, maybe) in [
            (Kind::ConnectionRefused, false),
            (Kind::HostNotFound, false),
            (Kind::TlsInterrupted, false),
            (Kind::Timeout, true),
            (Kind::ConnectionReset, true),
            (Kind::Other, true),
        ] {
            let error = TransportError { kind, message: "m".into() };
            assert_eq!(taken(classify_transport(&error, "x")), maybe, "{kind:?}");
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
