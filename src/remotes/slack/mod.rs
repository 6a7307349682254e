//! Slack: the account's settings (`[slack:<account>]`: `api_url`, `channel`), its bot token
//! (`slack.<account>`, sent as `Authorization: Bearer`), and one Web API call. `write` posts
//! messages (the delivery target), `probe` is what `stackflow check` asks (`auth.test`).

pub mod errors;
pub mod manifest;
pub mod probe;
pub mod read;
pub mod socket;
pub mod summary;
pub mod war_room;
pub mod write;

use super::url::RemoteUrl;
use crate::error::Result;
use crate::net::Outcome;
use crate::net::classify::classify_transport;
use crate::net::http::{HttpClient, HttpResponse};
use crate::remotes::splunkd::Splunkd;
use crate::secret::Secret;
use crate::settings::Settings;

pub const DEFAULT_API_URL: &str = "https://slack.com/api";

/// `[slack:<account>]`, read and checked once.
#[derive(Clone, Debug)]
pub struct SlackAccount {
    pub name: String,
    /// The Web API base (`api_url`, default [`DEFAULT_API_URL`]).
    pub api_url: RemoteUrl,
    /// The default channel, when set.
    pub channel: Option<String>,
}

impl SlackAccount {
    pub fn stanza_of(account: &str) -> String {
        format!("slack:{account}")
    }

    /// storage/passwords user name of the bot token (PRODUCT §3).
    pub fn secret_user_of(account: &str) -> String {
        format!("slack.{account}")
    }

    pub fn from_settings(settings: &Settings, account: &str) -> Result<SlackAccount> {
        let stanza = Self::stanza_of(account);
        let section = settings.account("slack", account)?;
        let value = |key: &str| section.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
        let api_url =
            RemoteUrl::setting(&stanza, "api_url", value("api_url").unwrap_or(DEFAULT_API_URL))?;
        let channel = value("channel").map(str::to_string);
        Ok(SlackAccount { name: account.to_string(), api_url, channel })
    }

    pub fn stanza(&self) -> String {
        Self::stanza_of(&self.name)
    }
}

/// An authenticated connection to one Slack workspace's Web API.
#[derive(Clone)]
pub struct SlackApi {
    pub account: SlackAccount,
    token: Secret,
    http: HttpClient,
}

impl SlackApi {
    /// Reads the account and its bot token.
    pub fn open(settings: &Settings, splunkd: &Splunkd, account: &str) -> Result<SlackApi> {
        Self::open_with_secret(settings, splunkd, account, &SlackAccount::secret_user_of(account))
    }

    /// The same account with another of its tokens (the app-level `slack_app.<account>` that
    /// Socket Mode's `apps.connections.open` takes).
    pub fn open_with_secret(
        settings: &Settings,
        splunkd: &Splunkd,
        account: &str,
        secret_user: &str,
    ) -> Result<SlackApi> {
        let account = SlackAccount::from_settings(settings, account)?;
        let http = super::http_for(settings, &account.stanza())?;
        let token = splunkd.secret(secret_user)?;
        Ok(SlackApi { account, token, http })
    }

    /// `POST <api_url>/<method>` with a JSON body (empty: no body) and the bot token. The
    /// response as it came (Slack's `ok:false` is the caller's to judge), or the classified
    /// transport failure.
    pub fn call(
        &self,
        method: &str,
        json_body: &[u8],
    ) -> std::result::Result<HttpResponse, Outcome> {
        let content_type = if json_body.is_empty() {
            "application/x-www-form-urlencoded"
        } else {
            "application/json; charset=utf-8"
        };
        self.post(method, content_type, json_body)
    }

    /// `POST <api_url>/<method>` with a form body (the read methods, which take no JSON).
    pub fn call_form(
        &self,
        method: &str,
        form_body: &str,
    ) -> std::result::Result<HttpResponse, Outcome> {
        self.post(method, "application/x-www-form-urlencoded", form_body.as_bytes())
    }

    fn post(
        &self,
        method: &str,
        content_type: &str,
        body: &[u8],
    ) -> std::result::Result<HttpResponse, Outcome> {
        let auth = format!("Bearer {}", self.token.expose());
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", content_type),
            ("Accept", "application/json"),
        ];
        self.http
            .post(&self.account.api_url.join(&format!("/{method}")), &headers, body)
            .map_err(|error| classify_transport(&error, &format!("Slack {method}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splunk::conf::ConfFile;

    fn account(text: &str) -> Result<SlackAccount> {
        SlackAccount::from_settings(
            &Settings::from_conf(ConfFile::parse_str(text), None, None),
            "default",
        )
    }

    #[test]
    fn defaults_and_policy() {
        let plain = account("[slack:default]\nchannel = #soc\n").unwrap();
        assert_eq!(plain.api_url.as_str(), DEFAULT_API_URL);
        assert_eq!(plain.channel.as_deref(), Some("#soc"));
        assert!(account("[slack:default]\napi_url = http://127.0.0.1:8080/api\n").is_ok());
        for bad in
            ["http://localhost.example.invalid/api", "http://slack.example.com/api", "slack.com"]
        {
            let error = account(&format!("[slack:default]\napi_url = {bad}\n")).unwrap_err();
            assert!(error.to_string().contains("[slack:default] api_url"), "{error}");
        }
    }
}
