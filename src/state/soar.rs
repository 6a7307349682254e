//! The SOAR part of a `stackflow_state` poll: the linked containers, then their playbook runs,
//! each read oldest change first and reported when its fields changed. A change time the
//! input cannot trust (`clock`) is reported with its object but never moves the cursor.

use super::checkpoint::{Checkpoint, Cursor, fingerprint};
use super::children::{Query, Step, poll_children};
use super::clock::{later, untrusted, with_overlap};
use super::{
    Links, Poll, SOURCETYPE_CONTAINER, SOURCETYPE_PLAYBOOK_RUN, container_closed, container_fields,
    event_time, run_fields,
};
use crate::error::{Error, Result};
use crate::remotes::response as remote;
use crate::remotes::soar::read::{ChangeKind, Container, PlaybookRun, SoarReader};
use serde_json::Value;
use std::io::Write;

/// Polls SOAR: containers, then playbook runs.
pub fn poll_soar<W: Write>(
    poll: &mut Poll<'_, W>,
    reader: &mut SoarReader,
    links: &Links,
    checkpoint: &mut Checkpoint,
) -> Result<()> {
    let container_of = |id: &str| id.split('/').next().unwrap_or_default().to_string();
    let kept = |id: &str| {
        let container = container_of(id);
        links.closed_containers.contains(&container)
            || container.parse().is_ok_and(|id: u64| links.containers.contains_key(&id))
    };
    checkpoint.containers.retain(&kept);
    checkpoint.playbook_runs.retain(&kept);
    checkpoint.action_runs.retain(&kept);
    checkpoint.comments.retain(&kept);
    let ids: Vec<u64> = links.containers.keys().copied().collect();
    if ids.is_empty() {
        return Ok(());
    }
    poll_containers(poll, reader, links, checkpoint, &ids)?;
    poll_runs(poll, reader, links, checkpoint, &ids)?;
    super::actions::poll_action_runs(poll, reader, links, checkpoint, &ids)
}

fn poll_containers<W: Write>(
    poll: &mut Poll<'_, W>,
    reader: &mut SoarReader,
    links: &Links,
    checkpoint: &mut Checkpoint,
    ids: &[u64],
) -> Result<()> {
    let account = reader.account().clone();
    let overlap = poll.options.overlap_s;
    // Containers reported before are read with the time filter, new ones without.
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
        let filter = filter.and_then(|since| with_overlap(since, overlap));
        let mut visit = |item: &Value| -> bool {
            let Some(container) = Container::from_json(item) else { return true };
            let Some(link) = links.containers.get(&container.id) else { return true };
            let id = container.id.to_string();
            let problem = untrusted(&container.update_time, poll.now);
            if problem.is_none() {
                newest = later(newest.take(), &container.update_time);
            }
            let fields = container_fields(&container, link, account.container_url(container.id));
            let print = fingerprint(&fields);
            if !cursor.changed(&id, &print) {
                cursor.mark_closed(&id, container_closed(&container));
                return true;
            }
            if !poll.budget_left() {
                return false;
            }
            if let Some(problem) = &problem {
                log::warn!(
                    "{}: SOAR container {id}: {problem}; reported, but the checkpoint does not move on it",
                    poll.stanza
                );
            }
            let time = event_time(&container.update_time, poll.now);
            match poll.emit(SOURCETYPE_CONTAINER, time, &fields) {
                Ok(()) => {
                    cursor.seen.insert(id.clone(), print);
                    cursor.mark_closed(&id, container_closed(&container));
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
    failure.map_or(Ok(()), Err)
}

/// Playbook runs: containers whose runs were never read completely are read without the time
/// filter.
fn poll_runs<W: Write>(
    poll: &mut Poll<'_, W>,
    reader: &mut SoarReader,
    links: &Links,
    checkpoint: &mut Checkpoint,
    ids: &[u64],
) -> Result<()> {
    let overlap_s = poll.options.overlap_s;
    let comment_runs = poll.comment_runs;
    let comments = &mut checkpoint.comments;
    let field = poll.options.run_time_field.clone();
    let mut visit = |item: &Value, cursor: &mut Cursor, newest: &mut Option<String>| -> Step {
        let Some(run) = PlaybookRun::from_json(item) else { return Step::Next };
        let Some(link) = links.containers.get(&run.container_id) else { return Step::Next };
        let id = format!("{}/{}", run.container_id, run.id);
        let changed_at =
            if field.is_empty() { String::new() } else { remote::text(item.get(&field)) };
        let problem = if field.is_empty() { None } else { untrusted(&changed_at, poll.now) };
        if !field.is_empty() && problem.is_none() {
            *newest = later(newest.take(), &changed_at);
        }
        let fields = run_fields(&run, link);
        let print = fingerprint(&fields);
        if !cursor.changed(&id, &print) {
            return Step::Next;
        }
        if !poll.budget_left() {
            return Step::Stop;
        }
        if let Some(problem) = &problem {
            log::warn!(
                "{}: SOAR playbook run {} (container {}): {problem}; reported, but the checkpoint does not move on it",
                poll.stanza,
                run.id,
                run.container_id
            );
        }
        let time = [&run.update_time, &run.end_time, &run.start_time]
            .into_iter()
            .map(|time| event_time(time, poll.now))
            .find(|time| !time.is_empty())
            .unwrap_or_default();
        match poll.emit(SOURCETYPE_PLAYBOOK_RUN, time, &fields) {
            Ok(()) => {
                if comment_runs {
                    super::comments::queue(comments, &run, link);
                }
                cursor.seen.insert(id, print);
                Step::Next
            }
            Err(error) => Step::Fail(error),
        }
    };
    poll_children(
        reader,
        links,
        &mut checkpoint.playbook_runs,
        ids,
        Query { kind: ChangeKind::PlaybookRuns, time_field: &field, overlap_s },
        &mut visit,
    )
}
