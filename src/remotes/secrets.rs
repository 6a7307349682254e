//! The storage/passwords user names of every account's secrets (PRODUCT §3, §9, §13), in one
//! place: which names exist for a stanza kind, and whether a name given to
//! `stackflow secret set` is one of them.

/// `(stanza kind, user-name prefix, what it is)`: the user name is `<prefix>.<account>`.
pub const SECRETS: &[(&str, &str, &str)] = &[
    ("soar", "soar", "SOAR automation token (ph-auth-token)"),
    ("stackflow", "stackflow", "StackFlow webhook secret (X-StackFlow-Secret)"),
    ("stackflow", "stackflow_api", "StackFlow API token (read-back)"),
    ("slack", "slack", "Slack bot token"),
    ("slack", "slack_signing", "Slack signing secret"),
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
        assert_eq!(parse_user("slack_signing.x"), Ok(("slack", "x")));
        for bad in ["soar", "soar.", "soar.a b", "soar.a:b", "jira.default", "", "soar.a/b"] {
            assert!(parse_user(bad).is_err(), "{bad}");
        }
        let names: Vec<String> = users_of("stackflow", "a").into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["stackflow.a", "stackflow_api.a"]);
    }
}
