//! The `stackflow_state://<account>` modular input (PRODUCT §12): case state flows into Splunk
//! without anyone running a search. Each run polls, for the objects this app created (the KV
//! store collection `stackflow_links`, links updated in the last `lookback_days`), the SOAR
//! containers and playbook runs and the StackFlow incidents that changed since the last
//! checkpoint, and writes one event per change: sourcetypes `stackflow:soar:container`,
//! `stackflow:soar:playbook_run`, `stackflow:incident`.
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

pub mod checkpoint;

use crate::error::{Error, ExitCode, Result};
use crate::remotes::response as remote;
use crate::remotes::soar::SoarApi;
use crate::remotes::soar::read::{ChangeKind, Container, PlaybookRun, SoarReader};
use crate::remotes::stackflow::StackflowApi;
use crate::remotes::stackflow::read::{Incident, StackflowReader};
use crate::settings::Settings;
use crate::splunk::modinput::{EventWriter, Stanza, StreamEvent};
use crate::splunk::rest::Splunkd;
use checkpoint::{Checkpoint, fingerprint};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;

pub const SOURCETYPE_CONTAINER: &str = "stackflow:soar:container";
pub const SOURCETYPE_PLAYBOOK_RUN: &str = "stackflow:soar:playbook_run";
pub const SOURCETYPE_INCIDENT: &str = "stackflow:incident";

/// Links read per KV store request, and at most in one run.
const LINKS_PAGE: usize = 1000;
const MAX_LINKS: usize = 100_000;
/// A SOAR `message` longer than this is cut (it often holds JSON of a whole run).
const MAX_MESSAGE_CHARS: usize = 4096;

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

/// What a link ties an object to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkRef {
    pub event_id: String,
    pub dedupe_key: String,
}

/// The objects this app created, from `stackflow_links`.
#[derive(Debug, Default)]
pub struct Links {
    pub containers: BTreeMap<u64, LinkRef>,
    pub incidents: BTreeMap<String, LinkRef>,
}

impl Links {
    /// Adds one link record; the item's main record (`_key` without `#event_id`) wins.
    pub fn add(&mut self, record: &Value) {
        let key = remote::text(record.get("_key"));
        let main = !key.contains('#');
        let link = LinkRef {
            event_id: remote::text(record.get("event_id")),
            dedupe_key: key.split('#').next().unwrap_or_default().to_string(),
        };
        if let Some(id) = record.get("soar_container_id").and_then(remote::as_u64)
            && (main || !self.containers.contains_key(&id))
        {
            self.containers.insert(id, link.clone());
        }
        let incident = remote::text(record.get("stackflow_incident_id")).trim().to_string();
        if !incident.is_empty() && (main || !self.incidents.contains_key(&incident)) {
            self.incidents.insert(incident, link);
        }
    }

    /// Links updated since `since_unix`, page by page.
    pub fn read(splunkd: &Splunkd, since_unix: f64) -> Result<Links> {
        let query = json!({"updated": {"$gte": since_unix}});
        let mut links = Links::default();
        let mut skip = 0;
        while skip < MAX_LINKS {
            let page =
                splunkd.kv_query_page(crate::audit::links::COLLECTION, &query, skip, LINKS_PAGE)?;
            page.iter().for_each(|record| links.add(record));
            if page.len() < LINKS_PAGE {
                return Ok(links);
            }
            skip += page.len();
        }
        log::warn!(
            "stackflow_state: more than {MAX_LINKS} links in the look-back window; only the first {MAX_LINKS} are polled (lower lookback_days)"
        );
        Ok(links)
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

/// `since` minus the overlap, as ISO 8601 UTC (the text itself when it is not a timestamp).
fn with_overlap(since: &str, overlap_s: u64) -> String {
    match crate::civil_time::parse_iso8601(since) {
        Some(seconds) => {
            let start =
                (seconds.floor() as i64).saturating_sub(overlap_s.min(i64::MAX as u64) as i64);
            crate::civil_time::iso8601_utc(start)
        }
        None => since.to_string(),
    }
}

/// The later of two change times (ISO 8601 of one remote compares by its instant).
fn later(a: Option<String>, b: &str) -> Option<String> {
    if b.is_empty() {
        return a;
    }
    match &a {
        Some(current) => {
            let newer = match (
                crate::civil_time::parse_iso8601(current),
                crate::civil_time::parse_iso8601(b),
            ) {
                (Some(x), Some(y)) => y > x,
                _ => b > current.as_str(),
            };
            if newer { Some(b.to_string()) } else { a }
        }
        None => Some(b.to_string()),
    }
}

/// Polls SOAR: containers, then playbook runs.
pub fn poll_soar<W: Write>(
    poll: &mut Poll<'_, W>,
    reader: &mut SoarReader,
    links: &Links,
    checkpoint: &mut Checkpoint,
) -> Result<()> {
    let linked = |id: &str| {
        let container = id.split('/').next().unwrap_or_default();
        container.parse().is_ok_and(|id: u64| links.containers.contains_key(&id))
    };
    checkpoint.containers.retain(&linked);
    checkpoint.playbook_runs.retain(&linked);
    let ids: Vec<u64> = links.containers.keys().copied().collect();
    if ids.is_empty() {
        return Ok(());
    }
    let account = reader.account().clone();
    let overlap = poll.options.overlap_s;

    // Containers: those reported before with the time filter, new ones without.
    let cursor = &mut checkpoint.containers;
    let (known, new): (Vec<u64>, Vec<u64>) =
        ids.iter().partition(|id| cursor.seen.contains_key(&id.to_string()));
    let since = cursor.since.clone();
    let mut newest: Option<String> = None;
    let mut complete = true;
    let mut failure: Option<Error> = None;
    for (group, filter) in [(&known, since.as_deref()), (&new, None)] {
        if group.is_empty() || !complete {
            continue;
        }
        let filter = filter.map(|since| with_overlap(since, overlap));
        let mut visit = |item: &Value| -> bool {
            let Some(container) = Container::from_json(item) else { return true };
            let Some(link) = links.containers.get(&container.id) else { return true };
            newest = later(newest.take(), &container.update_time);
            let fields = container_fields(&container, link, account.container_url(container.id));
            let print = fingerprint(&fields);
            let id = container.id.to_string();
            if !cursor.changed(&id, &print) {
                return true;
            }
            if !poll.budget_left() {
                return false;
            }
            match poll.emit(SOURCETYPE_CONTAINER, &container.update_time, &fields) {
                Ok(()) => {
                    cursor.seen.insert(id, print);
                    true
                }
                Err(error) => {
                    failure = Some(error);
                    false
                }
            }
        };
        let read = reader.each_changed(
            ChangeKind::Containers,
            group,
            "update_time",
            filter.as_deref(),
            &mut visit,
        );
        match read {
            Ok(done) => complete &= done,
            Err(reason) => {
                complete = false;
                failure.get_or_insert(Error::Unavailable(reason));
            }
        }
    }
    if complete {
        cursor.since = later(since, newest.as_deref().unwrap_or_default());
    }
    if let Some(error) = failure {
        return Err(error);
    }

    // Playbook runs: containers whose runs were never read completely are read without the
    // time filter.
    let cursor = &mut checkpoint.playbook_runs;
    cursor.parents.retain(|id| linked(id));
    let (known, new): (Vec<u64>, Vec<u64>) =
        ids.iter().partition(|id| cursor.parents.contains(&id.to_string()));
    let field = poll.options.run_time_field.clone();
    let since = cursor.since.clone();
    let mut newest: Option<String> = None;
    let mut complete = true;
    let mut failure: Option<Error> = None;
    for (group, filter, is_new) in [(&known, since.as_deref(), false), (&new, None, true)] {
        if group.is_empty() || !complete {
            continue;
        }
        let filter = filter.map(|since| with_overlap(since, overlap));
        let mut visit = |item: &Value| -> bool {
            let Some(run) = PlaybookRun::from_json(item) else { return true };
            let Some(link) = links.containers.get(&run.container_id) else { return true };
            if !field.is_empty() {
                newest = later(newest.take(), &remote::text(item.get(&field)));
            }
            let fields = run_fields(&run, link);
            let print = fingerprint(&fields);
            let id = format!("{}/{}", run.container_id, run.id);
            if !cursor.changed(&id, &print) {
                return true;
            }
            if !poll.budget_left() {
                return false;
            }
            let time = [&run.update_time, &run.end_time, &run.start_time]
                .into_iter()
                .find(|time| !time.is_empty())
                .cloned()
                .unwrap_or_default();
            match poll.emit(SOURCETYPE_PLAYBOOK_RUN, &time, &fields) {
                Ok(()) => {
                    cursor.seen.insert(id, print);
                    true
                }
                Err(error) => {
                    failure = Some(error);
                    false
                }
            }
        };
        let read = reader.each_changed(
            ChangeKind::PlaybookRuns,
            group,
            &field,
            filter.as_deref(),
            &mut visit,
        );
        match read {
            Ok(true) if is_new => cursor.parents.extend(group.iter().map(u64::to_string)),
            Ok(true) => {}
            Ok(false) => complete = false,
            Err(reason) => {
                complete = false;
                failure.get_or_insert(Error::Unavailable(reason));
            }
        }
    }
    if complete && !field.is_empty() {
        cursor.since = later(since, newest.as_deref().unwrap_or_default());
    }
    failure.map_or(Ok(()), Err)
}

/// Polls StackFlow: every linked incident by id list, reported when its fields changed.
pub fn poll_stackflow<W: Write>(
    poll: &mut Poll<'_, W>,
    reader: &mut StackflowReader,
    links: &Links,
    checkpoint: &mut Checkpoint,
) -> Result<()> {
    let cursor = &mut checkpoint.incidents;
    cursor.retain(&|id| links.incidents.contains_key(id));
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
        }
    }
    // Oldest change first, so that a bounded run reports the backlog in order.
    changed.sort_by(|a, b| a.0.updated.cmp(&b.0.updated));
    for (incident, fields, print) in changed {
        if !poll.budget_left() {
            break;
        }
        poll.emit(SOURCETYPE_INCIDENT, &incident.updated, &fields)?;
        cursor.seen.insert(incident.id.clone(), print);
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
        Err(error) => return crate::cmd::report_error(&error),
    };
    let now = crate::delivery::spool::now_unix();
    let since = now - (options.lookback_days.saturating_mul(86_400)) as f64;
    let links = match Links::read(splunkd, since) {
        Ok(links) => links,
        Err(error) => {
            log::error!(
                "{}: cannot read the links (KV store {}), poll skipped: {error}",
                stanza.name,
                crate::audit::links::COLLECTION
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
