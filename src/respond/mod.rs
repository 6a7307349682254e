//! Slack as a response surface (PRODUCT §9): the Socket Mode listener (`listener`) hands each
//! acknowledged envelope to the `Responder`, which reads the click (`click`), acts on it once
//! (`stackflow_interactions`), decides who may act (`governance`), applies the effect through
//! the notable-update interface or the delivery layer (`effects`), tells Slack (`feedback`)
//! and writes one `stackflow:interaction` receipt per click, allowed or not.

pub mod click;
pub mod effects;
pub mod escalate;
pub mod feedback;
pub mod governance;
pub mod listener;
pub mod playbook;

use crate::audit::receipts::{ReceiptWriter, line_of};
use crate::error::{Error, ExitCode};
use crate::remotes::slack::SlackApi;
use crate::remotes::slack::socket::SocketModeClient;
use crate::settings::Settings;
use crate::splunk::rest::Splunkd;
use click::Click;
use listener::Envelope;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{SystemTime, UNIX_EPOCH};

/// Acknowledged envelopes waiting for the click handler; a full queue slows reading (and so
/// acknowledging) rather than growing without bound.
const CLICK_QUEUE: usize = 256;
pub const INTERACTIONS_COLLECTION: &str = "stackflow_interactions";
pub const LINKS_COLLECTION: &str = "stackflow_links";
pub const SOURCETYPE: &str = "stackflow:interaction";
/// Link-record fields copied into each interaction receipt as `notable_<name>`.
pub const NOTABLE_FIELDS: [&str; 4] = ["host", "src", "dest", "user"];
/// Interaction receipts are stash files `*.stash_stackflow_interaction` (their own batch input
/// and props stanza give them their sourcetype).
pub const EXTENSION: &str = "stash_stackflow_interaction";

/// Runs the listener for one account until `stop`; the exit code of how it ended.
pub fn listen(
    settings: &Settings,
    splunkd: &Splunkd,
    account: &str,
    stop: &Arc<AtomicBool>,
) -> ExitCode {
    let opened = SocketModeClient::open(settings, splunkd, account)
        .and_then(|client| Ok((client, Responder::open(settings, splunkd, account)?)));
    let (client, mut responder) = match opened {
        Ok(opened) => opened,
        Err(error) => return crate::cmd::report_error(&error),
    };
    // Clicks are handled on their own thread, in arrival order, so that a slow remote (an
    // escalation may wait on the delivery layer) never holds up the socket: every envelope is
    // still read and acknowledged at once. At SIGTERM the clicks already acknowledged are
    // finished before the process exits.
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Envelope>(CLICK_QUEUE);
    let worker = std::thread::spawn(move || {
        for envelope in receiver {
            responder.handle(&envelope);
        }
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
    match ran {
        Ok(stats) => {
            log::info!(
                "Socket Mode: stopped (account {account}, {} connections, {} envelopes)",
                stats.connections,
                stats.envelopes
            );
            ExitCode::Success
        }
        Err(error) => crate::cmd::report_error(&error),
    }
}

/// Everything a click needs, opened once per listener.
pub struct Responder {
    pub(crate) settings: Settings,
    pub(crate) splunkd: Splunkd,
    pub(crate) slack: SlackApi,
    pub(crate) account: String,
    receipts: Option<ReceiptWriter>,
}

/// What became of a click, for the receipt, the thread and the log.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// `done | denied | failed | duplicate | awaiting_approval`.
    pub outcome: &'static str,
    pub message: String,
    pub remote_id: String,
    pub notable_status_after: String,
    pub requested_by: String,
    pub approved_by: String,
    pub playbook: String,
}

impl Outcome {
    pub fn new(outcome: &'static str, message: impl Into<String>) -> Outcome {
        Outcome { outcome, message: message.into(), ..Outcome::default() }
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

fn now() -> std::time::Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

impl Responder {
    pub fn open(
        settings: &Settings,
        splunkd: &Splunkd,
        account: &str,
    ) -> crate::error::Result<Responder> {
        let slack = SlackApi::open(settings, splunkd, account)?;
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
            account: account.to_string(),
            receipts,
        })
    }

    /// One acknowledged envelope.
    pub fn handle(&mut self, envelope: &Envelope) {
        if envelope.kind != "interactive" {
            log::debug!("Socket Mode: ignored a {:?} envelope", envelope.kind);
            return;
        }
        let click = match Click::parse(&envelope.payload) {
            Ok(click) => click,
            Err(why) => {
                log::debug!("Socket Mode: envelope {} is not ours: {why}", envelope.envelope_id);
                return;
            }
        };
        log::info!(
            "Socket Mode: {} clicked by {} (envelope {})",
            click.action_id,
            click.user_id,
            envelope.envelope_id
        );
        if let Err(error) = self.process(&click, &envelope.envelope_id) {
            // splunkd or the KV store unreachable: nothing was changed for sure; tell the user.
            log::error!("Socket Mode: {} by {}: {error}", click.action_id, click.user_id);
            feedback::tell_clicker(
                &self.slack,
                &click,
                &format!(
                    "StackFlow could not act on your click now ({}); please try again.",
                    short_error(&error)
                ),
            );
        }
    }

    fn process(&mut self, click: &Click, envelope_id: &str) -> crate::error::Result<()> {
        let key = click.key();
        let (reference, playbook) = click.reference_and_playbook();
        let mut audit = Map::new();
        audit.insert("envelope_id".into(), json!(envelope_id));
        audit.insert("interaction_key".into(), json!(key));
        // A click seen before is not acted on again — also when its first handling was
        // interrupted (`started`: a listener stopped mid-click, or another search head's
        // listener is on it): at most once per click; the clicker may click again.
        if let Some(seen) = self.splunkd.kv_get(INTERACTIONS_COLLECTION, &key)? {
            let earlier = seen.get("outcome").and_then(Value::as_str).unwrap_or("");
            let message = match seen.get("state").and_then(Value::as_str) {
                Some("done") => format!("seen before (outcome {earlier}); not acted on again"),
                _ => "seen before, its handling interrupted or still running; not acted on \
                      again (click again if the change is missing)"
                    .to_string(),
            };
            let outcome = Outcome::new("duplicate", message);
            self.receipt(
                click,
                None,
                "",
                &Context { dedupe_key: reference.into(), ..Context::default() },
                &outcome,
                audit,
            );
            return Ok(());
        }
        // A decision's value is the request's interaction key; its context is the request's.
        let deciding = matches!(click.action_id.as_str(), click::APPROVE | click::DENY);
        let request = if deciding { playbook::request_record(self, reference)? } else { None };
        if deciding && request.is_none() {
            let outcome = Outcome::new("failed", "no containment request waits for this decision");
            feedback::tell_clicker(&self.slack, click, &format!("Not done: {}", outcome.message));
            let context = Context { dedupe_key: reference.into(), ..Context::default() };
            self.receipt(click, None, "", &context, &outcome, audit);
            return Ok(());
        }
        let context = match &request {
            Some(request) => {
                self.context(request.get("dedupe_key").and_then(Value::as_str).unwrap_or(""))?
            }
            None => self.context(reference)?,
        };
        let playbook = playbook.or_else(|| {
            request.as_ref().and_then(|request| request.get("playbook")).and_then(Value::as_str)
        });
        let user = match governance::map_user(&self.splunkd, &self.slack, &click.user_id)? {
            Ok(user) => user,
            Err(why) => {
                return self.refuse(click, &key, None, &context, playbook, &why, audit);
            }
        };
        let needed = governance::capability_for(&click.action_id);
        if !user.can(needed) {
            let why = format!("the Splunk user \"{}\" lacks the capability {needed}", user.name);
            return self.refuse(click, &key, Some(&user.name), &context, playbook, &why, audit);
        }
        if let Some(why) =
            request.as_ref().and_then(|request| playbook::self_approval(request, click, &user.name))
        {
            return self.refuse(click, &key, Some(&user.name), &context, playbook, &why, audit);
        }
        self.record(&key, envelope_id, click, "started", "", &user.name, &context)?;
        let outcome = effects::apply(self, click, &user, &context, &key, request.as_ref());
        if outcome.outcome == "awaiting_approval" {
            // The approval request in the thread is the reply.
        } else if outcome.outcome != "denied" || click.action_id == click::DENY {
            feedback::reply_in_thread(
                &self.slack,
                click,
                &thread_text(click, &user.name, &outcome),
            );
        } else {
            feedback::tell_clicker(&self.slack, click, &format!("Not done: {}", outcome.message));
        }
        self.record(&key, envelope_id, click, "done", outcome.outcome, &user.name, &context)?;
        self.receipt(click, Some(&user.name), outcome.playbook.as_str(), &context, &outcome, audit);
        Ok(())
    }

    /// A refusal: the clicker is told why, nothing changes, the receipt says `denied`.
    #[allow(clippy::too_many_arguments)]
    fn refuse(
        &mut self,
        click: &Click,
        key: &str,
        splunk_user: Option<&str>,
        context: &Context,
        playbook: Option<&str>,
        why: &str,
        audit: Map<String, Value>,
    ) -> crate::error::Result<()> {
        log::warn!("Socket Mode: {} by {} refused: {why}", click.action_id, click.user_id);
        feedback::tell_clicker(&self.slack, click, &format!("StackFlow did not act: {why}."));
        let envelope_id =
            audit.get("envelope_id").and_then(Value::as_str).unwrap_or("").to_string();
        self.record(
            key,
            &envelope_id,
            click,
            "done",
            "denied",
            splunk_user.unwrap_or(""),
            context,
        )?;
        let outcome = Outcome::new("denied", why);
        self.receipt(click, splunk_user, playbook.unwrap_or(""), context, &outcome, audit);
        Ok(())
    }

    /// The link of the button's reference: by `_key` (dedupe key), else by `event_id`; with
    /// neither, the reference is taken as the notable's `event_id`.
    fn context(&self, reference: &str) -> crate::error::Result<Context> {
        let link = match self.splunkd.kv_get(LINKS_COLLECTION, reference)? {
            Some(link) => Some(link),
            None => self
                .splunkd
                .kv_query_page(LINKS_COLLECTION, &json!({"event_id": reference}), 0, 1)?
                .into_iter()
                .next(),
        };
        let link = match link {
            Some(Value::Object(link)) => link,
            _ => Map::new(),
        };
        let dedupe_key = link.get("_key").and_then(Value::as_str).unwrap_or(reference).to_string();
        let event_id = link
            .get("event_id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .unwrap_or(reference)
            .to_string();
        Ok(Context { dedupe_key, event_id, link })
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        key: &str,
        envelope_id: &str,
        click: &Click,
        state: &str,
        outcome: &str,
        splunk_user: &str,
        context: &Context,
    ) -> crate::error::Result<()> {
        let now = now();
        let record = json!({"_key": key, "envelope_id": envelope_id, "state": state,
            "outcome": outcome, "action": click.action_id, "slack_user_id": click.user_id,
            "splunk_user": splunk_user, "dedupe_key": context.dedupe_key,
            "event_id": context.event_id, "channel": click.channel_id,
            "message_ts": click.message_ts, "value": click.value,
            "playbook": if click.action_id == click::PLAYBOOK {
                click.reference_and_playbook().1.unwrap_or("")
            } else {
                ""
            },
            "updated": now.as_secs_f64()});
        self.splunkd.kv_batch_save(INTERACTIONS_COLLECTION, &[record])
    }

    /// One `stackflow:interaction` line (PRODUCT §9 "Audit"), written at once.
    fn receipt(
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
        let written = line_of(now(), &fields)
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
    let action = click.action_id.strip_prefix("stackflow_").unwrap_or(&click.action_id);
    let mut fields = Map::new();
    let mut put = |name: &str, value: &str| {
        fields.insert(name.to_string(), Value::String(value.to_string()));
    };
    put("slack_user_id", &click.user_id);
    put("slack_user", &click.user_name);
    put("splunk_user", splunk_user.unwrap_or(""));
    put("action", action);
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
    put("outcome", outcome.outcome);
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

fn short_error(error: &Error) -> String {
    let text = error.to_string();
    text.chars().take(200).collect()
}

/// The thread reply after an effect.
fn thread_text(click: &Click, splunk_user: &str, outcome: &Outcome) -> String {
    let who = format!("<@{}> ({splunk_user})", click.user_id);
    match outcome.outcome {
        "failed" => format!("{} by {who} failed: {}", click.action_id, outcome.message),
        _ => format!("{} ({who})", outcome.message),
    }
}
