//! One click, from the acknowledged envelope to its one `stackflow:interaction` receipt: the
//! click claimed once, the notable it names looked up (`stackflow_links`; none: `failed`),
//! who may act, the effect claimed once per notable (`claims`), applied (`effects`), told in
//! Slack (`feedback`). A splunkd or KV store outage is retried within the click's budget, then
//! the click is kept (`pending`) and the clicker told it is queued; an expired session key
//! keeps it at once and stops the listener (PRODUCT §15).

use super::claims::{self, Claim, Trouble};
use super::click::{self, Click};
use super::pending::{self, Kept, KeptIn};
use super::{Context, LINKS_COLLECTION, Outcome, Responder, effects, feedback, governance};
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
            click.action_id,
            click.user_id,
            kept.envelope_id
        );
        if pending::exhausted(kept) {
            let outcome =
                Outcome::new("failed", "splunkd stayed unavailable; the click was not acted on");
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
                            click.action_id,
                            click.user_id,
                            wait.as_millis()
                        );
                        std::thread::sleep(wait);
                        continue;
                    }
                    log::warn!("Socket Mode: {} by {}: {error}", click.action_id, click.user_id);
                    return self.keep(click, kept, resumed, Trouble::Outage);
                }
                Trouble::Expired => {
                    self.expire(&error.to_string());
                    return self.keep(click, kept, resumed, Trouble::Expired);
                }
                Trouble::Other => {
                    log::error!("Socket Mode: {} by {}: {error}", click.action_id, click.user_id);
                    let outcome = Outcome::new(
                        "failed",
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
                    "failed",
                    "splunkd is unavailable and the click could not be kept",
                );
                self.fail(click, &kept.envelope_id, &outcome);
                return Ended::Finished;
            }
            KeptIn::File | KeptIn::Kv => self.kept_here = true,
        }
        log::warn!(
            "Socket Mode: {} by {} (envelope {}) kept for later ({})",
            click.action_id,
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
            let _ = self.record(&click.key(), envelope_id, click, "done", "failed", "", &context);
        }
        let (reference, _) = click.reference_and_playbook();
        let context = Context { dedupe_key: reference.into(), ..Context::default() };
        self.receipt(click, None, "", &context, outcome, audit_of(envelope_id, click));
    }

    fn process(
        &mut self,
        click: &Click,
        envelope_id: &str,
        owned: bool,
    ) -> crate::error::Result<()> {
        let key = click.key();
        let (reference, playbook) = click.reference_and_playbook();
        let audit = audit_of(envelope_id, click);
        // A click seen before is not acted on again — also when its first handling was
        // interrupted (`started`: a listener stopped mid-click, or another search head's
        // listener is on it) or is kept for later (`pending`).
        if !owned && let Claim::Taken(seen) = claims::claim_click(self, click, envelope_id)? {
            let earlier = seen.get("outcome").and_then(Value::as_str).unwrap_or("");
            let message = match seen.get("state").and_then(Value::as_str) {
                Some("done") => format!("seen before (outcome {earlier}); not acted on again"),
                Some("pending") => "seen before and queued; it will be acted on once".into(),
                _ => "seen before, its handling interrupted or still running; not acted on \
                      again (click again if the change is missing)"
                    .to_string(),
            };
            let context = Context { dedupe_key: reference.into(), ..Context::default() };
            self.receipt(click, None, "", &context, &Outcome::new("duplicate", message), audit);
            return Ok(());
        }
        // A decision's value is the request's interaction key; its context is the request's.
        let deciding = matches!(click.action_id.as_str(), click::APPROVE | click::DENY);
        let request = if deciding { playbook::request_record(self, reference)? } else { None };
        if deciding && request.is_none() {
            let outcome = Outcome::new("failed", "no containment request waits for this decision");
            return self.finish_early(click, None, &Context::default(), None, &outcome, audit);
        }
        let link_reference = match &request {
            Some(request) => request.get("dedupe_key").and_then(Value::as_str).unwrap_or(""),
            None => reference,
        };
        let Some(context) = self.context(link_reference)? else {
            let outcome = Outcome::new(
                "failed",
                "the button names no notable StackFlow recorded (no stackflow_links record)",
            );
            let context = Context { dedupe_key: link_reference.into(), ..Context::default() };
            return self.finish_early(click, None, &context, None, &outcome, audit);
        };
        let playbook = playbook.map(str::to_string).or_else(|| {
            let request = request.as_ref()?;
            request.get("playbook").and_then(Value::as_str).map(str::to_string)
        });
        let playbook = playbook.as_deref();
        let user = match governance::map_user(&self.splunkd, &self.slack, &click.user_id)? {
            Ok(user) => user,
            Err(why) => return self.refuse(click, None, &context, playbook, &why, audit),
        };
        let needed = governance::capability_for(&click.action_id);
        if !user.can(needed) {
            let why = format!("the Splunk user \"{}\" lacks the capability {needed}", user.name);
            return self.refuse(click, Some(&user.name), &context, playbook, &why, audit);
        }
        if let Some(why) =
            request.as_ref().and_then(|request| playbook::self_approval(request, click, &user.name))
        {
            return self.refuse(click, Some(&user.name), &context, playbook, &why, audit);
        }
        // An approval finds the container first: nothing is recorded for a run that cannot be.
        let container = if click.action_id == click::APPROVE {
            match playbook::find_container(self, &context, playbook.unwrap_or(""))? {
                Ok(container) => Some(container),
                Err(why) => {
                    let mut outcome = Outcome::new("failed", why);
                    outcome.playbook = playbook.unwrap_or("").to_string();
                    return self.finish_early(
                        click,
                        Some(&user.name),
                        &context,
                        playbook,
                        &outcome,
                        audit,
                    );
                }
            }
        } else {
            None
        };
        let effect = claims::effect_key(&click.action_id, &context.event_id, reference);
        if let Some(effect) = &effect
            && let Claim::Taken(holder) = claims::claim_effect(self, effect, click, &user.name)?
        {
            let outcome = Outcome::new("duplicate", claims::already(&holder, &click.action_id));
            return self.finish_early(click, Some(&user.name), &context, playbook, &outcome, audit);
        }
        let applied =
            effects::apply(self, click, &user, &context, &key, request.as_ref(), container);
        let outcome = match applied {
            Ok(outcome) => outcome,
            Err(error) => {
                if claims::trouble_of(&error) == Trouble::Other
                    && let Some(effect) = &effect
                {
                    claims::release_effect(self, effect);
                }
                return Err(error);
            }
        };
        if outcome.outcome == "failed"
            && let Some(effect) = &effect
        {
            claims::release_effect(self, effect);
        }
        if outcome.outcome == "awaiting_approval" {
            // The approval request in the thread is the reply.
        } else if outcome.outcome != "denied" || click.action_id == click::DENY {
            feedback::reply_in_thread(
                &self.slack,
                click,
                &thread_text(click, &user.name, &outcome),
            );
        } else {
            let text = format!("Not done: {}", outcome.message);
            feedback::tell_clicker(&self.slack, &self.replies, click, &text);
        }
        self.record(&key, envelope_id, click, "done", outcome.outcome, &user.name, &context)?;
        self.receipt(click, Some(&user.name), outcome.playbook.as_str(), &context, &outcome, audit);
        Ok(())
    }

    /// A click that ends before any effect (failed, or a duplicate of an effect): the clicker
    /// is told why, the click is recorded done, one receipt.
    fn finish_early(
        &mut self,
        click: &Click,
        splunk_user: Option<&str>,
        context: &Context,
        playbook: Option<&str>,
        outcome: &Outcome,
        audit: Map<String, Value>,
    ) -> crate::error::Result<()> {
        let text = match outcome.outcome {
            "duplicate" => format!("Nothing to do: {}.", outcome.message),
            _ => format!("Not done: {}.", outcome.message),
        };
        feedback::tell_clicker(&self.slack, &self.replies, click, &text);
        let envelope_id = audit.get("envelope_id").and_then(Value::as_str).unwrap_or("");
        self.record(
            &click.key(),
            envelope_id,
            click,
            "done",
            outcome.outcome,
            splunk_user.unwrap_or(""),
            context,
        )?;
        self.receipt(click, splunk_user, playbook.unwrap_or(""), context, outcome, audit);
        Ok(())
    }

    /// A refusal: the clicker is told why, nothing changes, the receipt says `denied`.
    fn refuse(
        &mut self,
        click: &Click,
        splunk_user: Option<&str>,
        context: &Context,
        playbook: Option<&str>,
        why: &str,
        audit: Map<String, Value>,
    ) -> crate::error::Result<()> {
        log::warn!("Socket Mode: {} by {} refused: {why}", click.action_id, click.user_id);
        feedback::tell_clicker(
            &self.slack,
            &self.replies,
            click,
            &format!("StackFlow did not act: {why}."),
        );
        let envelope_id =
            audit.get("envelope_id").and_then(Value::as_str).unwrap_or("").to_string();
        let splunk = splunk_user.unwrap_or("");
        self.record(&click.key(), &envelope_id, click, "done", "denied", splunk, context)?;
        let outcome = Outcome::new("denied", why);
        self.receipt(click, splunk_user, playbook.unwrap_or(""), context, &outcome, audit);
        Ok(())
    }

    /// The link of the button's reference: by `_key` (dedupe key), else by `event_id`; `None`
    /// when StackFlow recorded no such notable.
    fn context(&self, reference: &str) -> crate::error::Result<Option<Context>> {
        if reference.is_empty() {
            return Ok(None);
        }
        let link = match self.splunkd.kv_get(LINKS_COLLECTION, reference)? {
            Some(link) => Some(link),
            None => self
                .splunkd
                .kv_query_page(LINKS_COLLECTION, &json!({"event_id": reference}), 0, 1)?
                .into_iter()
                .next(),
        };
        let Some(Value::Object(link)) = link else { return Ok(None) };
        let dedupe_key = link.get("_key").and_then(Value::as_str).unwrap_or(reference).to_string();
        let event_id = link
            .get("event_id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .unwrap_or(reference)
            .to_string();
        Ok(Some(Context { dedupe_key, event_id, link }))
    }

    /// The click's own record (its claim made it; only this handling writes it).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        &self,
        key: &str,
        envelope_id: &str,
        click: &Click,
        state: &str,
        outcome: &str,
        splunk_user: &str,
        context: &Context,
    ) -> crate::error::Result<()> {
        let now = crate::civil_time::now();
        let record = json!({"_key": key, "kind": "click", "envelope_id": envelope_id,
            "state": state, "outcome": outcome, "action": click.action_id,
            "slack_user_id": click.user_id, "account": self.account,
            "splunk_user": splunk_user, "dedupe_key": context.dedupe_key,
            "event_id": context.event_id, "channel": click.channel_id,
            "message_ts": click.message_ts, "value": click.value,
            "playbook": if click.action_id == click::PLAYBOOK {
                click.reference_and_playbook().1.unwrap_or("")
            } else {
                ""
            },
            "updated": now.as_secs_f64()});
        self.splunkd.kv_update(super::INTERACTIONS_COLLECTION, key, &record)
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
    match outcome.outcome {
        "failed" => format!("{} by {who} failed: {message}", click.action_id),
        _ => format!("{message} ({who})"),
    }
}
