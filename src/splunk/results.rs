//! Splunk's alert results file: gzip CSV, streamed row by row in constant memory.
//!
//! Format (Splunk's alert_actions.conf.spec and Intersplunk's `$a$;$b$` multivalue encoding): gzip (possibly several members) around RFC-4180 CSV,
//! first line the header, `_`-prefixed names quoted, and for every field `f` that can be
//! multivalue a `__mv_f` column holding `$v1$;$v2$` with `$` doubled; an empty `__mv_f` means
//! the plain column is a single value. Fields may hold newlines.
//!
//! The file is untrusted input of unbounded size (3 MB of gzip can hold a 3 GiB cell), so it is
//! read through `Guard`: a byte-level shadow of the CSV grammar the `csv` crate applies, sitting
//! between the gzip decoder and the parser. It counts the decompressed bytes, the fields of each
//! record and the bytes of each value and record, and stops the read with a typed refusal as soon
//! as one of the `[limits]` of stackflow.conf (`Limits`) is exceeded: the parser never buffers
//! more than a limit plus one read buffer. It also refuses a file that ends inside a quoted
//! field, which the `csv` crate accepts silently. Only regular files are opened: a FIFO, a
//! directory or a device is refused before it is read.
//!
//! `validate` reads the whole file once without keeping rows, so that a corrupt, truncated or
//! oversized file is refused before anything is sent ("nothing half-sent"); it also yields the
//! row count.

use crate::error::{Error, Result};
use crate::splunk::conf::ConfFile;
use flate2::read::MultiGzDecoder;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One cell after `__mv_` decoding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldValue {
    Single(String),
    Multi(Vec<String>),
}

impl FieldValue {
    /// The first value (the only one for a single value).
    pub fn first(&self) -> &str {
        match self {
            FieldValue::Single(value) => value,
            FieldValue::Multi(values) => values.first().map(String::as_str).unwrap_or(""),
        }
    }

    pub fn values(&self) -> Vec<&str> {
        match self {
            FieldValue::Single(value) => vec![value.as_str()],
            FieldValue::Multi(values) => values.iter().map(String::as_str).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            FieldValue::Single(value) => value.is_empty(),
            FieldValue::Multi(values) => values.iter().all(String::is_empty),
        }
    }

    /// Multivalue joined with newlines, as Splunk shows it in the plain column.
    pub fn joined(&self) -> String {
        match self {
            FieldValue::Single(value) => value.clone(),
            FieldValue::Multi(values) => values.join("\n"),
        }
    }
}

/// Column layout shared by every row of a file.
#[derive(Debug)]
pub struct Header {
    /// Data field names in file order (`__mv_` columns excluded).
    pub names: Vec<String>,
    /// For each data field: its column, and its `__mv_` column if the file has one.
    columns: Vec<(usize, Option<usize>)>,
    index: HashMap<String, usize>,
}

impl Header {
    /// The position of a data field in `names` (and so for `Row::at`).
    pub fn position(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    fn from_record(record: &csv::StringRecord) -> Header {
        let mut position: HashMap<&str, usize> = HashMap::new();
        for (column, name) in record.iter().enumerate() {
            position.entry(name).or_insert(column);
        }
        let mut names = Vec::new();
        let mut columns = Vec::new();
        let mut index = HashMap::new();
        for (column, name) in record.iter().enumerate() {
            if name.starts_with("__mv_") || index.contains_key(name) {
                continue;
            }
            let mv_column = position.get(format!("__mv_{name}").as_str()).copied();
            index.insert(name.to_string(), names.len());
            names.push(name.to_string());
            columns.push((column, mv_column));
        }
        Header { names, columns, index }
    }
}

/// One result row: its id and its decoded fields. Empty cells are absent fields.
///
/// A row can be read again and again into the same value (`ResultsReader::read_into`): the
/// strings of its cells keep their capacity, so a long file is read without allocating per
/// field.
#[derive(Clone, Debug)]
pub struct Row {
    /// 0-based row number, or the per-result alert's `result_id`.
    pub rid: String,
    header: Arc<Header>,
    /// One value per data field of the header; only those marked in `present` are the row's.
    values: Vec<FieldValue>,
    present: Vec<bool>,
}

impl Row {
    /// Builds a row by hand (tests, the payload's `result`).
    pub fn from_pairs(rid: &str, pairs: &[(&str, FieldValue)]) -> Row {
        let names: Vec<String> = pairs.iter().map(|(name, _)| name.to_string()).collect();
        let index = names.iter().enumerate().map(|(i, name)| (name.clone(), i)).collect();
        let columns = (0..names.len()).map(|i| (i, None)).collect();
        let header = Arc::new(Header { names, columns, index });
        let values = pairs.iter().map(|(_, value)| value.clone()).collect();
        let present = pairs.iter().map(|(_, value)| !value.is_empty()).collect();
        Row { rid: rid.to_string(), header, values, present }
    }

    /// A row of `header` with no fields yet, to be filled by `ResultsReader::read_into`.
    pub fn empty(header: Arc<Header>) -> Row {
        Row { rid: String::new(), header, values: Vec::new(), present: Vec::new() }
    }

    /// The column layout this row was read with (shared by every row of a file).
    pub fn header(&self) -> &Arc<Header> {
        &self.header
    }

    /// The value of the `index`-th data field of the header (`Header::names`), if present.
    pub fn at(&self, index: usize) -> Option<&FieldValue> {
        match self.present.get(index) {
            Some(true) => self.values.get(index),
            _ => None,
        }
    }

    pub fn get(&self, name: &str) -> Option<&FieldValue> {
        self.header.index.get(name).and_then(|&i| self.at(i))
    }

    /// The first value of a field that is present and not empty.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.get(name).map(FieldValue::first).filter(|value| !value.is_empty())
    }

    /// Present fields in file order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &FieldValue)> {
        self.header
            .names
            .iter()
            .zip(self.values.iter().zip(&self.present))
            .filter_map(|(name, (value, present))| present.then_some((name.as_str(), value)))
    }

    pub fn len(&self) -> usize {
        self.present.iter().filter(|present| **present).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Decodes `$a$;$b$$c$` into `["a", "b$c"]`; `None` when the text is not that encoding.
/// (The same encoding as the search protocol's bodies, so one decoder serves both.)
pub fn decode_multivalue(encoded: &str) -> Option<Vec<String>> {
    crate::splunk::splunk_csv::decode_multivalue(encoded.as_bytes())
}

/// Upper bounds on what one results file may hold: `[limits]` in stackflow.conf.
///
/// Sizes are counted as the parser holds them: decompressed bytes for the whole file, and for
/// values and rows the bytes after CSV unquoting (quotes, doubled quotes, commas and line ends
/// not counted). Peak memory while reading follows the largest row allowed, not the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `max_results_bytes`: the whole CSV after decompression.
    pub max_results_bytes: u64,
    /// `max_record_bytes`: one row (or the header), all its values together.
    pub max_record_bytes: u64,
    /// `max_field_bytes`: one value (one cell).
    pub max_field_bytes: u64,
    /// `max_fields`: the columns of one row (or of the header), `__mv_` columns included.
    pub max_fields: u64,
}

const MIB: u64 = 1024 * 1024;

impl Default for Limits {
    /// Generous defaults (docs/limits.md): well above what Splunk writes for an alert, and far
    /// below what would threaten the search head's memory.
    fn default() -> Limits {
        Limits {
            max_results_bytes: 2048 * MIB,
            max_record_bytes: 64 * MIB,
            max_field_bytes: 16 * MIB,
            max_fields: 10_000,
        }
    }
}

impl Limits {
    /// The `[limits]` stanza of stackflow.conf: defaults for keys not set, a configuration
    /// error naming the key for a value that is not a positive whole number.
    pub fn from_conf(conf: &ConfFile) -> Result<Limits> {
        let defaults = Limits::default();
        let read = |key: &str, default: u64| -> Result<u64> {
            let Some(value) = conf.get_nonempty("limits", key) else {
                return Ok(default);
            };
            value.parse::<u64>().ok().filter(|number| *number > 0).ok_or_else(|| {
                Error::config(
                    "limits",
                    key,
                    format!("\"{value}\" is not a positive whole number (default {default})"),
                )
            })
        };
        Ok(Limits {
            max_results_bytes: read("max_results_bytes", defaults.max_results_bytes)?,
            max_record_bytes: read("max_record_bytes", defaults.max_record_bytes)?,
            max_field_bytes: read("max_field_bytes", defaults.max_field_bytes)?,
            max_fields: read("max_fields", defaults.max_fields)?,
        })
    }
}

/// `16777216 (16 MiB)` for whole mebibytes, the plain number otherwise.
fn bytes_with_unit(bytes: u64) -> String {
    if bytes >= 1024 * MIB && bytes.is_multiple_of(1024 * MIB) {
        format!("{bytes} bytes ({} GiB)", bytes / (1024 * MIB))
    } else if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{bytes} bytes ({} MiB)", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Why `Guard` stopped a read. Travels through the `csv` crate inside an `io::Error`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Refusal {
    /// The decompressed CSV is larger than `max_results_bytes`.
    ResultsBytes { limit: u64, record: u64 },
    /// A record has more than `max_fields` fields.
    Fields { limit: u64, record: u64 },
    /// A record's values add up to more than `max_record_bytes`.
    RecordBytes { limit: u64, record: u64 },
    /// A value (in 1-based `column`) is longer than `max_field_bytes`.
    FieldBytes { limit: u64, record: u64, column: u64 },
    /// The file ends inside the quoted value that starts in `column` of `record`.
    Unclosed { record: u64, column: u64 },
}

impl Refusal {
    /// The message, with `name(column)` giving a column's header name where it is known.
    /// Records are numbered as the parser sees them: 0 is the header, N is row N-1.
    fn describe(&self, name: impl Fn(u64) -> Option<String>) -> String {
        let at = |record: u64| match record {
            0 => "the header".to_string(),
            n => format!("row {}", n - 1),
        };
        let column = |column: u64| match name(column) {
            Some(name) => format!("column {column} (\"{name}\")"),
            None => format!("column {column}"),
        };
        let set_by = |key: &str| format!("set by stackflow.conf [limits] {key}");
        match *self {
            Refusal::ResultsBytes { limit, record } => format!(
                "the decompressed CSV exceeds the limit of {} {} (reached in {})",
                bytes_with_unit(limit),
                set_by("max_results_bytes"),
                at(record)
            ),
            Refusal::Fields { limit, record } => format!(
                "{} has more than {limit} fields, the limit {}",
                at(record),
                set_by("max_fields")
            ),
            Refusal::RecordBytes { limit, record } => format!(
                "{} exceeds the limit of {} {}",
                at(record),
                bytes_with_unit(limit),
                set_by("max_record_bytes")
            ),
            Refusal::FieldBytes { limit, record, column: n } => format!(
                "{}, {}: a value exceeds the limit of {} {}",
                at(record),
                column(n),
                bytes_with_unit(limit),
                set_by("max_field_bytes")
            ),
            Refusal::Unclosed { record, column: n } => format!(
                "{}, {}: a quoted field is not closed before the end of the file (truncated or malformed CSV)",
                at(record),
                column(n)
            ),
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe(|_| None))
    }
}

impl std::error::Error for Refusal {}

/// Where `Guard` is in the CSV grammar. It mirrors the states of `csv_core::Reader` that the
/// `csv` crate uses with our settings (RFC 4180: `,` delimiter, `"` quote, doubled quotes,
/// no escape, no comments, CR, LF or CRLF ending a record, blank lines skipped), so that its
/// field and record boundaries are the parser's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scan {
    /// Between records: line ends are skipped.
    StartRecord,
    /// At the first byte of a value.
    StartField,
    /// In an unquoted value (or after a quoted part, where csv-core goes on unquoted).
    InField,
    /// In a quoted value.
    InQuoted,
    /// Just after a quote inside a quoted value: a second quote is a literal `"`, anything
    /// else closes the quoted part.
    QuoteInQuoted,
}

/// A `Read` between the gzip decoder and the CSV parser that enforces `Limits` as the bytes
/// pass, and refuses EOF inside a quoted value. The parser only asks for more input when it
/// has consumed what it got, so it never holds more than one record within the limits plus
/// its read buffer.
struct Guard<R> {
    inner: R,
    limits: Limits,
    state: Scan,
    /// Decompressed bytes so far.
    total: u64,
    /// The record being scanned: 0 is the header.
    record: u64,
    /// Fields begun in this record (so the current one is `fields`, 1-based).
    fields: u64,
    field_bytes: u64,
    record_bytes: u64,
    refused: Option<Refusal>,
}

impl<R: Read> Guard<R> {
    fn new(inner: R, limits: Limits) -> Guard<R> {
        Guard {
            inner,
            limits,
            state: Scan::StartRecord,
            total: 0,
            record: 0,
            fields: 0,
            field_bytes: 0,
            record_bytes: 0,
            refused: None,
        }
    }

    /// Counts `n` bytes of value.
    fn value_bytes(&mut self, n: usize) -> std::result::Result<(), Refusal> {
        self.field_bytes += n as u64;
        self.record_bytes += n as u64;
        if self.field_bytes > self.limits.max_field_bytes {
            return Err(Refusal::FieldBytes {
                limit: self.limits.max_field_bytes,
                record: self.record,
                column: self.fields,
            });
        }
        if self.record_bytes > self.limits.max_record_bytes {
            return Err(Refusal::RecordBytes {
                limit: self.limits.max_record_bytes,
                record: self.record,
            });
        }
        Ok(())
    }

    fn next_field(&mut self) -> std::result::Result<(), Refusal> {
        self.fields += 1;
        self.field_bytes = 0;
        self.state = Scan::StartField;
        if self.fields > self.limits.max_fields {
            return Err(Refusal::Fields { limit: self.limits.max_fields, record: self.record });
        }
        Ok(())
    }

    fn end_record(&mut self) {
        self.record += 1;
        self.state = Scan::StartRecord;
    }

    /// Runs the bytes through the grammar, counting as it goes. On a refusal, also says how
    /// many leading bytes passed every check (the parser may have them).
    fn scan(&mut self, bytes: &[u8]) -> std::result::Result<(), (usize, Refusal)> {
        let mut i = 0;
        while i < bytes.len() {
            let step = i;
            let at = |refusal| (step, refusal);
            match self.state {
                Scan::StartRecord => {
                    if matches!(bytes[i], b'\r' | b'\n') {
                        i += 1;
                    } else {
                        self.fields = 0;
                        self.record_bytes = 0;
                        self.next_field().map_err(at)?;
                    }
                }
                Scan::StartField => {
                    if bytes[i] == b'"' {
                        self.state = Scan::InQuoted;
                        i += 1;
                    } else {
                        // Same as inside an unquoted value: `,` ends it, a line end ends the
                        // record, anything else is its first byte.
                        self.state = Scan::InField;
                    }
                }
                Scan::InField => {
                    let rest = &bytes[i..];
                    let run = rest
                        .iter()
                        .position(|&b| matches!(b, b',' | b'\r' | b'\n'))
                        .unwrap_or(rest.len());
                    self.value_bytes(run).map_err(at)?;
                    i += run;
                    if let Some(&byte) = bytes.get(i) {
                        i += 1;
                        if byte == b',' {
                            self.next_field().map_err(at)?;
                        } else {
                            self.end_record();
                        }
                    }
                }
                Scan::InQuoted => {
                    let rest = &bytes[i..];
                    let run = rest.iter().position(|&b| b == b'"').unwrap_or(rest.len());
                    self.value_bytes(run).map_err(at)?;
                    i += run;
                    if i < bytes.len() {
                        i += 1;
                        self.state = Scan::QuoteInQuoted;
                    }
                }
                Scan::QuoteInQuoted => {
                    if bytes[i] == b'"' {
                        self.value_bytes(1).map_err(at)?;
                        self.state = Scan::InQuoted;
                        i += 1;
                    } else {
                        self.state = Scan::InField;
                    }
                }
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Guard<R> {
    /// Hands out bytes only once they passed the checks. On a refusal, the bytes before it
    /// still go out (so the parser has read the header, which names the column) and the
    /// refusal is the answer to the next call, and to every call after it.
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if let Some(refusal) = &self.refused {
            return Err(std::io::Error::other(refusal.clone()));
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            if self.state == Scan::InQuoted {
                let refusal = Refusal::Unclosed { record: self.record, column: self.fields };
                self.refused = Some(refusal.clone());
                return Err(std::io::Error::other(refusal));
            }
            return Ok(0);
        }
        let room = self.limits.max_results_bytes.saturating_sub(self.total);
        let allowed = n.min(usize::try_from(room).unwrap_or(usize::MAX));
        self.total += allowed as u64;
        let (passed, refusal) = match self.scan(&buf[..allowed]) {
            Err((passed, refusal)) => (passed, Some(refusal)),
            Ok(()) if allowed < n => (
                allowed,
                Some(Refusal::ResultsBytes {
                    limit: self.limits.max_results_bytes,
                    record: self.record,
                }),
            ),
            Ok(()) => (n, None),
        };
        if let Some(refusal) = refusal {
            if passed == 0 {
                self.refused = Some(refusal.clone());
                return Err(std::io::Error::other(refusal));
            }
            self.refused = Some(refusal);
        }
        Ok(passed)
    }
}

/// Streams the rows of a results file.
pub struct ResultsReader {
    path: PathBuf,
    reader: csv::Reader<Box<dyn Read>>,
    header: Option<Arc<Header>>,
    /// The header as read, for naming columns in error messages.
    header_record: csv::StringRecord,
    record: csv::StringRecord,
    next_row: u64,
    result_id: Option<String>,
}

/// What a path that is not a regular file is, for the message that refuses it.
fn file_kind(file_type: std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return "a device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    "not a file"
}

fn not_regular(path: &Path, file_type: std::fs::FileType) -> Error {
    Error::results(
        path,
        format!(
            "not a regular file ({}): splunkd writes results to a regular file, and nothing else is read as results",
            file_kind(file_type)
        ),
    )
}

/// Opens the file (regular files only: reading a FIFO would wait for a writer until splunkd's
/// `maxtime`, a device may never end) behind the gzip decoder, `Guard` and the CSV parser.
fn open_csv(path: &Path, limits: Limits) -> Result<csv::Reader<Box<dyn Read>>> {
    let cannot_open = |error: std::io::Error| {
        let detail = match error.kind() {
            std::io::ErrorKind::NotFound => {
                "the file does not exist (expired dispatch directory?)".to_string()
            }
            _ => format!("cannot open: {error}"),
        };
        Error::results(path, detail)
    };
    // Checked before opening, because opening a FIFO blocks; and again on the open file, in
    // case the path was replaced in between.
    let metadata = std::fs::metadata(path).map_err(cannot_open)?;
    if !metadata.is_file() {
        return Err(not_regular(path, metadata.file_type()));
    }
    let file = File::open(path).map_err(cannot_open)?;
    let metadata = file.metadata().map_err(cannot_open)?;
    if !metadata.is_file() {
        return Err(not_regular(path, metadata.file_type()));
    }
    let decoder = MultiGzDecoder::new(BufReader::with_capacity(256 * 1024, file));
    let guarded: Box<dyn Read> = Box::new(Guard::new(decoder, limits));
    Ok(csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .buffer_capacity(256 * 1024)
        .from_reader(guarded))
}

/// The error for a failed read; `header` (if read yet) names the column of a refusal.
fn describe_csv_error(
    path: &Path,
    error: csv::Error,
    row_number: u64,
    header: Option<&csv::ByteRecord>,
) -> Error {
    let detail = match error.kind() {
        csv::ErrorKind::Io(io) => {
            match io.get_ref().and_then(|inner| inner.downcast_ref::<Refusal>()) {
                Some(refusal) => refusal.describe(|column| {
                    let index = usize::try_from(column).ok()?.checked_sub(1)?;
                    let name = header?.get(index)?;
                    Some(String::from_utf8_lossy(name).into_owned())
                }),
                None => match io.kind() {
                    std::io::ErrorKind::UnexpectedEof => {
                        "the gzip stream ends early (truncated file)".to_string()
                    }
                    std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
                        format!("not valid gzip data: {io}")
                    }
                    _ => format!("cannot read: {io}"),
                },
            }
        }
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => format!(
            "row {row_number} has {len} fields but the header has {expected_len} (truncated or malformed CSV)"
        ),
        csv::ErrorKind::Utf8 { .. } => format!("row {row_number} is not valid UTF-8"),
        _ => format!("malformed CSV near row {row_number}: {error}"),
    };
    Error::results(path, detail)
}

impl ResultsReader {
    /// Opens a results file; `result_id` is the payload's, for per-result alerts.
    pub fn open(path: &Path, result_id: Option<&str>, limits: Limits) -> Result<ResultsReader> {
        let mut reader = ResultsReader {
            path: path.to_path_buf(),
            reader: open_csv(path, limits)?,
            header: None,
            header_record: csv::StringRecord::new(),
            record: csv::StringRecord::new(),
            next_row: 0,
            result_id: result_id.map(str::to_string),
        };
        match reader.reader.read_record(&mut reader.record) {
            Ok(true) => {
                reader.header = Some(Arc::new(Header::from_record(&reader.record)));
                reader.header_record = reader.record.clone();
            }
            Ok(false) => {}
            Err(error) => return Err(describe_csv_error(path, error, 0, None)),
        }
        Ok(reader)
    }

    /// Reads the whole file once, keeping nothing, and returns the number of rows. Any
    /// corruption, and any value, row or file over `limits`, is reported here, before a single
    /// item is sent.
    pub fn validate(path: &Path, limits: Limits) -> Result<u64> {
        let mut reader = open_csv(path, limits)?;
        let mut record = csv::ByteRecord::new();
        let mut rows: u64 = 0;
        let mut header: Option<csv::ByteRecord> = None;
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    if header.is_none() {
                        header = Some(record.clone());
                    } else {
                        if std::str::from_utf8(record.as_slice()).is_err() {
                            return Err(Error::results(
                                path,
                                format!("row {rows} is not valid UTF-8"),
                            ));
                        }
                        rows += 1;
                    }
                }
                Err(error) => {
                    return Err(describe_csv_error(path, error, rows, header.as_ref()));
                }
            }
        }
        Ok(rows)
    }

    pub fn header(&self) -> Option<&Arc<Header>> {
        self.header.as_ref()
    }

    /// Decodes the current record into `row`, reusing the strings it already holds.
    fn decode_into(&self, row: &mut Row) {
        let header = &*row.header;
        let count = header.columns.len();
        row.values.resize_with(count, || FieldValue::Single(String::new()));
        row.present.resize(count, false);
        for (i, &(column, mv_column)) in header.columns.iter().enumerate() {
            let plain = self.record.get(column).unwrap_or("");
            let encoded = mv_column.and_then(|mv| self.record.get(mv)).unwrap_or("");
            if !encoded.is_empty()
                && let Some(mut values) = decode_multivalue(encoded)
            {
                row.values[i] = if values.len() == 1 {
                    FieldValue::Single(values.pop().unwrap_or_default())
                } else {
                    FieldValue::Multi(values)
                };
                row.present[i] = true;
                continue;
            }
            if plain.is_empty() {
                row.present[i] = false;
                continue;
            }
            match &mut row.values[i] {
                FieldValue::Single(value) => {
                    value.clear();
                    value.push_str(plain);
                }
                other => *other = FieldValue::Single(plain.to_string()),
            }
            row.present[i] = true;
        }
    }

    /// Reads the next row into `row` (made by `Row::empty` or read into before), reusing its
    /// storage: `Ok(false)` at the end of the file. After an error, nothing more is read.
    pub fn read_into(&mut self, row: &mut Row) -> Result<bool> {
        let Some(header) = &self.header else {
            return Ok(false);
        };
        match self.reader.read_record(&mut self.record) {
            Ok(false) => Ok(false),
            Ok(true) => {
                if !Arc::ptr_eq(&row.header, header) {
                    *row = Row::empty(header.clone());
                }
                row.rid.clear();
                match &self.result_id {
                    Some(result_id) => row.rid.push_str(result_id),
                    None => {
                        use std::fmt::Write as _;
                        let _ = write!(row.rid, "{}", self.next_row);
                    }
                }
                self.next_row += 1;
                self.decode_into(row);
                Ok(true)
            }
            Err(error) => {
                let header = self.header_record.as_byte_record();
                let error = describe_csv_error(&self.path, error, self.next_row, Some(header));
                self.header = None;
                Err(error)
            }
        }
    }
}

impl Iterator for ResultsReader {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Result<Row>> {
        let mut row = Row::empty(self.header.clone()?);
        match self.read_into(&mut row) {
            Ok(true) => Some(Ok(row)),
            Ok(false) => None,
            Err(error) => Some(Err(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    fn gzip(text: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(text).unwrap();
        encoder.finish().unwrap()
    }

    fn write_temp(name: &str, bytes: &[u8]) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("stackflow-results-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("results.csv.gz");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    const SAMPLE: &str = "\"_time\",src,dest,user,\"_raw\",\"__mv__time\",\"__mv_src\",\"__mv_dest\",\"__mv_user\",\"__mv__raw\"\n\
\"1700000000.123\",\"10.0.0.1\",\"10.0.0.2\",alice,\"raw line 1\",,,,,\n\
\"1700000001.000\",\"10.0.0.3\n10.0.0.4\",\"10.0.0.2\",bob,\"raw \"\"quoted\"\"\nline 2\",,\"$10.0.0.3$;$10.0.0.4$\",,,\n";

    #[test]
    fn reads_multivalue_and_quoted_fields() {
        let path = write_temp("sample", &gzip(SAMPLE.as_bytes()));
        assert_eq!(ResultsReader::validate(&path, Limits::default()).unwrap(), 2);
        let rows: Vec<Row> = ResultsReader::open(&path, None, Limits::default())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows[0].rid, "0");
        assert_eq!(rows[0].str("user"), Some("alice"));
        assert_eq!(
            rows[1].get("src"),
            Some(&FieldValue::Multi(vec!["10.0.0.3".into(), "10.0.0.4".into()]))
        );
        assert_eq!(rows[1].str("_raw"), Some("raw \"quoted\"\nline 2"));
        assert!(rows[1].fields().all(|(name, _)| !name.starts_with("__mv_")));
    }

    #[test]
    fn multi_member_gzip_is_read_to_the_end() {
        let (head, tail) = SAMPLE.split_at(SAMPLE.find("\"1700000001").unwrap());
        let mut bytes = gzip(head.as_bytes());
        bytes.extend(gzip(tail.as_bytes()));
        let path = write_temp("multi", &bytes);
        assert_eq!(ResultsReader::validate(&path, Limits::default()).unwrap(), 2);
        assert_eq!(ResultsReader::open(&path, None, Limits::default()).unwrap().count(), 2);
    }

    #[test]
    fn per_result_rows_take_the_result_id() {
        let path = write_temp("per-result", &gzip(SAMPLE.as_bytes()));
        let first = ResultsReader::open(&path, Some("7"), Limits::default())
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(first.rid, "7");
    }

    #[test]
    fn damage_is_reported_with_what_and_where() {
        let good = gzip(SAMPLE.as_bytes());
        let truncated = write_temp("truncated", &good[..good.len() - 12]);
        let message =
            ResultsReader::validate(&truncated, Limits::default()).unwrap_err().to_string();
        assert!(message.contains("truncated"), "{message}");

        let corrupt = write_temp("corrupt", b"this is not gzip at all");
        let message = ResultsReader::validate(&corrupt, Limits::default()).unwrap_err().to_string();
        assert!(message.contains("not valid gzip"), "{message}");

        let ragged = write_temp("ragged", &gzip(b"a,b,c\n1,2,3\n4,5\n"));
        let message = ResultsReader::validate(&ragged, Limits::default()).unwrap_err().to_string();
        assert!(message.contains("row 1 has 2 fields but the header has 3"), "{message}");

        let missing =
            ResultsReader::validate(Path::new("/nonexistent/results.csv.gz"), Limits::default())
                .unwrap_err();
        assert_eq!(missing.exit_code(), crate::error::ExitCode::BadResults);
    }

    #[test]
    fn zero_rows_and_empty_files_are_fine() {
        assert_eq!(
            ResultsReader::validate(&write_temp("header-only", &gzip(b"a,b\n")), Limits::default())
                .unwrap(),
            0
        );
        assert_eq!(
            ResultsReader::validate(&write_temp("empty", &gzip(b"")), Limits::default()).unwrap(),
            0
        );
        assert_eq!(
            ResultsReader::open(&write_temp("empty2", &gzip(b"")), None, Limits::default())
                .unwrap()
                .count(),
            0
        );
    }

    /// What the `csv` crate (configured as `open_csv` does, but flexible) makes of `body`:
    /// the number of records, and the most fields, value bytes and record bytes in one.
    fn csv_crate_shape(body: &[u8]) -> (u64, u64, u64, u64) {
        let mut reader =
            csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(body);
        let mut record = csv::ByteRecord::new();
        let (mut records, mut fields, mut field_bytes, mut record_bytes) = (0, 0, 0, 0);
        while reader.read_byte_record(&mut record).unwrap() {
            records += 1;
            fields = fields.max(record.len() as u64);
            field_bytes = field_bytes.max(record.iter().map(|f| f.len() as u64).max().unwrap());
            record_bytes = record_bytes.max(record.as_slice().len() as u64);
        }
        (records, fields, field_bytes, record_bytes)
    }

    /// Reads `body` through a `Guard`, `chunk` bytes per read; the refusal, if any.
    fn guard_outcome(body: &[u8], limits: Limits, chunk: usize) -> Option<Refusal> {
        guard_records(body, limits, chunk).err()
    }

    /// The number of records the guard saw in `body`, or its refusal.
    fn guard_records(body: &[u8], limits: Limits, chunk: usize) -> Result<u64, Refusal> {
        let mut guard = Guard::new(body, limits);
        let mut buf = vec![0; chunk];
        loop {
            match guard.read(&mut buf) {
                Ok(0) => return Ok(guard.record + u64::from(guard.state != Scan::StartRecord)),
                Ok(_) => {}
                Err(error) => {
                    return Err(error
                        .get_ref()
                        .unwrap()
                        .downcast_ref::<Refusal>()
                        .unwrap()
                        .clone());
                }
            }
        }
    }

    /// Every string of up to 5 bytes over `a , " CR LF`, and some longer ones (the cases of
    /// `splunk_csv`'s tokenizer test, which are aimed at the same grammar): the guard's fields, values and
    /// records are the `csv` crate's (a limit equal to the largest passes, one less refuses),
    /// and it refuses exactly the inputs that end inside a quoted value, which the `csv` crate
    /// would accept (oracle: appending `\nZ` then starts no new record).
    #[test]
    fn the_guard_agrees_with_the_csv_crate_on_every_small_input() {
        let alphabet = [b'a', b',', b'"', b'\r', b'\n'];
        let mut inputs: Vec<Vec<u8>> = vec![Vec::new()];
        let mut last = vec![Vec::new()];
        for _ in 0..5 {
            last = last
                .iter()
                .flat_map(|prefix| {
                    alphabet.iter().map(move |&byte| {
                        let mut next: Vec<u8> = prefix.clone();
                        next.push(byte);
                        next
                    })
                })
                .collect();
            inputs.extend(last.iter().cloned());
        }
        for longer in [
            &b"a,b\r\n1,2\r\n"[..],
            b"a,b\n\n\n1,2\n\r\n3,4\n",
            b"a,b\n\"x,\"\"y\"\"\",\"multi\nline\r\nz\"\n",
            b"a,b\n\"ab\"cd,e\"f\n",
            b"a,b\n\"\"\"\",\"x\"\"\"\n",
            b"a,b\n1,\"unterminated\n2,3",
            b"\"h,1\",\"h\"\"2\"\n1,2\n",
            "a\n\"T\u{fa} \u{1f440}\"\n".as_bytes(),
        ] {
            inputs.push(longer.to_vec());
        }
        let unlimited = Limits {
            max_results_bytes: u64::MAX,
            max_record_bytes: u64::MAX,
            max_field_bytes: u64::MAX,
            max_fields: u64::MAX,
        };
        for body in &inputs {
            let (records, fields, field_bytes, record_bytes) = csv_crate_shape(body);
            let extended = [body.as_slice(), b"\nZ"].concat();
            let unclosed = csv_crate_shape(&extended).0 == records;
            let exact = Limits {
                max_results_bytes: body.len() as u64,
                max_record_bytes: record_bytes.max(1),
                max_field_bytes: field_bytes.max(1),
                max_fields: fields.max(1),
            };
            let shown = String::from_utf8_lossy(body);
            for chunk in [1, 3, 64] {
                let outcome = guard_outcome(body, exact, chunk);
                if unclosed {
                    assert!(
                        matches!(outcome, Some(Refusal::Unclosed { .. })),
                        "{shown:?} by {chunk}: {outcome:?}"
                    );
                    continue;
                }
                assert_eq!(outcome, None, "{shown:?} by {chunk}");
                assert_eq!(guard_records(body, unlimited, chunk), Ok(records), "{shown:?}");
                if fields > 1 {
                    let limits = Limits { max_fields: fields - 1, ..exact };
                    let outcome = guard_outcome(body, limits, chunk);
                    assert!(
                        matches!(outcome, Some(Refusal::Fields { .. })),
                        "{shown:?}: {outcome:?}"
                    );
                }
                if field_bytes > 1 {
                    let limits = Limits { max_field_bytes: field_bytes - 1, ..exact };
                    let outcome = guard_outcome(body, limits, chunk);
                    assert!(
                        matches!(outcome, Some(Refusal::FieldBytes { .. })),
                        "{shown:?}: {outcome:?}"
                    );
                }
                if record_bytes > 1 && record_bytes > field_bytes {
                    let limits = Limits { max_record_bytes: record_bytes - 1, ..exact };
                    let outcome = guard_outcome(body, limits, chunk);
                    assert!(
                        matches!(outcome, Some(Refusal::RecordBytes { .. })),
                        "{shown:?}: {outcome:?}"
                    );
                }
                if !body.is_empty() {
                    let limits = Limits { max_results_bytes: body.len() as u64 - 1, ..exact };
                    let outcome = guard_outcome(body, limits, chunk);
                    assert!(
                        matches!(outcome, Some(Refusal::ResultsBytes { .. })),
                        "{shown:?}: {outcome:?}"
                    );
                }
            }
        }
    }

    /// Counts the bytes taken from an endless source.
    struct Counted<R> {
        inner: R,
        taken: std::rc::Rc<std::cell::Cell<u64>>,
    }

    impl<R: Read> Read for Counted<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.taken.set(self.taken.get() + n as u64);
            Ok(n)
        }
    }

    #[test]
    fn an_endless_value_is_refused_after_the_limit_not_at_the_end() {
        let limits = Limits { max_field_bytes: 1 << 20, ..Limits::default() };
        for (start, quoted) in [(&b"a,b\n1,\""[..], true), (&b"a,b\n1,"[..], false)] {
            let taken = std::rc::Rc::new(std::cell::Cell::new(0));
            let endless =
                Counted { inner: start.chain(std::io::repeat(b'A')), taken: taken.clone() };
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .buffer_capacity(256 * 1024)
                .from_reader(Guard::new(endless, limits));
            let mut record = csv::ByteRecord::new();
            assert!(reader.read_byte_record(&mut record).unwrap(), "the header");
            let header = record.clone();
            let error = reader.read_byte_record(&mut record).unwrap_err();
            let message =
                describe_csv_error(Path::new("r.csv.gz"), error, 0, Some(&header)).to_string();
            assert!(
                message.contains(
                    "row 0, column 2 (\"b\"): a value exceeds the limit of 1048576 bytes (1 MiB) set by stackflow.conf [limits] max_field_bytes"
                ),
                "quoted {quoted}: {message}"
            );
            // The parser held at most the limit plus its buffer: the source was not drained.
            assert!(taken.get() <= (1 << 20) + 2 * 256 * 1024, "took {}", taken.get());
        }
    }

    #[test]
    fn limits_name_the_key_the_value_and_the_place() {
        let fail = |name: &str, limits: Limits, text: &[u8]| {
            let path = write_temp(name, &gzip(text));
            let error = ResultsReader::validate(&path, limits).unwrap_err();
            assert_eq!(error.exit_code(), crate::error::ExitCode::BadResults);
            error.to_string()
        };
        let small = Limits {
            max_results_bytes: 3 * MIB,
            max_record_bytes: 30,
            max_field_bytes: 10,
            max_fields: 4,
        };
        let message = fail("field", small, b"a,_raw\n1,2\n3,\"0123456789x\"\n");
        assert!(
            message.ends_with(
                "row 1, column 2 (\"_raw\"): a value exceeds the limit of 10 bytes set by stackflow.conf [limits] max_field_bytes"
            ),
            "{message}"
        );
        let message = fail("record", small, b"a,b,c,d\n0123456789,0123456789,0123456789,x\n");
        assert!(
            message.ends_with(
                "row 0 exceeds the limit of 30 bytes set by stackflow.conf [limits] max_record_bytes"
            ),
            "{message}"
        );
        let message = fail("fields", small, b"a,b,c,d,e\n");
        assert!(
            message.ends_with(
                "the header has more than 4 fields, the limit set by stackflow.conf [limits] max_fields"
            ),
            "{message}"
        );
        let big = "x\n".repeat(2 * MIB as usize);
        let message = fail("total", small, format!("a\n{big}").as_bytes());
        assert!(
            message.contains(
                "the decompressed CSV exceeds the limit of 3145728 bytes (3 MiB) set by stackflow.conf [limits] max_results_bytes (reached in row "
            ),
            "{message}"
        );
        let message = fail("unclosed", Limits::default(), b"a,b\n1,2\n3,\"4\n5,6\n");
        assert!(
            message.ends_with(
                "row 1, column 2 (\"b\"): a quoted field is not closed before the end of the file (truncated or malformed CSV)"
            ),
            "{message}"
        );
        // The second pass reports the same way.
        let path = write_temp("unclosed-open", &gzip(b"a,b\n1,2\n3,\"4\n"));
        let mut rows = ResultsReader::open(&path, None, Limits::default()).unwrap();
        assert!(rows.next().unwrap().is_ok());
        let message = rows.next().unwrap().unwrap_err().to_string();
        assert!(
            message.contains("row 1, column 2 (\"b\"): a quoted field is not closed"),
            "{message}"
        );
        assert!(rows.next().is_none());
    }

    #[test]
    fn limits_come_from_the_limits_stanza() {
        assert_eq!(Limits::from_conf(&ConfFile::default()).unwrap(), Limits::default());
        let conf = ConfFile::parse_str("[limits]\nmax_fields = 12\nmax_field_bytes =\n");
        let limits = Limits::from_conf(&conf).unwrap();
        assert_eq!(limits.max_fields, 12);
        assert_eq!(limits.max_field_bytes, Limits::default().max_field_bytes);
        for bad in ["0", "-1", "lots", "1.5", "16MB"] {
            let conf = ConfFile::parse_str(&format!("[limits]\nmax_record_bytes = {bad}\n"));
            let error = Limits::from_conf(&conf).unwrap_err();
            assert_eq!(error.exit_code(), crate::error::ExitCode::Configuration);
            assert!(error.to_string().contains("[limits] max_record_bytes"), "{error}");
        }
    }

    #[test]
    fn only_regular_files_are_read() {
        let dir = write_temp("not-regular", b"").parent().unwrap().to_path_buf();
        let message = ResultsReader::validate(&dir, Limits::default()).unwrap_err().to_string();
        assert!(message.contains("not a regular file (a directory)"), "{message}");
        #[cfg(unix)]
        {
            let message = ResultsReader::validate(Path::new("/dev/null"), Limits::default())
                .unwrap_err()
                .to_string();
            assert!(message.contains("not a regular file (a device)"), "{message}");
        }
    }

    #[test]
    fn multivalue_decoding_handles_dollars_and_rejects_junk() {
        assert_eq!(decode_multivalue("$dollar$$bill$;$bar$").unwrap(), vec!["dollar$bill", "bar"]);
        assert_eq!(decode_multivalue("$$").unwrap(), vec![""]);
        assert!(decode_multivalue("plain").is_none());
        assert!(decode_multivalue("$open").is_none());
    }
}
