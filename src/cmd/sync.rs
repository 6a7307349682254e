//! `stackflow sync`: the `| stackflowsync` chunked search command.

use crate::error::ExitCode;

pub fn run() -> ExitCode {
    crate::logging::fatal("stackflowsync is not built yet");
    ExitCode::Internal
}
