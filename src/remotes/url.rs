//! The one URL policy for every remote a secret is sent to (SOAR, StackFlow, Slack, the local
//! splunkd): a configured URL is parsed (RFC 3986, by the `http` crate's `Uri`), never matched
//! on string prefixes, and accepted only when
//!
//! - the scheme is `https`, or `http` to the loopback address `127.0.0.1` or `[::1]`, or the
//!   name `localhost` itself (RFC 6761 §6.3 reserves it for loopback). Compared whole, never as
//!   a prefix: `127.0.0.12`, `127.0.0.1.nip.io` and `localhost.example.invalid` are other
//!   hosts (one exact rule is easier to audit than "the rest of 127/8", and nothing needs it);
//! - there is no user info (`user:pass@host`): a credential in a URL ends up in logs, and a
//!   host before an `@` is not the host a request goes to;
//! - there is no query, fragment, whitespace or `#` (Splunk `.conf` files have no trailing
//!   comments, so `url = https://x # prod` is a value with a comment in it, which is a
//!   configuration error, not a host to retry forever).
//!
//! The result is the base URL without a trailing slash, to which API paths are appended.

use crate::error::{Error, Result};
use crate::net::redact_userinfo;
use std::fmt;
use std::net::IpAddr;
use ureq::http::Uri;

/// A base URL that passed the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteUrl {
    /// `scheme://host[:port][/path]`, no trailing slash.
    text: String,
    /// Length of `scheme://host[:port]` in `text`.
    origin_len: usize,
}

/// Why a URL value was refused (shown after `[stanza] key: "<value>"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlProblem {
    Empty,
    Comment,
    Whitespace,
    NotAbsolute,
    Scheme,
    UserInfo,
    NoHost,
    QueryOrFragment,
    PlainHttp,
}

impl UrlProblem {
    fn explain(self) -> &'static str {
        match self {
            UrlProblem::Empty => "is empty",
            UrlProblem::Comment => {
                "contains '#': Splunk .conf files have no trailing comments, so the comment is part of the value; put it on its own line"
            }
            UrlProblem::Whitespace => "contains whitespace or a control character",
            UrlProblem::NotAbsolute => "is not an absolute URL (expected https://<host>[/path])",
            UrlProblem::Scheme => {
                "must start with https:// (or http:// to 127.0.0.1, [::1] or localhost)"
            }
            UrlProblem::UserInfo => {
                "contains user info (user:password@host): credentials never go into URLs; store them in storage/passwords"
            }
            UrlProblem::NoHost => "has no host",
            UrlProblem::QueryOrFragment => "must be a base URL without ?query",
            UrlProblem::PlainHttp => {
                "uses plain http to a host that is not the loopback interface: secrets are only sent over https (http is allowed to 127.0.0.1, [::1] or localhost only)"
            }
        }
    }
}

impl fmt::Display for UrlProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.explain())
    }
}

impl RemoteUrl {
    /// Parses `value` by the policy above.
    pub fn parse(value: &str) -> std::result::Result<RemoteUrl, UrlProblem> {
        let value = value.trim();
        if value.is_empty() {
            return Err(UrlProblem::Empty);
        }
        if value.contains('#') {
            return Err(UrlProblem::Comment);
        }
        if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlProblem::Whitespace);
        }
        let trimmed = value.trim_end_matches('/');
        let uri: Uri = trimmed.parse().map_err(|_| UrlProblem::NotAbsolute)?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(UrlProblem::NotAbsolute);
        };
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "https" && scheme != "http" {
            return Err(UrlProblem::Scheme);
        }
        if authority.as_str().contains('@') {
            return Err(UrlProblem::UserInfo);
        }
        let host = authority.host();
        if host.is_empty() {
            return Err(UrlProblem::NoHost);
        }
        if uri.query().is_some() || trimmed.contains('?') {
            return Err(UrlProblem::QueryOrFragment);
        }
        if scheme == "http" && !is_loopback_address(host) {
            return Err(UrlProblem::PlainHttp);
        }
        let origin = match authority.port_u16() {
            Some(port) => format!("{scheme}://{}:{port}", host.to_ascii_lowercase()),
            None => format!("{scheme}://{}", host.to_ascii_lowercase()),
        };
        let path = uri.path().trim_end_matches('/');
        Ok(RemoteUrl { origin_len: origin.len(), text: format!("{origin}{path}") })
    }

    /// Parses the value of `[stanza] key`, or a configuration error naming both.
    pub fn setting(stanza: &str, key: &str, value: &str) -> Result<RemoteUrl> {
        RemoteUrl::parse(value).map_err(|problem| {
            Error::config(stanza, key, format!("\"{}\" {problem}", redact_userinfo(value.trim())))
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `scheme://host[:port]`.
    pub fn origin(&self) -> &str {
        &self.text[..self.origin_len]
    }

    /// The path after the origin (empty for a bare host).
    pub fn path(&self) -> &str {
        &self.text[self.origin_len..]
    }

    /// This URL with `path_and_query` appended (which starts with `/`).
    pub fn join(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.text)
    }

    /// The URL without `suffix` at the end of its path (`…/rest` → `…`), if it ends so.
    pub fn strip_path_suffix(&self, suffix: &str) -> Option<RemoteUrl> {
        let path = self.path();
        let stripped = path.strip_suffix(suffix)?;
        Some(RemoteUrl {
            text: format!("{}{stripped}", self.origin()),
            origin_len: self.origin_len,
        })
    }
}

impl fmt::Display for RemoteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A host that is the IP literal `127.0.0.1` or `[::1]`, or exactly `localhost`.
fn is_loopback_address(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    literal.parse::<IpAddr>().is_ok_and(|ip| {
        ip == IpAddr::from([127, 0, 0, 1]) || ip == IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(value: &str) -> String {
        RemoteUrl::parse(value).unwrap_or_else(|p| panic!("{value}: {p}")).to_string()
    }

    fn refused(value: &str) -> UrlProblem {
        RemoteUrl::parse(value).expect_err(value)
    }

    #[test]
    fn https_anywhere_and_normalised() {
        assert_eq!(ok("https://SOAR.example.com/"), "https://soar.example.com");
        assert_eq!(
            ok(" https://acme.example.com:8443/prod/api// "),
            "https://acme.example.com:8443/prod/api"
        );
        assert_eq!(ok("HTTPS://[2001:db8::1]:443/x"), "https://[2001:db8::1]:443/x");
    }

    #[test]
    fn plain_http_only_to_loopback_addresses() {
        assert_eq!(ok("http://127.0.0.1:8000"), "http://127.0.0.1:8000");
        assert_eq!(ok("http://[::1]:9/api"), "http://[::1]:9/api");
        assert_eq!(ok("http://LocalHost:8000"), "http://localhost:8000");
        for lookalike in [
            "http://127.0.0.12",
            "http://127.0.0.12.example.com",
            "http://localhost.example.invalid",
            "http://127.0.0.1.nip.io",
            "http://soar.example.com",
            "http://[::2]",
            "http://0x7f000001",
        ] {
            assert_eq!(refused(lookalike), UrlProblem::PlainHttp, "{lookalike}");
        }
    }

    #[test]
    fn user_info_is_refused_whatever_precedes_the_at() {
        assert_eq!(refused("http://127.0.0.1:x@some.other.host"), UrlProblem::UserInfo);
        assert_eq!(refused("https://user:pass@soar.example.com"), UrlProblem::UserInfo);
        assert_eq!(refused("http://127.0.0.1@evil.example"), UrlProblem::UserInfo);
    }

    #[test]
    fn comments_queries_and_junk_are_configuration_errors() {
        assert_eq!(refused("https://soar.example.com # prod"), UrlProblem::Comment);
        assert_eq!(refused("https://soar.example.com#x"), UrlProblem::Comment);
        assert_eq!(refused("https://soar.example.com/?a=b"), UrlProblem::QueryOrFragment);
        assert_eq!(refused("https://soar example.com"), UrlProblem::Whitespace);
        assert_eq!(refused("soar.example.com"), UrlProblem::NotAbsolute);
        assert_eq!(refused("ftp://soar.example.com"), UrlProblem::Scheme);
        assert_eq!(refused(""), UrlProblem::Empty);
        assert_eq!(refused("https://"), UrlProblem::NotAbsolute);
    }

    #[test]
    fn settings_errors_name_the_key_and_never_print_credentials() {
        let message =
            RemoteUrl::setting("soar:default", "url", "https://u:hunter2@soar.example.com")
                .unwrap_err()
                .to_string();
        assert!(message.contains("[soar:default] url"), "{message}");
        assert!(message.contains("***@soar.example.com"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn parts_and_suffixes() {
        let url =
            RemoteUrl::parse("https://acme.example.com/prod/api/webhooks/inbound/splunk").unwrap();
        assert_eq!(url.origin(), "https://acme.example.com");
        assert_eq!(url.path(), "/prod/api/webhooks/inbound/splunk");
        assert_eq!(
            url.strip_path_suffix("/webhooks/inbound/splunk").unwrap().as_str(),
            "https://acme.example.com/prod/api"
        );
        let soar = RemoteUrl::parse("https://soar.example.com/rest/").unwrap();
        assert_eq!(soar.strip_path_suffix("/rest").unwrap().as_str(), "https://soar.example.com");
        assert!(soar.strip_path_suffix("/api").is_none());
        let base = soar.strip_path_suffix("/rest").unwrap();
        assert_eq!(base.join("/rest/container"), "https://soar.example.com/rest/container");
    }

    #[test]
    fn redaction() {
        assert_eq!(redact_userinfo("http://u:p@proxy:3128/x"), "http://***@proxy:3128/x");
        assert_eq!(redact_userinfo("http://proxy:3128"), "http://proxy:3128");
        assert_eq!(redact_userinfo("u:p@proxy:3128"), "***@proxy:3128");
    }
}
