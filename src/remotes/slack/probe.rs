//! `stackflow check` for a Slack account: `auth.test` with the bot token, which checks the
//! token without posting anything.

use super::{SlackAccount, SlackApi};
use crate::error::ExitCode;
use crate::remotes::probe::{ProbeFailure, ProbeResult, credentials_hint, failure, judge};
use serde_json::Value;

pub fn auth_test(api: &SlackApi) -> ProbeResult {
    let hint = credentials_hint(&SlackAccount::secret_user_of(&api.account.name));
    let response = api.call("auth.test", b"").map_err(|outcome| failure(outcome, &hint))?;
    judge(&response, "Slack auth.test", &hint)?;
    let json = response.json().unwrap_or(Value::Null);
    let text = |key: &str| json.get(key).and_then(Value::as_str).unwrap_or("?").to_string();
    if json.get("ok").and_then(Value::as_bool) == Some(true) {
        return Ok(format!(
            "{} reachable, bot token accepted (team {}, bot user {})",
            api.account.api_url,
            text("team"),
            text("user")
        ));
    }
    let code = text("error");
    Err(match code.as_str() {
        "invalid_auth" | "not_authed" | "account_inactive" | "token_revoked" | "token_expired" => {
            ProbeFailure::new(
                format!("Slack auth.test: {code}: Slack refused the bot token{hint}"),
                ExitCode::Credentials,
            )
        }
        "ratelimited" => ProbeFailure::new(
            format!("Slack auth.test: {code}: try again later"),
            ExitCode::Deferred,
        ),
        _ => ProbeFailure::new(
            format!("Slack auth.test: {code}: {}", response.body_excerpt()),
            ExitCode::Configuration,
        ),
    })
}
