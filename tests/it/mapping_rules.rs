//! PRODUCT §15's mapping rules end to end: the installed actions run as splunkd runs them
//! (payload on stdin, gzip CSV results) against the loopback emulators, and each test checks
//! what the emulators received — redaction before the model, inert outside text in Slack, CEF
//! types that follow the value and one severity per notable in every action, and a results
//! file of 10,000 fields with their `__mv_` columns.

use crate::support::{Cell, SESSION_KEY, SplunkHome, many, one, payload, scheduler_sid};
use serde_json::{Value, json};
use stackflow_emulator::Emulator;

const SLACK_TOKEN: &str = "xoxb-test";
const SOAR_TOKEN: &str = "soar-token";
const STACKFLOW_SECRET: &str = "sf-secret";
const LLM_KEY: &str = "sk-test";
const WEBHOOK: &str = "/prod/api/webhooks/inbound/splunk";

/// One installation with every target (Slack, SOAR, StackFlow, a model) at one emulator.
fn setup() -> (SplunkHome, Emulator) {
    let emulator = Emulator::start();
    let home = SplunkHome::new();
    let ca = home.root.join("emulator-ca.pem");
    emulator.write_ca(&ca).unwrap();
    let url = emulator.url();
    let ca = ca.display();
    home.write_local_conf(&format!(
        "[slack:default]\napi_url = {url}/api\nchannel = #soc-alerts\nca_file = {ca}\n\n\
         [soar:default]\nurl = {url}\nca_file = {ca}\n\n\
         [stackflow:default]\nwebhook_url = {url}{WEBHOOK}\nca_file = {ca}\n\n\
         [llm:default]\nurl = {url}/v1/chat/completions\nmodel = soc-summarizer\nca_file = {ca}\n\n\
         [delivery]\nmax_attempts = 2\nretry_base_s = 0.05\n"
    ));
    emulator.set_secret("stackflow", "slack.default", SLACK_TOKEN);
    emulator.set_secret("stackflow", "soar.default", SOAR_TOKEN);
    emulator.set_secret("stackflow", "stackflow.default", STACKFLOW_SECRET);
    emulator.set_secret("stackflow", "llm.default", LLM_KEY);
    (home, emulator)
}

/// Runs `stanza` on `rows` as splunkd would; `edit` may change the payload first.
fn run_action(
    home: &SplunkHome,
    emulator: &Emulator,
    stanza: &str,
    sid: &str,
    rows: &[Vec<(&str, Cell)>],
    params: Value,
    edit: impl FnOnce(&mut Value),
) -> crate::support::Run {
    let results = home.write_results(sid, rows);
    let mut payload = payload(home, &emulator.url(), sid, &results, params);
    edit(&mut payload);
    let run = home.run_alert(stanza, &payload);
    run.assert_levelled_stderr().assert_no_secret(&[
        SLACK_TOKEN,
        SOAR_TOKEN,
        STACKFLOW_SECRET,
        LLM_KEY,
        SESSION_KEY,
    ]);
    run
}

/// The chat.postMessage bodies Slack accepted.
fn slack_posts(emulator: &Emulator) -> Vec<Value> {
    emulator
        .requests_to("/api/chat.postMessage")
        .into_iter()
        .filter(|request| request.status == 200)
        .map(|request| request.json())
        .collect()
}

#[test]
fn redaction_ends_where_the_value_ends_before_the_model() {
    let (home, emulator) = setup();
    let row = vec![
        ("rule_name", one("Credential in URL")),
        ("severity", one("high")),
        ("message", one("login with password=Tr0ub4dor&3x;Zq9 from the portal")),
        ("url", one("https://portal.example/cb?token=Ab%26Cd%3DEf&next=/home")),
        ("detail", one("{\"secret\": \"s3 cr&t Wq7\", \"user\": \"alice\"}")),
        ("header", one("Authorization: Bearer Xy7.Tok&en+Val")),
    ];
    let sid = scheduler_sid(1);
    let run = run_action(
        &home,
        &emulator,
        "stackflow_slack",
        &sid,
        &[row],
        json!({"account": "default", "summary": "llm"}),
        |_| {},
    );
    run.assert_code(0);
    let calls = emulator.requests_to("/v1/chat/completions");
    assert_eq!(calls.len(), 1, "one model call");
    let prompt = String::from_utf8(calls[0].body.clone()).unwrap();
    for secret in ["Tr0ub4dor", "3x;Zq9", "Ab%26Cd", "Cd%3DEf", "s3 cr", "Wq7", "Xy7.Tok", "en+Val"]
    {
        assert!(!prompt.contains(secret), "{secret:?} reached the model: {prompt}");
    }
    assert!(prompt.contains("<SECRET_"), "placeholders stand in: {prompt}");
    let posted = slack_posts(&emulator);
    assert_eq!(posted.len(), 1);
    let message = posted[0].to_string();
    for secret in ["Tr0ub4dor", "3x;Zq9", "Wq7"] {
        assert!(!message.contains(secret), "{secret:?} in the message: {message}");
    }
}

/// Every mrkdwn text object of a Slack body (`verbatim` checked) and its `text`.
fn mrkdwn_texts(body: &Value) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if map.get("type").and_then(Value::as_str) == Some("mrkdwn") {
                    assert_eq!(map.get("verbatim"), Some(&Value::Bool(true)), "{value}");
                    out.push(map["text"].as_str().unwrap().to_string());
                }
                map.values().for_each(|child| walk(child, out));
            }
            Value::Array(items) => items.iter().for_each(|item| walk(item, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&body["blocks"], &mut out);
    out.push(body["text"].as_str().unwrap().to_string());
    out
}

#[test]
fn outside_text_is_inert_in_slack() {
    let (home, emulator) = setup();
    let injections = ["<!channel>", "<@U123>", "<http://evil.example|click>", "<!here>"];
    let row = vec![
        ("rule_name", one("<!channel> Brute force & more")),
        ("event_id", one("E-1<@U123>")),
        ("severity", one("high")),
        ("user", one("<@U123>")),
        ("src", one("<http://evil.example|click>")),
        ("dest", one("a&b <!here>")),
        ("count", one("5")),
    ];
    let sid = scheduler_sid(2);
    let run = run_action(
        &home,
        &emulator,
        "stackflow_slack",
        &sid,
        &[row],
        json!({"account": "default", "mode": "row", "playbooks": "repo/<!channel>&x"}),
        |payload| payload["search_name"] = json!("<!here> nightly & weekly"),
    );
    run.assert_code(0);
    let posted = slack_posts(&emulator);
    assert_eq!(posted.len(), 1);
    let body = &posted[0];
    let texts = mrkdwn_texts(body);
    assert!(texts.len() > 3, "{body}");
    for text in &texts {
        for injection in injections {
            assert!(!text.contains(injection), "{injection} arrived raw in {text:?}");
        }
        let rest = text.replace("&amp;", "").replace("&lt;", "").replace("&gt;", "");
        assert!(!rest.contains('&'), "a bare & in {text:?}");
    }
    let all = texts.join("\n");
    assert!(all.contains("&lt;!channel&gt; Brute force &amp; more"), "{all}");
    assert!(all.contains("&lt;!here&gt; nightly &amp; weekly"), "{all}");
    assert!(all.contains("&lt;@U123&gt;"), "{all}");
    // Plain text (header, button labels) carries the same outside text escaped.
    assert_eq!(
        body["blocks"][0]["text"]["text"],
        "🔴 HIGH · &lt;!channel&gt; Brute force &amp; more"
    );
    let flat = body.to_string();
    assert!(flat.contains("Contain: repo/&lt;!channel&gt;&amp;x"), "{flat}");
}

/// A notable from ES's endpoint data: names where addresses are expected, process and file
/// fields, Splunk-internal fields, and a multivalue severity.
fn endpoint_notable() -> Vec<(&'static str, Cell)> {
    vec![
        ("_time", one("1763750000")),
        ("_raw", one("process started")),
        ("_cd", one("12:345")),
        ("_bkt", one("main~12~ABC")),
        ("_si", one("idx01,main")),
        ("_serial", one("0")),
        ("_indextime", one("1763750001")),
        ("_sourcetype", one("XmlWinEventLog")),
        ("splunk_server", one("idx01")),
        ("linecount", one("1")),
        ("punct", one("__:")),
        ("date_hour", one("9")),
        ("date_wday", one("monday")),
        ("timestartpos", one("0")),
        ("timeendpos", one("19")),
        ("event_id", one("EVT-42")),
        ("rule_name", one("Suspicious Office child process")),
        ("severity", many(&["low", "critical", "medium"])),
        ("dest", one("finance-db")),
        ("src", one("10.0.0.5")),
        ("dvc", one("edr01.corp")),
        ("process_name", one("powershell.exe")),
        ("process", one("powershell.exe -enc AAAA")),
        ("parent_process_name", one("winword.exe")),
        ("process_hash", one("9f86d081884c7d659a2feaa0c55ad015")),
        ("file_name", one("invoice.docm")),
        ("file_path", one("C:\\Users\\jdoe\\Downloads\\invoice.docm")),
        ("url", one("http://evil.example/payload")),
        ("registry_path", one("HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run")),
    ]
}

#[test]
fn cef_types_follow_the_value_and_one_notable_has_one_severity_everywhere() {
    let (home, emulator) = setup();
    let rows = [endpoint_notable()];
    run_action(&home, &emulator, "stackflow_soar", &scheduler_sid(3), &rows, json!({}), |_| {})
        .assert_code(0);
    let containers: Vec<Value> = emulator
        .requests_to("/rest/container")
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.json())
        .collect();
    assert_eq!(containers.len(), 1);
    assert_eq!(containers[0]["severity"], "high", "critical is SOAR's high");
    let artifacts: Vec<Value> = emulator
        .requests_to("/rest/artifact")
        .into_iter()
        .filter(|r| r.method == "POST")
        .flat_map(|r| match r.json() {
            Value::Array(items) => items,
            one => vec![one],
        })
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    let artifact = &artifacts[0];
    assert_eq!(artifact["severity"], "high");
    let expected = [
        ("destinationHostName", "finance-db", Some("host name")),
        ("sourceAddress", "10.0.0.5", Some("ip")),
        ("deviceHostname", "edr01.corp", Some("host name")),
        ("deviceProcessName", "powershell.exe", Some("process name")),
        ("sourceProcessName", "winword.exe", Some("process name")),
        ("fileHash", "9f86d081884c7d659a2feaa0c55ad015", Some("hash")),
        ("fileName", "invoice.docm", Some("file name")),
        ("filePath", "C:\\Users\\jdoe\\Downloads\\invoice.docm", Some("file path")),
        ("requestURL", "http://evil.example/payload", Some("url")),
        ("registryPath", "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run", None),
    ];
    for (key, value, contains) in expected {
        assert_eq!(artifact["cef"][key], value, "{key}: {artifact}");
        match contains {
            Some(contains) => assert_eq!(artifact["cef_types"][key], json!([contains]), "{key}"),
            None => assert!(artifact["cef_types"].get(key).is_none(), "{key}"),
        }
    }
    assert!(artifact["cef"].get("destinationAddress").is_none(), "{artifact}");
    assert!(artifact["cef"].get("dvc").is_none(), "{artifact}");
    // `process_name` took deviceProcessName first; `process` (the command line) stays in data.
    assert_eq!(artifact["data"]["process"], "powershell.exe -enc AAAA");
    assert_eq!(artifact["data"]["_time"], "1763750000");
    assert_eq!(artifact["data"]["_raw"], "process started");
    let flat = artifact.to_string();
    for internal in [
        "_cd",
        "_bkt",
        "_si",
        "_serial",
        "_indextime",
        "_sourcetype",
        "splunk_server",
        "linecount",
        "punct",
        "date_hour",
        "date_wday",
        "timestartpos",
        "timeendpos",
    ] {
        assert!(!flat.contains(&format!("\"{internal}\"")), "{internal} sent: {flat}");
    }

    // The same notable to Slack and StackFlow: the same (highest) severity.
    run_action(&home, &emulator, "stackflow_slack", &scheduler_sid(4), &rows, json!({}), |_| {})
        .assert_code(0);
    let posted = slack_posts(&emulator);
    assert_eq!(posted.len(), 1);
    let header = posted[0]["blocks"][0]["text"]["text"].as_str().unwrap().to_string();
    assert!(header.starts_with("🚨 CRITICAL · "), "{header}");
    run_action(&home, &emulator, "stackflow_incident", &scheduler_sid(5), &rows, json!({}), |_| {})
        .assert_code(0);
    let incidents: Vec<Value> = emulator.requests_to(WEBHOOK).iter().map(|r| r.json()).collect();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0]["severity"], "critical", "{}", incidents[0]);
    assert_eq!(incidents[0]["stackflow_priority"], "P1", "{}", incidents[0]);
}

#[test]
fn ten_thousand_fields_with_their_mv_columns_are_accepted() {
    let (home, emulator) = setup();
    let names: Vec<String> = (0..10_000).map(|index| format!("f{index:05}")).collect();
    let row: Vec<(&str, Cell)> =
        names.iter().map(|name| (name.as_str(), one(&format!("v-{name}")))).collect();
    let sid = scheduler_sid(6);
    let results = home.write_results(&sid, &[row]);
    // The file Splunk writes: every field and its `__mv_` column, 20,000 columns.
    let header = {
        use std::io::Read;
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&results).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        text.lines().next().unwrap().to_string()
    };
    assert_eq!(header.split(',').count(), 20_000);
    assert_eq!(
        header.split(',').filter(|name| name.trim_matches('"').starts_with("__mv_")).count(),
        10_000
    );
    let payload = payload(&home, &emulator.url(), &sid, &results, json!({}));
    let run = home.run_alert("stackflow_soar", &payload);
    run.assert_code(0).assert_levelled_stderr();
    let artifacts: Vec<Value> = emulator
        .requests_to("/rest/artifact")
        .into_iter()
        .filter(|r| r.method == "POST")
        .flat_map(|r| match r.json() {
            Value::Array(items) => items,
            one => vec![one],
        })
        .collect();
    assert_eq!(artifacts.len(), 1);
    assert_eq!(artifacts[0]["data"]["f09999"], "v-f09999");
    assert_eq!(artifacts[0]["data"]["f00000"], "v-f00000");
}
