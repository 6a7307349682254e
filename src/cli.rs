//! Command-line interface: the subcommands splunkd and admins run.
//!
//! splunkd runs `stackflow alert <target> --execute` for the alert actions (`--execute` may
//! come anywhere; `main` lifts it out before parsing), `stackflow sync` for the chunked search
//! command, and `stackflow spool flush` as a scripted input.

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "stackflow",
    version,
    about = "StackFlow for Splunk: sends Splunk alerts to SOAR, StackFlow and Slack without losing or duplicating them, and reads their state back",
    long_about = None,
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a custom alert action, as splunkd does: JSON payload on stdin, `--execute`.
    ///
    /// Exit codes: 0 delivered (or nothing to send), 2 bad invocation or payload, 3 bad results
    /// file, 4 configuration, 5 credentials, 6 rejected by the remote (kept as a dead letter),
    /// 7 deferred (spooled; `spool flush` retries), 8 could not deliver nor spool (data at
    /// risk), 9 internal error.
    Alert {
        /// Which action: soar (stackflow_soar), incident (stackflow_incident), slack (stackflow_slack).
        #[arg(value_enum)]
        action: AlertKind,
        /// Required by the alert action protocol; splunkd passes it.
        #[arg(long)]
        execute: bool,
    },
    /// The `| stackflowsync` chunked search command (protocol v2 on stdin/stdout; run by splunkd).
    Sync,
    /// Inspect and replay the delivery spool.
    Spool {
        #[command(subcommand)]
        command: SpoolCommand,
    },
    /// Validate the configuration and reach every configured endpoint.
    ///
    /// Reads a splunkd session key from stdin (first line) to read secrets
    /// (`echo $SESSION_KEY | stackflow check`). Validates stackflow.conf with the same code the
    /// alert actions run, then probes each configured account read-only: SOAR
    /// `GET /rest/version` (else `/rest/container?page_size=1`), the StackFlow API
    /// `GET /incidents?limit=1`, Slack `auth.test`. The StackFlow webhook is not called (no test
    /// incident is created). Prints one `OK|WARN|FAIL|SKIP  <what>  <detail>` line per check on
    /// stdout (SKIP: an account that is not configured), then a summary; never prints a secret.
    ///
    /// Exit codes: 0 every check passed (warnings allowed), 4 configuration (invalid setting,
    /// TLS certificate not trusted, spool not writable), 5 credentials (no session key, secret
    /// missing, token refused), 7 an endpoint is unreachable now; the worst failure wins.
    Check {
        /// The local splunkd (default: [splunkd] uri, web.conf mgmtHostPort, https://127.0.0.1:8089).
        #[arg(long)]
        splunkd_uri: Option<String>,
        /// Print one JSON object per check (`kind, account, check, status, detail, remedy`),
        /// then `{"summary", "exit_code"}`, for monitoring.
        #[arg(long, conflicts_with = "chunked")]
        json: bool,
        /// Run as the `| stackflowcheck` generating search command (SCP v2 on stdin/stdout;
        /// run by splunkd, which passes the search's session key).
        #[arg(long)]
        chunked: bool,
    },
    /// Store an account's secret in storage/passwords, or list which are set.
    ///
    /// Secrets live in Splunk's credential store (storage/passwords, realm "stackflow") under
    /// the user names soar.<account>, stackflow.<account>, stackflow_api.<account>,
    /// slack.<account>, slack_app.<account>, llm.<account>.
    /// Never on the command line: the session key is the first line of stdin, the secret the
    /// second. Exit codes: 0 done, 2 bad invocation, 4 configuration, 5 credentials (no or
    /// refused session key), 6 splunkd refused the write, 7 splunkd unreachable.
    Secret {
        #[command(subcommand)]
        command: SecretCommand,
    },
    /// The `stackflow_state` modular input, as splunkd runs it (`bin/stackflow_state.sh`).
    ///
    /// Without flags: reads splunkd's XML configuration on stdin (session key, checkpoint_dir,
    /// `[stackflow_state://<account>]` stanzas), polls the SOAR containers / playbook runs and
    /// StackFlow incidents this app created that changed since the last checkpoint, and writes
    /// one `<stream><event>` per change on stdout (sourcetypes stackflow:soar:container,
    /// stackflow:soar:playbook_run, stackflow:incident).
    ///
    /// Exit codes: 0 polled, 2 bad configuration XML / arguments rejected, 4 configuration,
    /// 5 credentials, 7 a remote or the KV store unavailable (skipped; read next time).
    State {
        /// Print the scheme document (introspection).
        #[arg(long)]
        scheme: bool,
        /// Validate one input's arguments (`<items>` on stdin).
        #[arg(long)]
        validate_arguments: bool,
    },
    /// Slack as a response surface.
    Slack {
        #[command(subcommand)]
        command: SlackCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum SlackCommand {
    /// Keep a Slack Socket Mode connection open and act on button clicks (PRODUCT §9).
    ///
    /// As the `stackflow_slack_socket` modular input (bin/stackflow_slack_socket.sh), splunkd
    /// starts it without `--account`: `--scheme` prints the scheme, `--validate-arguments`
    /// checks one input, and no flag reads splunkd's XML configuration (session key,
    /// `[stackflow_slack_socket://<account>]`) on stdin. Run by hand, `--account <name>` reads
    /// the splunkd session key as the first line of stdin. Connects with the app-level token
    /// `slack_app.<account>` (apps.connections.open), acknowledges every envelope before acting,
    /// reconnects with backoff after `disconnect` or a lost socket, and exits 0 on SIGTERM/SIGINT.
    ///
    /// Exit codes: 0 stopped by a signal, 2 bad arguments / configuration XML, 4 configuration
    /// (account, TLS certificate not trusted), 5 credentials (app-level token refused or missing).
    Listen {
        /// The [slack:<account>] to listen for (manual run; the modular input takes it from
        /// its stanza).
        #[arg(long)]
        account: Option<String>,
        /// The local splunkd, for a manual run (default: [splunkd] uri, web.conf mgmtHostPort).
        #[arg(long)]
        splunkd_uri: Option<String>,
        /// Print the modular input scheme (introspection).
        #[arg(long)]
        scheme: bool,
        /// Validate one input's arguments (`<items>` on stdin).
        #[arg(long)]
        validate_arguments: bool,
    },
    /// Print the Slack app manifest (JSON) for the features stackflow.conf configures: the
    /// bot scopes they need and no others (the war-room scopes only when a route has
    /// war_room = true or war_room among its buttons; the /stackflow command and the
    /// `commands` scope only when a [triage:<name>] template exists). The app ships the full
    /// manifest (appserver/static/slack_app_manifest.json). Reads no secret, calls nothing.
    ///
    /// Exit codes: 0 printed, 4 configuration (stackflow.conf, the account name).
    Manifest {
        /// The [slack:<account>] the manifest is for (checked; the manifest is the same for
        /// every account of this installation).
        #[arg(long)]
        account: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Create or update one secret: stdin line 1 = session key, line 2 = the secret.
    ///
    /// e.g. `read -rs TOKEN; printf '%s\n%s\n' "$SESSION_KEY" "$TOKEN" | stackflow secret set soar.default`
    Set {
        /// The storage/passwords user name, e.g. soar.default or stackflow_api.emea.
        user: String,
        /// The local splunkd (default: [splunkd] uri, web.conf mgmtHostPort, https://127.0.0.1:8089).
        #[arg(long)]
        splunkd_uri: Option<String>,
    },
    /// Show which secrets of the configured accounts are stored (never their values); stdin
    /// line 1 = session key.
    List {
        /// The local splunkd (default: [splunkd] uri, web.conf mgmtHostPort, https://127.0.0.1:8089).
        #[arg(long)]
        splunkd_uri: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum AlertKind {
    Soar,
    Incident,
    Slack,
}

#[derive(Debug, Subcommand)]
pub enum SpoolCommand {
    /// List pending items and dead letters.
    List {
        /// Print JSON (one object per item) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Re-send pending items that are due (run every minute by the app's scripted input).
    ///
    /// Reads the splunkd session key from stdin, as splunkd's passAuth hands it over.
    Flush {
        /// The local splunkd (default: [splunkd] uri, web.conf mgmtHostPort, https://127.0.0.1:8089).
        #[arg(long)]
        splunkd_uri: Option<String>,
        /// Send every pending item now, ignoring the remotes' Retry-After holds.
        #[arg(long)]
        all: bool,
    },
    /// Move dead letters back to pending once the cause is fixed.
    Requeue {
        /// Item ids to requeue (as shown by `spool list`); none means every dead letter.
        ids: Vec<String>,
    },
    /// Delete dead letters older than N days.
    Purge {
        #[arg(long, default_value_t = 30)]
        older_than_days: u64,
    },
}
