//! The `stackflow_state://<account>` modular input (PRODUCT §12): case state flows into Splunk
//! without anyone running a search. Each run polls, for the objects this app created (the KV
//! store collection `stackflow_links`: links updated in the last `lookback_days`, and older
//! ones whose object is not known to be closed, see `links`), the SOAR containers and playbook
//! runs and the StackFlow incidents that changed since the last checkpoint, and writes one event per change: sourcetypes `stackflow:soar:container`,
//! `stackflow:soar:playbook_run`, `stackflow:incident`; the finished action runs of those
//! containers (`actions`, `stackflow:soar:action_run`), and one comment per finished playbook
//! run on its notable (`comments`, PRODUCT §17).
//!
//! - SOAR: `_filter_id__in` / `_filter_container__in` lists (batched by `remotes::soar`) with
//!   `_filter_update_time__gte=<since − overlap>`, oldest first; objects never reported before
//!   (new links) are read without the time filter. StackFlow's incidents API has no "changed
//!   since" filter, so linked incidents are read by id list (200 per request).
//! - An object is reported when the fields it reports differ from the last report (a
//!   fingerprint in the checkpoint), so the overlap window and re-reads never duplicate.
//! - A remote that fails skips its part of the poll and keeps its cursor: the next poll reads
//!   everything changed since (an outage never loses a change). At most `max_events` events are
//!   written per run; the rest follow in the next runs.
//! - A change time that does not parse or lies in the future (`clock`) is reported with its
//!   event but never moves a cursor (WARN naming the object); SOAR pages are read as they
//!   arrive and bounded (`remotes::soar::pages`), so no answer stalls a poll or grows memory.

mod actions;
pub mod checkpoint;
mod children;
pub mod clock;
pub mod comments;
pub mod links;
mod soar;

use crate::error::{Error, ExitCode, Result};
use crate::remotes::soar::SoarApi;
use crate::remotes::soar::read::{Container, PlaybookRun, SoarReader};
use crate::remotes::splunkd::Splunkd;
use crate::remotes::stackflow::StackflowApi;
use crate::remotes::stackflow::read::{Incident, StackflowReader};
use crate::settings::Settings;
use crate::splunk::modinput::{EventWriter, Stanza, StreamEvent};
use checkpoint::{Checkpoint, fingerprint};
use clock::untrusted;
pub use links::{LinkRef, Links};
use serde_json::{Value, json};
pub use soar::poll_soar;
use std::collections::BTreeMap;
use std::io::Write;

pub const SOURCETYPE_CONTAINER: &str = "stackflow:soar:container";
pub const SOURCETYPE_PLAYBOOK_RUN: &str = "stackflow:soar:playbook_run";
pub const SOURCETYPE_INCIDENT: &str = "stackflow:incident";
pub const SOURCETYPE_ACTION_RUN: &str = "stackflow:soar:action_run";

/// A SOAR `message` longer than this is cut (it often holds JSON of a whole run).
pub(crate) const MAX_MESSAGE_CHARS: usize = 4096;

/// One input stanza's settings (inputs.conf, documented in README/inputs.conf.spec).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputOptions {
    /// `account`, else the stanza's name.
    pub account: String,
    pub lookback_days: u64,
    pub max_events: usize,
    /// The playbook-run field that holds its change time (empty, from `none`: read every run of
    /// the linked containers each poll). Assumption, unverified: SOAR's playbook_run carries
    /// `update_time`.
    pub run_time_field: String,
    /// Seconds re-read before the cursor, for changes committed out of order.
    pub overlap_s: u64,
}

impl InputOptions {
    /// Reads and checks a stanza's parameters; the error names the parameter.
    pub fn from_stanza(stanza: &Stanza) -> std::result::Result<InputOptions, String> {
        let number = |name: &str, default: u64, max: u64| -> std::result::Result<u64, String> {
            match stanza.param(name) {
                None => Ok(default),
                Some(text) => match text.parse::<u64>() {
                    Ok(value) if value <= max => Ok(value),
                    _ => Err(format!("{name} = {text:?}: expected a whole number from 0 to {max}")),
                },
            }
        };
        let account = stanza.param("account").unwrap_or(stanza.input_name()).to_string();
        if let Some(problem) = crate::remotes::secrets::account_problem(&account) {
            return Err(format!("account: {problem}"));
        }
        let run_time_field = match stanza.param("run_time_field").unwrap_or("update_time") {
            "none" => String::new(),
            field => field.to_string(),
        };
        if !run_time_field.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("run_time_field = {run_time_field:?}: a SOAR field name"));
        }
        let max_events = number("max_events", 10_000, 1_000_000)?;
        if max_events == 0 {
            return Err("max_events = 0: at least 1".to_string());
        }
        Ok(InputOptions {
            account,
            lookback_days: number("lookback_days", 30, 3650)?.max(1),
            max_events: max_events as usize,
            run_time_field,
            overlap_s: number("overlap_s", 300, 86_400)?,
        })
    }
}

/// One poll's output: the event stream, the bound on events, and what happened.
pub struct Poll<'a, W: Write> {
    pub stanza: &'a str,
    pub options: &'a InputOptions,
    pub writer: &'a mut EventWriter<W>,
    pub emitted: usize,
    /// Events of each sourcetype written by this poll.
    pub counts: BTreeMap<&'static str, usize>,
    /// This host's clock when the poll started (change times ahead of it are not trusted).
    pub now: f64,
    /// `[notables] comment_playbook_results`: finished playbook runs are commented on their
    /// notables (`comments`).
    pub comment_runs: bool,
}

impl<W: Write> Poll<'_, W> {
    fn budget_left(&self) -> bool {
        self.emitted < self.options.max_events
    }

    /// Writes one event; a closed stdout ends the run (splunkd is gone).
    fn emit(&mut self, sourcetype: &'static str, time: &str, fields: &Value) -> Result<()> {
        let data = fields.to_string();
        let event = StreamEvent {
            stanza: self.stanza,
            time: crate::civil_time::parse_iso8601(time),
            source: Some(self.stanza),
            sourcetype: Some(sourcetype),
            data: &data,
            ..StreamEvent::default()
        };
        self.writer.write(&event).map_err(|error| {
            Error::Unavailable(format!("cannot write events to splunkd (stdout): {error}"))
        })?;
        self.emitted += 1;
        *self.counts.entry(sourcetype).or_default() += 1;
        Ok(())
    }
}

fn container_fields(container: &Container, link: &LinkRef, url: String) -> Value {
    json!({
        "container_id": container.id,
        "status": container.status,
        "severity": container.severity,
        "owner": container.owner,
        "label": container.label,
        "close_time": container.close_time,
        "resolution": container.resolution,
        "event_id": link.event_id,
        "dedupe_key": link.dedupe_key,
        "update_time": container.update_time,
        "soar_url": url,
    })
}

fn run_fields(run: &PlaybookRun, link: &LinkRef) -> Value {
    let message: String = run.message.chars().take(MAX_MESSAGE_CHARS).collect();
    json!({
        "playbook_run_id": run.id,
        "container_id": run.container_id,
        "playbook": run.playbook,
        "status": run.status,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "message": message,
        "update_time": run.update_time,
        "event_id": link.event_id,
        "dedupe_key": link.dedupe_key,
    })
}

fn incident_fields(incident: &Incident, link: &LinkRef, url: String) -> Value {
    json!({
        "incident_id": incident.id,
        "number": incident.number,
        "state": incident.state,
        "priority": incident.priority,
        "assigned_to": incident.assigned_to,
        "assignment_group": incident.assignment_group,
        "resolution": incident.resolution,
        "event_id": link.event_id,
        "dedupe_key": link.dedupe_key,
        "updated": incident.updated,
        "stackflow_url": url,
    })
}

/// A SOAR container whose status says it is over (SOAR's status types: `closed`, and the
/// `resolved` some instances define).
fn container_closed(container: &Container) -> bool {
    ["closed", "resolved"].iter().any(|status| container.status.eq_ignore_ascii_case(status))
}

/// A StackFlow incident whose state says it is over.
fn incident_closed(incident: &Incident) -> bool {
    ["resolved", "closed", "canceled", "cancelled"]
        .iter()
        .any(|state| incident.state.trim().eq_ignore_ascii_case(state))
}

/// The change time an event carries: `time` when it is trusted, else none (splunkd stamps the
/// event with its arrival).
fn event_time(time: &str, now: f64) -> &str {
    if untrusted(time, now).is_none() { time } else { "" }
}

/// Polls StackFlow: every linked incident by id list, reported when its fields changed.
pub fn poll_stackflow<W: Write>(
    poll: &mut Poll<'_, W>,
    reader: &mut StackflowReader,
    links: &Links,
    checkpoint: &mut Checkpoint,
) -> Result<()> {
    let cursor = &mut checkpoint.incidents;
    let kept = |id: &str| links.incidents.contains_key(id) || links.closed_incidents.contains(id);
    cursor.retain(&kept);
    let ids: Vec<&str> = links.incidents.keys().map(String::as_str).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let found = reader.incidents(&ids).map_err(Error::Unavailable)?;
    let mut changed: Vec<(&Incident, Value, String)> = Vec::new();
    for (id, link) in &links.incidents {
        let Some(incident) = found.get(id) else { continue };
        let fields = incident_fields(incident, link, reader.incident_url(id));
        let print = fingerprint(&fields);
        if cursor.changed(id, &print) {
            changed.push((incident, fields, print));
        } else {
            cursor.mark_closed(id, incident_closed(incident));
        }
    }
    // Oldest change first, so that a bounded run reports the backlog in order; an untrusted
    // change time sorts as the oldest, so it never holds the others back.
    let order = |incident: &Incident| match untrusted(&incident.updated, poll.now) {
        None => incident.updated.clone(),
        Some(_) => String::new(),
    };
    changed.sort_by_cached_key(|(incident, _, _)| order(incident));
    for (incident, fields, print) in changed {
        if !poll.budget_left() {
            break;
        }
        if let Some(problem) = untrusted(&incident.updated, poll.now) {
            log::warn!("{}: StackFlow incident {}: {problem}", poll.stanza, incident.id);
        }
        poll.emit(SOURCETYPE_INCIDENT, event_time(&incident.updated, poll.now), &fields)?;
        cursor.seen.insert(incident.id.clone(), print);
        cursor.mark_closed(&incident.id, incident_closed(incident));
    }
    Ok(())
}

/// Runs one poll of one stanza: links, SOAR, StackFlow, then the checkpoint. Returns the
/// run's exit code (0, or the worst failure; a failed remote does not stop the other).
pub fn run_stanza<W: Write>(
    settings: &Settings,
    splunkd: &Splunkd,
    checkpoint_dir: &std::path::Path,
    stanza: &Stanza,
    writer: &mut EventWriter<W>,
) -> ExitCode {
    let options = match InputOptions::from_stanza(stanza) {
        Ok(options) => options,
        Err(problem) => {
            log::error!("{}: {problem}", stanza.name);
            return ExitCode::Configuration;
        }
    };
    let path = checkpoint::path_for(checkpoint_dir, stanza.input_name());
    let mut checkpoint = match Checkpoint::load(&path) {
        Ok(checkpoint) => checkpoint,
        Err(error) => return error.report(),
    };
    let now = crate::civil_time::now_unix();
    checkpoint.distrust_cursors(&stanza.name, now);
    let since = now - (options.lookback_days.saturating_mul(86_400)) as f64;
    let closed = links::Closed {
        containers: &checkpoint.containers.closed,
        incidents: &checkpoint.incidents.closed,
    };
    let links = match Links::read(splunkd, since, &closed) {
        Ok(links) => links,
        Err(error) => {
            log::error!(
                "{}: cannot read the links (KV store {}), poll skipped: {error}",
                stanza.name,
                crate::item::link::COLLECTION
            );
            return error.exit_code();
        }
    };
    let mut poll = Poll {
        stanza: &stanza.name,
        options: &options,
        writer,
        emitted: 0,
        counts: BTreeMap::new(),
        now,
        comment_runs: comments::enabled(settings),
    };
    let mut code = ExitCode::Success;
    let mut configured = 0;
    let soar_configured = settings
        .account("soar", &options.account)
        .is_ok_and(|section| section.get("url").is_some_and(|url| !url.trim().is_empty()));
    if soar_configured {
        configured += 1;
        let result = SoarApi::open(settings, splunkd, &options.account)
            .map(SoarReader::new)
            .and_then(|mut reader| {
                let result = poll_soar(&mut poll, &mut reader, &links, &mut checkpoint);
                log::debug!("{}: SOAR answered {} request(s)", stanza.name, reader.requests);
                result
            });
        if let Err(error) = result {
            log::error!(
                "{}: SOAR poll skipped, its changes are read next time: {error}",
                stanza.name
            );
            code = code.worst(error.exit_code());
        }
    }
    let stackflow_configured =
        crate::remotes::stackflow::StackflowAccount::from_settings(settings, &options.account)
            .is_ok_and(|account| account.api_base.is_some());
    if stackflow_configured {
        configured += 1;
        let result = StackflowApi::open(settings, splunkd, &options.account)
            .map(StackflowReader::new)
            .and_then(|mut reader| poll_stackflow(&mut poll, &mut reader, &links, &mut checkpoint));
        if let Err(error) = result {
            log::error!(
                "{}: StackFlow poll skipped, its changes are read next time: {error}",
                stanza.name
            );
            code = code.worst(error.exit_code());
        }
    }
    if configured == 0 {
        log::error!(
            "{}: neither [soar:{account}] url nor [stackflow:{account}] api_url is set in stackflow.conf: nothing to poll",
            stanza.name,
            account = options.account
        );
        return ExitCode::Configuration;
    }
    if poll.comment_runs {
        match comments::add_due(settings, splunkd, &mut checkpoint) {
            Ok(0) => {}
            Ok(added) => log::info!(
                "{}: {added} playbook result(s) commented on their notables",
                stanza.name
            ),
            Err(error) => log::warn!(
                "{}: a playbook result could not be commented on its notable, tried again next poll: {error}",
                stanza.name
            ),
        }
    }
    let emitted = poll.emitted;
    let counts: Vec<String> = poll.counts.iter().map(|(kind, n)| format!("{kind}={n}")).collect();
    if let Err(error) = checkpoint.save(&path) {
        log::error!(
            "{}: the checkpoint {} could not be saved, so this poll's changes will be reported again: {error}",
            stanza.name,
            path.display()
        );
        code = code.worst(ExitCode::Configuration);
    }
    log::info!(
        "{}: {emitted} event(s) ({}) from {} linked container(s) and {} linked incident(s){}",
        stanza.name,
        if counts.is_empty() { "no changes".to_string() } else { counts.join(", ") },
        links.containers.len(),
        links.incidents.len(),
        if emitted >= options.max_events {
            "; max_events reached, the rest follows next run"
        } else {
            ""
        }
    );
    code
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
