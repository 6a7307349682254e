//! One click, from the acknowledged envelope to its one `stackflow:interaction` receipt: the
//! click claimed once, the notable it names looked up (`stackflow_links`; none: `failed`),
//! who may act, the effect claimed once per notable (`claims`), applied (`effects`), told in
//! Slack (`feedback`). A splunkd or KV store outage is retried within the click's budget, then
//! the click is kept (`pending`) and the clicker told it is queued; an expired session key
//! keeps it at once and stops the listener (PRODUCT §15).

use super::claims::{self, Claim, Trouble};
use super::click::{Action, Click};
use super::decide::{Decision, Fact, Facts, decide};
use super::governance;
use super::pending::{self, Kept, KeptIn};
use super::{Context, Outcome, Responder, Verdict, effects, feedback};
use super::{listener::Envelope, playbook};
use crate::error::Error;
use crate::mapping::slack::escape_mrkdwn;
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

/// How long one click may wait for splunkd (retries included) before it is kept for later.
const CLICK_BUDGET: Duration = Duration::from_secs(8);

/// How handling a click ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Its receipt is written.
    Finished,
    /// Kept for a later attempt (where).
    Kept(KeptIn),
}

impl Responder {
    /// One acknowledged envelope.
    pub fn handle(&mut self, envelope: &Envelope) {
        if envelope.kind == "slash_commands" {
            return self.slash_command(envelope);
        }
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
            click.action.id(),
            click.user_id,
            envelope.envelope_id
        );
        // Clicks kept earlier go first (they came first).
        if self.kept_here || self.last_resume.elapsed() >= pending::RESUME_EVERY {
            self.resume_pending();
        }
        let kept = Kept {
            envelope_id: envelope.envelope_id.clone(),
            payload: envelope.payload.clone(),
            resumes: 0,
        };
        self.handle_click(&click, &kept, false);
    }

    /// Takes up the kept clicks: those of the checkpoint folder, then this account's pending
    /// records in the KV store.
    pub fn resume_pending(&mut self) {
        if self.expired() {
            return;
        }
        self.last_resume = Instant::now();
        self.kept_here = false;
        if let Some(dir) = self.checkpoint_dir.clone() {
            for (path, kept) in pending::files(&dir) {
                if self.expired() {
                    return;
                }
                match self.resume(&kept) {
                    Ended::Kept(KeptIn::File) => {}
                    _ => {
                        if let Err(error) = std::fs::remove_file(&path) {
                            log::error!("Socket Mode: {} not removed: {error}", path.display());
                        }
                    }
                }
            }
        }
        match pending::take_from_kv(self) {
            Ok(taken) => {
                for (_, kept) in taken {
                    if self.expired() {
                        return;
                    }
                    self.resume(&kept);
                }
            }
            Err(error) => {
                if claims::trouble_of(&error) == Trouble::Expired {
                    self.expire(&error.to_string());
                }
                log::warn!("Socket Mode: kept clicks not read from the KV store: {error}");
            }
        }
    }

    fn resume(&mut self, kept: &Kept) -> Ended {
        let Ok(click) = Click::parse(&kept.payload) else {
            log::error!("Socket Mode: kept envelope {} is not a click; dropped", kept.envelope_id);
            return Ended::Finished;
        };
        log::info!(
            "Socket Mode: taking up the kept {} by {} (envelope {})",
            click.action.id(),
            click.user_id,
            kept.envelope_id
        );
        if pending::exhausted(kept) {
            let outcome = Outcome::new(
                Verdict::Failed,
                "splunkd stayed unavailable; the click was not acted on",
            );
            self.fail(&click, &kept.envelope_id, &outcome);
            return Ended::Finished;
        }
        self.handle_click(&click, kept, true)
    }

    /// A click, retried within its budget while splunkd is out; `resumed`: taken up again
    /// (its click claim is already ours).
    fn handle_click(&mut self, click: &Click, kept: &Kept, resumed: bool) -> Ended {
        if self.expired() {
            return self.keep(click, kept, resumed, Trouble::Expired);
        }
        let deadline = Instant::now() + CLICK_BUDGET;
        let mut retries: u32 = 0;
        loop {
            let owned = resumed || retries > 0;
            let error = match self.process(click, &kept.envelope_id, owned) {
                Ok(()) => return Ended::Finished,
                Err(error) => error,
            };
            match claims::trouble_of(&error) {
                Trouble::Outage => {
                    retries = retries.saturating_add(1);
                    let wait = super::listener::backoff(retries);
                    if Instant::now() + wait < deadline && !self.stopping() {
                        log::warn!(
                            "Socket Mode: {} by {}: {error}; retrying in {} ms",
                            click.action.id(),
                            click.user_id,
                            wait.as_millis()
                        );
                        std::thread::sleep(wait);
                        continue;
                    }
                    log::warn!("Socket Mode: {} by {}: {error}", click.action.id(), click.user_id);
                    return self.keep(click, kept, resumed, Trouble::Outage);
                }
                Trouble::Expired => {
                    self.expire(&error.to_string());
                    return self.keep(click, kept, resumed, Trouble::Expired);
                }
                Trouble::Other => {
                    log::error!("Socket Mode: {} by {}: {error}", click.action.id(), click.user_id);
                    let outcome = Outcome::new(
                        Verdict::Failed,
                        format!("StackFlow could not act on the click: {}", short_error(&error)),
                    );
                    self.fail(click, &kept.envelope_id, &outcome);
                    return Ended::Finished;
                }
            }
        }
    }

    /// Keeps a click for later and tells the clicker it is queued (once).
    fn keep(&mut self, click: &Click, kept: &Kept, resumed: bool, why: Trouble) -> Ended {
        let mut again = kept.clone();
        if resumed {
            again.resumes = again.resumes.saturating_add(1);
        }
        let kept_in = pending::keep(self, &click.key(), &again, why != Trouble::Expired);
        match kept_in {
            KeptIn::Nowhere => {
                let outcome = Outcome::new(
                    Verdict::Failed,
                    "splunkd is unavailable and the click could not be kept",
                );
                self.fail(click, &kept.envelope_id, &outcome);
                return Ended::Finished;
            }
            KeptIn::File | KeptIn::Kv => self.kept_here = true,
        }
        log::warn!(
            "Socket Mode: {} by {} (envelope {}) kept for later ({})",
            click.action.id(),
            click.user_id,
            kept.envelope_id,
            if kept_in == KeptIn::File { "checkpoint_dir" } else { "KV store" }
        );
        if !resumed {
            let text = match why {
                Trouble::Expired => {
                    "StackFlow received your click and queued it: its connection to Splunk must \
                     be renewed first. It will be acted on once, shortly."
                }
                _ => {
                    "StackFlow received your click and queued it: Splunk is not reachable right \
                     now. It will be acted on once, as soon as Splunk is back."
                }
            };
            feedback::tell_clicker(&self.slack, &self.replies, click, text);
        }
        Ended::Kept(kept_in)
    }

    /// A click that ends failed without an effect: the clicker is told, one receipt.
    fn fail(&mut self, click: &Click, envelope_id: &str, outcome: &Outcome) {
        feedback::tell_clicker(
            &self.slack,
            &self.replies,
            click,
            &format!("StackFlow did not act on your click: {}", outcome.message),
        );
        if !self.expired() {
            let context = Context::default();
            let _ = self.record(click, envelope_id, Verdict::Failed, "", &context);
        }
        let (reference, _) = click.reference_and_playbook();
        let context = Context { dedupe_key: reference.into(), ..Context::default() };
        self.receipt(click, None, "", &context, outcome, audit_of(envelope_id, click));
    }

    /// One click: the facts `decide` asks for, gathered in its order; then the effect
    /// (`effects::apply`); then one `tell`.
    fn process(
        &mut self,
        click: &Click,
        envelope_id: &str,
        owned: bool,
    ) -> crate::error::Result<()> {
        let mut facts = Facts::default();
        if owned {
            facts.click_claim = Some(Claim::Won);
        }
        let (reference, _) = click.reference_and_playbook();
        let (effect, container) = loop {
            match decide(click, &facts) {
                Decision::Need(fact) => self.gather(click, envelope_id, fact, &mut facts)?,
                Decision::SeenBefore(message) => {
                    let context = Context { dedupe_key: reference.into(), ..Context::default() };
                    let outcome = Outcome::new(Verdict::Duplicate, message);
                    let audit = audit_of(envelope_id, click);
                    self.receipt(click, None, "", &context, &outcome, audit);
                    return Ok(());
                }
                Decision::Early(outcome) => {
                    let text = match outcome.verdict {
                        Verdict::Duplicate => format!("Nothing to do: {}.", outcome.message),
                        _ => format!("Not done: {}.", outcome.message),
                    };
                    let told = Told::Clicker(text);
                    return self.tell(click, envelope_id, &facts, Ending::early(outcome, told));
                }
                Decision::Refuse(why) => {
                    log::warn!(
                        "Socket Mode: {} by {} refused: {why}",
                        click.action.id(),
                        click.user_id
                    );
                    let told = Told::Clicker(format!("StackFlow did not act: {why}."));
                    let outcome = Outcome::new(Verdict::Denied, why);
                    return self.tell(click, envelope_id, &facts, Ending::early(outcome, told));
                }
                Decision::Act { effect, container } => break (effect, container),
            }
        };
        if let Action::Triage(_) = click.action {
            // A search, on its own thread: it answers and writes its receipt there.
            self.triage_click(click, envelope_id, &facts);
            return Ok(());
        }
        let outcome = self.apply(click, &facts, effect.as_deref(), container)?;
        let splunk_user = facts.splunk_user().map(|user| user.name.as_str()).unwrap_or("");
        let told = match outcome.verdict {
            // The approval request in the thread is the reply.
            Verdict::AwaitingApproval => Told::Nothing,
            // The room's link in the thread is the reply (`war_room`).
            Verdict::Done if click.action == Action::WarRoom => Told::Nothing,
            Verdict::Denied if click.action != Action::Deny => {
                Told::Clicker(format!("Not done: {}", outcome.message))
            }
            _ => Told::Thread(thread_text(click, splunk_user, &outcome)),
        };
        let ending = Ending { outcome, told, before_effect: false };
        self.tell(click, envelope_id, &facts, ending)
    }

    /// Gathers one fact `decide` asked for.
    fn gather(
        &mut self,
        click: &Click,
        envelope_id: &str,
        fact: Fact,
        facts: &mut Facts,
    ) -> crate::error::Result<()> {
        match fact {
            Fact::ClickClaim => {
                facts.click_claim = Some(claims::claim_click(self, click, envelope_id)?);
            }
            Fact::Request => {
                let (reference, _) = click.reference_and_playbook();
                facts.request = Some(playbook::request_record(self, reference)?);
            }
            Fact::Link(reference) => facts.link = Some(self.context(&reference)?),
            Fact::User => {
                let user = governance::map_user(&self.splunkd, &self.slack, &click.user_id)?;
                facts.user = Some(user);
            }
            Fact::Container => {
                let context = facts.context(click);
                let playbook = facts.playbook(click).unwrap_or("");
                facts.container = Some(playbook::find_container(self, &context, playbook)?);
            }
            Fact::EffectClaim(key) => {
                let user = facts.splunk_user().map(|user| user.name.clone()).unwrap_or_default();
                facts.effect_claim = Some(claims::claim_effect(self, &key, click, &user)?);
            }
        }
        Ok(())
    }

    /// The effect, holding its claim: given back when the effect failed (and when splunkd
    /// failed in a way that retrying will not mend), so that a later click may try.
    fn apply(
        &mut self,
        click: &Click,
        facts: &Facts,
        effect: Option<&str>,
        container: Option<u64>,
    ) -> crate::error::Result<Outcome> {
        let (Some(user), Some(Some(context))) = (facts.splunk_user(), &facts.link) else {
            return Ok(Outcome::new(Verdict::Failed, "the click was decided without its facts"));
        };
        let request = match &facts.request {
            Some(Some(request)) => Some(request),
            _ => None,
        };
        let key = click.key();
        let applied = effects::apply(self, click, user, context, &key, request, container);
        match &applied {
            Err(error) if claims::trouble_of(error) != Trouble::Other => {}
            Ok(outcome) if outcome.verdict != Verdict::Failed => {}
            _ => {
                if let Some(effect) = effect {
                    claims::release_effect(self, effect);
                }
            }
        }
        applied
    }

    /// Tells Slack how the click ended (`ending.told`), records the click done with its
    /// verdict, and writes its one receipt.
    fn tell(
        &mut self,
        click: &Click,
        envelope_id: &str,
        facts: &Facts,
        ending: Ending,
    ) -> crate::error::Result<()> {
        match &ending.told {
            Told::Nothing => {}
            Told::Clicker(text) => feedback::tell_clicker(&self.slack, &self.replies, click, text),
            Told::Thread(text) => feedback::reply_in_thread(&self.slack, click, text),
        }
        let splunk_user = facts.splunk_user().map(|user| user.name.as_str());
        let context = facts.context(click);
        let verdict = ending.outcome.verdict;
        self.record(click, envelope_id, verdict, splunk_user.unwrap_or(""), &context)?;
        // Before an effect, the playbook asked for; after it, the effect's own.
        let playbook = match facts.link {
            Some(Some(_)) if ending.before_effect => facts.playbook(click),
            _ => None,
        };
        let audit = audit_of(envelope_id, click);
        let playbook = playbook.unwrap_or("");
        self.receipt(click, splunk_user, playbook, &context, &ending.outcome, audit);
        Ok(())
    }

    /// The link of the button's reference: by `_key` (dedupe key), else the notable's record by
    /// the one rule of `links` (newest `updated`, on a tie the main record); `None` when
    /// StackFlow recorded no such notable.
    fn context(&self, reference: &str) -> crate::error::Result<Option<Context>> {
        if reference.is_empty() {
            return Ok(None);
        }
        let Some(link) = crate::links::by_reference(&self.splunkd, reference)? else {
            return Ok(None);
        };
        let or_reference = |text: &str| {
            if text.is_empty() { reference.to_string() } else { text.to_string() }
        };
        let (dedupe_key, event_id) = (or_reference(&link.key), or_reference(&link.event_id));
        let Value::Object(link) = link.encode() else { return Ok(None) };
        Ok(Some(Context { dedupe_key, event_id, link }))
    }

    /// The click's own record, `done` with its verdict (its claim made it; only this handling
    /// writes it).
    pub(crate) fn record(
        &self,
        click: &Click,
        envelope_id: &str,
        verdict: Verdict,
        splunk_user: &str,
        context: &Context,
    ) -> crate::error::Result<()> {
        let key = click.key();
        let now = crate::civil_time::now();
        let playbook = match &click.action {
            Action::Playbook(playbook) => playbook.as_str(),
            _ => "",
        };
        let record = json!({"_key": key, "kind": "click", "envelope_id": envelope_id,
            "state": "done", "outcome": verdict.as_str(), "action": click.action.id(),
            "slack_user_id": click.user_id, "account": self.account,
            "splunk_user": splunk_user, "dedupe_key": context.dedupe_key,
            "event_id": context.event_id, "channel": click.channel_id,
            "message_ts": click.message_ts, "value": click.value,
            "playbook": playbook,
            "updated": now.as_secs_f64()});
        self.splunkd.kv_update(super::INTERACTIONS_COLLECTION, &key, &record)
    }
}

/// What the clicker or the channel is told.
enum Told {
    Nothing,
    /// An ephemeral reply to the clicker (plain text).
    Clicker(String),
    /// A reply in the message's thread (mrkdwn, outside text escaped).
    Thread(String),
}

/// How a click ended, for `tell`.
struct Ending {
    outcome: Outcome,
    told: Told,
    /// Ended before an effect: the receipt names the playbook asked for (once the notable is
    /// known). After an effect, the outcome names its own.
    before_effect: bool,
}

impl Ending {
    fn early(outcome: Outcome, told: Told) -> Ending {
        Ending { outcome, told, before_effect: true }
    }
}

fn audit_of(envelope_id: &str, click: &Click) -> Map<String, Value> {
    let mut audit = Map::new();
    audit.insert("envelope_id".into(), json!(envelope_id));
    audit.insert("interaction_key".into(), json!(click.key()));
    audit
}

fn short_error(error: &Error) -> String {
    error.to_string().chars().take(200).collect()
}

/// The thread reply after an effect; outside text (user names, remote messages) escaped.
fn thread_text(click: &Click, splunk_user: &str, outcome: &Outcome) -> String {
    let who = format!("<@{}> ({})", escape_mrkdwn(&click.user_id), escape_mrkdwn(splunk_user));
    let message = escape_mrkdwn(&outcome.message);
    match outcome.verdict {
        Verdict::Failed => format!("{} by {who} failed: {message}", click.action.id()),
        _ => format!("{message} ({who})"),
    }
}
