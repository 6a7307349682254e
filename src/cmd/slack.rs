//! `stackflow slack manifest` prints the Slack app manifest for the configured features
//! (`remotes::slack::manifest`). `stackflow slack listen`: the `stackflow_slack_socket` modular input as splunkd runs it
//! (`--scheme`, `--validate-arguments`, or the XML configuration on stdin), or a manual run
//! with `--account` and the session key on stdin. Glue only: the protocol is
//! `splunk::modinput`, the connection `remotes::slack::socket`, the work `respond`.

use crate::cli::SlackCommand;
use crate::error::ExitCode;
use crate::logging;
use crate::remotes::splunkd::Splunkd;
use crate::secret::Secret;
use crate::settings::Settings;
use crate::splunk::modinput::{self, Arg, Mode, Scheme, Stanza};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The scheme name (inputs.conf `[stackflow_slack_socket://<account>]`).
pub const SCHEME: &str = "stackflow_slack_socket";

fn scheme() -> Scheme {
    Scheme {
        title: "StackFlow Slack buttons (Socket Mode)",
        description: "Keeps a Slack Socket Mode connection open and acts on the buttons of StackFlow's Slack messages.",
        use_external_validation: true,
        use_single_instance: false,
        args: vec![Arg {
            name: "account",
            title: "Account",
            description: "The [slack:<account>] stanza to listen for (default: the input's name).",
            data_type: "string",
            required_on_create: false,
        }],
    }
}

/// `stackflow slack manifest`: the manifest for the configured features on stdout.
fn manifest(account: Option<&str>) -> ExitCode {
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => return error.report(),
    };
    if let Some(account) = account {
        if let Some(problem) = crate::remotes::secrets::account_problem(account) {
            log::error!("--account {account:?}: {problem}");
            return ExitCode::Configuration;
        }
        if let Err(error) = crate::remotes::slack::SlackAccount::from_settings(&settings, account) {
            return error.report();
        }
    }
    let features = crate::remotes::slack::manifest::configured_features(&settings);
    let manifest = crate::remotes::slack::manifest::manifest(features, true);
    let text = serde_json::to_string_pretty(&manifest).unwrap_or_default();
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{text}").is_err() {
        return ExitCode::Internal;
    }
    ExitCode::Success
}

/// The account of a stanza: its `account` param, else its name.
fn account_of(stanza: &Stanza) -> Result<String, String> {
    let account = stanza.param("account").unwrap_or(stanza.input_name()).trim().to_string();
    crate::remotes::secrets::account_problem(&account).map_or(Ok(account), Err)
}

pub fn run(command: SlackCommand) -> ExitCode {
    logging::init(false);
    let (account, splunkd_uri, scheme_flag, validate_arguments) = match command {
        SlackCommand::Listen { account, splunkd_uri, scheme, validate_arguments } => {
            (account, splunkd_uri, scheme, validate_arguments)
        }
        SlackCommand::Manifest { account } => return manifest(account.as_deref()),
    };
    let mode = match super::modinput_mode(scheme_flag, validate_arguments, scheme) {
        Ok(mode) => mode,
        Err(code) => return code,
    };
    if let Some(account) = account {
        if mode != Mode::Run {
            log::error!("--account is for a manual run, without --validate-arguments");
            return ExitCode::BadInvocation;
        }
        let key = super::spool::read_session_key();
        if key.is_empty() {
            log::error!("no splunkd session key on stdin (first line)");
            return ExitCode::Credentials;
        }
        let uri = splunkd_uri.unwrap_or_default();
        return listen(&uri, Secret::new(key), &[account], None);
    }
    let definition = match super::modinput_definition(mode) {
        Ok(definition) => definition,
        Err(code) => return code,
    };
    let mut stdout = std::io::stdout().lock();
    let mut accounts = Vec::new();
    for stanza in &definition.stanzas {
        let disabled = stanza.param("disabled").is_some_and(|v| matches!(v, "1" | "true" | "True"));
        match account_of(stanza) {
            Ok(account) if !disabled => accounts.push(account),
            Ok(_) => {}
            Err(problem) => {
                if mode == Mode::Validate {
                    let _ = stdout.write_all(modinput::validation_error(&problem).as_bytes());
                }
                log::error!("{SCHEME}://{}: {problem}", stanza.input_name());
                return if mode == Mode::Validate {
                    ExitCode::BadInvocation
                } else {
                    ExitCode::Configuration
                };
            }
        }
    }
    if mode == Mode::Validate {
        return ExitCode::Success;
    }
    drop(stdout);
    if accounts.is_empty() {
        log::info!("{SCHEME}: no enabled input in the configuration; nothing to do");
        return ExitCode::Success;
    }
    let checkpoint_dir = Some(definition.checkpoint_dir.trim())
        .filter(|dir| !dir.is_empty())
        .map(std::path::PathBuf::from);
    listen(&definition.server_uri, definition.session_key, &accounts, checkpoint_dir)
}

/// One listener per account (each on its own thread), until SIGTERM / SIGINT or the parent
/// process goes away (splunkd's teardown; stdin is at its end after the configuration and
/// says nothing), or splunkd refuses the session key: then the clicks in hand are kept
/// (`checkpoint_dir`, else `$SPLUNK_HOME/var/lib/splunk/modinputs/stackflow_slack_socket`),
/// a FATAL line names the expired session and the exit is non-zero, so that splunkd
/// (`interval = 0`) starts the input again with a fresh key (PRODUCT §15).
fn listen(
    server_uri: &str,
    session_key: Secret,
    accounts: &[String],
    checkpoint_dir: Option<std::path::PathBuf>,
) -> ExitCode {
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => return error.report(),
    };
    let splunkd = match Splunkd::new(&settings, server_uri, session_key) {
        Ok(splunkd) => splunkd,
        Err(error) => return error.report(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(error) = signal_hook::flag::register(signal, stop.clone()) {
            log::warn!("cannot watch signal {signal}: {error}");
        }
    }
    watch_parent(stop.clone());
    let checkpoint_dir = checkpoint_dir.or_else(|| {
        let home = settings.splunk_home.as_ref()?;
        Some(home.join("var/lib/splunk/modinputs").join(SCHEME))
    });
    let settings = Arc::new(settings);
    let expiry = crate::respond::Expiry::default();
    let workers: Vec<_> = accounts
        .iter()
        .map(|account| {
            let (settings, splunkd, stop, account, expiry) =
                (settings.clone(), splunkd.clone(), stop.clone(), account.clone(), expiry.clone());
            // Accounts keep their clicks apart.
            let dir = checkpoint_dir.as_ref().map(|dir| dir.join(&account));
            std::thread::spawn(move || {
                crate::respond::listen(&settings, &splunkd, &account, dir, &stop, &expiry)
            })
        })
        .collect();
    let mut code = ExitCode::Success;
    for worker in workers {
        code = code.worst(worker.join().unwrap_or(ExitCode::Internal));
    }
    stop.store(true, Ordering::SeqCst);
    let expired = expiry.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    if let Some(why) = expired {
        logging::fatal(&format!(
            "{SCHEME}: splunkd session expired: splunkd refused the session key this input was \
             started with ({why}); the clicks in hand are kept and will be acted on once after \
             the restart; exiting so that splunkd starts the input again with a fresh session key"
        ));
        return ExitCode::Credentials;
    }
    code
}

/// Raises `stop` when the parent process changes (POSIX: the input was orphaned).
fn watch_parent(stop: Arc<AtomicBool>) {
    #[cfg(unix)]
    {
        let parent = std::os::unix::process::parent_id();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if std::os::unix::process::parent_id() != parent {
                    log::info!("{SCHEME}: parent process gone; stopping");
                    stop.store(true, Ordering::SeqCst);
                }
                std::thread::sleep(crate::respond::listener::POLL);
            }
        });
    }
    #[cfg(not(unix))]
    let _ = stop;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_of_stanzas() {
        let stanza = |name: &str, account: Option<&str>| Stanza {
            name: format!("{SCHEME}://{name}"),
            app: "stackflow".into(),
            params: account.map(|a| ("account".to_string(), a.to_string())).into_iter().collect(),
        };
        assert_eq!(account_of(&stanza("default", None)).unwrap(), "default");
        assert_eq!(account_of(&stanza("x", Some("soc-2"))).unwrap(), "soc-2");
        assert!(account_of(&stanza("x", Some("a/b"))).is_err());
        assert!(account_of(&stanza("x", Some(&"a".repeat(101)))).is_err());
    }
}
