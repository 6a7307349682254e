//! The ModularAction log `$SPLUNK_HOME/var/log/splunk/<stanza>_modalert.log`: the lines ES
//! Incident Review reads (through Splunk_SA_CIM's `cim_modactions` index) to show each
//! Adaptive Response action's status, written exactly as Splunk_SA_CIM's `cim_actions.py` does.
//!
//! Line grammar (reference §3.2): `<asctime> <LEVEL> sendmodaction - k="v" …` with asctime
//! `YYYY-MM-DD HH:MM:SS,mmm+0000` in UTC, the pairs `worker signature action_name search_name
//! sid orig_sid rid orig_rid app user digest_mode action_mode action_status` in that order,
//! then extra pairs sorted by key, and every pair with an empty value left out.
//!
//! Escaping (the sources are silent; our choice, as `cim_actions.result2stash` escapes): inside
//! a value `\` becomes `\\`, `"` becomes `\"`, and CR/LF become `\r`/`\n`, so one line is always
//! one event and Splunk's key-value extraction reads the value back whole.
//!
//! The file rotates like Python's `RotatingFileHandler(maxBytes=25000000, backupCount=5)`:
//! before a line that would take it to 25,000,000 bytes, `.4`→`.5` … `.1`→`.2`, the file → `.1`.

use crate::mapping::AlertContext;
use crate::splunk::conf::ConfFile;
use std::fs::{File, OpenOptions};
use std::io::BufWriter;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// cim_actions' `RotatingFileHandler` size limit.
pub const MAX_BYTES: u64 = 25_000_000;
/// cim_actions' `backupCount`.
pub const BACKUP_COUNT: u32 = 5;
/// The fixed pairs of every line, in order (`ModularAction.DEFAULT_MSGFIELDS`).
pub const FIELD_ORDER: [&str; 13] = [
    "worker",
    "signature",
    "action_name",
    "search_name",
    "sid",
    "orig_sid",
    "rid",
    "orig_rid",
    "app",
    "user",
    "digest_mode",
    "action_mode",
    "action_status",
];

/// Python logging level names, as cim_actions' formatter writes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
        }
    }
}

/// What every line of one run shares (`ModularAction.__init__`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Invocation {
    pub worker: String,
    /// `configuration.action_name` when set, else the stanza.
    pub action_name: String,
    pub search_name: String,
    /// The sid with a real-time snapshot suffix removed.
    pub sid: String,
    /// The real-time snapshot number taken off the sid (appended to every rid).
    pub sid_snapshot: String,
    pub app: String,
    pub user: String,
    /// 0 for per-result alerts, 1 otherwise.
    pub digest_mode: u8,
    /// `saved` when the sid contains `scheduler`, else `adhoc`.
    pub action_mode: &'static str,
}

/// The per-row identifiers of a line (`ModularAction.rid_ntuple`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowIds {
    pub orig_sid: String,
    pub rid: String,
    pub orig_rid: String,
}

impl Invocation {
    pub fn new(context: &AlertContext, worker: String) -> Invocation {
        let (sid, sid_snapshot) = split_realtime_sid(&context.sid);
        let action_name = context.param("action_name").unwrap_or(&context.action).to_string();
        let per_result = context.result_id.as_deref().is_some_and(|id| !id.is_empty());
        Invocation {
            worker,
            action_name,
            search_name: context.search_name.clone(),
            sid,
            sid_snapshot,
            app: context.app.clone(),
            user: context.owner.clone(),
            digest_mode: if per_result { 0 } else { 1 },
            action_mode: action_mode(&context.sid),
        }
    }

    /// The identifiers of a row, with the snapshot applied to its rid: `<rid>.<snapshot>` for
    /// real-time alerts, as the log and receipts show it.
    pub fn row_ids(&self, rid: &str, orig_sid: &str, orig_rid: &str) -> RowIds {
        let mut ids = RowIds::default();
        self.fill_row_ids(&mut ids, rid, orig_sid, orig_rid);
        ids
    }

    /// `row_ids` into `ids`, reusing its strings (one alert writes them for every row).
    pub fn fill_row_ids(&self, ids: &mut RowIds, rid: &str, orig_sid: &str, orig_rid: &str) {
        ids.orig_sid.clear();
        ids.orig_sid.push_str(orig_sid);
        ids.rid.clear();
        ids.rid.push_str(rid);
        if !self.sid_snapshot.is_empty() {
            ids.rid.push('.');
            ids.rid.push_str(&self.sid_snapshot);
        }
        ids.orig_rid.clear();
        ids.orig_rid.push_str(orig_rid);
    }
}

/// `saved` iff the sid contains `scheduler` (cim_actions), else `adhoc`.
pub fn action_mode(sid: &str) -> &'static str {
    if sid.contains("scheduler") { "saved" } else { "adhoc" }
}

/// Splits a real-time scheduled sid the way cim_actions does with
/// `^(rt_scheduler.*)\.(\d+)(_?.*)$`: returns (sid without `.<snapshot>`, snapshot). A search
/// head cluster's `_<guid>` suffix after the snapshot stays on the sid (CIM-665).
pub fn split_realtime_sid(sid: &str) -> (String, String) {
    const PREFIX: &str = "rt_scheduler";
    if !sid.starts_with(PREFIX) {
        return (sid.to_string(), String::new());
    }
    let bytes = sid.as_bytes();
    // The greedy `.*` makes the match end at the last "." that is followed by a digit.
    let dot = (PREFIX.len()..bytes.len().saturating_sub(1))
        .rev()
        .find(|&i| bytes[i] == b'.' && bytes[i + 1].is_ascii_digit());
    let Some(dot) = dot else {
        return (sid.to_string(), String::new());
    };
    let digits_end =
        (dot + 1..bytes.len()).find(|&i| !bytes[i].is_ascii_digit()).unwrap_or(bytes.len());
    let snapshot = &sid[dot + 1..digits_end];
    let rest = &sid[digits_end..];
    (format!("{}{rest}", &sid[..dot]), snapshot.to_string())
}

/// `worker`: server.conf `[general] serverName` (local layer over default), else the
/// payload's `server_host` without a port.
pub fn worker_name(splunk_home: Option<&Path>, server_host: &str) -> String {
    if let Some(home) = splunk_home {
        let mut server = ConfFile::default();
        for layer in ["etc/system/default/server.conf", "etc/system/local/server.conf"] {
            if let Ok(conf) = ConfFile::read_layer(&home.join(layer)) {
                server.overlay(conf);
            }
        }
        if let Some(name) = server.get_nonempty("general", "serverName") {
            // Splunk's default is "$HOSTNAME", expanded by splunkd, not by us.
            if !name.contains('$') {
                return name.to_string();
            }
        }
    }
    let host = server_host.trim();
    match host.rsplit_once(':') {
        Some((name, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            name.to_string()
        }
        _ => host.to_string(),
    }
}

/// Escapes a value for `key="value"` (see the module doc).
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            other => out.push(other),
        }
    }
    out
}

/// `YYYY-MM-DD HH:MM:SS,mmm+0000` in UTC (`ModularActionFormatter`).
pub fn asctime(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    let (year, month, day, hour, minute, second) = crate::civil_time::civil_from_unix(seconds);
    format!(
        "{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02},{:03}+0000",
        since.subsec_millis()
    )
}

/// Appends `value` escaped (see `escape_value`) to `out`.
fn push_escaped(out: &mut String, value: &str) {
    if !value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n' | b'\r')) {
        out.push_str(value);
        return;
    }
    out.push_str(&escape_value(value));
}

/// Appends ` key="value"` (escaped) to `out`, or nothing for an empty value.
fn push_pair(out: &mut String, key: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    out.push(' ');
    out.push_str(key);
    out.push_str("=\"");
    push_escaped(out, value);
    out.push('"');
}

/// A status line with everything but the time and the row's ids rendered: the lines of one
/// item's rows differ only there, and an alert writes one line per row.
pub struct LineTemplate {
    /// Level, `sendmodaction -` and the pairs before `orig_sid`.
    head: String,
    /// The pairs after `orig_rid`.
    tail: String,
}

impl LineTemplate {
    pub fn new(
        level: Level,
        invocation: &Invocation,
        signature: &str,
        status: &str,
        extra: &[(&str, String)],
    ) -> LineTemplate {
        let digest_owned;
        let digest_mode = match invocation.digest_mode {
            0 => "0",
            1 => "1",
            other => {
                digest_owned = other.to_string();
                digest_owned.as_str()
            }
        };
        let mut head = String::with_capacity(256);
        head.push(' ');
        head.push_str(level.as_str());
        head.push_str(" sendmodaction -");
        for (key, value) in [
            ("worker", invocation.worker.as_str()),
            ("signature", signature),
            ("action_name", &invocation.action_name),
            ("search_name", &invocation.search_name),
            ("sid", &invocation.sid),
        ] {
            push_pair(&mut head, key, value);
        }
        let mut tail = String::with_capacity(256);
        for (key, value) in [
            ("app", invocation.app.as_str()),
            ("user", &invocation.user),
            ("digest_mode", digest_mode),
            ("action_mode", invocation.action_mode),
            ("action_status", status),
        ] {
            push_pair(&mut tail, key, value);
        }
        let mut extra: Vec<&(&str, String)> =
            extra.iter().filter(|(key, _)| !FIELD_ORDER.contains(key) && is_key(key)).collect();
        extra.sort_by(|a, b| a.0.cmp(b.0));
        for (key, value) in extra {
            push_pair(&mut tail, key, value);
        }
        LineTemplate { head, tail }
    }

    /// Appends the line for `row` (none: a line about the whole run) at time `asctime`.
    pub fn render_into(&self, line: &mut String, asctime: &str, row: Option<&RowIds>) {
        line.push_str(asctime);
        line.push_str(&self.head);
        if let Some(row) = row {
            push_pair(line, "orig_sid", &row.orig_sid);
            push_pair(line, "rid", &row.rid);
            push_pair(line, "orig_rid", &row.orig_rid);
        }
        line.push_str(&self.tail);
    }
}

fn is_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// An append-only log file that rotates like `RotatingFileHandler`.
pub struct RotatingFile {
    path: PathBuf,
    file: Option<BufWriter<File>>,
    size: u64,
    max_bytes: u64,
    backups: u32,
}

impl RotatingFile {
    pub fn new(path: PathBuf, max_bytes: u64, backups: u32) -> RotatingFile {
        RotatingFile { path, file: None, size: 0, max_bytes, backups }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `line` and a line end, rotating first when the file would reach `max_bytes`.
    pub fn write_line(&mut self, line: &str) -> std::io::Result<()> {
        let record_len = line.len() as u64 + 1;
        if self.file.is_none() {
            self.open()?;
        }
        if self.max_bytes > 0 && self.size > 0 && self.size + record_len >= self.max_bytes {
            self.rotate()?;
        }
        let Some(file) = self.file.as_mut() else {
            return Err(std::io::Error::other("log file not open"));
        };
        file.write_all(line.as_bytes())?;
        file.write_all(b"\n")?;
        self.size += record_len;
        Ok(())
    }

    fn open(&mut self) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.size = file.metadata()?.len();
        self.file = Some(BufWriter::with_capacity(64 * 1024, file));
        Ok(())
    }

    /// Pushes buffered lines to the file (after each item, and when dropped).
    pub fn flush(&mut self) -> std::io::Result<()> {
        match self.file.as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.flush()?;
        self.file = None;
        if self.backups > 0 {
            let numbered = |n: u32| {
                let mut name = self.path.clone().into_os_string();
                name.push(format!(".{n}"));
                PathBuf::from(name)
            };
            let _ = std::fs::remove_file(numbered(self.backups));
            for n in (1..self.backups).rev() {
                let from = numbered(n);
                if from.exists() {
                    std::fs::rename(&from, numbered(n + 1))?;
                }
            }
            std::fs::rename(&self.path, numbered(1))?;
        } else {
            std::fs::remove_file(&self.path)?;
        }
        self.open()
    }
}

/// The log of one run: formats and writes lines; a write failure is reported once on stderr.
pub struct ModAlertLog {
    pub invocation: Invocation,
    file: Option<RotatingFile>,
    failed: bool,
    /// The line being written, reused.
    line: String,
    /// The last `asctime` and the millisecond it shows (lines come many per millisecond).
    time: (u128, String),
}

impl ModAlertLog {
    /// `log_dir` is `$SPLUNK_HOME/var/log/splunk`; `None` keeps no file (SPLUNK_HOME unknown).
    pub fn new(invocation: Invocation, log_dir: Option<&Path>, stanza: &str) -> ModAlertLog {
        let file = log_dir.map(|dir| {
            RotatingFile::new(dir.join(format!("{stanza}_modalert.log")), MAX_BYTES, BACKUP_COUNT)
        });
        ModAlertLog {
            invocation,
            file,
            failed: false,
            line: String::new(),
            time: (0, String::new()),
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.file.as_ref().map(RotatingFile::path)
    }

    /// Pushes buffered lines to disk; called after each item so a killed run keeps its lines.
    pub fn flush(&mut self) {
        if let Some(file) = self.file.as_mut()
            && let Err(error) = file.flush()
            && !self.failed
        {
            self.failed = true;
            log::warn!("cannot write the modular action log {}: {error}", file.path().display());
        }
    }

    /// Writes one line now.
    pub fn message(
        &mut self,
        level: Level,
        signature: &str,
        status: &str,
        row: Option<&RowIds>,
        extra: &[(&str, String)],
    ) {
        // The log's own invocation is taken out for the call (nothing cloned per line).
        let invocation = std::mem::take(&mut self.invocation);
        self.message_for(&invocation, level, signature, status, row, extra);
        self.invocation = invocation;
    }

    /// Writes one line of another invocation to this log's file: `spool flush` keeps one file
    /// per action for the items of many searches, each line naming its own search.
    pub fn message_for(
        &mut self,
        invocation: &Invocation,
        level: Level,
        signature: &str,
        status: &str,
        row: Option<&RowIds>,
        extra: &[(&str, String)],
    ) {
        if self.file.is_some() {
            let template = LineTemplate::new(level, invocation, signature, status, extra);
            self.write(&template, row);
        }
    }

    /// Writes the line of `template` for `row`, at the current time.
    pub fn write(&mut self, template: &LineTemplate, row: Option<&RowIds>) {
        let Some(file) = self.file.as_mut() else {
            return;
        };
        let now = SystemTime::now();
        let millis = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
        if self.time.1.is_empty() || self.time.0 != millis {
            self.time = (millis, asctime(now));
        }
        self.line.clear();
        template.render_into(&mut self.line, &self.time.1, row);
        if let Err(error) = file.write_line(&self.line)
            && !self.failed
        {
            self.failed = true;
            log::warn!(
                "cannot write the modular action log {}: {error}; Incident Review will not show this run's status",
                file.path().display()
            );
        }
    }
}

#[cfg(test)]
mod tests;
