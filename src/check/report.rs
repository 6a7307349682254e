//! The report of `stackflow check`: one `OK|WARN|FAIL  <what>  <detail>` line per check, a
//! summary line, and the exit code of the worst failure (PRODUCT §4).

use crate::error::{Error, ExitCode};

/// The verdict of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One line of the report.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub status: Status,
    pub what: String,
    pub detail: String,
    /// For a failure: its place in the exit-code table.
    pub code: ExitCode,
}

/// Every check's line, in the order they ran.
#[derive(Debug, Default)]
pub struct Report {
    pub lines: Vec<Line>,
}

impl Report {
    pub(super) fn push(
        &mut self,
        status: Status,
        what: &str,
        detail: impl Into<String>,
        code: ExitCode,
    ) {
        self.lines.push(Line { status, what: what.to_string(), detail: detail.into(), code });
    }

    pub(super) fn ok(&mut self, what: &str, detail: impl Into<String>) {
        self.push(Status::Ok, what, detail, ExitCode::Success);
    }

    pub(super) fn warn(&mut self, what: &str, detail: impl Into<String>) {
        self.push(Status::Warn, what, detail, ExitCode::Success);
    }

    pub(super) fn fail(&mut self, what: &str, detail: impl Into<String>, code: ExitCode) {
        self.push(Status::Fail, what, detail, code);
    }

    pub(super) fn error(&mut self, what: &str, error: &Error) {
        self.fail(what, error.to_string(), error.exit_code());
    }

    fn count(&self, status: Status) -> usize {
        self.lines.iter().filter(|line| line.status == status).count()
    }

    /// 0 when nothing failed (warnings allowed), else the worst failure.
    pub fn exit_code(&self) -> ExitCode {
        self.lines
            .iter()
            .filter(|line| line.status == Status::Fail)
            .fold(ExitCode::Success, |worst, line| worst.worst(line.code))
    }

    /// The table (columns aligned) and the summary line.
    pub fn render(&self) -> String {
        let width = self.lines.iter().map(|line| line.what.chars().count()).max().unwrap_or(0);
        let mut out = String::new();
        for line in &self.lines {
            let detail = line.detail.replace(['\n', '\r'], " ");
            let text = format!("{:<4}  {:<width$}  {detail}", line.status.word(), line.what);
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    pub fn summary(&self) -> String {
        let (ok, warn, fail) =
            (self.count(Status::Ok), self.count(Status::Warn), self.count(Status::Fail));
        let code = self.exit_code().code();
        if fail == 0 {
            format!(
                "{} checks: {ok} OK, {warn} WARN, 0 FAIL: configuration usable (exit 0)",
                ok + warn
            )
        } else {
            format!("{} checks: {ok} OK, {warn} WARN, {fail} FAIL (exit {code})", ok + warn + fail)
        }
    }
}
