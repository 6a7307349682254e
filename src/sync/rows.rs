//! One row of `| stackflowsync`: the keys it carries in (event id, SOAR container, StackFlow
//! incident, status), the notable decision its remote states lead to, and the output fields
//! written back into it.

use super::SyncAction;
use super::notables::{self, Decision, RemoteState, describe_change};
use super::options::{self, Options};
use crate::remotes::soar::read::Container;
use crate::remotes::stackflow::read::Incident;
use crate::splunk::search_command::ExecuteChunk;
use crate::splunk::splunk_csv::{FieldSlot, FieldValue, Table};
use std::borrow::Cow;
use std::collections::HashSet;

/// What a row says about where its remote objects are.
#[derive(Debug, Default)]
pub(super) struct RowKeys<'t> {
    pub(super) event_id: Option<Cow<'t, str>>,
    pub(super) soar_id: Option<u64>,
    pub(super) incident_id: Option<Cow<'t, str>>,
    pub(super) status: Cow<'t, str>,
}

impl<'t> RowKeys<'t> {
    pub(super) fn has_any(&self) -> bool {
        self.event_id.is_some() || self.soar_id.is_some() || self.incident_id.is_some()
    }

    /// Reads the key fields of every row (no allocation for valid UTF-8 cells).
    pub(super) fn extract(table: &'t Table, options: &Options) -> Vec<RowKeys<'t>> {
        let column = |name: &str| table.field_index(name);
        let (event_id, soar_id, incident_id, action, remote_id, status) = (
            column("event_id"),
            column("soar_container_id"),
            column("stackflow_incident_id"),
            column("action"),
            column("remote_id"),
            column("status"),
        );
        if event_id.is_none() && soar_id.is_none() && incident_id.is_none() && remote_id.is_none() {
            return Vec::new();
        }
        let cell = |row: usize, column: Option<usize>| -> Option<Cow<'t, str>> {
            let bytes = table.cell(row, column?);
            let first = bytes.split(|byte| *byte == b'\n').next().unwrap_or_default();
            let text = match std::str::from_utf8(first) {
                Ok(text) => Cow::Borrowed(text.trim()),
                Err(_) => Cow::Owned(String::from_utf8_lossy(first).trim().to_string()),
            };
            (!text.is_empty()).then_some(text)
        };
        (0..table.n_rows())
            .map(|row| {
                let receipt_action = cell(row, action);
                let receipt_remote = |name: &str| match (&receipt_action, cell(row, remote_id)) {
                    (Some(action), Some(remote)) if action.as_ref() == name => Some(remote),
                    _ => None,
                };
                let soar_id = if options.target.soar() {
                    cell(row, soar_id)
                        .or_else(|| receipt_remote("stackflow_soar"))
                        .and_then(|id| id.parse::<u64>().ok())
                } else {
                    None
                };
                let incident_id = if options.target.stackflow() {
                    cell(row, incident_id).or_else(|| receipt_remote("stackflow_incident"))
                } else {
                    None
                };
                RowKeys {
                    event_id: cell(row, event_id),
                    soar_id,
                    incident_id,
                    status: cell(row, status).unwrap_or_default(),
                }
            })
            .collect()
    }
}

/// What the remote states found for a row.
pub(super) fn summary(states: &[RemoteState]) -> String {
    states.iter().map(RemoteState::describe).collect::<Vec<_>>().join("; ")
}

/// The notable decision of one row with remote states.
pub(super) enum RowDecision<'k> {
    Done(SyncAction, String),
    /// To be sent with the chunk's grouped updates.
    Update {
        event_id: &'k str,
        to: u32,
        reasons: Vec<String>,
        change: String,
    },
}

pub(super) fn decide_row<'k>(
    options: &Options,
    key: &'k RowKeys<'_>,
    states: &[RemoteState],
) -> RowDecision<'k> {
    match notables::decide(&options.status_map, &key.status, states) {
        Decision::NoMapping => RowDecision::Done(
            SyncAction::Unchanged,
            format!("{}; no notable status is mapped to this state", summary(states)),
        ),
        Decision::Unchanged { status } => RowDecision::Done(
            SyncAction::Unchanged,
            format!("notable already {}; {}", options::es_status_label(status), summary(states)),
        ),
        Decision::Change { from, to, because } => {
            let reasons: Vec<String> =
                because.iter().map(|index| states[*index].describe()).collect();
            let change =
                format!("notable status {}: {}", describe_change(from, to), reasons.join("; "));
            match key.event_id.as_deref() {
                None => RowDecision::Done(
                    SyncAction::Error,
                    format!("cannot update the notable: the row has no event_id ({change})"),
                ),
                Some(_) if options.dry_run => {
                    RowDecision::Done(SyncAction::WouldUpdate, format!("would set {change}"))
                }
                Some(event_id) => RowDecision::Update { event_id, to, reasons, change },
            }
        }
    }
}

/// Distinct values in first-seen order.
pub(super) fn unique<T: Copy + Eq + std::hash::Hash>(values: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = HashSet::new();
    values.filter(|value| seen.insert(*value)).collect()
}

/// Output fields, registered on first use so that a chunk without matches adds only
/// `sync_action` and `sync_message`.
#[derive(Default)]
pub(super) struct Slots {
    soar: Option<[FieldSlot; 7]>,
    stackflow: Option<[FieldSlot; 5]>,
}

fn set_text(chunk: &mut ExecuteChunk<'_>, row: usize, slot: FieldSlot, value: &str) {
    if !value.is_empty() {
        // Rows are in range: `row` comes from the same table.
        let _ = chunk.set(row, slot, FieldValue::Single(Cow::Owned(value.to_string())));
    }
}

impl Slots {
    pub(super) fn set_soar(
        &mut self,
        chunk: &mut ExecuteChunk<'_>,
        row: usize,
        container: &Container,
        playbook_status: Option<&String>,
        url: &str,
    ) {
        let slots = *self.soar.get_or_insert_with(|| {
            [
                "soar_container_id",
                "soar_status",
                "soar_severity",
                "soar_owner",
                "soar_close_time",
                "soar_playbook_status",
                "soar_url",
            ]
            .map(|name| chunk.field(name))
        });
        let values = [
            container.id.to_string(),
            container.status.clone(),
            container.severity.clone(),
            container.owner.clone(),
            container.close_time.clone(),
            playbook_status.cloned().unwrap_or_default(),
            url.to_string(),
        ];
        for (slot, value) in slots.into_iter().zip(values) {
            set_text(chunk, row, slot, &value);
        }
    }

    pub(super) fn set_stackflow(
        &mut self,
        chunk: &mut ExecuteChunk<'_>,
        row: usize,
        incident: &Incident,
        url: &str,
    ) {
        let slots = *self.stackflow.get_or_insert_with(|| {
            [
                "stackflow_incident_id",
                "stackflow_state",
                "stackflow_priority",
                "stackflow_assigned_to",
                "stackflow_url",
            ]
            .map(|name| chunk.field(name))
        });
        let values = [&incident.id, &incident.state, &incident.priority, &incident.assigned_to];
        for (slot, value) in slots.into_iter().zip(values) {
            set_text(chunk, row, slot, value);
        }
        set_text(chunk, row, slots[4], url);
    }
}
