//! Investigate from Slack (PRODUCT §16), the part that runs: one triage template, its tokens
//! filled, through splunkd's search export within its `max_rows` and `timeout_s`, digested row
//! by row, summarised (the template sentence, or the model's under §13's redaction) and
//! rendered as the thread reply; `slots` bounds how many run at once per listener. The Slack
//! side (the button, the slash command, governance, replies, receipts) is `respond`'s.

pub mod slots;

use crate::error::Error;
use crate::mapping::triage::render::{self, Digest, RunEnd};
use crate::mapping::triage::{MissingTokens, SummaryKind, Template};
use crate::remotes::llm::receipt::LlmReceipt;
use crate::remotes::splunkd::Splunkd;
use crate::remotes::splunkd::search::{SearchEnd, SearchRequest};
use crate::settings::Settings;
use serde_json::{Map, Value, json};
use std::time::Instant;

/// What a run gave: the reply and the receipt's facts.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The message (`text`, `blocks`) to post.
    pub body: Value,
    pub rows: u64,
    pub duration_ms: u64,
    /// `done | timeout | failed` (the receipt's `outcome`).
    pub outcome: &'static str,
    /// Plain text: why it failed, or the summary.
    pub message: String,
    /// splunkd refused the session key (the listener's expiry applies).
    pub credentials_refused: bool,
}

/// The template's search filled from a recorded context (`stackflow_links` fields, or the
/// slash command's `value`).
pub fn fill(template: &Template, context: &Map<String, Value>) -> Result<String, MissingTokens> {
    template.fill(|name| context.get(name).and_then(Value::as_str))
}

/// The `stackflow:interaction` fields of a triage run (PRODUCT §16 "Receipt").
pub fn receipt_fields(template: &Template, answer: Option<&Answer>) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert("template".into(), json!(template.name));
    fields.insert("rows".into(), json!(answer.map_or(0, |a| a.rows)));
    fields.insert("duration_ms".into(), json!(answer.map_or(0, |a| a.duration_ms)));
    fields
}

/// Runs `search` (the template, filled) and builds the reply. `rule` names the notable's rule
/// for the model's receipt. Never an error: a failure is an answer saying so.
pub fn run(
    settings: &Settings,
    splunkd: &Splunkd,
    template: &Template,
    search: &str,
    rule: &str,
) -> Answer {
    let started = Instant::now();
    let mut digest = Digest::new(&template.fields);
    let request = SearchRequest {
        search,
        earliest: &template.earliest,
        latest: &template.latest,
        max_rows: template.max_rows,
        timeout: template.timeout,
    };
    let mut credentials_refused = false;
    let end = match splunkd.export(&request, &mut |row| digest.push(row)) {
        Ok(run) if !run.errors.is_empty() && run.rows == 0 => {
            RunEnd::Failed(format!("splunkd: {}", run.errors.join("; ")))
        }
        Ok(run) => match run.end {
            SearchEnd::Complete => RunEnd::Complete,
            SearchEnd::Truncated => RunEnd::Truncated,
            SearchEnd::TimedOut => RunEnd::TimedOut,
        },
        Err(error) => {
            credentials_refused = matches!(error, Error::Credentials(_));
            RunEnd::Failed(error.to_string())
        }
    };
    let mut summary = render::template_summary(template, &digest, &end);
    if template.summary == SummaryKind::Llm && !matches!(end, RunEnd::Failed(_)) {
        let llm = digest.llm_context(template, &summary);
        let receipt = LlmReceipt {
            action: "triage".into(),
            search_name: rule.to_string(),
            ..LlmReceipt::default()
        };
        if let Some(better) = crate::remotes::slack::summary::triage_summary(
            settings,
            splunkd,
            &template.llm_account,
            &template.label,
            &llm,
            &summary,
            receipt,
        ) {
            summary = better;
        }
    }
    let body = render::reply(template, &digest, &summary, &end);
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let message = match &end {
        RunEnd::Failed(reason) => reason.clone(),
        _ => summary,
    };
    Answer {
        body,
        rows: digest.rows(),
        duration_ms,
        outcome: end.outcome(),
        message,
        credentials_refused,
    }
}
