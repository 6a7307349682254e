//! `| stackflowsync`: reads the state of SOAR containers and StackFlow incidents back into the
//! search results, and (when asked) pushes the matching status to the ES notables.
//!
//! The command implements the SCP v2 driver's [`SearchCommand`]: getinfo validates the
//! arguments and answers `stateful` (it runs on the search head, with the search's session
//! key) without any I/O; each execute chunk is handled in batches: one KV store query for the
//! links, one SOAR query for the containers, one for the SDIs, one for the playbook runs, one
//! StackFlow query for the incidents, one `notable_update` per target status — never one
//! request per row. Settings and secrets are loaded at the first execute that needs them, so
//! getinfo-only spawns do nothing. Remote problems are WARN inspector messages and
//! `sync_action=error` rows; only bad arguments and protocol errors fail the search.

pub(crate) mod lookup;
pub mod notables;
pub mod options;
mod rows;

use lookup::{SoarFound, read_links, read_soar, read_stackflow, write_updates};
use rows::{RowDecision, RowKeys, Slots, decide_row, summary, unique};

use crate::links::Newest;
use crate::remotes::soar::SoarApi;
use crate::remotes::soar::read::{Container, SoarReader};
use crate::remotes::splunkd::Splunkd;
use crate::remotes::stackflow::StackflowApi;
use crate::remotes::stackflow::read::{Incident, StackflowReader};
use crate::secret::Secret;
use crate::settings::Settings;
use crate::splunk::search_command::{
    CommandConfig, CommandError, CommandType, ExecuteChunk, Level, SearchCommand, SearchInfo,
};
use crate::splunk::splunk_csv::FieldValue;
use notables::{RemoteState, Updates};
use options::{Options, Remote};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

const NO_KEYS: &str =
    "the row has no soar_container_id, stackflow_incident_id, receipt remote_id or event_id";

/// The `sync_action` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyncAction {
    Updated,
    WouldUpdate,
    Unchanged,
    NotFound,
    Error,
}

impl SyncAction {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncAction::Updated => "updated",
            SyncAction::WouldUpdate => "would_update",
            SyncAction::Unchanged => "unchanged",
            SyncAction::NotFound => "not_found",
            SyncAction::Error => "error",
        }
    }

    const ALL: [SyncAction; 5] = [
        SyncAction::Updated,
        SyncAction::WouldUpdate,
        SyncAction::Unchanged,
        SyncAction::NotFound,
        SyncAction::Error,
    ];
}

/// Connections opened at the first execute that needs them.
struct Runtime {
    settings: Settings,
    splunkd: Splunkd,
    soar: Option<Result<SoarReader, String>>,
    stackflow: Option<Result<StackflowReader, String>>,
    /// `Ok(())` once the user is known to hold the capability.
    may_update: Option<Result<(), String>>,
    /// The notable-update API (ES 7 `notable_update` or ES 8), chosen at the first update.
    updater: Option<Result<Box<dyn crate::remotes::splunkd::notables::NotableUpdater>, String>>,
    /// Grouped notable updates sent.
    notable_updates: usize,
}

/// The command's state across the chunks of one search.
pub struct StackflowSync {
    options: Options,
    info: SearchInfo,
    runtime: Option<Result<Runtime, String>>,
    /// WARN messages already shown (each is shown once per search).
    warned: HashSet<String>,
    totals: HashMap<SyncAction, usize>,
    n_rows: usize,
}

impl Default for StackflowSync {
    fn default() -> Self {
        StackflowSync::new()
    }
}

impl StackflowSync {
    pub fn new() -> StackflowSync {
        StackflowSync {
            options: Options::default(),
            info: SearchInfo::default(),
            runtime: None,
            warned: HashSet::new(),
            totals: HashMap::new(),
            n_rows: 0,
        }
    }

    /// The options parsed at getinfo.
    pub fn options(&self) -> &Options {
        &self.options
    }

    fn warn(&mut self, chunk: &mut ExecuteChunk<'_>, text: String) {
        if self.warned.insert(text.clone()) {
            chunk.message(Level::Warn, text);
        }
    }

    fn runtime(&mut self) -> Result<&mut Runtime, String> {
        if self.runtime.is_none() {
            let opened = Settings::load().map_err(|error| error.to_string()).and_then(|settings| {
                let session_key = Secret::new(self.info.session_key.expose());
                let splunkd = Splunkd::new(&settings, &self.info.splunkd_uri, session_key)
                    .map_err(|error| error.to_string())?;
                Ok(Runtime {
                    settings,
                    splunkd,
                    soar: None,
                    stackflow: None,
                    may_update: None,
                    updater: None,
                    notable_updates: 0,
                })
            });
            self.runtime = Some(opened);
        }
        match self.runtime.as_mut() {
            Some(Ok(runtime)) => Ok(runtime),
            Some(Err(message)) => Err(message.clone()),
            None => Err("internal error: the runtime was not opened".to_string()),
        }
    }
}

impl SearchCommand for StackflowSync {
    fn getinfo(&mut self, info: &SearchInfo) -> Result<CommandConfig, CommandError> {
        self.options = Options::parse(&info.args).map_err(CommandError::new)?;
        self.info = info.clone();
        // No required_fields: every field passes through, and the command reads several.
        Ok(CommandConfig::new(CommandType::Stateful))
    }

    fn execute(&mut self, chunk: &mut ExecuteChunk<'_>) -> Result<(), CommandError> {
        let table = chunk.table();
        let keys = RowKeys::extract(table, &self.options);
        let results = if keys.iter().any(RowKeys::has_any) {
            self.sync_rows(chunk, &keys)
        } else {
            Vec::new()
        };
        let action_slot = chunk.field("sync_action");
        let message_slot = chunk.field("sync_message");
        let mut results = results.into_iter();
        for row in 0..table.n_rows() {
            let (action, message) = match results.next() {
                Some(result) => result,
                None => (SyncAction::NotFound, Cow::Borrowed(NO_KEYS)),
            };
            *self.totals.entry(action).or_default() += 1;
            chunk.set(row, action_slot, FieldValue::Single(Cow::Borrowed(action.as_str())))?;
            chunk.set(row, message_slot, FieldValue::Single(message))?;
        }
        self.n_rows += table.n_rows();
        if chunk.finished() && self.n_rows > 0 {
            let counts: Vec<String> = SyncAction::ALL
                .iter()
                .filter_map(|action| {
                    self.totals.get(action).map(|n| format!("{n} {}", action.as_str()))
                })
                .collect();
            let mut summary = format!("stackflowsync: {} rows: {}", self.n_rows, counts.join(", "));
            if let Some(Ok(runtime)) = &self.runtime {
                let soar = match &runtime.soar {
                    Some(Ok(reader)) => reader.requests,
                    _ => 0,
                };
                let stackflow = match &runtime.stackflow {
                    Some(Ok(reader)) => reader.requests,
                    _ => 0,
                };
                summary.push_str(&format!(
                    "; {soar} SOAR and {stackflow} StackFlow requests, {} notable updates",
                    runtime.notable_updates
                ));
            }
            chunk.message(Level::Info, summary);
        }
        Ok(())
    }
}

/// A lookup failure shared by many rows.
type Failure = Option<String>;

impl StackflowSync {
    /// Looks up every row of a chunk that has keys; returns one (action, message) per row.
    fn sync_rows(
        &mut self,
        chunk: &mut ExecuteChunk<'_>,
        keys: &[RowKeys<'_>],
    ) -> Vec<(SyncAction, Cow<'static, str>)> {
        let options = self.options.clone();
        let runtime = match self.runtime() {
            Ok(runtime) => runtime,
            Err(message) => {
                self.warn(chunk, format!("stackflowsync cannot start: {message}"));
                return keys
                    .iter()
                    .map(|key| {
                        if key.has_any() {
                            (SyncAction::Error, Cow::Owned(message.clone()))
                        } else {
                            (SyncAction::NotFound, Cow::Borrowed(NO_KEYS))
                        }
                    })
                    .collect();
            }
        };
        let mut warnings: Vec<String> = Vec::new();

        // 1. Links for rows that miss an id.
        let needs_link = |key: &RowKeys<'_>| {
            key.event_id.is_some()
                && ((options.target.soar() && key.soar_id.is_none())
                    || (options.target.stackflow() && key.incident_id.is_none()))
        };
        let link_ids = unique(
            keys.iter().filter(|key| needs_link(key)).filter_map(|key| key.event_id.as_deref()),
        );
        let (links, link_failure) = match read_links(&runtime.splunkd, &link_ids) {
            Ok(links) => (links, None),
            Err(message) => {
                let message = format!(
                    "cannot read the KV store collection {}: {message}",
                    crate::links::COLLECTION
                );
                warnings.push(message.clone());
                (HashMap::new(), Some(message))
            }
        };
        let link_of = |key: &RowKeys<'_>| key.event_id.as_deref().and_then(|id| links.get(id));
        let soar_ids: Vec<Option<u64>> = keys
            .iter()
            .map(|key| key.soar_id.or_else(|| link_of(key).and_then(Newest::soar_id)))
            .collect();
        let incident_ids: Vec<Option<String>> = keys
            .iter()
            .map(|key| {
                key.incident_id.as_deref().map(str::to_string).or_else(|| {
                    link_of(key).and_then(|link| link.incident_id().map(str::to_string))
                })
            })
            .collect();

        // 2. SOAR containers (by id, then by SDI = event_id) and their newest playbook runs.
        let soar_wanted = options.target.soar()
            && keys.iter().zip(&soar_ids).any(|(key, id)| id.is_some() || key.event_id.is_some());
        let soar = if soar_wanted {
            read_soar(runtime, &options, keys, &soar_ids, &mut warnings)
        } else {
            SoarFound::default()
        };

        // 3. StackFlow incidents.
        let (incidents, stackflow_failure) =
            if options.target.stackflow() && incident_ids.iter().any(Option::is_some) {
                read_stackflow(runtime, &options, &incident_ids, &mut warnings)
            } else {
                (HashMap::new(), None)
            };
        let soar_url = |id: u64| match &runtime.soar {
            Some(Ok(reader)) => reader.container_url(id),
            _ => String::new(),
        };
        let incident_url = |id: &str| match &runtime.stackflow {
            Some(Ok(reader)) => reader.incident_url(id),
            _ => String::new(),
        };

        // 4. Fields and decisions, row by row.
        let mut slots = Slots::default();
        let mut results: Vec<(SyncAction, Cow<'static, str>)> = Vec::with_capacity(keys.len());
        let mut updates = Updates::default();
        let mut pending: Vec<(usize, String)> = Vec::new();
        for (row, key) in keys.iter().enumerate() {
            if !key.has_any() {
                results.push((SyncAction::NotFound, Cow::Borrowed(NO_KEYS)));
                continue;
            }
            let mut states: Vec<RemoteState> = Vec::new();
            let mut problems: Vec<String> = Vec::new();
            let mut missing: Vec<String> = Vec::new();
            let relied_on_links = needs_link(key) && link_failure.is_some();
            if options.target.soar() {
                let container_id = soar_ids[row].or_else(|| {
                    key.event_id.as_deref().and_then(|event_id| soar.by_sdi.get(event_id).copied())
                });
                match container_id.and_then(|id| soar.by_id.get(&id)) {
                    Some(container) => {
                        let url = soar_url(container.id);
                        slots.set_soar(chunk, row, container, soar.runs.get(&container.id), &url);
                        states.push(RemoteState {
                            remote: Remote::Soar,
                            object_id: container.id.to_string(),
                            status: container.status.clone(),
                            resolution: container.resolution.clone(),
                            url,
                        });
                    }
                    None => match (&soar.failure, container_id, key.event_id.as_deref()) {
                        // Only rows that had something to look up in SOAR suffer its failure.
                        (Some(failure), id, event_id) if id.is_some() || event_id.is_some() => {
                            problems.push(failure.clone())
                        }
                        (_, Some(id), _) => missing.push(format!("SOAR container {id} not found")),
                        (_, None, Some(event_id)) => {
                            if relied_on_links {
                                problems.extend(link_failure.clone());
                            }
                            missing.push(format!("no SOAR container for event_id {event_id}"))
                        }
                        (_, None, None) => missing.push("no SOAR container id".to_string()),
                    },
                }
            }
            if options.target.stackflow() {
                match incident_ids[row].as_deref() {
                    Some(id) => match incidents.get(id) {
                        Some(incident) => {
                            let url = incident_url(&incident.id);
                            slots.set_stackflow(chunk, row, incident, &url);
                            states.push(RemoteState {
                                remote: Remote::Stackflow,
                                object_id: incident.id.clone(),
                                status: incident.state.clone(),
                                resolution: incident.resolution.clone(),
                                url,
                            });
                        }
                        None => match &stackflow_failure {
                            Some(failure) => problems.push(failure.clone()),
                            None => missing.push(format!("StackFlow incident {id} not found")),
                        },
                    },
                    None => {
                        if relied_on_links
                            && !problems.iter().any(|p| Some(p) == link_failure.as_ref())
                        {
                            problems.extend(link_failure.clone());
                        }
                        missing.push("no StackFlow incident linked".to_string());
                    }
                }
            }
            let result = if !problems.is_empty() {
                let mut message = problems.join("; ");
                if !states.is_empty() {
                    message = format!("{}; {message}", summary(&states));
                }
                (SyncAction::Error, message)
            } else if states.is_empty() {
                (SyncAction::NotFound, missing.join("; "))
            } else if !options.decides_notables() {
                (SyncAction::Unchanged, summary(&states))
            } else {
                match decide_row(&options, key, &states) {
                    RowDecision::Done(action, message) => (action, message),
                    RowDecision::Update { event_id, to, reasons, change } => {
                        updates.add(row, event_id, to, reasons);
                        pending.push((row, change));
                        (SyncAction::Updated, String::new())
                    }
                }
            };
            results.push((result.0, Cow::Owned(result.1)));
        }

        // 5. Grouped notable updates.
        if !updates.is_empty() {
            let outcome = write_updates(runtime, &options, &updates);
            let mut failed: HashMap<usize, String> = HashMap::new();
            for (rows, message) in outcome {
                warnings.push(message.clone());
                for row in rows {
                    failed.insert(row, message.clone());
                }
            }
            for (row, change) in pending {
                results[row] = match failed.remove(&row) {
                    Some(message) => {
                        (SyncAction::Error, Cow::Owned(format!("{message} ({change})")))
                    }
                    None => (SyncAction::Updated, Cow::Owned(format!("set {change}"))),
                };
            }
        }
        for warning in warnings {
            self.warn(chunk, warning);
        }
        results
    }
}

#[cfg(test)]
mod tests;
