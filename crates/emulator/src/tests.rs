//! End-to-end tests of every endpoint over real sockets, using a tiny raw HTTP/1.1 client
//! (plain TCP or rustls with the emulator's CA).

#[path = "tests_part3.rs"]
mod part3;

use crate::{Emulator, Fault};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::{Value, json};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}
type Conn = BufReader<Box<dyn Stream>>;

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&self.body)))
    }
    fn header(&self, n: &str) -> Option<&str> {
        crate::http::header(&self.headers, n)
    }
}

fn connect(emu: &Emulator) -> Conn {
    let tcp = TcpStream::connect(("127.0.0.1", emu.port())).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let stream: Box<dyn Stream> = if emu.url().starts_with("https://") {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(emu.ca_pem().as_bytes()).unwrap()).unwrap();
        let cfg =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        Box::new(StreamOwned::new(ClientConnection::new(Arc::new(cfg), name).unwrap(), tcp))
    } else {
        Box::new(tcp)
    };
    BufReader::new(stream)
}

fn send(
    c: &mut Conn,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Resp> {
    let mut out = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let w = c.get_mut();
    w.write_all(out.as_bytes())?;
    w.write_all(body)?;
    w.flush()?;
    read_resp(c)
}

fn read_resp(c: &mut Conn) -> io::Result<Resp> {
    let mut line = String::new();
    if c.read_line(&mut line)? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "eof"));
    }
    let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        c.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    if crate::http::header(&headers, "transfer-encoding") == Some("chunked") {
        let body = crate::http::read_chunked(c)?;
        return Ok(Resp { status, headers, body });
    }
    let len: usize = crate::http::header(&headers, "content-length").unwrap().parse().unwrap();
    let mut body = vec![0; len];
    c.read_exact(&mut body)?;
    Ok(Resp { status, headers, body })
}

fn call(emu: &Emulator, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    send(&mut connect(emu), method, path, headers, body).expect("request")
}

const SPLUNK: (&str, &str) = ("Authorization", "Splunk test-session-key");
const SOAR: (&str, &str) = ("ph-auth-token", "soar-token");
const JSON_CT: (&str, &str) = ("Content-Type", "application/json");

#[test]
fn tls_keep_alive_recording_and_unknown_paths() {
    let emu = Emulator::start();
    assert!(emu.url().starts_with("https://127.0.0.1:"));
    let mut c = connect(&emu);
    assert_eq!(send(&mut c, "GET", "/nope?x=1%202", &[("X-Test", "a")], b"").unwrap().status, 404);
    assert_eq!(send(&mut c, "GET", "/nope2", &[], b"").unwrap().status, 404);
    let reqs = emu.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!((reqs[0].header("x-test"), reqs[0].status), (Some("a"), 404));
    assert_eq!(reqs[0].query_pairs(), vec![("x".to_string(), "1 2".to_string())]);
    assert_eq!(emu.requests_to("/nope2").len(), 1);
    emu.clear_requests();
    assert!(emu.requests().is_empty());
}

#[test]
fn chunked_request_body() {
    let emu = Emulator::start_plain();
    let mut c = connect(&emu);
    let head = "POST /api/chat.postMessage HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\nAuthorization: Bearer xoxb-test\r\n\r\n";
    let body = r#"{"channel":"C0123456789","text":"hi"}"#;
    let (a, b) = body.split_at(10);
    let wire = format!("{head}{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n", a.len(), b.len());
    c.get_mut().write_all(wire.as_bytes()).unwrap();
    let r = read_resp(&mut c).unwrap();
    assert_eq!(r.json()["ok"], true, "{}", r.json());
    assert_eq!(emu.requests()[0].json()["text"], "hi");
}

#[test]
fn splunkd_passwords_kv_and_notables() {
    let emu = Emulator::start();
    emu.set_secret("stackflow", "soar_token", "s3cret");
    let one =
        "/servicesNS/nobody/stackflow/storage/passwords/stackflow%3Asoar_token%3A?output_mode=json";
    assert_eq!(call(&emu, "GET", one, &[], b"").status, 401);
    let bad = call(&emu, "GET", one, &[("Authorization", "Splunk wrong")], b"");
    assert_eq!(bad.json()["messages"][0]["text"], "call not properly authenticated");
    let r = call(&emu, "GET", one, &[SPLUNK], b"");
    assert_eq!(r.json()["entry"][0]["content"]["clear_password"], "s3cret");
    assert_eq!(r.json()["entry"][0]["name"], "stackflow:soar_token:");
    let missing = call(
        &emu,
        "GET",
        "/servicesNS/nobody/stackflow/storage/passwords/x%3Ay%3A",
        &[SPLUNK],
        b"",
    );
    assert_eq!(missing.status, 404);
    let list = call(
        &emu,
        "GET",
        "/servicesNS/nobody/stackflow/storage/passwords?search=soar&count=0&output_mode=json",
        &[SPLUNK],
        b"",
    );
    assert_eq!(list.json()["entry"].as_array().unwrap().len(), 1);
    emu.fault(
        "/servicesNS/nobody/stackflow/storage/passwords",
        Fault::Status { status: 403, body: "{}".into(), headers: vec![] },
        1,
    );
    assert_eq!(call(&emu, "GET", one, &[SPLUNK], b"").status, 403);

    let base = "/servicesNS/nobody/stackflow/storage/collections/data/sf_state";
    let batch = json!([{"_key": "a", "event_id": "e1", "n": 1}, {"_key": "b", "event_id": "e2"}, {"event_id": "e3"}]);
    let r = call(
        &emu,
        "POST",
        &format!("{base}/batch_save"),
        &[SPLUNK, JSON_CT],
        batch.to_string().as_bytes(),
    );
    assert_eq!(r.json().as_array().unwrap().len(), 3);
    let upd = json!([{"_key": "a", "event_id": "e1", "n": 2}]);
    call(
        &emu,
        "POST",
        &format!("{base}/batch_save"),
        &[SPLUNK, JSON_CT],
        upd.to_string().as_bytes(),
    );
    assert_eq!(emu.kv_records("sf_state").len(), 3);
    let r = call(&emu, "POST", base, &[SPLUNK, JSON_CT], br#"{"event_id":"e4"}"#);
    assert_eq!(r.status, 201);
    let key = r.json()["_key"].as_str().unwrap().to_string();
    let r = call(
        &emu,
        "POST",
        &format!("{base}/{key}"),
        &[SPLUNK, JSON_CT],
        br#"{"event_id":"e4","x":true}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(call(&emu, "GET", &format!("{base}/{key}"), &[SPLUNK], b"").json()["x"], true);
    assert_eq!(call(&emu, "GET", &format!("{base}/zzz"), &[SPLUNK], b"").status, 404);
    let q = |query: &str| {
        let path = format!(
            "{base}?query={}&output_mode=json",
            query.replace('"', "%22").replace(' ', "%20")
        );
        call(&emu, "GET", &path, &[SPLUNK], b"").json().as_array().unwrap().len()
    };
    assert_eq!(q(r#"{"_key":{"$in":["a","b","nope"]}}"#), 2);
    // Answered from the key index: each record once, whatever the keys' order or repeats.
    assert_eq!(q(r#"{"_key":{"$in":["b","a","b"]}}"#), 2);
    assert_eq!(q(r#"{"_key":"b"}"#), 1);
    assert_eq!(q(r#"{"event_id":{"$in":["e3"]}}"#), 1);
    assert_eq!(q(r#"{"$or":[{"event_id":"e1"},{"event_id":"e4"}]}"#), 2);
    assert_eq!(q(r#"{"event_id":"e1","n":2}"#), 1);
    assert_eq!(emu.kv_records("sf_state")[0]["n"], 2);
    // `fields` keeps only those (and `_key`); DELETE with a query removes only what matches,
    // and the other documents stay readable by key and in insertion order.
    let path = format!("{base}?query=%7B%7D&fields=event_id&output_mode=json");
    let projected = call(&emu, "GET", &path, &[SPLUNK], b"").json();
    assert_eq!(projected[0], json!({"_key": "a", "event_id": "e1"}));
    let doomed = r#"{"_key":{"$in":["a","nope"]}}"#.replace('"', "%22");
    let r = call(&emu, "DELETE", &format!("{base}?query={doomed}"), &[SPLUNK], b"");
    assert_eq!(r.status, 200);
    let keys: Vec<Value> = emu.kv_records("sf_state").iter().map(|r| r["_key"].clone()).collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert_eq!(keys[0], "b");
    assert_eq!(call(&emu, "GET", &format!("{base}/a"), &[SPLUNK], b"").status, 404);
    assert_eq!(call(&emu, "GET", &format!("{base}/{key}"), &[SPLUNK], b"").status, 200);

    let form = "ruleUIDs=id%401&ruleUIDs=id2&status=5&comment=closed+by+StackFlow&output_mode=json";
    let r = call(&emu, "POST", "/services/notable_update", &[SPLUNK], form.as_bytes());
    assert_eq!(r.json()["message"], "2 event(s) updated successfully");
    assert_eq!(emu.notable_updates()[0][0], ("ruleUIDs".to_string(), "id@1".to_string()));
    assert_eq!(emu.notable_status("id2").as_deref(), Some("5"));
    emu.set_notable_status("id3", "1");
    assert_eq!(emu.notable_status("id3").as_deref(), Some("1"));
}

#[test]
fn soar_containers_artifacts_lists_and_playbooks() {
    let emu = Emulator::start();
    let post = |path: &str, body: Value| {
        call(&emu, "POST", path, &[SOAR, JSON_CT], body.to_string().as_bytes())
    };
    let get = |path: &str| call(&emu, "GET", path, &[SOAR], b"");
    let r = call(&emu, "POST", "/rest/container", &[("ph-auth-token", "bad")], b"{}");
    assert_eq!((r.status, r.json()["message"].as_str()), (401, Some("Invalid token")));
    let r = post("/rest/container", json!({"name": "x", "label": "bogus"}));
    assert_eq!(
        (r.status, r.json()["message"].as_str()),
        (400, Some("bogus is not a known label."))
    );
    assert_eq!(
        post("/rest/container", json!({"name": "x", "label": "events", "severity": "urgent"}))
            .status,
        400
    );
    assert_eq!(post("/rest/container", json!({"label": "events"})).status, 400);
    let c = json!({"name": "c1", "label": "events", "severity": "high", "sensitivity": "amber", "source_data_identifier": "sdi-1",
                   "artifacts": [{"name": "a", "cef": {"sourceAddress": "1.2.3.4"}, "cef_types": {"sourceAddress": ["ip"]}, "source_data_identifier": "sdi-1"}]});
    let r = post("/rest/container", c.clone());
    assert_eq!(
        (r.status, r.json()["success"].clone(), r.json()["id"].clone()),
        (200, json!(true), json!(1))
    );
    assert_eq!(r.json()["new_artifact_ids"], json!([1]));
    let dup = post("/rest/container", c);
    assert_eq!(
        (dup.status, dup.json()["existing_container_id"].clone(), dup.json()["failed"].clone()),
        (400, json!(1), json!(true))
    );

    let arts = json!([
        {"container_id": 1, "name": "ok", "cef": {"a": "1"}, "source_data_identifier": "sdi-1"},
        {"container_id": 99, "name": "no container"},
        {"container_id": 1, "cef": {"a": "1"}, "cef_types": {"b": ["ip"]}},
        {"container_id": 1, "cef": {"a": "1"}, "cef_types": {"a": "ip"}},
    ]);
    let r = post("/rest/artifact", arts).json();
    assert_eq!(r[0]["success"], true);
    assert!(r[1]["failed"] == true && r[2]["failed"] == true && r[3]["failed"] == true, "{r}");
    assert_eq!(post("/rest/artifact", json!({"name": "no cid"})).status, 400);
    emu.set_soar_artifact_dedupe(true);
    let r = post("/rest/artifact", json!({"container_id": 1, "source_data_identifier": "sdi-1"}));
    assert_eq!((r.status, r.json()["existing_artifact_id"].clone()), (400, json!(1)));
    assert_eq!(emu.soar_artifacts().len(), 2);
    assert_eq!(emu.soar_containers()[0]["artifact_count"], 2);

    let seeded = emu.add_soar_container(json!({"name": "seed", "label": "events", "status": "closed", "owner_name": "bob", "source_data_identifier": "s'2"}));
    assert_eq!(seeded, 2);
    assert_eq!(get("/rest/container/2").json()["owner_name"], "bob");
    assert_eq!(get("/rest/container/9").status, 404);
    let l = get("/rest/container?_filter_source_data_identifier=%22sdi-1%22&page_size=1").json();
    assert_eq!((l["count"].clone(), l["data"][0]["id"].clone()), (json!(1), json!(1)));
    let l =
        get("/rest/container?_filter_id__in=[1,%202]&page_size=1&page=1&sort=id&order=desc").json();
    assert_eq!(
        (l["count"].clone(), l["num_pages"].clone(), l["data"][0]["id"].clone()),
        (json!(2), json!(2), json!(1))
    );
    let l = get(
        "/rest/container?_filter_source_data_identifier__in=['sdi-1','x']&_filter_status='new'",
    )
    .json();
    assert_eq!(l["count"], 1);
    let l = get("/rest/artifact?_filter_container=1&page_size=0").json();
    assert_eq!((l["count"].clone(), l["num_pages"].clone()), (json!(2), json!(1)));
    assert_eq!(get("/rest/container/1/artifacts?page_size=0").json()["count"], 2);
    let r = post("/rest/container/1", json!({"status": "closed"}));
    assert_eq!(r.status, 200);
    assert!(emu.soar_containers()[0]["close_time"].is_string());

    assert_eq!(
        post("/rest/playbook_run", json!({"container_id": 7, "playbook_id": 1, "run": true}))
            .status,
        404
    );
    let r = post(
        "/rest/playbook_run",
        json!({"container_id": 1, "playbook_id": "local/triage", "scope": "new", "run": true}),
    );
    assert_eq!(r.json(), json!({"playbook_run_id": "1", "received": true}));
    assert_eq!(get("/rest/playbook_run/1").json()["status"], "running");
    emu.set_soar_playbook_run_status("1", "success");
    assert_eq!(get("/rest/playbook_run/1").json()["status"], "success");
    assert_eq!(get("/rest/container/1/playbook_runs").json()["count"], 1);
    assert_eq!(
        get("/rest/playbook_run?_filter_container=1&sort=id&order=desc").json()["data"][0]["id"],
        1
    );
    assert_eq!(emu.soar_playbook_runs().len(), 1);
}

#[test]
fn stackflow_webhook_and_incidents() {
    let emu = Emulator::start();
    let hook = "/prod/api/webhooks/inbound/splunk";
    let payload = json!({"search_name": "Brute force", "stackflow_priority": "P2", "message": "m", "stackflow_assignment_group": "SOC"});
    let r = call(&emu, "POST", hook, &[JSON_CT], payload.to_string().as_bytes());
    assert_eq!((r.status, r.json()["code"].as_str()), (401, Some("UNAUTHORIZED")));
    assert!(r.json()["requestId"].is_string() && r.header("x-ratelimit-limit").is_some());
    let secret = ("X-StackFlow-Secret", "sf-secret");
    assert_eq!(call(&emu, "POST", hook, &[secret, JSON_CT], b"{not json").status, 400);
    let r = call(&emu, "POST", hook, &[secret, JSON_CT], payload.to_string().as_bytes());
    assert_eq!(r.status, 201);
    assert_eq!(
        r.json(),
        json!({"id": "INC0001001", "number": "INC0001001", "state": "new", "priority": "P2"})
    );
    for h in
        ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Window"]
    {
        assert!(r.header(h).is_some(), "{h}");
    }
    let inc = &emu.stackflow_incidents()[0];
    assert_eq!(
        (inc["assignment_group"].as_str(), inc["payload"]["message"].as_str()),
        (Some("SOC"), Some("m"))
    );
    emu.set_stackflow_webhook_response(200, None);
    let r = call(&emu, "POST", hook, &[secret, JSON_CT], payload.to_string().as_bytes());
    assert_eq!((r.status, r.body.len()), (200, 0));

    emu.add_stackflow_incident(json!({"id": "INC9", "short_description": "seed", "priority": "P1", "state": "resolved", "assigned_to": "a@b"}));
    let bearer = ("Authorization", "Bearer sf-api-token");
    assert_eq!(call(&emu, "GET", "/prod/api/incidents/INC9", &[], b"").status, 401);
    let r = call(&emu, "GET", "/prod/api/incidents/INC9", &[bearer], b"");
    assert_eq!(
        (r.json()["state"].as_str(), r.json()["number"].as_str()),
        (Some("resolved"), Some("INC9"))
    );
    let r = call(&emu, "GET", "/prod/api/incidents/INC404", &[bearer], b"");
    assert_eq!((r.status, r.json()["error"].as_str()), (404, Some("Incident not found")));
    let r =
        call(&emu, "GET", "/prod/api/incidents?ids=INC9,INC0001001&limit=1", &[bearer], b"").json();
    assert_eq!(
        (r["total"].clone(), r["data"].as_array().unwrap().len(), r["page"].clone()),
        (json!(2), 1, json!(1))
    );
    let r = call(&emu, "GET", "/prod/api/incidents?state=resolved", &[bearer], b"").json();
    assert_eq!(r["total"], 1);
}

#[test]
fn slack_post_update_validation_and_rate_limit() {
    let emu = Emulator::start();
    let auth = ("Authorization", "Bearer xoxb-test");
    let post = |body: Value| {
        call(&emu, "POST", "/api/chat.postMessage", &[auth, JSON_CT], body.to_string().as_bytes())
            .json()
    };
    let r = call(
        &emu,
        "POST",
        "/api/chat.postMessage",
        &[("Authorization", "Bearer nope"), JSON_CT],
        b"{\"channel\":\"C1\"}",
    );
    assert_eq!((r.status, r.json()["error"].as_str()), (200, Some("invalid_auth")));
    let r1 = post(
        json!({"channel": "#soc", "text": "hi", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "H"}}]}),
    );
    assert_eq!(r1["ok"], true, "{r1}");
    assert!(r1["channel"].as_str().unwrap().starts_with('C'));
    let r2 = call(
        &emu,
        "POST",
        "/api/chat.postMessage",
        &[],
        b"token=xoxb-test&channel=C0123456789&text=a+b",
    )
    .json();
    assert_eq!(r2["ok"], true);
    assert_ne!(r1["ts"], r2["ts"]);
    let ts = r2["ts"].as_str().unwrap();
    assert!(ts.split_once('.').is_some_and(|(_, f)| f.len() == 6));
    let long = "x".repeat(151);
    for bad in [
        json!([{"type": "header", "text": {"type": "plain_text", "text": long}}]),
        json!(vec![json!({"type": "divider"}); 51]),
        json!([{"type": "section", "fields": vec![json!({"type": "mrkdwn", "text": "f"}); 11]}]),
        json!([{"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "x".repeat(76)}, "value": "v"}]}]),
    ] {
        assert_eq!(
            post(json!({"channel": "C0123456789", "text": "t", "blocks": bad}))["error"],
            "invalid_blocks"
        );
    }
    let u = call(
        &emu,
        "POST",
        "/api/chat.update",
        &[auth, JSON_CT],
        json!({"channel": "C0123456789", "ts": ts, "text": "new"}).to_string().as_bytes(),
    );
    assert_eq!(u.json()["ok"], true);
    assert_eq!(post(json!({"channel": "C0123456789", "ts": "1.000001", "text": "x"}))["ok"], true);
    let missing = call(
        &emu,
        "POST",
        "/api/chat.update",
        &[auth, JSON_CT],
        br#"{"channel":"C0123456789","ts":"1.2","text":"x"}"#,
    );
    assert_eq!(missing.json()["error"], "message_not_found");
    assert_eq!(emu.slack_messages().len(), 4);
    assert_eq!(emu.slack_messages()[2]["text"], "new");

    emu.set_slack_channel_rate_limit(true);
    assert_eq!(post(json!({"channel": "C9999999999", "text": "1"}))["ok"], true);
    let r = call(
        &emu,
        "POST",
        "/api/chat.postMessage",
        &[auth, JSON_CT],
        br#"{"channel":"C9999999999","text":"2"}"#,
    );
    assert_eq!(
        (r.status, r.header("retry-after"), r.json()["error"].as_str()),
        (429, Some("1"), Some("ratelimited"))
    );
    emu.set_slack_channel_rate_limit(false);
    emu.set_slack_known_channels(&["#soc"]);
    assert_eq!(post(json!({"channel": "#other", "text": "x"}))["error"], "channel_not_found");
    assert_eq!(post(json!({"channel": "soc", "text": "x"}))["ok"], true);
}

#[test]
fn faults_latency_and_recording() {
    let emu = Emulator::start();
    let p = "/rest/container/1";
    emu.fault(
        "/rest/",
        Fault::Status {
            status: 503,
            body: "down".into(),
            headers: vec![("X-A".into(), "b".into())],
        },
        1,
    );
    emu.fault("/rest/", Fault::RetryAfter { status: 429, seconds: 7 }, 1);
    let r = call(&emu, "GET", p, &[SOAR], b"");
    assert_eq!((r.status, r.body.as_slice(), r.header("x-a")), (503, &b"down"[..], Some("b")));
    let r = call(&emu, "GET", p, &[SOAR], b"");
    assert_eq!(
        (r.status, r.header("retry-after"), r.json()["failed"].clone()),
        (429, Some("7"), json!(true))
    );
    assert_eq!(call(&emu, "GET", p, &[SOAR], b"").status, 404);

    emu.fault("/api/", Fault::ResetMidResponse, 1);
    assert!(send(&mut connect(&emu), "POST", "/api/chat.postMessage", &[], b"").is_err());
    emu.fault("/api/", Fault::CloseWithoutResponse, 1);
    assert!(send(&mut connect(&emu), "POST", "/api/chat.postMessage", &[], b"").is_err());
    emu.fault("/api/", Fault::Delay(Duration::from_millis(300)), 1);
    let t = Instant::now();
    assert_eq!(call(&emu, "POST", "/api/chat.postMessage", &[], b"").status, 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    emu.set_latency("/services/", Duration::from_millis(200));
    let t = Instant::now();
    call(&emu, "GET", "/services/x", &[], b"");
    assert!(t.elapsed() >= Duration::from_millis(200));
    let statuses: Vec<u16> = emu.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![503, 429, 404, 0, 0, 200, 401]);
}

#[test]
fn stop_and_restart_same_port_keeps_state_and_ca() {
    let emu = Emulator::start();
    let id = emu.add_soar_container(json!({"name": "x", "label": "events"}));
    let mut idle = connect(&emu);
    assert_eq!(send(&mut idle, "GET", "/rest/container/1", &[SOAR], b"").unwrap().status, 200);
    emu.stop();
    assert!(TcpStream::connect(("127.0.0.1", emu.port())).is_err());
    assert!(send(&mut idle, "GET", "/rest/container/1", &[SOAR], b"").is_err());
    let again = emu.restart_same_port();
    assert_eq!((again.port(), again.ca_pem()), (emu.port(), emu.ca_pem()));
    assert_eq!(
        call(&again, "GET", &format!("/rest/container/{id}"), &[SOAR], b"").json()["name"],
        "x"
    );
    assert_eq!(emu.requests().len(), 2);
}

#[test]
fn control_endpoints() {
    let emu = Emulator::start_plain();
    assert!(emu.url().starts_with("http://") && emu.ca_pem().is_empty());
    let ctl =
        |path: &str, body: Value| call(&emu, "POST", path, &[JSON_CT], body.to_string().as_bytes());
    assert_eq!(
        ctl("/_emulator/secret", json!({"realm": "r", "username": "u", "password": "p"})).status,
        200
    );
    let r = call(
        &emu,
        "GET",
        "/servicesNS/nobody/stackflow/storage/passwords/r%3Au%3A",
        &[SPLUNK],
        b"",
    );
    assert_eq!(r.json()["entry"][0]["content"]["clear_password"], "p");
    ctl(
        "/_emulator/fault",
        json!({"path_prefix": "/rest/", "fault": {"type": "status", "status": 502, "body": "x"}, "times": 1}),
    );
    assert_eq!(call(&emu, "GET", "/rest/container", &[SOAR], b"").status, 502);
    ctl("/_emulator/config", json!({"soar_token": "t2"}));
    call(
        &emu,
        "POST",
        "/rest/container",
        &[("ph-auth-token", "t2")],
        br#"{"name":"n","label":"events"}"#,
    );
    let st = call(&emu, "GET", "/_emulator/state", &[], b"").json();
    assert_eq!(st["soar"]["containers_count"], 1);
    let reqs = call(&emu, "GET", "/_emulator/requests", &[], b"").json();
    assert_eq!(reqs.as_array().unwrap().len(), 3);
    assert_eq!(reqs[2]["body"], r#"{"name":"n","label":"events"}"#);
    ctl("/_emulator/reset", json!({}));
    assert!(emu.requests().is_empty() && emu.soar_containers().is_empty());
}

#[test]
fn slack_auth_test_checks_the_token_and_posts_nothing() {
    let emu = Emulator::start();
    let ok = call(&emu, "POST", "/api/auth.test", &[("Authorization", "Bearer xoxb-test")], b"");
    assert_eq!((ok.status, ok.json()["ok"].as_bool()), (200, Some(true)));
    assert_eq!(ok.json()["team"], "Emulator Workspace");
    let form = call(&emu, "POST", "/api/auth.test", &[], b"token=xoxb-test").json();
    assert_eq!(form["ok"], true);
    let bad = call(&emu, "POST", "/api/auth.test", &[("Authorization", "Bearer nope")], b"");
    assert_eq!(bad.json()["error"], "invalid_auth");
    assert_eq!(call(&emu, "POST", "/api/auth.test", &[], b"").json()["error"], "not_authed");
    assert!(emu.slack_messages().is_empty());
}
