//! Slack Socket Mode transport: `apps.connections.open` with the app-level token
//! (`slack_app.<account>`), then a WebSocket over TLS to the URL it returns, opened by us —
//! TCP with a connect timeout, the `[proxy]` tunnel (HTTP `CONNECT`), rustls with the account's
//! `ca_file` / `verify_ssl` — and handed to `tungstenite`, which only does the framing
//! (Slack "Using Socket Mode"; tungstenite's `client` takes any `Read + Write` stream).
//!
//! The WebSocket URL carries a short-lived ticket in its query: it is never logged (only its
//! host is), and only `wss://` is accepted. Frames are bounded (`MAX_MESSAGE_BYTES`).

use super::{SlackAccount, SlackApi};
use crate::error::{Error, Result};
use crate::net::Outcome;
use crate::remotes::splunkd::Splunkd;
use crate::secret::Secret;
use crate::settings::{Settings, TlsSettings};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, StreamOwned};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;
use tungstenite::protocol::WebSocketConfig;

/// The largest Socket Mode message read (PRODUCT §15: at least 16 MiB, Slack's own limits;
/// an envelope carries a whole message with its blocks, a modal's state, a file list…).
/// Buffers grow with the frames actually read: nothing of this size is allocated while idle.
/// Only a frame beyond it ends the connection (the WebSocket framing cannot skip it).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;
/// A proxy's answer to `CONNECT` larger than this is not an HTTP head.
const MAX_PROXY_HEAD: usize = 16 * 1024;

/// storage/passwords user name of the app-level token (`xapp-…`, scope `connections:write`).
pub fn app_token_user_of(account: &str) -> String {
    format!("slack_app.{account}")
}

/// The TLS stream the WebSocket runs on.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;
pub type Socket = tungstenite::WebSocket<TlsStream>;

/// Everything needed to (re)connect one account, read once.
pub struct SocketModeClient {
    api: SlackApi,
    tls: Arc<ClientConfig>,
    proxy: Option<ProxyAddress>,
    timeout: Duration,
}

/// Why a connection attempt failed, and whether trying again can help.
#[derive(Debug)]
pub enum ConnectError {
    /// Worth retrying later (network, Slack busy).
    Retry(String),
    /// Will not work until an admin changes something (token refused, certificate, settings).
    Fatal(Error),
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Retry(message) => f.write_str(message),
            ConnectError::Fatal(error) => write!(f, "{error}"),
        }
    }
}

#[derive(Clone, Debug)]
struct ProxyAddress {
    host: String,
    port: u16,
}

impl SocketModeClient {
    /// Reads `[slack:<account>]`, its TLS settings, `[proxy]` and the app-level token.
    pub fn open(settings: &Settings, splunkd: &Splunkd, account: &str) -> Result<SocketModeClient> {
        let stanza = SlackAccount::stanza_of(account);
        let api =
            SlackApi::open_with_secret(settings, splunkd, account, &app_token_user_of(account))?;
        let tls = client_config(&settings.tls(&stanza, true)?, &stanza)?;
        let proxy = settings.proxy().map(|url| parse_proxy(&url)).transpose()?;
        Ok(SocketModeClient { api, tls, proxy, timeout: settings.request_timeout()? })
    }

    pub fn account(&self) -> &str {
        &self.api.account.name
    }

    /// `apps.connections.open`, then the WebSocket handshake. The socket has a read timeout of
    /// `poll` so that its reader can look at the stop flag between frames.
    pub fn connect(&self, poll: Duration) -> std::result::Result<Socket, ConnectError> {
        let url = self.open_url()?;
        let (host, port) = wss_host_port(url.expose()).map_err(ConnectError::Fatal)?;
        let tcp = self.tcp_to(&host, port)?;
        let name = ServerName::try_from(host.clone()).map_err(|_| {
            ConnectError::Fatal(Error::Rejected(format!(
                "Slack apps.connections.open returned an unusable host \"{host}\""
            )))
        })?;
        let connection = ClientConnection::new(self.tls.clone(), name)
            .map_err(|error| ConnectError::Retry(format!("TLS to {host}: {error}")))?;
        let mut stream = StreamOwned::new(connection, tcp);
        // The handshake happens here, so that an untrusted certificate is told apart.
        while stream.conn.is_handshaking() {
            if let Err(error) = stream.conn.complete_io(&mut stream.sock) {
                return Err(tls_failure(&host, &error));
            }
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let (socket, _response) =
            tungstenite::client::client_with_config(url.expose(), stream, Some(config)).map_err(
                |error| {
                    let detail = match error {
                        tungstenite::HandshakeError::Failure(error) => short(&error),
                        tungstenite::HandshakeError::Interrupted(_) => "timed out".into(),
                    };
                    ConnectError::Retry(format!("WebSocket handshake with {host}: {detail}"))
                },
            )?;
        let _ = socket.get_ref().sock.set_read_timeout(Some(poll));
        log::info!("Socket Mode: connected to {host} (account {})", self.account());
        Ok(socket)
    }

    /// `apps.connections.open`: the one-time WebSocket URL (treated as a secret).
    fn open_url(&self) -> std::result::Result<Secret, ConnectError> {
        let response =
            self.api.call_form("apps.connections.open", "").map_err(|outcome| match outcome {
                Outcome::Retry(retry) => ConnectError::Retry(retry.reason),
                other => ConnectError::Fatal(outcome_error(other)),
            })?;
        let json = response.json().unwrap_or_default();
        let ok = json.get("ok").and_then(|v| v.as_bool()) == Some(true);
        if response.status == 429 || response.status >= 500 {
            return Err(ConnectError::Retry(format!(
                "Slack apps.connections.open answered HTTP {}",
                response.status
            )));
        }
        if !ok {
            let error = json.get("error").and_then(|v| v.as_str()).unwrap_or("no JSON answer");
            let message = format!(
                "Slack apps.connections.open refused the app-level token {}: {error}",
                app_token_user_of(self.account())
            );
            return Err(match error {
                "ratelimited" | "internal_error" | "fatal_error" | "service_unavailable" => {
                    ConnectError::Retry(message)
                }
                "invalid_auth"
                | "not_authed"
                | "not_allowed_token_type"
                | "missing_scope"
                | "account_inactive"
                | "token_revoked" => ConnectError::Fatal(Error::Credentials(message)),
                _ => ConnectError::Fatal(Error::Rejected(message)),
            });
        }
        json.get("url").and_then(|v| v.as_str()).map(Secret::new).ok_or_else(|| {
            ConnectError::Fatal(Error::Rejected(
                "Slack apps.connections.open answered ok without a url".into(),
            ))
        })
    }

    /// A TCP stream to `host:port`, directly or through the `[proxy]` tunnel.
    fn tcp_to(&self, host: &str, port: u16) -> std::result::Result<TcpStream, ConnectError> {
        let connect_timeout = self.timeout.min(Duration::from_secs(10));
        let (via_host, via_port) = match &self.proxy {
            Some(proxy) => (proxy.host.as_str(), proxy.port),
            None => (host, port),
        };
        let addresses = (via_host, via_port)
            .to_socket_addrs()
            .map_err(|error| ConnectError::Retry(format!("resolving {via_host}: {error}")))?;
        let mut last = format!("{via_host}: no address");
        let mut tcp = None;
        for address in addresses {
            match TcpStream::connect_timeout(&address, connect_timeout) {
                Ok(stream) => {
                    tcp = Some(stream);
                    break;
                }
                Err(error) => last = format!("connecting to {via_host}:{via_port}: {error}"),
            }
        }
        let mut tcp = tcp.ok_or(ConnectError::Retry(last))?;
        let _ = tcp.set_nodelay(true);
        let _ = tcp.set_read_timeout(Some(self.timeout));
        let _ = tcp.set_write_timeout(Some(self.timeout));
        if self.proxy.is_some() {
            proxy_connect(&mut tcp, host, port)?;
        }
        Ok(tcp)
    }
}

/// `CONNECT host:port` through an HTTP proxy (RFC 9110 §9.3.6); a 2xx answer opens the tunnel.
fn proxy_connect(
    tcp: &mut TcpStream,
    host: &str,
    port: u16,
) -> std::result::Result<(), ConnectError> {
    let target =
        if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    tcp.write_all(request.as_bytes())
        .map_err(|error| ConnectError::Retry(format!("proxy CONNECT: {error}")))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tcp.read(&mut byte) {
            Ok(0) => return Err(ConnectError::Retry("proxy closed the connection".into())),
            Ok(_) => head.push(byte[0]),
            Err(error) => return Err(ConnectError::Retry(format!("proxy CONNECT: {error}"))),
        }
        if head.len() > MAX_PROXY_HEAD {
            return Err(ConnectError::Retry("proxy answer too large".into()));
        }
    }
    let status_line = String::from_utf8_lossy(&head);
    let status = status_line.split_whitespace().nth(1).unwrap_or("");
    if status.starts_with('2') && status.len() == 3 {
        return Ok(());
    }
    let line = status_line.lines().next().unwrap_or("").to_string();
    Err(match status {
        "407" => ConnectError::Fatal(Error::config(
            "proxy",
            "url",
            format!("the proxy wants authentication: {line}"),
        )),
        _ => ConnectError::Retry(format!("proxy refused CONNECT {target}: {line}")),
    })
}

/// `[proxy] url` = `http://host:port` (the tunnel is opened in plain HTTP, as ureq does).
fn parse_proxy(url: &str) -> Result<ProxyAddress> {
    let bad = |why: &str| {
        Error::config(
            "proxy",
            "url",
            format!("\"{}\" {why}", crate::remotes::url::redact_userinfo(url)),
        )
    };
    let rest = url.trim().strip_prefix("http://").ok_or_else(|| bad("must be http://host:port"))?;
    let authority = rest.trim_end_matches('/');
    if authority.contains(['/', '@', '?', '#']) {
        return Err(bad("must be http://host:port, without user info or path"));
    }
    let (host, port) =
        split_host_port(authority, 8080).ok_or_else(|| bad("has no usable host:port"))?;
    Ok(ProxyAddress { host, port })
}

/// `host[:port]` / `[v6][:port]`.
fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(port) => port.parse().ok()?,
            None if after.is_empty() => default_port,
            None => return None,
        };
        (host.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), port.parse().ok()?),
            None => (authority.to_string(), default_port),
        }
    };
    (!host.is_empty()).then_some((host, port))
}

/// Host and port of a `wss://` URL (nothing else is accepted: the ticket must travel in TLS).
fn wss_host_port(url: &str) -> Result<(String, u16)> {
    let bad = |why: &str| {
        Error::Rejected(format!("Slack apps.connections.open returned a URL that {why}"))
    };
    let rest = url.strip_prefix("wss://").ok_or_else(|| bad("is not wss://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(bad("has user info"));
    }
    split_host_port(authority, 443).ok_or_else(|| bad("has no usable host"))
}

/// The rustls client configuration of an account: its CA file, else the Mozilla roots
/// (`webpki-roots`, as the HTTP agent uses); `verify_ssl = false` accepts any certificate.
fn client_config(tls: &TlsSettings, stanza: &str) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| Error::Internal(format!("TLS versions: {error}")))?;
    let mut config = if !tls.verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        match &tls.ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|error| {
                    Error::config(
                        stanza,
                        "ca_file",
                        format!("cannot read {}: {error}", path.display()),
                    )
                })?;
                let certificates: Vec<CertificateDer<'static>> = ureq::tls::parse_pem(&pem)
                    .filter_map(|item| match item {
                        Ok(ureq::tls::PemItem::Certificate(certificate)) => {
                            Some(CertificateDer::from(certificate.der().to_vec()))
                        }
                        _ => None,
                    })
                    .collect();
                let (added, _) = roots.add_parsable_certificates(certificates);
                if added == 0 {
                    return Err(Error::config(
                        stanza,
                        "ca_file",
                        format!("{} holds no usable PEM certificate", path.display()),
                    ));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `verify_ssl = false`: any certificate, signatures still checked by the provider.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A handshake failure: an untrusted certificate is configuration (fatal), the rest retryable.
fn tls_failure(host: &str, error: &std::io::Error) -> ConnectError {
    let tls = error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::InvalidCertificate(reason)) => ConnectError::Fatal(Error::config(
            "slack",
            "ca_file",
            format!(
                "the certificate of {host} is not trusted ({reason:?}): set ca_file (or verify_ssl) in the account's stanza"
            ),
        )),
        _ => ConnectError::Retry(format!("TLS handshake with {host}: {error}")),
    }
}

fn outcome_error(outcome: Outcome) -> Error {
    use crate::net::RejectClass;
    match outcome {
        Outcome::Rejected(rejection) => match rejection.class {
            RejectClass::Credentials => Error::Credentials(rejection.reason),
            RejectClass::Configuration => Error::config("slack", "api_url", rejection.reason),
            RejectClass::Remote => Error::Rejected(rejection.reason),
        },
        Outcome::Retry(retry) => Error::Unavailable(retry.reason),
        Outcome::Delivered(_) => {
            Error::Internal("apps.connections.open: unexpected outcome".into())
        }
    }
}

/// A tungstenite error without the request (whose URL holds the ticket).
fn short(error: &tungstenite::Error) -> String {
    match error {
        tungstenite::Error::Http(response) => format!("HTTP {}", response.status()),
        tungstenite::Error::Io(io) => io.to_string(),
        tungstenite::Error::Tls(_) => "TLS error".into(),
        tungstenite::Error::Protocol(problem) => problem.to_string(),
        tungstenite::Error::Capacity(problem) => problem.to_string(),
        _ => "connection failed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_wss_urls_with_a_host() {
        assert_eq!(
            wss_host_port("wss://wss-primary.slack.com/link/?ticket=abc&app_id=A1").unwrap(),
            ("wss-primary.slack.com".to_string(), 443)
        );
        assert_eq!(
            wss_host_port("wss://127.0.0.1:9443/link?t=1").unwrap(),
            ("127.0.0.1".into(), 9443)
        );
        for bad in ["ws://x/link", "https://x/", "wss://", "wss://u:p@x/", "wss://x:99999/"] {
            let error = wss_host_port(bad).unwrap_err().to_string();
            assert!(!error.contains("ticket"), "{error}");
        }
    }

    #[test]
    fn proxy_urls() {
        let proxy = parse_proxy("http://proxy.corp:3128").unwrap();
        assert_eq!((proxy.host.as_str(), proxy.port), ("proxy.corp", 3128));
        assert_eq!(parse_proxy("http://[::1]:8080/").unwrap().host, "::1");
        for bad in ["https://p:1", "http://u:pw@p:1", "http://p:x", "socks5://p:1"] {
            let error = parse_proxy(bad).unwrap_err().to_string();
            assert!(!error.contains("pw"), "{error}");
        }
    }
}
