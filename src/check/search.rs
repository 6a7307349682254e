//! `| stackflowcheck [account=<name>] [kind=soar|stackflow|slack|all]`: the checks of
//! `stackflow check` as a generating chunked search command (SCP v2, type `stateful`, so it
//! runs on the search head with the search's own session key). One row per check:
//! `kind, account, check, status (OK|WARN|FAIL|SKIP), detail, remedy`. The setup page's *Test*
//! button runs it for one account.

use super::{Selection, check_selected};
use crate::splunk::search_command::{
    CommandConfig, CommandError, CommandType, ExecuteChunk, Level, SearchCommand, SearchInfo,
};

/// The output columns, in order.
pub const FIELDS: [&str; 6] = ["kind", "account", "check", "status", "detail", "remedy"];

#[derive(Default)]
pub struct StackflowCheck {
    selection: Selection,
    info: SearchInfo,
    done: bool,
}

impl StackflowCheck {
    pub fn new() -> StackflowCheck {
        StackflowCheck::default()
    }
}

/// Parses `account=<name>` and `kind=soar|stackflow|slack|all` (each at most once).
pub fn parse_args(args: &[String]) -> Result<Selection, String> {
    let mut selection = Selection::default();
    let mut seen: Vec<&str> = Vec::new();
    for arg in args {
        let Some((name, value)) = arg.split_once('=') else {
            return Err(format!(
                "unexpected argument \"{arg}\"; usage: stackflowcheck [account=<name>] [kind=soar|stackflow|slack|all]"
            ));
        };
        let name = name.trim();
        if seen.contains(&name) {
            return Err(format!("{name} is given twice"));
        }
        match name {
            "account" => {
                if !crate::remotes::secrets::valid_account(value) {
                    return Err(format!(
                        "account=\"{value}\" is not an account name (1-64 letters, digits, '_', '-', '.')"
                    ));
                }
                selection.account = Some(value.to_string());
                seen.push("account");
            }
            "kind" => {
                selection.kind = match value {
                    "all" => None,
                    "soar" | "stackflow" | "slack" => Some(value.to_string()),
                    other => {
                        return Err(format!(
                            "kind=\"{other}\" is not one of soar, stackflow, slack, all"
                        ));
                    }
                };
                seen.push("kind");
            }
            other => {
                return Err(format!(
                    "unknown option \"{other}\"; stackflowcheck takes account=<name> and kind=soar|stackflow|slack|all"
                ));
            }
        }
    }
    Ok(selection)
}

impl SearchCommand for StackflowCheck {
    fn getinfo(&mut self, info: &SearchInfo) -> Result<CommandConfig, CommandError> {
        self.selection = parse_args(&info.args).map_err(CommandError::new)?;
        self.info = info.clone();
        let mut config = CommandConfig::new(CommandType::Stateful);
        config.generating = true;
        Ok(config)
    }

    fn execute(&mut self, chunk: &mut ExecuteChunk<'_>) -> Result<(), CommandError> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let uri = Some(self.info.splunkd_uri.as_str()).filter(|uri| !uri.trim().is_empty());
        let key = self.info.session_key.expose().to_string();
        let report = check_selected(uri, key, &self.selection);
        let rows: Vec<Vec<String>> = report
            .lines
            .iter()
            .map(|line| {
                let subject = line.subject();
                vec![
                    subject.kind,
                    subject.account,
                    subject.check,
                    line.status.word().to_string(),
                    line.detail.replace(['\n', '\r'], " "),
                    line.remedy(),
                ]
            })
            .collect();
        let level = if report.exit_code() == crate::error::ExitCode::Success {
            Level::Info
        } else {
            Level::Warn
        };
        chunk.message(level, format!("stackflowcheck: {}", report.summary()));
        chunk.generate(&FIELDS, &rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Selection, String> {
        parse_args(&args.iter().map(|arg| arg.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn arguments_select_kind_and_account() {
        assert_eq!(parse(&[]), Ok(Selection::default()));
        assert_eq!(
            parse(&["account=prod", "kind=soar"]),
            Ok(Selection { kind: Some("soar".into()), account: Some("prod".into()) })
        );
        assert_eq!(parse(&["kind=all"]), Ok(Selection::default()));
        for (args, needle) in [
            (&["kind=jira"][..], "not one of"),
            (&["account=a b"], "not an account name"),
            (&["account="], "not an account name"),
            (&["acount=x"], "unknown option"),
            (&["prod"], "unexpected argument"),
            (&["kind=soar", "kind=slack"], "twice"),
        ] {
            let message = parse(args).unwrap_err();
            assert!(message.contains(needle), "{args:?}: {message}");
        }
    }
}
