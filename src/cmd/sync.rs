//! `stackflow sync`: the `| stackflowsync` chunked search command — runs the SCP v2 driver on
//! stdin/stdout with [`StackflowSync`] and turns a terminal error into a non-zero exit.

use crate::error::ExitCode;
use crate::remotes::secrets;
use crate::splunk::search_command;
use crate::sync::StackflowSync;
use std::io::{BufReader, BufWriter, Write};

pub fn run() -> ExitCode {
    crate::logging::init(false);
    let stdin = BufReader::with_capacity(1 << 20, std::io::stdin().lock());
    let mut stdout = BufWriter::with_capacity(1 << 20, std::io::stdout().lock());
    let mut command = StackflowSync::new();
    let result = search_command::run(stdin, &mut stdout, &mut command);
    let flushed = stdout.flush();
    match (result, flushed) {
        (Ok(()), Ok(())) => ExitCode::Success,
        (Err(error), _) => {
            // The reply already carried the error to splunkd; search.log gets it too.
            log::error!("stackflowsync: {error}");
            // A bad `account=` is a configuration error (exit 4, PRODUCT §15), refused before
            // any secret is read; the protocol carries it as the command's message.
            let message = error.to_string();
            if error.is_command_error() && message.contains(secrets::INVALID_ACCOUNT) {
                return ExitCode::Configuration;
            }
            ExitCode::BadInvocation
        }
        (Ok(()), Err(error)) => {
            log::error!("stackflowsync: cannot write to splunkd: {error}");
            ExitCode::BadInvocation
        }
    }
}
