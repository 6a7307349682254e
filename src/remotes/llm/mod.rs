//! LLM summaries (PRODUCT §13, `summary = llm`): the account's settings (`[llm:<account>]`:
//! `url` — the full OpenAI-compatible chat-completions endpoint —, `model`, `timeout_s`,
//! `max_tokens`, `ca_file`, `verify_ssl`, `redact_ips`), its key (`llm.<account>`, sent as
//! `Authorization: Bearer`), and one chat-completions call within the time budget. The request
//! format and the answer's `choices[0].message.content` / `refusal` / `finish_reason` /
//! `usage` follow OpenAI's "Create chat completion" API reference; any endpoint speaking it
//! works. The caller redacts the context first (`mapping::redact`); this module never sees raw
//! PII and never logs the prompt or the answer.

pub mod receipt;

use super::url::RemoteUrl;
use crate::error::{Error, Result};
use crate::net::http::{HttpClient, HttpOptions, TransportErrorKind};
use crate::remotes::splunkd::Splunkd;
use crate::secret::Secret;
use crate::settings::Settings;
use crate::splunk::conf;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub const DEFAULT_TIMEOUT_S: f64 = 8.0;
pub const DEFAULT_MAX_TOKENS: u32 = 300;
/// `timeout_s` is bounded so that no setting can hold an alert for long.
pub const MAX_TIMEOUT_S: f64 = 60.0;

/// `[llm:<account>]`, read and checked once.
#[derive(Clone, Debug)]
pub struct LlmAccount {
    pub name: String,
    pub url: RemoteUrl,
    pub model: String,
    pub timeout: Duration,
    pub max_tokens: u32,
    pub redact_ips: bool,
}

impl LlmAccount {
    pub fn stanza_of(account: &str) -> String {
        format!("llm:{account}")
    }

    /// storage/passwords user name of the API key.
    pub fn secret_user_of(account: &str) -> String {
        format!("llm.{account}")
    }

    pub fn from_settings(settings: &Settings, account: &str) -> Result<LlmAccount> {
        let stanza = Self::stanza_of(account);
        let section = settings.account("llm", account)?;
        let value = |key: &str| section.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
        let url = RemoteUrl::setting(
            &stanza,
            "url",
            value("url").ok_or_else(|| {
                Error::config(
                    &stanza,
                    "url",
                    "missing: set the full chat-completions endpoint, e.g. https://llm.example.com/v1/chat/completions",
                )
            })?,
        )?;
        let model = value("model")
            .ok_or_else(|| Error::config(&stanza, "model", "missing: name the model to ask"))?
            .to_string();
        let timeout_s = match value("timeout_s") {
            None => DEFAULT_TIMEOUT_S,
            Some(text) => text
                .parse::<f64>()
                .ok()
                .filter(|seconds| seconds.is_finite() && *seconds > 0.0 && *seconds <= MAX_TIMEOUT_S)
                .ok_or_else(|| {
                    Error::config(
                        &stanza,
                        "timeout_s",
                        format!("\"{text}\" is not a number of seconds above 0 and at most {MAX_TIMEOUT_S}"),
                    )
                })?,
        };
        let max_tokens = match value("max_tokens") {
            None => DEFAULT_MAX_TOKENS,
            Some(text) => {
                text.parse::<u32>().ok().filter(|n| (1..=4096).contains(n)).ok_or_else(|| {
                    Error::config(
                        &stanza,
                        "max_tokens",
                        format!("\"{text}\" is not a number from 1 to 4096"),
                    )
                })?
            }
        };
        let redact_ips = match value("redact_ips") {
            None => true,
            Some(text) => conf::parse_bool(text).ok_or_else(|| {
                Error::config(&stanza, "redact_ips", format!("\"{text}\" is not a boolean"))
            })?,
        };
        Ok(LlmAccount {
            name: account.to_string(),
            url,
            model,
            timeout: Duration::from_secs_f64(timeout_s),
            max_tokens,
            redact_ips,
        })
    }
}

/// How a model call ended (the audit's `outcome`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LlmOutcome {
    Ok,
    Timeout,
    Error,
    Refused,
}

impl LlmOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            LlmOutcome::Ok => "ok",
            LlmOutcome::Timeout => "timeout",
            LlmOutcome::Error => "error",
            LlmOutcome::Refused => "refused",
        }
    }
}

/// What one call produced. `text` is the model's (still redacted) answer when `outcome` is ok;
/// `reason` says what went wrong otherwise (never the prompt or the answer).
#[derive(Clone, Debug)]
pub struct LlmAnswer {
    pub outcome: LlmOutcome,
    pub text: Option<String>,
    pub reason: String,
    pub latency_ms: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// An authenticated connection to one model endpoint.
pub struct LlmApi {
    pub account: LlmAccount,
    key: Secret,
    http: HttpClient,
}

impl LlmApi {
    /// Reads the account and its key. The HTTP timeout is the account's `timeout_s`, which is
    /// the whole budget of one call (connect, send, answer).
    pub fn open(settings: &Settings, splunkd: &Splunkd, account: &str) -> Result<LlmApi> {
        let account = LlmAccount::from_settings(settings, account)?;
        let stanza = Self::stanza(&account);
        let options = HttpOptions {
            tls: settings.tls(&stanza, true)?,
            proxy: settings.proxy(),
            timeout: account.timeout,
        };
        let http = HttpClient::new(&options, &stanza)?;
        let key = splunkd.secret(&LlmAccount::secret_user_of(&account.name))?;
        Ok(LlmApi { account, key, http })
    }

    fn stanza(account: &LlmAccount) -> String {
        LlmAccount::stanza_of(&account.name)
    }

    /// The chat-completions request body (what is sent; the caller has redacted `user`).
    pub fn request_body(&self, system: &str, user: &str) -> Value {
        json!({
            "model": self.account.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "max_tokens": self.account.max_tokens,
            "temperature": 0.2,
        })
    }

    /// One call. Never an error: every failure is an outcome, so the caller falls back.
    pub fn complete(&self, system: &str, user: &str) -> LlmAnswer {
        let started = Instant::now();
        let body = self.request_body(system, user).to_string();
        let auth = format!("Bearer {}", self.key.expose());
        let headers = [
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
            ("Accept", "application/json"),
        ];
        let result = self.http.post(self.account.url.as_str(), &headers, body.as_bytes());
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut answer = LlmAnswer {
            outcome: LlmOutcome::Error,
            text: None,
            reason: String::new(),
            latency_ms,
            prompt_tokens: 0,
            completion_tokens: 0,
        };
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                answer.outcome = if error.kind == TransportErrorKind::Timeout {
                    LlmOutcome::Timeout
                } else {
                    LlmOutcome::Error
                };
                answer.reason =
                    format!("no answer from {}: {}", self.account.url.origin(), error.message);
                return answer;
            }
        };
        if !(200..300).contains(&response.status) {
            answer.reason = format!("HTTP {} from {}", response.status, self.account.url.origin());
            return answer;
        }
        let Some(json) = response.json() else {
            answer.reason = "the answer is not JSON".into();
            return answer;
        };
        let usage =
            |key: &str| json.pointer(&format!("/usage/{key}")).and_then(Value::as_u64).unwrap_or(0);
        answer.prompt_tokens = usage("prompt_tokens");
        answer.completion_tokens = usage("completion_tokens");
        let choice = json.pointer("/choices/0");
        let refusal = choice
            .and_then(|choice| choice.pointer("/message/refusal"))
            .and_then(Value::as_str)
            .filter(|text| !text.trim().is_empty());
        let finish = choice.and_then(|choice| choice.get("finish_reason")).and_then(Value::as_str);
        let content = choice
            .and_then(|choice| choice.pointer("/message/content"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|text| !text.is_empty());
        match (refusal, finish, content) {
            (Some(_), _, _) | (_, Some("content_filter"), _) => {
                answer.outcome = LlmOutcome::Refused;
                answer.reason = "the model refused".into();
            }
            (None, _, Some(content)) => {
                answer.outcome = LlmOutcome::Ok;
                answer.text = Some(content.to_string());
            }
            (None, _, None) => {
                answer.reason = "the answer has no choices[0].message.content".into()
            }
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splunk::conf::ConfFile;

    fn account(text: &str) -> Result<LlmAccount> {
        LlmAccount::from_settings(
            &Settings::from_conf(ConfFile::parse_str(text), None, None),
            "default",
        )
    }

    #[test]
    fn settings_defaults_bounds_and_url_policy() {
        let ok = account(
            "[llm:default]\nurl = https://llm.example.com/v1/chat/completions\nmodel = m\n",
        )
        .unwrap();
        assert_eq!(ok.timeout, Duration::from_secs(8));
        assert_eq!(ok.max_tokens, DEFAULT_MAX_TOKENS);
        assert!(ok.redact_ips);
        let off = account(
            "[llm:default]\nurl = https://llm.example.com/v1/chat/completions\nmodel = m\nredact_ips = false\ntimeout_s = 2.5\n",
        )
        .unwrap();
        assert!(!off.redact_ips);
        assert_eq!(off.timeout, Duration::from_millis(2500));
        for (text, key) in [
            ("[llm:default]\nmodel = m\n", "url"),
            ("[llm:default]\nurl = http://llm.example.com/v1/chat/completions\nmodel = m\n", "url"),
            (
                "[llm:default]\nurl = https://llm.example.com/v1/chat/completions?key=x\nmodel = m\n",
                "url",
            ),
            ("[llm:default]\nurl = https://llm.example.com/v1\n", "model"),
            (
                "[llm:default]\nurl = https://l.example.com/v1\nmodel = m\ntimeout_s = 999\n",
                "timeout_s",
            ),
            (
                "[llm:default]\nurl = https://l.example.com/v1\nmodel = m\ntimeout_s = NaN\n",
                "timeout_s",
            ),
            (
                "[llm:default]\nurl = https://l.example.com/v1\nmodel = m\nmax_tokens = 0\n",
                "max_tokens",
            ),
            (
                "[llm:default]\nurl = https://l.example.com/v1\nmodel = m\nredact_ips = maybe\n",
                "redact_ips",
            ),
        ] {
            let error = account(text).unwrap_err().to_string();
            assert!(error.contains(&format!("[llm:default] {key}")), "{text}: {error}");
        }
    }
}
