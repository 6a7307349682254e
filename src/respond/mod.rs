//! Slack as a response surface (PRODUCT §9): the Socket Mode listener (`listener`) hands each
//! acknowledged envelope to the `Responder`, which reads the click (`click`), acts on it once
//! (`stackflow_interactions`), decides who may act (`governance`), applies the effect through
//! the notable-update interface or the delivery layer (`effects`), tells Slack (`feedback`)
//! and writes one `stackflow:interaction` receipt per click, allowed or not.

pub mod claims;
pub mod click;
pub mod decide;
pub mod effects;
pub mod escalate;
pub mod feedback;
pub mod governance;
pub mod listener;
pub mod pending;
pub mod playbook;
mod process;
pub mod triage;
pub mod verdict;
pub mod war_room;

use crate::error::ExitCode;
use crate::net::http::HttpClient;
use crate::remotes::slack::SlackApi;
use crate::remotes::slack::socket::SocketModeClient;
use crate::remotes::splunkd::Splunkd;
use crate::settings::Settings;
use crate::splunk::stash::{ReceiptWriter, line_of};
use click::Click;
use listener::Envelope;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
pub use verdict::Verdict;

/// Acknowledged envelopes waiting for the click handler; a full queue slows reading (and so
/// acknowledging) rather than growing without bound.
const CLICK_QUEUE: usize = 256;
pub const INTERACTIONS_COLLECTION: &str = "stackflow_interactions";
pub const SOURCETYPE: &str = "stackflow:interaction";
/// Link-record fields copied into each interaction receipt as `notable_<name>`.
pub const NOTABLE_FIELDS: [&str; 4] = ["host", "src", "dest", "user"];
/// Interaction receipts are stash files `*.stash_stackflow_interaction` (their own batch input
/// and props stanza give them their sourcetype).
pub const EXTENSION: &str = "stash_stackflow_interaction";

/// Why splunkd refused the input's session key, once it did (shared by every account's
/// listener of one process: they run on one session key).
pub type Expiry = Arc<Mutex<Option<String>>>;

/// Runs the listener for one account until `stop`; the exit code of how it ended. When
/// splunkd refuses the session key, the clicks in hand are kept, `stop` is raised for every
/// account, and the code is `Credentials` (the caller writes the FATAL line).
pub fn listen(
    settings: &Settings,
    splunkd: &Splunkd,
    account: &str,
    checkpoint_dir: Option<PathBuf>,
    stop: &Arc<AtomicBool>,
    expiry: &Expiry,
) -> ExitCode {
    let opened = SocketModeClient::open(settings, splunkd, account).and_then(|client| {
        let responder = Responder::open(settings, splunkd, account, checkpoint_dir)?;
        Ok((client, responder.with_stop(stop.clone(), expiry.clone())))
    });
    let (client, mut responder) = match opened {
        Ok(opened) => opened,
        Err(error) => return error.report(),
    };
    // Clicks are handled on their own thread, in arrival order, so that a slow remote (an
    // escalation may wait on the delivery layer) never holds up the socket: every envelope is
    // still read and acknowledged at once. At SIGTERM the clicks already acknowledged are
    // finished before the process exits; clicks kept earlier are taken up first.
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Envelope>(CLICK_QUEUE);
    let worker = std::thread::spawn(move || {
        responder.resume_pending();
        loop {
            match receiver.recv_timeout(pending::RESUME_EVERY) {
                Ok(envelope) => responder.handle(&envelope),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => responder.resume_pending(),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        responder.finish_triage();
    });
    let ran = listener::run(&client, stop, &mut |envelope| {
        if sender.send(envelope.clone()).is_err() {
            log::error!(
                "Socket Mode: the click handler stopped; envelope {} dropped",
                envelope.envelope_id
            );
        }
    });
    drop(sender);
    if worker.join().is_err() {
        log::error!("Socket Mode: the click handler failed");
    }
    if lock(expiry).is_some() {
        return ExitCode::Credentials;
    }
    match ran {
        Ok(stats) => {
            log::info!(
                "Socket Mode: stopped (account {account}, {} connections, {} envelopes)",
                stats.connections,
                stats.envelopes
            );
            ExitCode::Success
        }
        Err(error) => error.report(),
    }
}

/// Everything a click needs, opened once per listener.
pub struct Responder {
    pub(crate) settings: Settings,
    pub(crate) splunkd: Splunkd,
    pub(crate) slack: SlackApi,
    /// For replies through a click's `response_url`.
    pub(crate) replies: HttpClient,
    pub(crate) account: String,
    /// `[delivery] kvstore_conflict_status`: the KV store's answer to a claim already taken.
    pub(crate) conflict_status: u16,
    /// The modular input's `checkpoint_dir`, where clicks are kept when the KV store is not
    /// usable.
    pub(crate) checkpoint_dir: Option<PathBuf>,
    receipts: Option<ReceiptWriter>,
    stop: Arc<AtomicBool>,
    expiry: Expiry,
    last_resume: Instant,
    /// Clicks were kept by this process since the last look (taken up before the next click).
    kept_here: bool,
    /// The permits of triage searches (`[slack_response] max_concurrent_searches`).
    triage_slots: Option<crate::triage::slots::Slots>,
    /// Triage searches started by this listener (joined at the end).
    triage_jobs: Vec<std::thread::JoinHandle<()>>,
}

/// What became of a click, for the receipt, the thread and the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub verdict: Verdict,
    /// Plain text (escaped wherever it lands in mrkdwn).
    pub message: String,
    pub remote_id: String,
    pub notable_status_after: String,
    pub requested_by: String,
    pub approved_by: String,
    pub playbook: String,
}

impl Outcome {
    pub fn new(verdict: Verdict, message: impl Into<String>) -> Outcome {
        Outcome { verdict, message: message.into(), ..Outcome::default() }
    }
}

/// The context a click needs, recorded when the message was posted (`stackflow_links`).
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub dedupe_key: String,
    pub event_id: String,
    pub link: Map<String, Value>,
}

impl Context {
    pub fn field(&self, name: &str) -> &str {
        self.link.get(name).and_then(Value::as_str).unwrap_or("")
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Responder {
    pub fn open(
        settings: &Settings,
        splunkd: &Splunkd,
        account: &str,
        checkpoint_dir: Option<PathBuf>,
    ) -> crate::error::Result<Responder> {
        let slack = SlackApi::open(settings, splunkd, account)?;
        let replies = crate::remotes::http_for(settings, &slack.account.stanza())?;
        let conflict_status = settings.delivery()?.kvstore_conflict_status;
        let receipts = settings.splunk_home.as_ref().map(|home| {
            ReceiptWriter::new(home, &settings.receipts_index())
                .with_sourcetype(SOURCETYPE, EXTENSION)
        });
        if receipts.is_none() {
            log::warn!("SPLUNK_HOME is not known: interaction receipts cannot be written");
        }
        Ok(Responder {
            settings: settings.clone(),
            splunkd: splunkd.clone(),
            slack,
            replies,
            account: account.to_string(),
            conflict_status,
            checkpoint_dir,
            receipts,
            stop: Arc::new(AtomicBool::new(false)),
            expiry: Expiry::default(),
            last_resume: Instant::now(),
            kept_here: false,
            triage_slots: None,
            triage_jobs: Vec::new(),
        })
    }

    fn with_stop(mut self, stop: Arc<AtomicBool>, expiry: Expiry) -> Responder {
        self.stop = stop;
        self.expiry = expiry;
        self
    }

    /// splunkd refused the session key: remembered, and every listener of the process stops.
    pub(crate) fn expire(&self, why: &str) {
        let mut expiry = lock(&self.expiry);
        if expiry.is_none() {
            log::error!("Socket Mode: splunkd refused the input's session key: {why}");
            *expiry = Some(why.chars().take(300).collect());
        }
        drop(expiry);
        self.stop.store(true, Ordering::SeqCst);
    }

    pub(crate) fn expired(&self) -> bool {
        lock(&self.expiry).is_some()
    }

    /// The flag SIGTERM raises (shared with the triage searches' threads).
    pub(crate) fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// One `stackflow:interaction` line (PRODUCT §9 "Audit"), written at once.
    pub(crate) fn receipt(
        &mut self,
        click: &Click,
        splunk_user: Option<&str>,
        playbook: &str,
        context: &Context,
        outcome: &Outcome,
        extra: Map<String, Value>,
    ) {
        let fields = interaction_fields(
            click,
            splunk_user,
            playbook,
            context,
            outcome,
            &self.account,
            extra,
        );
        let Some(writer) = self.receipts.as_mut() else { return };
        let written = line_of(crate::civil_time::now(), &fields)
            .and_then(|line| writer.push_line(line))
            .and_then(|_| writer.flush());
        if let Err(error) = written {
            log::error!("interaction receipt not written: {error}");
        }
    }
}

/// The fields of one `stackflow:interaction` line (PRODUCT §9 "Audit"), `extra` last.
pub fn interaction_fields(
    click: &Click,
    splunk_user: Option<&str>,
    playbook: &str,
    context: &Context,
    outcome: &Outcome,
    account: &str,
    extra: Map<String, Value>,
) -> Map<String, Value> {
    let mut fields = Map::new();
    let mut put = |name: &str, value: &str| {
        fields.insert(name.to_string(), Value::String(value.to_string()));
    };
    put("slack_user_id", &click.user_id);
    put("slack_user", &click.user_name);
    put("splunk_user", splunk_user.unwrap_or(""));
    put("action", click.action.name());
    put("playbook", if outcome.playbook.is_empty() { playbook } else { &outcome.playbook });
    put("event_id", &context.event_id);
    put("dedupe_key", &context.dedupe_key);
    put("search_name", context.field("search_name"));
    // The notable's context as recorded at post time (no search): what the tuning
    // dashboard groups false positives by. Prefixed so they never read as the clicker's
    // own `user` or Splunk's `host`.
    put("rule_name", context.field("rule_name"));
    put("severity", context.field("severity"));
    for name in NOTABLE_FIELDS {
        put(&format!("notable_{name}"), context.field(name));
    }
    put("requested_by", &outcome.requested_by);
    put("approved_by", &outcome.approved_by);
    put("outcome", outcome.verdict.as_str());
    put("notable_status_before", context.field("notable_status"));
    put("notable_status_after", &outcome.notable_status_after);
    put("remote_id", &outcome.remote_id);
    put("message", &outcome.message);
    put("account", account);
    put("slack_channel", &click.channel_id);
    put("slack_ts", &click.message_ts);
    fields.extend(extra);
    fields
}
