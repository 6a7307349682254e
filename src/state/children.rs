//! The frame a poll of a container's children shares (playbook runs, action runs): the
//! containers whose children were read completely are asked for changes since the cursor (less
//! the overlap), the others without a time filter; pages are streamed and bounded by
//! `remotes::soar::pages`; the cursor moves only when every page was read and only over change
//! times the input trusts (`clock`). What a child is reported as is the caller's `visit`.

use super::Links;
use super::checkpoint::Cursor;
use super::clock::{later, with_overlap};
use crate::error::{Error, Result};
use crate::remotes::soar::read::{ChangeKind, SoarReader};
use serde_json::Value;

/// What a visit asks of the read.
pub enum Step {
    /// Go on with the next child.
    Next,
    /// Stop here (the poll's budget is spent); the cursor does not move.
    Stop,
    /// Stop here with this failure; the cursor does not move.
    Fail(Error),
}

/// Which children, by which change time, with how much overlap.
pub struct Query<'a> {
    pub kind: ChangeKind,
    /// Empty: read without a time filter, never move the cursor.
    pub time_field: &'a str,
    pub overlap_s: u64,
}

/// Reads the children of kind `kind` of the linked containers `ids`. `visit` sees each child,
/// the cursor (to check and record what it reported) and the newest trusted change time so
/// far (to move with `clock::later`); an empty `time_field` reads without a time filter and
/// never moves the cursor.
pub fn poll_children(
    reader: &mut SoarReader,
    links: &Links,
    cursor: &mut Cursor,
    ids: &[u64],
    query: Query<'_>,
    visit: &mut dyn FnMut(&Value, &mut Cursor, &mut Option<String>) -> Step,
) -> Result<()> {
    let Query { kind, time_field, overlap_s } = query;
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
        let filter = filter.and_then(|since| with_overlap(since, overlap_s));
        let mut each = |item: &Value| -> bool {
            match visit(item, cursor, &mut newest) {
                Step::Next => true,
                Step::Stop => false,
                Step::Fail(error) => {
                    failure = Some(error);
                    false
                }
            }
        };
        let read = reader.each_changed(kind, group, time_field, filter.as_deref(), &mut each);
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
    if complete && !time_field.is_empty() {
        cursor.since = later(since, newest.as_deref().unwrap_or_default());
    }
    failure.map_or(Ok(()), Err)
}
