//! The CSV body of SCP v2 execute chunks: decodes splunkd's CSV (header row, `__mv_<field>`
//! multivalue companions) into a compact [`Table`], and encodes the reply as the input cells
//! plus the fields a command added. Pure in-memory code: no I/O, no framing, no protocol.
//!
//! Cells are stored as one flat byte buffer with end offsets, so passing 50,000 rows through
//! costs one copy. Invalid UTF-8 is replaced (lossily) only when a value is read as text; the
//! reply passes input cells through byte for byte. Replies use LF line ends and minimal quoting.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// Prefix of the column carrying the multivalue encoding of field `f`.
pub const MV_PREFIX: &str = "__mv_";

/// A decoded execute body.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// `false` only for an empty body (no header row at all).
    has_header: bool,
    header: Vec<String>,
    /// For each column, the index of its `__mv_` companion column, if both exist.
    mv_companion: Vec<Option<usize>>,
    name_index: HashMap<String, usize>,
    /// Every cell's bytes, row-major, unquoted.
    cell_bytes: Vec<u8>,
    /// `cell_ends[row * n_columns + column]` is the end of that cell in `cell_bytes`.
    cell_ends: Vec<usize>,
    /// The input bytes of each row without line terminator (still quoted as splunkd quoted
    /// them), so unchanged rows are re-encoded with a single copy.
    raw_rows: Vec<u8>,
    /// `raw_row_ends[row]` is the end of that row in `raw_rows`.
    raw_row_ends: Vec<usize>,
    n_rows: usize,
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
    pub fn decode(body: &[u8]) -> Result<Table, DecodeError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(false)
            .buffer_capacity(64 * 1024)
            .from_reader(body);
        let mut record = csv::ByteRecord::new();
        let mut table = Table::default();
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return Ok(table),
            Err(err) => return Err(decode_error(&err)),
        }
        table.has_header = true;
        table.header =
            record.iter().map(|name| String::from_utf8_lossy(name).into_owned()).collect();
        for (column, name) in table.header.iter().enumerate() {
            table.name_index.entry(name.clone()).or_insert(column);
        }
        table.mv_companion = table
            .header
            .iter()
            .map(|name| table.name_index.get(&format!("{MV_PREFIX}{name}")).copied())
            .collect();

        table.cell_bytes.reserve(body.len());
        table.raw_rows.reserve(body.len());
        // Lines bound the rows from above (quoted cells may hold newlines); reserving avoids
        // regrowing millions of offsets.
        let n_lines = body.iter().filter(|byte| **byte == b'\n').count();
        table.cell_ends.reserve(n_lines.saturating_mul(table.header.len()));
        table.raw_row_ends.reserve(n_lines);
        loop {
            let row_start = position(&reader);
            match reader.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(err) => return Err(decode_error(&err)),
            }
            let row_end = position(&reader);
            let raw_row = body.get(row_start..row_end).unwrap_or_default();
            table.raw_rows.extend_from_slice(trim_line_breaks(raw_row));
            table.raw_row_ends.push(table.raw_rows.len());
            let mut end = table.cell_bytes.len();
            table.cell_bytes.extend_from_slice(record.as_slice());
            for cell in &record {
                end += cell.len();
                table.cell_ends.push(end);
            }
            table.n_rows += 1;
        }
        Ok(table)
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
        let idx = row * n_columns + column;
        let start = if idx == 0 { 0 } else { self.cell_ends[idx - 1] };
        &self.cell_bytes[start..self.cell_ends[idx]]
    }

    /// One row as it was in the input, without its line terminator.
    pub fn raw_row(&self, row: usize) -> &[u8] {
        let Some(end) = self.raw_row_ends.get(row) else {
            return b"";
        };
        let start = if row == 0 { 0 } else { self.raw_row_ends[row - 1] };
        &self.raw_rows[start..*end]
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
            if !encoded.is_empty() {
                if let Some(values) = decode_multivalue(encoded) {
                    return FieldValue::from(values);
                }
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

/// The reader's byte offset into the body.
fn position(reader: &csv::Reader<&[u8]>) -> usize {
    usize::try_from(reader.position().byte()).unwrap_or(usize::MAX)
}

/// Strips the line terminator after a raw row, and any blank lines or the `\n` of a CRLF the
/// reader consumed before it. Neither end of a record can be CR or LF: an unquoted cell cannot
/// contain them and a quoted one ends with `"`.
fn trim_line_breaks(mut raw: &[u8]) -> &[u8] {
    while let [b'\r' | b'\n', rest @ ..] = raw {
        raw = rest;
    }
    while let [rest @ .., b'\r' | b'\n'] = raw {
        raw = rest;
    }
    raw
}

fn decode_error(err: &csv::Error) -> DecodeError {
    let message = match err.kind() {
        csv::ErrorKind::UnequalLengths { pos, expected_len, len } => {
            let place = pos.as_ref().map_or_else(String::new, |pos| {
                format!(" (csv line {}, byte {})", pos.line(), pos.byte())
            });
            format!("csv record{place} has {len} fields but the header has {expected_len}")
        }
        _ => format!("invalid csv body: {err}"),
    };
    DecodeError { message }
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

/// Encodes the reply body: the input header (unchanged order) plus added fields, each followed by
/// a `__mv_` column when some row holds several values for it; rows are the input cells plus
/// the added cells. An empty body encodes as empty, a header-only one as header-only.
pub fn encode_reply(table: &Table, added: &AddedFields, out: &mut Vec<u8>) {
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

    out.reserve(table.raw_rows.len() + 64 * (table.n_rows + 1));
    for (idx, name) in names.iter().enumerate() {
        if idx > 0 {
            out.push(b',');
        }
        write_cell(out, name.as_bytes());
    }
    out.push(b'\n');

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
            out.extend_from_slice(table.raw_row(row));
            for source in &sources[n_input_columns..] {
                out.push(b',');
                write_source(out, table, added, row, *source, &mut scratch);
            }
            out.push(b'\n');
            continue;
        }
        for (idx, source) in sources.iter().enumerate() {
            if idx > 0 {
                out.push(b',');
            }
            write_source(out, table, added, row, *source, &mut scratch);
        }
        out.push(b'\n');
    }
}

fn write_source(
    out: &mut Vec<u8>,
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
fn write_plain(out: &mut Vec<u8>, value: &FieldValue<'_>, scratch: &mut String) {
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
fn write_mv(out: &mut Vec<u8>, value: &FieldValue<'_>, scratch: &mut String) {
    if let FieldValue::Multi(values) = value {
        scratch.clear();
        encode_multivalue(values, scratch);
        write_cell(out, scratch.as_bytes());
    }
}

/// Writes one cell, quoted only when it contains `,` `"` CR or LF or starts or ends with a space.
fn write_cell(out: &mut Vec<u8>, cell: &[u8]) {
    let needs_quotes = match (cell.first(), cell.last()) {
        (Some(first), Some(last)) => {
            *first == b' '
                || *last == b' '
                || cell.iter().any(|byte| matches!(byte, b',' | b'"' | b'\r' | b'\n'))
        }
        _ => false,
    };
    if !needs_quotes {
        out.extend_from_slice(cell);
        return;
    }
    out.push(b'"');
    for part in cell.split_inclusive(|byte| *byte == b'"') {
        out.extend_from_slice(part);
        if part.last() == Some(&b'"') {
            out.push(b'"');
        }
    }
    out.push(b'"');
}

/// Benchmark hook: decodes `body`, adds field `n` (the row number) to every row and encodes the
/// reply into `out`. Returns the number of rows.
#[doc(hidden)]
pub fn bench_roundtrip(body: &[u8], out: &mut Vec<u8>) -> Result<usize, DecodeError> {
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
        assert_eq!(
            err.to_string(),
            "csv record (csv line 3, byte 8) has 1 fields but the header has 2"
        );
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

    #[test]
    fn sum_map_chunk_round_trips_and_reports_timing() {
        let started = std::time::Instant::now();
        let stream = fixture("sum.map.input.gz");
        let gunzipped = started.elapsed();
        let body = chunk_body(&stream, 1);

        let started = std::time::Instant::now();
        let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(&body[..]);
        let mut record = csv::ByteRecord::new();
        let mut n_records = 0;
        while reader.read_byte_record(&mut record).unwrap() {
            n_records += 1;
        }
        let csv_parse_only = started.elapsed();

        let started = std::time::Instant::now();
        let mut out = Vec::new();
        let n_rows = bench_roundtrip(&body, &mut out).unwrap();
        let roundtrip = started.elapsed();
        eprintln!(
            "sum.map: {} bytes, {n_rows} rows; gunzip {gunzipped:?}, csv parse only {csv_parse_only:?}, \
             decode+add+encode {roundtrip:?}",
            body.len()
        );
        assert_eq!(n_records, 50_001);
        assert_eq!(n_rows, 50_000);

        let input = Table::decode(&body).unwrap();
        let output = Table::decode(&out).unwrap();
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
#[cfg(test)]
mod profile_tmp {
    use super::*;
    fn min_of(mut f: impl FnMut()) -> std::time::Duration {
        (0..8)
            .map(|_| {
                let t = std::time::Instant::now();
                f();
                t.elapsed()
            })
            .min()
            .unwrap()
    }
    #[test]
    fn profile_pieces() {
        let stream = tests::fixture("sum.map.input.gz");
        let body = tests::chunk_body(&stream, 1);
        let parse = min_of(|| {
            let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(&body[..]);
            let mut record = csv::ByteRecord::new();
            while reader.read_byte_record(&mut record).unwrap() {}
        });
        let decode = min_of(|| {
            Table::decode(&body).unwrap();
        });
        let table = Table::decode(&body).unwrap();
        let mut added = AddedFields::new(table.n_rows());
        let slot = added.field("n");
        for row in 0..table.n_rows() {
            added.set(row, slot, FieldValue::from(row.to_string()));
        }
        let encode = min_of(|| {
            let mut out = Vec::new();
            encode_reply(&table, &added, &mut out);
        });
        let passthrough = min_of(|| {
            let mut out = Vec::new();
            encode_reply(&table, &AddedFields::new(table.n_rows()), &mut out);
        });
        let round = min_of(|| {
            let mut out = Vec::new();
            bench_roundtrip(&body, &mut out).unwrap();
        });
        eprintln!(
            "parse {parse:?} decode {decode:?} encode {encode:?} passthrough {passthrough:?} roundtrip {round:?}"
        );
    }
}
