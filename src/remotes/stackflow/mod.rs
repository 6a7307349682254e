//! StackFlow ITSM: the account's settings (`[stackflow:<account>]`: `webhook_url`, `api_url`),
//! its two secrets (the webhook's `X-StackFlow-Secret`, the incidents API's Bearer token), and
//! the one link to an incident (`<api base>/incidents/<id>`) that receipts, read-back and
//! Slack buttons all use. `write` posts incidents to the inbound Splunk webhook, `read` reads
//! them back through the incidents API for `| stackflowsync` (and finds an incident by its
//! dedupe key before a re-send), `probe` is what `stackflow check` asks.
//!
//! StackFlow documents the incidents API (`GET /prod/api/incidents/:id`, Bearer JWT) but no UI
//! route for an incident (StackFlow docs, api/incidents.html), so the API resource is the link.

pub mod probe;
pub mod read;
pub mod write;

use super::url::RemoteUrl;
use crate::error::{Error, Result};
use crate::mapping::stackflow_incident_url;
use crate::net::Outcome;
use crate::net::classify::classify_transport;
use crate::net::http::{HttpClient, HttpResponse};
use crate::remotes::splunkd::Splunkd;
use crate::secret::Secret;
use crate::settings::Settings;

/// The webhook path suffix; what precedes it is the API base (`…/prod/api`).
pub const WEBHOOK_SUFFIX: &str = "/webhooks/inbound/splunk";

/// `[stackflow:<account>]`, read and checked once.
#[derive(Clone, Debug)]
pub struct StackflowAccount {
    pub name: String,
    /// `webhook_url` (the alert action needs it).
    pub webhook: Option<RemoteUrl>,
    /// `api_url`, else the webhook URL without [`WEBHOOK_SUFFIX`].
    pub api_base: Option<RemoteUrl>,
    /// Whether `api_url` itself is set (read-back is configured on purpose).
    pub api_url_set: bool,
}

impl StackflowAccount {
    pub fn stanza_of(account: &str) -> String {
        format!("stackflow:{account}")
    }

    /// storage/passwords user name of the webhook secret (PRODUCT §3).
    pub fn webhook_secret_user_of(account: &str) -> String {
        format!("stackflow.{account}")
    }

    /// storage/passwords user name of the incidents API token (PRODUCT §3).
    pub fn api_secret_user_of(account: &str) -> String {
        format!("stackflow_api.{account}")
    }

    pub fn from_settings(settings: &Settings, account: &str) -> Result<StackflowAccount> {
        let stanza = Self::stanza_of(account);
        let section = settings.account("stackflow", account)?;
        let value = |key: &str| section.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
        let webhook = value("webhook_url")
            .map(|url| RemoteUrl::setting(&stanza, "webhook_url", url))
            .transpose()?;
        let api_url =
            value("api_url").map(|url| RemoteUrl::setting(&stanza, "api_url", url)).transpose()?;
        let api_url_set = api_url.is_some();
        let api_base = api_url
            .or_else(|| webhook.as_ref().and_then(|url| url.strip_path_suffix(WEBHOOK_SUFFIX)));
        Ok(StackflowAccount { name: account.to_string(), webhook, api_base, api_url_set })
    }

    pub fn stanza(&self) -> String {
        Self::stanza_of(&self.name)
    }

    /// The webhook URL, or the configuration error the incident action reports.
    pub fn webhook(&self) -> Result<&RemoteUrl> {
        self.webhook.as_ref().ok_or_else(|| {
            Error::config(
                &self.stanza(),
                "webhook_url",
                "not set: the StackFlow inbound Splunk webhook, e.g. https://acme.stackflow-tech.com/prod/api/webhooks/inbound/splunk",
            )
        })
    }

    /// The incidents API base, or the configuration error read-back reports.
    pub fn api_base(&self) -> Result<&RemoteUrl> {
        self.api_base.as_ref().ok_or_else(|| {
            Error::config(
                &self.stanza(),
                "api_url",
                "not set: the StackFlow API base used to read incidents back, e.g. https://acme.stackflow-tech.com/prod/api",
            )
        })
    }

    /// `<api base>/incidents/<id>`, when the API base is known.
    pub fn incident_url(&self, id: &str) -> Option<String> {
        self.api_base.as_ref().map(|base| stackflow_incident_url(base.as_str(), id))
    }
}

/// An authenticated connection to one account's incidents API (`Authorization: Bearer`).
pub struct StackflowApi {
    pub account: StackflowAccount,
    token: Secret,
    http: HttpClient,
}

impl StackflowApi {
    /// Reads the account (the API base is required) and its `stackflow_api.<account>` token.
    pub fn open(settings: &Settings, splunkd: &Splunkd, account: &str) -> Result<StackflowApi> {
        let account = StackflowAccount::from_settings(settings, account)?;
        account.api_base()?;
        let http = super::http_for(settings, &account.stanza())?;
        let token = splunkd.secret(&StackflowAccount::api_secret_user_of(&account.name))?;
        Ok(StackflowApi { account, token, http })
    }

    pub fn with_parts(account: StackflowAccount, token: Secret, http: HttpClient) -> StackflowApi {
        StackflowApi { account, token, http }
    }

    pub fn base_url(&self) -> &str {
        self.account.api_base.as_ref().map(RemoteUrl::as_str).unwrap_or_default()
    }

    /// `GET <api base><path_and_query>` with the Bearer token; transport failures classified.
    /// `GET <api base><path_and_query>` whose body the caller reads as it arrives.
    pub fn get_streamed(
        &self,
        path_and_query: &str,
    ) -> std::result::Result<crate::net::http::StreamedResponse, Outcome> {
        let path = path_and_query.split('?').next().unwrap_or(path_and_query);
        let auth = format!("Bearer {}", self.token.expose());
        let headers = [("Authorization", auth.as_str()), ("Accept", "application/json")];
        self.http
            .get_streamed(&format!("{}{path_and_query}", self.base_url()), &headers)
            .map_err(|error| classify_transport(&error, &format!("StackFlow GET {path}")))
    }

    pub fn get(&self, path_and_query: &str) -> std::result::Result<HttpResponse, Outcome> {
        let path = path_and_query.split('?').next().unwrap_or(path_and_query);
        let auth = format!("Bearer {}", self.token.expose());
        let headers = [("Authorization", auth.as_str()), ("Accept", "application/json")];
        self.http
            .get(&format!("{}{path_and_query}", self.base_url()), &headers)
            .map_err(|error| classify_transport(&error, &format!("StackFlow GET {path}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splunk::conf::ConfFile;

    fn account(text: &str) -> Result<StackflowAccount> {
        StackflowAccount::from_settings(
            &Settings::from_conf(ConfFile::parse_str(text), None, None),
            "default",
        )
    }

    #[test]
    fn the_api_base_comes_from_api_url_else_the_webhook() {
        let derived = account(
            "[stackflow:default]\nwebhook_url = https://acme.example.com/prod/api/webhooks/inbound/splunk\n",
        )
        .unwrap();
        assert_eq!(
            derived.api_base.as_ref().unwrap().as_str(),
            "https://acme.example.com/prod/api"
        );
        assert!(!derived.api_url_set);
        assert_eq!(
            derived.incident_url("INC 1").unwrap(),
            "https://acme.example.com/prod/api/incidents/INC%201"
        );
        let explicit = account(
            "[stackflow:default]\nwebhook_url = https://a.example.com/hook\napi_url = https://b.example.com/api/\n",
        )
        .unwrap();
        assert_eq!(explicit.api_base.unwrap().as_str(), "https://b.example.com/api");
        let neither =
            account("[stackflow:default]\nwebhook_url = https://a.example.com/hook\n").unwrap();
        assert!(
            neither.api_base().unwrap_err().to_string().contains("[stackflow:default] api_url")
        );
        assert!(neither.incident_url("1").is_none());
    }

    #[test]
    fn plain_http_lookalikes_are_refused() {
        for url in ["http://127.0.0.12.example.com/x", "http://localhost.example.invalid/x"] {
            let error = account(&format!("[stackflow:default]\napi_url = {url}\n")).unwrap_err();
            assert!(error.to_string().contains("plain http"), "{error}");
        }
    }
}
