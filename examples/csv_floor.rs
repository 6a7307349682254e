//! The floor of the `| stackflowsync` benchmark: how long it takes merely to gunzip the Splunk 6.3
//! `sum.map` recording and parse its execute chunk's CSV with the `csv` crate (a `ByteRecord`
//! loop), and how long the SCP v2 module's decode + re-encode of that body takes.
//!
//! usage: `cargo run --release --example csv_floor [RECORDING.gz] [REPEATS]`; prints one JSON
//! line with the best of REPEATS (default 3) runs of each step, in seconds.

use std::error::Error;
use std::io::{BufRead, BufReader, Read};
use std::time::Instant;

/// The body of the first execute chunk of an SCP v2 request stream.
fn execute_body(stream: &[u8]) -> Result<Vec<u8>, Box<dyn Error>> {
    let mut input = BufReader::new(stream);
    while let Some(chunk) = stackflow::splunk::chunked::read_chunk(&mut input)? {
        if chunk.metadata_str("action") == Some("execute") {
            return Ok(chunk.body);
        }
    }
    let _ = input.fill_buf()?;
    Err("the recording has no execute chunk".into())
}

fn gunzip(gz: &[u8]) -> Result<Vec<u8>, Box<dyn Error>> {
    let mut data = Vec::with_capacity(gz.len() * 8);
    flate2::read::GzDecoder::new(gz).read_to_end(&mut data)?;
    Ok(data)
}

/// Parses every record; returns (records after the header, fields seen).
fn parse(body: &[u8]) -> Result<(usize, usize), Box<dyn Error>> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(body);
    let mut record = csv::ByteRecord::new();
    let (mut records, mut fields) = (0usize, 0usize);
    while reader.read_byte_record(&mut record)? {
        records += 1;
        fields += record.len();
    }
    Ok((records.saturating_sub(1), fields))
}

fn best<T>(
    repeats: usize,
    mut step: impl FnMut() -> Result<T, Box<dyn Error>>,
) -> Result<(f64, T), Box<dyn Error>> {
    let mut best: Option<(f64, T)> = None;
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        let value = step()?;
        let seconds = start.elapsed().as_secs_f64();
        if best.as_ref().is_none_or(|(fastest, _)| seconds < *fastest) {
            best = Some((seconds, value));
        }
    }
    best.ok_or_else(|| "no run".into())
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| {
        format!("{}/tests/fixtures/scpv2/sum.map.input.gz", env!("CARGO_MANIFEST_DIR"))
    });
    let repeats: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(3);
    let gz = std::fs::read(&path)?;

    let (gunzip_parse, (records, fields)) = best(repeats, || parse(&execute_body(&gunzip(&gz)?)?))?;
    let stream = gunzip(&gz)?;
    let body = execute_body(&stream)?;
    let (parse_only, _) = best(repeats, || parse(&body))?;
    let mut out = Vec::with_capacity(body.len() + body.len() / 4);
    let (roundtrip, rows) = best(repeats, || {
        out.clear();
        Ok(stackflow::splunk::splunk_csv::bench_roundtrip(body.clone(), &mut out)?)
    })?;
    println!(
        "{{\"records\":{records},\"fields\":{fields},\"body_bytes\":{},\"gunzip_parse_seconds\":{gunzip_parse:.4},\"parse_seconds\":{parse_only:.4},\"scp_roundtrip_seconds\":{roundtrip:.4},\"scp_roundtrip_rows\":{rows}}}",
        body.len()
    );
    Ok(())
}
