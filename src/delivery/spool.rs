//! The durable spool: items not delivered yet (`pending/`) and items the remote refused
//! (`dead/`), one JSON file per item, written so that a crash at any instant leaves either the
//! old state or the new one, never a torn file.
//!
//! Layout under the spool directory:
//! - `tmp/`      files being written; anything here after a crash is garbage and is removed.
//! - `pending/`  `<id>.json`: an item waiting for `spool flush`.
//! - `dead/`     `<id>.json`: a dead letter (rejected), kept until requeued or purged.
//!
//! Write protocol: write `tmp/<id>.<pid>.tmp`, fsync it, rename into place, fsync the folder.
//! A rename within one filesystem is atomic, so a reader sees the whole file or none. The item id
//! is derived from the dedupe key, so spooling the same item twice replaces, never duplicates.
//! No secret is ever written: items carry none.

use super::{DeliveryItem, RejectClass};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Format version of the files, for future migrations.
pub const RECORD_VERSION: u32 = 1;

/// What the spool keeps about one item.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SpoolRecord {
    pub version: u32,
    pub id: String,
    pub item: DeliveryItem,
    pub attempts: u32,
    pub first_attempt_unix: f64,
    pub last_attempt_unix: f64,
    /// Not to be re-sent before this time (per-item backoff).
    pub next_attempt_unix: f64,
    pub last_error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_class: Option<RejectClass>,
}

pub struct Spool {
    root: PathBuf,
}

/// A file-name-safe id for a dedupe key: a 128-bit FNV-1a hash in hex.
pub fn item_id(dedupe_key: &str) -> String {
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for byte in dedupe_key.as_bytes() {
        hash ^= *byte as u128;
        hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013B);
    }
    format!("{hash:032x}")
}

pub fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Spool {
    pub fn new(root: impl Into<PathBuf>) -> Spool {
        Spool { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn pending_dir(&self) -> PathBuf {
        self.root.join("pending")
    }

    pub fn dead_dir(&self) -> PathBuf {
        self.root.join("dead")
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Stores an item to be re-sent later.
    pub fn put_pending(&self, record: &SpoolRecord) -> Result<PathBuf> {
        self.write_atomically(&self.pending_dir(), record)
    }

    /// Stores a rejected item as a dead letter.
    pub fn put_dead(&self, record: &SpoolRecord) -> Result<PathBuf> {
        self.write_atomically(&self.dead_dir(), record)
    }

    fn write_atomically(&self, dir: &Path, record: &SpoolRecord) -> Result<PathBuf> {
        let spool_error = |path: &Path, error: std::io::Error| Error::Spool {
            path: path.to_path_buf(),
            detail: error.to_string(),
        };
        let tmp_dir = self.tmp_dir();
        fs::create_dir_all(&tmp_dir).map_err(|error| spool_error(&tmp_dir, error))?;
        fs::create_dir_all(dir).map_err(|error| spool_error(dir, error))?;
        let bytes = serde_json::to_vec(record)
            .map_err(|error| Error::Internal(format!("spool record: {error}")))?;
        let tmp_path = tmp_dir.join(format!("{}.{}.tmp", record.id, std::process::id()));
        let final_path = dir.join(format!("{}.json", record.id));
        let written = (|| {
            let mut file = File::create(&tmp_path)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            drop(file);
            fs::rename(&tmp_path, &final_path)?;
            sync_dir(dir)
        })();
        if let Err(error) = written {
            let _ = fs::remove_file(&tmp_path);
            return Err(spool_error(&final_path, error));
        }
        Ok(final_path)
    }
}

/// fsync a directory so that a rename into it survives a power cut (no-op where unsupported).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
