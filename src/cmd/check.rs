//! `stackflow check`: validate the configuration and reach every configured endpoint, without
//! side effects, and print one `OK|WARN|FAIL  <what>  <detail>` line per check on stdout.
//!
//! Account settings are validated by the targets' own `open` functions (the very code the
//! alert actions and `spool flush` run), so that `check` and the actions can never disagree;
//! those opens also read the account's secret from storage/passwords. Endpoints are probed
//! read-only: SOAR `GET /rest/version` (else `GET /rest/container?page_size=1`), the StackFlow
//! API `GET /incidents?limit=1`, Slack `auth.test`. The StackFlow webhook is never called (that
//! would create an incident). Results are classified by `delivery::classify`; the exit code is
//! the worst failure by the PRODUCT §4 table (4 configuration, 5 credentials, 7 unreachable).
//! No secret is ever printed: they live in `Secret`s and only reach request headers.

use crate::delivery::classify::{StatusClass, classify_status, classify_transport};
use crate::delivery::http::{HttpClient, HttpOptions, HttpResponse};
use crate::delivery::{Outcome, RejectClass};
use crate::error::{Error, ExitCode};
use crate::logging;
use crate::secret::Secret;
use crate::settings::Settings;
use crate::splunk::conf::ConfFile;
use crate::splunk::rest::Splunkd;
use crate::targets::slack::SlackTarget;
use crate::targets::soar::SoarTarget;
use crate::targets::stackflow::{self, StackflowApi, StackflowTarget};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

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
    fn push(&mut self, status: Status, what: &str, detail: impl Into<String>, code: ExitCode) {
        self.lines.push(Line { status, what: what.to_string(), detail: detail.into(), code });
    }

    fn ok(&mut self, what: &str, detail: impl Into<String>) {
        self.push(Status::Ok, what, detail, ExitCode::Success);
    }

    fn warn(&mut self, what: &str, detail: impl Into<String>) {
        self.push(Status::Warn, what, detail, ExitCode::Success);
    }

    fn fail(&mut self, what: &str, detail: impl Into<String>, code: ExitCode) {
        self.push(Status::Fail, what, detail, code);
    }

    fn error(&mut self, what: &str, error: &Error) {
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

pub fn run(splunkd_uri: Option<String>) -> ExitCode {
    logging::init(false);
    let session_key = super::spool::read_session_key();
    let report = check(splunkd_uri.as_deref(), session_key);
    let code = report.exit_code();
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(report.render().as_bytes()).and_then(|()| stdout.flush()).is_err() {
        return ExitCode::Internal;
    }
    if code == ExitCode::Success {
        log::info!("check: {}", report.summary());
    } else {
        log::error!("check: {}", report.summary());
    }
    code
}

/// Runs every check; `session_key` empty means secrets cannot be read.
pub fn check(splunkd_uri: Option<&str>, session_key: String) -> Report {
    let mut report = Report::default();
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            report.error("stackflow.conf", &error);
            return report;
        }
    };
    check_settings(&mut report, &settings, splunkd_uri, session_key);
    report
}

/// The checks on loaded settings (separate from `check` for the unit tests).
pub fn check_settings(
    report: &mut Report,
    settings: &Settings,
    splunkd_uri: Option<&str>,
    session_key: String,
) {
    let local = conf_files(report, settings);
    check_known_keys(report, settings);
    check_delivery(report, settings);
    check_proxy(report, settings);
    check_receipts(report, settings);
    let secrets = check_splunkd(report, settings, splunkd_uri, session_key);
    let mut accounts = 0;
    for (kind, account) in accounts_of(settings) {
        let stanza = format!("{kind}:{account}");
        if !in_use(settings, &local, kind, &stanza) {
            report.ok(&stanza, not_configured(kind, &stanza));
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
    if accounts == 0 {
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

/// The keys each stanza kind understands (README/stackflow.conf.spec).
fn known_keys(stanza: &str) -> Option<&'static [&'static str]> {
    let kind = stanza.split(':').next().unwrap_or(stanza);
    let has_account = stanza.contains(':');
    Some(match (kind, has_account) {
        ("soar", true) => &["url", "verify_ssl", "ca_file", "label"],
        ("stackflow", true) => &["webhook_url", "api_url", "verify_ssl", "ca_file"],
        ("slack", true) => &["api_url", "channel", "verify_ssl", "ca_file"],
        ("splunkd", false) => &["uri", "verify_ssl", "ca_file"],
        ("proxy", false) => &["url"],
        ("delivery", false) => &["timeout_s", "max_attempts", "spool_dir", "retry_base_s"],
        ("receipts", false) => &["index"],
        ("limits", false) => {
            &["max_results_bytes", "max_record_bytes", "max_field_bytes", "max_fields"]
        }
        _ => return None,
    })
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
        let Some(known) = known_keys(name) else {
            report.warn(&what, "unknown stanza, ignored (accounts are [soar:<name>], [stackflow:<name>], [slack:<name>])");
            continue;
        };
        let unknown: Vec<&str> =
            stanza.keys().map(String::as_str).filter(|key| !known.contains(key)).collect();
        if !unknown.is_empty() {
            report.warn(
                &what,
                format!(
                    "unknown setting(s) ignored: {} (known: {})",
                    unknown.join(", "),
                    known.join(", ")
                ),
            );
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

/// `http://user:pass@host:3128` → `http://***@host:3128`.
fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return match url.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => url.to_string(),
        };
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{}", &rest[authority_end..]),
        None => url.to_string(),
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
    let uri = match splunkd_uri.map(str::trim).filter(|uri| !uri.is_empty()) {
        Some(uri) => uri.trim_end_matches('/').to_string(),
        None => settings.splunkd_uri(),
    };
    let blocked = |report: &mut Report, code: ExitCode, reason: String| {
        report.fail(what, reason.clone(), code);
        unreachable_splunkd().map(|splunkd| Secrets { splunkd, blocked: Some((code, reason)) })
    };
    let tls = match settings.tls("splunkd", false) {
        Ok(tls) => tls,
        Err(error) => {
            let reason = error.to_string();
            return blocked(report, error.exit_code(), reason);
        }
    };
    if !(uri.starts_with("https://") || uri.starts_with("http://")) {
        let reason = format!(
            "configuration: stackflow.conf [splunkd] uri: \"{uri}\" is not an http(s):// URL (e.g. https://127.0.0.1:8089)"
        );
        return blocked(report, ExitCode::Configuration, reason);
    }
    if session_key.is_empty() {
        let reason = format!(
            "no splunkd session key on stdin: secrets cannot be read from storage/passwords at {uri} (pipe one: `echo $SESSION_KEY | stackflow check`)"
        );
        return blocked(report, ExitCode::Credentials, reason);
    }
    let options = HttpOptions { tls, proxy: None, timeout: Duration::from_secs(30) };
    let http = match HttpClient::new(&options, "splunkd") {
        Ok(http) => http,
        Err(error) => {
            let reason = error.to_string();
            return blocked(report, error.exit_code(), reason);
        }
    };
    let auth = format!("Splunk {session_key}");
    let url = format!("{uri}/services/authentication/current-context?output_mode=json");
    let probe = format!("splunkd {uri}");
    let response = http
        .get(&url, &[("Authorization", auth.as_str())])
        .map_err(|error| classify_transport(&error, &probe));
    let user = match response.map_err(|outcome| failure(outcome, "")) {
        Ok(response) if matches!(response.status, 401 | 403) => Err((
            format!(
                "{probe}: HTTP {}: the session key was refused (expired or wrong); get a fresh one",
                response.status
            ),
            ExitCode::Credentials,
        )),
        Ok(response) => judge(&response, &probe, "").map(|()| {
            response
                .json()
                .and_then(|json| {
                    json.pointer("/entry/0/content/username")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_else(|| "?".into())
        }),
        Err(problem) => Err(problem),
    };
    match user {
        Ok(user) => {
            report.ok(what, format!("{uri} reachable, session key accepted (user {user})"));
            let splunkd = match Splunkd::new(settings, &uri, Secret::new(session_key)) {
                Ok(splunkd) => splunkd,
                Err(error) => {
                    report.error(what, &error);
                    return None;
                }
            };
            Some(Secrets { splunkd, blocked: None })
        }
        Err((reason, code)) => blocked(report, code, reason),
    }
}

/// Turns a probe's outcome into the line's text and code. In `check`, a request refused for
/// its content (404 on a read-only GET) means the URL points at the wrong place: configuration.
fn failure(outcome: Outcome, credentials_hint: &str) -> (String, ExitCode) {
    match outcome {
        Outcome::Retry(retry) => (format!("unreachable now: {}", retry.reason), ExitCode::Deferred),
        Outcome::Rejected(rejection) => match rejection.class {
            RejectClass::Configuration => (rejection.reason, ExitCode::Configuration),
            RejectClass::Credentials => {
                (format!("{}{credentials_hint}", rejection.reason), ExitCode::Credentials)
            }
            RejectClass::Remote => {
                (format!("{}: is the URL right?", rejection.reason), ExitCode::Configuration)
            }
        },
        Outcome::Delivered(delivered) => (delivered.message, ExitCode::Internal),
    }
}

/// A response's status, by the shared table.
fn judge(
    response: &HttpResponse,
    what: &str,
    credentials_hint: &str,
) -> Result<(), (String, ExitCode)> {
    match classify_status(response, what) {
        StatusClass::Success => Ok(()),
        StatusClass::Failed(outcome) => Err(failure(outcome, credentials_hint)),
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

/// The first clause of a blocked-splunkd reason (the full text is on the [splunkd] line).
fn short_reason(reason: &str) -> String {
    let first = reason.split(':').next().unwrap_or(reason);
    format!("{first} (see [splunkd])")
}

fn credentials_hint(user: &str) -> String {
    format!(
        "; the secret \"{user}\" in storage/passwords (realm \"stackflow\") is wrong: update it, e.g. on the app's setup page"
    )
}

fn check_soar(report: &mut Report, settings: &Settings, secrets: &Secrets, account: &str) {
    let what = format!("soar:{account}");
    let user = format!("soar.{account}");
    let target = match SoarTarget::open(account, settings, &secrets.splunkd) {
        Ok(target) => target,
        Err(error) => return open_failed(report, &what, secrets, &user, &error),
    };
    let base = target.base_url().to_string();
    let hint = credentials_hint(&user);
    let version = target.probe_get("/rest/version").map_err(|outcome| failure(outcome, &hint));
    let result = match version {
        Ok(response) if response.status == 404 => target
            .probe_get("/rest/container?page_size=1")
            .map_err(|outcome| failure(outcome, &hint))
            .and_then(|response| judge(&response, "SOAR GET /rest/container", &hint))
            .map(|()| "/rest/version not available".to_string()),
        Ok(response) => judge(&response, "SOAR GET /rest/version", &hint).map(|()| match response
            .json()
            .as_ref()
            .and_then(|json| json.get("version"))
            .and_then(Value::as_str)
        {
            Some(version) => format!("SOAR {version}"),
            None => "version not reported".to_string(),
        }),
        Err(problem) => Err(problem),
    };
    match result {
        Ok(note) => report.ok(&what, format!("{base} reachable, token accepted ({note})")),
        Err((reason, code)) => report.fail(&what, reason, code),
    }
}

fn check_stackflow(report: &mut Report, settings: &Settings, secrets: &Secrets, account: &str) {
    let stanza = format!("stackflow:{account}");
    let value = |key: &str| settings.conf.get_nonempty(&stanza, key).map(|v| v.trim().to_string());
    let webhook_what = format!("{stanza} webhook");
    let user = stackflow::secret_user(account);
    match value("webhook_url") {
        None if value("api_url").is_some() => report.warn(
            &webhook_what,
            format!("webhook_url not set: the \"Create StackFlow incident\" action cannot use account {account} (read-back only)"),
        ),
        _ => match StackflowTarget::open(account, settings, &secrets.splunkd) {
            Ok(_) => report.ok(
                &webhook_what,
                format!(
                    "{}: settings valid, secret \"{user}\" stored; not called (check creates no test incident)",
                    value("webhook_url").unwrap_or_default().trim_end_matches('/')
                ),
            ),
            Err(error) => open_failed(report, &webhook_what, secrets, &user, &error),
        },
    }
    if value("api_url").is_none() {
        return;
    }
    let api_what = format!("{stanza} api");
    let api_user = stackflow::api_secret_user(account);
    let api = match StackflowApi::open(account, settings, &secrets.splunkd) {
        Ok(api) => api,
        Err(error) => return open_failed(report, &api_what, secrets, &api_user, &error),
    };
    let hint = credentials_hint(&api_user);
    let result = api
        .probe()
        .map_err(|outcome| failure(outcome, &hint))
        .and_then(|response| judge(&response, "StackFlow GET /incidents", &hint));
    match result {
        Ok(()) => report.ok(
            &api_what,
            format!(
                "{} reachable, API token accepted (read-back for stackflowsync)",
                api.base_url()
            ),
        ),
        Err((reason, code)) => report.fail(&api_what, reason, code),
    }
}

fn check_slack(report: &mut Report, settings: &Settings, secrets: &Secrets, account: &str) {
    let what = format!("slack:{account}");
    let user = format!("slack.{account}");
    let target = match SlackTarget::open(account, settings, &secrets.splunkd) {
        Ok(target) => target,
        Err(error) => return open_failed(report, &what, secrets, &user, &error),
    };
    let hint = credentials_hint(&user);
    let result =
        target.auth_test().map_err(|outcome| failure(outcome, &hint)).and_then(|response| {
            judge(&response, "Slack auth.test", &hint)?;
            let json = response.json().unwrap_or(Value::Null);
            let text = |key: &str| json.get(key).and_then(Value::as_str).unwrap_or("?").to_string();
            if json.get("ok").and_then(Value::as_bool) == Some(true) {
                return Ok(format!("team {}, bot user {}", text("team"), text("user")));
            }
            let code = text("error");
            Err(match code.as_str() {
                "invalid_auth" | "not_authed" | "account_inactive" | "token_revoked"
                | "token_expired" => (
                    format!("Slack auth.test: {code}: Slack refused the bot token{hint}"),
                    ExitCode::Credentials,
                ),
                "ratelimited" => {
                    (format!("Slack auth.test: {code}: try again later"), ExitCode::Deferred)
                }
                _ => (
                    format!("Slack auth.test: {code}: {}", response.body_excerpt()),
                    ExitCode::Configuration,
                ),
            })
        });
    match result {
        Ok(who) => {
            report.ok(&what, format!("{} reachable, bot token accepted ({who})", target.api_url()))
        }
        Err((reason, code)) => report.fail(&what, reason, code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn settings(text: &str, home: &Path) -> Settings {
        Settings::from_conf(ConfFile::parse_str(text), None, Some(home.to_path_buf()))
    }

    fn temp_home(name: &str) -> PathBuf {
        let dir = std::env::temp_dir()
            .join(format!("stackflow-check-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn line<'a>(report: &'a Report, what: &str) -> &'a Line {
        report
            .lines
            .iter()
            .find(|line| line.what == what)
            .unwrap_or_else(|| panic!("no line {what}: {report:?}"))
    }

    #[test]
    fn the_unreachable_splunkd_fails_without_network() {
        let splunkd = unreachable_splunkd().expect("built");
        match splunkd.secret("soar.default") {
            Err(Error::Unavailable(_)) => {}
            other => panic!("{:?}", other.map(|_| "a secret")),
        }
    }

    #[test]
    fn without_a_session_key_settings_are_still_validated() {
        let home = temp_home("nokey");
        let conf = "[soar:default]\nurl = https://soar.example.com\n\n\
                    [soar:lab]\nurl = https://lab.example.com\nverify_ssl = maybe\n\n\
                    [slack:default]\napi_url = https://slack.com/api\n";
        let mut report = Report::default();
        check_settings(&mut report, &settings(conf, &home), None, String::new());
        let splunkd = line(&report, "[splunkd]");
        assert_eq!((splunkd.status, splunkd.code), (Status::Fail, ExitCode::Credentials));
        assert!(splunkd.detail.contains("no splunkd session key"), "{}", splunkd.detail);
        let soar = line(&report, "soar:default");
        assert_eq!((soar.status, soar.code), (Status::Fail, ExitCode::Credentials));
        assert!(
            soar.detail.contains("settings valid; secret \"soar.default\" not read"),
            "{}",
            soar.detail
        );
        let lab = line(&report, "soar:lab");
        assert_eq!(lab.code, ExitCode::Configuration);
        assert!(
            lab.detail.contains("[soar:lab] verify_ssl: \"maybe\" is not a boolean"),
            "{}",
            lab.detail
        );
        assert_eq!(report.exit_code(), ExitCode::Configuration);
        let _ = std::fs::remove_dir_all(&home);
    }

    #[test]
    fn the_spool_dir_must_be_writable() {
        let home = temp_home("spool");
        let mut report = Report::default();
        check_delivery(&mut report, &settings("", &home));
        assert_eq!(line(&report, "[delivery]").status, Status::Ok);
        assert!(home.join("var/spool/stackflow").is_dir());
        assert_eq!(std::fs::read_dir(home.join("var/spool/stackflow")).unwrap().count(), 0);
        let blocker = home.join("a-file");
        std::fs::write(&blocker, "x").unwrap();
        let mut report = Report::default();
        let conf = format!("[delivery]\nspool_dir = {}/sub\n", blocker.display());
        check_delivery(&mut report, &settings(&conf, &home));
        let delivery = line(&report, "[delivery]");
        assert_eq!((delivery.status, delivery.code), (Status::Fail, ExitCode::Configuration));
        let _ = std::fs::remove_dir_all(&home);
    }

    #[test]
    fn receipts_index_names_are_checked_and_unknown_keys_warned() {
        let home = temp_home("keys");
        let mut report = Report::default();
        let conf =
            "[receipts]\nindex = Bad Index\n[soar:x]\nverfy_ssl = false\n[sour:y]\nurl = z\n";
        let settings = settings(conf, &home);
        check_receipts(&mut report, &settings);
        check_known_keys(&mut report, &settings);
        assert_eq!(line(&report, "[receipts]").code, ExitCode::Configuration);
        assert!(line(&report, "[soar:x]").detail.contains("verfy_ssl"));
        assert_eq!(line(&report, "[sour:y]").status, Status::Warn);
        assert_eq!(report.exit_code(), ExitCode::Configuration);
        let _ = std::fs::remove_dir_all(&home);
    }

    #[test]
    fn proxy_credentials_are_never_printed() {
        assert_eq!(redact_userinfo("http://u:p@proxy:3128/x"), "http://***@proxy:3128/x");
        assert_eq!(redact_userinfo("http://proxy:3128"), "http://proxy:3128");
        assert_eq!(redact_userinfo("u:p@proxy:3128"), "***@proxy:3128");
    }

    #[test]
    fn the_table_aligns_and_the_worst_failure_wins() {
        let mut report = Report::default();
        report.ok("soar:default", "fine");
        report.warn("[receipts]", "hmm");
        report.fail("slack:default", "down", ExitCode::Deferred);
        report.fail("stackflow:default api", "refused", ExitCode::Credentials);
        let text = report.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "OK    soar:default           fine");
        assert_eq!(lines[1], "WARN  [receipts]             hmm");
        assert_eq!(lines[2], "FAIL  slack:default          down");
        assert_eq!(lines[4], "4 checks: 1 OK, 1 WARN, 2 FAIL (exit 5)");
        assert_eq!(report.exit_code(), ExitCode::Credentials);
    }
}
