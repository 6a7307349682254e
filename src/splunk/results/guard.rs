//! `Guard`: the limits of one results file (`[limits]`), enforced on the decompressed bytes
//! before the CSV parser sees them, by a byte-level shadow of the grammar the `csv` crate
//! applies (see `results`' module doc for why).

use crate::error::{Error, Result};
use crate::splunk::conf::ConfFile;
use std::io::Read;

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
    /// `max_fields`: the Splunk fields of one row (or of the header). A field and its `__mv_`
    /// column are one field; a row may have at most twice as many columns.
    pub max_fields: u64,
}

pub(super) const MIB: u64 = 1024 * 1024;

/// The prefix of the column Splunk writes beside a field for its multivalues.
const MV_PREFIX: &[u8] = b"__mv_";
const MV_MISMATCH: usize = usize::MAX;

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
pub(super) enum Refusal {
    /// The decompressed CSV is larger than `max_results_bytes`.
    ResultsBytes { limit: u64, record: u64 },
    /// A record has more than `max_fields` fields (or more than twice as many columns).
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
    pub(super) fn describe(&self, name: impl Fn(u64) -> Option<String>) -> String {
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
pub(super) enum Scan {
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
pub(super) struct Guard<R> {
    inner: R,
    limits: Limits,
    pub(super) state: Scan,
    /// Decompressed bytes so far.
    total: u64,
    /// The record being scanned: 0 is the header.
    pub(super) record: u64,
    /// Columns begun in this record (so the current one is `fields`, 1-based).
    fields: u64,
    /// Splunk fields of this record so far: columns that are not `__mv_` columns.
    splunk_fields: u64,
    /// Whether each column of the header is an `__mv_` column (at most twice `max_fields`).
    header_mv: Vec<bool>,
    /// Bytes of the current header value that match `__mv_` so far; `MV_MISMATCH` once one
    /// does not.
    mv_match: usize,
    field_bytes: u64,
    record_bytes: u64,
    refused: Option<Refusal>,
}

impl<R: Read> Guard<R> {
    pub(super) fn new(inner: R, limits: Limits) -> Guard<R> {
        Guard {
            inner,
            limits,
            state: Scan::StartRecord,
            total: 0,
            record: 0,
            fields: 0,
            splunk_fields: 0,
            header_mv: Vec::new(),
            mv_match: 0,
            field_bytes: 0,
            record_bytes: 0,
            refused: None,
        }
    }

    /// Counts the bytes of value `bytes` (and, in the header, looks for the `__mv_` prefix).
    fn value_bytes(&mut self, bytes: &[u8]) -> std::result::Result<(), Refusal> {
        if self.record == 0 {
            for byte in bytes {
                match MV_PREFIX.get(self.mv_match) {
                    Some(expected) if expected == byte => self.mv_match += 1,
                    Some(_) => self.mv_match = MV_MISMATCH,
                    None => break,
                }
            }
        }
        let n = bytes.len();
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

    fn too_many_fields(&self) -> Refusal {
        Refusal::Fields { limit: self.limits.max_fields, record: self.record }
    }

    /// A column begins. Rows count their fields here (the header says which columns are
    /// `__mv_` ones); the header counts a column when its name is known ([`Self::end_header_field`]).
    fn next_field(&mut self) -> std::result::Result<(), Refusal> {
        self.fields += 1;
        self.field_bytes = 0;
        self.mv_match = 0;
        self.state = Scan::StartField;
        if self.fields > self.limits.max_fields.saturating_mul(2) {
            return Err(self.too_many_fields());
        }
        if self.record > 0 {
            let column = usize::try_from(self.fields - 1).unwrap_or(usize::MAX);
            if !self.header_mv.get(column).copied().unwrap_or(false) {
                self.splunk_fields += 1;
                if self.splunk_fields > self.limits.max_fields {
                    return Err(self.too_many_fields());
                }
            }
        }
        Ok(())
    }

    /// A header column ends: an `__mv_` column, or one more field.
    fn end_header_field(&mut self) -> std::result::Result<(), Refusal> {
        // Once per column (the end of the file may ask again).
        if self.record != 0 || self.header_mv.len() as u64 >= self.fields {
            return Ok(());
        }
        let mv = self.mv_match == MV_PREFIX.len();
        self.header_mv.push(mv);
        if !mv {
            self.splunk_fields += 1;
            if self.splunk_fields > self.limits.max_fields {
                return Err(self.too_many_fields());
            }
        }
        Ok(())
    }

    fn end_record(&mut self) -> std::result::Result<(), Refusal> {
        self.end_header_field()?;
        self.record += 1;
        self.state = Scan::StartRecord;
        Ok(())
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
                        self.splunk_fields = 0;
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
                    self.value_bytes(&rest[..run]).map_err(at)?;
                    i += run;
                    if let Some(&byte) = bytes.get(i) {
                        i += 1;
                        if byte == b',' {
                            self.end_header_field().map_err(at)?;
                            self.next_field().map_err(at)?;
                        } else {
                            self.end_record().map_err(at)?;
                        }
                    }
                }
                Scan::InQuoted => {
                    let rest = &bytes[i..];
                    let run = rest.iter().position(|&b| b == b'"').unwrap_or(rest.len());
                    self.value_bytes(&rest[..run]).map_err(at)?;
                    i += run;
                    if i < bytes.len() {
                        i += 1;
                        self.state = Scan::QuoteInQuoted;
                    }
                }
                Scan::QuoteInQuoted => {
                    if bytes[i] == b'"' {
                        self.value_bytes(b"\"").map_err(at)?;
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
            // A header that ends the file without a line end: its last column still counts.
            if self.state != Scan::StartRecord
                && let Err(refusal) = self.end_header_field()
            {
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
