//! `stackflow spool list|flush|requeue|purge`.

use crate::cli::SpoolCommand;
use crate::error::ExitCode;

pub fn run(_command: SpoolCommand) -> ExitCode {
    crate::logging::fatal("spool commands are not built yet");
    ExitCode::Internal
}
