//! The response buttons of a Slack message (PRODUCT §9): the alert parameters `buttons`
//! (default `ack,escalate,false_positive`; `none` for no buttons), `playbooks` (containment
//! playbooks offered, default none) and `escalate_to` (`stackflow` or `soar`), and what a
//! click will need, carried in the item's request as `respond` and recorded in
//! `stackflow_links` when the message is posted (no search per click).
//!
//! Buttons are added at send time ([`add_response_buttons`]) because their `value` is the
//! item's dedupe key — a reference only, never row data; a playbook button's value is
//! `<dedupe key>|<playbook>`. Only a message about exactly one row gets them (a digest of many
//! notables would not say which one a click is about).

use super::{Action, param_error, truncate};
use crate::error::Result;
use crate::mapping::AlertContext;
use crate::mapping::route::Route;
use crate::splunk::results::Row;
use serde_json::{Map, Value, json};

pub const DEFAULT_BUTTONS: &str = "ack,escalate,false_positive";
/// The `buttons` word that offers the Triage buttons: one per `[triage:<name>]` template whose
/// tokens the row can fill (PRODUCT §16).
pub const TRIAGE_WORD: &str = "triage";
/// Row fields a click may need (escalation builds its incident / container from them).
pub const RESPOND_CONTEXT_FIELDS: [&str; 12] = [
    "event_id",
    "rule_name",
    "severity",
    "urgency",
    "host",
    "src",
    "dest",
    "user",
    "stackflow_priority",
    "mitre_technique",
    "risk_score",
    "orig_sid",
];
/// A context value is cut here (the link record stays small).
const CONTEXT_VALUE_MAX: usize = 300;
/// Playbook names are SOAR names (`repo/name`), kept short.
const PLAYBOOK_MAX: usize = 100;

/// A `buttons` list — the alert parameter and a `[route:<name>]`'s `buttons` effect alike:
/// `ack`, `escalate`, `false_positive` separated by commas (order kept, repeats dropped), or
/// `none`. The error is the problem, for the caller to place.
pub fn parse_buttons(text: &str) -> std::result::Result<Vec<String>, String> {
    let mut buttons: Vec<String> = Vec::new();
    for word in text.split([',', ' ']).map(str::trim).filter(|w| !w.is_empty()) {
        let word = word.to_ascii_lowercase();
        if word == "none" {
            continue;
        }
        if Action::from_word(&word).is_none() && word != TRIAGE_WORD {
            return Err(format!(
                "\"{word}\" is not one of ack, escalate, false_positive, war_room, triage (or none)"
            ));
        }
        if !buttons.contains(&word) {
            buttons.push(word);
        }
    }
    Ok(buttons)
}

/// `buttons`, `playbooks`, `escalate_to`, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseParams {
    /// `ack`, `escalate`, `false_positive`, in the order given.
    pub buttons: Vec<String>,
    pub playbooks: Vec<String>,
    /// `stackflow` or `soar`.
    pub escalate_to: String,
}

impl ResponseParams {
    pub fn from_context(context: &AlertContext) -> Result<ResponseParams> {
        let text = context.param("buttons").unwrap_or(DEFAULT_BUTTONS);
        let buttons = parse_buttons(text).map_err(|problem| param_error("buttons", problem))?;
        let mut playbooks = Vec::new();
        for name in context.param("playbooks").unwrap_or("").split(',').map(str::trim) {
            if name.is_empty() {
                continue;
            }
            let valid = name.len() <= PLAYBOOK_MAX
                && !name.contains('|')
                && name.chars().all(|c| !c.is_control());
            if !valid {
                return Err(param_error(
                    "playbooks",
                    format!(
                        "\"{name}\" is not a playbook name (at most {PLAYBOOK_MAX} characters, no '|')"
                    ),
                ));
            }
            if !playbooks.iter().any(|known| known == name) {
                playbooks.push(name.to_string());
            }
        }
        let escalate_to = context.param("escalate_to").unwrap_or("stackflow").to_ascii_lowercase();
        if escalate_to != "stackflow" && escalate_to != "soar" {
            return Err(param_error(
                "escalate_to",
                format!("\"{escalate_to}\" is not stackflow or soar"),
            ));
        }
        Ok(ResponseParams { buttons, playbooks, escalate_to })
    }

    pub fn is_empty(&self) -> bool {
        self.buttons.is_empty() && self.playbooks.is_empty()
    }

    /// The request's `respond` object for a message about `row` (`None` without buttons). The
    /// row's route, when it sets `buttons`, chooses the buttons instead of the alert parameter.
    pub fn request_part(
        &self,
        context: &AlertContext,
        row: &Row,
        route: Option<&Route>,
    ) -> Option<Value> {
        let buttons = route.and_then(|route| route.buttons.as_ref()).unwrap_or(&self.buttons);
        if buttons.is_empty() && self.playbooks.is_empty() {
            return None;
        }
        let mut fields = Map::new();
        for name in RESPOND_CONTEXT_FIELDS {
            // One notable, one severity: the same word the message shows (PRODUCT §15).
            let value = match name {
                "severity" => crate::mapping::notable_severity(row).or_else(|| row.str(name)),
                _ => row.str(name),
            };
            if let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) {
                fields.insert(name.to_string(), json!(truncate(value, CONTEXT_VALUE_MAX)));
            }
        }
        fields
            .insert("search_name".into(), json!(truncate(&context.search_name, CONTEXT_VALUE_MAX)));
        fields.insert("sid".into(), json!(truncate(&context.sid, CONTEXT_VALUE_MAX)));
        fields.insert("escalate_to".into(), json!(self.escalate_to));
        fields.insert("playbooks".into(), json!(self.playbooks.join(",")));
        let mut triage = Vec::new();
        if buttons.iter().any(|word| word == TRIAGE_WORD) {
            // The fields the templates name are recorded (no search per click), whole: a cut
            // value would search for something else.
            for template in &context.triage {
                let mut complete = true;
                for token in &template.tokens {
                    let value = row.str(token).map(str::trim).filter(|v| !v.is_empty());
                    match value.filter(|v| v.chars().count() <= crate::mapping::triage::VALUE_MAX) {
                        Some(value) => {
                            fields.entry(token.clone()).or_insert_with(|| json!(value));
                        }
                        None => complete = false,
                    }
                }
                if complete {
                    triage.push(json!({"name": template.name, "label": template.label}));
                }
            }
        }
        Some(json!({"buttons": buttons, "playbooks": self.playbooks, "triage": triage,
                    "context": fields}))
    }
}

/// Adds the response buttons of `request["respond"]` to the actions block, with `dedupe_key`
/// as their value. A value over Slack's limit drops the button (a cut reference would point
/// nowhere); the block keeps at most 25 elements; a full message gets no block.
pub fn add_response_buttons(blocks: &mut Vec<Value>, request: &Value, dedupe_key: &str) {
    let Some(respond) = request.get("respond") else { return };
    let words = |key: &str| -> Vec<String> {
        respond
            .get(key)
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    };
    let playbooks = words("playbooks").into_iter().map(Action::Playbook);
    let actions = words("buttons").into_iter().filter_map(|word| Action::from_word(&word));
    let mut buttons: Vec<Value> =
        actions.chain(playbooks).filter_map(|action| action.button(dedupe_key)).collect();
    // One Triage button per template the row can fill, labelled with the template's label.
    let templates = respond.get("triage").and_then(Value::as_array).map(Vec::as_slice);
    for template in templates.unwrap_or_default() {
        let name = template.get("name").and_then(Value::as_str).unwrap_or("");
        let label = template.get("label").and_then(Value::as_str).unwrap_or(name);
        if !name.is_empty()
            && let Some(button) = Action::Triage(name.to_string())
                .button_labelled(dedupe_key, &format!("Triage: {label}"))
        {
            buttons.push(button);
        }
    }
    // Response buttons first, link buttons after them.
    super::blocks::add_to_actions_block(blocks, buttons, true);
}

/// The link-record fields of a posted message: its `respond.context`, as strings.
pub fn link_fields(request: &Value) -> Map<String, Value> {
    request
        .pointer("/respond/context")
        .and_then(Value::as_object)
        .map(|context| {
            context
                .iter()
                .filter(|(_, value)| value.is_string())
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::ACTIONS_BLOCK_ID;
    use super::*;
    use crate::splunk::results::FieldValue;

    fn context(params: &[(&str, &str)]) -> AlertContext {
        AlertContext {
            search_name: "Brute force".into(),
            sid: "sid1".into(),
            params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..AlertContext::default()
        }
    }

    #[test]
    fn parameters() {
        let defaults = ResponseParams::from_context(&context(&[])).unwrap();
        assert_eq!(defaults.buttons, ["ack", "escalate", "false_positive"]);
        assert_eq!(defaults.escalate_to, "stackflow");
        let none = ResponseParams::from_context(&context(&[("buttons", "none")])).unwrap();
        assert!(none.is_empty());
        let some = ResponseParams::from_context(&context(&[
            ("buttons", "ACK, ack"),
            ("playbooks", "local/block_ip, local/isolate_host"),
            ("escalate_to", "SOAR"),
        ]))
        .unwrap();
        assert_eq!(some.buttons, ["ack"]);
        assert_eq!(some.playbooks, ["local/block_ip", "local/isolate_host"]);
        assert_eq!(some.escalate_to, "soar");
        for bad in [("buttons", "close"), ("playbooks", "a|b"), ("escalate_to", "jira")] {
            let error = ResponseParams::from_context(&context(&[bad])).unwrap_err().to_string();
            assert!(error.contains(&format!("param.{}", bad.0)), "{error}");
        }
    }

    #[test]
    fn buttons_carry_only_the_reference_and_respect_limits() {
        let params = ResponseParams::from_context(&context(&[("playbooks", "block_ip")])).unwrap();
        let row = Row::from_pairs(
            "0",
            &[
                ("event_id", FieldValue::Single("E1".into())),
                ("password", FieldValue::Single("hunter2".into())),
                ("severity", FieldValue::Single("high".into())),
            ],
        );
        let request = json!({"respond": params.request_part(&context(&[]), &row, None).unwrap()});
        assert!(!request.to_string().contains("hunter2"));
        let mut blocks = vec![json!({"type": "actions", "block_id": ACTIONS_BLOCK_ID,
            "elements": [{"type": "button", "action_id": "stackflow_open_splunk", "url": "https://x"}]})];
        add_response_buttons(&mut blocks, &request, "slack:default:#soc:sid1");
        let elements = blocks[0]["elements"].as_array().unwrap();
        let ids: Vec<&str> = elements.iter().map(|e| e["action_id"].as_str().unwrap()).collect();
        assert_eq!(
            ids,
            [
                "stackflow_ack",
                "stackflow_escalate",
                "stackflow_false_positive",
                "stackflow_playbook",
                "stackflow_open_splunk"
            ]
        );
        assert_eq!(elements[0]["value"], "slack:default:#soc:sid1");
        assert_eq!(elements[3]["value"], "slack:default:#soc:sid1|block_ip");
        assert_eq!(link_fields(&request)["event_id"], "E1");
        // A route's `buttons` choose the buttons of the rows it matches; `none` removes them
        // (the playbooks stay the alert's).
        let mut route = crate::mapping::route::Route::parse(
            "a",
            &[("buttons".to_string(), "false_positive".to_string())].into_iter().collect(),
        )
        .unwrap();
        let part = params.request_part(&context(&[]), &row, Some(&route)).unwrap();
        assert_eq!(part["buttons"], json!(["false_positive"]));
        route.buttons = Some(Vec::new());
        let part = params.request_part(&context(&[]), &row, Some(&route)).unwrap();
        assert_eq!(part["buttons"], json!([]));
        assert_eq!(part["playbooks"], json!(["block_ip"]));
        let plain = ResponseParams::from_context(&context(&[])).unwrap();
        assert!(plain.request_part(&context(&[]), &row, Some(&route)).is_none());
        assert_eq!(link_fields(&request)["search_name"], "Brute force");
        // A reference too long for a button value gives no buttons rather than a cut one.
        let mut full = vec![];
        add_response_buttons(&mut full, &request, &"k".repeat(3000));
        assert!(full.is_empty());
        // A full actions block keeps 25 elements.
        let mut crowded = vec![json!({"type": "actions", "block_id": ACTIONS_BLOCK_ID,
            "elements": vec![json!({"type": "button"}); 24]})];
        add_response_buttons(&mut crowded, &request, "k");
        assert_eq!(crowded[0]["elements"].as_array().unwrap().len(), 25);
    }
}
