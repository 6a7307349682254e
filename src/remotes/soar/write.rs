//! The SOAR delivery target: one item (a container spec and a batch of artifacts) → SOAR REST
//! requests → one `Outcome`.
//!
//! An attempt ensures the container (`POST /rest/container`; a duplicate source data identifier
//! answers `existing_container_id`, which counts as success), pre-checks which of the batch's
//! artifacts the container already holds when it pre-existed or the item is being re-sent
//! (`GET /rest/artifact?_filter_container=…&_filter_source_data_identifier__in=[…]`, chunked),
//! posts the missing ones as one JSON array, and after the container's last batch runs the
//! playbook once. Attempts are idempotent: repeating one adds nothing that is already there.
//! SOAR does not deduplicate artifacts, so check-then-post runs under a per-container claim
//! (`claim`) that two processes cannot hold at once. SOAR's `"failed": true` is authoritative
//! whatever the HTTP status; statuses are classified by `delivery::classify`.

use super::claim::ContainerClaims;
use super::{SoarApi, filter_batches, string_literal};
use crate::error::Result;
use crate::item::{DeliveryItem, ListIndex, Target};
use crate::mapping::soar::ContainerSpec;
use crate::net::classify::{StatusClass, classify_status};
use crate::net::url_encode;
use crate::net::{Delivered, Outcome, RejectClass};
use crate::remotes::splunkd::Splunkd;
use crate::settings::Settings;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// Containers remembered per run; past this the cache starts afresh (a forgotten container
/// only costs a duplicate answer and a pre-check).
const MAX_CACHED_CONTAINERS: usize = 4096;

/// What this run knows about a container.
#[derive(Clone, Copy, Debug)]
struct ContainerState {
    id: u64,
    /// Created by this process (not found as a duplicate).
    created: bool,
    /// Artifacts were posted to it by this process.
    gained: bool,
    /// The playbook was started on it by this process.
    playbook_ran: bool,
}

pub struct SoarTarget {
    api: SoarApi,
    claims: ContainerClaims,
    containers: HashMap<String, ContainerState>,
    /// The item of the previous attempt: attempting it again means a re-send.
    last_attempted: Option<String>,
    /// The artifacts' request body, reused from batch to batch (about a megabyte each).
    body: Vec<u8>,
}

/// SOAR's own error text when a body says `"failed": true`.
fn failed_message(json: &Value) -> Option<String> {
    (json.get("failed").and_then(Value::as_bool) == Some(true)).then(|| {
        json.get("message")
            .and_then(Value::as_str)
            .unwrap_or("SOAR reported failed without a message")
            .to_string()
    })
}

/// An id that SOAR may send as a number or a numeric string.
fn id_of(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// An item's request as stored, with each artifact kept as its JSON text: the common path
/// (a new container, nothing filtered) posts those texts as they are, with `container_id`
/// spliced in, instead of rebuilding every artifact.
#[derive(Deserialize)]
struct RequestView<'a> {
    container: ContainerSpec,
    #[serde(borrow)]
    artifacts: Vec<&'a RawValue>,
    batch: u32,
    last_batch: bool,
    #[serde(default)]
    playbook: Option<String>,
}

/// Everything of a request but its artifacts.
#[derive(Deserialize)]
struct RequestHead {
    container: ContainerSpec,
    batch: u32,
    last_batch: bool,
    #[serde(default)]
    playbook: Option<String>,
}

/// The two facts of an artifact the client decides on.
#[derive(Deserialize)]
struct ArtifactKeys<'a> {
    #[serde(borrow)]
    source_data_identifier: Cow<'a, str>,
    #[serde(default)]
    run_automation: bool,
}

/// An artifact as stored: its JSON text and the two facts the client decides on.
struct WireArtifact<'a> {
    text: &'a str,
    sdi: Cow<'a, str>,
    run_automation: bool,
}

/// An item's request: from the mapper's index when the item was mapped in this process (the
/// artifacts are not parsed again: the mapper wrote them and checked the whole text), else by
/// parsing and checking all of it (an item read back from the spool).
fn read_request(
    item: &DeliveryItem,
) -> std::result::Result<(RequestHead, Vec<WireArtifact<'_>>), Outcome> {
    let text = item.request.get();
    if let Some(found) = item.list_index.as_deref().and_then(|index| from_index(text, index)) {
        return Ok(found);
    }
    let not_sent = |what: String| {
        Outcome::rejected(
            RejectClass::Remote,
            format!("item {} {what}; it was not sent", item.dedupe_key),
        )
    };
    let request: RequestView<'_> = serde_json::from_str(text)
        .map_err(|error| not_sent(format!("is not a SOAR request ({error})")))?;
    let mut artifacts = Vec::with_capacity(request.artifacts.len());
    for raw in &request.artifacts {
        let keys: ArtifactKeys<'_> = serde_json::from_str(raw.get())
            .map_err(|error| not_sent(format!("holds an artifact that is not valid ({error})")))?;
        artifacts.push(WireArtifact {
            text: raw.get(),
            sdi: keys.source_data_identifier,
            run_automation: keys.run_automation,
        });
    }
    let head = RequestHead {
        container: request.container,
        batch: request.batch,
        last_batch: request.last_batch,
        playbook: request.playbook,
    };
    Ok((head, artifacts))
}

/// The request as its index describes it: the head parsed from the text around the list,
/// the artifacts taken as indexed. `None` when the index does not fit the text.
fn from_index<'a>(
    text: &'a str,
    index: &'a ListIndex,
) -> Option<(RequestHead, Vec<WireArtifact<'a>>)> {
    let around = [text.get(..index.list.start)?, text.get(index.list.end..)?].concat();
    let head: RequestHead = serde_json::from_str(&around).ok()?;
    let artifacts = index
        .elements
        .iter()
        .map(|element| {
            Some(WireArtifact {
                text: text.get(element.text.clone())?,
                sdi: Cow::Borrowed(index.id(element)?),
                run_automation: element.flagged,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some((head, artifacts))
}

impl WireArtifact<'_> {
    /// The artifact's JSON with `container_id` and the wanted `run_automation`.
    fn encode(
        &self,
        container_id: u64,
        run_automation: bool,
        out: &mut Vec<u8>,
    ) -> std::result::Result<(), String> {
        let text = self.text;
        if run_automation == self.run_automation {
            let Some(rest) = text.strip_prefix('{') else {
                return Err("an artifact is not a JSON object".into());
            };
            out.extend_from_slice(format!("{{\"container_id\":{container_id},").as_bytes());
            out.extend_from_slice(rest.as_bytes());
            return Ok(());
        }
        // Rare: the batch was filtered, so automation moves to another artifact.
        let mut object: serde_json::Map<String, Value> = serde_json::from_str(text)
            .map_err(|error| format!("an artifact is not valid JSON: {error}"))?;
        object.insert("container_id".into(), Value::from(container_id));
        object.insert("run_automation".into(), Value::Bool(run_automation));
        serde_json::to_writer(&mut *out, &object).map_err(|error| error.to_string())
    }
}

/// The result of posting a batch of artifacts.
#[derive(Default)]
struct Posted {
    created: usize,
    existing: usize,
    failures: Vec<String>,
}

impl SoarTarget {
    /// Reads `[soar:<account>]` and the token `soar.<account>` from storage/passwords.
    pub fn open(account: &str, settings: &Settings, splunkd: &Splunkd) -> Result<SoarTarget> {
        let api = SoarApi::open(settings, splunkd, account)?;
        let claims = ContainerClaims::new(settings, account)?;
        Ok(SoarTarget::with_api(api, claims))
    }

    pub fn with_api(api: SoarApi, claims: ContainerClaims) -> SoarTarget {
        SoarTarget {
            api,
            claims,
            containers: HashMap::new(),
            last_attempted: None,
            body: Vec::new(),
        }
    }

    /// Creates the container or finds it by its source data identifier.
    fn ensure_container(
        &mut self,
        spec: &ContainerSpec,
    ) -> std::result::Result<ContainerState, Outcome> {
        let sdi = &spec.source_data_identifier;
        if let Some(state) = self.containers.get(sdi) {
            return Ok(*state);
        }
        let mut container = spec.clone();
        if container.label.is_none() {
            container.label = Some(self.api.account.label.clone());
        }
        let body = serde_json::to_vec(&container).map_err(|error| {
            Outcome::rejected(RejectClass::Remote, format!("cannot encode the container: {error}"))
        })?;
        let what = "SOAR POST /rest/container";
        let response = self.api.post("/rest/container", &body)?;
        let json = response.json().unwrap_or(Value::Null);
        let state = if let Some(existing) = id_of(json.get("existing_container_id"))
            .filter(|_| response.status < 500 && !matches!(response.status, 401 | 403))
        {
            ContainerState { id: existing, created: false, gained: false, playbook_ran: false }
        } else {
            match classify_status(&response, what) {
                StatusClass::Failed(outcome) => return Err(outcome),
                StatusClass::Success => {}
            }
            if let Some(message) = failed_message(&json) {
                return Err(Outcome::rejected(RejectClass::Remote, format!("{what}: {message}")));
            }
            let Some(id) = id_of(json.get("id")) else {
                return Err(Outcome::rejected(
                    RejectClass::Remote,
                    format!(
                        "{what}: HTTP {} without a container id: {}",
                        response.status,
                        response.body_excerpt()
                    ),
                ));
            };
            ContainerState { id, created: true, gained: false, playbook_ran: false }
        };
        if self.containers.len() >= MAX_CACHED_CONTAINERS {
            self.containers.clear();
        }
        self.containers.insert(sdi.clone(), state);
        Ok(state)
    }

    /// The SDIs among `artifacts` that the container already holds.
    fn present_sdis(
        &self,
        container_id: u64,
        artifacts: &[WireArtifact<'_>],
    ) -> std::result::Result<HashSet<String>, Outcome> {
        let sdis: Vec<&str> = artifacts.iter().map(|artifact| artifact.sdi.as_ref()).collect();
        let mut present = HashSet::new();
        let literals: Vec<String> = sdis.iter().map(|sdi| string_literal(sdi)).collect();
        for (batch, _) in filter_batches(&literals) {
            let query = format!(
                "/rest/artifact?_filter_container={container_id}&_filter_source_data_identifier__in={}&page_size=0",
                url_encode(&batch)
            );
            let response = self.api.get(&query)?;
            let what = "SOAR GET /rest/artifact";
            if let StatusClass::Failed(outcome) = classify_status(&response, what) {
                return Err(outcome);
            }
            let json = response.json().unwrap_or(Value::Null);
            if let Some(message) = failed_message(&json) {
                return Err(Outcome::rejected(RejectClass::Remote, format!("{what}: {message}")));
            }
            let Some(data) = json.get("data").and_then(Value::as_array) else {
                return Err(Outcome::retry(
                    format!("{what}: the answer has no data list: {}", response.body_excerpt()),
                    None,
                ));
            };
            for artifact in data {
                if let Some(sdi) = artifact.get("source_data_identifier").and_then(Value::as_str) {
                    present.insert(sdi.to_string());
                }
            }
        }
        Ok(present)
    }

    /// Posts artifacts as one JSON array; `automation` marks the one that runs automation.
    fn post_artifacts(
        &mut self,
        container_id: u64,
        artifacts: &[&WireArtifact<'_>],
        automation: Option<usize>,
    ) -> std::result::Result<Posted, Outcome> {
        let capacity = artifacts.iter().map(|a| a.text.len() + 32).sum::<usize>() + 2;
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        body.reserve(capacity);
        body.push(b'[');
        for (index, artifact) in artifacts.iter().enumerate() {
            if index > 0 {
                body.push(b',');
            }
            artifact.encode(container_id, automation == Some(index), &mut body).map_err(
                |error| {
                    Outcome::rejected(
                        RejectClass::Remote,
                        format!("cannot encode the artifacts: {error}"),
                    )
                },
            )?;
        }
        body.push(b']');
        let what = "SOAR POST /rest/artifact";
        let response = self.api.post("/rest/artifact", &body);
        self.body = body;
        let response = response?;
        let json = response.json().unwrap_or(Value::Null);
        let per_item = matches!(response.status, 200..=299 | 400) && json.is_array();
        if !per_item {
            if let StatusClass::Failed(outcome) = classify_status(&response, what) {
                return Err(outcome);
            }
            if let Some(message) = failed_message(&json) {
                return Err(Outcome::rejected(RejectClass::Remote, format!("{what}: {message}")));
            }
        }
        let results: Vec<Value> = match json {
            Value::Array(results) => results,
            // A single object answers a one-element list on some versions.
            object @ Value::Object(_) => vec![object],
            _ => {
                return Err(Outcome::rejected(
                    RejectClass::Remote,
                    format!(
                        "{what}: HTTP {} with an answer that is not JSON: {}",
                        response.status,
                        response.body_excerpt()
                    ),
                ));
            }
        };
        let mut posted = Posted::default();
        for result in &results {
            if id_of(result.get("existing_artifact_id")).is_some() {
                posted.existing += 1;
            } else if let Some(message) = failed_message(result) {
                posted.failures.push(message);
            } else if id_of(result.get("id")).is_some() {
                posted.created += 1;
            } else {
                posted.failures.push(format!("no artifact id in {result}"));
            }
        }
        if results.len() < artifacts.len() {
            posted.failures.push(format!(
                "SOAR answered {} results for {} artifacts",
                results.len(),
                artifacts.len()
            ));
        }
        Ok(posted)
    }

    fn deliver(&mut self, item: &DeliveryItem, resend: bool) -> Outcome {
        let (request, artifacts) = match read_request(item) {
            Ok(request) => request,
            Err(outcome) => return outcome,
        };
        let sdi = request.container.source_data_identifier.clone();
        // Held until the batch (and the playbook) is done: another process waits, then finds
        // the artifacts present instead of posting them again.
        let claim = match self.claims.claim(&sdi) {
            Ok(claim) => claim,
            Err(outcome) => return outcome,
        };
        if claim.others_since {
            // Another process may have posted to it since: ask SOAR again, pre-check included.
            self.containers.remove(&sdi);
        }
        let state = match self.ensure_container(&request.container) {
            Ok(state) => state,
            Err(outcome) => return outcome,
        };
        let id = state.id;
        let mut present = HashSet::new();
        if !state.created || resend {
            match self.present_sdis(id, &artifacts) {
                Ok(found) => present = found,
                Err(outcome) => return with_context(outcome, id),
            }
        }
        let to_post: Vec<&WireArtifact<'_>> =
            artifacts.iter().filter(|artifact| !present.contains(artifact.sdi.as_ref())).collect();
        let already = artifacts.len() - to_post.len();
        let wants_automation = artifacts.iter().any(|artifact| artifact.run_automation);
        let automation = if wants_automation { to_post.len().checked_sub(1) } else { None };
        let mut posted = Posted::default();
        if !to_post.is_empty() {
            posted = match self.post_artifacts(id, &to_post, automation) {
                Ok(posted) => posted,
                Err(outcome) => return with_context(outcome, id),
            };
            if posted.created > 0
                && let Some(state) = self.containers.get_mut(&sdi)
            {
                state.gained = true;
            }
            if !posted.failures.is_empty() {
                return Outcome::rejected(
                    RejectClass::Remote,
                    format!(
                        "SOAR container {id}: {} of {} artifacts refused: {}",
                        posted.failures.len(),
                        to_post.len(),
                        posted.failures[0]
                    ),
                );
            }
        }
        let state = self.containers.get(&sdi).copied().unwrap_or(state);
        let mut playbook_note = String::new();
        let mut details = serde_json::Map::new();
        if let Some(playbook) = request.playbook.as_deref().filter(|_| request.last_batch) {
            if (state.created || state.gained) && !state.playbook_ran {
                match run_playbook(&self.api, id, playbook) {
                    Ok(run_id) => {
                        if let Some(state) = self.containers.get_mut(&sdi) {
                            state.playbook_ran = true;
                        }
                        playbook_note = format!("; playbook {playbook} started (run {run_id})");
                        details.insert("playbook_run_id".into(), Value::String(run_id));
                    }
                    Err(outcome) => {
                        return with_context(outcome, id);
                    }
                }
            } else if !state.playbook_ran {
                playbook_note =
                    format!("; playbook {playbook} not run again (nothing new in the container)");
            }
        }
        let existing = already + posted.existing;
        let duplicate = !state.created && posted.created == 0;
        let message = format!(
            "SOAR container {id} ({}) batch {}: {} artifacts posted, {existing} already present{playbook_note}",
            if state.created { "created" } else { "already there" },
            request.batch,
            posted.created,
        );
        log::info!("{message}");
        details.insert("container_id".into(), Value::from(id));
        details.insert("artifacts_posted".into(), Value::from(posted.created));
        details.insert("artifacts_present".into(), Value::from(existing));
        Outcome::Delivered(Delivered {
            remote_id: Some(id.to_string()),
            remote_url: Some(self.api.account.container_url(id)),
            duplicate,
            details,
            message,
        })
    }
}

/// Says which container a failure after its creation concerns.
fn with_context(outcome: Outcome, container_id: u64) -> Outcome {
    match outcome {
        Outcome::Rejected(mut rejection) => {
            rejection.reason = format!("SOAR container {container_id}: {}", rejection.reason);
            Outcome::Rejected(rejection)
        }
        Outcome::Retry(mut retry) => {
            retry.reason = format!("SOAR container {container_id}: {}", retry.reason);
            Outcome::Retry(retry)
        }
        delivered => delivered,
    }
}

impl Target for SoarTarget {
    fn attempt(&mut self, item: &DeliveryItem) -> Outcome {
        let resend = self.last_attempted.as_deref() == Some(item.dedupe_key.as_str());
        if !resend {
            self.last_attempted = Some(item.dedupe_key.clone());
        }
        self.deliver(item, resend)
    }
}

/// `POST /rest/playbook_run` on a container, `scope = new` (PRODUCT §4, §9): the run id, or
/// the classified failure. Used after a container is created and by an approved Slack click.
pub fn run_playbook(
    api: &SoarApi,
    container_id: u64,
    playbook: &str,
) -> std::result::Result<String, Outcome> {
    let playbook_id = match playbook.trim().parse::<u64>() {
        Ok(number) => Value::from(number),
        Err(_) => Value::from(playbook.trim()),
    };
    let body = serde_json::json!({
        "container_id": container_id,
        "playbook_id": playbook_id,
        "scope": "new",
        "run": true,
    });
    let what = format!("SOAR POST /rest/playbook_run (playbook {playbook})");
    let response = api.post("/rest/playbook_run", body.to_string().as_bytes())?;
    if let StatusClass::Failed(outcome) = classify_status(&response, &what) {
        return Err(outcome);
    }
    let json = response.json().unwrap_or(Value::Null);
    if let Some(message) = failed_message(&json) {
        return Err(Outcome::rejected(RejectClass::Remote, format!("{what}: {message}")));
    }
    Ok(match json.get("playbook_run_id") {
        Some(Value::String(id)) => id.clone(),
        Some(Value::Number(id)) => id.to_string(),
        _ => String::from("?"),
    })
}

#[cfg(test)]
mod tests;
