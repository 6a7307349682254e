//! `stackflow check`: runs every check of `crate::check` with the session key from stdin and
//! prints the report on stdout (the summary also goes to stderr as a log line).

use crate::check;
use crate::error::ExitCode;
use crate::logging;
use std::io::Write;

pub fn run(splunkd_uri: Option<String>) -> ExitCode {
    logging::init(false);
    let session_key = super::spool::read_session_key();
    let report = check::check(splunkd_uri.as_deref(), session_key);
    let code = report.exit_code();
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(report.render().as_bytes()).and_then(|()| stdout.flush()).is_err() {
        return ExitCode::Internal;
    }
    if code == ExitCode::Success {
        log::info!("check: {}", report.summary());
    } else {
        log::error!("check: {}", report.summary());
    }
    code
}
