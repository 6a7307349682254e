//! SOAR's results back in Splunk (PRODUCT §17): the action runs of the linked containers, one
//! `stackflow:soar:action_run` event per finished run, read like the playbook runs (batched
//! `_filter_container__in` lists with `_filter_update_time__gte=<since − overlap>`, oldest
//! first, pages streamed and bounded by `remotes::soar::pages`); containers whose action runs
//! were never read completely are read without the time filter. A run still going is not
//! reported; a finished run is reported once (its id stays in the checkpoint while its
//! container is linked).

use super::checkpoint::{Checkpoint, Cursor};
use super::children::{Query, Step, poll_children};
use super::clock::{later, untrusted};
use super::{Links, MAX_MESSAGE_CHARS, Poll, SOURCETYPE_ACTION_RUN, event_time};
use crate::error::Result;
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
    let overlap_s = poll.options.overlap_s;
    let mut visit = |item: &Value, cursor: &mut Cursor, newest: &mut Option<String>| -> Step {
        let Some(run) = ActionRun::from_json(item) else { return Step::Next };
        let Some(link) = links.containers.get(&run.container_id) else { return Step::Next };
        let problem = untrusted(&run.update_time, poll.now);
        if !run_finished(&run.status) {
            return Step::Next;
        }
        // The cursor moves over finished runs only: a run still going is read again.
        if problem.is_none() {
            *newest = later(newest.take(), &run.update_time);
        }
        let id = format!("{}/{}", run.container_id, run.id);
        if cursor.seen.contains_key(&id) {
            return Step::Next;
        }
        if !poll.budget_left() {
            return Step::Stop;
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
                Step::Next
            }
            Err(error) => Step::Fail(error),
        }
    };
    poll_children(
        reader,
        links,
        &mut checkpoint.action_runs,
        ids,
        Query { kind: ChangeKind::ActionRuns, time_field: "update_time", overlap_s },
        &mut visit,
    )
}
