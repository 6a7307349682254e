//! `stackflow check`: validate configuration and reach every configured endpoint.

use crate::error::ExitCode;

pub fn run(_splunkd_uri: Option<String>) -> ExitCode {
    crate::logging::fatal("check is not built yet");
    ExitCode::Internal
}
