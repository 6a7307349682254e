//! The StackFlow client: POSTs an incident item to the account's inbound Splunk webhook with
//! the `X-StackFlow-Secret` header and turns the (undocumented, so leniently read) answer into
//! an `Outcome`; plus a small read-back client for the incidents API (`get_incidents`).
//!
//! The webhook documents no deduplication, so `needs_ledger()` is true: the deliverer's ledger
//! of delivered dedupe keys keeps a re-run or a replay from creating a second incident.

use crate::delivery::classify::{StatusClass, classify_status, classify_transport};
use crate::delivery::http::{HttpClient, HttpResponse};
use crate::delivery::{Delivered, DeliveryItem, Outcome, RejectClass, RetryLater, Target};
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::settings::Settings;
use crate::splunk::rest::{Splunkd, url_encode};
use serde_json::Value;
use std::time::Duration;

/// The webhook path suffix; what precedes it is the API base (`…/prod/api`).
const WEBHOOK_SUFFIX: &str = "/webhooks/inbound/splunk";

/// storage/passwords user name of the webhook secret.
pub fn secret_user(account: &str) -> String {
    format!("stackflow.{account}")
}

/// storage/passwords user name of the read-back API token.
pub fn api_secret_user(account: &str) -> String {
    format!("stackflow_api.{account}")
}

pub struct StackflowTarget {
    account: String,
    webhook_url: String,
    /// Where incidents can be read: `api_url`, else derived from the webhook URL.
    api_base: Option<String>,
    secret: Secret,
    http: HttpClient,
}

/// `scheme`, `host` (no port, no brackets) of an absolute http(s) URL.
fn scheme_and_host(url: &str) -> Option<(String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    if host.is_empty() {
        return None;
    }
    Some((scheme.to_ascii_lowercase(), host.to_ascii_lowercase()))
}

/// Checks a StackFlow URL setting: absolute, https (plain http only for a loopback host).
pub fn check_url(stanza: &str, key: &str, url: &str) -> Result<String> {
    let url = url.trim().trim_end_matches('/').to_string();
    let Some((scheme, host)) = scheme_and_host(&url) else {
        return Err(Error::config(
            stanza,
            key,
            format!("\"{url}\" is not an absolute https:// URL"),
        ));
    };
    let loopback = matches!(host.as_str(), "127.0.0.1" | "localhost" | "::1");
    match scheme.as_str() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => Err(Error::config(
            stanza,
            key,
            format!(
                "\"{url}\" uses plain http; StackFlow must be reached over https (http is allowed for 127.0.0.1/localhost only)"
            ),
        )),
        _ => Err(Error::config(stanza, key, format!("\"{url}\" is not an https:// URL"))),
    }
}

impl StackflowTarget {
    /// Reads `[stackflow:<account>]` (`webhook_url` required, `api_url` optional, TLS settings)
    /// and the webhook secret `stackflow.<account>` from storage/passwords.
    pub fn open(account: &str, settings: &Settings, splunkd: &Splunkd) -> Result<StackflowTarget> {
        let stanza = format!("stackflow:{account}");
        let section = settings.account("stackflow", account)?;
        let webhook_url = section.get("webhook_url").map(|v| v.trim()).filter(|v| !v.is_empty()).ok_or_else(|| {
            Error::config(&stanza, "webhook_url", "not set: the StackFlow inbound Splunk webhook, e.g. https://acme.stackflow-tech.com/prod/api/webhooks/inbound/splunk")
        })?;
        let webhook_url = check_url(&stanza, "webhook_url", webhook_url)?;
        let api_base = match section.get("api_url").map(|v| v.trim()).filter(|v| !v.is_empty()) {
            Some(api_url) => Some(check_url(&stanza, "api_url", api_url)?),
            None => webhook_url.strip_suffix(WEBHOOK_SUFFIX).map(str::to_string),
        };
        let http = super::http_for(settings, &stanza)?;
        let secret = splunkd.secret(&secret_user(account))?;
        Ok(StackflowTarget { account: account.to_string(), webhook_url, api_base, secret, http })
    }

    /// A target from parts (tests, `stackflow check`); without `api_url` the API base is
    /// derived from the webhook URL.
    pub fn with_parts(
        account: &str,
        webhook_url: &str,
        api_url: Option<String>,
        secret: Secret,
        http: HttpClient,
    ) -> StackflowTarget {
        let api_base =
            api_url.or_else(|| webhook_url.strip_suffix(WEBHOOK_SUFFIX).map(str::to_string));
        StackflowTarget {
            account: account.to_string(),
            webhook_url: webhook_url.to_string(),
            api_base,
            secret,
            http,
        }
    }

    fn what(&self) -> String {
        format!("StackFlow webhook {}", path_of(&self.webhook_url))
    }

    /// The outcome of one webhook response.
    pub fn judge(&self, response: &HttpResponse, now_unix: u64) -> Outcome {
        let what = self.what();
        match response.status {
            200..=299 => {
                let json = response.json();
                if let Some(reason) = json.as_ref().and_then(refusal_in_success) {
                    return Outcome::rejected(
                        RejectClass::Remote,
                        format!(
                            "{what}: HTTP {} but the body says it failed: {reason}",
                            response.status
                        ),
                    );
                }
                Outcome::Delivered(self.delivered(
                    json.as_ref(),
                    false,
                    format!("StackFlow accepted the incident (HTTP {})", response.status),
                ))
            }
            401 | 403 => Outcome::rejected(
                RejectClass::Credentials,
                format!(
                    "{what}: HTTP {}: {}: the webhook secret is wrong or missing; store StackFlow's webhook secret in storage/passwords \
                     (realm \"stackflow\", user \"{}\", e.g. on the app's setup page)",
                    response.status,
                    error_text(response),
                    secret_user(&self.account)
                ),
            ),
            409 => Outcome::Delivered(self.delivered(
                response.json().as_ref(),
                true,
                format!("StackFlow already has this incident (HTTP 409: {})", error_text(response)),
            )),
            400..=499 if response.status != 408 && response.status != 429 => Outcome::rejected(
                RejectClass::Remote,
                format!("{what}: HTTP {}: {}", response.status, error_text(response)),
            ),
            _ => match classify_status(response, &what) {
                StatusClass::Failed(Outcome::Retry(retry)) => Outcome::Retry(RetryLater {
                    after: retry.after.or_else(|| rate_limit_wait(response, now_unix)),
                    reason: retry.reason,
                }),
                StatusClass::Failed(other) => other,
                StatusClass::Success => Outcome::rejected(
                    RejectClass::Remote,
                    format!("{what}: unexpected HTTP {}", response.status),
                ),
            },
        }
    }

    fn delivered(&self, json: Option<&Value>, duplicate: bool, message: String) -> Delivered {
        let remote_id = json.and_then(incident_id);
        let remote_url = remote_id.as_ref().and_then(|id| self.incident_url(id));
        let mut details = serde_json::Map::new();
        if let Some(json) = json {
            for (key, pointer) in
                [("number", "/number"), ("state", "/state"), ("priority", "/priority")]
            {
                if let Some(value) = json.pointer(pointer).and_then(scalar) {
                    details.insert(key.into(), Value::String(value));
                }
            }
        }
        let message = match &remote_id {
            Some(id) => format!("{message}: incident {id}"),
            None => format!("{message}; no incident id in the answer"),
        };
        Delivered { remote_id, remote_url, duplicate, details, message }
    }

    /// `<api base>/incidents/<id>`: `api_url` when set, else the webhook URL without
    /// `/webhooks/inbound/splunk`; none when neither is known.
    pub fn incident_url(&self, id: &str) -> Option<String> {
        self.api_base.as_ref().map(|base| format!("{base}/incidents/{}", url_encode(id)))
    }
}

impl Target for StackflowTarget {
    fn attempt(&mut self, item: &DeliveryItem) -> Outcome {
        let body = match serde_json::to_vec(&item.request) {
            Ok(body) => body,
            Err(error) => {
                return Outcome::rejected(
                    RejectClass::Remote,
                    format!("cannot encode the incident: {error}"),
                );
            }
        };
        log::debug!("POST {} dedupe_key={}", self.webhook_url, item.dedupe_key);
        let headers = [
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
            ("X-StackFlow-Secret", self.secret.expose()),
        ];
        match self.http.post(&self.webhook_url, &headers, &body) {
            Ok(response) => self.judge(&response, now_unix()),
            Err(error) => classify_transport(&error, &self.what()),
        }
    }

    fn needs_ledger(&self) -> bool {
        true
    }
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn path_of(url: &str) -> &str {
    url.split_once("://").and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..])).unwrap_or("/")
}

/// A string or number as text.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_string()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// The created incident's id, wherever a lenient reading finds one.
pub fn incident_id(json: &Value) -> Option<String> {
    [
        "/id",
        "/number",
        "/incident_id",
        "/incidentId",
        "/sys_id",
        "/incident/id",
        "/incident/number",
        "/incident/sys_id",
        "/data/id",
        "/data/number",
        "/data/incident_id",
        "/result/id",
        "/result/number",
        "/result/sys_id",
    ]
    .iter()
    .find_map(|pointer| json.pointer(pointer).and_then(scalar))
}

/// A 2xx whose body still says it failed (`ok:false`, `success:false`, `failed:true`).
fn refusal_in_success(json: &Value) -> Option<String> {
    let failed =
        ["ok", "success"].iter().any(|key| json.get(key).and_then(Value::as_bool) == Some(false))
            || json.get("failed").and_then(Value::as_bool) == Some(true);
    failed.then(|| json_error_text(json).unwrap_or_else(|| "no reason given".into()))
}

fn json_error_text(json: &Value) -> Option<String> {
    let text =
        ["/error", "/error/message", "/message", "/detail", "/errors/0/message", "/errors/0"]
            .iter()
            .find_map(|pointer| {
                json.pointer(pointer).and_then(Value::as_str).map(str::to_string)
            })?;
    let mut extra = Vec::new();
    if let Some(code) = json.get("code").and_then(Value::as_str) {
        extra.push(format!("code {code}"));
    }
    if let Some(request_id) = json.get("requestId").and_then(Value::as_str) {
        extra.push(format!("requestId {request_id}"));
    }
    Some(if extra.is_empty() { text } else { format!("{text} ({})", extra.join(", ")) })
}

/// StackFlow's `error` text (with `code` and `requestId`), else the body excerpt.
pub fn error_text(response: &HttpResponse) -> String {
    response.json().as_ref().and_then(json_error_text).unwrap_or_else(|| {
        let excerpt = response.body_excerpt();
        if excerpt.is_empty() { "(empty body)".into() } else { excerpt }
    })
}

/// `X-RateLimit-Remaining: 0` with `X-RateLimit-Reset` (epoch seconds; small values are read as
/// seconds from now) → how long to wait.
pub fn rate_limit_wait(response: &HttpResponse, now_unix: u64) -> Option<Duration> {
    let remaining: u64 = response.header("x-ratelimit-remaining")?.trim().parse().ok()?;
    if remaining > 0 {
        return None;
    }
    let reset: u64 = response.header("x-ratelimit-reset")?.trim().parse().ok()?;
    let wait = if reset > 1_000_000_000 { reset.saturating_sub(now_unix) } else { reset };
    Some(Duration::from_secs(wait))
}

/// One incident as read back from the incidents API (`GET <api>/incidents?ids=…`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IncidentState {
    pub id: String,
    pub state: String,
    pub priority: String,
    pub assigned_to: String,
    pub url: String,
}

/// Read-back client for `| stackflowsync`: `Authorization: Bearer <stackflow_api.<account>>`.
pub struct StackflowApi {
    base: String,
    token: Secret,
    http: HttpClient,
}

impl StackflowApi {
    /// `[stackflow:<account>] api_url` (else derived from `webhook_url`) and the API token.
    pub fn open(account: &str, settings: &Settings, splunkd: &Splunkd) -> Result<StackflowApi> {
        let stanza = format!("stackflow:{account}");
        let section = settings.account("stackflow", account)?;
        let nonempty = |key: &str| section.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
        let base = match (nonempty("api_url"), nonempty("webhook_url")) {
            (Some(api_url), _) => check_url(&stanza, "api_url", api_url)?,
            (None, Some(webhook)) => check_url(&stanza, "webhook_url", webhook)?
                .strip_suffix(WEBHOOK_SUFFIX)
                .map(str::to_string)
                .ok_or_else(|| {
                    Error::config(
                        &stanza,
                        "api_url",
                        "not set (and webhook_url does not end in /webhooks/inbound/splunk)",
                    )
                })?,
            (None, None) => return Err(Error::config(&stanza, "api_url", "not set")),
        };
        let http = super::http_for(settings, &stanza)?;
        let token = splunkd.secret(&api_secret_user(account))?;
        Ok(StackflowApi { base, token, http })
    }

    /// The API base URL (`api_url`, or derived from `webhook_url`).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A read-only `GET <api>/incidents?limit=1` with the Bearer token (`stackflow check`):
    /// the response as it came, or the classified transport failure.
    pub fn probe(&self) -> std::result::Result<HttpResponse, Outcome> {
        let url = format!("{}/incidents?limit=1", self.base);
        let auth = format!("Bearer {}", self.token.expose());
        let headers = [("Authorization", auth.as_str()), ("Accept", "application/json")];
        self.http
            .get(&url, &headers)
            .map_err(|error| classify_transport(&error, "StackFlow GET /incidents"))
    }

    /// Looks incidents up by id in one request (`GET <api>/incidents?ids=A,B`); ids StackFlow
    /// does not know are absent from the answer. `ids` is not among the list filters StackFlow
    /// documents (external-apis §4.3); it is the emulator's and our assumption. HTTP failures come back as outcomes (`Err`), never as panics.
    pub fn get_incidents(&self, ids: &[&str]) -> std::result::Result<Vec<IncidentState>, Outcome> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let joined: Vec<String> = ids.iter().map(|id| url_encode(id)).collect();
        let url = format!("{}/incidents?ids={}&limit=200", self.base, joined.join(","));
        let auth = format!("Bearer {}", self.token.expose());
        let headers = [("Authorization", auth.as_str()), ("Accept", "application/json")];
        let what = "StackFlow GET /incidents";
        let response =
            self.http.get(&url, &headers).map_err(|error| classify_transport(&error, what))?;
        if let StatusClass::Failed(outcome) = classify_status(&response, what) {
            return Err(outcome);
        }
        let json = response.json().unwrap_or(Value::Null);
        let list = json.get("data").or_else(|| json.get("incidents")).unwrap_or(&json);
        let items = list.as_array().cloned().unwrap_or_default();
        Ok(items
            .iter()
            .filter_map(|incident| {
                let id = incident_id(incident)?;
                let text = |key: &str| incident.get(key).and_then(scalar).unwrap_or_default();
                Some(IncidentState {
                    url: format!("{}/incidents/{}", self.base, url_encode(&id)),
                    id,
                    state: text("state"),
                    priority: text("priority"),
                    assigned_to: text("assigned_to"),
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::http::HttpOptions;
    use crate::settings::TlsSettings;

    fn target(api_base: Option<&str>) -> StackflowTarget {
        let options = HttpOptions {
            tls: TlsSettings { verify: true, ca_file: None },
            proxy: None,
            timeout: Duration::from_secs(1),
        };
        StackflowTarget::with_parts(
            "default",
            "https://acme.stackflow-tech.com/prod/api/webhooks/inbound/splunk",
            api_base.map(str::to_string),
            Secret::new("s3cret"),
            HttpClient::new(&options, "stackflow:default").unwrap(),
        )
    }

    fn response(status: u16, body: &str, headers: &[(&str, &str)]) -> HttpResponse {
        HttpResponse {
            status,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn urls_must_be_https_unless_loopback() {
        assert!(check_url("s", "webhook_url", "https://acme.example.com/x").is_ok());
        assert!(check_url("s", "webhook_url", "http://127.0.0.1:8080/x").is_ok());
        assert!(check_url("s", "webhook_url", "http://localhost/x").is_ok());
        assert!(check_url("s", "webhook_url", "http://[::1]:9/x").is_ok());
        for bad in [
            "http://acme.example.com/x",
            "http://127.0.0.1.evil.com/x",
            "ftp://x/y",
            "acme.example.com",
        ] {
            let error = check_url("stackflow:default", "webhook_url", bad).unwrap_err();
            assert_eq!(error.exit_code(), crate::error::ExitCode::Configuration, "{bad}");
            assert!(error.to_string().contains("[stackflow:default] webhook_url"), "{error}");
        }
    }

    #[test]
    fn ids_are_found_leniently() {
        let cases = [
            (r#"{"id":"INC1","number":"INC2"}"#, Some("INC1")),
            (r#"{"number":"INC2"}"#, Some("INC2")),
            (r#"{"incident_id":42}"#, Some("42")),
            (r#"{"sys_id":"abc"}"#, Some("abc")),
            (r#"{"incident":{"id":"INC3"}}"#, Some("INC3")),
            (r#"{"data":{"id":"INC4"}}"#, Some("INC4")),
            (r#"{"status":"accepted"}"#, None),
            (r#"{"id":""}"#, None),
        ];
        for (body, expected) in cases {
            let json: Value = serde_json::from_str(body).unwrap();
            assert_eq!(incident_id(&json).as_deref(), expected, "{body}");
        }
    }

    #[test]
    fn success_keeps_the_id_and_builds_the_url() {
        let derived = target(None);
        match derived
            .judge(&response(201, r#"{"id":"INC0001234","state":"new","priority":"P2"}"#, &[]), 0)
        {
            Outcome::Delivered(delivered) => {
                assert_eq!(delivered.remote_id.as_deref(), Some("INC0001234"));
                assert_eq!(
                    delivered.remote_url.as_deref(),
                    Some("https://acme.stackflow-tech.com/prod/api/incidents/INC0001234")
                );
                assert!(!delivered.duplicate);
                assert_eq!(delivered.details.get("priority"), Some(&Value::String("P2".into())));
            }
            other => panic!("{other:?}"),
        }
        let configured = target(Some("https://api.example.com/v1"));
        match configured.judge(&response(200, r#"{"data":{"id":"X 1"}}"#, &[]), 0) {
            Outcome::Delivered(delivered) => {
                assert_eq!(
                    delivered.remote_url.as_deref(),
                    Some("https://api.example.com/v1/incidents/X%201")
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn empty_or_non_json_success_is_delivered_without_id() {
        for (status, body) in [(202, ""), (200, "OK"), (201, "null")] {
            match target(None).judge(&response(status, body, &[]), 0) {
                Outcome::Delivered(delivered) => {
                    assert_eq!(delivered.remote_id, None, "{status} {body}");
                    assert_eq!(delivered.remote_url, None);
                }
                other => panic!("{status} {body}: {other:?}"),
            }
        }
    }

    #[test]
    fn success_status_with_a_failure_body_is_a_rejection() {
        for body in [
            r#"{"success":false,"error":"unknown group"}"#,
            r#"{"ok":false,"error":"unknown group"}"#,
            r#"{"failed":true,"message":"unknown group"}"#,
        ] {
            match target(None).judge(&response(200, body, &[]), 0) {
                Outcome::Rejected(rejection) => {
                    assert_eq!(rejection.class, RejectClass::Remote);
                    assert!(rejection.reason.contains("unknown group"), "{}", rejection.reason);
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn statuses_are_classified_for_stackflow() {
        let t = target(None);
        match t.judge(
            &response(401, r#"{"error":"Invalid webhook secret","code":"UNAUTHORIZED"}"#, &[]),
            0,
        ) {
            Outcome::Rejected(rejection) => {
                assert_eq!(rejection.class, RejectClass::Credentials);
                assert!(
                    rejection.reason.contains("webhook secret is wrong"),
                    "{}",
                    rejection.reason
                );
                assert!(rejection.reason.contains("stackflow.default"), "{}", rejection.reason);
                assert!(!rejection.reason.contains("s3cret"));
            }
            other => panic!("{other:?}"),
        }
        match t.judge(&response(409, r#"{"error":"duplicate record","id":"INC7"}"#, &[]), 0) {
            Outcome::Delivered(delivered) => {
                assert!(delivered.duplicate);
                assert_eq!(delivered.remote_id.as_deref(), Some("INC7"));
            }
            other => panic!("{other:?}"),
        }
        match t.judge(
            &response(
                400,
                r#"{"error":"Invalid priority","code":"VALIDATION_ERROR","requestId":"r-1"}"#,
                &[],
            ),
            0,
        ) {
            Outcome::Rejected(rejection) => {
                assert_eq!(rejection.class, RejectClass::Remote);
                assert!(
                    rejection.reason.contains(
                        "HTTP 400: Invalid priority (code VALIDATION_ERROR, requestId r-1)"
                    ),
                    "{}",
                    rejection.reason
                );
            }
            other => panic!("{other:?}"),
        }
        for status in [500, 502, 503, 408] {
            assert!(
                matches!(t.judge(&response(status, "", &[]), 0), Outcome::Retry(_)),
                "{status}"
            );
        }
        assert!(matches!(t.judge(&response(501, "", &[]), 0), Outcome::Rejected(_)));
    }

    #[test]
    fn rate_limits_use_retry_after_then_the_reset_header() {
        let t = target(None);
        let with_retry_after = response(
            429,
            "",
            &[
                ("Retry-After", "3"),
                ("X-RateLimit-Remaining", "0"),
                ("X-RateLimit-Reset", "1000000060"),
            ],
        );
        match t.judge(&with_retry_after, 1_000_000_000) {
            Outcome::Retry(retry) => assert_eq!(retry.after, Some(Duration::from_secs(3))),
            other => panic!("{other:?}"),
        }
        let reset_only = response(
            429,
            "",
            &[("X-RateLimit-Remaining", "0"), ("X-RateLimit-Reset", "1000000023")],
        );
        match t.judge(&reset_only, 1_000_000_000) {
            Outcome::Retry(retry) => assert_eq!(retry.after, Some(Duration::from_secs(23))),
            other => panic!("{other:?}"),
        }
        let remaining = response(
            429,
            "",
            &[("X-RateLimit-Remaining", "5"), ("X-RateLimit-Reset", "1000000023")],
        );
        match t.judge(&remaining, 1_000_000_000) {
            Outcome::Retry(retry) => assert_eq!(retry.after, None),
            other => panic!("{other:?}"),
        }
    }
}
