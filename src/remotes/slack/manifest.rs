//! The Slack app manifest for the features this installation configured (PRODUCT §10 "least
//! privilege", §17): `stackflow slack manifest` prints it. The bot scopes are those of
//! [`BOT_SCOPES`] that a configured feature needs: every account's (posting, the duplicate
//! check), `chat:write.public`, the response buttons', the `/stackflow` command and its
//! `commands` scope only when a `[triage:<name>]` template exists, and the war room's
//! (`channels:manage`, `groups:write`, `pins:write`, `usergroups:read`) only when a route has
//! `war_room = true` or `war_room` among its buttons. The app ships the full manifest
//! (`appserver/static/slack_app_manifest.json`, every scope), which this builder gives with
//! every feature on. Manifest fields: python-slack-sdk's app manifest integration test.

use super::probe::{BOT_SCOPES, Features, Need};
use crate::mapping::route::STANZA_PREFIX;
use crate::settings::Settings;
use serde_json::{Value, json};

/// `[triage:<name>]` stanzas (PRODUCT §16).
pub const TRIAGE_PREFIX: &str = "triage:";

/// The features `stackflow.conf` configures (the buttons are assumed: the listener is set up
/// in splunkd's inputs, not in `stackflow.conf`).
pub fn configured_features(settings: &Settings) -> Features {
    let conf = &settings.conf;
    let triage = conf.stanza_names().any(|name| name.starts_with(TRIAGE_PREFIX));
    let war_room = conf.stanza_names().filter(|name| name.starts_with(STANZA_PREFIX)).any(|name| {
        let on = conf
            .get_nonempty(name, "war_room")
            .and_then(crate::splunk::conf::parse_bool)
            .unwrap_or(false);
        let button = conf
            .get_nonempty(name, "buttons")
            .is_some_and(|buttons| buttons.split(',').any(|b| b.trim() == "war_room"));
        on || button
    });
    Features { buttons: true, triage, war_room }
}

/// The manifest for `features`; `with_optional` keeps `chat:write.public`.
pub fn manifest(features: Features, with_optional: bool) -> Value {
    let scopes: Vec<&str> = BOT_SCOPES
        .iter()
        .filter(|scope| {
            features.needs(scope.need) || (with_optional && scope.need == Need::Optional)
        })
        .map(|scope| scope.name)
        .collect();
    let mut feature_block =
        json!({"bot_user": {"display_name": "StackFlow", "always_online": true}});
    if features.triage {
        feature_block["slash_commands"] = json!([{
            "command": "/stackflow",
            "description": "Run a StackFlow triage search from Slack",
            "usage_hint": "help | <template> <value>",
            "should_escape": false
        }]);
    }
    json!({
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": "StackFlow for Splunk",
            "description": "Splunk alerts in Slack, with buttons to respond and a slash command to investigate.",
            "background_color": "#1a1d21"
        },
        "features": feature_block,
        "oauth_config": {"scopes": {"bot": scopes}},
        "settings": {
            "interactivity": {"is_enabled": features.buttons},
            "org_deploy_enabled": false,
            "socket_mode_enabled": features.buttons,
            "token_rotation_enabled": false
        }
    })
}

/// Every feature on: the manifest the app ships.
pub fn full_manifest() -> Value {
    manifest(Features { buttons: true, triage: true, war_room: true }, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splunk::conf::ConfFile;

    fn features(text: &str) -> Features {
        configured_features(&Settings::from_conf(ConfFile::parse_str(text), None, None))
    }

    fn bot(manifest: &Value) -> Vec<String> {
        serde_json::from_value(manifest["oauth_config"]["scopes"]["bot"].clone()).unwrap()
    }

    #[test]
    fn the_shipped_manifest_is_the_full_one() {
        let shipped: Value = serde_json::from_str(include_str!(
            "../../../app/stackflow/appserver/static/slack_app_manifest.json"
        ))
        .unwrap();
        assert_eq!(shipped, full_manifest());
    }

    #[test]
    fn scopes_follow_the_configured_features() {
        let plain = features("[route:10_x]\nchannel = #x\n");
        assert_eq!(plain, Features { buttons: true, triage: false, war_room: false });
        let minimal = manifest(plain, true);
        let scopes = bot(&minimal);
        for absent in
            ["commands", "channels:manage", "groups:write", "pins:write", "usergroups:read"]
        {
            assert!(!scopes.iter().any(|s| s == absent), "{absent}: {scopes:?}");
        }
        assert!(minimal["features"].get("slash_commands").is_none());
        let room = features("[route:10_x]\nwar_room = true\n");
        assert!(room.war_room && !room.triage);
        let scopes = bot(&manifest(room, true));
        for present in ["channels:manage", "groups:write", "pins:write", "usergroups:read"] {
            assert!(scopes.iter().any(|s| s == present), "{present}: {scopes:?}");
        }
        assert!(features("[route:10_x]\nbuttons = ack,war_room\n").war_room);
        assert!(!features("[route:10_x]\nwar_room = false\nchannel = #x\n").war_room);
        let triage = manifest(features("[triage:ip]\n"), true);
        assert!(bot(&triage).iter().any(|s| s == "commands"));
        assert_eq!(triage["features"]["slash_commands"][0]["command"], "/stackflow");
    }
}
