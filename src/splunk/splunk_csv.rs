//! The CSV body of SCP v2 execute chunks: decodes splunkd's CSV (header row, `__mv_<field>`
//! multivalue companions) into a compact [`Table`], and encodes the reply as the input cells
//! plus the fields a command added. Pure in-memory code: no I/O, no framing, no protocol.
//!
//! The table keeps the body and indexes each cell as a byte range into it (own tokenizer,
//! checked against the `csv` crate in tests), so decoding copies no cell; rows the command
//! leaves unchanged are copied into the reply verbatim, in splunkd's own quoting. Invalid UTF-8
//! is replaced (lossily) only when a value is read as text. New cells use minimal quoting; line
//! ends are LF.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// Prefix of the column carrying the multivalue encoding of field `f`.
pub const MV_PREFIX: &str = "__mv_";

/// A decoded execute body.
#[derive(Clone, Default)]
pub struct Table {
    /// `false` only for an empty body (no header row at all).
    has_header: bool,
    header: Vec<String>,
    /// For each column, the index of its `__mv_` companion column, if both exist.
    mv_companion: Vec<Option<usize>>,
    name_index: HashMap<String, usize>,
    /// `cells[row * n_columns + column]`: where that cell's unquoted bytes are.
    cells: Vec<Span>,
    /// Unquoted bytes of the (rare) cells that are not a plain slice of the body because they
    /// contained `""` escapes.
    unescaped: Vec<u8>,
    /// The body as received; unchanged rows are re-encoded by copying their bytes from it.
    body: Vec<u8>,
    /// `raw_rows[row]` is that row's range in `body`, without line terminator (still quoted as
    /// splunkd quoted it).
    raw_rows: Vec<(usize, usize)>,
    n_rows: usize,
}

/// Shows the shape, never the (possibly 16 MB) body.
impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("has_header", &self.has_header)
            .field("header", &self.header)
            .field("n_rows", &self.n_rows)
            .field("n_body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// The value of a field in one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue<'a> {
    /// A single value; empty means absent (Splunk does not distinguish the two).
    Single(Cow<'a, str>),
    /// Two or more values.
    Multi(Vec<String>),
}

/// A body that could not be decoded as CSV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DecodeError {}

impl Table {
    /// Decodes an execute body. An empty body gives a table without header; a header-only body
    /// gives a table with zero rows. Rows must have as many cells as the header.
    ///
    /// Takes the body by value (a `&[u8]` is copied) because rows that the command leaves
    /// unchanged are re-encoded straight from it.
    pub fn decode(body: impl Into<Vec<u8>>) -> Result<Table, DecodeError> {
        let body: Vec<u8> = body.into();
        let mut table = Table::default();
        table.decode_rows(&body)?;
        table.body = body;
        Ok(table)
    }

    fn decode_rows(&mut self, body: &[u8]) -> Result<(), DecodeError> {
        if u32::try_from(body.len()).map_or(true, |len| len >= Span::UNESCAPED) {
            return Err(DecodeError {
                message: format!("csv body of {} bytes is larger than 2 GiB", body.len()),
            });
        }
        let mut tokenizer = Tokenizer { body, pos: 0 };
        let mut header_cells = Vec::new();
        let Some(_) = tokenizer.next_record(&mut header_cells, &mut self.unescaped) else {
            return Ok(());
        };
        self.has_header = true;
        self.header = header_cells
            .iter()
            .map(|span| String::from_utf8_lossy(span.bytes(body, &self.unescaped)).into_owned())
            .collect();
        self.unescaped.clear();
        for (column, name) in self.header.iter().enumerate() {
            self.name_index.entry(name.clone()).or_insert(column);
        }
        self.mv_companion = self
            .header
            .iter()
            .map(|name| self.name_index.get(&format!("{MV_PREFIX}{name}")).copied())
            .collect();

        let n_columns = self.header.len();
        let mut record_no = 1;
        loop {
            let n_before = self.cells.len();
            let Some(raw_row) = tokenizer.next_record(&mut self.cells, &mut self.unescaped) else {
                break;
            };
            record_no += 1;
            let n_cells = self.cells.len() - n_before;
            if n_cells != n_columns {
                return Err(DecodeError {
                    message: format!(
                        "csv record {record_no} (byte {}) has {n_cells} fields but the header \
                         has {n_columns}",
                        raw_row.0
                    ),
                });
            }
            if self.n_rows == 0 {
                // Estimate the row count from the first row, so millions of offsets are not
                // regrown; a wrong guess only costs a regrowth, and the cap keeps a tiny first
                // row in a huge body from reserving gigabytes.
                const MAX_RESERVED_CELLS: usize = 8 * 1024 * 1024;
                let n_rows_estimate = (body.len() - raw_row.0) / (raw_row.1 - raw_row.0 + 1) + 1;
                let n_cells_estimate = n_rows_estimate.saturating_mul(n_columns);
                self.cells.reserve(n_cells_estimate.min(MAX_RESERVED_CELLS));
                self.raw_rows.reserve(n_rows_estimate.min(MAX_RESERVED_CELLS));
            }
            self.raw_rows.push(raw_row);
            self.n_rows += 1;
        }
        Ok(())
    }

    /// `false` for an empty body.
    pub fn has_header(&self) -> bool {
        self.has_header
    }

    /// Column names, in input order (including `__mv_` and `_chunked_idx` columns).
    pub fn header(&self) -> &[String] {
        &self.header
    }

    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    pub fn n_columns(&self) -> usize {
        self.header.len()
    }

    /// The column of field `name` (the first one if the header repeats it).
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.name_index.get(name).copied()
    }

    /// The raw (unquoted) bytes of one cell; empty when out of range.
    pub fn cell(&self, row: usize, column: usize) -> &[u8] {
        let n_columns = self.header.len();
        if row >= self.n_rows || column >= n_columns {
            return b"";
        }
        self.cells
            .get(row * n_columns + column)
            .map_or(b"", |span| span.bytes(&self.body, &self.unescaped))
    }

    /// One row as it was in the input, without its line terminator.
    pub fn raw_row(&self, row: usize) -> &[u8] {
        self.raw_rows
            .get(row)
            .and_then(|(start, end)| self.body.get(*start..*end))
            .unwrap_or_default()
    }

    /// The cell as text, invalid UTF-8 replaced.
    pub fn cell_str(&self, row: usize, column: usize) -> Cow<'_, str> {
        String::from_utf8_lossy(self.cell(row, column))
    }

    /// The value of a field: the `__mv_` companion, when present and non-empty, overrides the
    /// plain cell (as splunklib decodes it). Out-of-range positions give an empty value.
    pub fn value(&self, row: usize, column: usize) -> FieldValue<'_> {
        if let Some(Some(mv_column)) = self.mv_companion.get(column) {
            let encoded = self.cell(row, *mv_column);
            if !encoded.is_empty()
                && let Some(values) = decode_multivalue(encoded)
            {
                return FieldValue::from(values);
            }
        }
        FieldValue::Single(self.cell_str(row, column))
    }

    /// [`Table::value`] by field name; `None` when the header has no such field.
    pub fn value_by_name(&self, row: usize, name: &str) -> Option<FieldValue<'_>> {
        self.field_index(name).map(|column| self.value(row, column))
    }
}

impl FieldValue<'_> {
    /// Every value: one for `Single` (possibly empty), two or more for `Multi`.
    pub fn values(&self) -> Vec<&str> {
        match self {
            FieldValue::Single(value) => vec![value.as_ref()],
            FieldValue::Multi(values) => values.iter().map(String::as_str).collect(),
        }
    }

    pub fn into_owned(self) -> FieldValue<'static> {
        match self {
            FieldValue::Single(value) => FieldValue::Single(Cow::Owned(value.into_owned())),
            FieldValue::Multi(values) => FieldValue::Multi(values),
        }
    }
}

impl From<String> for FieldValue<'static> {
    fn from(value: String) -> Self {
        FieldValue::Single(Cow::Owned(value))
    }
}

impl From<&str> for FieldValue<'static> {
    fn from(value: &str) -> Self {
        FieldValue::Single(Cow::Owned(value.to_owned()))
    }
}

/// Zero values become an empty single value, one value a single value.
impl From<Vec<String>> for FieldValue<'static> {
    fn from(mut values: Vec<String>) -> Self {
        match values.len() {
            0 => FieldValue::Single(Cow::Borrowed("")),
            1 => FieldValue::Single(Cow::Owned(values.swap_remove(0))),
            _ => FieldValue::Multi(values),
        }
    }
}

/// Where a cell's unquoted bytes are: `body[start..end]`, or `unescaped[start..end]` when the
/// `UNESCAPED` bit of `start` is set.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

impl Span {
    const UNESCAPED: u32 = 1 << 31;

    fn bytes<'a>(self, body: &'a [u8], unescaped: &'a [u8]) -> &'a [u8] {
        let (source, start) = if self.start & Span::UNESCAPED == 0 {
            (body, self.start)
        } else {
            (unescaped, self.start & !Span::UNESCAPED)
        };
        source.get(start as usize..self.end as usize).unwrap_or_default()
    }
}

/// An RFC 4180 tokenizer with the `csv` crate's leniencies: `\n`, `\r\n` or `\r` end a
/// record, blank lines are skipped, a quote inside an unquoted cell is literal, bytes after a
/// closing quote are appended to the cell, and an unterminated quoted cell runs to the end.
/// Offsets fit in `u32`: `decode_rows` rejects bodies of 2 GiB or more.
struct Tokenizer<'a> {
    body: &'a [u8],
    pos: usize,
}

impl Tokenizer<'_> {
    /// Appends the next record's cells; returns the record's byte range without its line
    /// terminator, or `None` at the end of the body.
    fn next_record(
        &mut self,
        cells: &mut Vec<Span>,
        unescaped: &mut Vec<u8>,
    ) -> Option<(usize, usize)> {
        let body = self.body;
        while matches!(body.get(self.pos), Some(b'\n' | b'\r')) {
            self.pos += 1;
        }
        if self.pos >= body.len() {
            return None;
        }
        let row_start = self.pos;
        loop {
            let span = if body.get(self.pos) == Some(&b'"') {
                self.quoted_cell(unescaped)
            } else {
                let start = self.pos;
                let n_bytes =
                    body[start..].iter().position(|byte| matches!(byte, b',' | b'\n' | b'\r'));
                self.pos = n_bytes.map_or(body.len(), |n_bytes| start + n_bytes);
                Span { start: start as u32, end: self.pos as u32 }
            };
            cells.push(span);
            if body.get(self.pos) == Some(&b',') {
                self.pos += 1;
            } else {
                break;
            }
        }
        let row_end = self.pos;
        if body.get(self.pos) == Some(&b'\r') {
            self.pos += 1;
        }
        if body.get(self.pos) == Some(&b'\n') {
            self.pos += 1;
        }
        Some((row_start, row_end))
    }

    /// A cell starting with `"` at `self.pos`.
    fn quoted_cell(&mut self, unescaped: &mut Vec<u8>) -> Span {
        let body = self.body;
        let content_start = self.pos + 1;
        let mut idx = content_start;
        let mut has_escapes = false;
        let content_end = loop {
            match body[idx.min(body.len())..].iter().position(|byte| *byte == b'"') {
                None => {
                    idx = body.len();
                    break body.len();
                }
                Some(n_bytes) if body.get(idx + n_bytes + 1) == Some(&b'"') => {
                    has_escapes = true;
                    idx += n_bytes + 2;
                }
                Some(n_bytes) => {
                    idx += n_bytes + 1;
                    break idx - 1;
                }
            }
        };
        let tail_start = idx;
        while idx < body.len() && !matches!(body[idx], b',' | b'\n' | b'\r') {
            idx += 1;
        }
        self.pos = idx;
        if !has_escapes && tail_start == idx {
            return Span { start: content_start as u32, end: content_end as u32 };
        }
        let start = unescaped.len();
        let mut rest = &body[content_start..content_end];
        while let Some(n_bytes) = rest.iter().position(|byte| *byte == b'"') {
            // Inside the quotes every `"` is the first of a `""` pair.
            unescaped.extend_from_slice(&rest[..=n_bytes]);
            rest = rest.get(n_bytes + 2..).unwrap_or_default();
        }
        unescaped.extend_from_slice(rest);
        unescaped.extend_from_slice(&body[tail_start..idx]);
        Span { start: start as u32 | Span::UNESCAPED, end: unescaped.len() as u32 }
    }
}

/// Decodes `$a$;$b$$c$` into `["a", "b$c"]`; `None` when the text is not in that form.
pub fn decode_multivalue(encoded: &[u8]) -> Option<Vec<String>> {
    let mut values = Vec::new();
    let mut pos = 0;
    loop {
        if encoded.get(pos) != Some(&b'$') {
            return None;
        }
        pos += 1;
        let mut value = Vec::new();
        loop {
            match encoded.get(pos) {
                None => return None,
                Some(b'$') if encoded.get(pos + 1) == Some(&b'$') => {
                    value.push(b'$');
                    pos += 2;
                }
                Some(b'$') => {
                    pos += 1;
                    break;
                }
                Some(byte) => {
                    value.push(*byte);
                    pos += 1;
                }
            }
        }
        values.push(String::from_utf8_lossy(&value).into_owned());
        match encoded.get(pos) {
            None => return Some(values),
            Some(b';') => pos += 1,
            Some(_) => return None,
        }
    }
}

/// Encodes values as `$v1$;$v2$` with `$` doubled.
pub fn encode_multivalue(values: &[String], out: &mut String) {
    for (idx, value) in values.iter().enumerate() {
        if idx > 0 {
            out.push(';');
        }
        out.push('$');
        out.push_str(&value.replace('$', "$$"));
        out.push('$');
    }
}

mod reply;

pub use reply::*;

#[cfg(test)]
pub(crate) mod tests;
