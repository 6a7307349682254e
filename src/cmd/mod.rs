//! The subcommands: glue between the command line, Splunk's protocols and the library.

pub mod alert;
pub mod check;
pub mod secret;
pub mod slack;
pub mod spool;
pub mod state;
pub mod sync;

use crate::cli::{AlertKind, Cli, Command};
use crate::error::ExitCode;
use crate::item::TargetKind;
use crate::splunk::modinput::{self, Definition, Mode, Scheme};
use clap::Parser;
use std::ffi::OsString;
use std::io::Write;

/// splunkd may put `--execute` anywhere in argv (after `alert.execute.cmd.arg.N`); lift it out
/// so that the parser sees a regular command line.
pub fn split_execute_flag(args: impl Iterator<Item = OsString>) -> (Vec<OsString>, bool) {
    let mut execute = false;
    let rest = args
        .filter(|arg| {
            let is_execute = arg == "--execute";
            execute |= is_execute;
            !is_execute
        })
        .collect();
    (rest, execute)
}

/// Runs one command and returns its exit code.
pub fn run(args: Vec<OsString>, execute_flag: bool) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let is_info = matches!(
                error.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            );
            let _ = error.print();
            return if is_info { ExitCode::Success } else { ExitCode::BadInvocation };
        }
    };
    match cli.command {
        Command::Alert { action, execute } => {
            let kind = match action {
                AlertKind::Soar => TargetKind::Soar,
                AlertKind::Incident => TargetKind::Stackflow,
                AlertKind::Slack => TargetKind::Slack,
            };
            alert::run(kind, execute || execute_flag)
        }
        Command::Sync => sync::run(),
        Command::Spool { command } => spool::run(command),
        Command::Check { splunkd_uri, json, chunked } => {
            if chunked {
                check::run_chunked()
            } else {
                check::run(splunkd_uri, json)
            }
        }
        Command::Secret { command } => secret::run(command),
        Command::State { scheme, validate_arguments } => state::run(scheme, validate_arguments),
        Command::Slack { command } => slack::run(command),
    }
}

/// Logs an error the way every command reports a stop: ERROR (or FATAL for data at risk).
/// A modular input's start as splunkd drives it (PRODUCT §12, §9): the mode of its flags
/// (`None` = usage error, already logged), the scheme printed for `--scheme`.
pub fn modinput_mode(
    scheme_flag: bool,
    validate_flag: bool,
    scheme: impl FnOnce() -> Scheme,
) -> Result<Mode, ExitCode> {
    let Some(mode) = Mode::from_flags(scheme_flag, validate_flag) else {
        log::error!("--scheme and --validate-arguments exclude each other");
        return Err(ExitCode::BadInvocation);
    };
    if mode == Mode::Scheme {
        let _ = std::io::stdout().lock().write_all(scheme().to_xml().as_bytes());
        return Err(ExitCode::Success);
    }
    Ok(mode)
}

/// The configuration splunkd writes on a modular input's stdin; an unreadable one is
/// reported (as `<error>` too when splunkd asked for a validation).
pub fn modinput_definition(mode: Mode) -> Result<Definition, ExitCode> {
    modinput::read_definition(std::io::stdin().lock()).map_err(|error| {
        if mode == Mode::Validate {
            let message = modinput::validation_error(&error.to_string());
            let _ = std::io::stdout().lock().write_all(message.as_bytes());
        }
        error.report()
    })
}
