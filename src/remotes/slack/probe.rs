//! `stackflow check` for a Slack account: `auth.test` with the bot token, which checks the
//! token without posting anything, and the scopes Slack says the token holds (its
//! `x-oauth-scopes` response header) against the scopes the configured features need.
//!
//! [`BOT_SCOPES`] is the one list of the bot scopes the product uses: the Slack app manifest
//! shipped in the app (`appserver/static/slack_app_manifest.json`) holds exactly these, which a
//! test checks.

use super::errors::{self, ErrorClass};
use super::{SlackAccount, SlackApi};
use crate::error::ExitCode;
use crate::remotes::probe::{ProbeFailure, ProbeResult, credentials_hint, failure, judge};
use serde_json::Value;

/// Which feature needs a scope, and so when `check` asks for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Every Slack account: alerts are posted, and a lost answer is looked up.
    Always,
    /// The response buttons (Socket Mode listener, an app-level token stored).
    Buttons,
    /// Optional: posting to public channels the bot has not joined.
    Optional,
    /// The `/stackflow` slash command (PRODUCT §16): a `[triage:<name>]` template exists.
    Triage,
    /// The war room (PRODUCT §17): a route with `war_room = true`, or `war_room` among the
    /// buttons.
    WarRoom,
}

/// Which optional features are configured: they decide the scopes `check` asks for and the
/// scopes of the manifest `stackflow slack manifest` prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// The response buttons (the listener's app-level token is stored).
    pub buttons: bool,
    pub triage: bool,
    pub war_room: bool,
}

impl Features {
    /// Whether a scope needed for `need` is asked for.
    pub fn needs(&self, need: Need) -> bool {
        match need {
            Need::Always => true,
            Need::Optional => false,
            Need::Buttons => self.buttons,
            Need::Triage => self.triage,
            Need::WarRoom => self.war_room,
        }
    }
}

/// A bot scope the product uses: name, when it is needed, and what for.
pub struct Scope {
    pub name: &'static str,
    pub need: Need,
    pub used_for: &'static str,
}

/// Every bot scope the product uses (Slack's scope reference for each name).
pub const BOT_SCOPES: &[Scope] = &[
    Scope {
        name: "chat:write",
        need: Need::Always,
        used_for: "posting alerts (chat.postMessage, chat.update)",
    },
    Scope {
        name: "chat:write.public",
        need: Need::Optional,
        used_for: "posting to public channels the bot has not joined",
    },
    Scope {
        name: "channels:history",
        need: Need::Always,
        used_for: "the duplicate check after a lost answer (conversations.history, public channels)",
    },
    Scope {
        name: "groups:history",
        need: Need::Always,
        used_for: "the duplicate check after a lost answer (conversations.history, private channels)",
    },
    Scope {
        name: "channels:read",
        need: Need::Always,
        used_for: "the duplicate check's channel id (conversations.list, public channels)",
    },
    Scope {
        name: "groups:read",
        need: Need::Always,
        used_for: "the duplicate check's channel id (conversations.list, private channels)",
    },
    Scope {
        name: "users:read",
        need: Need::Buttons,
        used_for: "who clicked a button (users.info)",
    },
    Scope {
        name: "users:read.email",
        need: Need::Buttons,
        used_for: "mapping a clicking Slack user to a Splunk user by e-mail",
    },
    Scope { name: "commands", need: Need::Triage, used_for: "the /stackflow slash command" },
    Scope { name: "channels:manage", need: Need::WarRoom, used_for: "opening a war room channel" },
    Scope {
        name: "groups:write",
        need: Need::WarRoom,
        used_for: "opening a private war room channel",
    },
    Scope { name: "pins:write", need: Need::WarRoom, used_for: "pinning the war room's summary" },
    Scope {
        name: "usergroups:read",
        need: Need::WarRoom,
        used_for: "inviting the on-call user group",
    },
];

/// `auth.test`, then one WARN line per scope a configured feature needs and the token lacks
/// (`features`: what is set up). No WARN when Slack does not say the scopes.
pub fn check(api: &SlackApi, features: Features) -> (ProbeResult, Vec<String>) {
    let hint = credentials_hint(&SlackAccount::secret_user_of(&api.account.name));
    let response = match api.call("auth.test", b"") {
        Ok(response) => response,
        Err(outcome) => return (Err(failure(outcome, &hint)), Vec::new()),
    };
    if let Err(failure) = judge(&response, "Slack auth.test", &hint) {
        return (Err(failure), Vec::new());
    }
    let json = response.json().unwrap_or(Value::Null);
    let text = |key: &str| json.get(key).and_then(Value::as_str).unwrap_or("?").to_string();
    if json.get("ok").and_then(Value::as_bool) != Some(true) {
        let code = text("error");
        let failure = match errors::class_of(&code) {
            ErrorClass::Credentials => ProbeFailure::new(
                format!("Slack auth.test: {code}: Slack refused the bot token{hint}"),
                ExitCode::Credentials,
            ),
            ErrorClass::Retry { .. } => ProbeFailure::new(
                format!("Slack auth.test: {code}: try again later"),
                ExitCode::Deferred,
            ),
            _ => ProbeFailure::new(
                format!("Slack auth.test: {code}: {}", response.body_excerpt()),
                ExitCode::Configuration,
            ),
        };
        return (Err(failure), Vec::new());
    }
    let note = format!(
        "{} reachable, bot token accepted (team {}, bot user {})",
        api.account.api_url,
        text("team"),
        text("user")
    );
    let warnings = match response.header("x-oauth-scopes") {
        Some(granted) => missing_scopes(granted, features),
        None => Vec::new(),
    };
    (Ok(note), warnings)
}

/// One line per needed scope that `granted` (Slack's comma-separated list) lacks.
pub fn missing_scopes(granted: &str, features: Features) -> Vec<String> {
    let granted: Vec<&str> = granted.split(',').map(str::trim).collect();
    BOT_SCOPES
        .iter()
        .filter(|scope| features.needs(scope.need))
        .filter(|scope| !granted.contains(&scope.name))
        .map(|scope| {
            format!(
                "the bot token lacks the {} scope, needed for {}: add it (`stackflow slack manifest` prints the manifest for the configured features), reinstall the app and store the new token",
                scope.name, scope.used_for
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_missing_scope_is_named_once() {
        let lines =
            missing_scopes("chat:write,chat:write.public, channels:read", Features::default());
        let named: Vec<&str> = BOT_SCOPES
            .iter()
            .map(|scope| scope.name)
            .filter(|name| lines.iter().any(|line| line.contains(&format!("the {name} scope"))))
            .collect();
        assert_eq!(named, ["channels:history", "groups:history", "groups:read"]);
        let all = "chat:write,channels:history,groups:history,channels:read,groups:read";
        let with_buttons = missing_scopes(all, Features { buttons: true, ..Features::default() });
        assert_eq!(with_buttons.len(), 2, "{with_buttons:?}");
        assert!(with_buttons[0].contains("users:read scope"));
        assert!(missing_scopes(all, Features::default()).is_empty(), "no war room, no warning");
        let war_room = missing_scopes(all, Features { war_room: true, ..Features::default() });
        let named: Vec<&str> = ["channels:manage", "groups:write", "pins:write", "usergroups:read"]
            .into_iter()
            .filter(|scope| {
                war_room.iter().any(|line| line.contains(&format!("the {scope} scope")))
            })
            .collect();
        assert_eq!(named.len(), 4, "{war_room:?}");
        assert_eq!(war_room.len(), 4, "{war_room:?}");
        let triage = missing_scopes(all, Features { triage: true, ..Features::default() });
        assert_eq!(triage.len(), 1);
        assert!(triage[0].contains("the commands scope"));
    }
}
