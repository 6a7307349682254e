//! The StackFlow delivery target: POSTs an incident item to the account's inbound Splunk
//! webhook with the `X-StackFlow-Secret` header and turns the (undocumented, so leniently read)
//! answer into an `Outcome`.
//!
//! The webhook documents no deduplication, so `needs_ledger()` is true: the deliverer's ledger
//! of delivered dedupe keys keeps a re-run or a replay from creating a second incident.

use super::read::StackflowReader;
use super::{StackflowAccount, StackflowApi};
use crate::error::{Error, Result};
use crate::item::{DeliveryItem, Lookup, Target};
use crate::net::classify::{StatusClass, classify_status, classify_transport};
use crate::net::http::{HttpClient, HttpResponse};
use crate::net::{Delivered, Outcome, RejectClass, RetryLater};
use crate::remotes::splunkd::Splunkd;
use crate::remotes::url::RemoteUrl;
use crate::secret::Secret;
use crate::settings::Settings;
use serde_json::Value;
use std::time::Duration;

pub struct StackflowTarget {
    account: StackflowAccount,
    webhook_url: RemoteUrl,
    secret: Secret,
    http: HttpClient,
    /// What the incidents API needs, opened on the first lookup (`find_delivered`).
    read_side: Option<(Settings, Splunkd)>,
    reader: Option<std::result::Result<StackflowReader, Lookup>>,
}

impl StackflowTarget {
    /// Reads `[stackflow:<account>]` (`webhook_url` required) and the webhook secret
    /// `stackflow.<account>` from storage/passwords.
    pub fn open(account: &str, settings: &Settings, splunkd: &Splunkd) -> Result<StackflowTarget> {
        let account = StackflowAccount::from_settings(settings, account)?;
        let webhook_url = account.webhook()?.clone();
        let http = crate::remotes::http_for(settings, &account.stanza())?;
        let secret = splunkd.secret(&StackflowAccount::webhook_secret_user_of(&account.name))?;
        let read_side = Some((settings.clone(), splunkd.clone()));
        Ok(StackflowTarget { account, webhook_url, secret, http, read_side, reader: None })
    }

    /// A target from parts (tests).
    pub fn with_parts(
        account: StackflowAccount,
        secret: Secret,
        http: HttpClient,
    ) -> Result<StackflowTarget> {
        let webhook_url = account.webhook()?.clone();
        Ok(StackflowTarget { account, webhook_url, secret, http, read_side: None, reader: None })
    }

    fn what(&self) -> String {
        format!("StackFlow webhook {}", self.webhook_url.path())
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
                     (realm \"stackflow\", user \"{user}\") on the app's setup page or with `stackflow secret set {user}`",
                    response.status,
                    error_text(response),
                    user = StackflowAccount::webhook_secret_user_of(&self.account.name)
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
                    ..retry
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
        let remote_url = remote_id.as_ref().and_then(|id| self.account.incident_url(id));
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
}

impl Target for StackflowTarget {
    fn attempt(&mut self, item: &DeliveryItem) -> Outcome {
        let body = item.request.get().as_bytes();
        log::debug!("POST {} dedupe_key={}", self.webhook_url, item.dedupe_key);
        let headers = [
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
            ("X-StackFlow-Secret", self.secret.expose()),
        ];
        match self.http.post(self.webhook_url.as_str(), &headers, body) {
            Ok(response) => self.judge(&response, crate::civil_time::now_unix_secs()),
            Err(error) => classify_transport(&error, &self.what()),
        }
    }

    fn needs_ledger(&self) -> bool {
        true
    }

    /// Asks the incidents API for an incident with the item's dedupe key created since
    /// `since_unix`. Needs `api_url` (or a webhook URL it derives from) and the
    /// `stackflow_api.<account>` token; without them the lookup is impossible and the item is
    /// sent again with a WARN naming the possible duplicate.
    fn find_delivered(&mut self, item: &DeliveryItem, since_unix: i64) -> Lookup {
        let reader = match self.reader() {
            Ok(reader) => reader,
            Err(lookup) => return lookup,
        };
        match reader.find_by_dedupe_key(&item.dedupe_key, since_unix) {
            Ok(Some(incident)) => Lookup::Found(self.delivered(
                Some(&incident),
                true,
                "found through the incidents API".into(),
            )),
            Ok(None) => Lookup::Absent,
            Err(lookup) => lookup,
        }
    }
}

impl StackflowTarget {
    fn reader(&mut self) -> std::result::Result<&mut StackflowReader, Lookup> {
        if self.reader.is_none() {
            let opened = match &self.read_side {
                None => Err(Lookup::Unsupported),
                Some((settings, splunkd)) => {
                    match StackflowApi::open(settings, splunkd, &self.account.name) {
                        Ok(api) => Ok(StackflowReader::new(api)),
                        Err(Error::Unavailable(reason)) => Err(Lookup::Unknown(reason)),
                        // No incidents-API token or URL: a lasting reason.
                        Err(error) => Err(Lookup::Impossible(format!(
                            "stackflow:{}: cannot look incidents up: {error}",
                            self.account.name
                        ))),
                    }
                }
            };
            self.reader = Some(opened);
        }
        match self.reader.as_mut() {
            Some(Ok(reader)) => Ok(reader),
            Some(Err(lookup)) => Err(lookup.clone()),
            None => Err(Lookup::Unsupported),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::http::HttpOptions;
    use crate::settings::TlsSettings;
    use crate::splunk::conf::ConfFile;

    fn target(api_base: Option<&str>) -> StackflowTarget {
        let options = HttpOptions {
            tls: TlsSettings { verify: true, ca_file: None },
            proxy: None,
            timeout: Duration::from_secs(1),
        };
        let mut conf = String::from(
            "[stackflow:default]\nwebhook_url = https://acme.stackflow-tech.com/prod/api/webhooks/inbound/splunk\n",
        );
        if let Some(api_base) = api_base {
            conf.push_str(&format!("api_url = {api_base}\n"));
        }
        let settings = Settings::from_conf(ConfFile::parse_str(&conf), None, None);
        let account = StackflowAccount::from_settings(&settings, "default").unwrap();
        StackflowTarget::with_parts(
            account,
            Secret::new("s3cret"),
            HttpClient::new(&options, "stackflow:default").unwrap(),
        )
        .unwrap()
    }

    fn response(status: u16, body: &str, headers: &[(&str, &str)]) -> HttpResponse {
        HttpResponse {
            status,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: body.as_bytes().to_vec(),
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
