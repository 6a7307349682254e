//! The emulator's ceiling for the backlog benchmark (`bench/backlog_bench.sh`): what one
//! keep-alive client does when it only posts what a drained `grouping=row` item costs SOAR —
//! `POST /rest/container` (a new source data identifier) then `POST /rest/artifact` with the
//! item's artifacts — and nothing else (no spool, ledger, receipts or logs). The drain's rate
//! divided by this one is the fraction of the ceiling.
//!
//! usage: `soar_ceiling ITEMS URL CA_FILE` with the SOAR token in `SOAR_TOKEN` (never in argv);
//! prints one JSON line `{"items":…,"seconds":…,"items_per_s":…}`.

use stackflow::net::http::{HttpClient, HttpOptions};
use stackflow::settings::TlsSettings;
use std::error::Error;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [items, url, ca] = args.as_slice() else {
        return Err("usage: soar_ceiling ITEMS URL CA_FILE (token in SOAR_TOKEN)".into());
    };
    let items: usize = items.parse()?;
    let token = std::env::var("SOAR_TOKEN").map_err(|_| "SOAR_TOKEN is not set")?;
    let options = HttpOptions {
        tls: TlsSettings { verify: true, ca_file: Some(PathBuf::from(ca)) },
        proxy: None,
        timeout: Duration::from_secs(60),
    };
    let client = HttpClient::new(&options, "soar:ceiling")?;
    let headers = [("ph-auth-token", token.as_str()), ("Content-Type", "application/json")];
    let started = Instant::now();
    for n in 0..items {
        let container = serde_json::json!({
            "name": "Benchmark ceiling", "label": "events", "severity": "medium",
            "source_data_identifier": format!("stackflow-ceiling-{n}"), "description": "",
            "data": {}
        });
        let response = client
            .post(&format!("{url}/rest/container"), &headers, container.to_string().as_bytes())
            .map_err(|error| error.to_string())?;
        let reply: serde_json::Value = response.json().unwrap_or_default();
        let id = reply.get("id").and_then(serde_json::Value::as_u64).ok_or("no container id")?;
        let artifact = serde_json::json!([{
            "container_id": id, "name": "event", "label": "events", "severity": "medium",
            "source_data_identifier": format!("stackflow-ceiling-{n}-0"),
            "cef": {"sourceAddress": format!("10.0.{}.{}", n / 256 % 256, n % 256),
                    "destinationAddress": "10.9.9.9", "suser": "someone"},
            "run_automation": false
        }]);
        let response = client
            .post(&format!("{url}/rest/artifact"), &headers, artifact.to_string().as_bytes())
            .map_err(|error| error.to_string())?;
        if !(200..300).contains(&response.status) {
            return Err(format!("artifact: HTTP {}", response.status).into());
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"items": items, "seconds": seconds, "items_per_s": items as f64 / seconds})
    );
    Ok(())
}
