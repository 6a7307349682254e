//! The ledger of delivered dedupe keys, for remotes that do not deduplicate (StackFlow's
//! webhook, Slack). One small file per key under `<spool>/ledger/`, written atomically after a
//! delivery is confirmed; its presence means "already delivered, here is the remote id".

use super::spool::{item_id, sync_dir};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LedgerEntry {
    pub dedupe_key: String,
    pub remote_id: Option<String>,
    pub remote_url: Option<String>,
    #[serde(default)]
    pub details: serde_json::Map<String, serde_json::Value>,
    pub delivered_unix: f64,
}

pub struct Ledger {
    dir: PathBuf,
}

impl Ledger {
    pub fn new(spool_root: &Path) -> Ledger {
        Ledger { dir: spool_root.join("ledger") }
    }

    fn path(&self, dedupe_key: &str) -> PathBuf {
        self.dir.join(format!("{}.json", item_id(dedupe_key)))
    }

    pub fn get(&self, dedupe_key: &str) -> Option<LedgerEntry> {
        let bytes = fs::read(self.path(dedupe_key)).ok()?;
        serde_json::from_slice::<LedgerEntry>(&bytes)
            .ok()
            .filter(|entry| entry.dedupe_key == dedupe_key)
    }

    pub fn record(&self, entry: &LedgerEntry) -> Result<()> {
        let path = self.path(&entry.dedupe_key);
        let tmp =
            self.dir.join(format!(".{}.{}.tmp", item_id(&entry.dedupe_key), std::process::id()));
        let result = (|| {
            fs::create_dir_all(&self.dir)?;
            let bytes = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
            let mut file = fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            fs::rename(&tmp, &path)?;
            sync_dir(&self.dir)
        })();
        result.map_err(|error| {
            let _ = fs::remove_file(&tmp);
            Error::Spool {
                path,
                detail: format!("cannot record the delivery in the ledger: {error}"),
            }
        })
    }
}
