//! Slack Socket Mode transport: `apps.connections.open` with the app-level token
//! (`slack_app.<account>`), then a WebSocket over TLS to the URL it returns, opened by us —
//! TCP with a connect timeout, the `[proxy]` tunnel (HTTP `CONNECT`), rustls with the account's
//! `ca_file` / `verify_ssl`, all from `net::tls` as the HTTP agent has them — and handed to `tungstenite`, which only does the framing
//! (Slack "Using Socket Mode"; tungstenite's `client` takes any `Read + Write` stream).
//!
//! The WebSocket URL carries a short-lived ticket in its query: it is never logged (only its
//! host is), and only `wss://` is accepted. Frames are bounded (`MAX_MESSAGE_BYTES`).

use super::{SlackAccount, SlackApi};
use crate::error::{Error, Result};
use crate::net::Outcome;
use crate::net::http::TransportErrorKind;
pub use crate::net::tls::ConnectError;
use crate::net::tls::{self, ProxyAddress, client_config, parse_proxy, split_host_port, tcp_to};
use crate::remotes::splunkd::Splunkd;
use crate::secret::Secret;
use crate::settings::Settings;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;
use tungstenite::protocol::WebSocketConfig;

/// The largest Socket Mode message read (PRODUCT §15: at least 16 MiB, Slack's own limits;
/// an envelope carries a whole message with its blocks, a modal's state, a file list…).
/// Buffers grow with the frames actually read: nothing of this size is allocated while idle.
/// Only a frame beyond it ends the connection (the WebSocket framing cannot skip it).
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

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
        let tcp = tcp_to(&host, port, self.proxy.as_ref(), self.timeout)?;
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

/// A handshake failure: an untrusted certificate is configuration (fatal), the rest retryable
/// (typed by `net::tls` as the HTTP agent types it).
fn tls_failure(host: &str, error: &std::io::Error) -> ConnectError {
    match tls::rustls_error(error) {
        Some(tls) if tls::tls_kind(tls) == TransportErrorKind::CertificateNotTrusted => {
            ConnectError::Fatal(Error::config(
                "slack",
                "ca_file",
                format!(
                    "the certificate of {host} is not trusted ({tls}): set ca_file (or verify_ssl) in the account's stanza"
                ),
            ))
        }
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
}
