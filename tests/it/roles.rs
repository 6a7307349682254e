//! The roles the app ships (default/authorize.conf), as the README tells admins to assign them:
//! a non-admin alert owner holding exactly `stackflow_user`'s capabilities runs an alert end
//! to end, and each capability the app defines is enforced — without it the run or the
//! update is refused.

use crate::support::*;
use crate::sync;
use serde_json::json;
use stackflow::splunk::conf::ConfFile;
use stackflow_emulator::Emulator;

/// The capabilities a role enables in the shipped authorize.conf, with those of the app's
/// roles it imports (`user`'s own capabilities are Splunk's and play no part here).
fn role_capabilities(role: &str) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("app/stackflow/default/authorize.conf");
    let conf = ConfFile::parse_str(&std::fs::read_to_string(path).unwrap());
    let stanza = conf.stanza(&format!("role_{role}")).unwrap_or_else(|| panic!("no role {role}"));
    let mut capabilities: Vec<String> = stanza
        .iter()
        .filter(|(_, value)| value.as_str() == "enabled")
        .map(|(key, _)| key.clone())
        .collect();
    if let Some(imports) = stanza.get("importRoles") {
        for imported in imports.split(';').map(str::trim).filter(|r| r.starts_with("stackflow_")) {
            capabilities.extend(role_capabilities(imported));
        }
    }
    capabilities.sort();
    capabilities.dedup();
    capabilities
}

fn soar_alert(home: &SplunkHome, emulator: &Emulator, n: u32) -> Run {
    let sid = scheduler_sid(n);
    let rows = vec![vec![("src", one("10.0.0.1")), ("user", one("bob"))]];
    let results = home.write_results(&sid, &rows);
    let mut payload = payload(home, &emulator.url(), &sid, &results, json!({}));
    payload["owner"] = json!("alice");
    let run = home.run_alert("stackflow_soar", &payload);
    run.assert_levelled_stderr().assert_no_secret(&["soar-token"]);
    run
}

#[test]
fn a_non_admin_alert_owner_with_the_stackflow_user_role_sends_and_each_capability_is_needed() {
    let emulator = Emulator::start();
    let (home, ca) = SplunkHome::trusting(&emulator);
    home.write_local_conf(&format!(
        "[soar:default]\nurl = {}\nca_file = {}\n\n[delivery]\nmax_attempts = 1\n",
        emulator.url(),
        ca.display()
    ));
    emulator.set_secret("stackflow", "soar.default", "soar-token");
    let granted = role_capabilities("stackflow_user");
    assert!(granted.contains(&"stackflow_read_credentials".to_string()), "{granted:?}");
    assert!(!granted.iter().any(|c| c == "admin_all_objects" || c == "edit_storage_passwords"));
    emulator.set_user("alice", &["user", "stackflow_user"]);
    let held: Vec<&str> = granted.iter().map(String::as_str).collect();
    emulator.set_capabilities(&held);
    soar_alert(&home, &emulator, 1).assert_code(0);
    assert_eq!(emulator.soar_containers().len(), 1, "alice's alert reached SOAR");

    // Without any one of the role's capabilities the owner's run cannot read its secret.
    for missing in ["stackflow_read_credentials", "list_storage_passwords"] {
        let fewer: Vec<&str> = held.iter().copied().filter(|c| *c != missing).collect();
        emulator.set_capabilities(&fewer);
        let run = soar_alert(&home, &emulator, 2);
        run.assert_code(5);
        assert!(run.stderr.contains(missing), "without {missing}: {}", run.stderr);
    }
    assert_eq!(emulator.soar_containers().len(), 1, "nothing sent without the role");
}

#[test]
fn notable_updates_need_stackflow_admins_capability() {
    let setup = sync::setup();
    let emulator = &setup.emu;
    emulator.set_user("carol", &["user", "stackflow_admin"]);
    let mut granted = role_capabilities("stackflow_admin");
    assert!(granted.contains(&"stackflow_update_notables".to_string()), "{granted:?}");
    granted.push("edit_notable_events".into());
    let held: Vec<&str> = granted.iter().map(String::as_str).collect();
    emulator.set_capabilities(&held);
    let rows = sync::notable_rows(emulator);
    let (code, replies, stderr) = sync::run(
        &setup,
        &[sync::getinfo(emulator, &["update_notables=true"]), sync::execute(true, &rows)],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(sync::field(&sync::table(&replies[1]), 0, "sync_action"), "updated", "{stderr}");
    assert_eq!(emulator.notable_updates().len(), 2, "one update per target status");
}

/// PRODUCT §15 "Roles grant only what they need": the Slack roles hold their own capability and
/// the `stackflow` index, never `list_storage_passwords` (not even through an imported role),
/// and the README shipped inside the app lists every role, naming `list_storage_passwords`
/// for each one that grants it.
#[test]
fn slack_roles_never_grant_storage_passwords_and_the_app_readme_lists_every_role() {
    let app = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("app/stackflow");
    let authorize =
        ConfFile::parse_str(&std::fs::read_to_string(app.join("default/authorize.conf")).unwrap());
    for (role, own) in
        [("stackflow_responder", "stackflow_respond"), ("stackflow_approver", "stackflow_approve")]
    {
        let granted = role_capabilities(role);
        assert!(granted.contains(&own.to_string()), "{role}: {granted:?}");
        assert!(!granted.iter().any(|c| c == "list_storage_passwords"), "{role}: {granted:?}");
        assert!(!granted.iter().any(|c| c == "stackflow_read_credentials"), "{role}: {granted:?}");
        let stanza = format!("role_{role}");
        assert_eq!(authorize.get(&stanza, "srchIndexesAllowed"), Some("stackflow"), "{role}");
    }

    let readme = std::fs::read_to_string(app.join("README.md")).unwrap();
    let roles: Vec<&str> =
        authorize.stanza_names().filter_map(|name| name.strip_prefix("role_")).collect();
    assert!(roles.len() >= 4, "{roles:?}");
    for role in roles {
        let row = readme
            .lines()
            .find(|line| line.starts_with(&format!("| `{role}` |")))
            .unwrap_or_else(|| panic!("app/stackflow/README.md has no row for role {role}"));
        if role_capabilities(role).iter().any(|c| c == "list_storage_passwords") {
            assert!(row.contains("list_storage_passwords"), "{role}'s row must name it: {row}");
        }
    }
}
