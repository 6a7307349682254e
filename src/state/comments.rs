//! A finished playbook run's result as a comment on its notable (PRODUCT §17): when the state
//! input reports a linked container's playbook run in a final status, one comment naming the
//! playbook, its status and message is queued in the checkpoint, then added through the one
//! notable-update interface (`remotes::splunkd::notables`, ES 7 `notable_update` or ES 8's
//! notes). A run is commented once: its id moves from `due` to `done` only when splunkd took
//! the comment, so a failed update is tried again on the next poll and never doubled.
//! `[notables] comment_playbook_results = false` turns it off.

use super::checkpoint::{Checkpoint, Comments, DueComment};
use super::links::LinkRef;
use crate::remotes::soar::read::{PlaybookRun, run_finished};
use crate::remotes::splunkd::Splunkd;
use crate::remotes::splunkd::notables::{self, NotableChange};
use crate::settings::Settings;
use crate::splunk::conf::parse_bool;

/// Comments added per poll at most (the rest follow in the next polls).
pub const MAX_PER_POLL: usize = 500;
/// Comments waiting at most; more are dropped with a WARN (a splunkd refusing for days).
pub const MAX_DUE: usize = 10_000;
/// The message part of a comment is cut to this many characters.
const MAX_MESSAGE_CHARS: usize = 1000;

/// `[notables] comment_playbook_results` (default true).
pub fn enabled(settings: &Settings) -> bool {
    match settings.conf.get_nonempty("notables", "comment_playbook_results") {
        None => true,
        Some(value) => parse_bool(value).unwrap_or_else(|| {
            log::warn!(
                "[notables] comment_playbook_results = {value:?} is not a boolean; playbook results are commented (the default)"
            );
            true
        }),
    }
}

/// The comment for a finished run: "SOAR playbook <name> finished: <status> — <message>".
pub fn comment_text(run: &PlaybookRun) -> String {
    let message: String = run.message.trim().chars().take(MAX_MESSAGE_CHARS).collect();
    let playbook = if run.playbook.is_empty() { "(unnamed)" } else { run.playbook.as_str() };
    let mut text = format!(
        "SOAR playbook {playbook} finished: {} (run {}, container {})",
        run.status, run.id, run.container_id
    );
    if !message.is_empty() {
        text.push_str(" - ");
        text.push_str(&message);
    }
    text
}

/// Queues the comment of a reported run when it is final and its notable is known.
pub fn queue(comments: &mut Comments, run: &PlaybookRun, link: &LinkRef) {
    if !run_finished(&run.status) || link.event_id.trim().is_empty() {
        return;
    }
    if comments.due.len() >= MAX_DUE {
        log::warn!(
            "more than {MAX_DUE} notable comments wait for splunkd; the result of playbook run {} is not commented",
            run.id
        );
        return;
    }
    let id = format!("{}/{}", run.container_id, run.id);
    let comment = DueComment { event_id: link.event_id.clone(), text: comment_text(run) };
    comments.queue(&id, comment);
}

/// Adds the due comments (at most [`MAX_PER_POLL`]); a failure keeps the rest due. Returns
/// how many were added, or the failure.
pub fn add_due(
    settings: &Settings,
    splunkd: &Splunkd,
    checkpoint: &mut Checkpoint,
) -> Result<usize, String> {
    if checkpoint.comments.due.is_empty() {
        return Ok(0);
    }
    let updater = notables::open(settings, splunkd).map_err(|error| error.to_string())?;
    let ids: Vec<String> = checkpoint.comments.due.keys().take(MAX_PER_POLL).cloned().collect();
    let mut added = 0;
    for id in ids {
        let Some(due) = checkpoint.comments.due.get(&id) else { continue };
        let change = NotableChange {
            event_ids: vec![due.event_id.clone()],
            comment: Some(due.text.clone()),
            ..NotableChange::default()
        };
        updater.update(&change).map_err(|error| format!("playbook run {id}: {error}"))?;
        checkpoint.comments.due.remove(&id);
        checkpoint.comments.done.insert(id);
        added += 1;
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(status: &str) -> PlaybookRun {
        PlaybookRun {
            id: 9,
            container_id: 3,
            playbook: "local/block_ip".into(),
            status: status.into(),
            message: "blocked 10.0.0.1".into(),
            ..PlaybookRun::default()
        }
    }

    #[test]
    fn only_final_runs_of_known_notables_are_queued_once() {
        let link = LinkRef { event_id: "e1".into(), dedupe_key: "k".into() };
        let mut comments = Comments::default();
        queue(&mut comments, &run("running"), &link);
        assert!(comments.due.is_empty());
        queue(&mut comments, &run("success"), &LinkRef::default());
        assert!(comments.due.is_empty());
        queue(&mut comments, &run("success"), &link);
        let due = &comments.due["3/9"];
        assert_eq!(due.event_id, "e1");
        assert_eq!(
            due.text,
            "SOAR playbook local/block_ip finished: success (run 9, container 3) - blocked 10.0.0.1"
        );
        comments.due.clear();
        comments.done.insert("3/9".into());
        queue(&mut comments, &run("failed"), &link);
        assert!(comments.due.is_empty(), "a run is commented once");
    }
}
