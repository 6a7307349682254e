//! Stash files and the receipt line: one JSON object per row an item carried, written as Splunk stash files
//! `$SPLUNK_HOME/var/spool/splunk/<epoch>_<random>.stash_stackflow` that the app's `batch`
//! input indexes (sourcetype `stackflow:receipt`) and then deletes (PRODUCT §4).
//!
//! File format: the header line `***SPLUNK*** index="…" source="stackflow"
//! sourcetype="stackflow:receipt"`, then one object a line whose first key is `time` (epoch
//! seconds with exactly six decimals: props.conf reads it with `TIME_FORMAT = %s.%6N`).
//!
//! Atomicity: Splunk's default `[batch://$SPLUNK_HOME/var/spool/splunk]` input sinkholes every
//! file in that folder, whatever its name, so a half-written file there could be indexed. Files
//! are therefore written in a staging folder of ours on the same filesystem
//! (`$SPLUNK_HOME/var/run/stackflow/receipts/`), fsynced, then renamed into the spool folder;
//! only when that rename fails (another filesystem) is `<name>.tmp` in the spool folder used.

use crate::error::{Error, Result};
use crate::fsync::sync_dir;
use serde::Serialize;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Receipts kept in memory before a stash file is written mid-run: ~500 bytes each, so the
/// waiting text stays near 2.5 MB (peak RSS is a §8 target; docs/benchmarks.md).
pub const FLUSH_EVERY: usize = 5_000;
pub const SOURCE: &str = "stackflow";
pub const SOURCETYPE: &str = "stackflow:receipt";
/// File name suffix the app's batch input watches.
pub const EXTENSION: &str = "stash_stackflow";

/// One receipt (all fields but `time`, which is written first by `Receipt::to_line`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Receipt {
    /// Since the Unix epoch.
    #[serde(skip)]
    pub time: Duration,
    pub action: String,
    pub account: String,
    pub sid: String,
    pub rid: String,
    pub orig_sid: String,
    pub orig_rid: String,
    pub event_id: String,
    pub search_name: String,
    pub dedupe_key: String,
    pub remote_id: String,
    pub remote_url: String,
    pub outcome: String,
    pub attempts: u32,
    pub duration_ms: u64,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slack_channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slack_ts: Option<String>,
}

/// A receipt whose fields are borrowed (`Audit::record` writes one per row without copying
/// the item's fields into each): serialised exactly as the `Receipt` with the same values.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct ReceiptRef<'a> {
    #[serde(skip)]
    pub time: Duration,
    pub action: &'a str,
    pub account: &'a str,
    pub sid: &'a str,
    pub rid: &'a str,
    pub orig_sid: &'a str,
    pub orig_rid: &'a str,
    pub event_id: &'a str,
    pub search_name: &'a str,
    pub dedupe_key: &'a str,
    pub remote_id: &'a str,
    pub remote_url: &'a str,
    pub outcome: &'a str,
    pub attempts: u32,
    pub duration_ms: u64,
    pub message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slack_channel: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slack_ts: Option<&'a str>,
}

impl Receipt {
    /// `{"time":<epoch>.<6 digits>,…}` on one line.
    pub fn to_line(&self) -> Result<String> {
        line_of(self.time, self)
    }
}

/// The stash file header (values lose their `"`, as cim_actions' `get_header_item` does).
pub fn header_line(index: &str) -> String {
    header_line_for(index, SOURCETYPE)
}

/// The stash file header for another sourcetype of ours (`stackflow:llm`).
pub fn header_line_for(index: &str, sourcetype: &str) -> String {
    format!(
        "***SPLUNK*** index=\"{}\" source=\"{SOURCE}\" sourcetype=\"{}\"",
        index.replace('"', "_"),
        sourcetype.replace('"', "_")
    )
}

/// `{"time":<epoch>.<6 digits>,…}` on one line for any record (see [`Receipt::to_line`]).
pub fn line_of<T: Serialize>(time: Duration, record: &T) -> Result<String> {
    let rest = serde_json::to_string(record)
        .map_err(|error| Error::Internal(format!("receipt: {error}")))?;
    let body = rest.strip_prefix('{').unwrap_or(&rest);
    let separator = if body == "}" { "" } else { "," };
    Ok(format!("{{\"time\":{}.{:06}{separator}{body}", time.as_secs(), time.subsec_micros()))
}

/// Collects receipt lines and writes them as stash files.
pub struct ReceiptWriter {
    index: String,
    sourcetype: String,
    extension: String,
    spool_dir: PathBuf,
    staging_dir: PathBuf,
    /// The waiting receipt lines, each ending in `\n`, in the form they are written (one
    /// buffer, so a flush writes it as it is instead of copying every line again).
    text: Vec<u8>,
    /// Lines in `text`.
    pending: usize,
    flush_every: usize,
    written: Vec<PathBuf>,
    receipts_written: usize,
}

impl ReceiptWriter {
    /// `splunk_home` gives the spool folder (`var/spool/splunk`) and the staging folder.
    pub fn new(splunk_home: &Path, index: &str) -> ReceiptWriter {
        ReceiptWriter {
            index: index.to_string(),
            sourcetype: SOURCETYPE.to_string(),
            extension: EXTENSION.to_string(),
            spool_dir: splunk_home.join("var").join("spool").join("splunk"),
            staging_dir: splunk_home.join("var").join("run").join("stackflow").join("receipts"),
            text: Vec::new(),
            pending: 0,
            flush_every: FLUSH_EVERY,
            written: Vec::new(),
            receipts_written: 0,
        }
    }

    /// Writes files of another sourcetype of ours (`stackflow:llm`), named `*.<extension>`
    /// so that their own batch input and props apply.
    pub fn with_sourcetype(mut self, sourcetype: &str, extension: &str) -> ReceiptWriter {
        self.sourcetype = sourcetype.to_string();
        self.extension = extension.to_string();
        self
    }

    /// Adds a ready line (from [`line_of`]); writes a file when `flush_every` lines wait.
    pub fn push_line(&mut self, line: String) -> Result<()> {
        self.append(&line);
        if self.pending >= self.flush_every {
            self.flush()?;
        }
        Ok(())
    }

    pub fn with_flush_every(mut self, n: usize) -> ReceiptWriter {
        self.flush_every = n.max(1);
        self
    }

    /// Stash files written so far.
    pub fn written(&self) -> &[PathBuf] {
        &self.written
    }

    /// Adds a receipt; writes a file when `flush_every` receipts are waiting.
    pub fn push(&mut self, receipt: &Receipt) -> Result<()> {
        self.append(&receipt.to_line()?);
        if self.pending >= self.flush_every {
            self.flush()?;
        }
        Ok(())
    }

    /// `push` for a borrowed receipt: its line is written straight into the waiting text.
    pub fn push_ref(&mut self, receipt: &ReceiptRef<'_>) -> Result<()> {
        use std::io::Write as _;
        let time = receipt.time;
        let start = self.text.len();
        let _ = write!(self.text, "{{\"time\":{}.{:06}", time.as_secs(), time.subsec_micros());
        // The struct's own `{` becomes the comma after the time (it always has fields).
        let fields = self.text.len();
        let written = serde_json::to_writer(&mut self.text, receipt);
        if written.is_err() || self.text.get(fields) != Some(&b'{') {
            self.text.truncate(start);
            return Err(Error::Internal("receipt: cannot encode".into()));
        }
        self.text[fields] = b',';
        self.text.push(b'\n');
        self.pending += 1;
        if self.pending >= self.flush_every {
            self.flush()?;
        }
        Ok(())
    }

    /// Receipts written to stash files so far.
    pub fn receipts_written(&self) -> usize {
        self.receipts_written
    }

    /// Receipts waiting to be written.
    pub fn pending(&self) -> usize {
        self.pending
    }

    fn append(&mut self, line: &str) {
        self.text.extend_from_slice(line.as_bytes());
        self.text.push(b'\n');
        self.pending += 1;
    }

    /// Writes the waiting receipts as one stash file (none when nothing waits). On error the
    /// receipts are dropped (and the error says how many), so memory stays bounded.
    pub fn flush(&mut self) -> Result<Option<PathBuf>> {
        if self.pending == 0 {
            return Ok(None);
        }
        let mut header = header_line_for(&self.index, &self.sourcetype);
        header.push('\n');
        let count = self.pending;
        let written = self.write_atomically(&[header.as_bytes(), &self.text]);
        self.text.clear();
        self.pending = 0;
        let path = written.map_err(|error| Error::Io {
            op: "write receipts (lost: not indexed)",
            path: self.spool_dir.clone(),
            source: std::io::Error::new(error.kind(), format!("{count} receipts: {error}")),
        })?;
        self.written.push(path.clone());
        self.receipts_written += count;
        Ok(Some(path))
    }

    fn write_atomically(&self, parts: &[&[u8]]) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&self.spool_dir)?;
        let name = unique_name(&self.spool_dir, &self.extension);
        let final_path = self.spool_dir.join(&name);
        let staged = std::fs::create_dir_all(&self.staging_dir)
            .and_then(|()| write_synced(&self.staging_dir.join(format!("{name}.tmp")), parts));
        if let Ok(staged) = staged {
            match std::fs::rename(&staged, &final_path) {
                Ok(()) => {
                    sync_dir(&self.spool_dir)?;
                    return Ok(final_path);
                }
                Err(_) => {
                    let _ = std::fs::remove_file(&staged);
                }
            }
        }
        let tmp = write_synced(&self.spool_dir.join(format!("{name}.tmp")), parts)?;
        if let Err(error) = std::fs::rename(&tmp, &final_path) {
            let _ = std::fs::remove_file(&tmp);
            return Err(error);
        }
        sync_dir(&self.spool_dir)?;
        Ok(final_path)
    }
}

fn write_synced(path: &Path, parts: &[&[u8]]) -> std::io::Result<PathBuf> {
    let written = (|| {
        let mut file = File::create(path)?;
        for part in parts {
            file.write_all(part)?;
        }
        file.sync_all()
    })();
    match written {
        Ok(()) => Ok(path.to_path_buf()),
        Err(error) => {
            let _ = std::fs::remove_file(path);
            Err(error)
        }
    }
}

/// `<epoch>_<random>.stash_stackflow`, not yet taken in `dir`.
fn unique_name(dir: &Path, extension: &str) -> String {
    let epoch = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut attempt = 0u64;
    loop {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_u64(attempt);
        hasher.write_u128(
            SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0),
        );
        let name = format!("{epoch}_{}.{extension}", hasher.finish() % 1_000_000_000);
        if !dir.join(&name).exists() || attempt > 100 {
            return name;
        }
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn receipt(rid: &str) -> Receipt {
        Receipt {
            time: Duration::from_micros(1_714_557_600_000_042),
            action: "stackflow_soar".into(),
            account: "default".into(),
            sid: "scheduler__a".into(),
            rid: rid.into(),
            dedupe_key: "k".into(),
            outcome: "delivered".into(),
            attempts: 1,
            duration_ms: 12,
            message: "say \"hi\"".into(),
            ..Receipt::default()
        }
    }

    fn borrowed(r: &Receipt) -> ReceiptRef<'_> {
        ReceiptRef {
            time: r.time,
            action: &r.action,
            account: &r.account,
            sid: &r.sid,
            rid: &r.rid,
            orig_sid: &r.orig_sid,
            orig_rid: &r.orig_rid,
            event_id: &r.event_id,
            search_name: &r.search_name,
            dedupe_key: &r.dedupe_key,
            remote_id: &r.remote_id,
            remote_url: &r.remote_url,
            outcome: &r.outcome,
            attempts: r.attempts,
            duration_ms: r.duration_ms,
            message: &r.message,
            target: r.target.as_deref(),
            slack_channel: r.slack_channel.as_deref(),
            slack_ts: r.slack_ts.as_deref(),
        }
    }

    #[test]
    fn a_borrowed_receipt_writes_the_same_line() {
        let mut full = receipt("3");
        full.target = Some("#soc".into());
        full.slack_ts = Some("1.2".into());
        full.orig_sid = "o\u{1}\n".into();
        for r in [receipt("7"), full] {
            let home = std::env::temp_dir();
            let mut writer = ReceiptWriter::new(&home, "main");
            writer.push_ref(&borrowed(&r)).unwrap();
            assert_eq!(
                String::from_utf8(writer.text.clone()).unwrap(),
                format!("{}\n", r.to_line().unwrap())
            );
            writer.text.clear();
            writer.pending = 0;
        }
    }

    #[test]
    fn time_comes_first_with_six_decimals() {
        let line = receipt("0").to_line().unwrap();
        assert!(
            line.starts_with("{\"time\":1714557600.000042,\"action\":\"stackflow_soar\","),
            "{line}"
        );
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["message"], "say \"hi\"");
        assert!(value.get("slack_ts").is_none());
        assert_eq!(value["remote_id"], "");
    }

    #[test]
    fn files_have_the_header_then_one_receipt_a_line_and_no_leftovers() {
        let home = std::env::temp_dir().join(format!("stackflow-receipts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&home);
        let mut writer = ReceiptWriter::new(&home, "sec\"idx").with_flush_every(2);
        for rid in ["0", "1", "2"] {
            writer.push(&receipt(rid)).unwrap();
        }
        assert_eq!(writer.written().len(), 1);
        assert_eq!(writer.pending(), 1);
        writer.flush().unwrap();
        assert_eq!(writer.flush().unwrap(), None);
        let spool = home.join("var/spool/splunk");
        let mut names: Vec<String> = std::fs::read_dir(&spool)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        for name in &names {
            let (epoch, rest) = name.split_once('_').unwrap();
            assert!(epoch.parse::<u64>().is_ok());
            assert!(rest.ends_with(".stash_stackflow"));
        }
        let mut rids = Vec::new();
        for path in writer.written() {
            let text = std::fs::read_to_string(path).unwrap();
            let mut lines = text.lines();
            assert_eq!(
                lines.next(),
                Some(
                    "***SPLUNK*** index=\"sec_idx\" source=\"stackflow\" sourcetype=\"stackflow:receipt\""
                )
            );
            for line in lines {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                rids.push(value["rid"].as_str().unwrap().to_string());
            }
        }
        rids.sort();
        assert_eq!(rids, ["0", "1", "2"]);
        let staging = home.join("var/run/stackflow/receipts");
        assert_eq!(std::fs::read_dir(staging).unwrap().count(), 0);
        std::fs::remove_dir_all(&home).unwrap();
    }
}
