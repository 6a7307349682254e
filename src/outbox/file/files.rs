//! The spool's file primitives: atomic writes, folder listings, and the names of claims and
//! temp files with whether the process that owns one is still running (so a flusher can adopt
//! what a dead process left).

use super::{TMP_COUNTER, is_not_found, spool_error};
use crate::error::Result;
use crate::fsync::sync_dir;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Where no process table can be read, a claim or temp file this old is presumed abandoned.
const ABANDONED_AFTER: Duration = Duration::from_secs(3600);

/// Whether process `pid` still runs: `Some(false)` for no such process or a zombie, `None`
/// where the process table cannot be read (not Linux).
pub fn pid_alive(pid: u32) -> Option<bool> {
    let proc_root = Path::new("/proc");
    if !proc_root.join("self").exists() {
        return None;
    }
    match fs::read_to_string(proc_root.join(pid.to_string()).join("stat")) {
        // The state letter follows the parenthesised command name.
        Ok(stat) => Some(
            stat.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
                .unwrap_or(true),
        ),
        Err(_) => Some(false),
    }
}

/// True when the process that owns a file named with `pid` is certainly gone.
pub(super) fn owner_gone(pid: Option<u32>, path: &Path) -> bool {
    let Some(pid) = pid else {
        return age_of(path).is_some_and(|age| age > ABANDONED_AFTER);
    };
    if pid == std::process::id() {
        // Our own pid on a file we did not create in this run: a dead earlier process had it.
        return true;
    }
    match pid_alive(pid) {
        Some(alive) => !alive,
        None => age_of(path).is_some_and(|age| age > ABANDONED_AFTER),
    }
}

fn age_of(path: &Path) -> Option<Duration> {
    fs::metadata(path).ok()?.modified().ok()?.elapsed().ok()
}

pub(crate) fn modified_unix(path: &Path) -> f64 {
    fs::metadata(path)
        .ok()
        .and_then(|meta| meta.modified().ok())
        .and_then(|time| time.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `<id>.<pid>.json` → (id, pid).
pub(super) fn split_claim_name(name: &str) -> Option<(&str, u32)> {
    let stem = name.strip_suffix(".json")?;
    let (id, pid) = stem.rsplit_once('.')?;
    Some((id, pid.parse().ok()?))
}

/// `<name>.<pid>.<n>.tmp` → pid.
pub(super) fn tmp_pid(name: &str) -> Option<u32> {
    let stem = name.strip_suffix(".tmp")?;
    let mut parts = stem.rsplitn(3, '.');
    let _counter = parts.next()?;
    parts.next()?.parse().ok()
}

/// Files of a folder as (path, name); a missing folder is empty.
pub(super) fn list_dir(dir: &Path) -> Result<Vec<(PathBuf, String)>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if is_not_found(&error) => return Ok(Vec::new()),
        Err(error) => return Err(spool_error(dir, error)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| spool_error(dir, error))?;
        if entry.file_type().map(|kind| kind.is_file()).unwrap_or(false)
            && let Some(name) = entry.file_name().to_str()
        {
            files.push((entry.path(), name.to_string()));
        }
    }
    Ok(files)
}

/// Writes `bytes` to `final_path` atomically: a temp file in `tmp_dir` (same filesystem),
/// fsync, rename, fsync of the target folder. Used by the spool and the ledger.
pub fn write_atomically(tmp_dir: &Path, final_path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = final_path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(tmp_dir).map_err(|error| spool_error(tmp_dir, error))?;
    fs::create_dir_all(dir).map_err(|error| spool_error(dir, error))?;
    let name = final_path.file_name().and_then(|name| name.to_str()).unwrap_or("item");
    let tmp_path = tmp_dir.join(format!(
        "{name}.{}.{}.tmp",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut file = File::create(&tmp_path)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp_path, final_path)?;
        sync_dir(dir)
    })();
    if let Err(error) = written {
        let _ = fs::remove_file(&tmp_path);
        return Err(spool_error(final_path, error));
    }
    Ok(())
}
