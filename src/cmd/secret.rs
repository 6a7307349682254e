//! `stackflow secret set|list`: an admin stores an account's secret in storage/passwords
//! (realm `stackflow`, the PRODUCT §3 user names) and sees which are set, without curl.
//!
//! Both read the splunkd session key as the first line of stdin (as `spool flush` does); `set`
//! reads the secret as the second line. Neither ever takes a secret from argv (where `ps` and
//! shell history would show it), prints one, or puts one in a URL: the write goes through the
//! one splunkd client (`Splunkd::store_secret`, the secret in the form body), and `list` reads
//! names only.
//!
//! Exit codes: 0 done, 2 bad invocation (unknown user name, no secret on stdin), 4
//! configuration (splunkd URI or certificate), 5 credentials (no session key, refused), 6
//! splunkd refused the write, 7 splunkd unreachable now.

use crate::cli::SecretCommand;
use crate::error::{Error, ExitCode, Result};
use crate::logging;
use crate::remotes::secrets;
use crate::remotes::splunkd::{REALM, Splunkd};
use crate::secret::Secret;
use crate::settings::Settings;
use std::io::{BufRead, IsTerminal, Read, Write};

/// A session key or a secret is one line; anything longer than this is not one.
const MAX_LINE: u64 = 64 * 1024;

pub fn run(command: SecretCommand) -> ExitCode {
    logging::init(false);
    let result = match command {
        SecretCommand::Set { user, splunkd_uri } => set(&user, splunkd_uri.as_deref()),
        SecretCommand::List { splunkd_uri } => list(splunkd_uri.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::Success,
        Err(error) => error.report(),
    }
}

/// Reads the next line of at most [`MAX_LINE`] bytes, without its line ending.
fn read_line(input: &mut impl BufRead, what: &str) -> Result<String> {
    let mut line = Vec::new();
    input.take(MAX_LINE + 1).read_until(b'\n', &mut line).map_err(|error| {
        Error::Invocation(format!("cannot read the {what} from stdin: {error}"))
    })?;
    if line.len() as u64 > MAX_LINE {
        return Err(Error::Invocation(format!(
            "the {what} on stdin is longer than {MAX_LINE} bytes"
        )));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    String::from_utf8(line)
        .map_err(|_| Error::Invocation(format!("the {what} on stdin is not UTF-8")))
}

fn session_key(input: &mut impl BufRead, command: &str) -> Result<Secret> {
    let key = read_line(input, "session key")?;
    let key = key.trim();
    if key.is_empty() {
        return Err(Error::Credentials(format!(
            "no splunkd session key on stdin (first line): `stackflow secret {command}` needs one to reach storage/passwords"
        )));
    }
    Ok(Secret::new(key))
}

fn splunkd(settings: &Settings, splunkd_uri: Option<&str>, key: Secret) -> Result<Splunkd> {
    Splunkd::new(settings, splunkd_uri.unwrap_or(""), key)
}

fn set(user: &str, splunkd_uri: Option<&str>) -> Result<()> {
    secrets::parse_user(user)
        .map_err(|problem| Error::Invocation(format!("secret set: {problem}")))?;
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(Error::Invocation(
            "secret set reads the session key and the secret from stdin (two lines), never from the command line or a terminal echo: e.g. `read -rs TOKEN; printf '%s\\n%s\\n' \"$SESSION_KEY\" \"$TOKEN\" | stackflow secret set soar.default`".into(),
        ));
    }
    let mut input = stdin.lock();
    let key = session_key(&mut input, "set")?;
    let value = read_line(&mut input, "secret (second line)")?;
    if value.trim().is_empty() {
        return Err(Error::Invocation(format!(
            "secret set {user}: no secret on the second line of stdin; nothing was stored"
        )));
    }
    let settings = Settings::load()?;
    let splunkd = splunkd(&settings, splunkd_uri, key)?;
    let created = splunkd.store_secret(user, &Secret::new(value))?;
    let done = if created { "created" } else { "updated" };
    log::info!("secret {REALM}:{user} {done} in storage/passwords at {}", splunkd.base_url());
    write_stdout(&format!("{done} {REALM}:{user}\n"))
}

fn list(splunkd_uri: Option<&str>) -> Result<()> {
    let mut input = std::io::stdin().lock();
    let key = if std::io::stdin().is_terminal() {
        Secret::new("")
    } else {
        session_key(&mut input, "list")?
    };
    if key.expose().is_empty() {
        return Err(Error::Credentials(
            "no splunkd session key on stdin: `echo $SESSION_KEY | stackflow secret list`".into(),
        ));
    }
    let settings = Settings::load()?;
    let stored = splunkd(&settings, splunkd_uri, key)?.secret_names()?;
    let mut rows: Vec<(String, String, String)> = Vec::new();
    for name in settings.conf.stanza_names() {
        let Some((kind, account)) = name.split_once(':') else { continue };
        for (user, what) in secrets::users_of(kind, account) {
            let state = if stored.contains(&user) { "stored" } else { "not set" };
            rows.push((state.into(), user, format!("[{name}] {what}")));
        }
    }
    for user in &stored {
        if !rows.iter().any(|(_, listed, _)| listed == user) {
            rows.push(("stored".into(), user.clone(), "no such account in stackflow.conf".into()));
        }
    }
    let width = rows.iter().map(|(_, user, _)| user.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (state, user, what) in &rows {
        out.push_str(&format!("{state:<7}  {user:<width$}  {what}\n"));
    }
    write_stdout(&out)
}

fn write_stdout(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|error| Error::Internal(format!("cannot write to stdout: {error}")))
}
