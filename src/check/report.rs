//! The report of `stackflow check` and `| stackflowcheck`: one line per check (text
//! `OK|WARN|FAIL|SKIP  <what>  <detail>`, or JSON / a search row with `kind, account, check,
//! status, detail, remedy`), a summary line, and the exit code of the worst failure (PRODUCT §4).

use crate::error::{Error, ExitCode};

/// The verdict of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
    /// Not checked: the account is not configured.
    Skip,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
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

    pub(super) fn skip(&mut self, what: &str, detail: impl Into<String>) {
        self.push(Status::Skip, what, detail, ExitCode::Success);
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
        let skipped = match self.count(Status::Skip) {
            0 => String::new(),
            skip => format!(", {skip} SKIP"),
        };
        let code = self.exit_code().code();
        if fail == 0 {
            format!(
                "{} checks: {ok} OK, {warn} WARN, 0 FAIL{skipped}: configuration usable (exit 0)",
                ok + warn
            )
        } else {
            format!(
                "{} checks: {ok} OK, {warn} WARN, {fail} FAIL{skipped} (exit {code})",
                ok + warn + fail
            )
        }
    }

    /// One JSON object per line (`stackflow check --json`), then a summary object.
    pub fn render_json(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            out.push_str(&line.to_json().to_string());
            out.push('\n');
        }
        let summary = serde_json::json!({
            "summary": self.summary(),
            "exit_code": self.exit_code().code(),
        });
        out.push_str(&summary.to_string());
        out.push('\n');
        out
    }
}

/// Where a line belongs: `kind` is `soar|stackflow|slack` for an account's lines and `app`
/// for the checks every account depends on (settings, splunkd, spool, proxy, receipts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    pub kind: String,
    pub account: String,
    pub check: String,
}

impl Line {
    /// `soar:prod` → (soar, prod, endpoint); `stackflow:prod api` → (stackflow, prod, api);
    /// `[soar:prod]` (its settings) → (soar, prod, settings); `[delivery]` → (app, "", delivery).
    pub fn subject(&self) -> Subject {
        let (name, check) = match self.what.split_once(' ') {
            Some((name, check)) => (name, Some(check)),
            None => (self.what.as_str(), None),
        };
        let bracketed = name.starts_with('[') && name.ends_with(']');
        let bare = name.trim_start_matches('[').trim_end_matches(']');
        match bare.split_once(':') {
            Some((kind, account)) if ["soar", "stackflow", "slack", "all"].contains(&kind) => {
                Subject {
                    kind: kind.into(),
                    account: account.into(),
                    check: check
                        .unwrap_or(if bracketed { "settings" } else { "endpoint" })
                        .to_string(),
                }
            }
            _ => Subject {
                kind: "app".into(),
                account: String::new(),
                check: self.what.trim_start_matches('[').trim_end_matches(']').to_string(),
            },
        }
    }

    /// What to do about it, in a sentence (empty when nothing needs doing).
    pub fn remedy(&self) -> String {
        let subject = self.subject();
        let account = subject.kind != "app";
        match (self.status, self.code) {
            (Status::Ok, _) => String::new(),
            (Status::Skip, _) => format!(
                "to use it, set its URL on the StackFlow setup page (or [{}:{}] in local/stackflow.conf)",
                subject.kind, subject.account
            ),
            (Status::Warn, _) => "review the setting named in the detail".into(),
            (Status::Fail, ExitCode::Credentials) if account => format!(
                "store the account's secret on the StackFlow setup page, or with `stackflow secret set <user name>` (user names: {})",
                crate::remotes::secrets::users_of(&subject.kind, &subject.account)
                    .into_iter()
                    .map(|(user, _)| user)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (Status::Fail, ExitCode::Credentials) => "run it with a valid splunkd session (from Splunk, or a session key on stdin) by a user holding the stackflow_user role".into(),
            (Status::Fail, ExitCode::Configuration) if account => format!(
                "fix [{}:{}] on the StackFlow setup page (or in local/stackflow.conf), then test again",
                subject.kind, subject.account
            ),
            (Status::Fail, ExitCode::Configuration) => {
                "fix the setting named in the detail in local/stackflow.conf".into()
            }
            (Status::Fail, ExitCode::Deferred) => "the endpoint cannot be reached now: check the URL, DNS, firewall and [proxy]; spooled items are re-sent once it answers".into(),
            (Status::Fail, _) => "see the detail; the remote's own message says what it refused".into(),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        let subject = self.subject();
        serde_json::json!({
            "kind": subject.kind,
            "account": subject.account,
            "check": subject.check,
            "status": self.status.word(),
            "detail": self.detail,
            "remedy": self.remedy(),
        })
    }
}
