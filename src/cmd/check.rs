//! `stackflow check`: runs every check of `crate::check` with the session key from stdin and
//! prints the report on stdout (text, or JSON lines with `--json`; the summary also goes to
//! stderr as a log line). `--chunked` is the `| stackflowcheck` search command instead.

use crate::check;
use crate::check::search::StackflowCheck;
use crate::error::ExitCode;
use crate::logging;
use crate::splunk::search_command;
use std::io::{BufReader, BufWriter, Write};

pub fn run(splunkd_uri: Option<String>, json: bool) -> ExitCode {
    logging::init(false);
    let session_key = super::spool::read_session_key();
    let report = check::check(splunkd_uri.as_deref(), session_key);
    let code = report.exit_code();
    let text = if json { report.render_json() } else { report.render() };
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).is_err() {
        return ExitCode::Internal;
    }
    if code == ExitCode::Success {
        log::info!("check: {}", report.summary());
    } else {
        log::error!("check: {}", report.summary());
    }
    code
}

/// `| stackflowcheck`: the SCP v2 driver with [`StackflowCheck`] on stdin/stdout.
pub fn run_chunked() -> ExitCode {
    logging::init(false);
    let stdin = BufReader::new(std::io::stdin().lock());
    let mut stdout = BufWriter::new(std::io::stdout().lock());
    let result = search_command::run(stdin, &mut stdout, &mut StackflowCheck::new());
    let flushed = stdout.flush();
    match (result, flushed) {
        (Ok(()), Ok(())) => ExitCode::Success,
        (Err(error), _) => {
            // The reply already carried the error to splunkd; search.log gets it too.
            log::error!("stackflowcheck: {error}");
            ExitCode::BadInvocation
        }
        (Ok(()), Err(error)) => {
            log::error!("stackflowcheck: cannot write to splunkd: {error}");
            ExitCode::BadInvocation
        }
    }
}
