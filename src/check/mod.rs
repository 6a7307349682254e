//! The checks behind `stackflow check` and `| stackflowcheck`: validate the
//! configuration and reach every configured endpoint, without side effects, as one `Report`.
//!
//! Account settings are validated by the remotes' own account readers and opens (the very
//! code the alert actions and `spool flush` run), so that `check` and the actions can never
//! disagree; those opens also read the account's secret from storage/passwords. Endpoints are
//! probed read-only by each remote's `probe` (SOAR `/rest/version`, the StackFlow incidents
//! API, Slack `auth.test`); the StackFlow webhook is never called (that would create an
//! incident). The exit code is the worst failure by the PRODUCT §4 table (4 configuration,
//! 5 credentials, 7 unreachable). No secret is ever printed: they live in `Secret`s and only
//! reach request headers; URLs are shown without user info.
//!
//! (About 640 lines: one job, the list of checks; the report is `report.rs`, the search
//! command `search.rs`.)

mod report;
pub mod search;

pub use report::{Line, Report, Status, Subject};

use crate::error::{Error, ExitCode};
use crate::net::http::{HttpClient, HttpOptions};
use crate::net::redact_userinfo;
use crate::remotes::probe::ProbeResult;
use crate::remotes::slack::{self, SlackAccount, SlackApi};
use crate::remotes::soar::{self, SoarAccount, SoarApi};
use crate::remotes::splunkd::Splunkd;
use crate::remotes::stackflow::{self, StackflowAccount, StackflowApi};
use crate::remotes::url::RemoteUrl;
use crate::secret::Secret;
use crate::settings::Settings;
use crate::splunk::conf::ConfFile;
use crate::splunk::results::Limits;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// Runs every check; `session_key` empty means secrets cannot be read.
pub fn check(splunkd_uri: Option<&str>, session_key: String) -> Report {
    check_selected(splunkd_uri, session_key, &Selection::default())
}

/// Which accounts to check (`| stackflowcheck account=<name> kind=<kind>`); the app-wide
/// checks (settings, splunkd, spool, proxy, receipts) always run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// `soar`, `stackflow` or `slack`; `None` = all kinds.
    pub kind: Option<String>,
    pub account: Option<String>,
}

impl Selection {
    fn wants(&self, kind: &str, account: &str) -> bool {
        self.kind.as_deref().is_none_or(|wanted| wanted == kind)
            && self.account.as_deref().is_none_or(|wanted| wanted == account)
    }
}

/// Runs the checks of the accounts `selection` names (and every app-wide check).
pub fn check_selected(
    splunkd_uri: Option<&str>,
    session_key: String,
    selection: &Selection,
) -> Report {
    let mut report = Report::default();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            report.error("stackflow.conf", &error);
            return report;
        }
    };
    check_settings_selected(&mut report, &settings, splunkd_uri, session_key, selection);
    report
}

/// The checks on loaded settings (separate from `check` for the unit tests).
pub fn check_settings(
    report: &mut Report,
    settings: &Settings,
    splunkd_uri: Option<&str>,
    session_key: String,
) {
    check_settings_selected(report, settings, splunkd_uri, session_key, &Selection::default());
}

fn check_settings_selected(
    report: &mut Report,
    settings: &Settings,
    splunkd_uri: Option<&str>,
    session_key: String,
    selection: &Selection,
) {
    let local = conf_files(report, settings);
    check_known_keys(report, settings);
    check_delivery(report, settings);
    check_proxy(report, settings);
    check_receipts(report, settings);
    check_limits(report, settings);
    check_routes(report, settings);
    check_triage(report, settings);
    check_llm(report, settings);
    let secrets = check_splunkd(report, settings, splunkd_uri, session_key);
    let mut accounts = 0;
    for (kind, account) in accounts_of(settings) {
        let stanza = format!("{kind}:{account}");
        if !selection.wants(kind, &account) {
            continue;
        }
        if !in_use(settings, &local, kind, &stanza) {
            report.skip(&stanza, not_configured(kind, &stanza));
            continue;
        }
        accounts += 1;
        let Some(secrets) = &secrets else {
            report.fail(
                &stanza,
                "not checked: no splunkd client (see [splunkd])",
                ExitCode::Internal,
            );
            continue;
        };
        match kind {
            "soar" => check_soar(report, settings, secrets, &account),
            "stackflow" => check_stackflow(report, settings, secrets, &account),
            _ => check_slack(report, settings, secrets, &account),
        }
    }
    if let Some(account) = &selection.account
        && !accounts_of(settings)
            .iter()
            .any(|(kind, name)| name == account && selection.wants(kind, name))
    {
        let kinds = selection.kind.as_deref().map_or_else(
            || format!("[soar:{account}], [stackflow:{account}] or [slack:{account}]"),
            |kind| format!("[{kind}:{account}]"),
        );
        let stanza = format!("{}:{account}", selection.kind.as_deref().unwrap_or("all"));
        report.fail(
            &format!("[{stanza}]"),
            format!("configuration: no account \"{account}\": stackflow.conf has no {kinds}"),
            ExitCode::Configuration,
        );
        return;
    }
    if accounts == 0 && selection == &Selection::default() {
        report.warn(
            "accounts",
            "no SOAR, StackFlow or Slack account is configured: the alert actions have nowhere to send (set e.g. [soar:default] url in local/stackflow.conf)",
        );
    }
}

/// Where stackflow.conf was read from; returns the admin's `local/` layer.
fn conf_files(report: &mut Report, settings: &Settings) -> ConfFile {
    let Some(app_dir) = &settings.app_dir else {
        report.warn(
            "stackflow.conf",
            "the app directory was not found (run the installed binary, or set SPLUNK_HOME): only built-in defaults apply",
        );
        return ConfFile::default();
    };
    let local_path = app_dir.join("local").join(crate::settings::CONF_NAME);
    match ConfFile::read_layer(&local_path) {
        Ok(local) => {
            let which = if local_path.is_file() {
                format!("{} (default/ and local/)", app_dir.display())
            } else {
                format!("{} (default/ only: no local/stackflow.conf yet)", app_dir.display())
            };
            report.ok("stackflow.conf", format!("read from {which}"));
            local
        }
        Err(error) => {
            report.error("stackflow.conf", &error);
            ConfFile::default()
        }
    }
}

/// Unknown stanzas and keys are most often typos (`verfy_ssl`): they are ignored, so say so.
fn check_known_keys(report: &mut Report, settings: &Settings) {
    for name in settings.conf.stanza_names() {
        let Some(stanza) = settings.conf.stanza(name) else { continue };
        if name == "default" {
            if !stanza.is_empty() {
                report.warn(
                    "stackflow.conf",
                    "settings before the first [stanza] header are ignored",
                );
            }
            continue;
        }
        let what = format!("[{name}]");
        if name.starts_with(crate::mapping::route::STANZA_PREFIX)
            || name.starts_with(crate::mapping::triage::STANZA_PREFIX)
        {
            continue; // checked whole by check_routes / check_triage
        }
        let Some(kind) = crate::settings::keys::kind_of(name) else {
            let known: Vec<String> =
                crate::settings::keys::STANZAS.iter().map(|kind| kind.header()).collect();
            report.warn(&what, format!("unknown stanza, ignored (known: {})", known.join(" ")));
            continue;
        };
        let unknown: Vec<&str> =
            stanza.keys().map(String::as_str).filter(|key| !kind.knows(key)).collect();
        if !unknown.is_empty() {
            report.warn(
                &what,
                format!(
                    "unknown setting(s) ignored: {} (known: {})",
                    unknown.join(", "),
                    kind.spec_keys().join(", ")
                ),
            );
        }
    }
}

/// `[route:<name>]` (PRODUCT §13): each parses (known keys, valid values, an effect); a FAIL
/// names the stanza and key, since the Slack action would stop with exit 4.
fn check_routes(report: &mut Report, settings: &Settings) {
    let prefix = crate::mapping::route::STANZA_PREFIX;
    let mut names: Vec<&str> =
        settings.conf.stanza_names().filter_map(|name| name.strip_prefix(prefix)).collect();
    names.sort_unstable();
    for name in names {
        let what = format!("[{prefix}{name}]");
        let Some(section) = settings.conf.stanza(&format!("{prefix}{name}")) else { continue };
        match crate::mapping::route::Route::parse(name, section) {
            Ok(route) => {
                let effect = if route.suppress {
                    "suppress".to_string()
                } else {
                    route
                        .channel
                        .clone()
                        .map(|c| format!("to {c}"))
                        .unwrap_or_else(|| "effects only".into())
                };
                report.ok(
                    &what,
                    format!("route valid ({effect}); routes apply in name order, first match wins"),
                );
            }
            Err(error) => report.error(&what, &error),
        }
    }
}

/// `[triage:<name>]` templates and `[slack_response] max_concurrent_searches` (PRODUCT §16):
/// each template parses (known keys, valid values, tokens of the `$field$` syntax, none inside
/// a quoted string); a FAIL names the stanza and key, since the listener never runs it.
fn check_triage(report: &mut Report, settings: &Settings) {
    let prefix = crate::mapping::triage::STANZA_PREFIX;
    let mut names: Vec<&str> =
        settings.conf.stanza_names().filter_map(|name| name.strip_prefix(prefix)).collect();
    names.sort_unstable();
    for name in &names {
        let what = format!("[{prefix}{name}]");
        let Some(section) = settings.conf.stanza(&format!("{prefix}{name}")) else { continue };
        match crate::mapping::triage::Template::parse(name, section) {
            Ok(template) => {
                let llm = format!("llm:{}", template.llm_account);
                if template.summary == crate::mapping::triage::SummaryKind::Llm
                    && settings.conf.stanza(&llm).is_none()
                {
                    report.warn(
                        &what,
                        format!(
                            "summary = llm but there is no [{llm}]: the template sentence is used"
                        ),
                    );
                }
                let tokens: Vec<String> =
                    template.tokens.iter().map(|token| format!("${token}$")).collect();
                let tokens =
                    if tokens.is_empty() { "no tokens".to_string() } else { tokens.join(", ") };
                report.ok(
                    &what,
                    format!(
                        "triage template valid ({tokens}; {} to {}, at most {} rows in {} s)",
                        template.earliest,
                        template.latest,
                        template.max_rows,
                        template.timeout.as_secs_f64()
                    ),
                );
            }
            Err(error) => report.error(&what, &error),
        }
    }
    match settings.max_concurrent_searches() {
        Ok(most) if !names.is_empty() => report.ok(
            "[slack_response]",
            format!("at most {most} triage search(es) at once per listener"),
        ),
        Ok(_) => {}
        Err(error) => report.error("[slack_response]", &error),
    }
}

/// `[llm:<account>]` settings (the key is read at send time; a model outage never fails an
/// alert, so this checks the configuration only).
fn check_llm(report: &mut Report, settings: &Settings) {
    let names: Vec<&str> =
        settings.conf.stanza_names().filter_map(|name| name.strip_prefix("llm:")).collect();
    for name in names {
        let what = format!("[llm:{name}]");
        match crate::remotes::llm::LlmAccount::from_settings(settings, name) {
            Ok(account) => report.ok(
                &what,
                format!(
                    "model {} at {} (timeout {} s, redact_ips {})",
                    account.model,
                    account.url.origin(),
                    account.timeout.as_secs_f64(),
                    account.redact_ips
                ),
            ),
            Err(error) => report.error(&what, &error),
        }
    }
}

/// `[delivery]`: numbers in range, spool directory exists (or can be created) and is writable.
fn check_delivery(report: &mut Report, settings: &Settings) {
    let what = "[delivery]";
    let delivery = match settings.delivery() {
        Ok(delivery) => delivery,
        Err(error) => return report.error(what, &error),
    };
    let dir = &delivery.spool_dir;
    match probe_writable(dir) {
        Ok(()) => report.ok(
            what,
            format!(
                "spool {} writable; timeout {} s, {} attempt(s) per run",
                dir.display(),
                delivery.timeout.as_secs_f64(),
                delivery.max_attempts
            ),
        ),
        Err(problem) => report.fail(
            what,
            format!(
                "spool_dir {} is not usable: {problem}; undeliverable items could not be kept (set [delivery] spool_dir to a directory splunkd's user can write)",
                dir.display()
            ),
            ExitCode::Configuration,
        ),
    }
}

/// Creates `dir` if needed, writes a probe file and removes it.
fn probe_writable(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|error| format!("cannot create it: {error}"))?;
    let probe = dir.join(format!(".stackflow-check-{}.tmp", std::process::id()));
    let written = std::fs::File::create(&probe)
        .and_then(|mut file| file.write_all(b"stackflow check\n").and_then(|()| file.sync_all()));
    let removed = std::fs::remove_file(&probe);
    written.map_err(|error| format!("cannot write a file in it: {error}"))?;
    removed.map_err(|error| format!("cannot remove a file from it: {error}"))
}

/// `[proxy] url`: usable as a proxy URL; its user info is never printed.
fn check_proxy(report: &mut Report, settings: &Settings) {
    let what = "[proxy]";
    let Some(url) = settings.proxy() else {
        return report.ok(what, "no proxy: outbound calls go direct");
    };
    let options = HttpOptions {
        tls: crate::settings::TlsSettings { verify: true, ca_file: None },
        proxy: Some(url.clone()),
        timeout: Duration::from_secs(30),
    };
    match HttpClient::new(&options, "proxy") {
        Ok(_) => report.ok(
            what,
            format!("{} used for SOAR, StackFlow and Slack (not for splunkd)", redact_userinfo(&url)),
        ),
        Err(_) => report.fail(
            what,
            format!(
                "configuration: stackflow.conf [proxy] url: \"{}\" is not a usable proxy URL (expected http://host:port)",
                redact_userinfo(&url)
            ),
            ExitCode::Configuration,
        ),
    }
}

/// `[limits]`: the caps on results files are numbers (an invalid one would stop every alert).
fn check_limits(report: &mut Report, settings: &Settings) {
    match Limits::from_conf(&settings.conf) {
        Ok(limits) => report.ok(
            "[limits]",
            format!(
                "results files up to {} MiB decompressed, rows up to {} MiB, values up to {} MiB, {} fields",
                limits.max_results_bytes >> 20,
                limits.max_record_bytes >> 20,
                limits.max_field_bytes >> 20,
                limits.max_fields
            ),
        ),
        Err(error) => report.error("[limits]", &error),
    }
}

/// `[receipts] index`: a valid Splunk index name; warns when the app does not define it.
fn check_receipts(report: &mut Report, settings: &Settings) {
    let what = "[receipts]";
    let index = settings.receipts_index();
    let valid = index.len() <= 80
        && !index.starts_with(['_', '-'])
        && index
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && index != "kvstore";
    if !valid {
        return report.fail(
            what,
            format!(
                "configuration: stackflow.conf [receipts] index: \"{index}\" is not a valid index name (lowercase letters, digits, _ and -, not starting with _ or -)"
            ),
            ExitCode::Configuration,
        );
    }
    let defined = settings.app_dir.as_ref().is_some_and(|dir| {
        ["default", "local"].iter().any(|layer| {
            ConfFile::read_layer(&dir.join(layer).join("indexes.conf"))
                .is_ok_and(|conf| conf.has_stanza(&index))
        })
    });
    if defined {
        report.ok(what, format!("receipts go to index {index} (defined by the app)"));
    } else {
        report.warn(
            what,
            format!(
                "receipts go to index {index}, which this app does not define: make sure it exists on the indexers, or receipts are dropped"
            ),
        );
    }
}

/// How account checks read secrets: a usable splunkd, or why there is none.
struct Secrets {
    splunkd: Splunkd,
    /// Set when secrets cannot be read: the failure's code and reason.
    blocked: Option<(ExitCode, String)>,
}

/// A `Splunkd` that fails every call at once (no network): the targets' opens still validate
/// every setting and stop at the secret read, which then reports `Unavailable`.
fn unreachable_splunkd() -> Option<Splunkd> {
    let settings = Settings::from_conf(ConfFile::default(), None, None);
    Splunkd::new(&settings, "unreachable:", Secret::new("")).ok()
}

/// `[splunkd]`: settings, reachable, session key accepted (`authentication/current-context`).
fn check_splunkd(
    report: &mut Report,
    settings: &Settings,
    splunkd_uri: Option<&str>,
    session_key: String,
) -> Option<Secrets> {
    let what = "[splunkd]";
    let configured = match splunkd_uri.map(str::trim).filter(|uri| !uri.is_empty()) {
        Some(uri) => RemoteUrl::setting("splunkd", "uri (--splunkd-uri)", uri),
        None => RemoteUrl::setting("splunkd", "uri", &settings.splunkd_uri()),
    };
    let blocked = |report: &mut Report, code: ExitCode, reason: String| {
        report.fail(what, reason.clone(), code);
        unreachable_splunkd().map(|splunkd| Secrets { splunkd, blocked: Some((code, reason)) })
    };
    let uri = match configured {
        Ok(uri) => uri,
        Err(error) => return blocked(report, error.exit_code(), error.to_string()),
    };
    if let Err(error) = settings.tls("splunkd", false) {
        return blocked(report, error.exit_code(), error.to_string());
    }
    if session_key.is_empty() {
        let reason = format!(
            "no splunkd session key on stdin: secrets cannot be read from storage/passwords at {uri} (pipe one: `echo $SESSION_KEY | stackflow check`)"
        );
        return blocked(report, ExitCode::Credentials, reason);
    }
    let splunkd = match Splunkd::new(settings, uri.as_str(), Secret::new(session_key)) {
        Ok(splunkd) => splunkd,
        Err(error) => return blocked(report, error.exit_code(), error.to_string()),
    };
    match splunkd.current_context() {
        Ok(context) => {
            let user = context.map(|context| context.username).unwrap_or_else(|| "?".into());
            report.ok(what, format!("{uri} reachable, session key accepted (user {user})"));
            Some(Secrets { splunkd, blocked: None })
        }
        Err(error) => {
            // A refusal that is neither the key nor the certificate means the URI points at
            // something that is not splunkd's management port: configuration.
            let code = match error.exit_code() {
                ExitCode::Rejected | ExitCode::Internal => ExitCode::Configuration,
                other => other,
            };
            blocked(report, code, format!("splunkd {uri}: {error}"))
        }
    }
}

/// `(kind, account)` of every account stanza, in conf order.
fn accounts_of(settings: &Settings) -> Vec<(&'static str, String)> {
    let mut accounts = Vec::new();
    for kind in ["soar", "stackflow", "slack"] {
        let prefix = format!("{kind}:");
        for name in settings.conf.stanza_names() {
            if let Some(account) = name.strip_prefix(prefix.as_str()) {
                accounts.push((kind, account.to_string()));
            }
        }
    }
    accounts
}

/// An account is in use when the admin configured it (its stanza is in local/) or its
/// endpoint is set; the shipped, empty `[<kind>:default]` stanzas are not.
fn in_use(settings: &Settings, local: &ConfFile, kind: &str, stanza: &str) -> bool {
    let endpoint_keys: &[&str] = match kind {
        "soar" => &["url"],
        "stackflow" => &["webhook_url", "api_url"],
        _ => &[],
    };
    local.has_stanza(stanza)
        || endpoint_keys.iter().any(|key| settings.conf.get_nonempty(stanza, key).is_some())
}

fn not_configured(kind: &str, stanza: &str) -> String {
    match kind {
        "soar" => format!("not configured ([{stanza}] url is empty): skipped"),
        "stackflow" => {
            format!("not configured ([{stanza}] webhook_url and api_url are empty): skipped")
        }
        _ => format!("not configured (no [{stanza}] in local/stackflow.conf): skipped"),
    }
}

/// What an open's error means for the line: configuration stays configuration; anything
/// else while secrets are blocked is "settings valid, secret not read".
fn open_failed(report: &mut Report, what: &str, secrets: &Secrets, user: &str, error: &Error) {
    match (&secrets.blocked, error) {
        (_, Error::Config { .. }) => report.error(what, error),
        (Some((code, reason)), _) => report.fail(
            what,
            format!("settings valid; secret \"{user}\" not read: {}", short_reason(reason)),
            *code,
        ),
        (None, _) => report.error(what, error),
    }
}

/// A blocked-splunkd reason, cut to its first sentence (the full text is on the [splunkd]
/// line). Cut at a sentence or clause end, never at a `:` inside a URL.
fn short_reason(reason: &str) -> String {
    let first = reason.find(['(', ';']).map(|end| reason[..end].trim_end()).unwrap_or(reason);
    format!("{first} (see [splunkd])")
}

/// A probe's result as the account's line.
fn probed(report: &mut Report, what: &str, result: ProbeResult) {
    match result {
        Ok(note) => report.ok(what, note),
        Err(failure) => report.fail(what, failure.reason, failure.code),
    }
}

fn check_soar(report: &mut Report, settings: &Settings, secrets: &Secrets, account: &str) {
    let what = SoarAccount::stanza_of(account);
    let user = SoarAccount::secret_user_of(account);
    match SoarApi::open(settings, &secrets.splunkd, account) {
        Ok(api) => probed(report, &what, soar::probe::probe(&api)),
        Err(error) => open_failed(report, &what, secrets, &user, &error),
    }
}

fn check_stackflow(report: &mut Report, settings: &Settings, secrets: &Secrets, account: &str) {
    let stanza = StackflowAccount::stanza_of(account);
    let webhook_what = format!("{stanza} webhook");
    let parsed = match StackflowAccount::from_settings(settings, account) {
        Ok(parsed) => parsed,
        Err(error) => return report.error(&webhook_what, &error),
    };
    let user = StackflowAccount::webhook_secret_user_of(account);
    match &parsed.webhook {
        None if parsed.api_url_set => report.warn(
            &webhook_what,
            format!("webhook_url not set: the \"Create StackFlow incident\" action cannot use account {account} (read-back only)"),
        ),
        _ => match stackflow::write::StackflowTarget::open(account, settings, &secrets.splunkd) {
            Ok(_) => report.ok(
                &webhook_what,
                format!(
                    "{}: settings valid, secret \"{user}\" stored; not called (check creates no test incident)",
                    parsed.webhook.as_ref().map(RemoteUrl::as_str).unwrap_or_default()
                ),
            ),
            Err(error) => open_failed(report, &webhook_what, secrets, &user, &error),
        },
    }
    if !parsed.api_url_set {
        return;
    }
    let api_what = format!("{stanza} api");
    let api_user = StackflowAccount::api_secret_user_of(account);
    match StackflowApi::open(settings, &secrets.splunkd, account) {
        Ok(api) => probed(report, &api_what, stackflow::probe::probe_api(&api)),
        Err(error) => open_failed(report, &api_what, secrets, &api_user, &error),
    }
}

fn check_slack(report: &mut Report, settings: &Settings, secrets: &Secrets, account: &str) {
    let what = SlackAccount::stanza_of(account);
    let user = SlackAccount::secret_user_of(account);
    match SlackApi::open(settings, &secrets.splunkd, account) {
        Ok(api) => {
            // The response buttons are set up when the listener's app-level token is stored.
            let app_token = slack::socket::app_token_user_of(account);
            let buttons = secrets.splunkd.secret(&app_token).is_ok();
            let features = slack::probe::Features {
                buttons,
                ..slack::manifest::configured_features(settings)
            };
            let (result, warnings) = slack::probe::check(&api, features);
            probed(report, &what, result);
            for warning in warnings {
                report.warn(&what, warning);
            }
        }
        Err(error) => open_failed(report, &what, secrets, &user, &error),
    }
}

#[cfg(test)]
mod tests;
