//! Notable updates through the one interface (`splunk::notable_update`): ES 7's
//! `/services/notable_update` and ES 8's findings API, chosen from the ES version the emulated
//! splunkd reports; driven by `| stackflowsync update_notables=true` as splunkd runs it, and
//! for owner / disposition (which the Slack buttons will set) through the library.

use crate::support::{SESSION_KEY, one};
use crate::sync::{csv, execute, field, getinfo, run, setup, table};
use serde_json::json;
use stackflow::remotes::splunkd::Splunkd;
use stackflow::remotes::splunkd::notables::{self as notable_update, EsApi, NotableChange};
use stackflow::secret::Secret;
use stackflow::settings::Settings;
use stackflow::splunk::conf::ConfFile;
use stackflow_emulator::{Emulator, Fault};

const FINDING: &str = "2008e99d-af14-4fec-89da-b9b17a81820a@@notable@@time1768225865";

/// Two notables whose SOAR containers are closed, one whose StackFlow incident is closed.
fn rows(emu: &Emulator) -> String {
    let closed = |sdi: &str| {
        emu.add_soar_container(json!({"name": sdi, "label": "events", "status": "closed", "source_data_identifier": sdi}))
    };
    let (c1, c2) = (closed(FINDING), closed("e2"));
    emu.add_stackflow_incident(json!({"id": "INC0000301", "state": "closed", "priority": "P3"}));
    csv(&[
        vec![
            ("event_id", one(FINDING)),
            ("status", one("1")),
            ("soar_container_id", one(&c1.to_string())),
        ],
        vec![
            ("event_id", one("e2")),
            ("status", one("2")),
            ("soar_container_id", one(&c2.to_string())),
        ],
        vec![
            ("event_id", one("e3")),
            ("status", one("1")),
            ("stackflow_incident_id", one("INC0000301")),
        ],
    ])
}

#[test]
fn es8_findings_are_updated_through_its_api_with_a_note() {
    let setup = setup();
    let emu = &setup.emu;
    emu.set_es_version(Some("8.1.0"));
    let rows = rows(emu);
    let (code, replies, stderr) =
        run(&setup, &[getinfo(emu, &["update_notables=true"]), execute(true, &rows)]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let out = table(&replies[1]);
    let actions: Vec<String> = (0..3).map(|row| field(&out, row, "sync_action")).collect();
    assert_eq!(actions, ["updated", "updated", "updated"]);
    assert!(
        emu.requests_to("/services/notable_update").is_empty(),
        "ES 8 does not use notable_update"
    );
    assert_eq!(emu.requests_to("/services/apps/local/SplunkEnterpriseSecuritySuite").len(), 1);
    let updates = emu.es8_updates();
    assert_eq!(updates.len(), 3, "{updates:?}");
    assert_eq!(
        updates[0],
        json!({"id": FINDING, "notable_time": "1768225865", "body": {"status": "4"}})
    );
    assert_eq!(updates[1], json!({"id": "e2", "notable_time": null, "body": {"status": "4"}}));
    assert_eq!(updates[2]["id"], "e3");
    assert_eq!(updates[2]["body"], json!({"status": "5"}));
    let notes = emu.es8_notes();
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert_eq!(notes[0]["id"], FINDING);
    assert!(
        notes[0]["content"]
            .as_str()
            .unwrap()
            .starts_with("StackFlow for Splunk: 2 remote objects: SOAR container 1 is closed")
    );
    assert_eq!(
        notes[2]["content"],
        format!(
            "StackFlow for Splunk: StackFlow incident INC0000301 is closed — {}/prod/api/incidents/INC0000301",
            emu.url()
        )
    );
    assert_eq!(emu.notable_status(FINDING).as_deref(), Some("4"));
    // The finding id travels URL-encoded in the path, the session key in the header.
    let posted = emu.requests_to("/servicesNS/nobody/missioncontrol/v1/investigations/");
    assert!(posted[0].path.ends_with("%40%40notable%40%40time1768225865"), "{}", posted[0].path);
    assert!(posted.iter().all(|r| r.header("authorization") == Some("Splunk test-session-key")));
}

#[test]
fn es7_and_no_es_keep_notable_update_and_the_api_can_be_forced() {
    for version in [Some("7.3.2"), None] {
        let setup = setup();
        let emu = &setup.emu;
        emu.set_es_version(version);
        let rows = rows(emu);
        let (code, _, stderr) =
            run(&setup, &[getinfo(emu, &["update_notables=true"]), execute(true, &rows)]);
        assert_eq!(code, 0, "stderr: {stderr}");
        let updates = emu.notable_updates();
        assert_eq!(updates.len(), 2, "{version:?}: one per target status: {updates:?}");
        let uids: Vec<&str> =
            updates[0].iter().filter(|(k, _)| k == "ruleUIDs").map(|(_, v)| v.as_str()).collect();
        assert_eq!(uids, [FINDING, "e2"]);
        assert!(emu.es8_updates().is_empty() && emu.es8_notes().is_empty());
    }
    // ES 8 installed, but the admin keeps notable_update ([notables] api), and the other way
    // round a configured ES 8 path is used as written.
    let setup = setup();
    let emu = &setup.emu;
    emu.set_es_version(Some("8.0.2"));
    setup.home.append_local_conf("\n[notables]\napi = notable_update\n");
    let rows_text = rows(emu);
    let (code, _, stderr) =
        run(&setup, &[getinfo(emu, &["update_notables=true"]), execute(true, &rows_text)]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert_eq!(emu.notable_updates().len(), 2);
    assert!(emu.requests_to("/services/apps/local").is_empty(), "a forced API is not detected");
    assert!(emu.es8_updates().is_empty());
}

fn splunkd(emu: &Emulator, conf: &str) -> (Settings, Splunkd) {
    let settings = Settings::from_conf(ConfFile::parse_str(conf), None, None);
    let splunkd = Splunkd::new(&settings, &emu.url(), Secret::new(SESSION_KEY)).unwrap();
    (settings, splunkd)
}

#[test]
fn owner_disposition_and_status_reach_either_api() {
    let change = NotableChange {
        event_ids: vec![FINDING.to_string()],
        status: Some(5),
        owner: Some("alice".into()),
        disposition: Some("disposition:3".into()),
        comment: Some("Marked false positive in Slack by alice".into()),
    };
    let emu = Emulator::start_plain();
    emu.set_es_version(Some("8.2.1"));
    let (settings, client) = splunkd(&emu, "");
    let updater = notable_update::open(&settings, &client).unwrap();
    assert_eq!(updater.api(), EsApi::Es8);
    updater.update(&change).unwrap();
    assert_eq!(
        emu.es8_updates(),
        [json!({"id": FINDING, "notable_time": "1768225865",
                "body": {"status": "5", "assignee": "alice", "disposition": "disposition:3"}})]
    );
    assert_eq!(emu.es8_notes()[0]["content"], "Marked false positive in Slack by alice");
    assert_eq!(updater.requests(), 2);

    let emu = Emulator::start_plain();
    emu.set_es_version(Some("7.3.2"));
    let (settings, client) = splunkd(&emu, "");
    let updater = notable_update::open(&settings, &client).unwrap();
    assert_eq!(updater.api(), EsApi::NotableUpdate);
    updater.update(&change).unwrap();
    let form = &emu.notable_updates()[0];
    for (key, value) in [
        ("ruleUIDs", FINDING),
        ("status", "5"),
        ("newOwner", "alice"),
        ("disposition", "disposition:3"),
        ("comment", "Marked false positive in Slack by alice"),
    ] {
        assert!(form.contains(&(key.to_string(), value.to_string())), "{key}: {form:?}");
    }

    // ES 8 paths are settings (the API is not documented by Splunk).
    let emu = Emulator::start_plain();
    emu.set_es_version(Some("8.1.0"));
    let (settings, client) = splunkd(
        &emu,
        "[notables]\nes8_update_path = /servicesNS/nobody/missioncontrol/v1/investigations/{id}\nes8_notes_path = /servicesNS/nobody/custom/notes/{id}\n",
    );
    let updater = notable_update::open(&settings, &client).unwrap();
    let error = updater.update(&change).unwrap_err();
    assert!(error.contains("ES 8 note on"), "{error}");
    assert_eq!(emu.requests_to("/servicesNS/nobody/custom/notes/").len(), 1);
}

#[test]
fn an_unreadable_es_version_keeps_notable_update_and_a_busy_splunkd_is_an_error() {
    let change =
        NotableChange { event_ids: vec!["e1".into()], status: Some(4), ..NotableChange::default() };
    let emu = Emulator::start_plain();
    emu.set_es_version(Some("8.1.0"));
    let refused = Fault::Status { status: 403, body: "no".into(), headers: vec![] };
    emu.fault("/services/apps/local", refused, 1);
    let (settings, client) = splunkd(&emu, "");
    let updater = notable_update::open(&settings, &client).unwrap();
    assert_eq!(updater.api(), EsApi::NotableUpdate);
    updater.update(&change).unwrap();
    assert_eq!(emu.notable_updates().len(), 1);

    let busy = Fault::Status { status: 503, body: "restarting".into(), headers: vec![] };
    emu.fault("/services/apps/local", busy, 1);
    let error = notable_update::open(&settings, &client).err().expect("busy splunkd");
    assert_eq!(error.exit_code(), stackflow::error::ExitCode::Deferred, "{error}");
}
