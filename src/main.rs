//! Entry point: parse arguments, run one command, turn its result into an exit code.
//!
//! Nothing else happens here. Panics never reach the user as a trace: they become one FATAL
//! line and exit code 9.

use stackflow::{cmd, error::ExitCode, logging};

fn main() -> std::process::ExitCode {
    std::panic::set_hook(Box::new(|info| {
        logging::fatal(&format!("internal error (a bug, please report it): {info}"));
    }));
    let (args, execute_flag) = cmd::split_execute_flag(std::env::args_os());
    let code = match std::panic::catch_unwind(|| cmd::run(args, execute_flag)) {
        Ok(code) => code,
        Err(_) => ExitCode::Internal,
    };
    std::process::ExitCode::from(code.code())
}
