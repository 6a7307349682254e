//! The `stackflow_state` input's checkpoint: per input, per kind of object (SOAR containers,
//! SOAR playbook runs, StackFlow incidents), the change cursor (`since`, the newest change time
//! read completely) and a fingerprint of what was last reported for each object, so that a
//! poll reports each change once and an object seen again unchanged is not reported again.
//!
//! One JSON file per input in splunkd's `checkpoint_dir` (Splunk's "Create modular inputs":
//! keep state there, never in inputs.conf), written atomically after the poll's events were
//! flushed to stdout: a kill between the two re-reports those changes on the next run
//! (at least once), never loses one. A file that cannot be read as a checkpoint is a
//! configuration error naming its path, never silently a fresh start.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Checkpoint files larger than this are not ours.
const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// One kind of object's progress.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The remote's change time up to which every change was read (`None`: never polled).
    #[serde(default)]
    pub since: Option<String>,
    /// Object id → fingerprint of the fields last reported.
    #[serde(default)]
    pub seen: BTreeMap<String, String>,
    /// Parents whose children were read completely once (SOAR containers whose playbook runs
    /// were read without the time filter).
    #[serde(default)]
    pub parents: BTreeSet<String>,
    /// Objects last reported closed: once their links are older than `lookback_days` they are
    /// no longer polled (PRODUCT §15: open objects are followed until they close).
    #[serde(default)]
    pub closed: BTreeSet<String>,
}

impl Cursor {
    /// Whether `fields` differ from what was last reported for `id`.
    pub fn changed(&self, id: &str, fingerprint: &str) -> bool {
        self.seen.get(id).map(String::as_str) != Some(fingerprint)
    }

    /// Keeps only the objects still linked (the links' look-back window bounds the file).
    pub fn retain(&mut self, linked: &dyn Fn(&str) -> bool) {
        self.seen.retain(|id, _| linked(id));
        self.closed.retain(|id| linked(id));
    }

    /// Records whether `id`, as last reported, is closed.
    pub fn mark_closed(&mut self, id: &str, closed: bool) {
        if closed {
            self.closed.insert(id.to_string());
        } else {
            self.closed.remove(id);
        }
    }

    /// Forgets a cursor that no longer parses or lies in the future (an older version took
    /// any remote time on trust): the next poll reads those objects without the time filter
    /// and the fingerprints keep it from reporting anything twice.
    fn distrust(&mut self, what: &str, stanza: &str, now_unix: f64) {
        let Some(since) = &self.since else { return };
        if let Some(problem) = super::clock::untrusted(since, now_unix) {
            log::warn!(
                "{stanza}: the {what} cursor is not trusted ({problem}); read again from the start"
            );
            self.since = None;
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    #[serde(default)]
    pub containers: Cursor,
    #[serde(default)]
    pub playbook_runs: Cursor,
    #[serde(default)]
    pub incidents: Cursor,
    /// SOAR action runs (PRODUCT §17): `seen` holds the finished runs reported.
    #[serde(default)]
    pub action_runs: Cursor,
    /// Notable comments on finished playbook runs (PRODUCT §17).
    #[serde(default)]
    pub comments: Comments,
}

/// A comment still to be added to a notable.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueComment {
    pub event_id: String,
    pub text: String,
}

/// Playbook runs (`<container>/<run>`) whose result was commented on their notable, and those
/// whose comment is still due (a splunkd that failed keeps it due for the next poll).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comments {
    #[serde(default)]
    pub done: BTreeSet<String>,
    #[serde(default)]
    pub due: BTreeMap<String, DueComment>,
}

impl Comments {
    /// Queues the comment of run `id` unless it was commented or is queued already.
    pub fn queue(&mut self, id: &str, comment: DueComment) {
        if !self.done.contains(id) && !self.due.contains_key(id) {
            self.due.insert(id.to_string(), comment);
        }
    }

    /// Keeps only the runs of containers still linked.
    pub fn retain(&mut self, linked: &dyn Fn(&str) -> bool) {
        self.done.retain(|id| linked(id));
        self.due.retain(|id, _| linked(id));
    }
}

impl Checkpoint {
    /// See `Cursor::distrust`, for every cursor.
    pub fn distrust_cursors(&mut self, stanza: &str, now_unix: f64) {
        self.containers.distrust("SOAR container", stanza, now_unix);
        self.playbook_runs.distrust("SOAR playbook run", stanza, now_unix);
        self.incidents.distrust("StackFlow incident", stanza, now_unix);
        self.action_runs.distrust("SOAR action run", stanza, now_unix);
    }
}

/// A short, stable fingerprint of an event's fields.
pub fn fingerprint(fields: &serde_json::Value) -> String {
    let digest = Sha256::digest(fields.to_string().as_bytes());
    digest.iter().take(12).map(|byte| format!("{byte:02x}")).collect()
}

/// `<checkpoint_dir>/<input name, made file-safe>.json`.
pub fn path_for(checkpoint_dir: &Path, input_name: &str) -> PathBuf {
    let mut safe = String::new();
    for byte in input_name.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            safe.push(char::from(byte));
        } else {
            safe.push_str(&format!("%{byte:02X}"));
        }
    }
    checkpoint_dir.join(format!("{safe}.json"))
}

impl Checkpoint {
    /// The checkpoint at `path`, or an empty one when there is none yet.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let problem = |detail: String| Error::Config {
            file: path.display().to_string(),
            stanza: String::new(),
            key: String::new(),
            problem: format!(
                "{detail}; move the file away to start over (every linked object is then reported once more)"
            ),
        };
        let bytes = match std::fs::metadata(path) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Checkpoint::default());
            }
            Err(error) => return Err(problem(format!("cannot read the checkpoint: {error}"))),
            Ok(meta) if meta.len() > MAX_BYTES => {
                return Err(problem(format!("the checkpoint is larger than {MAX_BYTES} bytes")));
            }
            Ok(_) => std::fs::read(path)
                .map_err(|error| problem(format!("cannot read the checkpoint: {error}")))?,
        };
        serde_json::from_slice(&bytes)
            .map_err(|error| problem(format!("the checkpoint is not valid: {error}")))
    }

    /// Writes the checkpoint atomically (temp file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec(self).map_err(|error| Error::Internal(error.to_string()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        crate::outbox::write_atomically(dir, path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_round_trips_and_a_bad_one_is_named() {
        let dir = std::env::temp_dir().join(format!("stackflow-ckpt-{}", std::process::id()));
        let path = path_for(&dir, "prod/eu 1");
        assert!(path.ends_with("prod%2Feu%201.json"), "{}", path.display());
        assert_eq!(Checkpoint::load(&path).unwrap(), Checkpoint::default());
        let mut checkpoint = Checkpoint::default();
        checkpoint.containers.since = Some("2026-01-01T00:00:00Z".into());
        checkpoint.containers.seen.insert("7".into(), fingerprint(&serde_json::json!({"a": 1})));
        checkpoint.save(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), checkpoint);
        std::fs::write(&path, b"{not json").unwrap();
        let error = Checkpoint::load(&path).unwrap_err();
        assert!(error.to_string().contains("not valid"), "{error}");
        assert_eq!(error.exit_code(), crate::error::ExitCode::Configuration);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn fingerprints_follow_the_fields() {
        let a = fingerprint(&serde_json::json!({"status": "new"}));
        assert_eq!(a, fingerprint(&serde_json::json!({"status": "new"})));
        assert_ne!(a, fingerprint(&serde_json::json!({"status": "closed"})));
        let mut cursor = Cursor::default();
        assert!(cursor.changed("1", &a));
        cursor.seen.insert("1".into(), a.clone());
        assert!(!cursor.changed("1", &a));
        cursor.retain(&|id| id != "1");
        assert!(cursor.seen.is_empty());
    }
}
