//! Part three's endpoints over real sockets: splunkd's search endpoints (export streamed as
//! JSON lines, oneshot, jobs and their cancellation, a slow search left by its client), SOAR
//! action runs, and a `slash_commands` envelope over Socket Mode answered on its
//! `response_url`.

use super::{JSON_CT, SOAR, SPLUNK, call, connect};
use crate::Emulator;
use serde_json::{Value, json};
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");
const NS: &str = "/servicesNS/admin/stackflow/search/jobs";

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let parts: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
    parts.join("&").into_bytes()
}

#[test]
fn splunk_export_streams_json_lines_and_records_the_search() {
    let emu = Emulator::start();
    emu.set_search_rows(vec![json!({"user": "alice"}), json!({"user": "bob"})]);
    let body = form(&[
        ("search", "search index=main user=\"a\\\"b\""),
        ("earliest_time", "-24h"),
        ("latest_time", "now"),
        ("output_mode", "json"),
    ]);
    let wrong = call(&emu, "POST", &format!("{NS}/export"), &[FORM], &body);
    assert_eq!(wrong.status, 401);
    let r = call(&emu, "POST", &format!("{NS}/export"), &[SPLUNK, FORM], &body);
    assert_eq!((r.status, r.header("transfer-encoding")), (200, Some("chunked")));
    let lines: Vec<Value> = String::from_utf8(r.body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        vec![
            json!({"preview": false, "offset": 0, "result": {"user": "alice"}}),
            json!({"preview": false, "offset": 1, "lastrow": true, "result": {"user": "bob"}}),
        ]
    );
    let searches = emu.splunk_searches();
    let last = searches.last().unwrap();
    assert_eq!(last["endpoint"], "export");
    assert_eq!((last["user"].as_str(), last["app"].as_str()), (Some("admin"), Some("stackflow")));
    assert_eq!(last["search"], "search index=main user=\"a\\\"b\"");
    assert_eq!(
        (last["earliest_time"].as_str(), last["latest_time"].as_str()),
        (Some("-24h"), Some("now"))
    );
    assert_eq!((last["completed"].as_bool(), last["aborted"].as_bool()), (Some(true), Some(false)));
    // Generated rows and `count` through the control endpoint.
    let config = json!({"search_rows": [], "search_row_count": 1000});
    call(&emu, "POST", "/_emulator/config", &[JSON_CT], config.to_string().as_bytes());
    let body = form(&[("search", "| makeresults"), ("output_mode", "json"), ("count", "10")]);
    let r = call(&emu, "POST", "/services/search/v2/jobs/export", &[SPLUNK, FORM], &body);
    assert_eq!(String::from_utf8(r.body).unwrap().lines().count(), 10);
    assert!(emu.splunk_searches().last().unwrap()["app"].is_null());
}

#[test]
fn splunk_oneshot_counts_and_errors() {
    let emu = Emulator::start_plain();
    emu.set_search_row_count(250);
    let oneshot = |extra: &[(&str, &str)]| {
        let mut pairs =
            vec![("search", "search x"), ("exec_mode", "oneshot"), ("output_mode", "json")];
        pairs.extend_from_slice(extra);
        call(&emu, "POST", NS, &[SPLUNK, FORM], &form(&pairs))
    };
    let r = oneshot(&[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["results"].as_array().unwrap().len(), 100, "count defaults to 100");
    assert_eq!(r.json()["results"][0]["user"], "user0");
    assert_eq!(oneshot(&[("count", "0")]).json()["results"].as_array().unwrap().len(), 250);
    assert_eq!(oneshot(&[("count", "7")]).json()["results"].as_array().unwrap().len(), 7);
    emu.set_search_error(Some("Unknown search command 'bogus'."));
    let r = oneshot(&[]);
    assert_eq!((r.status, r.json()["messages"][0]["type"].as_str()), (400, Some("FATAL")));
    let missing = call(&emu, "POST", NS, &[SPLUNK, FORM], &form(&[("exec_mode", "oneshot")]));
    assert_eq!(missing.status, 400);
    assert_eq!(emu.splunk_searches().len(), 5);
    assert_eq!(emu.splunk_searches()[0]["endpoint"], "oneshot");
}

#[test]
fn splunk_jobs_run_finish_and_are_cancelled() {
    let emu = Emulator::start_plain();
    emu.set_search_row_count(30);
    emu.set_search_delay(Duration::from_millis(400));
    let create = || {
        let body = form(&[("search", "search x"), ("output_mode", "json"), ("max_count", "20")]);
        let r = call(&emu, "POST", NS, &[SPLUNK, FORM], &body);
        assert_eq!(r.status, 201);
        r.json()["sid"].as_str().unwrap().to_string()
    };
    let sid = create();
    let status = call(&emu, "GET", &format!("{NS}/{sid}?output_mode=json"), &[SPLUNK], b"");
    assert_eq!(status.json()["entry"][0]["content"]["dispatchState"], "RUNNING");
    let early = call(&emu, "GET", &format!("{NS}/{sid}/results?output_mode=json"), &[SPLUNK], b"");
    assert_eq!(early.status, 204);
    assert_eq!(emu.splunk_searches_running(), 1);
    let deleted = call(&emu, "DELETE", &format!("{NS}/{sid}"), &[SPLUNK], b"");
    assert_eq!(deleted.status, 200);
    assert_eq!(emu.splunk_search_cancels(), vec![sid.clone()]);
    assert_eq!(call(&emu, "GET", &format!("{NS}/{sid}"), &[SPLUNK], b"").status, 404);
    assert_eq!(emu.splunk_searches()[0]["cancelled"], "DELETE");
    let sid = create();
    std::thread::sleep(Duration::from_millis(450));
    let status = call(&emu, "GET", &format!("{NS}/{sid}?output_mode=json"), &[SPLUNK], b"");
    assert_eq!(status.json()["entry"][0]["content"]["dispatchState"], "DONE");
    assert_eq!(status.json()["entry"][0]["content"]["resultCount"], 20, "max_count keeps 20");
    let path = format!("{NS}/{sid}/results?output_mode=json&count=0");
    assert_eq!(
        call(&emu, "GET", &path, &[SPLUNK], b"").json()["results"].as_array().unwrap().len(),
        20
    );
    let control =
        call(&emu, "POST", &format!("{NS}/{sid}/control"), &[SPLUNK, FORM], b"action=cancel");
    assert_eq!(control.status, 200);
    assert_eq!(emu.splunk_searches()[1]["results_read"], true);
    assert_eq!(emu.splunk_searches()[1]["cancelled"], "control");
}

#[test]
fn a_slow_export_left_by_its_client_is_seen_aborted() {
    let emu = Emulator::start();
    emu.set_search_row_count(5);
    emu.set_search_delay(Duration::from_secs(5));
    let body = form(&[("search", "search slow"), ("output_mode", "json")]);
    let mut c = connect(&emu);
    let head = format!(
        "POST {NS}/export HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
        SPLUNK.1,
        "application/x-www-form-urlencoded",
        body.len()
    );
    c.get_mut().write_all(head.as_bytes()).unwrap();
    c.get_mut().write_all(&body).unwrap();
    let mut status = String::new();
    c.read_line(&mut status).unwrap();
    assert!(status.contains("200"), "{status}");
    assert_eq!(emu.splunk_searches_running(), 1);
    assert_eq!(emu.splunk_search_peak(), 1);
    drop(c);
    let start = Instant::now();
    while emu.splunk_searches_running() > 0 && start.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(start.elapsed() < Duration::from_secs(3), "the hang-up was not noticed");
    let last = emu.splunk_searches().pop().unwrap();
    assert_eq!((last["completed"].as_bool(), last["aborted"].as_bool()), (Some(false), Some(true)));
}

#[test]
fn soar_action_runs_filter_by_container_and_update_time() {
    let emu = Emulator::start_plain();
    let (c1, c2) = (
        emu.add_soar_container(json!({"name": "a", "label": "events"})),
        emu.add_soar_container(json!({"name": "b", "label": "events"})),
    );
    let a = emu.add_soar_action_run(
        c1,
        json!({"action": "geolocate ip", "app": "MaxMind", "result_summary": {"country": "FR"}}),
    );
    let b = emu.add_soar_action_run(
        c2,
        json!({"action": "block ip", "status": "failed", "message": "denied"}),
    );
    let r = call(&emu, "GET", &format!("/rest/action_run?_filter_container={c1}"), &[SOAR], b"");
    assert_eq!(r.json()["count"], 1);
    assert_eq!(r.json()["data"][0]["action"], "geolocate ip");
    assert_eq!(r.json()["data"][0]["result_summary"]["country"], "FR");
    let both = format!(
        "/rest/action_run?_filter_container__in=%5B{c1},{c2}%5D&page_size=1&page=1&sort=id&order=asc"
    );
    let r = call(&emu, "GET", &both, &[SOAR], b"");
    assert_eq!((r.json()["count"].as_u64(), r.json()["num_pages"].as_u64()), (Some(2), Some(2)));
    assert_eq!(r.json()["data"][0]["id"], b);
    let cursor = emu.soar_action_runs()[1]["update_time"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(2));
    assert!(emu.update_soar_action_run(a, json!({"status": "success", "message": "done"})));
    let newer = format!("/rest/action_run?_filter_update_time__gt=%22{cursor}%22");
    let r = call(&emu, "GET", &newer, &[SOAR], b"");
    assert_eq!(r.json()["count"], 1);
    assert_eq!(r.json()["data"][0]["id"], a);
    let app = call(&emu, "GET", &format!("/rest/app_run?_filter_action_run={b}"), &[SOAR], b"");
    assert_eq!(app.json()["data"][0]["status"], "failed");
    assert_eq!(call(&emu, "GET", "/rest/action_run/99", &[SOAR], b"").status, 404);
    let run = emu.add_soar_playbook_run(c1, "local/enrich", "running");
    emu.finish_soar_playbook_run(run, "success", "enriched 3 artifacts");
    let got = call(&emu, "GET", &format!("/rest/playbook_run/{run}"), &[SOAR], b"").json();
    assert_eq!(
        (got["status"].as_str(), got["message"].as_str()),
        (Some("success"), Some("enriched 3 artifacts"))
    );
    assert!(got["end_time"].is_string());
    let state = call(&emu, "GET", "/_emulator/state", &[], b"").json();
    assert_eq!(state["soar"]["action_runs_count"], 2);
}

#[test]
fn slash_command_envelope_over_socket_mode_and_its_response_url() {
    let emu = Emulator::start_plain();
    emu.start_socket_mode();
    emu.add_slack_user("U123", json!({"id": "U123", "name": "ana"}));
    let open = call(
        &emu,
        "POST",
        "/api/apps.connections.open",
        &[("Authorization", "Bearer xapp-test")],
        b"",
    );
    let url = open.json()["url"].as_str().unwrap().to_string();
    let tcp =
        std::net::TcpStream::connect(url.trim_start_matches("ws://").split('/').next().unwrap())
            .unwrap();
    let (mut ws, _) = tungstenite::client(url.as_str(), tcp).unwrap();
    let hello: Value = serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(hello["type"], "hello");
    let sent = emu.socket_send_slash_command("triage user_activity alice", "U123");
    let got: Value = serde_json::from_str(ws.read().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(got, sent);
    assert_eq!(
        (got["type"].as_str(), got["accepts_response_payload"].as_bool()),
        (Some("slash_commands"), Some(true))
    );
    let p = &got["payload"];
    assert_eq!(
        (p["command"].as_str(), p["text"].as_str()),
        (Some("/stackflow"), Some("triage user_activity alice"))
    );
    assert_eq!((p["user_id"].as_str(), p["user_name"].as_str()), (Some("U123"), Some("ana")));
    assert_eq!(p["channel_id"], emu.slack_channel_id("soc"));
    let ack = json!({"envelope_id": got["envelope_id"]}).to_string();
    ws.send(tungstenite::Message::text(ack)).unwrap();
    let response_url = p["response_url"].as_str().unwrap();
    let path = response_url.strip_prefix(&emu.url()).unwrap();
    assert!(path.starts_with("/commands/T0EMULATOR/"), "{path}");
    let reply = json!({"response_type": "ephemeral", "text": "3 rows"}).to_string();
    assert_eq!(call(&emu, "POST", path, &[JSON_CT], reply.as_bytes()).status, 200);
    assert_eq!(emu.slack_response_url_posts()[0]["text"], "3 rows");
    assert_eq!(emu.slack_response_url_posts()[0]["path"], path);
    let start = Instant::now();
    while emu.socket_acks().is_empty() && start.elapsed() < Duration::from_secs(3) {
        let _ = ws.read();
    }
    assert_eq!(emu.socket_acks()[0].envelope_id, got["envelope_id"].as_str().unwrap());
}
