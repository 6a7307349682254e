//! The `stackflow_war_room` button (PRODUCT §17): the clicker (capability
//! `stackflow_respond`) opens the notable's war room through the same code as a route's
//! `war_room = true` (`remotes::slack::war_room`): claimed once per notable in
//! `stackflow_interactions`, the clicker invited with `war_room_users` and the user group,
//! the clicked message's summary, fields and links pinned there, the room linked in the
//! message's thread. A second click (on any message of the notable) links the existing room
//! and invites the clicker. The receipt's `action` is `war_room`.

use super::{Context, Outcome, Responder, Verdict, feedback};
use crate::mapping::slack::escape_mrkdwn;
use crate::remotes::slack::war_room::{self, RoomOutcome, RoomRequest, WarRoomSettings};
use serde_json::json;

/// Opens or links the room for the click's notable; `by` names the clicker (mrkdwn).
pub fn apply(responder: &Responder, click: &super::Click, context: &Context, by: &str) -> Outcome {
    if context.event_id.is_empty() {
        return Outcome::new(Verdict::Failed, "the button names no notable event");
    }
    let config = match WarRoomSettings::from_settings(&responder.settings) {
        Ok(config) => config,
        Err(error) => return Outcome::new(Verdict::Failed, error.to_string()),
    };
    let rule = ["rule_name", "search_name"]
        .into_iter()
        .map(|name| context.field(name))
        .find(|value| !value.is_empty())
        .unwrap_or("alert");
    let alert = json!({"text": click.message_text, "blocks": click.message_blocks.clone().unwrap_or_default()});
    let request = RoomRequest {
        event_id: &context.event_id,
        rule,
        requested_by: Some(&click.user_id),
        alert: &alert,
        thread: (!click.channel_id.is_empty() && !click.thread_ts.is_empty())
            .then_some((click.channel_id.as_str(), click.thread_ts.as_str())),
    };
    match war_room::open_room(&responder.slack, &responder.splunkd, &config, &request) {
        RoomOutcome::Created { channel_id, name, .. } => {
            let line = format!("War room <#{}> opened by {by}", escape_mrkdwn(&channel_id));
            feedback::update_message(&responder.slack, click, &line);
            let mut outcome = Outcome::new(Verdict::Done, format!("war room {name} opened"));
            outcome.remote_id = channel_id;
            outcome
        }
        RoomOutcome::Existing { channel_id, name } => {
            let mut outcome = Outcome::new(Verdict::Done, format!("war room {name} linked"));
            outcome.remote_id = channel_id;
            outcome
        }
        RoomOutcome::InProgress => Outcome::new(
            Verdict::Duplicate,
            "the war room of this notable is being opened by another request",
        ),
        RoomOutcome::Failed { message, .. } => Outcome::new(Verdict::Failed, message),
    }
}
