//! The Slack delivery target: one `chat.postMessage` per item, with the account's bot token, the
//! routed channel, link buttons looked up at send time, per-channel pacing (1 message/s), and
//! Slack's `{"ok": false, "error": …}` answers classified into outcomes.
//!
//! Slack does not deduplicate messages, so the deliverer keeps a ledger (`needs_ledger`).

use super::SlackApi;
use super::errors;
use super::read::{ChannelIds, LookupError};
use super::summary::LlmSummaries;
use super::war_room::{self, RoomOutcome, RoomRequest, WarRoomSettings};
use crate::error::Result;
use crate::item::{DeliveryItem, Lookup, Target};
use crate::mapping::slack::{self, LinkBases, LinkRecord};
use crate::net::classify::{StatusClass, classify_status};
use crate::net::{Delivered, Outcome, RejectClass};
use crate::remotes::soar::SoarAccount;
use crate::remotes::soar::claim::ContainerClaims;
use crate::remotes::splunkd::Splunkd;
use crate::remotes::stackflow::StackflowAccount;
use crate::settings::Settings;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The KV store collection the audit module writes links to (PRODUCT §4).
pub const LINKS_COLLECTION: &str = "stackflow_links";
/// The KV store collection of storms (`aggregate_window_s`, PRODUCT §13).
pub const STORMS_COLLECTION: &str = "stackflow_storms";
/// Slack's guidance: one message per second per channel.
pub const CHANNEL_INTERVAL: Duration = Duration::from_secs(1);

pub struct SlackTarget {
    api: SlackApi,
    splunkd: Splunkd,
    bases: LinkBases,
    /// When the last post to each channel (as requested) left.
    last_post: HashMap<String, Instant>,
    /// Channel ids by name, for lookups (`find_delivered`).
    channel_ids: ChannelIds,
    /// `summary = llm`: the model's summaries, asked once per item.
    summaries: LlmSummaries,
    /// Cross-process claims on storms (`None`: no spool folder to hold the locks).
    storm_claims: Option<ContainerClaims>,
    /// `[slack_response] war_room_*` for routes with `war_room = true` (PRODUCT §17), or why
    /// they cannot be read.
    war_room: std::result::Result<WarRoomSettings, String>,
}

impl SlackTarget {
    /// Reads `[slack:<account>]` and the bot token (storage/passwords user `slack.<account>`).
    pub fn open(account: &str, settings: &Settings, splunkd: &Splunkd) -> Result<SlackTarget> {
        let api = SlackApi::open(settings, splunkd, account)?;
        let bases = link_bases(settings, account);
        Ok(SlackTarget {
            api,
            splunkd: splunkd.clone(),
            bases,
            last_post: HashMap::new(),
            channel_ids: ChannelIds::default(),
            summaries: LlmSummaries::new(settings, splunkd),
            storm_claims: ContainerClaims::for_kind(
                settings,
                account,
                "storm",
                "Slack storm message",
            )
            .ok(),
            war_room: WarRoomSettings::from_settings(settings).map_err(|error| error.to_string()),
        })
    }

    /// Looks up `stackflow_links` for the item's rows with an `event_id`. A failed lookup only
    /// costs the buttons, never the message.
    fn lookup_links(&self, hints: &[LinkRecord]) -> Vec<LinkRecord> {
        let mut event_ids: Vec<&str> = Vec::new();
        for hint in hints {
            if !hint.event_id.is_empty() && !event_ids.contains(&hint.event_id.as_str()) {
                event_ids.push(&hint.event_id);
            }
        }
        if event_ids.is_empty() || (self.bases.soar.is_none() && self.bases.stackflow.is_none()) {
            return Vec::new();
        }
        let query = json!({"event_id": {"$in": event_ids}});
        match self.splunkd.kv_query(LINKS_COLLECTION, &query) {
            Ok(records) => records.iter().map(LinkRecord::from_json).collect(),
            Err(error) => {
                log::warn!(
                    "stackflow_slack: cannot look up {LINKS_COLLECTION} for SOAR/StackFlow buttons ({error}); posting without them"
                );
                Vec::new()
            }
        }
    }

    /// Sleeps until one second after the previous post to `channel` in this run.
    fn pace(&self, channel: &str) {
        if let Some(last) = self.last_post.get(channel) {
            let wait = CHANNEL_INTERVAL.saturating_sub(last.elapsed());
            if !wait.is_zero() {
                log::debug!(
                    "stackflow_slack: pacing {channel}: waiting {} ms (1 message/s/channel)",
                    wait.as_millis()
                );
                std::thread::sleep(wait);
            }
        }
    }
}

/// Where SOAR/StackFlow buttons point: `[soar:<account>] url` and the origin of
/// `[stackflow:<account>] api_url`, each falling back to the `default` account.
fn link_bases(settings: &Settings, account: &str) -> LinkBases {
    let first = |read: &dyn Fn(&str) -> Option<String>| {
        [account, "default"].iter().find_map(|name| read(name))
    };
    LinkBases {
        soar: first(&|name| {
            SoarAccount::from_settings(settings, name).ok().map(|a| a.base.to_string())
        }),
        stackflow: first(&|name| {
            StackflowAccount::from_settings(settings, name)
                .ok()
                .and_then(|a| a.api_base.map(|base| base.to_string()))
        }),
    }
}

/// A delivered message's outcome: channel id and ts for the receipt, links and threads.
fn delivered(channel: &str, channel_id: &str, ts: &str, message: String) -> Delivered {
    let mut details = serde_json::Map::new();
    details.insert("slack_channel".into(), Value::String(channel_id.to_string()));
    details.insert("slack_ts".into(), Value::String(ts.to_string()));
    details.insert("slack_channel_name".into(), Value::String(channel.to_string()));
    Delivered {
        remote_id: (!ts.is_empty()).then(|| ts.to_string()),
        remote_url: (!ts.is_empty()).then(|| permalink(channel_id, ts)),
        duplicate: false,
        details,
        message,
    }
}

/// `https://slack.com/archives/<channel id>/p<ts without the dot>` (the permalink form; the
/// workspace's own host would be `https://<workspace>.slack.com/…`, which we cannot know
/// without an extra `chat.getPermalink` call).
pub fn permalink(channel_id: &str, ts: &str) -> String {
    format!("https://slack.com/archives/{channel_id}/p{}", ts.replace('.', ""))
}

/// `response_metadata.messages` and `warning`, for rejection messages.
fn response_details(json: &Value) -> String {
    let mut notes: Vec<String> = json
        .pointer("/response_metadata/messages")
        .and_then(Value::as_array)
        .map(|messages| messages.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    if let Some(warning) = json.get("warning").and_then(Value::as_str) {
        notes.push(format!("warning: {warning}"));
    }
    if notes.is_empty() {
        String::new()
    } else {
        slack::truncate(&format!(" ({})", notes.join("; ")), 600)
    }
}

/// A refused call: its outcome, and Slack's error code when Slack answered `ok: false`.
struct Refused {
    outcome: Box<Outcome>,
    code: Option<String>,
}

impl From<Outcome> for Refused {
    fn from(outcome: Outcome) -> Refused {
        Refused { outcome: Box::new(outcome), code: None }
    }
}

/// chat.update codes after which the storm's message cannot be edited: past the workspace's
/// edit window, in a frozen or archived channel, or gone (Slack Web API spec, chat.update
/// errors). A fresh message is posted instead.
const STORM_MESSAGE_LOST: &[&str] =
    &["edit_window_closed", "is_inactive", "cant_update_message", "message_not_found"];

impl SlackTarget {
    /// One Web API call about a message to `channel`: the answer's JSON when Slack said
    /// `ok: true`, else the classified outcome (`errors`).
    fn call_method(
        &mut self,
        method: &str,
        channel: &str,
        body: &Value,
    ) -> std::result::Result<Value, Refused> {
        let bytes = serde_json::to_vec(body).map_err(|error| {
            Outcome::rejected(
                RejectClass::Remote,
                format!("cannot encode the Slack message: {error}"),
            )
        })?;
        let what = format!("Slack {method} to {channel}");
        let response = self.api.call(method, &bytes)?;
        if let StatusClass::Failed(outcome) = classify_status(&response, &what) {
            return Err(outcome.into());
        }
        let Some(json) = response.json() else {
            return Err(Outcome::retry(
                format!("{what}: the answer is not JSON: {}", response.body_excerpt()),
                None,
            )
            .into());
        };
        if json.get("ok").and_then(Value::as_bool) != Some(true) {
            let code = json.get("error").and_then(Value::as_str).unwrap_or("unknown_error");
            let outcome = errors::outcome(
                method,
                code,
                channel,
                &self.api.account.name,
                &response,
                &response_details(&json),
            );
            return Err(Refused { outcome: Box::new(outcome), code: Some(code.to_string()) });
        }
        Ok(json)
    }

    /// `chat.postMessage`, paced at one message per second per channel.
    fn post(&mut self, channel: &str, body: &Value) -> Outcome {
        self.pace(channel);
        let result = self.call_method("chat.postMessage", channel, body);
        self.last_post.insert(channel.to_string(), Instant::now());
        let json = match result {
            Ok(json) => json,
            Err(refused) => return *refused.outcome,
        };
        let ts = json.get("ts").and_then(Value::as_str).unwrap_or("").to_string();
        let channel_id = json.get("channel").and_then(Value::as_str).unwrap_or(channel).to_string();
        Outcome::Delivered(delivered(
            channel,
            &channel_id,
            &ts,
            format!("posted to {channel} ({channel_id}) ts={ts}"),
        ))
    }

    /// Storm aggregation (PRODUCT §13): under a cross-process claim on the storm, a message of
    /// the same rule and entity posted within the window (KV store `stackflow_storms`) is
    /// updated with the count (`chat.update`) instead of posting another; otherwise the message
    /// is posted and starts a storm. A KV store failure costs the aggregation, never the message.
    fn attempt_storm(&mut self, storm: &Value, channel: &str, body: Value) -> Outcome {
        let key = storm.get("key").and_then(Value::as_str).unwrap_or_default().to_string();
        let window_s = storm.get("window_s").and_then(Value::as_i64).unwrap_or(0);
        let _claim = match &self.storm_claims {
            Some(claims) => match claims.claim(&key) {
                Ok(claim) => Some(claim),
                Err(outcome) => return outcome,
            },
            None => None,
        };
        // Whole seconds since the epoch (the clock is read once; a value out of range reads 0).
        let now = crate::civil_time::now_unix().floor().clamp(0.0, 1e15) as i64;
        let record = match self.splunkd.kv_query(STORMS_COLLECTION, &json!({"_key": key})) {
            Ok(records) => records.into_iter().next(),
            Err(error) => {
                log::warn!(
                    "stackflow_slack: cannot read {STORMS_COLLECTION} ({error}); posting without aggregation"
                );
                None
            }
        };
        let text = |record: &Value, name: &str| {
            record.get(name).and_then(Value::as_str).unwrap_or_default().to_string()
        };
        if let Some(record) = record {
            // KV store numbers may come back as floats or text: read them without trusting them.
            let number = |name: &str| {
                record
                    .get(name)
                    .and_then(|v| v.as_f64().or_else(|| v.as_str()?.trim().parse().ok()))
                    .filter(|v: &f64| v.is_finite())
                    .map(|v| v.clamp(0.0, 1e15) as i64)
            };
            let start = number("window_start").unwrap_or(0);
            let count = number("count").and_then(|n| u64::try_from(n).ok()).unwrap_or(1).max(1);
            let (ts, channel_id) = (text(&record, "slack_ts"), text(&record, "slack_channel"));
            let elapsed = now.saturating_sub(start);
            if elapsed >= 0
                && elapsed < window_s
                && !ts.is_empty()
                && text(&record, "channel") == channel
            {
                let elapsed_s = u64::try_from(elapsed).unwrap_or(0);
                let mut update =
                    slack::with_storm_note(&body, &slack::storm_note(count, elapsed_s));
                update["channel"] = Value::String(channel_id.clone());
                update["ts"] = Value::String(ts.clone());
                if let Some(map) = update.as_object_mut() {
                    map.remove("metadata");
                }
                match self.call_method("chat.update", channel, &update) {
                    Ok(_) => {
                        let total = count.saturating_add(1);
                        let mut saved = record.clone();
                        saved["count"] = json!(total);
                        saved["updated"] = json!(now);
                        self.save_storm(saved);
                        let mut result = delivered(
                            channel,
                            &channel_id,
                            &ts,
                            format!(
                                "aggregated into the storm message in {channel} ts={ts} ({total} alerts in {elapsed_s} s)"
                            ),
                        );
                        result.details.insert("storm_count".into(), json!(total));
                        return Outcome::Delivered(result);
                    }
                    Err(Refused { code: Some(code), .. })
                        if STORM_MESSAGE_LOST.contains(&code.as_str()) =>
                    {
                        log::info!(
                            "stackflow_slack: the storm message in {channel} ts={ts} cannot be updated ({code}); posting a new one"
                        );
                    }
                    Err(refused) => return *refused.outcome,
                }
            }
        }
        let outcome = self.post(channel, &body);
        if let Outcome::Delivered(result) = &outcome {
            let detail = |name: &str| {
                result.details.get(name).and_then(Value::as_str).unwrap_or_default().to_string()
            };
            self.save_storm(json!({
                "_key": key,
                "channel": channel,
                "slack_channel": detail("slack_channel"),
                "slack_ts": detail("slack_ts"),
                "rule": storm.get("rule").cloned().unwrap_or(Value::Null),
                "entity": storm.get("entity").cloned().unwrap_or(Value::Null),
                "window_start": now,
                "count": 1,
                "updated": now,
            }));
        }
        outcome
    }

    fn save_storm(&self, record: Value) {
        if let Err(error) = self.splunkd.kv_batch_save(STORMS_COLLECTION, &[record]) {
            log::warn!(
                "stackflow_slack: cannot save the storm to {STORMS_COLLECTION} ({error}); the next alert of this storm posts a new message"
            );
        }
    }

    /// A route's `war_room = true` after the message was posted: the notable's room is opened
    /// (or linked, when it exists). A room that cannot be made never fails the delivered
    /// message: the reason is logged, said in the message's thread and in the receipt.
    fn open_war_room(
        &self,
        item: &DeliveryItem,
        part: &Value,
        body: &Value,
        delivered: &mut Delivered,
    ) {
        let detail = |name: &str| {
            delivered.details.get(name).and_then(Value::as_str).unwrap_or_default().to_string()
        };
        let (channel_id, ts) = (detail("slack_channel"), detail("slack_ts"));
        let event_id = if item.context.event_id.is_empty() {
            item.dedupe_key.as_str()
        } else {
            item.context.event_id.as_str()
        };
        let rule = part.get("rule").and_then(Value::as_str).unwrap_or(&item.context.search_name);
        let config = match &self.war_room {
            Ok(config) => config,
            Err(problem) => {
                log::warn!("stackflow_slack: no war room for {event_id}: {problem}");
                delivered.message.push_str(&format!("; war room not opened: {problem}"));
                return;
            }
        };
        let request = RoomRequest {
            event_id,
            rule,
            requested_by: None,
            alert: body,
            thread: (!channel_id.is_empty() && !ts.is_empty())
                .then_some((channel_id.as_str(), ts.as_str())),
        };
        let note = match war_room::open_room(&self.api, &self.splunkd, config, &request) {
            RoomOutcome::Created { channel_id, name, invited } => {
                log::info!(
                    "stackflow_slack: war room {name} ({channel_id}) opened for {event_id}, {invited} user(s) invited"
                );
                format!("war room {name} ({channel_id}) opened")
            }
            RoomOutcome::Existing { channel_id, name } => {
                format!("war room {name} ({channel_id}) linked")
            }
            RoomOutcome::InProgress => "war room being opened by another request".to_string(),
            RoomOutcome::Failed { message, .. } => {
                log::warn!("stackflow_slack: no war room for {event_id}: {message}");
                if let Some((channel, ts)) = request.thread {
                    let text = format!("War room not opened: {message}");
                    let reply = json!({"channel": channel, "thread_ts": ts, "text": text});
                    if let Ok(bytes) = serde_json::to_vec(&reply) {
                        let _ = self.api.call("chat.postMessage", &bytes);
                    }
                }
                format!("war room not opened: {message}")
            }
        };
        delivered.message.push_str(&format!("; {note}"));
    }

    /// The item's routed channel, else the account's.
    fn channel_of(&self, request: &Value) -> Option<String> {
        let routed = request.get("channel").and_then(Value::as_str).map(str::trim);
        routed
            .filter(|c| !c.is_empty())
            .map(str::to_string)
            .or_else(|| self.api.account.channel.clone())
    }
}

impl Target for SlackTarget {
    fn attempt(&mut self, item: &DeliveryItem) -> Outcome {
        let mut request = item.request_value();
        let Some(channel) = self.channel_of(&request) else {
            return Outcome::rejected(
                RejectClass::Configuration,
                format!(
                    "no Slack channel: set channel in [slack:{}] of stackflow.conf or the alert's channel parameter",
                    self.api.account.name
                ),
            );
        };
        self.summaries.apply(item, &mut request);
        let hints = slack::link_hints(&request);
        let records = self.lookup_links(&hints);
        let mut body = slack::slack_body(&request, &channel, &records, &self.bases);
        if let Some(blocks) = body.get_mut("blocks").and_then(Value::as_array_mut) {
            slack::add_response_buttons(blocks, &request, &item.dedupe_key);
            slack::fit_limits(blocks);
        }
        // Lets a later attempt find this message if the answer to this one is lost.
        body["metadata"] = super::read::message_metadata(&item.dedupe_key);
        let mut outcome = match request.get("storm").cloned() {
            Some(storm) => self.attempt_storm(&storm, &channel, body.clone()),
            None => self.post(&channel, &body),
        };
        if let (Some(part), Outcome::Delivered(delivered)) = (request.get("war_room"), &mut outcome)
            && !delivered.details.contains_key("storm_count")
        {
            self.open_war_room(item, part, &body, delivered);
        }
        outcome
    }

    fn needs_ledger(&self) -> bool {
        true
    }

    /// Looks for a message with the item's dedupe key in its metadata, posted to the item's
    /// channel since `since_unix` (`conversations.history`).
    fn find_delivered(&mut self, item: &DeliveryItem, since_unix: i64) -> Lookup {
        let request = item.request_value();
        let Some(channel) = self.channel_of(&request) else {
            return Lookup::Absent;
        };
        match self.api.find_message(&channel, &item.dedupe_key, since_unix, &mut self.channel_ids) {
            Ok(Some((channel_id, ts))) => {
                let mut details = serde_json::Map::new();
                details.insert("slack_channel".into(), Value::String(channel_id.clone()));
                details.insert("slack_ts".into(), Value::String(ts.clone()));
                details.insert("slack_channel_name".into(), Value::String(channel.clone()));
                Lookup::Found(Delivered {
                    remote_url: Some(permalink(&channel_id, &ts)),
                    remote_id: Some(ts.clone()),
                    duplicate: true,
                    details,
                    message: format!("found in {channel} ({channel_id}) ts={ts}"),
                })
            }
            Ok(None) => Lookup::Absent,
            Err(LookupError::Transient(reason)) => Lookup::Unknown(reason),
            Err(LookupError::Lasting(reason)) => {
                Lookup::Impossible(format!("cannot look up messages in {channel}: {reason}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permalinks_drop_the_dot() {
        assert_eq!(
            permalink("C1H9RESGL", "1503435956.000247"),
            "https://slack.com/archives/C1H9RESGL/p1503435956000247"
        );
    }
}
