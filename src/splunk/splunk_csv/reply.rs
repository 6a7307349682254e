//! The reply body of an execute chunk: the input table's cells (rows the command left alone are
//! copied verbatim) plus the fields the command added ([`AddedFields`]), written to any
//! [`ReplySink`] — a buffer, or a byte counter that sizes the reply before it is streamed.

use super::*;

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
