//! A row's artifacts written straight as JSON text, byte for byte what `serde_json` makes of
//! the `Artifact`s `row_artifacts` builds (fields in declaration order, `cef`, `cef_types` and
//! `data` with their keys sorted as `serde_json::Map` sorts them), without building them: no
//! maps, no `Value`s, no string per field. What a file's header means for the mapping (which
//! fields are internal, their CEF keys and `contains` types, the hash order of the identity) is
//! worked out once per header, and the per-row scratch space is reused from row to row.
//!
//! `row_artifacts` stays the reference: the tests check that both give the same bytes, and a
//! row whose header names a field twice (only rows built by hand can) is written through it.

use super::{Artifact, MAX_ARTIFACTS_PER_ROW, hex, row_artifacts};
use crate::mapping::cef::{self, FieldMapping};
use crate::splunk::results::{FieldValue, Header, Row};
use sha2::Digest;
use std::ops::Range;
use std::sync::Arc;

/// What one data field of the header is to the mapping.
#[derive(Clone, Copy, Debug)]
enum Field {
    /// Splunk-internal: neither CEF nor `data`, nor part of the identity.
    Internal,
    /// Goes to `data` (no CEF key).
    Data,
    /// The CEF key (index into `Plan::keys`) it maps to, if no earlier field of the row took
    /// it, and for an address key the host-name key its values that are not IPs go to.
    Cef(usize, Option<usize>),
}

/// A header's meaning for the mapping.
struct Plan {
    header: Arc<Header>,
    fields: Vec<Field>,
    /// CEF keys the header's fields map to, with their `contains` type (`cef_types`).
    keys: Vec<(String, Option<&'static str>)>,
    /// Non-internal fields sorted by name: the identity hash and `data` key order.
    sorted: Vec<usize>,
    event_id: Option<usize>,
    /// The header names a field twice: written through `row_artifacts`.
    duplicates: bool,
}

impl Plan {
    fn new(header: &Arc<Header>, mapping: &FieldMapping) -> Plan {
        let mut keys: Vec<(String, Option<&'static str>)> = Vec::new();
        let fields = header
            .names
            .iter()
            .map(|name| {
                if cef::is_internal(name) {
                    return Field::Internal;
                }
                let mut index_of = |key: &str| match keys.iter().position(|(k, _)| k == key) {
                    Some(position) => position,
                    None => {
                        keys.push((key.to_string(), cef::contains(key)));
                        keys.len() - 1
                    }
                };
                match mapping.cef_key(name) {
                    None => Field::Data,
                    Some(key) => {
                        let address = index_of(key);
                        Field::Cef(address, cef::host_key(key).map(&mut index_of))
                    }
                }
            })
            .collect::<Vec<Field>>();
        let mut sorted: Vec<usize> =
            (0..fields.len()).filter(|&i| !matches!(fields[i], Field::Internal)).collect();
        sorted.sort_by(|&a, &b| header.names[a].cmp(&header.names[b]));
        let mut names: Vec<&str> = header.names.iter().map(String::as_str).collect();
        names.sort_unstable();
        let duplicates = names.windows(2).any(|pair| pair[0] == pair[1]);
        Plan {
            header: header.clone(),
            fields,
            keys,
            sorted,
            event_id: header.position("event_id"),
            duplicates,
        }
    }
}

/// What a field of the current row became.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Absent,
    Data,
    /// The row's slots it fills (indices, first to last: its addresses, then its host names).
    Slots(usize, usize),
}

/// A CEF key of the current row with its distinct non-empty values (ranges into `values`).
struct Slot {
    key: usize,
    field: usize,
    start: usize,
    end: usize,
}

/// Writes rows' artifacts as JSON; keeps the plan of the last header and its scratch space.
pub struct ArtifactWriter {
    mapping: FieldMapping,
    plan: Option<Plan>,
    roles: Vec<Role>,
    slots: Vec<Slot>,
    /// Slot indices sorted by CEF key (the `cef` object's order).
    slot_order: Vec<usize>,
    picks: Vec<usize>,
    /// (field, value index) pairs of the slots, flattened.
    values: Vec<(usize, usize)>,
    /// `"cef_types":{…},"data":{…},"run_automation":false}` of the current row.
    tail: Vec<u8>,
    identity: String,
    /// The artifacts of the last `write`: their text in its `out`, their SDI in `written_sdis`.
    written: Vec<(Range<usize>, Range<usize>)>,
    written_sdis: String,
}

/// Whether `bytes` hold a control character, `"` or `\\` (what JSON strings escape). Checked
/// 16 bytes at a time without an early exit, so the compiler can vectorise it: most values have
/// nothing to escape, and this check runs on every value of every row.
fn needs_json_escape(bytes: &[u8]) -> bool {
    let special = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    let mut chunks = bytes.chunks_exact(16);
    for chunk in &mut chunks {
        if chunk.iter().fold(false, |found, &b| found | special(b)) {
            return true;
        }
    }
    chunks.remainder().iter().any(|&b| special(b))
}

/// Appends `text` as a JSON string (serde_json's escaping, so the bytes are its bytes).
pub(crate) fn json_str(out: &mut Vec<u8>, text: &str) {
    if !needs_json_escape(text.as_bytes()) {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    }
}

fn value_at(value: &FieldValue, index: usize) -> &str {
    match value {
        FieldValue::Single(value) => value,
        FieldValue::Multi(values) => values.get(index).map(String::as_str).unwrap_or(""),
    }
}

fn value_count(value: &FieldValue) -> usize {
    match value {
        FieldValue::Single(_) => 1,
        FieldValue::Multi(values) => values.len(),
    }
}

/// `data`'s JSON for a field: a string, or an array for a multivalue.
fn json_field(out: &mut Vec<u8>, value: &FieldValue) {
    match value {
        FieldValue::Single(value) => json_str(out, value),
        FieldValue::Multi(values) => {
            out.push(b'[');
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_str(out, value);
            }
            out.push(b']');
        }
    }
}

impl ArtifactWriter {
    pub fn new(mapping: FieldMapping) -> ArtifactWriter {
        ArtifactWriter {
            mapping,
            plan: None,
            roles: Vec::new(),
            slots: Vec::new(),
            slot_order: Vec::new(),
            picks: Vec::new(),
            values: Vec::new(),
            tail: Vec::new(),
            identity: String::new(),
            written: Vec::new(),
            written_sdis: String::new(),
        }
    }

    /// The artifacts the last `write` appended: each one's bytes in that call's `out` and its
    /// source data identifier (what `SoarMapper` indexes for the SOAR client).
    pub fn written(&self) -> impl Iterator<Item = (Range<usize>, &str)> + '_ {
        self.written
            .iter()
            .map(|(text, sdi)| (text.clone(), self.written_sdis.get(sdi.clone()).unwrap_or("")))
    }

    /// Records an artifact just written to `out[start..]` with the SDI `sdi`.
    fn record(&mut self, start: usize, end: usize, sdi: &str) {
        let from = self.written_sdis.len();
        self.written_sdis.push_str(sdi);
        self.written.push((start..end, from..self.written_sdis.len()));
    }

    /// Appends the row's artifacts to `out` as JSON objects separated by commas (a comma
    /// before the first one too when `comma_first`), and returns how many it wrote. The bytes
    /// are those of `serde_json::to_writer` on each of `row_artifacts(row, …)`, except that each
    /// object opens with `open` instead of `{` (`{"container_id":7,` puts that key first).
    pub fn write(
        &mut self,
        row: &Row,
        name: &str,
        severity: &str,
        out: &mut Vec<u8>,
        comma_first: bool,
        open: &[u8],
    ) -> usize {
        let stale = self.plan.as_ref().is_none_or(|plan| !Arc::ptr_eq(&plan.header, row.header()));
        if stale {
            self.plan = Some(Plan::new(row.header(), &self.mapping));
        }
        let Some(plan) = self.plan.as_ref() else {
            return 0;
        };
        self.written.clear();
        self.written_sdis.clear();
        if plan.duplicates {
            let artifacts: Vec<Artifact> = row_artifacts(row, &self.mapping, name, severity);
            for (index, artifact) in artifacts.iter().enumerate() {
                if index > 0 || comma_first {
                    out.push(b',');
                }
                let start = out.len();
                write_through_serde(artifact, out, open);
                self.record(start, out.len(), &artifact.source_data_identifier);
            }
            return artifacts.len();
        }
        // Which field becomes what: the first field (in file order) with non-empty values
        // takes its CEF key; a later one for the same key goes to `data`.
        self.roles.clear();
        self.slots.clear();
        self.values.clear();
        for (index, field) in plan.fields.iter().enumerate() {
            let role = match (row.at(index), field) {
                (None, _) | (_, Field::Internal) => Role::Absent,
                (Some(_), Field::Data) => Role::Data,
                (Some(value), Field::Cef(key, host)) => {
                    // Addresses first, then (for an address key) the other values.
                    let start = self.values.len();
                    let mut ends = [start, start];
                    for (pass, end) in ends.iter_mut().enumerate() {
                        for i in 0..value_count(value) {
                            let text = value_at(value, i);
                            let address = host.is_none() || cef::is_ip(text);
                            let seen = self.values[start..]
                                .iter()
                                .any(|&(_, j)| value_at(value, j) == text);
                            if !text.is_empty() && !seen && address == (pass == 0) {
                                self.values.push((index, i));
                            }
                        }
                        *end = self.values.len();
                    }
                    let parts = [(*key, start, ends[0]), (host.unwrap_or(*key), ends[0], ends[1])];
                    let taken =
                        |key: usize, slots: &[Slot]| slots.iter().any(|slot| slot.key == key);
                    let filled = || parts.iter().filter(|(_, from, to)| to > from);
                    if filled().any(|(key, _, _)| taken(*key, &self.slots))
                        || (ends[1] == start && taken(*key, &self.slots))
                    {
                        self.values.truncate(start);
                        Role::Data
                    } else if ends[1] == start {
                        Role::Absent
                    } else {
                        let first = self.slots.len();
                        for &(key, from, to) in filled() {
                            self.slots.push(Slot { key, field: index, start: from, end: to });
                        }
                        Role::Slots(first, self.slots.len() - 1)
                    }
                }
            };
            self.roles.push(role);
        }
        let combinations =
            self.slots.iter().fold(1usize, |n, slot| n.saturating_mul(slot.end - slot.start));
        let count = combinations.min(MAX_ARTIFACTS_PER_ROW);
        self.slot_order.clear();
        self.slot_order.extend(0..self.slots.len());
        let (slots, keys) = (&self.slots, &plan.keys);
        self.slot_order.sort_unstable_by(|&a, &b| keys[slots[a].key].0.cmp(&keys[slots[b].key].0));

        // The identity: `event_id`, else the hash of the row (as `row_identity`).
        self.identity.clear();
        match plan.event_id.and_then(|i| row.at(i)).map(FieldValue::first) {
            Some(event_id) if !event_id.is_empty() => self.identity.push_str(event_id),
            _ => {
                let mut hasher = sha2::Sha256::new();
                for &index in &plan.sorted {
                    let Some(value) = row.at(index) else { continue };
                    let name = &plan.header.names[index];
                    hasher.update((name.len() as u64).to_be_bytes());
                    hasher.update(name.as_bytes());
                    hasher.update((value_count(value) as u64).to_be_bytes());
                    for i in 0..value_count(value) {
                        let text = value_at(value, i);
                        hasher.update((text.len() as u64).to_be_bytes());
                        hasher.update(text.as_bytes());
                    }
                }
                self.identity.push_str(&hex(&hasher.finalize()[..16]));
            }
        }

        // What every artifact of the row shares: `cef_types`, `data`, `run_automation`.
        let tail = &mut self.tail;
        tail.clear();
        tail.extend_from_slice(b",\"cef_types\":{");
        let mut first = true;
        for &slot in &self.slot_order {
            if let (key, Some(contains)) = &plan.keys[self.slots[slot].key] {
                if !first {
                    tail.push(b',');
                }
                first = false;
                json_str(tail, key);
                tail.extend_from_slice(b":[");
                json_str(tail, contains);
                tail.push(b']');
            }
        }
        tail.extend_from_slice(b"},\"data\":{");
        let mut first = true;
        for &index in &plan.sorted {
            let (Some(value), role) = (row.at(index), self.roles[index]) else { continue };
            let full_values = match role {
                Role::Data => None,
                Role::Slots(first, last) if combinations > MAX_ARTIFACTS_PER_ROW => {
                    let slots = &self.slots[first..=last];
                    if slots.iter().any(|slot| slot.end - slot.start > 1) {
                        Some(slots[0].start..slots[slots.len() - 1].end)
                    } else {
                        continue;
                    }
                }
                _ => continue,
            };
            if !first {
                tail.push(b',');
            }
            first = false;
            json_str(tail, &plan.header.names[index]);
            tail.push(b':');
            match full_values {
                None => json_field(tail, value),
                Some(range) => {
                    tail.push(b'[');
                    for (i, &(field, j)) in self.values[range].iter().enumerate() {
                        if i > 0 {
                            tail.push(b',');
                        }
                        json_str(tail, row.at(field).map(|v| value_at(v, j)).unwrap_or(""));
                    }
                    tail.push(b']');
                }
            }
        }
        tail.extend_from_slice(b"},\"run_automation\":false}");

        // The head (name, label, severity) is the same for every artifact too.
        self.picks.clear();
        self.picks.resize(self.slots.len(), 0);
        for index in 0..count {
            if index > 0 || comma_first {
                out.push(b',');
            }
            let mut rest = index;
            for (slot, pick) in self.slots.iter().zip(self.picks.iter_mut()).rev() {
                let len = slot.end - slot.start;
                *pick = rest % len;
                rest /= len;
            }
            let start = out.len();
            out.extend_from_slice(open);
            out.extend_from_slice(b"\"name\":");
            json_str(out, name);
            out.extend_from_slice(b",\"label\":\"event\",\"severity\":");
            json_str(out, severity);
            out.extend_from_slice(b",\"source_data_identifier\":");
            let sdi_start = self.written_sdis.len();
            self.written_sdis.push_str(&self.identity);
            if count > 1 {
                use std::fmt::Write as _;
                let _ = write!(self.written_sdis, ":{index}");
            }
            json_str(out, &self.written_sdis[sdi_start..]);
            out.extend_from_slice(b",\"cef\":{");
            for (n, &slot) in self.slot_order.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                let slot_ref = &self.slots[slot];
                json_str(out, &plan.keys[slot_ref.key].0);
                out.push(b':');
                let (field, j) = self.values[slot_ref.start + self.picks[slot]];
                debug_assert_eq!(field, slot_ref.field);
                json_str(out, row.at(field).map(|v| value_at(v, j)).unwrap_or(""));
            }
            out.push(b'}');
            out.extend_from_slice(&self.tail);
            self.written.push((start..out.len(), sdi_start..self.written_sdis.len()));
        }
        count
    }
}

/// The reference path (`serde_json` on an artifact of `row_artifacts`), for rows naming a field
/// twice: the artifact opening with `open` instead of `{`.
fn write_through_serde(artifact: &Artifact, out: &mut Vec<u8>, open: &[u8]) {
    let start = out.len();
    // Serialising these types into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, artifact);
    out.splice(start..start + 1, open.iter().copied());
}
