//! Splunk's alert results file: gzip CSV, streamed row by row in constant memory.
//!
//! Format (Splunk's alert_actions.conf.spec and Intersplunk's `$a$;$b$` multivalue encoding): gzip (possibly several members) around RFC-4180 CSV,
//! first line the header, `_`-prefixed names quoted, and for every field `f` that can be
//! multivalue a `__mv_f` column holding `$v1$;$v2$` with `$` doubled; an empty `__mv_f` means
//! the plain column is a single value. Fields may hold newlines.
//!
//! The file is untrusted input of unbounded size (3 MB of gzip can hold a 3 GiB cell), so it is
//! read through `Guard` (`results/guard.rs`): a byte-level shadow of the CSV grammar the `csv` crate applies, sitting
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
use flate2::read::MultiGzDecoder;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod guard;

pub use guard::Limits;
use guard::{Guard, Refusal};

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
mod tests;
