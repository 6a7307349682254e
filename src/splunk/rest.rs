//! The local splunkd's REST API, with the session key splunkd handed us: credentials from
//! `storage/passwords`, the KV store, and notable updates.
//!
//! Every call is authenticated with `Authorization: Splunk <session key>`. The local splunkd
//! usually serves Splunk's self-signed certificate, so `[splunkd] verify_ssl` defaults to
//! false; no proxy is ever used for it.

use crate::delivery::classify::server_message;
use crate::delivery::http::{HttpClient, HttpOptions, HttpResponse};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::settings::Settings;
use std::time::Duration;

/// The app whose namespace holds our secrets and collections.
pub const APP: &str = "stackflow";
/// The `storage/passwords` realm of every StackFlow secret (PRODUCT §3).
pub const REALM: &str = "stackflow";

/// The user behind a session key (`authentication/current-context`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CurrentContext {
    pub username: String,
    pub roles: Vec<String>,
    pub capabilities: Vec<String>,
}

impl CurrentContext {
    pub fn has_capability(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|held| held == capability)
    }
}

#[derive(Clone)]
pub struct Splunkd {
    base: String,
    session_key: Secret,
    http: HttpClient,
}

/// Percent-encodes a URL path segment or query value.
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0x0f)]));
            }
        }
    }
    out
}

/// Encodes form fields as `application/x-www-form-urlencoded`.
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(key, value)| format!("{}={}", url_encode(key), url_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

impl Splunkd {
    /// `server_uri` is what splunkd handed over (payload `server_uri`, search info
    /// `splunkd_uri`); when empty, `[splunkd] uri` / web.conf / the default decide.
    pub fn new(settings: &Settings, server_uri: &str, session_key: Secret) -> Result<Splunkd> {
        let base = if server_uri.trim().is_empty() {
            settings.splunkd_uri()
        } else {
            server_uri.trim().to_string()
        };
        let options = HttpOptions {
            tls: settings.tls("splunkd", false)?,
            proxy: None,
            timeout: Duration::from_secs(30),
        };
        let http = HttpClient::new(&options, "splunkd")?;
        Ok(Splunkd { base: base.trim_end_matches('/').to_string(), session_key, http })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn auth_header(&self) -> String {
        format!("Splunk {}", self.session_key.expose())
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<HttpResponse> {
        let url = format!("{}{path}", self.base);
        let auth = self.auth_header();
        let mut headers = vec![("Authorization", auth.as_str())];
        if let Some(content_type) = content_type {
            headers.push(("Content-Type", content_type));
        }
        self.http.send(method, &url, &headers, body).map_err(|error| {
            Error::Rejected(format!("cannot reach splunkd at {}: {error}", self.base))
        })
    }

    /// Reads `<realm>:<username>:` from storage/passwords.
    pub fn secret(&self, username: &str) -> Result<Secret> {
        let name = format!("{}:{}:", url_encode(REALM), url_encode(username));
        let path = format!("/servicesNS/nobody/{APP}/storage/passwords/{name}?output_mode=json");
        let response = self.call("GET", &path, None, None).map_err(|error| match error {
            // splunkd down or restarting: the secret is probably fine; try again later.
            Error::Rejected(message) => {
                Error::Unavailable(format!("cannot read secret {REALM}:{username}: {message}"))
            }
            other => other,
        })?;
        match response.status {
            200 => {}
            404 => {
                return Err(Error::Credentials(format!(
                    "no secret \"{username}\" in realm \"{REALM}\" of storage/passwords; store it with: \
                     curl -k -u admin https://localhost:8089/servicesNS/nobody/{APP}/storage/passwords \
                     -d name={username} -d realm={REALM} -d password=<secret>"
                )));
            }
            401 | 403 => {
                return Err(Error::Credentials(format!(
                    "splunkd refused to read secret {REALM}:{username} (HTTP {}): the alert owner needs the \
                     stackflow_user role (list_storage_passwords)",
                    response.status
                )));
            }
            status => {
                return Err(Error::Credentials(format!(
                    "reading secret {REALM}:{username}: splunkd answered HTTP {status}: {}",
                    server_message(&response)
                )));
            }
        }
        let json = response.json().ok_or_else(|| {
            Error::Credentials(format!(
                "reading secret {REALM}:{username}: splunkd's answer is not JSON"
            ))
        })?;
        json.pointer("/entry/0/content/clear_password")
            .and_then(|value| value.as_str())
            .filter(|value| !value.is_empty())
            .map(Secret::new)
            .ok_or_else(|| {
                Error::Credentials(format!(
                    "secret {REALM}:{username} is empty in storage/passwords"
                ))
            })
    }

    /// Upserts records (each with `_key`) into a KV store collection.
    pub fn kv_batch_save(&self, collection: &str, records: &[serde_json::Value]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let path = format!(
            "/servicesNS/nobody/{APP}/storage/collections/data/{}/batch_save",
            url_encode(collection)
        );
        let body =
            serde_json::to_vec(records).map_err(|error| Error::Internal(error.to_string()))?;
        let response = self.call("POST", &path, Some("application/json"), Some(&body))?;
        if (200..300).contains(&response.status) {
            Ok(())
        } else {
            Err(Error::Rejected(format!(
                "KV store {collection}: splunkd answered HTTP {}: {}",
                response.status,
                server_message(&response)
            )))
        }
    }

    /// Queries a KV store collection with a Mongo-style query object.
    pub fn kv_query(
        &self,
        collection: &str,
        query: &serde_json::Value,
    ) -> Result<Vec<serde_json::Value>> {
        let path = format!(
            "/servicesNS/nobody/{APP}/storage/collections/data/{}?output_mode=json&query={}",
            url_encode(collection),
            url_encode(&query.to_string())
        );
        let response = self.call("GET", &path, None, None)?;
        if !(200..300).contains(&response.status) {
            return Err(Error::Rejected(format!(
                "KV store {collection}: splunkd answered HTTP {}: {}",
                response.status,
                server_message(&response)
            )));
        }
        match response.json() {
            Some(serde_json::Value::Array(records)) => Ok(records),
            _ => Err(Error::Rejected(format!(
                "KV store {collection}: the answer is not a JSON array"
            ))),
        }
    }

    /// `GET /services/authentication/current-context`: who the session key belongs to and
    /// what they may do. `None` when this splunkd has no such endpoint (HTTP 404).
    pub fn current_context(&self) -> Result<Option<CurrentContext>> {
        let what = "splunkd GET /services/authentication/current-context";
        let response = self.call(
            "GET",
            "/services/authentication/current-context?output_mode=json",
            None,
            None,
        )?;
        match response.status {
            200..=299 => {}
            404 => return Ok(None),
            401 | 403 => {
                return Err(Error::Credentials(format!(
                    "{what}: HTTP {}: the session key was refused (expired or wrong)",
                    response.status
                )));
            }
            status if status == 429 || status >= 500 => {
                return Err(Error::Unavailable(format!(
                    "{what}: HTTP {status}: {}",
                    server_message(&response)
                )));
            }
            status => {
                return Err(Error::Rejected(format!(
                    "{what}: HTTP {status}: {}",
                    server_message(&response)
                )));
            }
        }
        let json = response
            .json()
            .ok_or_else(|| Error::Rejected(format!("{what}: the answer is not JSON")))?;
        let content = json.pointer("/entry/0/content").unwrap_or(&serde_json::Value::Null);
        let strings = |key: &str| -> Vec<String> {
            content
                .get(key)
                .and_then(|list| list.as_array())
                .map(|list| list.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        Ok(Some(CurrentContext {
            username: content.get("username").and_then(|v| v.as_str()).unwrap_or("?").to_string(),
            roles: strings("roles"),
            capabilities: strings("capabilities"),
        }))
    }

    /// `POST /services/notable_update` with form fields; returns the parsed answer.
    pub fn notable_update(&self, form: &[(&str, &str)]) -> Result<serde_json::Value> {
        let mut pairs = form.to_vec();
        pairs.push(("output_mode", "json"));
        let body = form_encode(&pairs);
        let response = self.call(
            "POST",
            "/services/notable_update",
            Some("application/x-www-form-urlencoded"),
            Some(body.as_bytes()),
        )?;
        let json = response.json().unwrap_or(serde_json::Value::Null);
        let failed = !(200..300).contains(&response.status)
            || json.get("success").and_then(|value| value.as_bool()) == Some(false)
            || json.is_string();
        if failed {
            return Err(Error::Rejected(format!(
                "notable_update: splunkd answered HTTP {}: {}",
                response.status,
                server_message(&response)
            )));
        }
        Ok(json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_follows_rfc3986() {
        assert_eq!(url_encode("soar.default"), "soar.default");
        assert_eq!(url_encode("a b:c/é"), "a%20b%3Ac%2F%C3%A9");
        assert_eq!(
            form_encode(&[("ruleUIDs", "x@@notable@@1"), ("comment", "a&b")]),
            "ruleUIDs=x%40%40notable%40%401&comment=a%26b"
        );
    }
}
