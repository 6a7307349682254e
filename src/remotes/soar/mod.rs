//! Splunk SOAR: the account's settings (`[soar:<account>]`), its URL, its token and how it is
//! sent (`ph-auth-token`), and the batched `_filter_<field>__in=[…]` lists every SOAR query
//! uses. `write` is the delivery target (containers and artifacts), `read` the batched
//! read-back for `| stackflowsync`, `probe` what `stackflow check` asks, and `claim` the
//! cross-process lock that keeps two runs from posting the same artifacts.
//!
//! The REST API lives under `<url>/rest/` ("REST API Reference for Splunk SOAR"); a configured URL that
//! already ends in `/rest` is accepted and the suffix dropped, so every caller builds the same
//! request URLs.

pub mod claim;
pub mod pages;
pub mod probe;
pub mod read;
pub mod write;

use super::url::RemoteUrl;
use crate::error::{Error, Result};
use crate::net::Outcome;
use crate::net::classify::classify_transport;
use crate::net::http::{HttpClient, HttpResponse};
use crate::net::url_encode;
use crate::remotes::splunkd::Splunkd;
use crate::secret::Secret;
use crate::settings::Settings;

/// The default container label (PRODUCT §3).
pub const DEFAULT_LABEL: &str = "events";
/// Budget for the encoded `_filter_…__in=[…]` text of one query (URLs stay under ~6 KB, which
/// proxies and SOAR's nginx accept).
pub const MAX_FILTER_BYTES: usize = 5_000;

/// `[soar:<account>]`, read and checked once.
#[derive(Clone, Debug)]
pub struct SoarAccount {
    pub name: String,
    /// Base URL (no trailing slash, no `/rest`).
    pub base: RemoteUrl,
    /// `label`, else [`DEFAULT_LABEL`].
    pub label: String,
}

impl SoarAccount {
    pub fn stanza_of(account: &str) -> String {
        format!("soar:{account}")
    }

    /// storage/passwords user name of the automation token (PRODUCT §3).
    pub fn secret_user_of(account: &str) -> String {
        format!("soar.{account}")
    }

    pub fn from_settings(settings: &Settings, account: &str) -> Result<SoarAccount> {
        let stanza = Self::stanza_of(account);
        let section = settings.account("soar", account)?;
        let value = |key: &str| section.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
        let Some(url) = value("url") else {
            return Err(Error::config(
                &stanza,
                "url",
                "not set: the SOAR base URL, e.g. https://soar.example.com",
            ));
        };
        let url = RemoteUrl::setting(&stanza, "url", url)?;
        let base = url.strip_path_suffix("/rest").unwrap_or(url);
        let label = value("label").unwrap_or(DEFAULT_LABEL).to_string();
        Ok(SoarAccount { name: account.to_string(), base, label })
    }

    pub fn stanza(&self) -> String {
        Self::stanza_of(&self.name)
    }

    pub fn secret_user(&self) -> String {
        Self::secret_user_of(&self.name)
    }

    /// `<url>/mission/<id>`: the container's page in SOAR's UI (receipts, read-back, Slack).
    pub fn container_url(&self, id: u64) -> String {
        crate::mapping::soar_container_url(self.base.as_str(), &id.to_string())
    }
}

/// An authenticated connection to one SOAR account.
pub struct SoarApi {
    pub account: SoarAccount,
    token: Secret,
    http: HttpClient,
}

impl SoarApi {
    /// Reads the account and its token `soar.<account>`.
    pub fn open(settings: &Settings, splunkd: &Splunkd, account: &str) -> Result<SoarApi> {
        let account = SoarAccount::from_settings(settings, account)?;
        let http = super::http_for(settings, &account.stanza())?;
        let token = splunkd.secret(&account.secret_user())?;
        Ok(SoarApi { account, token, http })
    }

    pub fn with_parts(account: SoarAccount, token: Secret, http: HttpClient) -> SoarApi {
        SoarApi { account, token, http }
    }

    pub fn base_url(&self) -> &str {
        self.account.base.as_str()
    }

    /// `GET <base><path_and_query>` with the token; a transport failure is classified.
    pub fn get(&self, path_and_query: &str) -> std::result::Result<HttpResponse, Outcome> {
        let path = path_and_query.split('?').next().unwrap_or(path_and_query);
        self.http
            .get(&self.account.base.join(path_and_query), &self.headers(None))
            .map_err(|error| classify_transport(&error, &format!("SOAR GET {path}")))
    }

    /// `GET <base><path_and_query>` whose body the caller reads as it arrives.
    pub fn get_streamed(
        &self,
        path_and_query: &str,
    ) -> std::result::Result<crate::net::http::StreamedResponse, Outcome> {
        let path = path_and_query.split('?').next().unwrap_or(path_and_query);
        self.http
            .get_streamed(&self.account.base.join(path_and_query), &self.headers(None))
            .map_err(|error| classify_transport(&error, &format!("SOAR GET {path}")))
    }

    /// `POST <base><path>` of a JSON body with the token.
    pub fn post(&self, path: &str, body: &[u8]) -> std::result::Result<HttpResponse, Outcome> {
        self.http
            .post(&self.account.base.join(path), &self.headers(Some("application/json")), body)
            .map_err(|error| classify_transport(&error, &format!("SOAR POST {path}")))
    }

    fn headers(&self, content_type: Option<&'static str>) -> Vec<(&'static str, &str)> {
        let mut headers =
            vec![("ph-auth-token", self.token.expose()), ("Accept", "application/json")];
        if let Some(content_type) = content_type {
            headers.push(("Content-Type", content_type));
        }
        headers
    }
}

/// A string as a literal in a `_filter_` list. SOAR evaluates filter values as Python
/// literals; a JSON string is one (its `\uXXXX`, `\r`, `\"` escapes are Python's too), so
/// control characters in an identifier cannot break the query.
pub fn string_literal(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// Splits literals into `[a,b,…]` lists whose URL-encoded form fits [`MAX_FILTER_BYTES`];
/// each comes with the number of literals it holds.
pub fn filter_batches(literals: &[String]) -> Vec<(String, usize)> {
    let mut batches = Vec::new();
    let mut current = String::from("[");
    let mut count = 0;
    let mut encoded_len = 6; // "%5B" + "%5D"
    for literal in literals {
        let cost = url_encode(literal).len() + 3; // + "%2C"
        if count > 0 && encoded_len + cost > MAX_FILTER_BYTES {
            current.push(']');
            batches.push((std::mem::replace(&mut current, String::from("[")), count));
            encoded_len = 6;
            count = 0;
        }
        if count > 0 {
            current.push(',');
        }
        current.push_str(literal);
        encoded_len += cost;
        count += 1;
    }
    if count > 0 {
        current.push(']');
        batches.push((current, count));
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splunk::conf::ConfFile;

    fn settings(text: &str) -> Settings {
        Settings::from_conf(ConfFile::parse_str(text), None, None)
    }

    #[test]
    fn one_reading_of_the_stanza() {
        let account = SoarAccount::from_settings(
            &settings("[soar:lab]\nurl = https://soar.example.com/rest/\n"),
            "lab",
        )
        .unwrap();
        assert_eq!(account.base.as_str(), "https://soar.example.com");
        assert_eq!(account.label, "events");
        assert_eq!(account.container_url(7), "https://soar.example.com/mission/7");
        assert_eq!(account.secret_user(), "soar.lab");
        let error = SoarAccount::from_settings(&settings("[soar:lab]\n"), "lab").unwrap_err();
        assert!(error.to_string().contains("[soar:lab] url"), "{error}");
        let error = SoarAccount::from_settings(
            &settings("[soar:lab]\nurl = http://127.0.0.1:x@some.other.host\n"),
            "lab",
        )
        .unwrap_err();
        assert!(error.to_string().contains("user info"), "{error}");
    }

    #[test]
    fn batches_respect_the_url_budget() {
        let ids: Vec<String> = (1..=200).map(|id| id.to_string()).collect();
        let batches = filter_batches(&ids);
        assert_eq!(batches.len(), 1);
        assert!(batches[0].0.starts_with("[1,2,3,") && batches[0].0.ends_with(",200]"));
        assert_eq!(batches[0].1, 200);
        let sdis: Vec<String> = (0..200)
            .map(|n| {
                string_literal(&format!("1A082D7B-D5A1-4A2B-BB94-41C439BE3EB7@@notable@@{n:032x}"))
            })
            .collect();
        let batches = filter_batches(&sdis);
        assert!(batches.len() > 1);
        assert_eq!(batches.iter().map(|(_, count)| count).sum::<usize>(), 200);
        for (batch, _) in &batches {
            assert!(url_encode(batch).len() <= MAX_FILTER_BYTES, "{}", batch.len());
        }
        assert!(filter_batches(&[]).is_empty());
    }

    #[test]
    fn literals_escape_what_python_would_choke_on() {
        assert_eq!(string_literal("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(string_literal("a\rb\0"), "\"a\\rb\\u0000\"");
    }
}
