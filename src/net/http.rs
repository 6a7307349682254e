//! The one place an HTTP agent is built: timeouts, TLS trust, proxy, user agent. It sends GET
//! and POST, the only methods any API we call needs.
//!
//! A response of any status is returned as data (`HttpResponse`); only transport failures are
//! errors, and even those are typed (`TransportError`) so that `delivery::classify` can tell a
//! retryable connection reset from a certificate nobody trusts. Bodies are capped so that a
//! hostile server cannot make us allocate without bound, and `Retry-After` is read as a bounded
//! number of seconds so that it cannot make us wait, or overflow a clock, without bound.

use super::retry::MAX_RETRY_AFTER;
use super::tls;
use crate::error::Result;
use crate::settings::TlsSettings;
use std::io::Read;
use std::time::Duration;

/// Larger responses are cut here; no API we call answers with more than a few MB.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

pub const USER_AGENT: &str = concat!("stackflow-for-splunk/", env!("CARGO_PKG_VERSION"));

/// How to reach one remote.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    pub tls: TlsSettings,
    pub proxy: Option<String>,
    pub timeout: Duration,
}

#[derive(Clone)]
pub struct HttpClient {
    agent: ureq::Agent,
}

#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as text for messages, cut to a readable length.
    pub fn body_excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        match text.char_indices().nth(300) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.to_string(),
        }
    }

    /// The `Retry-After` header as a bounded wait (see `parse_retry_after`).
    pub fn retry_after(&self) -> Option<Duration> {
        parse_retry_after(self.header("retry-after")?)
    }
}

/// Reads a `Retry-After` value without trusting it. RFC 9110 §10.2.3 allows `delay-seconds`
/// (`1*DIGIT`) or an HTTP-date. Seconds are read digit by digit, never through a float, and
/// any number of them beyond `retry::MAX_RETRY_AFTER` (one hour) reads as that hour; a decimal
/// fraction is tolerated. Everything else — a sign, an exponent, `NaN`, garbage, and the
/// HTTP-date form (rare on APIs) — is treated as absent: the ordinary backoff applies.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let (whole, fraction) = match value.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (value, None),
    };
    let all_digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || !fraction.is_none_or(all_digits) {
        return None;
    }
    let max = MAX_RETRY_AFTER;
    // Only digits: the one way `parse` can fail is a number too large for u64, past the cap.
    let seconds = whole.parse::<u64>().unwrap_or(u64::MAX);
    if seconds >= max.as_secs() {
        return Some(max);
    }
    let nanos = fraction
        .unwrap_or_default()
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0u32, |nanos, digit| nanos * 10 + u32::from(digit - b'0'));
    Some(Duration::new(seconds, nanos).min(max))
}

/// Why a request got no HTTP response at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransportErrorKind {
    Timeout,
    ConnectionRefused,
    ConnectionReset,
    /// The server's certificate is not trusted (unknown issuer, wrong host name, expired):
    /// a configuration problem, not worth retrying.
    CertificateNotTrusted,
    /// The TLS handshake broke off: worth retrying.
    TlsInterrupted,
    HostNotFound,
    /// A URL or proxy setting that cannot work.
    BadUrl,
    Other,
}

#[derive(Clone, Debug)]
pub struct TransportError {
    pub kind: TransportErrorKind,
    pub message: String,
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl HttpClient {
    /// Builds an agent; fails with a configuration error when the CA file or proxy is unusable.
    pub fn new(options: &HttpOptions, config_stanza: &str) -> Result<HttpClient> {
        let tls = tls::agent_tls(&options.tls, config_stanza)?;
        let proxy = tls::agent_proxy(options.proxy.as_deref())?;
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(options.timeout))
            .timeout_connect(Some(options.timeout.min(Duration::from_secs(10))))
            .tls_config(tls)
            .proxy(proxy)
            .user_agent(USER_AGENT)
            .max_redirects(0)
            .build();
        let agent = ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::default(),
            LiteralResolver::default(),
        );
        Ok(HttpClient { agent })
    }

    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<HttpResponse, TransportError> {
        let mut request = self.agent.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        read_response(request.call())
    }

    /// `GET` whose body is read by the caller as it arrives (capped like any body): for answers
    /// that may be far larger than what should be in memory at once (a list page of any size).
    pub fn get_streamed(
        &self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<StreamedResponse, TransportError> {
        let mut request = self.agent.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.call().map_err(classify_transport_error)?;
        let status = response.status().as_u16();
        let headers = header_list(&response);
        let body = response.into_body().into_with_config().limit(MAX_RESPONSE_BYTES).reader();
        Ok(StreamedResponse { status, headers, body: Box::new(body) })
    }

    /// `POST` whose body is read by the caller as it arrives (capped like any body): a search
    /// export streams its rows, and closing it early (dropping the response) ends the search.
    pub fn post_streamed(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<StreamedResponse, TransportError> {
        let mut request = self.agent.post(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send(body).map_err(classify_transport_error)?;
        let status = response.status().as_u16();
        let headers = header_list(&response);
        let body = response.into_body().into_with_config().limit(MAX_RESPONSE_BYTES).reader();
        Ok(StreamedResponse { status, headers, body: Box::new(body) })
    }

    pub fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpResponse, TransportError> {
        let mut request = self.agent.post(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        read_response(request.send(body))
    }

    pub fn delete(
        &self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<HttpResponse, TransportError> {
        let mut request = self.agent.delete(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        read_response(request.call())
    }
}

/// ureq's default resolver, except that a host that is an IP address (the local splunkd at
/// 127.0.0.1, loopback emulators) is used as it is. With a timeout configured, ureq 3's
/// default resolver runs every lookup — for every request, pooled connection or not — on a
/// new thread (`resolve_async`); an address needs no lookup, hence no thread.
#[derive(Debug, Default)]
struct LiteralResolver {
    names: ureq::unversioned::resolver::DefaultResolver,
}

impl ureq::unversioned::resolver::Resolver for LiteralResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let literal = uri.authority().and_then(|authority| {
            let host = authority.host().trim_start_matches('[').trim_end_matches(']');
            let ip: std::net::IpAddr = host.parse().ok()?;
            let port = authority.port_u16().or(match uri.scheme_str() {
                Some("https") => Some(443),
                Some("http") => Some(80),
                _ => None,
            })?;
            Some(std::net::SocketAddr::new(ip, port))
        });
        match literal {
            Some(address) => {
                let mut addresses = self.empty();
                addresses.push(address);
                Ok(addresses)
            }
            None => self.names.resolve(uri, config, timeout),
        }
    }
}

fn header_list(response: &ureq::http::Response<ureq::Body>) -> Vec<(String, String)> {
    response
        .headers()
        .iter()
        .map(|(name, value)| {
            (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned())
        })
        .collect()
}

/// An answer whose body has not been read yet (`HttpClient::get_streamed`).
pub struct StreamedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    body: Box<dyn Read + Send>,
}

impl StreamedResponse {
    /// The body, as it arrives (at most the cap of any body).
    pub fn body(&mut self) -> &mut (dyn Read + Send) {
        &mut *self.body
    }

    /// The whole (capped) body read into an ordinary response, e.g. to classify a failure.
    pub fn into_response(mut self) -> Result<HttpResponse, TransportError> {
        let mut body = Vec::new();
        self.body
            .read_to_end(&mut body)
            .map_err(|error| classify_io_error(&error, "reading the response body"))?;
        Ok(HttpResponse { status: self.status, headers: self.headers, body })
    }
}

/// Status, headers and (capped) body of an answer, or the classified transport failure.
fn read_response(
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<HttpResponse, TransportError> {
    let mut response = result.map_err(classify_transport_error)?;
    let status = response.status().as_u16();
    let headers = header_list(&response);
    let mut body = Vec::new();
    response
        .body_mut()
        .as_reader()
        .take(MAX_RESPONSE_BYTES)
        .read_to_end(&mut body)
        .map_err(|error| classify_io_error(&error, "reading the response body"))?;
    Ok(HttpResponse { status, headers, body })
}

fn classify_transport_error(error: ureq::Error) -> TransportError {
    use TransportErrorKind as Kind;
    let message = error.to_string();
    let kind = match &error {
        ureq::Error::Timeout(_) => Kind::Timeout,
        ureq::Error::HostNotFound => Kind::HostNotFound,
        ureq::Error::BadUri(_)
        | ureq::Error::InvalidProxyUrl
        | ureq::Error::RequireHttpsOnly(_) => Kind::BadUrl,
        ureq::Error::Io(io) => return classify_io_error(io, "sending the request"),
        ureq::Error::Rustls(tls) => tls::tls_kind(tls),
        ureq::Error::Tls(_) => Kind::TlsInterrupted,
        ureq::Error::ConnectionFailed => Kind::ConnectionRefused,
        _ => Kind::Other,
    };
    TransportError { kind, message }
}

fn classify_io_error(error: &std::io::Error, during: &str) -> TransportError {
    use TransportErrorKind as Kind;
    use std::io::ErrorKind;
    let text = error.to_string();
    let kind = match (tls::rustls_error(error), error.kind()) {
        (Some(tls), _) => tls::tls_kind(tls),
        (None, ErrorKind::TimedOut | ErrorKind::WouldBlock) => Kind::Timeout,
        (None, ErrorKind::ConnectionRefused) => Kind::ConnectionRefused,
        (
            None,
            ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
            | ErrorKind::UnexpectedEof,
        ) => Kind::ConnectionReset,
        (None, ErrorKind::InvalidData) => Kind::TlsInterrupted,
        (None, _) => Kind::Other,
    };
    TransportError { kind, message: format!("{during}: {text}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_used_as_they_are_and_names_are_looked_up() {
        use ureq::unversioned::resolver::Resolver;
        let resolver = LiteralResolver::default();
        let config = ureq::Agent::config_builder().build();
        let resolve = |url: &str| {
            let uri: ureq::http::Uri = url.parse().unwrap();
            resolver
                .resolve(&uri, &config, ureq::unversioned::transport::NextTimeout::default())
                .map(|addresses| addresses.iter().map(|a| a.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(resolve("https://127.0.0.1:8089/x").unwrap(), vec!["127.0.0.1:8089"]);
        assert_eq!(resolve("https://[::1]/x").unwrap(), vec!["[::1]:443"]);
        assert_eq!(resolve("http://10.1.2.3/x").unwrap(), vec!["10.1.2.3:80"]);
        let looked_up = resolve("https://localhost:8089/x").unwrap();
        assert!(looked_up.iter().all(|a| a.ends_with(":8089")) && !looked_up.is_empty());
    }

    #[test]
    fn retry_after_is_read_as_bounded_seconds() {
        let hour = MAX_RETRY_AFTER;
        let cases: &[(&str, Option<Duration>)] = &[
            ("0", Some(Duration::ZERO)),
            ("7", Some(Duration::from_secs(7))),
            (" 120 ", Some(Duration::from_secs(120))),
            ("1.5", Some(Duration::from_millis(1500))),
            ("0.0000000019", Some(Duration::from_nanos(1))),
            ("3599", Some(Duration::from_secs(3599))),
            ("3600", Some(hour)),
            ("3599.9999999999", Some(Duration::new(3599, 999_999_999))),
            ("86400", Some(hour)),
            ("99999999999999999999", Some(hour)),
            ("18446744073709551616.5", Some(hour)),
            (&"9".repeat(5000), Some(hour)),
            ("1e400", None),
            ("1e3", None),
            ("-5", None),
            ("+5", None),
            ("NaN", None),
            ("inf", None),
            ("", None),
            (".5", None),
            ("5.", None),
            ("1.2.3", None),
            ("٣", None),
            ("Fri, 31 Dec 9999 23:59:59 GMT", None),
            ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_retry_after(value), *expected, "Retry-After: {value:?}");
        }
    }

    #[test]
    fn the_header_is_found_whatever_its_case() {
        let response = HttpResponse {
            status: 429,
            headers: vec![("retry-AFTER".into(), "99999999999999999999".into())],
            body: Vec::new(),
        };
        assert_eq!(response.retry_after(), Some(MAX_RETRY_AFTER));
    }
}
