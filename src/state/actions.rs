//! SOAR's results back in Splunk (PRODUCT §17): the action runs of the linked containers, one
//! `stackflow:soar:action_run` event per finished run, read like the playbook runs (batched
//! `_filter_container__in` lists with `_filter_update_time__gte=<since − overlap>`, oldest
//! first, pages streamed and bounded by `remotes::soar::pages`); containers whose action runs
//! were never read completely are read without the time filter. A run still going is not
//! reported; a finished run is reported once (its id stays in the checkpoint while its
//! container is linked).

use super::checkpoint::Checkpoint;
use super::clock::{later, untrusted, with_overlap};
use super::{Links, MAX_MESSAGE_CHARS, Poll, SOURCETYPE_ACTION_RUN, event_time};
use crate::error::{Error, Result};
use crate::remotes::soar::read::{ActionRun, ChangeKind, SoarReader, run_finished};
use serde_json::{Value, json};
use std::io::Write;

/// A result summary longer than this is cut.
const MAX_SUMMARY_CHARS: usize = 4096;

fn action_fields(run: &ActionRun, link: &super::LinkRef) -> Value {
    let cut = |text: &str, max: usize| text.chars().take(max).collect::<String>();
    json!({
        "action_run_id": run.id,
        "container_id": run.container_id,
        "action": run.action,
        "app": run.app,
        "status": run.status,
        "message": cut(&run.message, MAX_MESSAGE_CHARS),
        "summary": cut(&run.summary, MAX_SUMMARY_CHARS),
        "playbook_run_id": run.playbook_run,
        "end_time": run.end_time,
        "update_time": run.update_time,
        "event_id": link.event_id,
        "dedupe_key": link.dedupe_key,
    })
}

/// Polls the action runs of the linked containers `ids`.
pub fn poll_action_runs<W: Write>(
    poll: &mut Poll<'_, W>,
    reader: &mut SoarReader,
    links: &Links,
    checkpoint: &mut Checkpoint,
    ids: &[u64],
) -> Result<()> {
    let overlap = poll.options.overlap_s;
    let cursor = &mut checkpoint.action_runs;
    cursor.parents.retain(|id| id.parse().is_ok_and(|id: u64| links.containers.contains_key(&id)));
    let (known, new): (Vec<u64>, Vec<u64>) =
        ids.iter().partition(|id| cursor.parents.contains(&id.to_string()));
    let since = cursor.since.clone();
    let mut newest: Option<String> = None;
    let mut complete = true;
    let mut failure: Option<Error> = None;
    for (group, filter, is_new) in [(&known, since.as_deref(), false), (&new, None, true)] {
        if group.is_empty() || !complete {
            continue;
        }
        let filter = filter.and_then(|since| with_overlap(since, overlap));
        let mut visit = |item: &Value| -> bool {
            let Some(run) = ActionRun::from_json(item) else { return true };
            let Some(link) = links.containers.get(&run.container_id) else { return true };
            let problem = untrusted(&run.update_time, poll.now);
            if !run_finished(&run.status) {
                return true;
            }
            // The cursor moves over finished runs only: a run still going is read again.
            if problem.is_none() {
                newest = later(newest.take(), &run.update_time);
            }
            let id = format!("{}/{}", run.container_id, run.id);
            if cursor.seen.contains_key(&id) {
                return true;
            }
            if !poll.budget_left() {
                return false;
            }
            if let Some(problem) = &problem {
                log::warn!(
                    "{}: SOAR action run {} (container {}): {problem}; reported, but the checkpoint does not move on it",
                    poll.stanza,
                    run.id,
                    run.container_id
                );
            }
            let time = [&run.end_time, &run.update_time]
                .into_iter()
                .map(|time| event_time(time, poll.now))
                .find(|time| !time.is_empty())
                .unwrap_or_default();
            match poll.emit(SOURCETYPE_ACTION_RUN, time, &action_fields(&run, link)) {
                Ok(()) => {
                    cursor.seen.insert(id, run.status.clone());
                    true
                }
                Err(error) => {
                    failure = Some(error);
                    false
                }
            }
        };
        let read = reader.each_changed(
            ChangeKind::ActionRuns,
            group,
            "update_time",
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
    if complete {
        cursor.since = later(since, newest.as_deref().unwrap_or_default());
    }
    failure.map_or(Ok(()), Err)
}
