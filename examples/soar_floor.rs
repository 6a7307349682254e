//! The floor of the alert-action benchmark: the least work that turns a Splunk results file
//! into SOAR artifacts on the wire, with the crates and mapping code the action uses — gunzip +
//! CSV parse (`ResultsReader`, one row value read into again and again), the CEF mapping
//! written as JSON straight into the request body (`mapping::soar::ArtifactWriter`, the
//! action's own mapping code) and a keep-alive ureq/rustls POST of up to 500 artifacts (a row's
//! artifacts never split, as in the action) — and nothing else: no validation pass, receipts,
//! logs, spool or pre-checks.
//!
//! usage: `soar_floor RESULTS.csv.gz URL CA_FILE` with the SOAR token in `SOAR_TOKEN` (never in
//! argv); prints one JSON line `{"rows":…,"artifacts":…,"requests":…}`.

use stackflow::mapping::cef::FieldMapping;
use stackflow::mapping::soar::{self, ArtifactWriter, BATCH_ARTIFACTS};
use stackflow::net::http::{HttpClient, HttpOptions};
use stackflow::settings::TlsSettings;
use stackflow::splunk::results::{Limits, ResultsReader, Row};
use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Posts one JSON body and returns the parsed reply, failing on any non-2xx status.
fn post(
    client: &HttpClient,
    url: &str,
    token: &str,
    body: &[u8],
) -> Result<serde_json::Value, Box<dyn Error>> {
    let headers = [("ph-auth-token", token), ("Content-Type", "application/json")];
    let response = client.post(url, &headers, body).map_err(|error| error.to_string())?;
    if !(200..300).contains(&response.status) {
        return Err(format!("{url}: HTTP {}: {}", response.status, response.body_excerpt()).into());
    }
    Ok(response.json().unwrap_or_default())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path, url, ca] = args.as_slice() else {
        return Err("usage: soar_floor RESULTS.csv.gz URL CA_FILE (token in SOAR_TOKEN)".into());
    };
    let token = std::env::var("SOAR_TOKEN").map_err(|_| "SOAR_TOKEN is not set")?;
    let options = HttpOptions {
        tls: TlsSettings { verify: true, ca_file: Some(PathBuf::from(ca)) },
        proxy: None,
        timeout: Duration::from_secs(60),
    };
    let client = HttpClient::new(&options, "soar:floor")?;
    let container = serde_json::json!({
        "name": "Benchmark floor", "label": "events", "severity": "medium",
        "source_data_identifier": "stackflow-floor", "description": "", "data": {}
    });
    let reply =
        post(&client, &format!("{url}/rest/container"), &token, container.to_string().as_bytes())?;
    let container_id = reply
        .get("id")
        .or_else(|| reply.get("existing_container_id"))
        .and_then(serde_json::Value::as_u64)
        .ok_or("the container reply has no id")?;

    let artifact_url = format!("{url}/rest/artifact");
    // `container_id` opens each artifact's object, as the action splices it in.
    let open = format!("{{\"container_id\":{container_id},");
    let mut writer = ArtifactWriter::new(FieldMapping::default());
    let (mut rows, mut artifacts, mut requests, mut in_body) = (0u64, 0u64, 0u64, 0usize);
    let mut body = Vec::with_capacity(1 << 20);
    body.push(b'[');
    let mut name = String::new();
    let mut reader = ResultsReader::open(Path::new(path), None, Limits::default())?;
    let Some(header) = reader.header().cloned() else {
        return Err("the results file has no header".into());
    };
    let mut row = Row::empty(header);
    while reader.read_into(&mut row)? {
        rows += 1;
        let severity = soar::row_severity(&row);
        name.clear();
        write!(name, "Splunk result {}", row.rid)?;
        // A row's artifacts go in one request, as the action batches them.
        let mark = body.len();
        let added = writer.write(&row, &name, &severity, &mut body, in_body > 0, open.as_bytes());
        if in_body > 0 && in_body + added > BATCH_ARTIFACTS {
            let moved = body.split_off(mark);
            body.push(b']');
            post(&client, &artifact_url, &token, &body)?;
            requests += 1;
            body.truncate(1);
            body.extend_from_slice(&moved[1..]);
            in_body = 0;
        }
        in_body += added;
        artifacts += added as u64;
    }
    if in_body > 0 {
        body.push(b']');
        post(&client, &artifact_url, &token, &body)?;
        requests += 1;
    }
    println!("{{\"rows\":{rows},\"artifacts\":{artifacts},\"requests\":{requests}}}");
    Ok(())
}
