//! Triage templates (PRODUCT §16): `[triage:<name>]` stanzas of `stackflow.conf` — an SPL
//! `search` with `$field$` tokens, `earliest`, `latest`, `max_rows`, `timeout_s`, `label`,
//! `fields`, `summary`, `llm_account` — parsed and validated, and their tokens filled so that no
//! value can change the search's shape: each value goes in as an SPL quoted string, `"` and `\`
//! escaped, and a template whose tokens are not all known is not run.
//!
//! Pure: parsed from the already loaded configuration; no I/O. `render` turns the rows a search
//! answered into the thread reply.

pub mod render;

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::time::Duration;

pub const STANZA_PREFIX: &str = "triage:";
/// The token `/stackflow <template> <value>` fills.
pub const SLASH_TOKEN: &str = "value";
pub const DEFAULT_EARLIEST: &str = "-24h";
pub const DEFAULT_LATEST: &str = "now";
pub const DEFAULT_MAX_ROWS: usize = 1000;
/// The most rows a template may ask for: the listener's memory stays bounded (PRODUCT §18).
pub const MAX_ROWS_LIMIT: usize = 10_000;
pub const DEFAULT_TIMEOUT_S: f64 = 30.0;
pub const MAX_TIMEOUT_S: f64 = 300.0;
/// A template name is a word of the slash command (`/stackflow <name> …`).
pub const NAME_MAX: usize = 50;
/// A token's name: at most this many characters of `[A-Za-z0-9_.]`, not starting with a digit.
pub const TOKEN_NAME_MAX: usize = 64;
/// The button text limit of Block Kit (a label is a button's text).
pub const LABEL_MAX: usize = 75;
pub const SEARCH_MAX: usize = 10_000;
/// A filled value is cut to this many characters (a link record's values are shorter).
pub const VALUE_MAX: usize = 1000;

/// How the reply's summary is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SummaryKind {
    Template,
    Llm,
}

/// One `[triage:<name>]` stanza, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    pub name: String,
    pub search: String,
    pub earliest: String,
    pub latest: String,
    pub max_rows: usize,
    pub timeout: Duration,
    pub label: String,
    /// Result fields whose top values the reply shows (default: the token names).
    pub fields: Vec<String>,
    pub summary: SummaryKind,
    pub llm_account: String,
    /// The token names of `search`, in first-seen order.
    pub tokens: Vec<String>,
}

/// A piece of a template's search.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    /// `$$`: a literal dollar sign.
    Dollar,
    Token(&'a str),
}

fn valid_token_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= TOKEN_NAME_MAX
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// Splits a search into text, `$$` and `$name$` tokens; a `$` that opens no valid token is
/// an error naming it.
fn pieces(search: &str) -> std::result::Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = search;
    while let Some(at) = rest.find('$') {
        if at > 0 {
            out.push(Piece::Text(&rest[..at]));
        }
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push(Piece::Dollar);
            rest = tail;
            continue;
        }
        let Some(end) = after.find('$') else {
            return Err(format!(
                "a '$' opens a token that is never closed (near \"{}\"); write $$ for a literal $",
                crate::mapping::slack::truncate(&rest[at..], 30)
            ));
        };
        let name = &after[..end];
        if !valid_token_name(name) {
            return Err(format!(
                "\"${}$\" is not a token: a token is $name$ with a field name of letters, digits, _ and . (write $$ for a literal $)",
                crate::mapping::slack::truncate(name, 30)
            ));
        }
        out.push(Piece::Token(name));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

/// `value` as an SPL quoted string: `"` and `\` escaped with a backslash, nothing else
/// changed, so the value stays one quoted term whatever it holds.
pub fn spl_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The tokens a template needs that the context does not have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingTokens {
    pub template: String,
    pub tokens: Vec<String>,
}

impl std::fmt::Display for MissingTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.tokens.iter().map(|t| format!("${t}$")).collect();
        write!(
            f,
            "triage template \"{}\" was not run: no value for {}",
            self.template,
            names.join(", ")
        )
    }
}

impl std::error::Error for MissingTokens {}

impl Template {
    /// Reads one `[triage:<name>]` stanza; unknown keys and bad values are configuration
    /// errors naming the stanza and key.
    pub fn parse(name: &str, section: &BTreeMap<String, String>) -> Result<Template> {
        let stanza = format!("{STANZA_PREFIX}{name}");
        let name_ok = !name.is_empty()
            && name.chars().count() <= NAME_MAX
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && name != "help";
        if !name_ok {
            return Err(Error::config(
                &stanza,
                "",
                format!(
                    "\"{name}\" is not a template name: at most {NAME_MAX} letters, digits, _ or -, and not \"help\" (it is a word of /stackflow <template>)"
                ),
            ));
        }
        let get = |key: &str| section.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
        for key in section.keys() {
            if !crate::settings::keys::is_known(&stanza, key) {
                return Err(Error::config(
                    &stanza,
                    key,
                    "unknown key: a triage template has search, earliest, latest, max_rows, timeout_s, label, fields, summary, llm_account",
                ));
            }
        }
        let search = get("search").ok_or_else(|| {
            Error::config(&stanza, "search", "is required: the SPL to run, with $field$ tokens")
        })?;
        if search.chars().count() > SEARCH_MAX {
            return Err(Error::config(
                &stanza,
                "search",
                format!("is longer than {SEARCH_MAX} characters"),
            ));
        }
        let parts = pieces(search).map_err(|problem| Error::config(&stanza, "search", problem))?;
        if let Some(token) = quoted_token(&parts) {
            return Err(Error::config(
                &stanza,
                "search",
                format!(
                    "the token ${token}$ is inside a quoted string: write it bare (field=${token}$); values are quoted for you"
                ),
            ));
        }
        let mut tokens: Vec<String> = Vec::new();
        for piece in &parts {
            if let Piece::Token(name) = piece
                && !tokens.iter().any(|known| known == name)
            {
                tokens.push(name.to_string());
            }
        }
        let time = |key: &str, default: &str| -> Result<String> {
            let value = get(key).unwrap_or(default);
            let ok = value.chars().count() <= 64
                && value.chars().all(|c| c.is_ascii_alphanumeric() || "@+-:./".contains(c));
            if ok {
                Ok(value.to_string())
            } else {
                Err(Error::config(
                    &stanza,
                    key,
                    format!(
                        "\"{value}\" is not a Splunk time (e.g. -24h, -7d@d, now, an epoch or ISO time)"
                    ),
                ))
            }
        };
        let earliest = time("earliest", DEFAULT_EARLIEST)?;
        let latest = time("latest", DEFAULT_LATEST)?;
        let max_rows = match get("max_rows") {
            None => DEFAULT_MAX_ROWS,
            Some(value) => value
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_ROWS_LIMIT).contains(n))
                .ok_or_else(|| {
                    Error::config(
                        &stanza,
                        "max_rows",
                        format!("\"{value}\" is not a whole number between 1 and {MAX_ROWS_LIMIT}"),
                    )
                })?,
        };
        let timeout_s = match get("timeout_s") {
            None => DEFAULT_TIMEOUT_S,
            Some(value) => value
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n > 0.0 && *n <= MAX_TIMEOUT_S)
                .ok_or_else(|| {
                    Error::config(
                        &stanza,
                        "timeout_s",
                        format!(
                            "\"{value}\" is not a number of seconds above 0 and at most {MAX_TIMEOUT_S}"
                        ),
                    )
                })?,
        };
        let label = get("label").unwrap_or(name);
        if label.chars().count() > LABEL_MAX || label.chars().any(char::is_control) {
            return Err(Error::config(
                &stanza,
                "label",
                format!("is a button's text: at most {LABEL_MAX} characters on one line"),
            ));
        }
        let mut fields: Vec<String> = Vec::new();
        for field in get("fields").unwrap_or("").split(',').map(str::trim) {
            if field.is_empty() {
                continue;
            }
            if !valid_token_name(field) && !field.starts_with('_') {
                return Err(Error::config(
                    &stanza,
                    "fields",
                    format!("\"{field}\" is not a field name"),
                ));
            }
            if !fields.iter().any(|f| f == field) {
                fields.push(field.to_string());
            }
        }
        if fields.is_empty() {
            fields = tokens.iter().filter(|t| t.as_str() != SLASH_TOKEN).cloned().collect();
        }
        let summary = match get("summary").map(str::to_ascii_lowercase).as_deref() {
            None | Some("template") => SummaryKind::Template,
            Some("llm") => SummaryKind::Llm,
            Some(other) => {
                return Err(Error::config(
                    &stanza,
                    "summary",
                    format!("\"{other}\" is not template or llm"),
                ));
            }
        };
        let llm_account = get("llm_account").unwrap_or("default").to_string();
        let account_ok = llm_account.chars().count() <= NAME_MAX
            && llm_account.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !account_ok {
            return Err(Error::config(
                &stanza,
                "llm_account",
                format!("\"{llm_account}\" is not an [llm:<account>] name"),
            ));
        }
        Ok(Template {
            name: name.to_string(),
            search: search.to_string(),
            earliest,
            latest,
            max_rows,
            timeout: Duration::from_secs_f64(timeout_s),
            label: label.to_string(),
            fields,
            summary,
            llm_account,
            tokens,
        })
    }

    /// Every `[triage:<name>]` of the configuration, in name order; the first invalid one is
    /// the error.
    pub fn all(conf: &crate::splunk::conf::ConfFile) -> Result<Vec<Template>> {
        let mut names: Vec<&str> =
            conf.stanza_names().filter_map(|name| name.strip_prefix(STANZA_PREFIX)).collect();
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .filter_map(|name| {
                conf.stanza(&format!("{STANZA_PREFIX}{name}")).map(|section| (name, section))
            })
            .map(|(name, section)| Template::parse(name, section))
            .collect()
    }

    /// The valid templates in name order, and the errors of the others (an alert still posts
    /// when one template is broken; `stackflow check` reports it).
    pub fn valid(conf: &crate::splunk::conf::ConfFile) -> (Vec<Template>, Vec<Error>) {
        let mut names: Vec<&str> =
            conf.stanza_names().filter_map(|name| name.strip_prefix(STANZA_PREFIX)).collect();
        names.sort_unstable();
        names.dedup();
        let mut valid = Vec::new();
        let mut errors = Vec::new();
        for name in names {
            let Some(section) = conf.stanza(&format!("{STANZA_PREFIX}{name}")) else { continue };
            match Template::parse(name, section) {
                Ok(template) => valid.push(template),
                Err(error) => errors.push(error),
            }
        }
        (valid, errors)
    }

    /// One template by name.
    pub fn named(conf: &crate::splunk::conf::ConfFile, name: &str) -> Result<Option<Template>> {
        let stanza = format!("{STANZA_PREFIX}{name}");
        match conf.stanza(&stanza) {
            Some(section) => Template::parse(name, section).map(Some),
            None => Ok(None),
        }
    }

    /// The search with every token replaced by its value as an SPL quoted string. A token
    /// without a value (absent, or only blanks) is an error naming every such token: the
    /// template is not run.
    pub fn fill<'v>(
        &self,
        value_of: impl Fn(&str) -> Option<&'v str>,
    ) -> std::result::Result<String, MissingTokens> {
        // The template was validated when parsed; a search that no longer splits is a bug.
        let parts = pieces(&self.search).unwrap_or_else(|_| vec![Piece::Text(&self.search)]);
        let mut missing: Vec<String> = Vec::new();
        let mut out = String::with_capacity(self.search.len() + 64);
        for piece in parts {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Dollar => out.push('$'),
                Piece::Token(name) => match value_of(name).filter(|v| !v.trim().is_empty()) {
                    Some(value) => {
                        out.push_str(&spl_quote(&crate::mapping::slack::truncate(value, VALUE_MAX)))
                    }
                    None => {
                        if !missing.iter().any(|known| known == name) {
                            missing.push(name.to_string());
                        }
                    }
                },
            }
        }
        if missing.is_empty() {
            Ok(out)
        } else {
            Err(MissingTokens { template: self.name.clone(), tokens: missing })
        }
    }
}

/// The first token that sits inside a quoted string of the template's own text.
fn quoted_token<'a>(parts: &[Piece<'a>]) -> Option<&'a str> {
    let mut quoted = false;
    let mut escaped = false;
    for piece in parts {
        match piece {
            Piece::Text(text) => {
                for c in text.chars() {
                    if escaped {
                        escaped = false;
                    } else if quoted && c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        quoted = !quoted;
                    }
                }
            }
            Piece::Dollar => escaped = false,
            Piece::Token(name) if quoted => return Some(name),
            Piece::Token(_) => {}
        }
    }
    None
}

/// A search's shape: its terms outside quoted strings, and `"…"` for each quoted string — what
/// SPL's parser sees as commands, pipes, brackets and operators. Two searches of the same
/// shape differ only inside quoted strings.
pub fn spl_shape(search: &str) -> Vec<String> {
    let mut shape = Vec::new();
    let mut word = String::new();
    let mut chars = search.chars();
    let flush = |word: &mut String, shape: &mut Vec<String>| {
        if !word.is_empty() {
            shape.push(std::mem::take(word));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                flush(&mut word, &mut shape);
                // A quoted string: `\` escapes the next character; it ends at an unescaped `"`.
                let mut closed = false;
                while let Some(inner) = chars.next() {
                    match inner {
                        '\\' => {
                            chars.next();
                        }
                        '"' => {
                            closed = true;
                            break;
                        }
                        _ => {}
                    }
                }
                shape.push(if closed { "\"…\"".into() } else { "\"…(unclosed)".into() });
            }
            '|' | '[' | ']' | '(' | ')' | '=' | '`' => {
                flush(&mut word, &mut shape);
                shape.push(c.to_string());
            }
            c if c.is_whitespace() => flush(&mut word, &mut shape),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut shape);
    shape
}

#[cfg(test)]
mod tests;
