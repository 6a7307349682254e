//! TLS trust and the proxy, shared by every connection we open: the HTTP agent (`http`) and
//! the Socket Mode stream (`remotes::slack::socket`), which runs tungstenite over a stream of
//! our own. One reading of an account's `ca_file` (its PEM certificates, else the Mozilla roots
//! of `webpki-roots`) and `verify_ssl`; one typing of a TLS failure (an untrusted certificate is
//! configuration, anything else an interrupted connection); the `[proxy]` URL for the agent,
//! and for a stream the `CONNECT` tunnel (RFC 9110 §9.3.6) behind a connect timeout.

use super::http::TransportErrorKind;
use crate::error::{Error, Result};
use crate::settings::TlsSettings;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// A proxy's answer to `CONNECT` larger than this is not an HTTP head.
const MAX_PROXY_HEAD: usize = 16 * 1024;

/// The PEM certificates of an account's `ca_file` (none when it has no `ca_file`); a file that
/// cannot be read or holds no certificate is a configuration error of `stanza`.
pub fn ca_certificates(
    tls: &TlsSettings,
    stanza: &str,
) -> Result<Option<Vec<Certificate<'static>>>> {
    let Some(path) = &tls.ca_file else {
        return Ok(None);
    };
    let pem = std::fs::read(path).map_err(|error| {
        Error::config(stanza, "ca_file", format!("cannot read {}: {error}", path.display()))
    })?;
    let certificates: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(certificate)) => Some(certificate),
            _ => None,
        })
        .collect();
    if certificates.is_empty() {
        return Err(Error::config(
            stanza,
            "ca_file",
            format!("{} holds no PEM certificate", path.display()),
        ));
    }
    Ok(Some(certificates))
}

/// The HTTP agent's TLS configuration: `verify_ssl`, and the `ca_file` roots when there is one
/// (ureq's defaults, the `webpki-roots`, otherwise).
pub fn agent_tls(tls: &TlsSettings, stanza: &str) -> Result<TlsConfig> {
    let mut config = TlsConfig::builder().disable_verification(!tls.verify);
    if let Some(certificates) = ca_certificates(tls, stanza)? {
        config = config.root_certs(RootCerts::new_with_certs(&certificates));
    }
    Ok(config.build())
}

/// The agent's `[proxy]`, as ureq reads it.
pub fn agent_proxy(url: Option<&str>) -> Result<Option<ureq::Proxy>> {
    url.map(|url| {
        ureq::Proxy::new(url).map_err(|error| {
            Error::config("proxy", "url", format!("\"{url}\" is not a usable proxy URL: {error}"))
        })
    })
    .transpose()
}

/// rustls inside an I/O error: rustls reports handshake failures through the stream as
/// `io::Error(InvalidData, <rustls::Error>)`.
pub fn rustls_error(error: &std::io::Error) -> Option<&rustls::Error> {
    error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// A TLS failure by its type: the server's certificate refused by our verifier (unknown
/// issuer, wrong name, expired…) or none presented is configuration; anything else (an alert,
/// a torn record) is an interrupted connection, worth retrying.
pub fn tls_kind(error: &rustls::Error) -> TransportErrorKind {
    match error {
        rustls::Error::InvalidCertificate(_)
        | rustls::Error::NoCertificatesPresented
        | rustls::Error::UnsupportedNameType => TransportErrorKind::CertificateNotTrusted,
        _ => TransportErrorKind::TlsInterrupted,
    }
}

/// The rustls client configuration of an account: its CA file, else the Mozilla roots
/// (`webpki-roots`, as the HTTP agent uses); `verify_ssl = false` accepts any certificate.
pub fn client_config(tls: &TlsSettings, stanza: &str) -> Result<Arc<ClientConfig>> {
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
                let certificates = ca_certificates(tls, stanza)?.unwrap_or_default();
                let certificates = certificates
                    .iter()
                    .map(|certificate| CertificateDer::from(certificate.der().to_vec()));
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

/// Why a stream could not be opened, and whether trying again can help.
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
/// `[proxy] url` read for a tunnel: `http://host:port`.
pub struct ProxyAddress {
    pub host: String,
    pub port: u16,
}

/// A TCP stream to `host:port` within a connect timeout (at most 10 s) and with `timeout` on
/// reads and writes, directly or through the `[proxy]` tunnel.
pub fn tcp_to(
    host: &str,
    port: u16,
    proxy: Option<&ProxyAddress>,
    timeout: Duration,
) -> std::result::Result<TcpStream, ConnectError> {
    let connect_timeout = timeout.min(Duration::from_secs(10));
    let (via_host, via_port) = match proxy {
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
    let _ = tcp.set_read_timeout(Some(timeout));
    let _ = tcp.set_write_timeout(Some(timeout));
    if proxy.is_some() {
        proxy_connect(&mut tcp, host, port)?;
    }
    Ok(tcp)
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
pub fn parse_proxy(url: &str) -> Result<ProxyAddress> {
    let bad = |why: &str| {
        Error::config("proxy", "url", format!("\"{}\" {why}", super::redact_userinfo(url)))
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
pub fn split_host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
