//! Entry point: parse arguments, run one command, turn its result into an exit code.
//!
//! Nothing else happens here but the panic hook. A panic is a bug, and splunkd must see it as
//! one line it can file, never as a trace (PRODUCT §4: exit 9, "reported, never a panic
//! trace"): the hook writes `FATAL internal error: <message> at <file:line:column>` to stderr
//! and ends the process with exit code 9 at once, whichever thread panicked. Ending the process
//! in the hook itself is what makes this hold with `panic = "abort"` (the release profile),
//! where nothing unwinds and `catch_unwind` never returns, and for a panic on the alert's
//! delivery thread, which would otherwise leave the rest of the run going. Nothing is lost: an
//! item being sent is claimed in the spool, and the next `spool flush` adopts it.
//!
//! `STACKFLOW_TEST_PANIC=main|thread` makes the process panic on purpose before it runs the
//! command (on the main thread, or on another one as the alert's delivery thread would), so
//! that the integration tests can check what a bug looks like to splunkd.

use stackflow::{cmd, error::ExitCode, logging};
use std::panic::PanicHookInfo;

fn main() -> std::process::ExitCode {
    std::panic::set_hook(Box::new(|info| {
        logging::fatal(&panic_line(info));
        std::process::exit(i32::from(ExitCode::Internal.code()));
    }));
    panic_on_request();
    let (args, execute_flag) = cmd::split_execute_flag(std::env::args_os());
    std::process::ExitCode::from(cmd::run(args, execute_flag).code())
}

/// `internal error: <message> at <file:line:column>`, on one line (a multi-line message is
/// joined), without a backtrace whatever `RUST_BACKTRACE` says.
fn panic_line(info: &PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    let message: Vec<&str> =
        message.lines().map(str::trim).filter(|line| !line.is_empty()).collect();
    let location = match info.location() {
        Some(location) => {
            format!("{}:{}:{}", location.file(), location.line(), location.column())
        }
        None => "an unknown place".to_string(),
    };
    format!("internal error: {} at {location}", message.join(" "))
}

/// The deliberate panic of `STACKFLOW_TEST_PANIC` (see the header).
fn panic_on_request() {
    match std::env::var("STACKFLOW_TEST_PANIC").as_deref() {
        Ok("main") => panic!("STACKFLOW_TEST_PANIC=main: a message\nover two lines"),
        Ok("thread") => {
            let worker = std::thread::spawn(|| panic!("STACKFLOW_TEST_PANIC=thread"));
            let _ = worker.join();
        }
        _ => {}
    }
}
