//! The batched I/O of one execute chunk: the `stackflow_links` lookup, the SOAR and StackFlow
//! read-backs (one query per kind, never one per row) and the grouped notable updates.

use super::*;
use crate::links::Newest;
use crate::remotes::splunkd::notables::{self as notable_update, NotableChange};

/// The containers found in SOAR for one chunk.
#[derive(Default)]
pub(super) struct SoarFound {
    pub(super) by_id: HashMap<u64, Container>,
    /// `source_data_identifier` → container id.
    pub(super) by_sdi: HashMap<String, u64>,
    /// Container id → status of its newest playbook run.
    pub(super) runs: HashMap<u64, String>,
    pub(super) failure: Failure,
}

/// One query for the container ids, one for the event ids without a container id, one for the
/// playbook runs of everything found.
pub(super) fn read_soar(
    runtime: &mut Runtime,
    options: &Options,
    keys: &[RowKeys<'_>],
    soar_ids: &[Option<u64>],
    warnings: &mut Vec<String>,
) -> SoarFound {
    let mut found = SoarFound::default();
    let reader = runtime.soar.get_or_insert_with(|| {
        SoarApi::open(&runtime.settings, &runtime.splunkd, &options.account)
            .map(SoarReader::new)
            .map_err(|error| error.to_string())
    });
    let reader = match reader {
        Ok(reader) => reader,
        Err(message) => {
            let message = format!("SOAR: {message}");
            warnings.push(message.clone());
            found.failure = Some(message);
            return found;
        }
    };
    let ids = unique(soar_ids.iter().flatten().copied());
    let sdis = unique(
        keys.iter()
            .zip(soar_ids)
            .filter(|(_, id)| id.is_none())
            .filter_map(|(key, _)| key.event_id.as_deref()),
    );
    let read = (|| -> Result<(), String> {
        if !ids.is_empty() {
            for container in reader.containers_by_id(&ids)? {
                found.by_id.insert(container.id, container);
            }
        }
        if !sdis.is_empty() {
            for container in reader.containers_by_sdi(&sdis)? {
                found.by_sdi.insert(container.source_data_identifier.clone(), container.id);
                found.by_id.insert(container.id, container);
            }
        }
        Ok(())
    })();
    if let Err(message) = read {
        warnings.push(message.clone());
        found.failure = Some(message);
    } else if !found.by_id.is_empty() {
        let containers: Vec<u64> = found.by_id.keys().copied().collect();
        match reader.latest_playbook_runs(&containers) {
            Ok(latest) => found.runs = latest,
            Err(message) => warnings.push(format!("playbook run status not available: {message}")),
        }
    }
    found
}

/// One query (per 200 ids) for the incidents of the chunk.
pub(super) fn read_stackflow(
    runtime: &mut Runtime,
    options: &Options,
    incident_ids: &[Option<String>],
    warnings: &mut Vec<String>,
) -> (HashMap<String, Incident>, Failure) {
    let reader = runtime.stackflow.get_or_insert_with(|| {
        StackflowApi::open(&runtime.settings, &runtime.splunkd, &options.account)
            .map(StackflowReader::new)
            .map_err(|error| error.to_string())
    });
    let ids = unique(incident_ids.iter().flatten().map(String::as_str));
    let read = match reader {
        Err(message) => Err(format!("StackFlow: {message}")),
        Ok(reader) => reader.incidents(&ids),
    };
    match read {
        Ok(found) => (found, None),
        Err(message) => {
            warnings.push(message.clone());
            (HashMap::new(), Some(message))
        }
    }
}

/// Sends the grouped updates; returns the rows of every group that failed, with the reason.
pub(super) fn write_updates(
    runtime: &mut Runtime,
    options: &Options,
    updates: &Updates,
) -> Vec<(Vec<usize>, String)> {
    let all_rows =
        || updates.groups.values().flat_map(|group| group.rows.iter().copied()).collect();
    let permission = runtime.may_update.get_or_insert_with(|| {
        match notables::has_capability(&runtime.splunkd) {
            Ok(Some(true)) | Ok(None) => Ok(()),
            Ok(Some(false)) => Err(format!(
                "notables not updated: your role lacks the capability {} (granted by the stackflow_admin role)",
                notables::CAPABILITY
            )),
            Err(message) => Err(format!("notables not updated: cannot check your capabilities: {message}")),
        }
    });
    if let Err(message) = permission {
        return vec![(all_rows(), message.clone())];
    }
    let updater = runtime.updater.get_or_insert_with(|| {
        notable_update::open(&runtime.settings, &runtime.splunkd).map_err(|error| {
            format!("notables not updated: cannot choose the notable update API: {error}")
        })
    });
    let updater = match updater {
        Ok(updater) => updater,
        Err(message) => return vec![(all_rows(), message.clone())],
    };
    let mut failures = Vec::new();
    for (status, group) in &updates.groups {
        let change = NotableChange {
            event_ids: group.event_ids.clone(),
            status: Some(*status),
            comment: Some(notables::comment(options.comment.as_deref(), &group.reasons)),
            ..NotableChange::default()
        };
        runtime.notable_updates += 1;
        if let Err(message) = updater.update(&change) {
            failures.push((group.rows.clone(), format!("notable update failed: {message}")));
        }
    }
    failures
}

/// The container and incident of each event id, by the one rule of `links` (the newest
/// `updated` wins, on a tie the main record).
pub(crate) fn read_links(
    splunkd: &Splunkd,
    event_ids: &[&str],
) -> Result<HashMap<String, Newest>, String> {
    crate::links::newest_of_notables(splunkd, event_ids).map_err(|error| error.to_string())
}
