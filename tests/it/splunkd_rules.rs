//! What the real splunkd expects of the app (PRODUCT §15), end to end: account names checked
//! by every command that takes one before any secret is read; storage/passwords names escaped
//! as splunkd writes them; KV store queries that still work when the KV store refuses `$in`.

use crate::cluster::{join_cluster, unavailable};
use crate::delivery::{SOAR, alert, files_in, flush, soar_home_with};
use crate::support::*;
use crate::sync::{execute, getinfo, run as run_sync, setup as sync_setup};
use serde_json::{Value, json};
use stackflow::net::http::{HttpClient, HttpOptions};
use stackflow_emulator::Emulator;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A 65-character account name: valid characters, one too many.
fn too_long() -> String {
    "a".repeat(65)
}

fn client() -> HttpClient {
    let options = HttpOptions {
        tls: stackflow::settings::TlsSettings { verify: false, ca_file: None },
        proxy: None,
        timeout: Duration::from_secs(10),
    };
    HttpClient::new(&options, "test").unwrap()
}

/// `POST /_emulator/config` (the emulator's control API, as its binary's users drive it).
pub(crate) fn configure(emu: &Emulator, config: Value) {
    let url = format!("{}/_emulator/config", emu.url());
    let response = client().post(&url, &[], config.to_string().as_bytes()).unwrap();
    assert_eq!(response.status, 200);
}

#[track_caller]
fn assert_no_secret_read(emu: &Emulator) {
    let reads: Vec<String> = emu
        .requests()
        .into_iter()
        .filter(|request| request.path.contains("storage/passwords"))
        .map(|request| request.path)
        .collect();
    assert!(reads.is_empty(), "storage/passwords was asked: {reads:?}");
}

#[test]
fn an_alert_with_a_bad_account_name_stops_with_exit_4_before_any_secret_is_read() {
    let emu = Emulator::start();
    let home = soar_home_with(&emu, &emu, "");
    // Stanzas of those very names exist: only the name rule can stop the run.
    let url = emu.url();
    home.append_local_conf(&format!(
        "\n[soar:a:b]\nurl = {url}\n\n[soar:{}]\nurl = {url}\n",
        too_long()
    ));
    for (n, account) in ["a:b".to_string(), too_long()].into_iter().enumerate() {
        emu.clear_requests();
        let mut payload = alert(&home, &emu, &scheduler_sid(4400 + n as u32), 2, "alert");
        payload["configuration"]["account"] = json!(account);
        let run = home.run_alert(SOAR, &payload);
        run.assert_code(4).assert_line("ERROR", "invalid account name");
        assert_no_secret_read(&emu);
        assert!(emu.soar_containers().is_empty());
    }
}

#[test]
fn a_spooled_item_with_a_bad_account_is_a_dead_letter_and_the_others_are_flushed() {
    let emu = Emulator::start();
    let home = soar_home_with(&emu, &emu, "max_attempts = 1");
    home.append_local_conf(&format!("\n[soar:a:b]\nurl = {}\n", emu.url()));
    // Two items spooled while SOAR is down.
    emu.fault("/rest/container", unavailable(), 2);
    for n in 0..2 {
        let payload = alert(&home, &emu, &scheduler_sid(4410 + n), 1, "alert");
        home.run_alert(SOAR, &payload).assert_code(7);
    }
    let pending = files_in(&home.spool_dir().join("pending"));
    assert_eq!(pending.len(), 2, "{pending:?}");
    // One of them names an account no valid configuration can have (a spool written by hand or
    // by an older version).
    let text = std::fs::read_to_string(&pending[0]).unwrap();
    assert!(text.contains("\"account\":\"default\""), "{text}");
    std::fs::write(&pending[0], text.replace("\"account\":\"default\"", "\"account\":\"a:b\""))
        .unwrap();
    emu.clear_requests();
    let run = flush(&home, &emu, &["--all"]);
    run.assert_code(4).assert_line("ERROR", "invalid account name");
    assert_eq!(emu.soar_containers().len(), 1, "the valid item is delivered: {}", run.stderr);
    let reads: Vec<String> = emu
        .requests()
        .into_iter()
        .filter(|request| request.path.contains("storage/passwords"))
        .map(|request| request.path)
        .collect();
    assert!(reads.iter().all(|path| path.contains("soar.default")), "{reads:?}");
    assert!(files_in(&home.spool_dir().join("pending")).is_empty());
    let dead = files_in(&home.spool_dir().join("dead"));
    assert_eq!(dead.len(), 1, "the bad item is kept as a dead letter: {}", run.stderr);
    let record: Value = serde_json::from_slice(&std::fs::read(&dead[0]).unwrap()).unwrap();
    assert_eq!(record["item"]["account"], "a:b");
    assert_eq!(record["reject_class"], "configuration", "{record}");
}

#[test]
fn stackflowsync_with_a_bad_account_stops_with_exit_4_before_any_secret_is_read() {
    let setup = sync_setup();
    let url = setup.emu.url();
    setup.home.append_local_conf(&format!("\n[soar:{}]\nurl = {url}\n", too_long()));
    for account in ["a:b".to_string(), too_long()] {
        setup.emu.clear_requests();
        let option = format!("account={account}");
        let rows = "event_id,soar_container_id\ne1,1\n";
        let (code, replies, stderr) = run_sync(
            &setup,
            &[getinfo(&setup.emu, &["target=soar", option.as_str()]), execute(true, rows)],
        );
        assert_eq!(code, 4, "{stderr}");
        let said = replies[0].metadata.to_string();
        assert!(said.contains("invalid account name"), "{said}");
        assert_no_secret_read(&setup.emu);
    }
}

#[test]
fn the_state_input_with_a_bad_account_stops_with_exit_4_before_any_secret_is_read() {
    let setup = sync_setup();
    let url = setup.emu.url();
    setup.home.append_local_conf(&format!("\n[soar:{}]\nurl = {url}\n", too_long()));
    let checkpoints = setup.home.root.join("var/lib/splunk/modinputs/stackflow_state");
    std::fs::create_dir_all(&checkpoints).unwrap();
    let account = too_long();
    let xml = modinput_config(
        &url,
        &checkpoints,
        "stackflow_state://default",
        300,
        &[("account", account.as_str())],
    );
    let command = Command::new(setup.home.modinput_executable("stackflow_state"));
    let run = setup.home.run_command(command, xml.as_bytes());
    run.assert_code(4);
    assert!(run.stderr.contains("invalid account name"), "{}", run.stderr);
    assert_no_secret_read(&setup.emu);
}

#[test]
fn the_listener_with_a_bad_account_stops_with_exit_4_before_any_secret_is_read() {
    let emu = Emulator::start();
    let (home, ca) = SplunkHome::trusting(&emu);
    let account = too_long();
    home.write_local_conf(&format!(
        "[slack:{account}]\napi_url = {}/api\nca_file = {}\nchannel = #soc\n",
        emu.url(),
        ca.display()
    ));
    let xml = modinput_config(
        &emu.url(),
        Path::new("/nonexistent"),
        "stackflow_slack_socket://default",
        0,
        &[("account", account.as_str())],
    );
    let command = Command::new(home.modinput_executable("stackflow_slack_socket"));
    let run = home.run_command(command, xml.as_bytes());
    run.assert_code(4);
    assert!(run.stderr.contains("invalid account name"), "{}", run.stderr);
    assert_no_secret_read(&emu);
}

/// `GET storage/passwords/<name>` as a client would send it; the answer's status and entry.
fn read_entry(emu: &Emulator, encoded_name: &str) -> (u16, Value) {
    let url = format!(
        "{}/servicesNS/nobody/stackflow/storage/passwords/{encoded_name}?output_mode=json",
        emu.url()
    );
    let auth = format!("Splunk {SESSION_KEY}");
    let response = client().get(&url, &[("Authorization", auth.as_str())]).unwrap();
    let entry = response.json().map(|json| json["entry"][0].clone()).unwrap_or(Value::Null);
    (response.status, entry)
}

#[test]
fn storage_password_names_escape_colons_and_never_reach_another_entry() {
    let emu = Emulator::start();
    emu.set_session_key(SESSION_KEY);
    // Three entries whose unescaped names would collide pairwise.
    emu.set_secret("stackflow", "soar.a", "token-of-a");
    emu.set_secret("stackflow", "soar.a:b", "token-of-a-colon-b");
    emu.set_secret("stackflow:soar.a", "b", "token-of-realm-with-colon");
    assert_eq!(emu.secret("stackflow", "soar.a:b").as_deref(), Some("token-of-a-colon-b"));
    assert_eq!(emu.secret("stackflow:soar.a", "b").as_deref(), Some("token-of-realm-with-colon"));
    // `realm:user:` with `:` inside a part escaped as `\:`, then percent-encoded (`%5C%3A`),
    // as `stackflow::remotes::splunkd::password_entry_name` writes them.
    for (realm, user, password, name) in [
        ("stackflow", "soar.a", "token-of-a", "stackflow:soar.a:"),
        ("stackflow", "soar.a:b", "token-of-a-colon-b", "stackflow:soar.a%5C%3Ab:"),
        ("stackflow:soar.a", "b", "token-of-realm-with-colon", "stackflow%5C%3Asoar.a:b:"),
    ] {
        let (status, entry) = read_entry(&emu, name);
        assert_eq!(status, 200, "{realm}:{user}");
        assert_eq!(entry["content"]["clear_password"], password, "{realm}:{user}: {entry}");
        assert_eq!(
            (entry["content"]["realm"].as_str(), entry["content"]["username"].as_str()),
            (Some(realm), Some(user))
        );
    }
    // The unescaped name of `soar.a:b` (what the alert path used to send) names no entry.
    let (status, entry) = read_entry(&emu, "stackflow:soar.a%3Ab:");
    assert_eq!(status, 404, "resolved to {entry}");
}

/// Requests to the KV store whose query uses `$in`, and how they were answered.
fn in_queries(splunkd: &Emulator) -> Vec<u16> {
    splunkd
        .requests_to("/servicesNS/nobody/stackflow/storage/collections/data/")
        .into_iter()
        .filter(|request| request.query.contains("%24in") || request.query.contains("$in"))
        .map(|request| request.status)
        .collect()
}

#[test]
fn the_kv_spool_delivers_everything_once_when_the_kv_store_refuses_in() {
    let emu = Emulator::start();
    let splunkd = Emulator::start();
    configure(&splunkd, json!({"kv_refuse_in": true}));
    let home = soar_home_with(&emu, &splunkd, "max_attempts = 1");
    join_cluster(&home, &splunkd);
    emu.fault("/rest/container", unavailable(), 3);
    for n in 0..3 {
        let payload = alert(&home, &splunkd, &scheduler_sid(4500 + n), 2, "alert");
        home.run_alert(SOAR, &payload).assert_code(7);
    }
    assert_eq!(crate::cluster::items(&splunkd).len(), 3);
    let run = flush(&home, &splunkd, &["--all"]);
    run.assert_code(0);
    let sdis = crate::delivery::assert_no_duplicates(&emu);
    assert_eq!(sdis.len(), 3, "{}", run.stderr);
    assert!(crate::cluster::items(&splunkd).is_empty(), "every item's record is deleted");
    // Once refused, a process sends `$or` for the rest of its life: at most one `$in` per run.
    let refused = in_queries(&splunkd);
    assert!(refused.iter().all(|status| *status == 400), "{refused:?}");
    assert!(refused.len() <= 4, "one refused $in per process at most: {refused:?}");
    // A second flush finds nothing left to send.
    flush(&home, &splunkd, &["--all"]).assert_code(0);
    assert_eq!(emu.soar_containers().len(), 3);
}

#[test]
fn stackflowsync_finds_its_links_when_the_kv_store_refuses_in() {
    let setup = sync_setup();
    configure(&setup.emu, json!({"kv_refuse_in": true}));
    let container = crate::state::container(&setup.emu, 1, "not-the-event-id");
    crate::sync::seed_links(
        &setup.emu,
        &[json!({"_key": "k1", "event_id": "e1", "soar_container_id": container, "updated": 1})],
    );
    let rows = "event_id\ne1\n";
    let (code, replies, stderr) =
        run_sync(&setup, &[getinfo(&setup.emu, &["target=soar"]), execute(true, rows)]);
    assert_eq!(code, 0, "{stderr}");
    let table = crate::sync::table(replies.last().unwrap());
    assert_eq!(crate::sync::field(&table, 0, "soar_container_id"), container.to_string());
    let refused = in_queries(&setup.emu);
    assert!(refused.len() <= 1 && refused.iter().all(|s| *s == 400), "{refused:?}");
}
