//! SOAR change queries for the `stackflow_state` input, bounded whatever SOAR answers: each
//! page is read as it arrives (`remotes::stream`, one item in memory at a time, so a page of
//! 100,000 containers costs no more memory than one of 200), and a query reads at most
//! [`MAX_PAGES`] pages and [`MAX_ITEMS`] items. A query cut by a bound is logged (WARN) and
//! counts as read up to the newest change it saw: the oldest-first order means the next poll
//! carries on from there, so one odd answer never stalls the input.

use super::filter_batches;
use super::read::{CHANGE_PAGE_SIZE, ChangeKind, SoarReader};
use crate::net::classify::{StatusClass, classify_status};
use crate::net::url_encode;
use crate::remotes::response as remote;
use crate::remotes::stream;
use serde_json::Value;

/// Pages read by one change query at most (playbook runs: 200 × 500 = 100,000 per batch of
/// containers; containers need far fewer: one batch names at most a few hundred).
pub const MAX_PAGES: u64 = 500;
/// Items (all pages, all batches) parsed by one change query at most.
pub const MAX_ITEMS: u64 = 2_000_000;

/// See `SoarReader::each_changed`.
pub fn each_changed(
    reader: &mut SoarReader,
    kind: ChangeKind,
    ids: &[u64],
    time_field: &str,
    since: Option<&str>,
    visit: &mut dyn FnMut(&Value) -> bool,
) -> Result<bool, String> {
    let (path, id_field) = match kind {
        ChangeKind::Containers => ("container", "id"),
        ChangeKind::PlaybookRuns => ("playbook_run", "container"),
        ChangeKind::ActionRuns => ("action_run", "container"),
    };
    let literals: Vec<String> = ids.iter().map(u64::to_string).collect();
    let time_filter = match (since, time_field.is_empty()) {
        (Some(since), false) => {
            format!("&_filter_{time_field}__gte={}", url_encode(&super::string_literal(since)))
        }
        _ => String::new(),
    };
    let sort = if time_field.is_empty() { "id" } else { time_field };
    let mut items = 0u64;
    for (batch, _) in filter_batches(&literals) {
        let filter = format!("_filter_{id_field}__in={}{time_filter}", url_encode(&batch));
        let mut page = 0u64;
        loop {
            if page >= MAX_PAGES || items >= MAX_ITEMS {
                log::warn!(
                    "SOAR GET /rest/{path}: the answer goes on beyond {MAX_PAGES} pages or {MAX_ITEMS} items; the rest is read from the newest change seen on the next poll"
                );
                return Ok(true);
            }
            let paging = format!("sort={sort}&order=asc&page_size={CHANGE_PAGE_SIZE}");
            let query = format!("/rest/{path}?{filter}&{paging}&page={page}");
            let mut stopped = false;
            let mut on_item = |item: Value| {
                items = items.saturating_add(1);
                if items > MAX_ITEMS {
                    return false;
                }
                stopped = !visit(&item);
                !stopped
            };
            let envelope = streamed_page(reader, path, &query, &mut on_item)?;
            if stopped {
                return Ok(false);
            }
            let num_pages = envelope.fields.get("num_pages").and_then(remote::as_u64).unwrap_or(1);
            page += 1;
            if page >= num_pages || envelope.items == 0 {
                break;
            }
        }
    }
    Ok(true)
}

/// One page of a list query, its items handed to `on_item` as they arrive.
fn streamed_page(
    reader: &mut SoarReader,
    path: &str,
    query: &str,
    on_item: &mut dyn FnMut(Value) -> bool,
) -> Result<stream::Envelope, String> {
    let what = format!("SOAR GET /rest/{path}");
    reader.requests += 1;
    let mut response =
        reader.api().get_streamed(query).map_err(|outcome| remote::reason(&outcome))?;
    if !(200..300).contains(&response.status) {
        let response = response
            .into_response()
            .map_err(|error| format!("{what}: reading the answer: {error}"))?;
        if let StatusClass::Failed(outcome) = classify_status(&response, &what) {
            return Err(remote::reason(&outcome));
        }
        return Err(format!("{what}: HTTP {}", response.status));
    }
    let envelope = stream::read_list(response.body(), &["data"], on_item)
        .map_err(|error| format!("{what}: {error}"))?;
    if envelope.fields.get("failed").and_then(Value::as_bool) == Some(true) {
        let message = remote::text(envelope.fields.get("message"));
        return Err(format!(
            "{what}: {}",
            if message.is_empty() { "SOAR answered failed".to_string() } else { message }
        ));
    }
    if !envelope.had_list {
        return Err(format!("{what}: the answer has no \"data\" list"));
    }
    Ok(envelope)
}
