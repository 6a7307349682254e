//! Slack's `{"ok": false, "error": …}` codes, classified as Slack documents them: the one table
//! every Slack call of this program goes through (posts, updates, look-ups, `check`), and the
//! outcome — with what the admin should do — of a refused message.
//!
//! Sources: the per-method error lists of Slack's Web API specification
//! (`slackapi/slack-api-specs`, `web-api/slack_web_openapi_v2.json`) and Slack's method pages,
//! which say what each code means. `fatal_error` and `internal_error` say "it's possible some
//! aspect of the operation succeeded", so they leave the outcome unknown; the other retried
//! codes say nothing was done.

use crate::net::http::HttpResponse;
use crate::net::{Outcome, RejectClass};
use serde_json::Value;

/// What a Slack error code means for the call that got it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// Try again later; `maybe_taken`: Slack may have acted before failing.
    Retry { maybe_taken: bool },
    /// The token: exit 5.
    Credentials,
    /// The channel or the workspace's settings: exit 4.
    Configuration,
    /// The message itself (`msg_too_long`, `invalid_blocks`, …) and any code not listed: exit 6.
    Rejected,
}

/// Retried, nothing was done: rate limits, a truncated request, migrations.
const RETRY_NOT_TAKEN: &[&str] = &[
    "ratelimited",
    "rate_limited",
    "request_timeout",
    "service_unavailable",
    "team_added_to_org",
    "org_login_required",
];
/// Retried, and Slack may have acted before the error.
const RETRY_MAYBE_TAKEN: &[&str] = &["fatal_error", "internal_error"];
const CREDENTIALS: &[&str] = &[
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
    "missing_scope",
    "not_allowed_token_type",
    "ekm_access_denied",
    "access_denied",
];
/// Besides every `restricted_action…` code.
const CONFIGURATION: &[&str] = &[
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "is_inactive",
    "two_factor_setup_required",
];

pub fn class_of(code: &str) -> ErrorClass {
    if RETRY_NOT_TAKEN.contains(&code) {
        ErrorClass::Retry { maybe_taken: false }
    } else if RETRY_MAYBE_TAKEN.contains(&code) {
        ErrorClass::Retry { maybe_taken: true }
    } else if CREDENTIALS.contains(&code) {
        ErrorClass::Credentials
    } else if CONFIGURATION.contains(&code) || code.starts_with("restricted_action") {
        ErrorClass::Configuration
    } else {
        ErrorClass::Rejected
    }
}

/// A failed answer's `needed` scope (`missing_scope`), as `" (needed: …)"`.
pub fn needed_note(json: &Value) -> String {
    json.get("needed")
        .and_then(Value::as_str)
        .map(|needed| format!(" (needed: {needed})"))
        .unwrap_or_default()
}

/// The outcome of `method` about a message to `channel` refused with `code`, saying what to fix.
pub fn outcome(
    method: &str,
    code: &str,
    channel: &str,
    account: &str,
    response: &HttpResponse,
    details: &str,
) -> Outcome {
    let what = format!("Slack {method} to {channel}");
    let token_fix = format!(
        "store a valid bot token (xoxb-…) as storage/passwords user \"slack.{account}\" in realm \"stackflow\""
    );
    let json = response.json().unwrap_or(Value::Null);
    match class_of(code) {
        ErrorClass::Retry { maybe_taken: true } => {
            Outcome::retry(format!("{what}: {code}"), response.retry_after())
        }
        ErrorClass::Retry { maybe_taken: false } => {
            Outcome::not_taken(format!("{what}: {code}"), response.retry_after())
        }
        ErrorClass::Credentials if code == "missing_scope" || code == "no_permission" => {
            Outcome::rejected(
                RejectClass::Credentials,
                format!(
                    "{what}: {code}{}: the Slack app's token lacks a permission; add the scopes of the app manifest \
                     (docs/slack.md) under OAuth & Permissions, reinstall the app, then {token_fix}",
                    needed_note(&json)
                ),
            )
        }
        ErrorClass::Credentials => Outcome::rejected(
            RejectClass::Credentials,
            format!("{what}: {code}: Slack refused the bot token; {token_fix}"),
        ),
        ErrorClass::Configuration => Outcome::rejected(
            RejectClass::Configuration,
            format!("{what}: {code}: {}", configuration_fix(code, channel, account)),
        ),
        ErrorClass::Rejected => Outcome::rejected(
            RejectClass::Remote,
            format!("{what}: Slack refused the message: {code}{details}"),
        ),
    }
}

fn configuration_fix(code: &str, channel: &str, account: &str) -> String {
    match code {
        "channel_not_found" => format!(
            "Slack has no channel \"{channel}\" visible to the bot; fix the channel name or ID in the alert's \
             channel/severity_channels parameter or in [slack:{account}] channel, and for a private channel invite the bot first"
        ),
        "not_in_channel" => format!(
            "the bot is not a member of \"{channel}\"; invite it (/invite @<app>) or grant the chat:write.public scope"
        ),
        "is_archived" | "is_inactive" => format!(
            "channel \"{channel}\" is archived; unarchive it or route the alert to another channel"
        ),
        _ => format!(
            "the workspace does not let the bot post in \"{channel}\"; an admin must lift the restriction or the alert must go elsewhere"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(code: &str) -> &'static str {
        match class_of(code) {
            ErrorClass::Retry { maybe_taken: false } => "retry, not taken",
            ErrorClass::Retry { maybe_taken: true } => "retry, maybe taken",
            ErrorClass::Credentials => "credentials",
            ErrorClass::Configuration => "configuration",
            ErrorClass::Rejected => "rejected",
        }
    }

    #[test]
    fn codes_are_classified_as_slack_documents_them() {
        let table: &[(&str, &[&str])] = &[
            (
                "retry, not taken",
                &[
                    "ratelimited",
                    "request_timeout",
                    "service_unavailable",
                    "team_added_to_org",
                    "org_login_required",
                ],
            ),
            ("retry, maybe taken", &["fatal_error", "internal_error"]),
            (
                "credentials",
                &[
                    "invalid_auth",
                    "not_authed",
                    "account_inactive",
                    "token_revoked",
                    "token_expired",
                    "no_permission",
                    "missing_scope",
                    "not_allowed_token_type",
                    "ekm_access_denied",
                    "access_denied",
                ],
            ),
            (
                "configuration",
                &[
                    "channel_not_found",
                    "not_in_channel",
                    "is_archived",
                    "restricted_action",
                    "restricted_action_read_only_channel",
                    "restricted_action_thread_only_channel",
                    "two_factor_setup_required",
                ],
            ),
            (
                "rejected",
                &[
                    "msg_too_long",
                    "invalid_blocks",
                    "no_text",
                    "too_many_attachments",
                    "invalid_arg_name",
                    "something_new",
                ],
            ),
        ];
        for (expected, codes) in table {
            for code in *codes {
                assert_eq!(word(code), *expected, "{code}");
            }
        }
    }

    #[test]
    fn outcomes_carry_the_class_and_what_to_fix() {
        let response = |body: &str| HttpResponse {
            status: 200,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        };
        let refused = |code: &str, body: &str| match outcome(
            "chat.postMessage",
            code,
            "#nope",
            "lab",
            &response(body),
            "",
        ) {
            Outcome::Rejected(rejection) => rejection,
            other => panic!("{code}: {other:?}"),
        };
        let archived = refused("is_archived", "{}");
        assert_eq!(archived.class, RejectClass::Configuration);
        assert!(archived.reason.contains("\"#nope\" is archived"), "{}", archived.reason);
        let scope = refused("missing_scope", r#"{"needed":"chat:write"}"#);
        assert_eq!(scope.class, RejectClass::Credentials);
        assert!(scope.reason.contains("(needed: chat:write)"), "{}", scope.reason);
        assert!(refused("invalid_auth", "{}").reason.contains("slack.lab"));
        assert_eq!(refused("msg_too_long", "{}").class, RejectClass::Remote);
        match outcome("chat.postMessage", "ratelimited", "#c", "x", &response("{}"), "") {
            Outcome::Retry(retry) => assert!(!retry.maybe_taken),
            other => panic!("{other:?}"),
        }
    }
}
