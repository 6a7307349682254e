//! The arguments of `| stackflowsync`, parsed and validated at getinfo time: every problem is a
//! message that says what is accepted, so that the search fails before any row is read.
//!
//! ```text
//! | stackflowsync [target=soar|stackflow|all] [update_notables=<bool>] [dry_run=<bool>]
//!                 [account=<name>] [status_map=<remote_status>:<es_status>,...] [comment=<text>]
//! ```

use crate::splunk::conf::parse_bool;

/// Which remote systems are read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Soar,
    Stackflow,
    All,
}

impl Target {
    pub fn soar(self) -> bool {
        matches!(self, Target::Soar | Target::All)
    }

    pub fn stackflow(self) -> bool {
        matches!(self, Target::Stackflow | Target::All)
    }
}

/// Which remote a status-map entry applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Remote {
    Soar,
    Stackflow,
}

impl Remote {
    pub fn label(self) -> &'static str {
        match self {
            Remote::Soar => "SOAR container",
            Remote::Stackflow => "StackFlow incident",
        }
    }
}

/// One `remote_status:es_status` pair; `remote: None` applies to SOAR and StackFlow alike.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusRule {
    pub remote: Option<Remote>,
    /// Lower-case remote status (SOAR container status, StackFlow incident state).
    pub remote_status: String,
    /// ES notable status code.
    pub es_status: u32,
}

/// Remote status → ES notable status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusMap {
    pub rules: Vec<StatusRule>,
}

impl Default for StatusMap {
    /// SOAR closed → Resolved (4); StackFlow resolved → Resolved (4), closed → Closed (5).
    fn default() -> StatusMap {
        let rule = |remote, status: &str, es_status| StatusRule {
            remote: Some(remote),
            remote_status: status.to_string(),
            es_status,
        };
        StatusMap {
            rules: vec![
                rule(Remote::Soar, "closed", 4),
                rule(Remote::Stackflow, "resolved", 4),
                rule(Remote::Stackflow, "closed", 5),
            ],
        }
    }
}

impl StatusMap {
    /// The ES status a remote status maps to; a rule naming the remote wins over a generic one.
    pub fn lookup(&self, remote: Remote, status: &str) -> Option<u32> {
        let status = status.trim();
        let matching = |rule: &&StatusRule| rule.remote_status.eq_ignore_ascii_case(status);
        self.rules
            .iter()
            .filter(matching)
            .find(|rule| rule.remote == Some(remote))
            .or_else(|| self.rules.iter().filter(matching).find(|rule| rule.remote.is_none()))
            .map(|rule| rule.es_status)
    }

    /// Parses `closed:4,resolved:resolved,stackflow.closed:in progress` (commas between pairs).
    pub fn parse(text: &str) -> Result<StatusMap, String> {
        let mut rules = Vec::new();
        for pair in text.split([',', '\n']).filter(|pair| !pair.trim().is_empty()) {
            let pair = pair.trim();
            let Some((remote_part, es_part)) = pair.rsplit_once(':') else {
                return Err(format!(
                    "status_map entry \"{pair}\" has no ':'; {}",
                    STATUS_MAP_ACCEPTED
                ));
            };
            let (remote, remote_status) = match remote_part.split_once('.') {
                Some((prefix, rest)) if prefix.eq_ignore_ascii_case("soar") => {
                    (Some(Remote::Soar), rest)
                }
                Some((prefix, rest)) if prefix.eq_ignore_ascii_case("stackflow") => {
                    (Some(Remote::Stackflow), rest)
                }
                _ => (None, remote_part),
            };
            let remote_status = remote_status.trim();
            if remote_status.is_empty() {
                return Err(format!(
                    "status_map entry \"{pair}\" names no remote status; {STATUS_MAP_ACCEPTED}"
                ));
            }
            let es_status = parse_es_status(es_part).ok_or_else(|| {
                format!(
                    "status_map entry \"{pair}\": \"{}\" is not an ES notable status; {STATUS_MAP_ACCEPTED}",
                    es_part.trim()
                )
            })?;
            rules.push(StatusRule {
                remote,
                remote_status: remote_status.to_ascii_lowercase(),
                es_status,
            });
        }
        if rules.is_empty() {
            return Err(format!("status_map is empty; {STATUS_MAP_ACCEPTED}"));
        }
        Ok(StatusMap { rules })
    }
}

const STATUS_MAP_ACCEPTED: &str = "expected <remote_status>:<es_status>[,...] where <remote_status> \
     is a SOAR container status or StackFlow incident state (optionally prefixed soar. or stackflow.) \
     and <es_status> is a number or one of new, in progress, pending, resolved, closed \
     (example: status_map=\"closed:4,stackflow.closed:5\")";

/// ES notable status names and their default codes.
pub const ES_STATUS_NAMES: [(&str, u32); 6] = [
    ("unassigned", 0),
    ("new", 1),
    ("in progress", 2),
    ("pending", 3),
    ("resolved", 4),
    ("closed", 5),
];

/// `4`, `resolved`, `In Progress`, `in_progress` → the numeric status code.
pub fn parse_es_status(text: &str) -> Option<u32> {
    let text = text.trim();
    if let Ok(code) = text.parse::<u32>() {
        return Some(code);
    }
    let normalised = text.to_ascii_lowercase().replace(['_', '-'], " ");
    ES_STATUS_NAMES.iter().find(|(name, _)| *name == normalised).map(|(_, code)| *code)
}

/// `Resolved (4)`; custom codes are shown as `status 7`.
pub fn es_status_label(code: u32) -> String {
    match ES_STATUS_NAMES.iter().find(|(_, known)| *known == code) {
        Some((name, _)) => {
            let mut label = String::with_capacity(name.len() + 4);
            let mut upper = true;
            for c in name.chars() {
                label.push(if upper { c.to_ascii_uppercase() } else { c });
                upper = c == ' ';
            }
            format!("{label} ({code})")
        }
        None => format!("status {code}"),
    }
}

/// The validated arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub target: Target,
    pub update_notables: bool,
    pub dry_run: bool,
    pub account: String,
    pub status_map: StatusMap,
    /// Replaces the "StackFlow for Splunk" prefix of notable comments.
    pub comment: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            target: Target::All,
            update_notables: false,
            dry_run: false,
            account: "default".to_string(),
            status_map: StatusMap::default(),
            comment: None,
        }
    }
}

const ACCEPTED: &str = "accepted: target=soar|stackflow|all, update_notables=<bool>, dry_run=<bool>, \
     account=<name>, status_map=<remote_status>:<es_status>,..., comment=<text>";

impl Options {
    /// `true` when notable statuses are computed (to update them or to show what would change).
    pub fn decides_notables(&self) -> bool {
        self.update_notables || self.dry_run
    }

    /// `true` when notables are really written.
    pub fn writes_notables(&self) -> bool {
        self.update_notables && !self.dry_run
    }

    /// Parses `searchinfo.args` (Splunk's tokens, quotes removed).
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options::default();
        let mut seen: Vec<&str> = Vec::new();
        let mut status_map_text: Option<String> = None;
        let mut last_was_status_map = false;
        for arg in args {
            let Some((name, value)) = arg.split_once('=') else {
                // Splunk may split `status_map=closed:4,resolved:4` at the comma: take a bare
                // `x:y` token right after status_map as its continuation.
                if last_was_status_map
                    && arg.contains(':')
                    && let Some(text) = status_map_text.as_mut()
                {
                    text.push(',');
                    text.push_str(arg);
                    continue;
                }
                return Err(format!(
                    "unexpected argument \"{arg}\" (expected name=value); {ACCEPTED}"
                ));
            };
            let name = name.trim();
            let value = value.trim();
            let key = match name.to_ascii_lowercase().as_str() {
                "target" => "target",
                "update_notables" => "update_notables",
                "dry_run" => "dry_run",
                "account" => "account",
                "status_map" => "status_map",
                "comment" => "comment",
                _ => return Err(format!("unknown option \"{name}\"; {ACCEPTED}")),
            };
            if seen.contains(&key) {
                return Err(format!("option {key} is given twice"));
            }
            seen.push(key);
            last_was_status_map = key == "status_map";
            match key {
                "target" => {
                    options.target = match value.to_ascii_lowercase().as_str() {
                        "soar" => Target::Soar,
                        "stackflow" => Target::Stackflow,
                        "all" => Target::All,
                        _ => {
                            return Err(format!(
                                "target=\"{value}\" is not valid; accepted: target=soar|stackflow|all"
                            ));
                        }
                    }
                }
                "update_notables" => options.update_notables = parse_bool_option(key, value)?,
                "dry_run" => options.dry_run = parse_bool_option(key, value)?,
                "account" => {
                    if let Some(problem) = crate::remotes::secrets::account_problem(value) {
                        return Err(format!("account=\"{value}\" is not valid: {problem}"));
                    }
                    options.account = value.to_string();
                }
                "status_map" => status_map_text = Some(value.to_string()),
                _ => {
                    if value.is_empty() {
                        return Err(
                            "comment is empty; accepted: comment=<text> (quote text with spaces)"
                                .to_string(),
                        );
                    }
                    options.comment = Some(value.to_string());
                }
            }
        }
        if let Some(text) = status_map_text {
            options.status_map = StatusMap::parse(&text)?;
        }
        Ok(options)
    }
}

fn parse_bool_option(name: &str, value: &str) -> Result<bool, String> {
    parse_bool(value).ok_or_else(|| {
        format!("{name}=\"{value}\" is not a boolean; accepted: true|false (also t|f, 1|0, yes|no)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(&args.iter().map(|arg| arg.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn defaults() {
        let options = parse(&[]).unwrap();
        assert_eq!(options, Options::default());
        assert_eq!(options.target, Target::All);
        assert!(!options.decides_notables());
        assert_eq!(options.status_map.lookup(Remote::Soar, "Closed"), Some(4));
        assert_eq!(options.status_map.lookup(Remote::Soar, "resolved"), None);
        assert_eq!(options.status_map.lookup(Remote::Stackflow, "closed"), Some(5));
        assert_eq!(options.status_map.lookup(Remote::Stackflow, "in_progress"), None);
    }

    #[test]
    fn every_option() {
        let options = parse(&[
            "target=soar",
            "update_notables=t",
            "dry_run=0",
            "account=emea-1",
            "status_map=closed:resolved,stackflow.closed:5,new:in progress",
            "comment=Closed in SOAR",
        ])
        .unwrap();
        assert_eq!(options.target, Target::Soar);
        assert!(options.update_notables && !options.dry_run && options.writes_notables());
        assert_eq!(options.account, "emea-1");
        assert_eq!(options.comment.as_deref(), Some("Closed in SOAR"));
        let map = &options.status_map;
        assert_eq!(map.lookup(Remote::Soar, "closed"), Some(4));
        assert_eq!(map.lookup(Remote::Stackflow, "closed"), Some(5));
        assert_eq!(map.lookup(Remote::Stackflow, "NEW"), Some(2));
        assert_eq!(map.lookup(Remote::Stackflow, "resolved"), None);
    }

    #[test]
    fn status_map_split_by_splunk_is_rejoined() {
        let options = parse(&["status_map=closed:4", "resolved:5", "dry_run=true"]).unwrap();
        assert_eq!(options.status_map.lookup(Remote::Stackflow, "resolved"), Some(5));
        assert!(options.dry_run && !options.writes_notables() && options.decides_notables());
    }

    #[test]
    fn bad_arguments_say_what_is_accepted() {
        let cases = [
            (vec!["bogus=1"], "unknown option \"bogus\"; accepted: target=soar|stackflow|all"),
            (
                vec!["target=jira"],
                "target=\"jira\" is not valid; accepted: target=soar|stackflow|all",
            ),
            (vec!["dry_run=maybe"], "dry_run=\"maybe\" is not a boolean; accepted: true|false"),
            (vec!["update_notables="], "update_notables=\"\" is not a boolean"),
            (
                vec!["status_map=closed"],
                "status_map entry \"closed\" has no ':'; expected <remote_status>:<es_status>",
            ),
            (vec!["status_map=closed:done"], "\"done\" is not an ES notable status"),
            (vec!["status_map=:4"], "names no remote status"),
            (vec!["status_map="], "status_map is empty"),
            (vec!["account=a b"], "account=\"a b\" is not valid"),
            (vec!["target=soar", "target=all"], "option target is given twice"),
            (vec!["soar"], "unexpected argument \"soar\" (expected name=value)"),
            (vec!["comment="], "comment is empty"),
        ];
        for (args, needle) in cases {
            let message = parse(&args).unwrap_err();
            assert!(message.contains(needle), "{args:?}: {message}");
        }
    }

    #[test]
    fn es_statuses_by_name_and_number() {
        assert_eq!(parse_es_status("Resolved"), Some(4));
        assert_eq!(parse_es_status("in progress"), Some(2));
        assert_eq!(parse_es_status("In_Progress"), Some(2));
        assert_eq!(parse_es_status(" 5 "), Some(5));
        assert_eq!(parse_es_status("7"), Some(7));
        assert_eq!(parse_es_status("done"), None);
        assert_eq!(es_status_label(2), "In Progress (2)");
        assert_eq!(es_status_label(4), "Resolved (4)");
        assert_eq!(es_status_label(9), "status 9");
    }
}
