//! The Slack side of triage (PRODUCT §16): a *Triage* click (decided like every click: claimed
//! once, its notable's link, the clicker's Splunk user and the capability `stackflow_triage`)
//! or a `/stackflow` slash command (`slash_commands` envelope: `help`, or `<template>
//! <value> [in_channel]`, the same mapping, capability and receipts) becomes one run of a
//! `[triage:<name>]` template. The template's tokens are filled from the recorded context (a
//! token without a value: nothing runs, the asker is told which); the search runs on its own
//! thread, never the click handler's, behind the listener's `max_concurrent_searches` permits
//! (`triage::slots`; an asker who must wait is told "queued"); the answer goes to the thread
//! (button) or to the caller's `response_url` (command); one receipt per run.

use super::claims::{self, Claim};
use super::click::{Action, Click};
use super::decide::Facts;
use super::listener::Envelope;
use super::{Context, EXTENSION, Outcome, Responder, SOURCETYPE, Verdict, feedback, governance};
use crate::mapping::triage::Template;
use crate::net::http::HttpClient;
use crate::remotes::slack::SlackApi;
use crate::remotes::splunkd::Splunkd;
use crate::settings::Settings;
use crate::splunk::stash::{ReceiptWriter, line_of};
use crate::triage::slots::{Entry, Permit, Slots, Waiter};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The command the app manifest declares.
pub const COMMAND: &str = "/stackflow";
/// The word that sends a command's answer to the channel instead of the caller alone.
pub const IN_CHANNEL: &str = "in_channel";
/// A command's text longer than this is refused (Slack's own limit is far below).
const MAX_TEXT: usize = 4000;

/// Where the answer goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnswerTo {
    /// The clicked message's thread (the asker's own notices: ephemeral).
    Thread,
    /// The command's `response_url`: the caller alone, or the channel.
    ResponseUrl { in_channel: bool },
}

/// One triage asked for, with everything its thread needs (it outlives the click handler).
#[derive(Clone)]
struct Ask {
    click: Click,
    envelope_id: String,
    splunk_user: String,
    context: Context,
    answer_to: AnswerTo,
}

/// What the search's thread needs of the listener (all cheap clones).
#[derive(Clone)]
struct Remotes {
    settings: Settings,
    splunkd: Splunkd,
    slack: SlackApi,
    replies: HttpClient,
    account: String,
    /// Raised at SIGTERM: a search still waiting for a permit is not started.
    stop: Arc<AtomicBool>,
}

/// A `/stackflow` command read out of an untrusted `slash_commands` payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub user_id: String,
    pub user_name: String,
    pub channel_id: String,
    pub text: String,
    pub response_url: String,
}

fn text(payload: &Value, key: &str) -> String {
    payload.get(key).and_then(Value::as_str).unwrap_or("").trim().to_string()
}

impl Command {
    /// The `/stackflow` command of a `slash_commands` payload (python-slack-sdk's Socket Mode
    /// request: `command`, `text`, `user_id`, `user_name`, `channel_id`, `response_url`).
    pub fn parse(payload: &Value) -> Result<Command, String> {
        let command = text(payload, "command");
        if command != COMMAND {
            return Err(format!("command {command:?} is not {COMMAND}"));
        }
        let command = Command {
            user_id: text(payload, "user_id"),
            user_name: text(payload, "user_name"),
            channel_id: text(payload, "channel_id"),
            text: text(payload, "text"),
            response_url: text(payload, "response_url"),
        };
        if command.user_id.is_empty() || command.response_url.is_empty() {
            return Err("a command without user_id or response_url".into());
        }
        if command.text.len() > MAX_TEXT || command.user_id.len() > 100 {
            return Err("a command longer than StackFlow reads".into());
        }
        Ok(command)
    }

    /// `help` (or nothing) → `None`; else the template, the value and whether `in_channel`
    /// ends the text.
    pub fn request(&self) -> Option<(String, String, bool)> {
        let text = self.text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("help") {
            return None;
        }
        let (template, rest) = text.split_once(char::is_whitespace).unwrap_or((text, ""));
        let mut value = rest.trim();
        let mut in_channel = false;
        if let Some(before) = value.strip_suffix(IN_CHANNEL)
            && (before.is_empty() || before.ends_with(char::is_whitespace))
        {
            value = before.trim_end();
            in_channel = true;
        }
        Some((template.to_string(), value.to_string(), in_channel))
    }
}

/// The templates, as `/stackflow help` lists them (mrkdwn, escaped).
fn help_text(settings: &Settings) -> String {
    use crate::mapping::slack::escape_mrkdwn;
    let (templates, broken) = Template::valid(&settings.conf);
    let mut lines = vec![format!(
        "*{COMMAND} <template> <value>* runs a triage search (add `{IN_CHANNEL}` to answer the channel). Templates:"
    )];
    for template in &templates {
        let tokens: Vec<String> = template.tokens.iter().map(|t| format!("${t}$")).collect();
        lines.push(format!(
            "• `{}` — {} ({}; {} to {})",
            escape_mrkdwn(&template.name),
            escape_mrkdwn(&template.label),
            escape_mrkdwn(&tokens.join(", ")),
            escape_mrkdwn(&template.earliest),
            escape_mrkdwn(&template.latest)
        ));
    }
    if templates.is_empty() {
        lines.push("(none: an admin defines them as [triage:<name>] in stackflow.conf)".into());
    }
    if !broken.is_empty() {
        lines.push(format!("{} invalid template(s) left out (see stackflow check).", broken.len()));
    }
    lines.join("\n")
}

impl Remotes {
    /// An ephemeral notice to the asker (plain text).
    fn tell(&self, ask: &Ask, text: &str) {
        match ask.answer_to {
            AnswerTo::Thread => {
                feedback::tell_clicker(&self.slack, &self.replies, &ask.click, text)
            }
            AnswerTo::ResponseUrl { .. } => {
                let text = crate::mapping::slack::escape_mrkdwn(text);
                let body = json!({"response_type": "ephemeral", "replace_original": false,
                                  "text": feedback::cut(&text)});
                self.post_response_url(&ask.click.response_url, &body);
            }
        }
    }

    /// The answer (`text`, `blocks`) where it belongs.
    fn answer(&self, ask: &Ask, body: &Value) {
        match ask.answer_to {
            AnswerTo::Thread => {
                let mut message = body.clone();
                message["channel"] = json!(ask.click.channel_id);
                message["thread_ts"] = json!(ask.click.thread_ts);
                feedback::post_message(&self.slack, &message);
            }
            AnswerTo::ResponseUrl { in_channel } => {
                let mut message = body.clone();
                message["response_type"] =
                    json!(if in_channel { "in_channel" } else { "ephemeral" });
                message["replace_original"] = json!(false);
                self.post_response_url(&ask.click.response_url, &message);
            }
        }
    }

    /// `POST response_url` (python-slack-sdk `WebhookClient.send`), only to Slack's own hosts.
    fn post_response_url(&self, url: &str, body: &Value) {
        if !feedback::response_url_allowed(&self.slack, url) {
            log::warn!("triage: the command's response_url is not Slack's; no answer sent");
            return;
        }
        let headers = [("Content-Type", "application/json; charset=utf-8")];
        match self.replies.post(url, &headers, body.to_string().as_bytes()) {
            Ok(response) if (200..300).contains(&response.status) => {}
            Ok(response) => log::warn!("Slack response_url: HTTP {}", response.status),
            Err(error) => log::warn!("Slack response_url: {:?}", error.kind),
        }
    }

    /// The run's one `stackflow:interaction` receipt, and the click's record `done`.
    fn finish(&self, ask: &Ask, outcome: &Outcome, extra: Map<String, Value>) {
        let key = ask.click.key();
        let record = json!({"_key": key, "kind": "click", "envelope_id": ask.envelope_id,
            "state": "done", "outcome": outcome.verdict.as_str(), "action": ask.click.action.id(),
            "slack_user_id": ask.click.user_id, "account": self.account,
            "splunk_user": ask.splunk_user, "dedupe_key": ask.context.dedupe_key,
            "event_id": ask.context.event_id, "channel": ask.click.channel_id,
            "message_ts": ask.click.message_ts, "value": ask.click.value,
            "updated": crate::civil_time::now().as_secs_f64()});
        if let Err(error) = self.splunkd.kv_update(super::INTERACTIONS_COLLECTION, &key, &record) {
            log::warn!("triage: the click's record was not updated: {error}");
        }
        let user = (!ask.splunk_user.is_empty()).then_some(ask.splunk_user.as_str());
        let mut extra = extra;
        extra.insert("envelope_id".into(), json!(ask.envelope_id));
        extra.insert("interaction_key".into(), json!(key));
        let fields = super::interaction_fields(
            &ask.click,
            user,
            "",
            &ask.context,
            outcome,
            &self.account,
            extra,
        );
        let Some(home) = &self.settings.splunk_home else { return };
        let mut writer = ReceiptWriter::new(home, &self.settings.receipts_index())
            .with_sourcetype(SOURCETYPE, EXTENSION);
        let written = line_of(crate::civil_time::now(), &fields)
            .and_then(|line| writer.push_line(line))
            .and_then(|_| writer.flush());
        if let Err(error) = written {
            log::error!("interaction receipt not written: {error}");
        }
    }

    /// Runs the search (holding `permit`) and answers.
    fn run(&self, ask: &Ask, template: &Template, search: &str, permit: Permit) {
        let rule = ask.context.field("search_name").to_string();
        let answer = crate::triage::run(&self.settings, &self.splunkd, template, search, &rule);
        drop(permit);
        self.answer(ask, &answer.body);
        let verdict = match answer.outcome {
            "done" => Verdict::Done,
            "timeout" => Verdict::TimedOut,
            _ => Verdict::Failed,
        };
        log::info!(
            "triage: {} by {} ({}): {} rows in {} ms, {}",
            template.name,
            ask.click.user_id,
            ask.splunk_user,
            answer.rows,
            answer.duration_ms,
            verdict
        );
        let outcome = Outcome::new(verdict, answer.message.clone());
        self.finish(ask, &outcome, crate::triage::receipt_fields(template, Some(&answer)));
    }
}

impl Responder {
    fn remotes(&self) -> Remotes {
        Remotes {
            settings: self.settings.clone(),
            splunkd: self.splunkd.clone(),
            slack: self.slack.clone(),
            replies: self.replies.clone(),
            account: self.account.clone(),
            stop: self.stop_flag(),
        }
    }

    /// A *Triage* click `decide` let through (claimed, linked, allowed).
    pub(crate) fn triage_click(&mut self, click: &Click, envelope_id: &str, facts: &Facts) {
        let splunk_user = facts.splunk_user().map(|user| user.name.clone()).unwrap_or_default();
        let ask = Ask {
            click: click.clone(),
            envelope_id: envelope_id.to_string(),
            splunk_user,
            context: facts.context(click),
            answer_to: AnswerTo::Thread,
        };
        self.start(ask);
    }

    /// A `slash_commands` envelope (acknowledged already).
    pub(crate) fn slash_command(&mut self, envelope: &Envelope) {
        let command = match Command::parse(&envelope.payload) {
            Ok(command) => command,
            Err(why) => {
                log::debug!("Socket Mode: envelope {} is not ours: {why}", envelope.envelope_id);
                return;
            }
        };
        log::info!(
            "Socket Mode: {COMMAND} by {} (envelope {})",
            command.user_id,
            envelope.envelope_id
        );
        let Some((template, value, in_channel)) = command.request() else {
            let remotes = self.remotes();
            let body = json!({"response_type": "ephemeral", "replace_original": false,
                              "text": help_text(&self.settings)});
            remotes.post_response_url(&command.response_url, &body);
            return;
        };
        // The command as a click on a button that names the template: one identity per
        // envelope (a re-delivery is the same command), the same receipt fields.
        let click = Click {
            user_id: command.user_id.clone(),
            user_name: if command.user_name.is_empty() {
                command.user_id.clone()
            } else {
                command.user_name.clone()
            },
            action: Action::Triage(template.clone()),
            value: format!("|{template}"),
            action_ts: envelope.envelope_id.clone(),
            channel_id: command.channel_id.clone(),
            message_ts: String::new(),
            thread_ts: String::new(),
            message_blocks: None,
            message_text: String::new(),
            response_url: command.response_url.clone(),
        };
        let mut link = Map::new();
        link.insert(crate::mapping::triage::SLASH_TOKEN.into(), json!(value));
        let mut ask = Ask {
            click: click.clone(),
            envelope_id: envelope.envelope_id.clone(),
            splunk_user: String::new(),
            context: Context { link, ..Context::default() },
            answer_to: AnswerTo::ResponseUrl { in_channel },
        };
        let remotes = self.remotes();
        match claims::claim_click(self, &click, &envelope.envelope_id) {
            Ok(Claim::Won) => {}
            Ok(Claim::Taken(_)) => {
                let outcome = Outcome::new(Verdict::Duplicate, "seen before; not run again");
                remotes.finish(&ask, &outcome, Map::new());
                return;
            }
            Err(error) => {
                log::warn!("{COMMAND}: {error}");
                remotes.tell(&ask, &format!("StackFlow could not run it now: {error}"));
                return;
            }
        }
        let user = match governance::map_user(&self.splunkd, &self.slack, &click.user_id) {
            Ok(Ok(user)) => user,
            Ok(Err(why)) => return self.refuse(&remotes, &ask, why),
            Err(error) => {
                if claims::trouble_of(&error) == claims::Trouble::Expired {
                    self.expire(&error.to_string());
                }
                let outcome = Outcome::new(Verdict::Failed, error.to_string());
                remotes.tell(&ask, &format!("StackFlow could not run it now: {error}"));
                remotes.finish(&ask, &outcome, Map::new());
                return;
            }
        };
        ask.splunk_user = user.name.clone();
        let needed = governance::capability_for(&click.action);
        if !user.can(needed) {
            let why = format!("the Splunk user \"{}\" lacks the capability {needed}", user.name);
            return self.refuse(&remotes, &ask, why);
        }
        self.start(ask);
    }

    fn refuse(&self, remotes: &Remotes, ask: &Ask, why: String) {
        log::warn!("Socket Mode: {COMMAND} by {} refused: {why}", ask.click.user_id);
        remotes.tell(ask, &format!("StackFlow did not act: {why}."));
        remotes.finish(ask, &Outcome::new(Verdict::Denied, why), Map::new());
    }

    /// The template found and filled, then its search started (now, or queued behind the
    /// permits); anything that stops it first is told and receipted here.
    fn start(&mut self, ask: Ask) {
        let remotes = self.remotes();
        let Action::Triage(name) = &ask.click.action else { return };
        let template = match Template::named(&self.settings.conf, name) {
            Ok(Some(template)) => template,
            Ok(None) => {
                let why =
                    format!("there is no triage template \"{name}\" ({COMMAND} help lists them)");
                remotes.tell(&ask, &format!("Not done: {why}."));
                return remotes.finish(&ask, &Outcome::new(Verdict::Failed, why), Map::new());
            }
            Err(error) => {
                let why = format!("the triage template is not valid: {error}");
                remotes.tell(&ask, &format!("Not done: {why}."));
                return remotes.finish(&ask, &Outcome::new(Verdict::Failed, why), Map::new());
            }
        };
        let search = match crate::triage::fill(&template, &ask.context.link) {
            Ok(search) => search,
            Err(missing) => {
                let why = missing.to_string();
                remotes.tell(&ask, &format!("Not done: {why}."));
                let extra = crate::triage::receipt_fields(&template, None);
                return remotes.finish(&ask, &Outcome::new(Verdict::Failed, why), extra);
            }
        };
        let slots = self.triage_slots();
        let entry = slots.enter();
        let waiter: Result<Permit, Waiter> = match entry {
            Entry::Now(permit) => Ok(permit),
            Entry::Queued(waiter, ahead) => {
                remotes.tell(
                    &ask,
                    &format!(
                        "Your triage ({}) is queued: {} search(es) run at once, {ahead} more wait before it.",
                        template.label,
                        slots_limit(&self.settings)
                    ),
                );
                Err(waiter)
            }
            Entry::Busy => {
                let why = "too many triage searches are waiting; ask again in a minute".to_string();
                remotes.tell(&ask, &format!("Not done: {why}."));
                let extra = crate::triage::receipt_fields(&template, None);
                return remotes.finish(&ask, &Outcome::new(Verdict::Failed, why), extra);
            }
        };
        let job = std::thread::Builder::new().name("triage".into()).spawn(move || {
            let permit = match waiter {
                Ok(permit) => permit,
                Err(waiter) => {
                    let permit = waiter.wait();
                    if remotes.stop.load(Ordering::SeqCst) {
                        drop(permit);
                        let why = "the listener stopped before the search ran; ask again";
                        remotes.tell(&ask, &format!("Not done: {why}."));
                        let extra = crate::triage::receipt_fields(&template, None);
                        return remotes.finish(&ask, &Outcome::new(Verdict::Failed, why), extra);
                    }
                    permit
                }
            };
            remotes.run(&ask, &template, &search, permit);
        });
        match job {
            Ok(handle) => self.triage_jobs.push(handle),
            Err(error) => log::error!("triage: no thread for the search: {error}"),
        }
        self.triage_jobs.retain(|job| !job.is_finished());
    }

    /// The listener's permits, made on first use from `[slack_response]
    /// max_concurrent_searches`.
    fn triage_slots(&mut self) -> Slots {
        self.triage_slots.get_or_insert_with(|| Slots::new(slots_limit(&self.settings))).clone()
    }

    /// Waits for the searches still running (at SIGTERM: their answers and receipts are
    /// written before the process exits, each within its `timeout_s`).
    pub(crate) fn finish_triage(&mut self) {
        for job in self.triage_jobs.drain(..) {
            if job.join().is_err() {
                log::error!("triage: a search's thread failed");
            }
        }
    }
}

fn slots_limit(settings: &Settings) -> usize {
    settings.max_concurrent_searches().unwrap_or_else(|error| {
        log::warn!("{error}; at most 2 triage searches run at once");
        2
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(text: &str) -> Command {
        Command::parse(&json!({"command": "/stackflow", "text": text, "user_id": "U1",
            "user_name": "alice", "channel_id": "C1",
            "response_url": "https://hooks.slack.com/commands/T/1/x"}))
        .unwrap()
    }

    #[test]
    fn commands_read_template_value_and_in_channel() {
        assert_eq!(command("").request(), None);
        assert_eq!(command(" HELP ").request(), None);
        assert_eq!(
            command("by_user o'brien\" OR 1=1").request(),
            Some(("by_user".into(), "o'brien\" OR 1=1".into(), false))
        );
        assert_eq!(
            command("by_user bob in_channel").request(),
            Some(("by_user".into(), "bob".into(), true))
        );
        assert_eq!(
            command("by_user bob_in_channel").request(),
            Some(("by_user".into(), "bob_in_channel".into(), false))
        );
        assert_eq!(command("by_user").request(), Some(("by_user".into(), String::new(), false)));
        for bad in [
            json!({"command": "/other", "text": "x", "user_id": "U1", "response_url": "https://h/x"}),
            json!({"command": "/stackflow", "text": "x", "user_id": "U1"}),
            json!(null),
        ] {
            assert!(Command::parse(&bad).is_err(), "{bad}");
        }
    }
}
