//! The storage/passwords user names of every account's secrets (PRODUCT §3, §9, §13), in one
//! place: which names exist for a stanza kind, and whether a name given to
//! `stackflow secret set` is one of them.
//!
//! The rule for account names lives here alone (PRODUCT §15, "Account names are checked
//! everywhere"): the CLI, the alert actions, `spool flush`, `| stackflowsync`, the state input,
//! the Socket Mode listener and the secret read itself all call [`valid_account`] /
//! [`check_account`], so that a name like `a:b` never reaches storage/passwords.

/// `(stanza kind, user-name prefix, what it is)`: the user name is `<prefix>.<account>`.
pub const SECRETS: &[(&str, &str, &str)] = &[
    ("soar", "soar", "SOAR automation token (ph-auth-token)"),
    ("stackflow", "stackflow", "StackFlow webhook secret (X-StackFlow-Secret)"),
    ("stackflow", "stackflow_api", "StackFlow API token (read-back)"),
    ("slack", "slack", "Slack bot token"),
    ("slack", "slack_app", "Slack app-level token (Socket Mode)"),
    ("llm", "llm", "LLM endpoint API key"),
];

/// The user names of the secrets of account `[<kind>:<account>]`, with what each is.
pub fn users_of(kind: &str, account: &str) -> Vec<(String, &'static str)> {
    SECRETS
        .iter()
        .filter(|(of, _, _)| *of == kind)
        .map(|(_, prefix, what)| (format!("{prefix}.{account}"), *what))
        .collect()
}

/// An account name as it may follow `<kind>:` in a stanza and `<prefix>.` in a user name:
/// 1–64 letters, digits, `_`, `-` or `.`.
pub fn valid_account(account: &str) -> bool {
    !account.is_empty()
        && account.len() <= 64
        && account.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// The first words of every invalid-account message, so that a caller that only sees the
/// message (the search command protocol carries text) can still tell it is a configuration
/// problem (exit 4).
pub const INVALID_ACCOUNT: &str = "invalid account name";

/// Why `account` is not a valid account name, or `None` when it is one.
pub fn account_problem(account: &str) -> Option<String> {
    if valid_account(account) {
        return None;
    }
    // Debug-quoted and cut: the name is untrusted text headed for splunkd.log.
    let shown: String = account.chars().take(80).collect();
    Some(format!(
        "{INVALID_ACCOUNT} {shown:?}: an account name is 1-64 letters, digits, '_', '-' or '.' \
         (the name of a [<kind>:<account>] stanza of stackflow.conf)"
    ))
}

/// `Ok(())` for a valid account name, else a configuration error (exit 4) naming where it came
/// from (`origin`: "the alert's account parameter", …). Called before any secret is read.
pub fn check_account(account: &str, origin: &str) -> crate::error::Result<()> {
    match account_problem(account) {
        None => Ok(()),
        Some(problem) => Err(crate::error::Error::Config {
            file: origin.to_string(),
            stanza: String::new(),
            key: String::new(),
            problem,
        }),
    }
}

/// Whether a storage/passwords user name `<prefix>.<account>` carries a valid account name
/// (the prefix itself is the program's own text).
pub fn valid_user(user: &str) -> bool {
    user.split_once('.').is_some_and(|(prefix, account)| {
        !prefix.is_empty()
            && prefix.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
            && valid_account(account)
    })
}

/// `Ok((kind, account))` when `user` is `<prefix>.<account>` for a known prefix, else why not.
pub fn parse_user(user: &str) -> Result<(&'static str, &str), String> {
    let known =
        || SECRETS.iter().map(|(_, prefix, _)| format!("{prefix}.<account>")).collect::<Vec<_>>();
    // Longest prefix first: `stackflow_api.x` is not `stackflow.` + `_api.x`.
    let mut by_length: Vec<&(&str, &str, &str)> = SECRETS.iter().collect();
    by_length.sort_by_key(|(_, prefix, _)| std::cmp::Reverse(prefix.len()));
    for (kind, prefix, _) in by_length {
        if let Some(account) = user.strip_prefix(prefix).and_then(|rest| rest.strip_prefix('.')) {
            if valid_account(account) {
                return Ok((kind, account));
            }
            return Err(format!(
                "\"{account}\" is not a valid account name (1-64 letters, digits, '_', '-', '.')"
            ));
        }
    }
    Err(format!(
        "\"{user}\" is not a StackFlow secret name; expected one of {}",
        known().join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_name_their_kind_and_account() {
        assert_eq!(parse_user("soar.default"), Ok(("soar", "default")));
        assert_eq!(parse_user("stackflow_api.emea"), Ok(("stackflow", "emea")));
        assert_eq!(parse_user("stackflow.emea-1"), Ok(("stackflow", "emea-1")));
        assert_eq!(parse_user("slack_app.x"), Ok(("slack", "x")));
        assert!(parse_user("slack_signing.x").is_err(), "a secret the product never uses");
        for bad in ["soar", "soar.", "soar.a b", "soar.a:b", "jira.default", "", "soar.a/b"] {
            assert!(parse_user(bad).is_err(), "{bad}");
        }
        assert!(valid_user("slack_app.x-1") && valid_user("llm.a.b"));
        for bad in
            ["soar.a:b", "soar.", "soar", ".x", "soar.a%3Ab", &format!("soar.{}", "a".repeat(65))]
        {
            assert!(!valid_user(bad), "{bad}");
        }
        assert!(account_problem(&"a".repeat(64)).is_none());
        let problem = account_problem("a:b").unwrap();
        assert!(problem.starts_with(INVALID_ACCOUNT), "{problem}");
        let error = check_account("a\nb", "alert").unwrap_err();
        assert_eq!(error.exit_code(), crate::error::ExitCode::Configuration);
        assert!(!error.to_string().contains('\n'), "{error}");
        let names: Vec<String> = users_of("stackflow", "a").into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["stackflow.a", "stackflow_api.a"]);
    }
}
