//! fsync of a folder, so that a file renamed into it survives a power cut: what the outbox's
//! atomic writes and the stash files of receipts both end with.

use std::path::Path;

/// fsync a directory so that a rename into it survives a power cut (no-op where unsupported).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}
