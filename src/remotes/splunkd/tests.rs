//! Unit tests of `rest`.

use super::*;
use crate::error::ExitCode;
use crate::net::http::TransportErrorKind;

fn answer(status: u16) -> HttpResponse {
    HttpResponse {
        status,
        headers: Vec::new(),
        body: br#"{"messages":[{"type":"ERROR","text":"splunkd says no"}]}"#.to_vec(),
    }
}

fn status_error(status: u16) -> Error {
    match classify_status(&answer(status), "reading secret") {
        StatusClass::Failed(outcome) => secret_error("soar.default", Some(status), outcome),
        StatusClass::Success => panic!("HTTP {status} is not a failure"),
    }
}

#[test]
fn a_busy_or_unreachable_splunkd_defers_and_a_refusal_is_a_credentials_error() {
    for status in [500, 502, 503, 504, 408, 429] {
        let error = status_error(status);
        assert_eq!(error.exit_code(), ExitCode::Deferred, "HTTP {status}: {error}");
        assert!(error.to_string().contains("splunkd says no"), "{error}");
    }
    for status in [401, 403] {
        let error = status_error(status);
        assert_eq!(error.exit_code(), ExitCode::Credentials, "HTTP {status}");
        assert!(error.to_string().contains("stackflow_user role"), "{error}");
    }
    let missing = status_error(404);
    assert_eq!(missing.exit_code(), ExitCode::Credentials);
    assert!(missing.to_string().contains("no secret \"soar.default\""), "{missing}");
    for status in [400, 409, 501] {
        let error = status_error(status);
        assert_eq!(error.exit_code(), ExitCode::Credentials, "HTTP {status}");
        assert!(error.to_string().contains(&format!("HTTP {status}")), "{error}");
    }
    use TransportErrorKind as Kind;
    for (kind, code) in [
        (Kind::ConnectionRefused, ExitCode::Deferred),
        (Kind::ConnectionReset, ExitCode::Deferred),
        (Kind::Timeout, ExitCode::Deferred),
        (Kind::HostNotFound, ExitCode::Deferred),
        (Kind::CertificateNotTrusted, ExitCode::Configuration),
        (Kind::BadUrl, ExitCode::Configuration),
    ] {
        let failure = TransportError { kind, message: "it broke".into() };
        let error =
            secret_error("soar.default", None, classify_transport(&failure, "reading secret"));
        assert_eq!(error.exit_code(), code, "{kind:?}: {error}");
        assert!(error.to_string().contains("it broke"), "{error}");
    }
}

/// Exactly RFC 3986's unreserved characters (§2.3) pass through; every other byte, ASCII
/// or of a UTF-8 sequence, becomes `%XX` with upper-case hex digits (§2.1).
#[test]
fn only_unreserved_characters_pass_through() {
    let unreserved = |byte: u8| byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte);
    for byte in 0u8..0x80 {
        let text = char::from(byte).to_string();
        let expected = if unreserved(byte) { text.clone() } else { format!("%{byte:02X}") };
        assert_eq!(url_encode(&text), expected, "byte {byte:#04x}");
    }
    for text in ["é", "€", "😀", "\u{80}", "\u{10FFFF}"] {
        let expected: String = text.bytes().map(|byte| format!("%{byte:02X}")).collect();
        assert_eq!(url_encode(text), expected, "{text:?}");
    }
    assert_eq!(url_encode(""), "");
    assert_eq!(
        url_encode("stackflow:soar.prod-1_~x/y?z=1&w#"),
        "stackflow%3Asoar.prod-1_~x%2Fy%3Fz%3D1%26w%23"
    );
}

#[test]
fn encoding_follows_rfc3986() {
    assert_eq!(url_encode("soar.default"), "soar.default");
    assert_eq!(url_encode("a b:c/é"), "a%20b%3Ac%2F%C3%A9");
    assert_eq!(
        form_encode(&[("ruleUIDs", "x@@notable@@1"), ("comment", "a&b")]),
        "ruleUIDs=x%40%40notable%40%401&comment=a%26b"
    );
}

#[test]
fn password_names_escape_colons_then_percent_encode() {
    assert_eq!(password_entry_name("stackflow", "soar.default"), "stackflow:soar.default:");
    assert_eq!(password_entry_name("stackflow", "soar.a:b"), "stackflow:soar.a%5C%3Ab:");
    assert_eq!(password_entry_name("stackflow:soar.a", "b"), "stackflow%5C%3Asoar.a:b:");
    assert_ne!(password_entry_name("a:b", "c"), password_entry_name("a", "b:c"));
    for bad in ["soar.a:b", "soar.", "soar", &format!("llm.{}", "x".repeat(65))] {
        let error = check_secret_user(bad).unwrap_err();
        assert_eq!(error.exit_code(), ExitCode::Configuration, "{bad}: {error}");
    }
    assert!(check_secret_user("stackflow_api.emea-1").is_ok());
}
