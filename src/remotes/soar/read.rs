//! SOAR read-back for `| stackflowsync`: containers by id or by `source_data_identifier`, and
//! the newest playbook run of each, in batched list queries (`_filter_<field>__in=[…]`),
//! never one request per row.
//!
//! A list query's URL stays under [`super::MAX_FILTER_BYTES`] of filter text; longer id lists are
//! split into several queries. Results are paginated (`page`, `page_size`, envelope
//! `{"count","num_pages","data"}`) and every page is read.
//!
//! `each_changed` serves the `stackflow_state` input: the containers / playbook runs of a set
//! of containers changed since a time (`_filter_update_time__gte`), oldest first, page by page.

use super::{SoarApi, filter_batches, string_literal};
use crate::net::url_encode;
use crate::remotes::response as remote;
use serde_json::Value;
use std::collections::HashMap;

/// The container fields the command shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Container {
    pub id: u64,
    pub status: String,
    pub severity: String,
    pub owner: String,
    pub close_time: String,
    pub source_data_identifier: String,
    /// A `resolution` field, when the SOAR instance has one (custom field or later versions).
    pub resolution: String,
    pub label: String,
    /// When SOAR last changed the container (ISO 8601 text as SOAR writes it).
    pub update_time: String,
}

impl Container {
    pub fn from_json(value: &Value) -> Option<Container> {
        let id = remote::as_u64(value.get("id")?)?;
        let text = |key: &str| remote::text(value.get(key));
        let owner = [text("owner_name"), text("owner")]
            .into_iter()
            .find(|owner| !owner.is_empty())
            .unwrap_or_default();
        let resolution =
            [text("resolution"), remote::text(value.pointer("/custom_fields/resolution"))]
                .into_iter()
                .find(|resolution| !resolution.is_empty())
                .unwrap_or_default();
        Some(Container {
            id,
            status: text("status"),
            severity: text("severity"),
            owner,
            close_time: text("close_time"),
            source_data_identifier: text("source_data_identifier"),
            resolution,
            label: text("label"),
            update_time: text("update_time"),
        })
    }
}

/// A playbook run as the state input reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlaybookRun {
    pub id: u64,
    pub container_id: u64,
    pub playbook: String,
    pub status: String,
    pub start_time: String,
    pub end_time: String,
    pub message: String,
    pub update_time: String,
}

impl PlaybookRun {
    pub fn from_json(value: &Value) -> Option<PlaybookRun> {
        let text = |key: &str| remote::text(value.get(key));
        Some(PlaybookRun {
            id: remote::as_u64(value.get("id")?)?,
            container_id: value.get("container").and_then(remote::as_u64)?,
            playbook: [text("playbook_name"), text("playbook")]
                .into_iter()
                .find(|name| !name.is_empty())
                .unwrap_or_default(),
            status: text("status"),
            start_time: text("start_time"),
            end_time: text("end_time"),
            message: text("message"),
            update_time: text("update_time"),
        })
    }
}

/// A finished or running action run as the state input reports it (PRODUCT §17). `app` and
/// `summary` come from the action run itself (`app`, `result_summary`); SOAR keeps them on
/// the app runs behind it too (unverified which one a given version fills; see
/// docs/remote-facts-part3.md), so `app_name` is read as a fallback.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActionRun {
    pub id: u64,
    pub container_id: u64,
    pub action: String,
    pub app: String,
    pub status: String,
    pub message: String,
    /// `result_summary` as compact JSON text (empty when SOAR gives none).
    pub summary: String,
    pub playbook_run: String,
    pub end_time: String,
    pub update_time: String,
}

impl ActionRun {
    pub fn from_json(value: &Value) -> Option<ActionRun> {
        let text = |key: &str| remote::text(value.get(key));
        let summary = match value.get("result_summary") {
            None | Some(Value::Null) => String::new(),
            Some(Value::Object(map)) if map.is_empty() => String::new(),
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
        };
        Some(ActionRun {
            id: remote::as_u64(value.get("id")?)?,
            container_id: value.get("container").and_then(remote::as_u64)?,
            action: [text("action"), text("name")]
                .into_iter()
                .find(|name| !name.is_empty())
                .unwrap_or_default(),
            app: [text("app"), text("app_name")]
                .into_iter()
                .find(|name| !name.is_empty())
                .unwrap_or_default(),
            status: text("status"),
            message: text("message"),
            summary,
            playbook_run: text("playbook_run"),
            end_time: text("end_time"),
            update_time: text("update_time"),
        })
    }
}

/// Whether a SOAR run status is final (`running`, `pending`, `waiting` and an empty status
/// are not; SOAR's run statuses, unverified list: docs/remote-facts-part3.md).
pub fn run_finished(status: &str) -> bool {
    let status = status.trim().to_ascii_lowercase();
    !matches!(status.as_str(), "" | "running" | "pending" | "waiting" | "new")
}

/// Which objects a change query reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// `/rest/container`, by `id`.
    Containers,
    /// `/rest/playbook_run`, by `container`.
    PlaybookRuns,
    /// `/rest/action_run`, by `container`.
    ActionRuns,
}

/// Objects per page of a change query.
pub const CHANGE_PAGE_SIZE: usize = 200;

/// The read side of one SOAR account.
pub struct SoarReader {
    api: SoarApi,
    /// Number of HTTP requests sent (for the inspector's summary).
    pub requests: usize,
}

impl SoarReader {
    pub fn new(api: SoarApi) -> SoarReader {
        SoarReader { api, requests: 0 }
    }

    pub fn account(&self) -> &super::SoarAccount {
        &self.api.account
    }

    /// The authenticated connection, for a write between reads.
    pub fn api(&self) -> &SoarApi {
        &self.api
    }

    /// `<url>/mission/<id>`, the container's page in SOAR's UI.
    pub fn container_url(&self, id: u64) -> String {
        self.api.account.container_url(id)
    }

    /// Containers by id; ids SOAR does not know are simply absent from the answer.
    pub fn containers_by_id(&mut self, ids: &[u64]) -> Result<Vec<Container>, String> {
        let literals: Vec<String> = ids.iter().map(u64::to_string).collect();
        self.containers_where("id", &literals)
    }

    /// Containers by `source_data_identifier` (the notable's `event_id`).
    pub fn containers_by_sdi(&mut self, sdis: &[&str]) -> Result<Vec<Container>, String> {
        let literals: Vec<String> = sdis.iter().map(|sdi| string_literal(sdi)).collect();
        self.containers_where("source_data_identifier", &literals)
    }

    fn containers_where(
        &mut self,
        field: &str,
        literals: &[String],
    ) -> Result<Vec<Container>, String> {
        let mut containers = Vec::new();
        for (batch, count) in filter_batches(literals) {
            let filter = format!("_filter_{field}__in={}", url_encode(&batch));
            let page_size = count.max(1);
            for item in self.list("container", &filter, &format!("page_size={page_size}"))? {
                if let Some(container) = Container::from_json(&item) {
                    containers.push(container);
                }
            }
        }
        Ok(containers)
    }

    /// The status of the newest playbook run of each container (containers without runs are absent).
    pub fn latest_playbook_runs(&mut self, ids: &[u64]) -> Result<HashMap<u64, String>, String> {
        let literals: Vec<String> = ids.iter().map(u64::to_string).collect();
        let mut latest: HashMap<u64, (u64, String)> = HashMap::new();
        for (batch, _) in filter_batches(&literals) {
            let filter = format!("_filter_container__in={}", url_encode(&batch));
            for run in self.list("playbook_run", &filter, "sort=id&order=desc&page_size=0")? {
                let Some(container) = run.get("container").and_then(remote::as_u64) else {
                    continue;
                };
                let run_id = run.get("id").and_then(remote::as_u64).unwrap_or(0);
                let status = remote::text(run.get("status"));
                match latest.get(&container) {
                    Some((newest, _)) if *newest >= run_id => {}
                    _ => {
                        latest.insert(container, (run_id, status));
                    }
                }
            }
        }
        Ok(latest.into_iter().map(|(container, (_, status))| (container, status)).collect())
    }

    /// The id of the newest playbook run on one container (`None`: it has none), one request.
    /// An approved Slack playbook asks this before and after an attempt whose answer was lost,
    /// so that a run SOAR did start is not started again.
    pub fn newest_playbook_run(&mut self, container: u64) -> Result<Option<u64>, String> {
        let runs = format!("container/{container}/playbook_runs");
        let (data, _) = self.page(&runs, "sort=id&order=desc", "page_size=1", 0)?;
        Ok(data.iter().filter_map(|run| run.get("id").and_then(remote::as_u64)).max())
    }

    /// The containers (by id) or playbook runs (by container id) among `ids` that changed at or
    /// after `since` in `time_field` (all of them when `since` is `None`), oldest change
    /// first, one page at a time: batched `_filter_…__in` lists, never one request per object,
    /// each page read as it arrives (`soar::pages`: bounded in pages, items and memory).
    /// `visit` returns false to stop early (the caller's bound on work per run); the answer is
    /// whether every object was visited.
    pub fn each_changed(
        &mut self,
        kind: ChangeKind,
        ids: &[u64],
        time_field: &str,
        since: Option<&str>,
        visit: &mut dyn FnMut(&Value) -> bool,
    ) -> Result<bool, String> {
        super::pages::each_changed(self, kind, ids, time_field, since, visit)
    }

    /// One page of a list query: its items and the number of pages.
    fn page(
        &mut self,
        kind: &str,
        filter: &str,
        paging: &str,
        page: u64,
    ) -> Result<(Vec<Value>, u64), String> {
        let what = format!("SOAR GET /rest/{kind}");
        self.requests += 1;
        let response = self.api.get(&format!("/rest/{kind}?{filter}&{paging}&page={page}"));
        let json = remote::json_answer(response, &what)?;
        if json.get("failed").and_then(Value::as_bool) == Some(true) {
            return Err(format!(
                "{what}: {}",
                remote::text(json.get("message")).if_empty("SOAR answered failed")
            ));
        }
        let Some(data) = json.get("data").and_then(Value::as_array) else {
            return Err(format!("{what}: the answer has no \"data\" list"));
        };
        let num_pages = json.get("num_pages").and_then(remote::as_u64).unwrap_or(1);
        Ok((data.clone(), num_pages))
    }

    /// Every item of a list query, page after page.
    fn list(&mut self, kind: &str, filter: &str, paging: &str) -> Result<Vec<Value>, String> {
        let mut items = Vec::new();
        let mut page = 0u64;
        loop {
            let (data, num_pages) = self.page(kind, filter, paging, page)?;
            let empty = data.is_empty();
            items.extend(data);
            page += 1;
            if page >= num_pages || empty || paging.contains("page_size=0") {
                return Ok(items);
            }
        }
    }
}

trait IfEmpty {
    fn if_empty(self, fallback: &str) -> String;
}

impl IfEmpty for String {
    fn if_empty(self, fallback: &str) -> String {
        if self.is_empty() { fallback.to_string() } else { self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_are_read_leniently() {
        let container = Container::from_json(&serde_json::json!({
            "id": "42", "status": "closed", "severity": "high", "owner_name": null, "owner": 3,
            "close_time": "2025-01-01T00:00:00Z", "source_data_identifier": "e1",
            "custom_fields": {"resolution": "false positive"}
        }))
        .unwrap();
        assert_eq!(container.id, 42);
        assert_eq!(container.owner, "3");
        assert_eq!(container.resolution, "false positive");
        assert!(Container::from_json(&serde_json::json!({"status": "new"})).is_none());
    }
}
