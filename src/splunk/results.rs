//! Splunk's alert results file: gzip CSV, streamed row by row in constant memory.
//!
//! Format (splunk-alert-actions.md §2): gzip (possibly several members) around RFC-4180 CSV,
//! first line the header, `_`-prefixed names quoted, and for every field `f` that can be
//! multivalue a `__mv_f` column holding `$v1$;$v2$` with `$` doubled; an empty `__mv_f` means
//! the plain column is a single value. Fields may be of any size and hold newlines.
//!
//! Only regular files are opened: a FIFO, a directory or a device is refused before it is read.
//!
//! `validate` reads the whole file once without keeping rows, so that a corrupt or truncated
//! file is refused before anything is sent ("nothing half-sent"); it also yields the row count.

use crate::error::{Error, Result};
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
#[derive(Clone, Debug)]
pub struct Row {
    /// 0-based row number, or the per-result alert's `result_id`.
    pub rid: String,
    header: Arc<Header>,
    values: Vec<Option<FieldValue>>,
}

impl Row {
    /// Builds a row by hand (tests, the payload's `result`).
    pub fn from_pairs(rid: &str, pairs: &[(&str, FieldValue)]) -> Row {
        let names: Vec<String> = pairs.iter().map(|(name, _)| name.to_string()).collect();
        let index = names.iter().enumerate().map(|(i, name)| (name.clone(), i)).collect();
        let columns = (0..names.len()).map(|i| (i, None)).collect();
        let header = Arc::new(Header { names, columns, index });
        let values =
            pairs.iter().map(|(_, value)| Some(value.clone()).filter(|v| !v.is_empty())).collect();
        Row { rid: rid.to_string(), header, values }
    }

    pub fn get(&self, name: &str) -> Option<&FieldValue> {
        self.header.index.get(name).and_then(|&i| self.values[i].as_ref())
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
            .zip(&self.values)
            .filter_map(|(name, value)| Some((name.as_str(), value.as_ref()?)))
    }

    pub fn len(&self) -> usize {
        self.values.iter().filter(|value| value.is_some()).count()
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
/// `maxtime`, a device may never end) behind the gzip decoder and the CSV parser.
fn open_csv(path: &Path) -> Result<csv::Reader<Box<dyn Read>>> {
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
    let decoder: Box<dyn Read> =
        Box::new(MultiGzDecoder::new(BufReader::with_capacity(256 * 1024, file)));
    Ok(csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(false)
        .buffer_capacity(256 * 1024)
        .from_reader(decoder))
}

fn describe_csv_error(path: &Path, error: csv::Error, row_number: u64) -> Error {
    let detail = match error.kind() {
        csv::ErrorKind::Io(io) => match io.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                "the gzip stream ends early (truncated file)".to_string()
            }
            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
                format!("not valid gzip data: {io}")
            }
            _ => format!("cannot read: {io}"),
        },
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
    pub fn open(path: &Path, result_id: Option<&str>) -> Result<ResultsReader> {
        let mut reader = ResultsReader {
            path: path.to_path_buf(),
            reader: open_csv(path)?,
            header: None,
            record: csv::StringRecord::new(),
            next_row: 0,
            result_id: result_id.map(str::to_string),
        };
        match reader.reader.read_record(&mut reader.record) {
            Ok(true) => reader.header = Some(Arc::new(Header::from_record(&reader.record))),
            Ok(false) => {}
            Err(error) => return Err(describe_csv_error(path, error, 0)),
        }
        Ok(reader)
    }

    /// Reads the whole file once, keeping nothing, and returns the number of rows. Any
    /// corruption is reported here, before a single item is sent.
    pub fn validate(path: &Path) -> Result<u64> {
        let mut reader = open_csv(path)?;
        let mut record = csv::ByteRecord::new();
        let mut rows: u64 = 0;
        let mut header_len = None;
        loop {
            match reader.read_byte_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    if header_len.is_none() {
                        header_len = Some(record.len());
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
                Err(error) => return Err(describe_csv_error(path, error, rows)),
            }
        }
        Ok(rows)
    }

    pub fn header(&self) -> Option<&Arc<Header>> {
        self.header.as_ref()
    }

    fn decode(&self, header: &Arc<Header>) -> Vec<Option<FieldValue>> {
        header
            .columns
            .iter()
            .map(|&(column, mv_column)| {
                let plain = self.record.get(column).unwrap_or("");
                let encoded = mv_column.and_then(|mv| self.record.get(mv)).unwrap_or("");
                if !encoded.is_empty() {
                    if let Some(values) = decode_multivalue(encoded) {
                        return Some(if values.len() == 1 {
                            FieldValue::Single(values.into_iter().next().unwrap_or_default())
                        } else {
                            FieldValue::Multi(values)
                        });
                    }
                }
                (!plain.is_empty()).then(|| FieldValue::Single(plain.to_string()))
            })
            .collect()
    }
}

impl Iterator for ResultsReader {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Result<Row>> {
        let header = self.header.clone()?;
        match self.reader.read_record(&mut self.record) {
            Ok(false) => None,
            Ok(true) => {
                let rid = match &self.result_id {
                    Some(result_id) => result_id.clone(),
                    None => self.next_row.to_string(),
                };
                self.next_row += 1;
                let values = self.decode(&header);
                Some(Ok(Row { rid, header, values }))
            }
            Err(error) => {
                let error = describe_csv_error(&self.path, error, self.next_row);
                self.header = None;
                Some(Err(error))
            }
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
        assert_eq!(ResultsReader::validate(&path).unwrap(), 2);
        let rows: Vec<Row> =
            ResultsReader::open(&path, None).unwrap().map(Result::unwrap).collect();
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
        assert_eq!(ResultsReader::validate(&path).unwrap(), 2);
        assert_eq!(ResultsReader::open(&path, None).unwrap().count(), 2);
    }

    #[test]
    fn per_result_rows_take_the_result_id() {
        let path = write_temp("per-result", &gzip(SAMPLE.as_bytes()));
        let first = ResultsReader::open(&path, Some("7")).unwrap().next().unwrap().unwrap();
        assert_eq!(first.rid, "7");
    }

    #[test]
    fn damage_is_reported_with_what_and_where() {
        let good = gzip(SAMPLE.as_bytes());
        let truncated = write_temp("truncated", &good[..good.len() - 12]);
        let message = ResultsReader::validate(&truncated).unwrap_err().to_string();
        assert!(message.contains("truncated"), "{message}");

        let corrupt = write_temp("corrupt", b"this is not gzip at all");
        let message = ResultsReader::validate(&corrupt).unwrap_err().to_string();
        assert!(message.contains("not valid gzip"), "{message}");

        let ragged = write_temp("ragged", &gzip(b"a,b,c\n1,2,3\n4,5\n"));
        let message = ResultsReader::validate(&ragged).unwrap_err().to_string();
        assert!(message.contains("row 1 has 2 fields but the header has 3"), "{message}");

        let missing =
            ResultsReader::validate(Path::new("/nonexistent/results.csv.gz")).unwrap_err();
        assert_eq!(missing.exit_code(), crate::error::ExitCode::BadResults);
    }

    #[test]
    fn zero_rows_and_empty_files_are_fine() {
        assert_eq!(
            ResultsReader::validate(&write_temp("header-only", &gzip(b"a,b\n"))).unwrap(),
            0
        );
        assert_eq!(ResultsReader::validate(&write_temp("empty", &gzip(b""))).unwrap(), 0);
        assert_eq!(
            ResultsReader::open(&write_temp("empty2", &gzip(b"")), None).unwrap().count(),
            0
        );
    }

    #[test]
    fn only_regular_files_are_read() {
        let dir = write_temp("not-regular", b"").parent().unwrap().to_path_buf();
        let message = ResultsReader::validate(&dir).unwrap_err().to_string();
        assert!(message.contains("not a regular file (a directory)"), "{message}");
        #[cfg(unix)]
        {
            let message = ResultsReader::validate(Path::new("/dev/null")).unwrap_err().to_string();
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
