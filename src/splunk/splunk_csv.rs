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

/// Fields a command sets on the rows of one table; encoded together with it by [`encode_reply`].
#[derive(Debug, Clone, Default)]
pub struct AddedFields {
    n_rows: usize,
    names: Vec<String>,
    index: HashMap<String, usize>,
    /// `columns[field][row]`.
    columns: Vec<Vec<Option<FieldValue<'static>>>>,
    has_multi: Vec<bool>,
}

/// A field registered with [`AddedFields::field`], for setting values without a name lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSlot(usize);

impl AddedFields {
    pub fn new(n_rows: usize) -> AddedFields {
        AddedFields { n_rows, ..AddedFields::default() }
    }

    /// Registers (or finds) the field `name`. Naming an input field overrides its cells in the
    /// rows where a value is set.
    pub fn field(&mut self, name: &str) -> FieldSlot {
        if let Some(idx) = self.index.get(name) {
            return FieldSlot(*idx);
        }
        let idx = self.names.len();
        self.names.push(name.to_owned());
        self.index.insert(name.to_owned(), idx);
        self.columns.push(vec![None; self.n_rows]);
        self.has_multi.push(false);
        FieldSlot(idx)
    }

    /// Sets a value; returns `false` (and changes nothing) when `row` is out of range.
    pub fn set(&mut self, row: usize, slot: FieldSlot, value: FieldValue<'static>) -> bool {
        let value = match value {
            FieldValue::Multi(values) => FieldValue::from(values),
            single => single,
        };
        let Some(cell) = self.columns.get_mut(slot.0).and_then(|column| column.get_mut(row)) else {
            return false;
        };
        if matches!(value, FieldValue::Multi(_)) {
            self.has_multi[slot.0] = true;
        }
        *cell = Some(value);
        true
    }

    /// Names of the fields registered so far, in registration order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    fn get(&self, slot: usize, row: usize) -> Option<&FieldValue<'static>> {
        self.columns.get(slot).and_then(|column| column.get(row)).and_then(Option::as_ref)
    }
}

/// Where one output column's cells come from.
#[derive(Debug, Clone, Copy)]
enum ColumnSource {
    Input(usize),
    /// Input column overridden by added field `slot` where that field is set.
    InputOrAdded {
        column: usize,
        slot: usize,
    },
    /// The `__mv_` companion of an overridden input column.
    InputOrAddedMv {
        column: usize,
        slot: usize,
    },
    Added(usize),
    AddedMv(usize),
}

/// Where [`encode_reply`] puts bytes: a buffer, a [`ByteCount`] (the reply's exact length before
/// it is streamed), or a writer that passes blocks on.
pub trait ReplySink {
    fn put(&mut self, byte: u8);
    fn put_slice(&mut self, bytes: &[u8]);
    /// A hint: about `additional` more bytes are coming.
    fn reserve(&mut self, _additional: usize) {}
}

impl ReplySink for Vec<u8> {
    fn put(&mut self, byte: u8) {
        self.push(byte);
    }
    fn put_slice(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    fn reserve(&mut self, additional: usize) {
        Vec::reserve(self, additional);
    }
}

/// Counts the bytes [`encode_reply`] would write.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ByteCount(pub usize);

impl ReplySink for ByteCount {
    fn put(&mut self, _byte: u8) {
        self.0 += 1;
    }
    fn put_slice(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

/// Encodes the reply body: the input header (unchanged order) plus added fields, each followed by
/// a `__mv_` column when some row holds several values for it; rows are the input cells plus
/// the added cells. An empty body encodes as empty, a header-only one as header-only.
pub fn encode_reply<S: ReplySink>(table: &Table, added: &AddedFields, out: &mut S) {
    if !table.has_header {
        return;
    }
    let mut sources: Vec<ColumnSource> = (0..table.n_columns()).map(ColumnSource::Input).collect();
    let mut names: Vec<Cow<'_, str>> =
        table.header.iter().map(|name| Cow::from(name.as_str())).collect();
    for (slot, name) in added.names.iter().enumerate() {
        let needs_mv = added.has_multi[slot];
        if let Some(column) = table.field_index(name) {
            sources[column] = ColumnSource::InputOrAdded { column, slot };
            match table.mv_companion[column] {
                Some(mv_column) => {
                    sources[mv_column] = ColumnSource::InputOrAddedMv { column: mv_column, slot };
                }
                None if needs_mv => {
                    sources.push(ColumnSource::AddedMv(slot));
                    names.push(Cow::Owned(format!("{MV_PREFIX}{name}")));
                }
                None => {}
            }
        } else {
            sources.push(ColumnSource::Added(slot));
            names.push(Cow::from(name.as_str()));
            if needs_mv {
                sources.push(ColumnSource::AddedMv(slot));
                names.push(Cow::Owned(format!("{MV_PREFIX}{name}")));
            }
        }
    }

    out.reserve(table.body.len() + 64 * (table.n_rows + 1));
    for (idx, name) in names.iter().enumerate() {
        if idx > 0 {
            out.put(b',');
        }
        write_cell(out, name.as_bytes());
    }
    out.put(b'\n');

    let n_input_columns = table.n_columns();
    let override_slots: Vec<usize> = sources[..n_input_columns]
        .iter()
        .filter_map(|source| match source {
            ColumnSource::InputOrAdded { slot, .. } => Some(*slot),
            _ => None,
        })
        .collect();
    let mut scratch = String::new();
    for row in 0..table.n_rows {
        let is_overridden = override_slots.iter().any(|slot| added.get(*slot, row).is_some());
        if !is_overridden {
            // Fast path: the input row verbatim (valid CSV as splunkd quoted it), then the
            // added cells.
            out.put_slice(table.raw_row(row));
            for source in &sources[n_input_columns..] {
                out.put(b',');
                write_source(out, table, added, row, *source, &mut scratch);
            }
            out.put(b'\n');
            continue;
        }
        for (idx, source) in sources.iter().enumerate() {
            if idx > 0 {
                out.put(b',');
            }
            write_source(out, table, added, row, *source, &mut scratch);
        }
        out.put(b'\n');
    }
}

fn write_source<S: ReplySink>(
    out: &mut S,
    table: &Table,
    added: &AddedFields,
    row: usize,
    source: ColumnSource,
    scratch: &mut String,
) {
    match source {
        ColumnSource::Input(column) => write_cell(out, table.cell(row, column)),
        ColumnSource::InputOrAdded { column, slot } => match added.get(slot, row) {
            Some(value) => write_plain(out, value, scratch),
            None => write_cell(out, table.cell(row, column)),
        },
        ColumnSource::InputOrAddedMv { column, slot } => match added.get(slot, row) {
            Some(value) => write_mv(out, value, scratch),
            None => write_cell(out, table.cell(row, column)),
        },
        ColumnSource::Added(slot) => {
            if let Some(value) = added.get(slot, row) {
                write_plain(out, value, scratch);
            }
        }
        ColumnSource::AddedMv(slot) => {
            if let Some(value) = added.get(slot, row) {
                write_mv(out, value, scratch);
            }
        }
    }
}

/// The plain column of a value: multivalues joined with `\n` (as splunkd writes them).
fn write_plain<S: ReplySink>(out: &mut S, value: &FieldValue<'_>, scratch: &mut String) {
    match value {
        FieldValue::Single(value) => write_cell(out, value.as_bytes()),
        FieldValue::Multi(values) => {
            scratch.clear();
            for (idx, value) in values.iter().enumerate() {
                if idx > 0 {
                    scratch.push('\n');
                }
                scratch.push_str(value);
            }
            write_cell(out, scratch.as_bytes());
        }
    }
}

/// The `__mv_` column of a value: empty for a single value.
fn write_mv<S: ReplySink>(out: &mut S, value: &FieldValue<'_>, scratch: &mut String) {
    if let FieldValue::Multi(values) = value {
        scratch.clear();
        encode_multivalue(values, scratch);
        write_cell(out, scratch.as_bytes());
    }
}

/// Writes one cell, quoted only when it contains `,` `"` CR or LF or starts or ends with a space.
fn write_cell<S: ReplySink>(out: &mut S, cell: &[u8]) {
    let needs_quotes = match (cell.first(), cell.last()) {
        (Some(first), Some(last)) => {
            *first == b' '
                || *last == b' '
                || cell.iter().any(|byte| matches!(byte, b',' | b'"' | b'\r' | b'\n'))
        }
        _ => false,
    };
    if !needs_quotes {
        out.put_slice(cell);
        return;
    }
    out.put(b'"');
    for part in cell.split_inclusive(|byte| *byte == b'"') {
        out.put_slice(part);
        if part.last() == Some(&b'"') {
            out.put(b'"');
        }
    }
    out.put(b'"');
}

/// Benchmark hook: what the driver does with one execute body — decodes it (taking ownership,
/// as the driver does), adds field `n` (the row number) to every row and encodes the reply into
/// `out`. Returns the number of rows.
#[doc(hidden)]
pub fn bench_roundtrip(body: Vec<u8>, out: &mut Vec<u8>) -> Result<usize, DecodeError> {
    let table = Table::decode(body)?;
    let mut added = AddedFields::new(table.n_rows());
    let slot = added.field("n");
    for row in 0..table.n_rows() {
        added.set(row, slot, FieldValue::from(row.to_string()));
    }
    encode_reply(&table, &added, out);
    Ok(table.n_rows())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Read;

    /// Gunzips a fixture from `tests/fixtures/scpv2/`.
    pub(crate) fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/scpv2/{name}", env!("CARGO_MANIFEST_DIR"));
        let raw = std::fs::read(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
        if !name.ends_with(".gz") {
            return raw;
        }
        let mut text = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut text).unwrap();
        text
    }

    /// The body of the `n`th chunk of a recorded stream.
    pub(crate) fn chunk_body(stream: &[u8], n: usize) -> Vec<u8> {
        let mut input = stream;
        let mut chunk = None;
        for _ in 0..=n {
            chunk = crate::splunk::chunked::read_chunk(&mut input).unwrap();
        }
        chunk.unwrap().body
    }

    fn single(text: &str) -> FieldValue<'static> {
        FieldValue::from(text)
    }

    fn multi(values: &[&str]) -> FieldValue<'static> {
        FieldValue::Multi(values.iter().map(|v| v.to_string()).collect())
    }

    #[test]
    fn decodes_splunk_style_body_with_multivalues() {
        let body = b"\"_raw\",x,\"_chunked_idx\",\"__mv__raw\",\"__mv_x\",\"__mv__chunked_idx\"\n\
            \"hello, world\",1,0,,,\n\"multi\nline\",\"a\nb\",1,,\"$a$;$b$$c$\",\n";
        let table = Table::decode(body).unwrap();
        assert_eq!(table.n_rows(), 2);
        assert_eq!(table.header()[2], "_chunked_idx");
        let x = table.field_index("x").unwrap();
        assert_eq!(table.value(0, x), single("1"));
        assert_eq!(table.value(1, x), multi(&["a", "b$c"]));
        assert_eq!(table.value_by_name(1, "_raw"), Some(single("multi\nline")));
        assert_eq!(table.value_by_name(0, "nope"), None);
        // An `__mv_` column is only a companion when its plain column exists.
        let lone = Table::decode(b"__mv_y\n$a$;$b$\n").unwrap();
        assert_eq!(lone.value(0, 0), single("$a$;$b$"));
    }

    #[test]
    fn multivalue_codec_matches_splunklib() {
        let values: Vec<String> = ["a$b", "c", "", "d,e"].iter().map(|v| v.to_string()).collect();
        let mut encoded = String::new();
        encode_multivalue(&values, &mut encoded);
        assert_eq!(encoded, "$a$$b$;$c$;$$;$d,e$");
        assert_eq!(decode_multivalue(encoded.as_bytes()), Some(values));
        assert_eq!(decode_multivalue(b"$$;$$"), Some(vec![String::new(), String::new()]));
        assert_eq!(decode_multivalue(b"$a$b"), None);
        assert_eq!(decode_multivalue(b"a"), None);
        assert_eq!(decode_multivalue(b"$a"), None);
        // A malformed companion falls back to the plain column.
        let table = Table::decode(b"x,__mv_x\nplain,$broken\n").unwrap();
        assert_eq!(table.value(0, 0), single("plain"));
    }

    #[test]
    fn invalid_utf8_is_replaced_when_read_and_passed_through_when_encoded() {
        let body = b"a\nx\xffy\n";
        let table = Table::decode(body).unwrap();
        assert_eq!(table.value(0, 0), single("x\u{fffd}y"));
        let mut out = Vec::new();
        encode_reply(&table, &AddedFields::new(1), &mut out);
        assert_eq!(out, body);
    }

    #[test]
    fn empty_and_header_only_bodies_round_trip() {
        let mut out = Vec::new();
        encode_reply(&Table::decode(b"").unwrap(), &AddedFields::new(0), &mut out);
        assert!(out.is_empty());
        let table = Table::decode(b"age,\"_chunked_idx\",\"__mv_age\"\r\n").unwrap();
        assert!(table.has_header());
        assert_eq!(table.n_rows(), 0);
        let mut added = AddedFields::new(0);
        added.field("new");
        encode_reply(&table, &added, &mut out);
        assert_eq!(out, b"age,_chunked_idx,__mv_age,new\n");
    }

    #[test]
    fn unequal_rows_are_rejected_with_position() {
        let err = Table::decode(b"a,b\n1,2\n3\n").unwrap_err();
        assert_eq!(err.to_string(), "csv record 3 (byte 8) has 1 fields but the header has 2");
    }

    #[test]
    fn encoder_quotes_minimally_and_adds_union_of_fields() {
        let table = Table::decode(b"a,b\n1,2\n3,4\n5,6\n").unwrap();
        let mut added = AddedFields::new(3);
        let late = added.field("late");
        let first = added.field("first");
        assert!(added.set(0, first, single("x,y")));
        assert!(added.set(1, first, single(" lead")));
        assert!(added.set(2, late, multi(&["p$", "q"])));
        assert!(added.set(2, first, FieldValue::Multi(vec!["only".into()])));
        assert!(!added.set(3, first, single("out of range")));
        let mut out = Vec::new();
        encode_reply(&table, &added, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a,b,late,__mv_late,first\n1,2,,,\"x,y\"\n3,4,,,\" lead\"\n5,6,\"p$\nq\",$p$$$;$q$,only\n"
        );
    }

    #[test]
    fn encoder_overrides_input_fields_and_their_mv_companions() {
        let table = Table::decode(b"age,b,__mv_age\n66,\"say \"\"hi\"\"\",\n18,z,\n").unwrap();
        let mut added = AddedFields::new(2);
        let age = added.field("age");
        let b = added.field("b");
        added.set(0, age, single("132"));
        added.set(1, age, multi(&["36", "37"]));
        added.set(1, b, multi(&["m", "n"]));
        let mut out = Vec::new();
        encode_reply(&table, &added, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "age,b,__mv_age,__mv_b\n132,\"say \"\"hi\"\"\",,\n\"36\n37\",\"m\nn\",$36$;$37$,$m$;$n$\n"
        );
        let decoded = Table::decode(text.as_bytes()).unwrap();
        assert_eq!(decoded.value(0, 1), single("say \"hi\""));
        assert_eq!(decoded.value(1, 0), multi(&["36", "37"]));
        assert_eq!(decoded.value(1, 1), multi(&["m", "n"]));
    }

    /// Our tokenizer must split exactly like the `csv` crate (the reference reader).
    fn assert_same_cells_as_csv_crate(body: &[u8]) {
        let mut reader =
            csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(body);
        let records: Vec<csv::ByteRecord> = reader.byte_records().map(Result::unwrap).collect();
        let what = String::from_utf8_lossy(body);
        let Ok(table) = Table::decode(body) else {
            let widths: Vec<usize> = records.iter().map(csv::ByteRecord::len).collect();
            assert!(widths.windows(2).any(|pair| pair[0] != pair[1]), "{what:?}");
            return;
        };
        assert_eq!(table.has_header(), !records.is_empty(), "{what:?}");
        let Some((header, rows)) = records.split_first() else { return };
        let header: Vec<String> =
            header.iter().map(|name| String::from_utf8_lossy(name).into_owned()).collect();
        assert_eq!(table.header(), header, "{what:?}");
        assert_eq!(table.n_rows(), rows.len(), "{what:?}");
        for (row, record) in rows.iter().enumerate() {
            for (column, cell) in record.iter().enumerate() {
                assert_eq!(table.cell(row, column), cell, "{what:?} row {row} column {column}");
            }
            // The raw row, re-encoded verbatim in replies, holds exactly these cells.
            let raw = table.raw_row(row);
            let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(raw);
            match reader.byte_records().next() {
                Some(again) => {
                    assert!(again.unwrap().iter().eq(record.iter()), "{what:?} row {row}")
                }
                None => assert!(record.iter().all(<[u8]>::is_empty), "{what:?} row {row}"),
            }
        }
    }

    #[test]
    fn tokenizer_agrees_with_the_csv_crate() {
        let cases: &[&[u8]] = &[
            b"",
            b"\n\n",
            b"a",
            b"a,b\n1,2",
            b"a,b\r\n1,2\r\n",
            b"a,b\r1,2\r",
            b"a,b\n\n\n1,2\n\r\n3,4\n",
            b"a,b\n,\n",
            b"a,b\n\"\",\"\"\n",
            b"a,b\n\"x,\"\"y\"\"\",\"multi\nline\r\nz\"\n",
            b"a,b\n\"ab\"cd,e\"f\n",
            b"a,b\n\"\"\"\",\"x\"\"\"\n",
            b"a,b\n1,\"unterminated\n2,3",
            b"\"h,1\",\"h\"\"2\"\n1,2\n",
            b"a,b\n1,2,3\n",
            b"a,b\n1\n",
            "a\n\"Tú 👀\"\n".as_bytes(),
            b"a\nx\xffy\n",
        ];
        for body in cases {
            assert_same_cells_as_csv_crate(body);
        }
        for name in ["countmatches.input.gz", "sum.map.input.gz", "sum.reduce.input.gz"] {
            assert_same_cells_as_csv_crate(&chunk_body(&fixture(name), 1));
        }
        assert_same_cells_as_csv_crate(&chunk_body(&fixture("stream_multi.input"), 1));
    }

    /// The fastest of `n_runs` runs of `f`, each given a fresh copy of `input` (copied outside
    /// the timing).
    fn fastest(n_runs: usize, input: &[u8], mut f: impl FnMut(Vec<u8>)) -> std::time::Duration {
        (0..n_runs)
            .map(|_| {
                let input = input.to_vec();
                let started = std::time::Instant::now();
                f(input);
                started.elapsed()
            })
            .min()
            .unwrap()
    }

    #[test]
    fn sum_map_chunk_round_trips_and_reports_timing() {
        let raw = std::fs::read(format!(
            "{}/tests/fixtures/scpv2/sum.map.input.gz",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let gunzip = fastest(3, &raw, |raw| {
            let mut text = Vec::new();
            flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut text).unwrap();
        });
        let stream = fixture("sum.map.input.gz");
        let body = chunk_body(&stream, 1);
        let mut n_records = 0;
        let csv_parse_only = fastest(5, &body, |body| {
            let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(&body[..]);
            let mut record = csv::ByteRecord::new();
            n_records = 0;
            while reader.read_byte_record(&mut record).unwrap() {
                n_records += 1;
            }
        });
        let mut out = Vec::new();
        let mut n_rows = 0;
        let roundtrip = fastest(5, &body, |body| {
            out = Vec::new();
            n_rows = bench_roundtrip(body, &mut out).unwrap();
        });
        eprintln!(
            "sum.map: {} bytes, {n_rows} rows; fastest of several runs: gunzip {gunzip:?}, \
             csv crate parse only {csv_parse_only:?}, decode+add field+encode {roundtrip:?}",
            body.len()
        );
        assert_eq!(n_records, 50_001);
        assert_eq!(n_rows, 50_000);

        let input = Table::decode(body.as_slice()).unwrap();
        let output = Table::decode(out.as_slice()).unwrap();
        assert_eq!(output.n_rows(), 50_000);
        assert_eq!(&output.header()[..input.n_columns()], input.header());
        assert_eq!(output.header().last().map(String::as_str), Some("n"));
        for row in 0..input.n_rows() {
            for column in 0..input.n_columns() {
                assert_eq!(output.cell(row, column), input.cell(row, column), "row {row}");
            }
            assert_eq!(output.cell_str(row, input.n_columns()), row.to_string());
        }
    }
}
