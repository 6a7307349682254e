//! The network at the bottom of the house: the one HTTP agent builder (`http`), TLS trust and
//! the proxy shared by every connection (`tls`), what an attempt came to (`outcome`), status
//! and transport failures → outcome (`classify`), bounded backoff with jitter (`retry`), and
//! the URL encodings every request uses, and a URL with its user info hidden for messages. Knows no remote and no record: `remotes/` and
//! `outbox/` build on it.

pub mod classify;
pub mod http;
pub mod outcome;
pub mod retry;
pub mod tls;

pub use outcome::{Delivered, Outcome, RejectClass, Rejection, RetryLater};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// RFC 3986 §2.3's unreserved characters (`ALPHA / DIGIT / "-" / "." / "_" / "~"`) are the
/// only ones left as they are; every other byte is percent-encoded.
const NOT_UNRESERVED: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encodes a URL path segment or query value (UTF-8, upper-case hex digits).
pub fn url_encode(text: &str) -> String {
    utf8_percent_encode(text, NOT_UNRESERVED).to_string()
}

/// Encodes form fields as `application/x-www-form-urlencoded`.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(key, value)| format!("{}={}", url_encode(key), url_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A URL value with any user info replaced by `***`, for messages (`http://u:p@h/x` →
/// `http://***@h/x`). Values that are not URLs come back unchanged but for a `user@` prefix.
pub fn redact_userinfo(url: &str) -> String {
    let (prefix, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((_, host)) => format!("{prefix}***@{host}{}", &rest[authority_end..]),
        None => url.to_string(),
    }
}
