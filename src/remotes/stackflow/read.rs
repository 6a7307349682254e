//! StackFlow read-back for `| stackflowsync`: incidents by id through the incidents API, with
//! `Authorization: Bearer <stackflow_api.<account> secret>`.
//!
//! `find_by_dedupe_key` answers "did an earlier attempt create this incident?" after an attempt
//! whose outcome is unknown (a reset or timeout after the request left): the documented list
//! filters `q` (full text) and `created_after` narrow the search, every page is read to the end
//! of the window, and an incident counts only when its stored `dedupe_key` (top level or in the
//! stored payload) is exactly the key.
//! Assumption, unverified: StackFlow's full-text search covers the fields the webhook stored.
//!
//! Assumption (StackFlow's incidents API docs, api/incidents.html, list filters but no id list): the list call
//! `GET <api_url>/incidents?ids=A,B&limit=200` answers with the incidents of those ids (our
//! emulator does). When it answers HTTP 400 (the filter is unknown), the reader falls back to
//! `GET <api_url>/incidents/<id>` per id, for the rest of the run.

use super::StackflowApi;
use crate::item::Lookup;
use crate::net::Outcome;
use crate::net::classify::{StatusClass, classify_status};
use crate::net::url_encode;
use crate::remotes::response as remote;
use serde_json::Value;
use std::collections::HashMap;

/// Ids per list query (the API's maximum `limit`).
pub const MAX_IDS_PER_QUERY: usize = 200;
/// Pages read at most by one dedupe look-up.
const MAX_LOOKUP_PAGES: u64 = 50;
/// Budget for the encoded `ids=` value of one query.
const MAX_IDS_BYTES: usize = 5_000;

/// The incident fields the command shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Incident {
    pub id: String,
    pub state: String,
    pub priority: String,
    pub assigned_to: String,
    /// `resolution` / `close_code`, when the incident carries one.
    pub resolution: String,
    pub number: String,
    pub assignment_group: String,
    /// `updated_at` (ISO 8601), when StackFlow last changed the incident.
    pub updated: String,
}

impl Incident {
    fn from_json(value: &Value) -> Option<Incident> {
        let id = remote::text(value.get("id")).trim().to_string();
        if id.is_empty() {
            return None;
        }
        let text = |key: &str| remote::text(value.get(key));
        let resolution = ["resolution", "resolution_code", "close_code"]
            .into_iter()
            .map(text)
            .find(|value| !value.is_empty())
            .unwrap_or_default();
        Some(Incident {
            id,
            state: text("state"),
            priority: text("priority"),
            assigned_to: text("assigned_to"),
            resolution,
            number: text("number"),
            assignment_group: text("assignment_group"),
            updated: [text("updated_at"), text("updated")]
                .into_iter()
                .find(|updated| !updated.is_empty())
                .unwrap_or_default(),
        })
    }
}

/// The read side of one StackFlow account's incidents API.
pub struct StackflowReader {
    api: StackflowApi,
    /// Set once the list call answered 400: read incidents one by one from then on.
    per_id: bool,
    pub requests: usize,
}

impl StackflowReader {
    pub fn new(api: StackflowApi) -> StackflowReader {
        StackflowReader { api, per_id: false, requests: 0 }
    }

    /// `<api base>/incidents/<id>`: the same link receipts and Slack buttons carry.
    pub fn incident_url(&self, id: &str) -> String {
        crate::mapping::stackflow_incident_url(self.api.base_url(), id)
    }

    /// Incidents by id; unknown ids are absent from the answer.
    pub fn incidents(&mut self, ids: &[&str]) -> Result<HashMap<String, Incident>, String> {
        let mut found = HashMap::new();
        for batch in id_batches(ids) {
            if !self.per_id {
                match self.list(&batch, &mut found) {
                    Ok(()) => continue,
                    Err(Some(reason)) => return Err(reason),
                    Err(None) => self.per_id = true,
                }
            }
            for id in batch {
                if let Some(incident) = self.one(id)? {
                    found.insert(incident.id.clone(), incident);
                }
            }
        }
        Ok(found)
    }

    /// The incident created since `since_unix` whose dedupe key is `dedupe_key`, reading the
    /// list page after page (`page`, `limit`, `total`, or a `next` link's presence) to the end
    /// of the window, at most [`MAX_LOOKUP_PAGES`] pages. Why there is no answer is a
    /// `Lookup`: `Unknown` (rate limited, down: ask again later) or `Impossible` (the token is
    /// refused, the API is not there: a lasting reason).
    pub fn find_by_dedupe_key(
        &mut self,
        dedupe_key: &str,
        since_unix: i64,
    ) -> Result<Option<Value>, Lookup> {
        let what = "StackFlow GET /incidents (dedupe lookup)";
        let key_of = |incident: &Value| {
            [incident.get("dedupe_key"), incident.pointer("/payload/dedupe_key")]
                .into_iter()
                .flatten()
                .any(|key| key.as_str() == Some(dedupe_key))
        };
        for page in 1..=MAX_LOOKUP_PAGES {
            self.requests += 1;
            let response = self.api.get(&format!(
                "/incidents?q={}&created_after={}&limit={MAX_IDS_PER_QUERY}&page={page}",
                url_encode(dedupe_key),
                url_encode(&crate::civil_time::iso8601_utc(since_unix))
            ));
            let json = lookup_answer(response, what)?;
            let data = json.get("data").or_else(|| json.get("incidents")).unwrap_or(&json);
            let Some(items) = data.as_array() else {
                return Err(Lookup::Unknown(format!("{what}: the answer has no \"data\" list")));
            };
            if let Some(found) = items.iter().find(|incident| key_of(incident)) {
                return Ok(Some(found.clone()));
            }
            let limit =
                json.get("limit").and_then(remote::as_u64).unwrap_or(MAX_IDS_PER_QUERY as u64);
            let seen = page.saturating_mul(limit);
            let more = match (json.get("next"), json.get("total").and_then(remote::as_u64)) {
                (Some(next), _) => !next.is_null() && next.as_str() != Some(""),
                (None, Some(total)) => total > seen,
                (None, None) => items.len() as u64 >= limit,
            };
            if items.is_empty() || !more {
                return Ok(None);
            }
        }
        Err(Lookup::Unknown(format!("{what}: more than {MAX_LOOKUP_PAGES} pages of matches")))
    }

    /// `Err(None)`: the API does not take an id list (HTTP 400). Each page is read as it
    /// arrives and only the incidents asked for are kept, so memory does not grow with what a
    /// page holds; pages stop when one brings nothing new (at most one per id asked).
    fn list(
        &mut self,
        ids: &[&str],
        found: &mut HashMap<String, Incident>,
    ) -> Result<(), Option<String>> {
        let what = "StackFlow GET /incidents";
        let joined = ids.iter().map(|id| url_encode(id)).collect::<Vec<_>>().join(",");
        let mut page = 1u64;
        loop {
            self.requests += 1;
            let response = self.api.get_streamed(&format!(
                "/incidents?ids={joined}&limit={MAX_IDS_PER_QUERY}&page={page}"
            ));
            let mut response = response.map_err(|outcome| Some(remote::reason(&outcome)))?;
            if response.status == 400 {
                return Err(None);
            }
            if !(200..300).contains(&response.status) {
                let answered = response
                    .into_response()
                    .map_err(|error| Some(format!("{what}: reading the answer: {error}")))?;
                return Err(Some(match classify_status(&answered, what) {
                    StatusClass::Failed(outcome) => remote::reason(&outcome),
                    StatusClass::Success => format!("{what}: HTTP {}", answered.status),
                }));
            }
            let mut new = 0usize;
            let mut on_item = |item: Value| {
                if let Some(incident) = Incident::from_json(&item)
                    && ids.contains(&incident.id.as_str())
                    && found.insert(incident.id.clone(), incident).is_none()
                {
                    new += 1;
                }
                true
            };
            let envelope = crate::remotes::stream::read_list(
                response.body(),
                &["data", "incidents"],
                &mut on_item,
            )
            .map_err(|error| Some(format!("{what}: {error}")))?;
            if !envelope.had_list {
                return Err(Some(format!("{what}: the answer has no \"data\" list")));
            }
            let items = envelope.items;
            let total = envelope.fields.get("total").and_then(remote::as_u64).unwrap_or(0);
            let limit = envelope
                .fields
                .get("limit")
                .and_then(remote::as_u64)
                .unwrap_or(MAX_IDS_PER_QUERY as u64)
                .max(1);
            let more = items >= limit && total > page.saturating_mul(limit);
            if !more || new == 0 || page > ids.len() as u64 {
                return Ok(());
            }
            page += 1;
        }
    }

    fn one(&mut self, id: &str) -> Result<Option<Incident>, String> {
        self.requests += 1;
        let response = self.api.get(&format!("/incidents/{}", url_encode(id)));
        if matches!(&response, Ok(response) if response.status == 404) {
            return Ok(None);
        }
        let json = remote::json_answer(response, "StackFlow GET /incidents/<id>")?;
        Ok(Incident::from_json(json.get("data").unwrap_or(&json)))
    }
}

/// A look-up's answer as JSON, or why there is none: a refused token or a URL that is not the
/// API (401, 403, 404, any other refusal) is lasting; a rate limit or an outage is not.
fn lookup_answer(
    response: std::result::Result<crate::net::http::HttpResponse, Outcome>,
    what: &str,
) -> Result<Value, Lookup> {
    let failed = |outcome: Outcome| match outcome {
        Outcome::Rejected(_) => Lookup::Impossible(remote::reason(&outcome)),
        other => Lookup::Unknown(remote::reason(&other)),
    };
    let response = response.map_err(failed)?;
    if let StatusClass::Failed(outcome) = classify_status(&response, what) {
        return Err(failed(outcome));
    }
    response.json().ok_or_else(|| Lookup::Unknown(format!("{what}: the answer is not JSON")))
}

/// Splits ids into lists of at most [`MAX_IDS_PER_QUERY`] ids and [`MAX_IDS_BYTES`] of URL.
fn id_batches<'a>(ids: &[&'a str]) -> Vec<Vec<&'a str>> {
    let mut batches: Vec<Vec<&str>> = Vec::new();
    let mut bytes = 0usize;
    for id in ids {
        let cost = url_encode(id).len() + 1;
        match batches.last_mut() {
            Some(batch) if batch.len() < MAX_IDS_PER_QUERY && bytes + cost <= MAX_IDS_BYTES => {
                batch.push(id);
                bytes += cost;
            }
            _ => {
                batches.push(vec![id]);
                bytes = cost;
            }
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_batched_by_count_and_size() {
        let ids: Vec<String> = (0..450).map(|n| format!("INC{n:07}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let batches = id_batches(&refs);
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [200, 200, 50]);
        let long: Vec<String> = (0..100).map(|n| format!("{n}-{}", "x".repeat(100))).collect();
        let refs: Vec<&str> = long.iter().map(String::as_str).collect();
        assert!(id_batches(&refs).len() > 1);
        assert!(id_batches(&[]).is_empty());
    }

    #[test]
    fn incidents_are_read_leniently() {
        let incident = Incident::from_json(&serde_json::json!({
            "id": "INC0001234", "state": "resolved", "priority": "P2",
            "assigned_to": "jane.doe@example.com", "close_code": "fixed"
        }))
        .unwrap();
        assert_eq!(incident.state, "resolved");
        assert_eq!(incident.resolution, "fixed");
        assert!(Incident::from_json(&serde_json::json!({"state": "new"})).is_none());
    }
}
