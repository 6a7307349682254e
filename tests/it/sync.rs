//! `| stackflowsync` end to end: the installed binary run as `stackflow sync` with SCP v2 chunks
//! on stdin (as splunkd sends them), its replies parsed with the chunked reader, and what the
//! SOAR / StackFlow / splunkd emulators received.

use crate::support::{Cell, SESSION_KEY, SplunkHome, one, splunk_csv};
use serde_json::{Value, json};
use stackflow::net::http::{HttpClient, HttpOptions};
use stackflow::remotes::splunkd::Splunkd;
use stackflow::secret::Secret;
use stackflow::settings::{Settings, TlsSettings};
use stackflow::splunk::chunked::{Chunk, read_chunk};
use stackflow::splunk::conf::ConfFile;
use stackflow::splunk::splunk_csv::Table;
use stackflow_emulator::{Emulator, Fault};
use std::time::Duration;

pub(crate) struct Setup {
    pub(crate) home: SplunkHome,
    pub(crate) emu: Emulator,
}

/// An installed app whose default accounts point at a fresh emulator, with both secrets stored.
pub(crate) fn setup() -> Setup {
    let emu = Emulator::start();
    let home = SplunkHome::new();
    let ca = home.root.join("emulator-ca.pem");
    emu.write_ca(&ca).unwrap();
    let url = emu.url();
    let ca = ca.display();
    home.write_local_conf(&format!(
        "[soar:default]\nurl = {url}\nca_file = {ca}\n\n[stackflow:default]\napi_url = {url}/prod/api\nca_file = {ca}\n"
    ));
    emu.set_secret("stackflow", "soar.default", "soar-token");
    emu.set_secret("stackflow", "stackflow_api.default", "sf-api-token");
    Setup { home, emu }
}

pub(crate) fn chunk(metadata: &Value, body: &[u8]) -> Vec<u8> {
    let metadata = metadata.to_string();
    let mut out = format!("chunked 1.0,{},{}\n", metadata.len(), body.len()).into_bytes();
    out.extend_from_slice(metadata.as_bytes());
    out.extend_from_slice(body);
    out
}

pub(crate) fn getinfo(emu: &Emulator, args: &[&str]) -> Vec<u8> {
    chunk(
        &json!({"action": "getinfo", "preview": false, "streaming_command_will_restart": false,
                "searchinfo": {"args": args, "raw_args": args, "dispatch_dir": "", "sid": "1700000000.42",
                "app": "SplunkEnterpriseSecuritySuite", "owner": "admin", "username": "admin",
                "session_key": SESSION_KEY, "splunkd_uri": emu.url(), "splunk_version": "9.4.1",
                "search": "search%20%60notable%60%20%7C%20stackflowsync", "command": "stackflowsync",
                "maxresultrows": 50000, "earliest_time": "0", "latest_time": "0"}}),
        b"",
    )
}

pub(crate) fn execute(finished: bool, csv: &str) -> Vec<u8> {
    chunk(&json!({"action": "execute", "finished": finished}), csv.as_bytes())
}

/// Runs `stackflow sync` with these requests and returns the exit code, the replies and stderr.
pub(crate) fn run(setup: &Setup, requests: &[Vec<u8>]) -> (i32, Vec<Chunk>, String) {
    let run = setup.home.run_stackflow(&["sync"], &requests.concat());
    let mut input = run.stdout.as_bytes();
    let mut replies = Vec::new();
    while let Some(reply) = read_chunk(&mut input).expect("replies are well-framed chunks") {
        replies.push(reply);
    }
    (run.code, replies, run.stderr)
}

pub(crate) fn table(reply: &Chunk) -> Table {
    Table::decode(reply.body.clone()).expect("the reply body is CSV")
}

pub(crate) fn field(table: &Table, row: usize, name: &str) -> String {
    table.value_by_name(row, name).map(|value| value.values().join("\n")).unwrap_or_default()
}

pub(crate) fn messages(reply: &Chunk, level: &str) -> Vec<String> {
    reply.metadata["inspector"]["messages"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .filter(|message| message[0] == level)
                .map(|message| message[1].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Requests to a path that are list queries (no id in the path).
fn list_requests(emu: &Emulator, path: &str) -> Vec<stackflow_emulator::Recorded> {
    emu.requests().into_iter().filter(|request| request.path == path).collect()
}

/// A client that trusts nothing in particular (loopback emulator) for seeding state over HTTP.
fn seeding_client() -> HttpClient {
    let options = HttpOptions {
        tls: TlsSettings { verify: false, ca_file: None },
        proxy: None,
        timeout: Duration::from_secs(10),
    };
    HttpClient::new(&options, "test").unwrap()
}

/// Starts a playbook run on a container and gives it a status; returns the run id.
fn seed_playbook_run(emu: &Emulator, container: u64, status: &str) -> String {
    let body = json!({"container_id": container, "playbook_id": "local/triage", "scope": "new", "run": true});
    let response = seeding_client()
        .post(
            &format!("{}/rest/playbook_run", emu.url()),
            &[("ph-auth-token", "soar-token"), ("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
        .unwrap();
    let run_id = response.json().unwrap()["playbook_run_id"].as_str().unwrap().to_string();
    emu.set_soar_playbook_run_status(&run_id, status);
    run_id
}

pub(crate) fn seed_links(emu: &Emulator, records: &[Value]) {
    let settings = Settings::from_conf(ConfFile::default(), None, None);
    let splunkd = Splunkd::new(&settings, &emu.url(), Secret::new(SESSION_KEY)).unwrap();
    splunkd.kv_batch_save("stackflow_links", records).unwrap();
}

pub(crate) fn csv(rows: &[Vec<(&str, Cell)>]) -> String {
    splunk_csv(rows)
}

#[test]
fn getinfo_only_spawn_replies_once_and_calls_nothing() {
    let setup = setup();
    let (code, replies, stderr) =
        run(&setup, &[getinfo(&setup.emu, &["target=all", "update_notables=true"])]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].metadata, json!({"type": "stateful"}));
    assert!(replies[0].body.is_empty());
    assert!(setup.emu.requests().is_empty(), "{:?}", setup.emu.requests());
}

#[test]
fn bad_arguments_fail_at_getinfo_with_the_accepted_values() {
    let setup = setup();
    let cases: [(&[&str], &str); 4] = [
        (&["target=jira"], "target=\"jira\" is not valid; accepted: target=soar|stackflow|all"),
        (&["dry_run=perhaps"], "dry_run=\"perhaps\" is not a boolean; accepted: true|false"),
        (
            &["bogus=1"],
            "unknown option \"bogus\"; accepted: target=soar|stackflow|all, update_notables=<bool>",
        ),
        (&["status_map=closed"], "expected <remote_status>:<es_status>"),
    ];
    for (args, needle) in cases {
        let rows = csv(&[vec![("event_id", one("e1"))]]);
        let (code, replies, _) = run(&setup, &[getinfo(&setup.emu, args), execute(true, &rows)]);
        assert_eq!(code, 2, "{args:?}");
        assert_eq!(replies.len(), 1, "{args:?}: one reply, to getinfo");
        let error = replies[0].metadata["error"].as_str().unwrap_or_default();
        assert!(error.contains(needle), "{args:?}: {error}");
        assert_eq!(replies[0].metadata["finished"], json!(true));
        assert_eq!(messages(&replies[0], "ERROR"), [error.to_string()]);
    }
    assert!(setup.emu.requests().is_empty());
}

#[test]
fn rows_without_keys_pass_through_without_any_request() {
    let setup = setup();
    let rows = csv(&[
        vec![("_raw", one("a, \"quoted\"\nline")), ("count", one("1"))],
        vec![("_raw", one("b")), ("count", Cell::Many(vec!["2".into(), "3".into()]))],
    ]);
    let (code, replies, stderr) =
        run(&setup, &[getinfo(&setup.emu, &[]), execute(false, &rows), execute(true, "")]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert_eq!(replies.len(), 3);
    assert_eq!(replies[1].metadata, json!({"finished": false}));
    let out = table(&replies[1]);
    assert_eq!(out.n_rows(), 2);
    assert_eq!(field(&out, 0, "_raw"), "a, \"quoted\"\nline");
    assert_eq!(field(&out, 1, "count"), "2\n3");
    assert_eq!(field(&out, 0, "sync_action"), "not_found");
    assert!(field(&out, 1, "sync_message").contains("no soar_container_id"));
    assert!(out.field_index("soar_status").is_none());
    assert_eq!(replies[2].metadata["finished"], json!(true));
    assert!(setup.emu.requests().is_empty());
}

#[test]
fn soar_fields_come_from_one_container_query_and_one_playbook_query_per_chunk() {
    let setup = setup();
    let emu = &setup.emu;
    for n in 1..=200u64 {
        let status = if n % 2 == 0 { "closed" } else { "open" };
        emu.add_soar_container(json!({"name": format!("notable {n}"), "label": "events", "status": status,
            "severity": "high", "owner_name": "analyst1", "source_data_identifier": format!("sdi-{n}")}));
    }
    seed_playbook_run(emu, 1, "failed");
    seed_playbook_run(emu, 1, "success");
    seed_playbook_run(emu, 2, "running");
    emu.clear_requests();
    let ids: Vec<String> = (1..=200).map(|n| n.to_string()).collect();
    let rows: Vec<Vec<(&str, Cell)>> =
        ids.iter().map(|id| vec![("soar_container_id", one(id)), ("host", one("web01"))]).collect();
    let header_only = "soar_container_id,host,__mv_soar_container_id,__mv_host\n";
    let (code, replies, stderr) = run(
        &setup,
        &[getinfo(emu, &["target=soar"]), execute(false, &csv(&rows)), execute(true, header_only)],
    );
    assert_eq!(code, 0, "stderr: {stderr}");
    assert_eq!(replies.len(), 3);
    let out = table(&replies[1]);
    assert_eq!(out.n_rows(), 200);
    assert_eq!(field(&out, 0, "soar_status"), "open");
    assert_eq!(field(&out, 0, "soar_severity"), "high");
    assert_eq!(field(&out, 0, "soar_owner"), "analyst1");
    assert_eq!(field(&out, 0, "soar_playbook_status"), "success", "the newest run wins");
    assert_eq!(field(&out, 1, "soar_playbook_status"), "running");
    assert_eq!(field(&out, 2, "soar_playbook_status"), "");
    assert_eq!(field(&out, 0, "soar_url"), format!("{}/mission/1", emu.url()));
    assert_eq!(field(&out, 199, "soar_container_id"), "200");
    assert_eq!(field(&out, 199, "soar_status"), "closed");
    assert_eq!(field(&out, 0, "host"), "web01");
    for row in 0..200 {
        assert_eq!(field(&out, row, "sync_action"), "unchanged", "row {row}");
    }
    assert!(field(&out, 1, "sync_message").starts_with("SOAR container 2 is closed"));
    assert_eq!(table(&replies[2]).n_rows(), 0);
    assert_eq!(
        messages(&replies[2], "INFO"),
        [
            "stackflowsync: 200 rows: 200 unchanged; 2 SOAR and 0 StackFlow requests, 0 notable updates"
        ]
    );

    let containers = list_requests(emu, "/rest/container");
    assert_eq!(containers.len(), 1, "one container query for 200 rows");
    let filter = containers[0].query_pairs();
    let ids_filter = filter.iter().find(|(key, _)| key == "_filter_id__in").unwrap();
    assert!(
        ids_filter.1.starts_with("[1,2,3,") && ids_filter.1.ends_with(",200]"),
        "{}",
        ids_filter.1
    );
    assert_eq!(containers[0].header("ph-auth-token"), Some("soar-token"));
    let runs = list_requests(emu, "/rest/playbook_run");
    assert_eq!(runs.len(), 1, "one playbook query for 200 containers");
    let query = runs[0].query_pairs();
    assert!(
        query.contains(&("sort".into(), "id".into()))
            && query.contains(&("order".into(), "desc".into()))
    );
    assert_eq!(emu.requests_to("/rest/").len(), 2, "nothing else went to SOAR");
    assert_eq!(
        emu.requests_to("/servicesNS/nobody/stackflow/storage/collections").len(),
        0,
        "no link query needed"
    );
}

#[test]
fn soar_containers_are_found_by_id_then_link_then_source_data_identifier() {
    let setup = setup();
    let emu = &setup.emu;
    let c1 = emu.add_soar_container(json!({"name": "a", "label": "events", "status": "new"}));
    let c2 = emu.add_soar_container(json!({"name": "b", "label": "events", "status": "open"}));
    let c3 = emu.add_soar_container(json!({"name": "c", "label": "events", "status": "closed",
        "source_data_identifier": "eC", "close_time": "2026-11-20T10:00:00Z"}));
    let c4 = emu.add_soar_container(json!({"name": "d", "label": "events", "status": "new"}));
    seed_links(
        emu,
        &[
            json!({"_key": "k-a", "event_id": "eA", "soar_container_id": c2, "updated": 1}),
            json!({"_key": "k-b", "event_id": "eB", "soar_container_id": c2, "updated": 2}),
        ],
    );
    emu.clear_requests();
    let rows = csv(&[
        vec![("event_id", one("eA")), ("soar_container_id", one(&c1.to_string()))],
        vec![("event_id", one("eB"))],
        vec![("event_id", one("eC"))],
        vec![
            ("event_id", one("eR")),
            ("action", one("stackflow_soar")),
            ("remote_id", one(&c4.to_string())),
        ],
        vec![("event_id", one("eD"))],
    ]);
    let (code, replies, stderr) =
        run(&setup, &[getinfo(emu, &["target=soar"]), execute(true, &rows)]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let out = table(&replies[1]);
    let ids: Vec<String> = (0..5).map(|row| field(&out, row, "soar_container_id")).collect();
    assert_eq!(
        ids,
        [c1.to_string(), c2.to_string(), c3.to_string(), c4.to_string(), String::new()]
    );
    assert_eq!(field(&out, 2, "soar_close_time"), "2026-11-20T10:00:00Z");
    assert_eq!(field(&out, 4, "sync_action"), "not_found");
    assert_eq!(field(&out, 4, "sync_message"), "no SOAR container for event_id eD");

    let kv =
        emu.requests_to("/servicesNS/nobody/stackflow/storage/collections/data/stackflow_links");
    assert_eq!(kv.len(), 1, "one link query per chunk");
    let query: Value = serde_json::from_str(
        &kv[0].query_pairs().into_iter().find(|(k, _)| k == "query").unwrap().1,
    )
    .unwrap();
    assert_eq!(query, json!({"event_id": {"$in": ["eB", "eC", "eD"]}}));
    assert_eq!(kv[0].header("authorization"), Some("Splunk test-session-key"));
    let containers = list_requests(emu, "/rest/container");
    assert_eq!(containers.len(), 2, "one query by id, one by source_data_identifier");
    let by_sdi = containers[1].query_pairs();
    assert!(
        by_sdi.contains(&("_filter_source_data_identifier__in".into(), "[\"eC\",\"eD\"]".into())),
        "{by_sdi:?}"
    );
}

#[test]
fn stackflow_fields_come_from_one_incident_query_with_the_bearer_token() {
    let setup = setup();
    let emu = &setup.emu;
    emu.add_stackflow_incident(
        json!({"id": "INC0000101", "number": "INC0000101", "state": "in_progress",
        "priority": "P2", "assigned_to": "jane.doe@example.com"}),
    );
    emu.add_stackflow_incident(
        json!({"id": "INC0000102", "number": "INC0000102", "state": "resolved",
        "priority": "P1", "assigned_to": "john@example.com"}),
    );
    let rows = csv(&[
        vec![("stackflow_incident_id", one("INC0000101"))],
        vec![("action", one("stackflow_incident")), ("remote_id", one("INC0000102"))],
        vec![("stackflow_incident_id", one("INC0000404"))],
    ]);
    let (code, replies, stderr) =
        run(&setup, &[getinfo(emu, &["target=stackflow"]), execute(true, &rows)]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let out = table(&replies[1]);
    assert_eq!(field(&out, 0, "stackflow_state"), "in_progress");
    assert_eq!(field(&out, 0, "stackflow_priority"), "P2");
    assert_eq!(field(&out, 0, "stackflow_assigned_to"), "jane.doe@example.com");
    assert_eq!(
        field(&out, 0, "stackflow_url"),
        format!("{}/prod/api/incidents/INC0000101", emu.url())
    );
    assert_eq!(field(&out, 1, "stackflow_incident_id"), "INC0000102");
    assert_eq!(field(&out, 1, "stackflow_state"), "resolved");
    assert_eq!(field(&out, 1, "sync_action"), "unchanged");
    assert_eq!(field(&out, 2, "sync_action"), "not_found");
    assert_eq!(field(&out, 2, "sync_message"), "StackFlow incident INC0000404 not found");
    let requests = emu.requests_to("/prod/api/incidents");
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].path, "/prod/api/incidents");
    assert!(
        requests[0]
            .query_pairs()
            .contains(&("ids".into(), "INC0000101,INC0000102,INC0000404".into()))
    );
    assert_eq!(requests[0].header("authorization"), Some("Bearer sf-api-token"));
    assert!(emu.requests_to("/rest/").is_empty(), "target=stackflow never asks SOAR");
}

/// Notables: e1, e2 → Resolved (SOAR closed), e3 already Resolved, e4 → Closed (StackFlow
/// closed), e5 has an open container (no mapping).
pub(crate) fn notable_rows(emu: &Emulator) -> String {
    let closed = |sdi: &str| {
        emu.add_soar_container(json!({"name": sdi, "label": "events", "status": "closed", "source_data_identifier": sdi}))
    };
    let (c1, c2, c3) = (closed("e1"), closed("e2"), closed("e3"));
    let c5 = emu.add_soar_container(json!({"name": "e5", "label": "events", "status": "open"}));
    emu.add_stackflow_incident(
        json!({"id": "INC0000201", "state": "closed", "priority": "P3", "assigned_to": ""}),
    );
    csv(&[
        vec![
            ("event_id", one("e1")),
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
            ("status", one("4")),
            ("soar_container_id", one(&c3.to_string())),
        ],
        vec![
            ("event_id", one("e4")),
            ("status", one("1")),
            ("stackflow_incident_id", one("INC0000201")),
        ],
        vec![
            ("event_id", one("e5")),
            ("status", one("1")),
            ("soar_container_id", one(&c5.to_string())),
        ],
    ])
}

#[test]
fn notables_are_updated_once_per_target_status_with_a_comment_naming_the_remote_objects() {
    let setup = setup();
    let emu = &setup.emu;
    let rows = notable_rows(emu);
    let (code, replies, stderr) =
        run(&setup, &[getinfo(emu, &["update_notables=true"]), execute(true, &rows)]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let out = table(&replies[1]);
    let actions: Vec<String> = (0..5).map(|row| field(&out, row, "sync_action")).collect();
    assert_eq!(actions, ["updated", "updated", "unchanged", "updated", "unchanged"]);
    assert_eq!(
        field(&out, 0, "sync_message"),
        format!(
            "set notable status New (1) → Resolved (4): SOAR container 1 is closed — {}/mission/1",
            emu.url()
        )
    );
    assert!(field(&out, 2, "sync_message").starts_with("notable already Resolved (4)"));
    assert!(field(&out, 4, "sync_message").contains("no notable status is mapped"));

    let updates = emu.notable_updates();
    assert_eq!(updates.len(), 2, "{updates:?}");
    let values = |form: &Vec<(String, String)>, key: &str| -> Vec<String> {
        form.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
    };
    assert_eq!(values(&updates[0], "ruleUIDs"), ["e1", "e2"]);
    assert_eq!(values(&updates[0], "status"), ["4"]);
    assert_eq!(
        values(&updates[0], "comment"),
        [format!(
            "StackFlow for Splunk: 2 remote objects: SOAR container 1 is closed — {0}/mission/1; SOAR container 2 is closed — {0}/mission/2",
            emu.url()
        )]
    );
    assert_eq!(values(&updates[1], "ruleUIDs"), ["e4"]);
    assert_eq!(values(&updates[1], "status"), ["5"]);
    assert_eq!(
        values(&updates[1], "comment"),
        [format!(
            "StackFlow for Splunk: StackFlow incident INC0000201 is closed — {}/prod/api/incidents/INC0000201",
            emu.url()
        )]
    );
    assert_eq!(emu.notable_status("e3"), None, "the unchanged notable was not touched");
    let update_requests = emu.requests_to("/services/notable_update");
    assert!(
        update_requests
            .iter()
            .all(|request| request.header("authorization") == Some("Splunk test-session-key"))
    );
    assert!(messages(&replies[1], "WARN").is_empty(), "{:?}", replies[1].metadata);
}

#[test]
fn dry_run_reports_what_would_change_and_writes_nothing() {
    let setup = setup();
    let emu = &setup.emu;
    let rows = notable_rows(emu);
    let (code, replies, stderr) = run(
        &setup,
        &[
            getinfo(emu, &["target=all", "update_notables=true", "dry_run=true"]),
            execute(true, &rows),
        ],
    );
    assert_eq!(code, 0, "stderr: {stderr}");
    let out = table(&replies[1]);
    let actions: Vec<String> = (0..5).map(|row| field(&out, row, "sync_action")).collect();
    assert_eq!(actions, ["would_update", "would_update", "unchanged", "would_update", "unchanged"]);
    assert!(field(&out, 3, "sync_message").starts_with(
        "would set notable status New (1) → Closed (5): StackFlow incident INC0000201 is closed"
    ));
    assert!(emu.notable_updates().is_empty());
    assert!(emu.requests_to("/services/notable_update").is_empty());
    assert_eq!(
        emu.requests_to("/services/authentication").len(),
        1,
        "one current-context for the secrets gate; a dry run needs no notable capability"
    );
}

#[test]
fn status_map_and_comment_options_decide_the_update() {
    let setup = setup();
    let emu = &setup.emu;
    let rows = notable_rows(emu);
    let (code, replies, stderr) = run(
        &setup,
        &[
            getinfo(
                emu,
                &[
                    "target=soar",
                    "update_notables=1",
                    "status_map=open:in progress",
                    "comment=Synced by the SOC",
                ],
            ),
            execute(true, &rows),
        ],
    );
    assert_eq!(code, 0, "stderr: {stderr}");
    let out = table(&replies[1]);
    let actions: Vec<String> = (0..5).map(|row| field(&out, row, "sync_action")).collect();
    assert_eq!(actions, ["unchanged", "unchanged", "unchanged", "not_found", "updated"]);
    let updates = emu.notable_updates();
    assert_eq!(updates.len(), 1, "{updates:?}");
    assert!(updates[0].contains(&("ruleUIDs".into(), "e5".into())));
    assert!(updates[0].contains(&("status".into(), "2".into())));
    assert!(updates[0].contains(&(
        "comment".into(),
        format!("Synced by the SOC: SOAR container 4 is open — {}/mission/4", emu.url())
    )));
}

#[test]
fn without_the_capability_no_notable_is_written() {
    let setup = setup();
    let emu = &setup.emu;
    emu.set_capabilities(&[
        "edit_notable_events",
        "list_storage_passwords",
        "stackflow_read_credentials",
    ]);
    let rows = notable_rows(emu);
    let (code, replies, stderr) =
        run(&setup, &[getinfo(emu, &["update_notables=true"]), execute(true, &rows)]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let out = table(&replies[1]);
    assert_eq!(field(&out, 0, "sync_action"), "error");
    assert!(
        field(&out, 0, "sync_message").contains("lacks the capability stackflow_update_notables")
    );
    assert_eq!(field(&out, 2, "sync_action"), "unchanged");
    let warnings = messages(&replies[1], "WARN");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(emu.notable_updates().is_empty());
}

#[test]
fn an_unreachable_soar_marks_rows_as_errors_with_one_warning() {
    let setup = setup();
    let emu = &setup.emu;
    let fault = Fault::Status {
        status: 503,
        body: "{\"failed\":true,\"message\":\"maintenance\"}".into(),
        headers: Vec::new(),
    };
    emu.fault("/rest/container", fault, 10);
    let rows = csv(&[
        vec![("event_id", one("e1")), ("soar_container_id", one("1"))],
        vec![("event_id", one("e2")), ("soar_container_id", one("2"))],
    ]);
    let (code, replies, stderr) =
        run(&setup, &[getinfo(emu, &["target=soar"]), execute(false, &rows), execute(true, &rows)]);
    assert_eq!(code, 0, "stderr: {stderr}");
    assert_eq!(replies.len(), 3);
    let out = table(&replies[1]);
    for row in 0..2 {
        assert_eq!(field(&out, row, "sync_action"), "error");
        assert!(
            field(&out, row, "sync_message").contains("HTTP 503: maintenance"),
            "{}",
            field(&out, row, "sync_message")
        );
    }
    assert_eq!(messages(&replies[1], "WARN").len(), 1, "{:?}", replies[1].metadata);
    assert!(messages(&replies[2], "WARN").is_empty(), "the same warning is shown once per search");
    assert!(replies[2].metadata.get("error").is_none());
    assert_eq!(
        list_requests(emu, "/rest/container").len(),
        2,
        "one query per chunk, no per-row retries"
    );
}

#[test]
fn incidents_are_read_one_by_one_when_the_id_list_is_refused() {
    let setup = setup();
    let emu = &setup.emu;
    emu.add_stackflow_incident(json!({"id": "INC0000301", "state": "new", "priority": "P4", "assigned_to": "a@example.com"}));
    emu.add_stackflow_incident(json!({"id": "INC0000302", "state": "closed", "priority": "P3", "assigned_to": "b@example.com"}));
    seed_links(
        emu,
        &[
            json!({"_key": "k-1", "event_id": "e-linked", "stackflow_incident_id": "INC0000302", "updated": 5}),
        ],
    );
    emu.clear_requests();
    let refused = Fault::Status {
        status: 400,
        body: "{\"error\":\"unknown filter ids\",\"code\":\"BAD_REQUEST\"}".into(),
        headers: Vec::new(),
    };
    emu.fault("/prod/api/incidents", refused, 1);
    let rows = csv(&[
        vec![("stackflow_incident_id", one("INC0000301"))],
        vec![("event_id", one("e-linked"))],
    ]);
    let (code, replies, stderr) =
        run(&setup, &[getinfo(emu, &["target=stackflow"]), execute(true, &rows)]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let out = table(&replies[1]);
    assert_eq!(field(&out, 0, "stackflow_state"), "new");
    assert_eq!(
        field(&out, 1, "stackflow_incident_id"),
        "INC0000302",
        "found through stackflow_links"
    );
    assert_eq!(field(&out, 1, "stackflow_state"), "closed");
    let paths: Vec<String> =
        emu.requests_to("/prod/api/incidents").into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        ["/prod/api/incidents", "/prod/api/incidents/INC0000301", "/prod/api/incidents/INC0000302"]
    );
    assert!(messages(&replies[1], "WARN").is_empty(), "{:?}", replies[1].metadata);
}

#[test]
fn a_broken_protocol_gets_an_error_reply_and_a_non_zero_exit() {
    let setup = setup();
    let mut input = getinfo(&setup.emu, &[]);
    input.extend_from_slice(b"chunked 1.0,36,99\n{\"action\":\"execute\",\"finished\":true}a,b\n");
    let (code, replies, stderr) = run(&setup, &[input]);
    assert_eq!(code, 2, "stderr: {stderr}");
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[1].metadata["finished"], json!(true));
    assert!(
        replies[1].metadata["error"].as_str().unwrap_or_default().contains("truncated"),
        "{:?}",
        replies[1].metadata
    );
    assert!(stderr.lines().all(|line| line.starts_with("ERROR ")), "{stderr}");
    assert!(setup.emu.requests().is_empty());
}

#[test]
fn an_unknown_account_or_a_missing_token_is_a_warning_not_a_failed_search() {
    let setup = setup();
    let emu = &setup.emu;
    let rows = csv(&[vec![("event_id", one("e1")), ("soar_container_id", one("1"))]]);
    let (code, replies, stderr) =
        run(&setup, &[getinfo(emu, &["target=soar", "account=emea"]), execute(true, &rows)]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let out = table(&replies[1]);
    assert_eq!(field(&out, 0, "sync_action"), "error");
    assert!(
        field(&out, 0, "sync_message")
            .contains("unknown soar account \"emea\" (configured: default)"),
        "{}",
        field(&out, 0, "sync_message")
    );
    assert_eq!(messages(&replies[1], "WARN").len(), 1);
    assert!(emu.requests_to("/rest/").is_empty());

    setup.home.append_local_conf(&format!("\n[soar:emea]\nurl = {}\n", emu.url()));
    let (code, replies, _) =
        run(&setup, &[getinfo(emu, &["target=soar", "account=emea"]), execute(true, &rows)]);
    assert_eq!(code, 0);
    let message = field(&table(&replies[1]), 0, "sync_message");
    assert!(message.contains("no secret \"soar.emea\""), "{message}");
    assert!(!message.contains("soar-token"));
}

#[test]
fn a_soar_outage_spares_rows_that_only_have_a_stackflow_incident() {
    let setup = setup();
    let emu = &setup.emu;
    emu.add_stackflow_incident(json!({"id": "INC0000401", "state": "in_progress", "priority": "P2", "assigned_to": "x@example.com"}));
    emu.fault("/rest/container", Fault::CloseWithoutResponse, 10);
    let rows = csv(&[
        vec![("soar_container_id", one("9"))],
        vec![("stackflow_incident_id", one("INC0000401"))],
    ]);
    let (code, replies, stderr) = run(&setup, &[getinfo(emu, &[]), execute(true, &rows)]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let out = table(&replies[1]);
    assert_eq!(field(&out, 0, "sync_action"), "error");
    assert_eq!(field(&out, 1, "sync_action"), "unchanged");
    assert_eq!(field(&out, 1, "stackflow_state"), "in_progress");
    assert_eq!(messages(&replies[1], "WARN").len(), 1, "{:?}", replies[1].metadata);
}

#[test]
fn a_failed_notable_update_marks_only_its_group_as_errors() {
    let setup = setup();
    let emu = &setup.emu;
    let rows = notable_rows(emu);
    let refused = Fault::Status {
        status: 500,
        body: "{\"success\":false,\"message\":\"KV store is busy\"}".into(),
        headers: Vec::new(),
    };
    emu.fault("/services/notable_update", refused, 1);
    let (code, replies, stderr) =
        run(&setup, &[getinfo(emu, &["update_notables=true"]), execute(true, &rows)]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let out = table(&replies[1]);
    let actions: Vec<String> = (0..5).map(|row| field(&out, row, "sync_action")).collect();
    assert_eq!(actions, ["error", "error", "unchanged", "updated", "unchanged"]);
    assert!(
        field(&out, 0, "sync_message").starts_with("notable update failed:"),
        "{}",
        field(&out, 0, "sync_message")
    );
    assert!(field(&out, 0, "sync_message").contains("KV store is busy"));
    assert_eq!(messages(&replies[1], "WARN").len(), 1);
    assert_eq!(emu.requests_to("/services/notable_update").len(), 2, "no retry within the search");
    assert_eq!(emu.notable_status("e4").as_deref(), Some("5"));
}
