//! Log lines on stderr in the form splunkd understands: `LEVEL message`.
//!
//! splunkd files every stderr line of an alert action under `component=sendmodalert` and
//! takes the first word as the level (DEBUG, INFO, WARN, ERROR, FATAL). Policy: ERROR means an
//! item failed; WARN means a retry was scheduled or a setting looks wrong; INFO is one line per
//! delivered item; DEBUG adds URLs. Bodies and secrets are never logged at any level.
//! A multi-line message is split so that every physical line carries the level word.

use log::{Level, LevelFilter, Log, Metadata, Record};
use std::io::Write;

struct StderrLogger;

fn level_word(level: Level) -> &'static str {
    match level {
        Level::Error => "ERROR",
        Level::Warn => "WARN",
        Level::Info => "INFO",
        Level::Debug | Level::Trace => "DEBUG",
    }
}

/// Writes `word message` with the word repeated on every line of a multi-line message.
pub fn write_line(word: &str, message: &str) {
    let mut text = String::with_capacity(message.len() + 16);
    for line in message.lines() {
        text.push_str(word);
        text.push(' ');
        text.push_str(line);
        text.push('\n');
    }
    if text.is_empty() {
        text.push_str(word);
        text.push('\n');
    }
    // A closed stderr must not turn logging into a crash.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// The line printed just before a non-zero exit that loses or risks data.
pub fn fatal(message: &str) {
    write_line("FATAL", message);
}

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            write_line(level_word(record.level()), &record.args().to_string());
        }
    }

    fn flush(&self) {}
}

/// Installs the stderr logger once; later calls only change the level.
pub fn init(verbose: bool) {
    let max_level = if verbose { LevelFilter::Debug } else { LevelFilter::Info };
    let _ = log::set_boxed_logger(Box::new(StderrLogger));
    log::set_max_level(max_level);
}
