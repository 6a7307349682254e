//! The `stackflow_state` modular input end to end: the installed app's launcher found the way
//! splunkd finds a modular input (`<platform>/bin/<scheme>`, then `bin/<scheme>[.sh]`), started
//! with splunkd's XML configuration on stdin, against SOAR / StackFlow emulators whose objects
//! change between polls; events parsed from the `<stream>` on stdout.

use crate::support::{Run, SESSION_KEY, SplunkHome, modinput_config};
use crate::sync::{Setup, seed_links, setup};
use serde_json::{Value, json};
use stackflow_emulator::{Emulator, Fault};
use std::path::{Path, PathBuf};
use std::process::Command;

/// One event of the stream: its stanza, sourcetype, time and JSON data.
#[derive(Debug)]
pub(crate) struct Event {
    stanza: String,
    pub(crate) sourcetype: String,
    time: Option<f64>,
    pub(crate) data: Value,
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// Parses `<stream><event stanza=… unbroken="1">…<data>…</data><done/></event>…</stream>`.
pub(crate) fn events(stdout: &str) -> Vec<Event> {
    if stdout.trim().is_empty() {
        return Vec::new();
    }
    assert!(stdout.starts_with("<stream>\n"), "{stdout}");
    assert!(stdout.ends_with("</stream>\n"), "{stdout}");
    let pattern = regex::Regex::new(
        r#"<event stanza="([^"]*)" unbroken="1">(?:<time>([0-9.]+)</time>)?<source>[^<]*</source><sourcetype>([^<]*)</sourcetype><data>([^<]*)</data><done/></event>"#,
    )
    .unwrap();
    let found: Vec<Event> = pattern
        .captures_iter(stdout)
        .map(|c| Event {
            stanza: unescape(&c[1]),
            time: c.get(2).map(|t| t.as_str().parse().unwrap()),
            sourcetype: c[3].to_string(),
            data: serde_json::from_str(&unescape(&c[4])).unwrap(),
        })
        .collect();
    assert_eq!(found.len(), stdout.matches("<event ").count(), "every event parsed: {stdout}");
    found
}

pub(crate) fn input_executable(home: &SplunkHome) -> PathBuf {
    home.modinput_executable("stackflow_state")
}

pub(crate) fn config_xml(emu: &Emulator, checkpoint_dir: &Path, params: &[(&str, &str)]) -> String {
    modinput_config(&emu.url(), checkpoint_dir, "stackflow_state://default", 300, params)
}

pub(crate) struct Input {
    pub(crate) setup: Setup,
    pub(crate) checkpoint_dir: PathBuf,
}

impl Input {
    pub(crate) fn new() -> Input {
        let setup = setup();
        let checkpoint_dir = setup.home.root.join("var/lib/splunk/modinputs/stackflow_state");
        std::fs::create_dir_all(&checkpoint_dir).unwrap();
        Input { setup, checkpoint_dir }
    }
    pub(crate) fn emu(&self) -> &Emulator {
        &self.setup.emu
    }
    /// One run as splunkd starts it: no argument, configuration on stdin.
    pub(crate) fn poll_with(&self, params: &[(&str, &str)]) -> (Run, Vec<Event>) {
        let command = Command::new(input_executable(&self.setup.home));
        let xml = config_xml(self.emu(), &self.checkpoint_dir, params);
        let run = self.setup.home.run_command(command, xml.as_bytes());
        run.assert_levelled_stderr().assert_no_secret(&[SESSION_KEY, "soar-token", "sf-api-token"]);
        let found = events(&run.stdout);
        (run, found)
    }
    pub(crate) fn poll(&self) -> (Run, Vec<Event>) {
        self.poll_with(&[])
    }
    fn run_mode(&self, args: &[&str], stdin: &str) -> Run {
        let mut command = Command::new(input_executable(&self.setup.home));
        command.args(args);
        self.setup.home.run_command(command, stdin.as_bytes())
    }
}

pub(crate) fn of<'a>(found: &'a [Event], sourcetype: &str) -> Vec<&'a Event> {
    found.iter().filter(|event| event.sourcetype == sourcetype).collect()
}

pub(crate) fn container(emu: &Emulator, n: u64, sdi: &str) -> u64 {
    emu.add_soar_container(json!({"name": format!("notable {n}"), "label": "events",
        "severity": "high", "source_data_identifier": sdi}))
}

pub(crate) fn start_run(emu: &Emulator, container: u64) -> String {
    let body = json!({"container_id": container, "playbook_id": "local/triage", "run": true});
    let client = stackflow::net::http::HttpClient::new(
        &stackflow::net::http::HttpOptions {
            tls: stackflow::settings::TlsSettings { verify: false, ca_file: None },
            proxy: None,
            timeout: std::time::Duration::from_secs(10),
        },
        "test",
    )
    .unwrap();
    let response = client
        .post(
            &format!("{}/rest/playbook_run", emu.url()),
            &[("ph-auth-token", "soar-token"), ("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
        .unwrap();
    response.json().unwrap()["playbook_run_id"].as_str().unwrap().to_string()
}

pub(crate) fn incident(emu: &Emulator, id: &str, state: &str) {
    emu.add_stackflow_incident(json!({"id": id, "number": id, "state": state, "priority": "P2",
        "assigned_to": null, "assignment_group": "SOC"}));
}

/// Container requests that are lists (never `/rest/container/<id>`).
fn soar_requests(emu: &Emulator) -> (usize, usize, usize) {
    let requests = emu.requests();
    let lists = |path: &str| requests.iter().filter(|r| r.path == path).count();
    let per_object = requests
        .iter()
        .filter(|r| {
            r.path.starts_with("/rest/container/") || r.path.starts_with("/rest/playbook_run/")
        })
        .count();
    (lists("/rest/container"), lists("/rest/playbook_run"), per_object)
}

#[test]
fn each_change_is_one_event_across_restarts_and_outages() {
    let input = Input::new();
    let emu = input.emu();
    let c1 = container(emu, 1, "e1");
    let c2 = container(emu, 2, "e2");
    let c3 = container(emu, 3, "e3");
    let unlinked = container(emu, 4, "not ours");
    let run1 = start_run(emu, c1);
    start_run(emu, unlinked);
    incident(emu, "INC0001001", "new");
    incident(emu, "INC0001002", "in_progress");
    incident(emu, "INC0009999", "new");
    let now = stackflow::civil_time::now_unix();
    seed_links(
        emu,
        &[
            json!({"_key": "k1", "event_id": "e1", "soar_container_id": c1, "updated": now}),
            json!({"_key": "k1#e1b", "event_id": "e1b", "soar_container_id": c1, "updated": now}),
            json!({"_key": "k2", "event_id": "e2", "soar_container_id": c2, "updated": now}),
            json!({"_key": "k3", "event_id": "e3", "soar_container_id": c3, "updated": now}),
            json!({"_key": "i1", "event_id": "e1", "stackflow_incident_id": "INC0001001", "updated": now}),
            json!({"_key": "i2", "event_id": "e5", "stackflow_incident_id": "INC0001002", "updated": now}),
            json!({"_key": "slack", "event_id": "e1", "slack_channel": "C1", "slack_ts": "1.2", "updated": now}),
        ],
    );

    // First poll: the current state of every linked object, once.
    emu.clear_requests();
    let (run, found) = input.poll();
    run.assert_code(0);
    let containers = of(&found, "stackflow:soar:container");
    let mut ids: Vec<u64> =
        containers.iter().map(|e| e.data["container_id"].as_u64().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, [c1, c2, c3], "linked containers only");
    let first = containers.iter().find(|e| e.data["container_id"] == c1).unwrap();
    assert_eq!(first.stanza, "stackflow_state://default");
    assert_eq!(first.data["event_id"], "e1", "the item's main link names the notable");
    assert_eq!(first.data["dedupe_key"], "k1");
    assert_eq!(first.data["status"], "new");
    assert_eq!(first.data["severity"], "high");
    assert_eq!(first.data["label"], "events");
    assert_eq!(first.data["soar_url"], format!("{}/mission/{c1}", emu.url()));
    for key in ["owner", "close_time", "resolution", "update_time"] {
        assert!(first.data.get(key).is_some(), "{key}");
    }
    let update_time = first.data["update_time"].as_str().unwrap();
    let expected = stackflow::civil_time::parse_iso8601(update_time).unwrap();
    assert!((first.time.unwrap() - expected).abs() < 0.001, "event time = update_time");
    let runs = of(&found, "stackflow:soar:playbook_run");
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].data["playbook_run_id"].to_string(), run1);
    assert_eq!(runs[0].data["container_id"], c1);
    assert_eq!(runs[0].data["playbook"], "local/triage");
    assert_eq!(runs[0].data["status"], "running");
    assert_eq!(runs[0].data["event_id"], "e1");
    let incidents = of(&found, "stackflow:incident");
    let mut numbers: Vec<&str> =
        incidents.iter().map(|e| e.data["incident_id"].as_str().unwrap()).collect();
    numbers.sort();
    assert_eq!(numbers, ["INC0001001", "INC0001002"]);
    let inc = incidents.iter().find(|e| e.data["incident_id"] == "INC0001002").unwrap();
    assert_eq!(inc.data["state"], "in_progress");
    assert_eq!(inc.data["priority"], "P2");
    assert_eq!(inc.data["assignment_group"], "SOC");
    assert_eq!(inc.data["number"], "INC0001002");
    assert_eq!(inc.data["event_id"], "e5");
    assert!(!inc.data["updated"].as_str().unwrap().is_empty());
    assert_eq!(found.len(), 6);
    assert!(run.stderr.contains("INFO stackflow_state://default: 6 event(s)"), "{}", run.stderr);
    let (container_lists, run_lists, per_object) = soar_requests(emu);
    assert_eq!((container_lists, run_lists, per_object), (1, 1, 0), "batched: one list query each");

    // Nothing changed: nothing is reported, and the known objects are asked with the time filter.
    emu.clear_requests();
    let (run, found) = input.poll();
    run.assert_code(0);
    assert!(found.is_empty(), "{found:?}");
    let filters: Vec<String> =
        emu.requests_to("/rest/container").iter().map(|r| r.query.clone()).collect();
    assert_eq!(filters.len(), 1);
    assert!(filters[0].contains("_filter_update_time__gte="), "{filters:?}");
    assert!(filters[0].contains("_filter_id__in="), "{filters:?}");

    // Changes between polls: each is one event.
    assert!(emu.update_soar_container(c2, json!({"status": "closed", "owner_name": "alice"})));
    emu.set_soar_playbook_run_status(&run1, "success");
    assert!(emu.update_stackflow_incident(
        "INC0001001",
        json!({"state": "resolved", "assigned_to": "bob@example.com"})
    ));
    emu.update_stackflow_incident("INC0009999", json!({"state": "closed"}));
    let (run, found) = input.poll();
    run.assert_code(0);
    assert_eq!(found.len(), 3, "{found:?}");
    let closed = of(&found, "stackflow:soar:container");
    assert_eq!(closed[0].data["container_id"], c2);
    assert_eq!(closed[0].data["status"], "closed");
    assert_eq!(closed[0].data["owner"], "alice");
    assert!(!closed[0].data["close_time"].as_str().unwrap().is_empty());
    let done = of(&found, "stackflow:soar:playbook_run");
    assert_eq!(done[0].data["status"], "success");
    assert!(!done[0].data["end_time"].as_str().unwrap().is_empty());
    let resolved = of(&found, "stackflow:incident");
    assert_eq!(resolved[0].data["incident_id"], "INC0001001");
    assert_eq!(resolved[0].data["state"], "resolved");
    assert_eq!(resolved[0].data["assigned_to"], "bob@example.com");

    // SOAR is down for a poll: that part is skipped (exit 7), StackFlow's still flows, and the
    // changes made meanwhile arrive with the next poll.
    emu.fault(
        "/rest/",
        Fault::Status { status: 503, body: "maintenance".into(), headers: vec![] },
        20,
    );
    emu.update_soar_container(c3, json!({"severity": "low"}));
    emu.update_stackflow_incident("INC0001002", json!({"priority": "P1"}));
    let (run, found) = input.poll();
    run.assert_code(7).assert_line("ERROR", "SOAR poll skipped");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].data["priority"], "P1");
    emu.update_soar_container(c1, json!({"owner_name": "carol"}));
    emu.clear_faults();
    let (run, found) = input.poll();
    run.assert_code(0);
    let mut changed: Vec<(u64, String, String)> = of(&found, "stackflow:soar:container")
        .iter()
        .map(|e| {
            (
                e.data["container_id"].as_u64().unwrap(),
                e.data["severity"].as_str().unwrap().to_string(),
                e.data["owner"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    changed.sort();
    assert_eq!(changed, [(c1, "high".into(), "carol".into()), (c3, "low".into(), String::new())]);
    assert_eq!(found.len(), 2, "{found:?}");

    // A container linked after the first polls is reported in full, with its runs.
    let c5 = container(emu, 5, "e5");
    let run5 = start_run(emu, c5);
    seed_links(
        emu,
        &[json!({"_key": "k5", "event_id": "e5", "soar_container_id": c5, "updated": now + 1.0})],
    );
    let (run, found) = input.poll();
    run.assert_code(0);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(of(&found, "stackflow:soar:container")[0].data["container_id"], c5);
    assert_eq!(
        of(&found, "stackflow:soar:playbook_run")[0].data["playbook_run_id"].to_string(),
        run5
    );
    let checkpoint = input.checkpoint_dir.join("default.json");
    assert!(checkpoint.is_file(), "the checkpoint lives in splunkd's checkpoint_dir");
}

#[test]
fn many_objects_are_read_in_batches_and_a_run_is_bounded() {
    let input = Input::new();
    let emu = input.emu();
    let now = stackflow::civil_time::now_unix();
    let mut links = Vec::new();
    for n in 1..=250u64 {
        let id = container(emu, n, &format!("e{n}"));
        links.push(json!({"_key": format!("k{n}"), "event_id": format!("e{n}"), "soar_container_id": id, "updated": now}));
    }
    seed_links(emu, &links);
    let mut seen = std::collections::BTreeSet::new();
    let mut per_run = Vec::new();
    for _ in 0..3 {
        emu.clear_requests();
        let (run, found) = input.poll_with(&[("max_events", "100")]);
        run.assert_code(0);
        per_run.push(found.len());
        for event in &found {
            assert!(
                seen.insert(event.data["container_id"].as_u64().unwrap()),
                "reported twice: {event:?}"
            );
        }
        let (container_lists, _, per_object) = soar_requests(emu);
        assert_eq!(per_object, 0);
        assert!(container_lists <= 3, "{container_lists} container queries for 250 containers");
    }
    assert_eq!(per_run, [100, 100, 50], "max_events bounds a run; the rest follows");
    assert_eq!(seen.len(), 250);
    let (run, found) = input.poll_with(&[("max_events", "100")]);
    run.assert_code(0);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn splunkd_introspection_validation_and_bad_configuration() {
    let input = Input::new();
    let scheme = input.run_mode(&["--scheme"], "");
    scheme.assert_code(0);
    for needle in [
        "<scheme>",
        "<title>StackFlow case state</title>",
        "<use_external_validation>true</use_external_validation>",
        "<streaming_mode>xml</streaming_mode>",
        "<arg name=\"account\">",
        "<arg name=\"max_events\">",
    ] {
        assert!(scheme.stdout.contains(needle), "{needle}: {}", scheme.stdout);
    }
    let items = |param: &str| {
        format!(
            "<items><server_host>sh1</server_host><server_uri>https://127.0.0.1:8089</server_uri><session_key>{SESSION_KEY}</session_key><checkpoint_dir>/tmp</checkpoint_dir><item name=\"default\">{param}</item></items>"
        )
    };
    let ok =
        input.run_mode(&["--validate-arguments"], &items("<param name=\"max_events\">50</param>"));
    ok.assert_code(0);
    assert!(ok.stdout.is_empty(), "{}", ok.stdout);
    let rejected = input
        .run_mode(&["--validate-arguments"], &items("<param name=\"max_events\">lots</param>"));
    rejected.assert_code(2);
    assert!(
        rejected.stdout.starts_with("<error><message>max_events = &quot;lots&quot;"),
        "{}",
        rejected.stdout
    );
    for bad in ["", "<input><configuration>", "garbage \u{0}", "<input>&undefined;</input>"] {
        let run = input.run_mode(&[], bad);
        run.assert_code(2).assert_line("ERROR", "modular input configuration on stdin");
        assert!(run.stdout.is_empty(), "no half stream: {}", run.stdout);
    }
    assert!(input.emu().requests().is_empty());
    // A checkpoint that is not ours is a configuration error naming it, not a silent restart.
    std::fs::write(input.checkpoint_dir.join("default.json"), "[1,2").unwrap();
    let (run, found) = input.poll();
    run.assert_code(4).assert_line("ERROR", "default.json");
    assert!(found.is_empty());
}

#[test]
fn the_app_ships_the_input_disabled_and_documented() {
    let home = SplunkHome::new();
    let app = home.app_dir();
    let inputs = stackflow::splunk::conf::ConfFile::load_app_conf(&app, "inputs.conf").unwrap();
    assert_eq!(inputs.get("stackflow_state://default", "disabled"), Some("1"));
    assert_eq!(inputs.get("stackflow_state://default", "interval"), Some("300"));
    assert_eq!(inputs.get("stackflow_state", "interval"), Some("300"));
    let spec = std::fs::read_to_string(app.join("README/inputs.conf.spec")).unwrap();
    assert!(spec.contains("[stackflow_state://<name>]"));
    for param in ["account", "lookback_days", "max_events", "run_time_field", "overlap_s"] {
        assert!(spec.contains(&format!("\n{param} = ")), "{param} documented");
    }
    assert!(app.join("bin/stackflow_state.sh").is_file());
    assert!(app.join("bin/stackflow_state.cmd").is_file(), "Windows finds bin/<scheme>.cmd");
    let props = stackflow::splunk::conf::ConfFile::load_app_conf(&app, "props.conf").unwrap();
    for sourcetype in
        ["stackflow:soar:container", "stackflow:soar:playbook_run", "stackflow:incident"]
    {
        assert_eq!(props.get(sourcetype, "KV_MODE"), Some("json"), "{sourcetype}");
    }
}

#[test]
fn without_a_run_change_field_runs_are_compared_not_filtered() {
    let input = Input::new();
    let emu = input.emu();
    let c = container(emu, 1, "e1");
    let run_id = start_run(emu, c);
    let now = stackflow::civil_time::now_unix();
    seed_links(
        emu,
        &[json!({"_key": "k1", "event_id": "e1", "soar_container_id": c, "updated": now})],
    );
    let params = [("run_time_field", "none")];
    let (run, found) = input.poll_with(&params);
    run.assert_code(0);
    assert_eq!(of(&found, "stackflow:soar:playbook_run").len(), 1);
    emu.set_soar_playbook_run_status(&run_id, "failed");
    emu.clear_requests();
    let (run, found) = input.poll_with(&params);
    run.assert_code(0);
    let runs = of(&found, "stackflow:soar:playbook_run");
    assert_eq!(runs.len(), 1, "{found:?}");
    assert_eq!(runs[0].data["status"], "failed");
    let queries = emu.requests_to("/rest/playbook_run");
    assert_eq!(queries.len(), 1);
    assert!(!queries[0].query.contains("update_time__gte"), "{}", queries[0].query);
    let (_, found) = input.poll_with(&params);
    assert!(found.is_empty(), "unchanged runs are not reported again: {found:?}");
}
