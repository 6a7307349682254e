//! Rows → Slack Block Kit messages for `stackflow_slack`: severity threshold and routing, the
//! header, a plain-language summary, the detection's context as section fields, the
//! "Open in Splunk" button, the digest cap, dedupe keys, and every Block Kit limit.
//!
//! Pure: no I/O. Links to SOAR containers and StackFlow incidents are only known at send time
//! (KV store `stackflow_links`), so the mapper records *link hints* (event ids, ids already in
//! the row) in the item, and the target calls [`add_link_buttons`] and [`slack_body`] — also
//! pure — with what it looked up.
//!
//! Request layout of a Slack item (what the spool stores):
//! `{"channel": <routed channel or null = the account's channel>, "text", "blocks",
//!   "links": [{"event_id", "soar_container_id", "stackflow_incident_id"}]}`.

use super::{AlertContext, RowMapper};
use crate::delivery::{DeliveryItem, ItemContext, RowRef, TargetKind};
use crate::error::{Error, Result};
use crate::splunk::results::{FieldValue, Row};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Block Kit limits (external-apis.md §5.4).
pub mod limits {
    pub const MAX_BLOCKS: usize = 50;
    pub const HEADER_TEXT: usize = 150;
    pub const SECTION_TEXT: usize = 3000;
    pub const MAX_FIELDS: usize = 10;
    pub const FIELD_TEXT: usize = 2000;
    pub const CONTEXT_ELEMENTS: usize = 10;
    /// Text objects in general (context elements).
    pub const TEXT_OBJECT: usize = 3000;
    pub const ACTIONS_ELEMENTS: usize = 25;
    pub const BUTTON_TEXT: usize = 75;
    pub const BUTTON_VALUE: usize = 2000;
    pub const BUTTON_URL: usize = 3000;
    pub const ACTION_ID: usize = 255;
    pub const BLOCK_ID: usize = 255;
}

/// The `block_id` of the buttons block, where the target adds SOAR/StackFlow buttons.
pub const ACTIONS_BLOCK_ID: &str = "stackflow_actions";
/// A field value shown in a message is cut here (the full row is one click away in Splunk).
pub const FIELD_VALUE_MAX: usize = 300;
/// A row summary is cut here.
pub const SUMMARY_MAX: usize = 600;
/// Total characters of row text one message may carry. Slack rejects messages well below the
/// sum of the per-block limits (`msg_blocks_too_long` observed near 13,000 characters), so
/// rows beyond this budget are counted in the "+K more" line instead of being listed.
pub const MESSAGE_TEXT_BUDGET: usize = 11_000;
/// The `text` fallback (notifications) is cut here; Slack allows 40,000.
pub const FALLBACK_TEXT_MAX: usize = 3000;
/// Fixed blocks of an alert message besides the row sections: header, context, "+K more", actions.
const FIXED_BLOCKS: usize = 4;
/// The parameters' "file" in error messages.
const PARAMS: &str = "alert parameters";
const STANZA: &str = "stackflow_slack";

/// Severity words, ordered `informational < low < medium < high < critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Parses the words ES and Splunk use (case-insensitive); `None` for anything else.
    pub fn parse(text: &str) -> Option<Severity> {
        match text.trim().to_ascii_lowercase().as_str() {
            "informational" | "info" => Some(Severity::Informational),
            "low" => Some(Severity::Low),
            "medium" | "med" => Some(Severity::Medium),
            "high" => Some(Severity::High),
            "critical" | "crit" => Some(Severity::Critical),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Informational => "informational",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    pub fn emoji(self) -> &'static str {
        match self {
            Severity::Informational => "🔵",
            Severity::Low => "🟡",
            Severity::Medium => "🟠",
            Severity::High => "🔴",
            Severity::Critical => "🚨",
        }
    }

    /// The row's severity: `severity`, else `urgency`; rows with neither (or an unknown word)
    /// count as `medium`, for the threshold, the routing and the header alike.
    pub fn of_row(row: &Row) -> Severity {
        ["severity", "urgency"]
            .iter()
            .find_map(|name| row.str(name).and_then(Severity::parse))
            .unwrap_or(Severity::Medium)
    }
}

/// `mode=alert`: one message per trigger; `mode=row`: one message per row (capped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Alert,
    Row,
}

/// The action's parameters, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct SlackParams {
    pub account: String,
    pub mode: Mode,
    /// `channel` param; `None` = the account's `channel`.
    pub channel: Option<String>,
    pub severity_channels: BTreeMap<Severity, String>,
    pub min_severity: Severity,
    pub max_rows: usize,
    pub summary_template: Option<String>,
}

fn param_error(key: &str, problem: impl Into<String>) -> Error {
    Error::Config {
        file: PARAMS.into(),
        stanza: STANZA.into(),
        key: format!("param.{key}"),
        problem: problem.into(),
    }
}

impl SlackParams {
    pub fn from_context(context: &AlertContext) -> Result<SlackParams> {
        let mode = match context.param("mode").map(str::to_ascii_lowercase).as_deref() {
            None | Some("alert") => Mode::Alert,
            Some("row") => Mode::Row,
            Some(other) => {
                return Err(param_error("mode", format!("\"{other}\" is not alert or row")));
            }
        };
        let min_severity = match context.param("min_severity") {
            None => Severity::Informational,
            Some(value) => Severity::parse(value).ok_or_else(|| {
                param_error(
                    "min_severity",
                    format!("\"{value}\" is not one of informational, low, medium, high, critical"),
                )
            })?,
        };
        let max_rows = match context.param("max_rows") {
            None => 10,
            Some(value) => {
                value.parse::<usize>().ok().filter(|n| (1..=1000).contains(n)).ok_or_else(|| {
                    param_error("max_rows", format!("\"{value}\" is not a number from 1 to 1000"))
                })?
            }
        };
        Ok(SlackParams {
            account: context.account().to_string(),
            mode,
            channel: context.param("channel").map(str::to_string),
            severity_channels: parse_severity_channels(
                context.param("severity_channels").unwrap_or(""),
            )?,
            min_severity,
            max_rows,
            summary_template: context.param("summary_template").map(str::to_string),
        })
    }

    /// The channel for a severity: `severity_channels`, else `channel`, else `None` (the
    /// account's channel, resolved by the target).
    pub fn route(&self, severity: Severity) -> Option<&str> {
        self.severity_channels.get(&severity).or(self.channel.as_ref()).map(String::as_str)
    }
}

/// Parses `critical=#soc-critical,high=#soc-high` (also `;`-separated, spaces allowed).
pub fn parse_severity_channels(text: &str) -> Result<BTreeMap<Severity, String>> {
    let mut routes = BTreeMap::new();
    for entry in text.split([',', ';', '\n']).map(str::trim).filter(|entry| !entry.is_empty()) {
        let (severity, channel) = entry.split_once('=').ok_or_else(|| {
            param_error(
                "severity_channels",
                format!("\"{entry}\" is not <severity>=<channel> (e.g. critical=#soc-critical)"),
            )
        })?;
        let severity = Severity::parse(severity).ok_or_else(|| {
            param_error(
                "severity_channels",
                format!(
                    "\"{}\" is not one of informational, low, medium, high, critical",
                    severity.trim()
                ),
            )
        })?;
        let channel = channel.trim();
        if channel.is_empty() {
            return Err(param_error(
                "severity_channels",
                format!("no channel given for {}", severity.as_str()),
            ));
        }
        routes.insert(severity, channel.to_string());
    }
    Ok(routes)
}

// ---------------------------------------------------------------------------------------------
// Text helpers

/// Escapes the three characters Slack's mrkdwn treats as control (`&`, `<`, `>`), so that a
/// row value cannot inject links or mentions such as `<!channel>`.
pub fn escape_mrkdwn(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// Cuts `text` to at most `max` characters, ending with `…` when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Like [`truncate`] for escaped mrkdwn: never leaves half an `&amp;` entity at the cut.
pub fn truncate_escaped(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    if let Some(amp) = out.rfind('&')
        && !out[amp..].contains(';')
    {
        out.truncate(amp);
    }
    out.push('…');
    out
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

/// A field's value for display: multivalues joined with ", ".
fn display_value(value: &FieldValue) -> String {
    match value {
        FieldValue::Single(value) => value.trim().to_string(),
        FieldValue::Multi(values) => values
            .iter()
            .map(|value| value.trim())
            .filter(|value| !value.is_empty())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The first of `names` present in the row, for display.
fn first_present(row: &Row, names: &[&str]) -> Option<String> {
    names.iter().filter_map(|name| row.get(name)).map(display_value).find(|value| !value.is_empty())
}

/// `_time` as `YYYY-MM-DD HH:MM:SS UTC` when it is epoch seconds; other text as it is.
pub fn format_time(value: &str) -> String {
    let Some(seconds) = value.trim().parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0)
    else {
        return value.trim().to_string();
    };
    let (year, month, day, hour, minute, second) =
        crate::civil_time::civil_from_unix(seconds.floor() as i64);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC")
}

// ---------------------------------------------------------------------------------------------
// One row's view

/// The context-field table: label, then the row fields tried in order.
const CONTEXT_FIELDS: &[(&str, &[&str])] = &[
    ("User", &["user", "src_user"]),
    ("Source", &["src", "src_ip"]),
    ("Destination", &["dest", "dest_ip"]),
    ("Host", &["host"]),
    ("MITRE ATT&CK tactic", &["annotations.mitre_attack.mitre_tactic", "mitre_tactic"]),
    (
        "MITRE ATT&CK technique",
        &[
            "annotations.mitre_attack.mitre_technique_id",
            "annotations.mitre_attack",
            "mitre_technique",
        ],
    ),
    ("Risk score", &["risk_score"]),
    ("Risk object", &["risk_object"]),
    ("Count", &["count"]),
    ("Time", &["_time"]),
];

/// Link hints of a row: what the target needs to find SOAR/StackFlow links at send time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkRecord {
    pub event_id: String,
    pub soar_container_id: String,
    pub stackflow_incident_id: String,
}

impl LinkRecord {
    pub fn is_empty(&self) -> bool {
        self.event_id.is_empty()
            && self.soar_container_id.is_empty()
            && self.stackflow_incident_id.is_empty()
    }

    fn to_json(&self) -> Value {
        json!({
            "event_id": self.event_id,
            "soar_container_id": self.soar_container_id,
            "stackflow_incident_id": self.stackflow_incident_id,
        })
    }

    /// Reads a hint from the request, or a `stackflow_links` KV record.
    pub fn from_json(value: &Value) -> LinkRecord {
        let text = |key: &str| match value.get(key) {
            Some(Value::String(text)) => text.trim().to_string(),
            Some(Value::Number(number)) => number.to_string(),
            _ => String::new(),
        };
        LinkRecord {
            event_id: text("event_id"),
            soar_container_id: text("soar_container_id"),
            stackflow_incident_id: text("stackflow_incident_id"),
        }
    }
}

/// What a message shows about one row, before escaping and limits.
#[derive(Clone, Debug)]
pub struct RowView {
    pub severity: Severity,
    pub title: Option<String>,
    pub summary: String,
    pub fields: Vec<(&'static str, String)>,
    pub link: LinkRecord,
    pub row_ref: RowRef,
}

/// Builds a row's view: severity, title (`rule_name`), summary, context fields, link hints.
pub fn row_view(row: &Row, context: &AlertContext, template: Option<&str>) -> RowView {
    let severity = Severity::of_row(row);
    let summary = match template {
        Some(template) => render_template(template, row, context, severity),
        None => default_summary(row, context),
    };
    let summary = if summary.trim().is_empty() { default_summary(row, context) } else { summary };
    let mut fields = Vec::new();
    for (label, names) in CONTEXT_FIELDS {
        let Some(mut value) = first_present(row, names) else { continue };
        if *label == "Time" {
            value = format_time(&value);
        }
        if *label == "Risk object"
            && let Some(kind) = row.str("risk_object_type")
        {
            value = format!("{value} ({kind})");
        }
        fields.push((*label, value));
    }
    RowView {
        severity,
        title: row.str("rule_name").map(str::to_string),
        summary,
        fields,
        link: LinkRecord {
            event_id: row.str("event_id").unwrap_or_default().to_string(),
            soar_container_id: row.str("soar_container_id").unwrap_or_default().to_string(),
            stackflow_incident_id: row.str("stackflow_incident_id").unwrap_or_default().to_string(),
        },
        row_ref: RowRef {
            rid: row.rid.clone(),
            orig_sid: row.str("orig_sid").unwrap_or_default().to_string(),
            orig_rid: row.str("orig_rid").unwrap_or_default().to_string(),
            event_id: row.str("event_id").unwrap_or_default().to_string(),
        },
    }
}

/// "User jdoe: 42 failure events from 10.0.0.5 to finance-db on dc01 at 2026-11-21 19:55:00 UTC".
/// Who (`user`/`src_user`), what (`count` + `action`, else `signature`), where (`src`, `dest`,
/// `host` when it differs from `dest`), when (`_time`); falls back to the search's name.
pub fn default_summary(row: &Row, context: &AlertContext) -> String {
    let who = first_present(row, &["user", "src_user"]);
    let count = first_present(row, &["count"]);
    let action = first_present(row, &["action"]);
    let what = match (count, action) {
        (Some(count), Some(action)) => {
            let noun = if count == "1" { "event" } else { "events" };
            Some(format!("{count} {action} {noun}"))
        }
        (Some(count), None) => {
            let noun = if count == "1" { "event" } else { "events" };
            Some(format!("{count} {noun}"))
        }
        (None, Some(action)) => Some(format!("action {action}")),
        (None, None) => first_present(row, &["signature"]),
    };
    let src = first_present(row, &["src", "src_ip"]);
    let dest = first_present(row, &["dest", "dest_ip"]);
    let host = first_present(row, &["host"]).filter(|host| Some(host) != dest.as_ref());
    let time = first_present(row, &["_time"]).map(|time| format_time(&time));
    let mut parts: Vec<String> = Vec::new();
    if let Some(src) = src {
        parts.push(format!("from {src}"));
    }
    if let Some(dest) = dest {
        parts.push(format!("to {dest}"));
    }
    if let Some(host) = host {
        parts.push(format!("on {host}"));
    }
    if let Some(time) = time {
        parts.push(format!("at {time}"));
    }
    let rest = parts.join(" ");
    let sentence = match (who, what) {
        (Some(who), Some(what)) => format!("User {who}: {what} {rest}"),
        (Some(who), None) => format!("User {who}: activity {rest}"),
        (None, Some(what)) => format!("{what} {rest}"),
        (None, None) if !rest.is_empty() => format!("Activity {rest}"),
        (None, None) => {
            let name = if context.search_name.is_empty() {
                "the alert"
            } else {
                context.search_name.as_str()
            };
            format!("{name} returned a result")
        }
    };
    let sentence = sentence.trim().to_string();
    let mut letters = sentence.chars();
    match letters.next() {
        Some(first) => first.to_uppercase().chain(letters).collect(),
        None => sentence,
    }
}

/// Replaces `{field}` tokens with the row's values (multivalues joined with ", ", `_time` as
/// UTC), like the SOAR container name template; when the row has no such field, `search_name`,
/// `sid`, `app`, `owner`, `severity` and `rid` name the alert's own values; any other absent
/// field becomes empty. Braces around anything that is not a field name stay as they are.
pub fn render_template(
    template: &str,
    row: &Row,
    context: &AlertContext,
    severity: Severity,
) -> String {
    let out = super::render_template(template, |name| match row.get(name) {
        Some(value) if name == "_time" => format_time(&display_value(value)),
        Some(value) => display_value(value),
        None if name == "severity" => severity.as_str().to_string(),
        None => super::context_value(name, row, context),
    });
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------------------------
// Blocks

fn plain(text: &str) -> Value {
    json!({"type": "plain_text", "text": text, "emoji": true})
}

fn mrkdwn(text: &str) -> Value {
    json!({"type": "mrkdwn", "text": text})
}

/// The header block: `🔴 HIGH · <title>`.
pub fn header_text(severity: Severity, title: &str) -> String {
    truncate(
        &format!("{} {} · {}", severity.emoji(), severity.as_str().to_ascii_uppercase(), title),
        limits::HEADER_TEXT,
    )
}

/// A row's section: the summary as text (escaped, cut), the context as fields.
pub fn row_section(view: &RowView, prefix: &str) -> Value {
    let summary = truncate_escaped(&escape_mrkdwn(&view.summary), SUMMARY_MAX);
    let text = truncate_escaped(&format!("{prefix}{summary}"), limits::SECTION_TEXT);
    let fields: Vec<Value> = view
        .fields
        .iter()
        .take(limits::MAX_FIELDS)
        .map(|(label, value)| {
            let value = truncate_escaped(&escape_mrkdwn(value), FIELD_VALUE_MAX);
            mrkdwn(&truncate_escaped(
                &format!("*{}*\n{value}", escape_mrkdwn(label)),
                limits::FIELD_TEXT,
            ))
        })
        .collect();
    let mut section = json!({"type": "section", "text": mrkdwn(&text)});
    if !fields.is_empty() {
        section["fields"] = Value::Array(fields);
    }
    section
}

/// Characters of text a block carries (what counts towards [`MESSAGE_TEXT_BUDGET`]).
fn block_chars(block: &Value) -> usize {
    let text = block.pointer("/text/text").and_then(Value::as_str).map_or(0, chars);
    let fields = block.get("fields").and_then(Value::as_array).map_or(0, |fields| {
        fields.iter().filter_map(|f| f.get("text").and_then(Value::as_str)).map(chars).sum()
    });
    text + fields
}

/// The "Open in Splunk" button, when the link fits.
fn splunk_button(results_link: &str) -> Option<Value> {
    let link = results_link.trim();
    if link.is_empty() || chars(link) > limits::BUTTON_URL {
        return None;
    }
    Some(json!({
        "type": "button",
        "action_id": "stackflow_open_splunk",
        "text": plain("Open in Splunk"),
        "url": link,
        "style": "primary",
    }))
}

/// A mrkdwn link to the results, or a plain phrase when the link is unusable.
fn results_phrase(results_link: &str, label: &str) -> String {
    let link = results_link.trim();
    if link.is_empty() || chars(link) > 2000 || link.contains(['|', '>', '<']) {
        label.to_string()
    } else {
        format!("<{link}|{label}>")
    }
}

fn actions_block(results_link: &str) -> Option<Value> {
    splunk_button(results_link).map(
        |button| json!({"type": "actions", "block_id": ACTIONS_BLOCK_ID, "elements": [button]}),
    )
}

/// The `context` line under the header: search name, result count, app.
fn context_block(context: &AlertContext, results: u64) -> Value {
    let mut parts = Vec::new();
    if !context.search_name.is_empty() {
        parts.push(format!("Search *{}*", escape_mrkdwn(&context.search_name)));
    }
    parts.push(format!("{results} result{}", if results == 1 { "" } else { "s" }));
    if !context.app.is_empty() {
        parts.push(format!("app `{}`", escape_mrkdwn(&context.app)));
    }
    parts.push("StackFlow for Splunk".to_string());
    let text = truncate_escaped(&parts.join(" · "), limits::TEXT_OBJECT);
    json!({"type": "context", "elements": [mrkdwn(&text)]})
}

fn fallback_text(severity: Severity, title: &str, summary: &str, more: u64) -> String {
    let more = if more > 0 { format!(" (+{more} more)") } else { String::new() };
    let text = format!(
        "{} {} · {}: {}{more}",
        severity.emoji(),
        severity.as_str().to_ascii_uppercase(),
        escape_mrkdwn(title),
        escape_mrkdwn(summary)
    );
    truncate_escaped(&text, FALLBACK_TEXT_MAX)
}

fn title_of(view: Option<&RowView>, context: &AlertContext) -> String {
    view.and_then(|view| view.title.clone())
        .or_else(|| Some(context.search_name.clone()).filter(|name| !name.is_empty()))
        .unwrap_or_else(|| "Splunk alert".to_string())
}

fn links_json(views: &[&RowView]) -> Value {
    Value::Array(
        views.iter().filter(|view| !view.link.is_empty()).map(|view| view.link.to_json()).collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// The mapper

/// A row listed in an alert message, already rendered.
struct Listed {
    view: RowView,
    section: Value,
}

pub struct SlackMapper {
    context: AlertContext,
    params: SlackParams,
    /// Rows below `min_severity`.
    below_threshold: u64,
    // mode=alert
    listed: Vec<Listed>,
    listed_chars: usize,
    /// Rows that passed the threshold but are not listed ("+K more").
    unlisted: u64,
    top: Option<Severity>,
    // mode=row
    posted: usize,
    overflow: u64,
    overflow_top: Option<Severity>,
    overflow_first: Option<RowRef>,
    /// Rows counted in a "+K more" line (either mode), so that each still gets its status line
    /// and receipt with the message that mentions it; at most `MAX_SUMMARIZED_ROWS`.
    summarized: Vec<RowRef>,
}

/// Rows kept for status lines beyond the listed ones (about 100 bytes each).
const MAX_SUMMARIZED_ROWS: usize = 100_000;

impl SlackMapper {
    pub fn new(context: AlertContext) -> Result<SlackMapper> {
        let params = SlackParams::from_context(&context)?;
        Ok(SlackMapper {
            context,
            params,
            below_threshold: 0,
            listed: Vec::new(),
            listed_chars: 0,
            unlisted: 0,
            top: None,
            posted: 0,
            overflow: 0,
            overflow_top: None,
            overflow_first: None,
            summarized: Vec::new(),
        })
    }

    pub fn params(&self) -> &SlackParams {
        &self.params
    }

    /// `slack:<account>:<channel>:<sid>[:<result_id>]`; the channel is the routed one, or
    /// `account-default` when the account's own `channel` will be used.
    fn key_prefix(&self, channel: Option<&str>) -> String {
        let mut key = format!(
            "slack:{}:{}:{}",
            self.params.account,
            channel.unwrap_or("account-default"),
            self.context.sid
        );
        if let Some(result_id) = &self.context.result_id {
            key.push(':');
            key.push_str(result_id);
        }
        key
    }

    fn item(&self, dedupe_key: String, request: Value, rows: Vec<RowRef>) -> DeliveryItem {
        let mut context: ItemContext = self.context.item_context(&[]);
        if let Some(first) = rows.first() {
            context.rid = first.rid.clone();
            context.orig_sid = first.orig_sid.clone();
            context.orig_rid = first.orig_rid.clone();
            context.event_id = first.event_id.clone();
        }
        context.rows = rows;
        DeliveryItem {
            target: TargetKind::Slack,
            account: self.params.account.clone(),
            dedupe_key,
            request: DeliveryItem::raw_from_value(&request),
            context,
        }
    }

    /// How many rows an alert message may list: `max_rows`, within the block limit.
    fn list_cap(&self) -> usize {
        self.params.max_rows.min(limits::MAX_BLOCKS - FIXED_BLOCKS)
    }

    fn push_alert(&mut self, view: RowView) {
        self.top = self.top.max(Some(view.severity));
        if self.listed.len() >= self.list_cap() {
            self.unlisted += 1;
            return;
        }
        let section = row_section(&view, "");
        let size = block_chars(&section);
        if !self.listed.is_empty() && self.listed_chars + size > MESSAGE_TEXT_BUDGET {
            self.unlisted += 1;
            return;
        }
        self.listed_chars += size;
        self.listed.push(Listed { view, section });
    }

    /// The one message of `mode=alert`.
    fn alert_message(&mut self) -> Option<DeliveryItem> {
        let severity = self.top?;
        let listed = std::mem::take(&mut self.listed);
        let first = listed.first().map(|listed| &listed.view);
        let title = title_of(first, &self.context);
        let results = listed.len() as u64 + self.unlisted;
        let mut blocks = vec![
            json!({"type": "header", "text": plain(&header_text(severity, &title))}),
            context_block(&self.context, results),
        ];
        let many = listed.len() > 1;
        for listed_row in &listed {
            if many {
                let prefix = format!(
                    "{} *{}* · ",
                    listed_row.view.severity.emoji(),
                    listed_row.view.severity.as_str().to_ascii_uppercase()
                );
                blocks.push(row_section(&listed_row.view, &prefix));
            } else {
                blocks.push(listed_row.section.clone());
            }
        }
        if self.unlisted > 0 {
            let text = format!(
                "+{} more result{} not shown · {}",
                self.unlisted,
                if self.unlisted == 1 { "" } else { "s" },
                results_phrase(&self.context.results_link, "open all results in Splunk")
            );
            blocks.push(json!({"type": "context", "elements": [mrkdwn(&truncate_escaped(&text, limits::TEXT_OBJECT))]}));
        }
        if let Some(actions) = actions_block(&self.context.results_link) {
            blocks.push(actions);
        }
        let summary = first.map(|view| view.summary.clone()).unwrap_or_default();
        let channel = self.params.route(severity).map(str::to_string);
        let views: Vec<&RowView> = listed.iter().map(|listed| &listed.view).collect();
        let request = json!({
            "channel": channel,
            "text": fallback_text(severity, &title, &summary, results.saturating_sub(1)),
            "blocks": blocks,
            "links": links_json(&views),
        });
        let key = self.key_prefix(channel.as_deref());
        let mut rows: Vec<RowRef> =
            listed.iter().map(|listed| listed.view.row_ref.clone()).collect();
        rows.append(&mut self.summarized);
        self.unlisted = 0;
        self.top = None;
        Some(self.item(key, request, rows))
    }

    fn summarize(&mut self, row: &Row) {
        if self.summarized.len() < MAX_SUMMARIZED_ROWS {
            self.summarized.extend(self.context.item_context(&[row]).rows);
        }
    }

    /// One message of `mode=row`.
    fn row_message(&self, view: RowView, row: &Row) -> DeliveryItem {
        let title = title_of(Some(&view), &self.context);
        let mut blocks = vec![
            json!({"type": "header", "text": plain(&header_text(view.severity, &title))}),
            context_block(&self.context, 1),
            row_section(&view, ""),
        ];
        if let Some(actions) = actions_block(&self.context.results_link) {
            blocks.push(actions);
        }
        let channel = self.params.route(view.severity).map(str::to_string);
        let request = json!({
            "channel": channel,
            "text": fallback_text(view.severity, &title, &view.summary, 0),
            "blocks": blocks,
            "links": links_json(&[&view]),
        });
        let suffix = match row.str("event_id") {
            Some(event_id) => event_id.to_string(),
            None => row_hash(row),
        };
        let key = format!("{}:{suffix}", self.key_prefix(channel.as_deref()));
        self.item(key, request, vec![view.row_ref])
    }

    /// The digest-cap summary of `mode=row`: "+K more results not posted".
    fn overflow_message(&mut self) -> Option<DeliveryItem> {
        let severity = self.overflow_top?;
        let count = self.overflow;
        let title = title_of(None, &self.context);
        let text = format!(
            "+{count} more result{} not posted (at most {} messages per run): {}",
            if count == 1 { "" } else { "s" },
            self.params.max_rows,
            results_phrase(&self.context.results_link, "open all results in Splunk")
        );
        let mut blocks = vec![
            json!({"type": "header", "text": plain(&header_text(severity, &title))}),
            json!({"type": "section", "text": mrkdwn(&truncate_escaped(&text, limits::SECTION_TEXT))}),
        ];
        if let Some(actions) = actions_block(&self.context.results_link) {
            blocks.push(actions);
        }
        let link = self.context.results_link.trim();
        let fallback = truncate(
            &format!(
                "{} {} · {}: +{count} more results not posted: {link}",
                severity.emoji(),
                severity.as_str().to_ascii_uppercase(),
                escape_mrkdwn(&title)
            ),
            FALLBACK_TEXT_MAX,
        );
        let channel = self.params.route(severity).map(str::to_string);
        let request = json!({"channel": channel, "text": fallback, "blocks": blocks, "links": []});
        let key = format!("{}:more", self.key_prefix(channel.as_deref()));
        let first = self.overflow_first.take();
        let mut rows = std::mem::take(&mut self.summarized);
        if rows.is_empty() {
            rows.extend(first);
        }
        self.overflow = 0;
        self.overflow_top = None;
        Some(self.item(key, request, rows))
    }

    fn log_skipped(&mut self) {
        if self.below_threshold > 0 {
            log::info!(
                "{STANZA}: {} row(s) below min_severity={} were not posted",
                self.below_threshold,
                self.params.min_severity.as_str()
            );
            self.below_threshold = 0;
        }
    }
}

/// A stable hash of a row (its rid and every field), for dedupe keys of rows without `event_id`.
pub fn row_hash(row: &Row) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for byte in bytes {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    };
    feed(row.rid.as_bytes());
    for (name, value) in row.fields() {
        feed(name.as_bytes());
        for value in value.values() {
            feed(value.as_bytes());
        }
    }
    format!("{hash:016x}")
}

impl RowMapper for SlackMapper {
    fn push(&mut self, row: &Row) -> Result<Vec<DeliveryItem>> {
        let severity = Severity::of_row(row);
        if severity < self.params.min_severity {
            self.below_threshold += 1;
            return Ok(Vec::new());
        }
        match self.params.mode {
            Mode::Alert => {
                if self.listed.len() >= self.list_cap() {
                    // Counted only: no need to render a row that will not be listed.
                    self.top = self.top.max(Some(severity));
                    self.unlisted += 1;
                    self.summarize(row);
                    return Ok(Vec::new());
                }
                let view = row_view(row, &self.context, self.params.summary_template.as_deref());
                self.push_alert(view);
                Ok(Vec::new())
            }
            Mode::Row => {
                if self.posted >= self.params.max_rows {
                    self.overflow += 1;
                    self.overflow_top = self.overflow_top.max(Some(severity));
                    if self.overflow_first.is_none() {
                        self.overflow_first = Some(row_view(row, &self.context, None).row_ref);
                    }
                    self.summarize(row);
                    return Ok(Vec::new());
                }
                self.posted += 1;
                let view = row_view(row, &self.context, self.params.summary_template.as_deref());
                Ok(vec![self.row_message(view, row)])
            }
        }
    }

    fn finish(&mut self) -> Result<Vec<DeliveryItem>> {
        self.log_skipped();
        let item = match self.params.mode {
            Mode::Alert => self.alert_message(),
            Mode::Row => {
                if self.overflow > 0 {
                    log::warn!(
                        "{STANZA}: digest cap reached: {} row(s) not posted individually (max_rows={}); one summary message instead",
                        self.overflow,
                        self.params.max_rows
                    );
                }
                self.overflow_message()
            }
        };
        Ok(item.into_iter().collect())
    }
}

// ---------------------------------------------------------------------------------------------
// Send-time helpers (pure; called by the target)

/// Where SOAR containers and StackFlow incidents are shown: the SOAR base URL and the
/// StackFlow incidents API base of the account (the same links receipts carry).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkBases {
    pub soar: Option<String>,
    pub stackflow: Option<String>,
}

impl LinkBases {
    pub fn soar_url(&self, container_id: &str) -> Option<String> {
        self.soar.as_deref().map(|base| super::soar_container_url(base, container_id))
    }

    pub fn stackflow_url(&self, incident_id: &str) -> Option<String> {
        self.stackflow.as_deref().map(|base| super::stackflow_incident_url(base, incident_id))
    }
}

/// The link hints an item carries.
pub fn link_hints(request: &Value) -> Vec<LinkRecord> {
    request
        .get("links")
        .and_then(Value::as_array)
        .map(|links| links.iter().map(LinkRecord::from_json).collect())
        .unwrap_or_default()
}

/// Adds *Open SOAR container* / *Open StackFlow incident* buttons for the rows' links (hints
/// merged with KV records of the same `event_id`). One button per distinct id; with several,
/// the label names the id. Buttons whose URL is too long are dropped; the actions block keeps
/// at most 25 elements; a message that has no room for the block gets none.
pub fn add_link_buttons(
    blocks: &mut Vec<Value>,
    hints: &[LinkRecord],
    records: &[LinkRecord],
    bases: &LinkBases,
) {
    let mut soar: Vec<String> = Vec::new();
    let mut stackflow: Vec<String> = Vec::new();
    let add = |list: &mut Vec<String>, id: &str| {
        let id = id.trim();
        if !id.is_empty() && !list.iter().any(|known| known == id) {
            list.push(id.to_string());
        }
    };
    for hint in hints {
        add(&mut soar, &hint.soar_container_id);
        add(&mut stackflow, &hint.stackflow_incident_id);
        if hint.event_id.is_empty() {
            continue;
        }
        for record in records.iter().filter(|record| record.event_id == hint.event_id) {
            add(&mut soar, &record.soar_container_id);
            add(&mut stackflow, &record.stackflow_incident_id);
        }
    }
    let mut buttons = Vec::new();
    let mut push =
        |kind: &str, label: &str, ids: &[String], url_of: &dyn Fn(&str) -> Option<String>| {
            for id in ids {
                let Some(url) = url_of(id).filter(|url| chars(url) <= limits::BUTTON_URL) else {
                    continue;
                };
                let text = if ids.len() == 1 { label.to_string() } else { format!("{label} {id}") };
                buttons.push(json!({
                "type": "button",
                "action_id": truncate(&format!("stackflow_open_{kind}_{id}"), limits::ACTION_ID),
                "text": plain(&truncate(&text, limits::BUTTON_TEXT)),
                "url": url,
                "value": truncate(id, limits::BUTTON_VALUE),
            }));
            }
        };
    push("soar", "Open SOAR container", &soar, &|id| bases.soar_url(id));
    push("stackflow", "Open StackFlow incident", &stackflow, &|id| bases.stackflow_url(id));
    if buttons.is_empty() {
        return;
    }
    let position = blocks
        .iter()
        .position(|block| block.get("block_id").and_then(Value::as_str) == Some(ACTIONS_BLOCK_ID));
    let index = match position {
        Some(index) => index,
        None if blocks.len() < limits::MAX_BLOCKS => {
            blocks.push(json!({"type": "actions", "block_id": ACTIONS_BLOCK_ID, "elements": []}));
            blocks.len() - 1
        }
        None => return,
    };
    if let Some(elements) = blocks[index].get_mut("elements").and_then(Value::as_array_mut) {
        for button in buttons {
            if elements.len() >= limits::ACTIONS_ELEMENTS {
                break;
            }
            elements.push(button);
        }
    }
}

fn fit_text_object(object: &mut Value, max: usize) {
    let kind = object.get("type").and_then(Value::as_str).unwrap_or("plain_text").to_string();
    if let Some(Value::String(text)) = object.get_mut("text")
        && chars(text) > max
    {
        *text = if kind == "mrkdwn" { truncate_escaped(text, max) } else { truncate(text, max) };
    }
}

/// Last line of defence before posting: cuts every text to its Block Kit limit, drops URLs
/// that are too long (a cut URL would be wrong), empty blocks, and blocks past 50 (keeping the
/// actions block). Never fails.
pub fn fit_limits(blocks: &mut Vec<Value>) {
    for block in blocks.iter_mut() {
        if let Some(Value::String(id)) = block.get_mut("block_id")
            && chars(id) > limits::BLOCK_ID
        {
            *id = truncate(id, limits::BLOCK_ID);
        }
        let kind = block.get("type").and_then(Value::as_str).unwrap_or("").to_string();
        match kind.as_str() {
            "header" => {
                if let Some(text) = block.get_mut("text") {
                    fit_text_object(text, limits::HEADER_TEXT);
                }
            }
            "section" => {
                if let Some(text) = block.get_mut("text") {
                    fit_text_object(text, limits::SECTION_TEXT);
                }
                if let Some(fields) = block.get_mut("fields").and_then(Value::as_array_mut) {
                    fields.truncate(limits::MAX_FIELDS);
                    for field in fields.iter_mut() {
                        fit_text_object(field, limits::FIELD_TEXT);
                    }
                }
            }
            "context" => {
                if let Some(elements) = block.get_mut("elements").and_then(Value::as_array_mut) {
                    elements.truncate(limits::CONTEXT_ELEMENTS);
                    for element in elements.iter_mut() {
                        fit_text_object(element, limits::TEXT_OBJECT);
                    }
                }
            }
            "actions" => {
                if let Some(elements) = block.get_mut("elements").and_then(Value::as_array_mut) {
                    elements.retain(|element| {
                        element
                            .get("url")
                            .and_then(Value::as_str)
                            .is_none_or(|url| chars(url) <= limits::BUTTON_URL)
                    });
                    elements.truncate(limits::ACTIONS_ELEMENTS);
                    for element in elements.iter_mut() {
                        if let Some(text) = element.get_mut("text") {
                            fit_text_object(text, limits::BUTTON_TEXT);
                        }
                        for (key, max) in
                            [("value", limits::BUTTON_VALUE), ("action_id", limits::ACTION_ID)]
                        {
                            if let Some(Value::String(text)) = element.get_mut(key)
                                && chars(text) > max
                            {
                                *text = truncate(text, max);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    blocks.retain(|block| match block.get("type").and_then(Value::as_str) {
        Some("actions") | Some("context") => {
            block.get("elements").and_then(Value::as_array).is_some_and(|e| !e.is_empty())
        }
        _ => true,
    });
    if blocks.len() > limits::MAX_BLOCKS {
        let actions = blocks
            .iter()
            .position(|block| {
                block.get("block_id").and_then(Value::as_str) == Some(ACTIONS_BLOCK_ID)
            })
            .map(|index| blocks.remove(index));
        let keep = limits::MAX_BLOCKS - usize::from(actions.is_some());
        blocks.truncate(keep);
        blocks.extend(actions);
    }
}

/// The `chat.postMessage` body for an item's request: channel, fallback text, blocks with the
/// link buttons, limits enforced; no link previews.
pub fn slack_body(
    request: &Value,
    channel: &str,
    records: &[LinkRecord],
    bases: &LinkBases,
) -> Value {
    let mut blocks: Vec<Value> =
        request.get("blocks").and_then(Value::as_array).cloned().unwrap_or_default();
    add_link_buttons(&mut blocks, &link_hints(request), records, bases);
    fit_limits(&mut blocks);
    let text = request.get("text").and_then(Value::as_str).unwrap_or("");
    let text = if text.trim().is_empty() { "Splunk alert" } else { text };
    json!({
        "channel": channel,
        "text": truncate_escaped(text, FALLBACK_TEXT_MAX),
        "blocks": blocks,
        "unfurl_links": false,
        "unfurl_media": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(params: &[(&str, &str)]) -> AlertContext {
        AlertContext {
            action: STANZA.into(),
            sid: "sid1".into(),
            search_name: "Brute Force Access Behavior Detected".into(),
            app: "search".into(),
            owner: "admin".into(),
            results_link: "https://sh:8000/app/search/@go?sid=sid1".into(),
            rows_total: 1,
            params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..AlertContext::default()
        }
    }

    fn row(rid: &str, pairs: &[(&str, &str)]) -> Row {
        let pairs: Vec<(&str, FieldValue)> =
            pairs.iter().map(|(k, v)| (*k, FieldValue::Single(v.to_string()))).collect();
        Row::from_pairs(rid, &pairs)
    }

    fn run(mapper: &mut SlackMapper, rows: &[Row]) -> Vec<DeliveryItem> {
        let mut items = Vec::new();
        for row in rows {
            items.extend(mapper.push(row).unwrap());
        }
        items.extend(mapper.finish().unwrap());
        items
    }

    fn all_text(value: &Value) -> String {
        value.to_string()
    }

    #[test]
    fn severities_order_and_parse() {
        assert!(Severity::Informational < Severity::Low);
        assert!(Severity::High < Severity::Critical);
        assert_eq!(Severity::parse(" HIGH "), Some(Severity::High));
        assert_eq!(Severity::parse("info"), Some(Severity::Informational));
        assert_eq!(Severity::parse("urgent"), None);
        assert_eq!(Severity::of_row(&row("0", &[("urgency", "critical")])), Severity::Critical);
        assert_eq!(
            Severity::of_row(&row("0", &[("severity", "low"), ("urgency", "critical")])),
            Severity::Low
        );
        assert_eq!(Severity::of_row(&row("0", &[])), Severity::Medium);
    }

    #[test]
    fn params_are_validated() {
        let bad = SlackMapper::new(context(&[("min_severity", "urgent")])).err().unwrap();
        assert!(bad.to_string().contains("param.min_severity"), "{bad}");
        assert!(SlackMapper::new(context(&[("mode", "batch")])).is_err());
        assert!(SlackMapper::new(context(&[("max_rows", "0")])).is_err());
        let routes = parse_severity_channels("critical=#soc-critical, high = #soc-high").unwrap();
        assert_eq!(routes.get(&Severity::Critical).map(String::as_str), Some("#soc-critical"));
        assert_eq!(routes.get(&Severity::High).map(String::as_str), Some("#soc-high"));
        assert!(parse_severity_channels("severe=#x").is_err());
        assert!(parse_severity_channels("high").is_err());
    }

    #[test]
    fn default_summary_says_who_what_where_when() {
        let r = row(
            "0",
            &[
                ("user", "jdoe"),
                ("action", "failure"),
                ("count", "42"),
                ("src", "10.0.0.5"),
                ("dest", "finance-db"),
                ("host", "dc01"),
                ("_time", "1763750000"),
            ],
        );
        assert_eq!(
            default_summary(&r, &context(&[])),
            "User jdoe: 42 failure events from 10.0.0.5 to finance-db on dc01 at 2025-11-21 18:33:20 UTC"
        );
        assert_eq!(
            default_summary(&row("0", &[("dest", "web01")]), &context(&[])),
            "Activity to web01"
        );
        assert_eq!(
            default_summary(&row("0", &[]), &context(&[])),
            "Brute Force Access Behavior Detected returned a result"
        );
    }

    #[test]
    fn template_fills_fields_and_alert_values() {
        let r = row("3", &[("user", "jdoe"), ("dest", "finance-db"), ("_time", "0")]);
        let text = render_template(
            "{user} on {dest} ({severity}, {search_name}) {missing} { not a field } at {_time}",
            &r,
            &context(&[]),
            Severity::High,
        );
        assert_eq!(
            text,
            "jdoe on finance-db (high, Brute Force Access Behavior Detected) { not a field } at 1970-01-01 00:00:00 UTC"
        );
    }

    #[test]
    fn time_formats_as_utc() {
        assert_eq!(format_time("0"), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_time("951782400.5"), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_time("yesterday"), "yesterday");
    }

    #[test]
    fn mrkdwn_is_escaped_and_cut_cleanly() {
        assert_eq!(escape_mrkdwn("<!channel> & co"), "&lt;!channel&gt; &amp; co");
        let cut = truncate_escaped("abc&amp;def", 6);
        assert_eq!(cut, "abc…");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }

    #[test]
    fn alert_mode_builds_one_message_with_context_and_button() {
        let mut mapper = SlackMapper::new(context(&[("channel", "#soc")])).unwrap();
        let items = run(
            &mut mapper,
            &[row(
                "0",
                &[
                    ("severity", "high"),
                    ("rule_name", "Brute Force"),
                    ("user", "jdoe"),
                    ("annotations.mitre_attack.mitre_tactic", "credential-access"),
                    ("annotations.mitre_attack", "T1110"),
                    ("risk_score", "80"),
                    ("event_id", "E1"),
                ],
            )],
        );
        assert_eq!(items.len(), 1);
        let item = &items[0];
        assert_eq!(item.dedupe_key, "slack:default:#soc:sid1");
        let request = item.request_value();
        let blocks = request["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["text"]["text"], "🔴 HIGH · Brute Force");
        let text = all_text(&item.request_value());
        assert!(
            text.contains("credential-access") && text.contains("T1110") && text.contains("80")
        );
        assert!(text.contains("Open in Splunk"));
        assert_eq!(item.request_value()["channel"], "#soc");
        assert_eq!(item.request_value()["links"][0]["event_id"], "E1");
        assert!(
            item.request_value()["text"]
                .as_str()
                .unwrap()
                .starts_with("🔴 HIGH · Brute Force: User jdoe")
        );
    }

    #[test]
    fn alert_mode_lists_max_rows_then_more() {
        let mut mapper = SlackMapper::new(context(&[("max_rows", "3")])).unwrap();
        let rows: Vec<Row> =
            (0..7).map(|i| row(&i.to_string(), &[("user", &format!("u{i}"))])).collect();
        let items = run(&mut mapper, &rows);
        assert_eq!(items.len(), 1);
        let text = all_text(&items[0].request_value());
        assert!(text.contains("+4 more results not shown"), "{text}");
        assert!(text.contains("u2") && !text.contains("u3"));
        // Every row the message lists or counts in "+4 more" gets its status line with it.
        let rids: Vec<&str> = items[0].context.rows.iter().map(|r| r.rid.as_str()).collect();
        assert_eq!(rids, vec!["0", "1", "2", "3", "4", "5", "6"]);
        assert_eq!(items[0].dedupe_key, "slack:default:account-default:sid1");
    }

    #[test]
    fn thresholds_and_routes() {
        let mut mapper = SlackMapper::new(context(&[
            ("mode", "row"),
            ("min_severity", "medium"),
            ("channel", "#soc"),
            ("severity_channels", "critical=#soc-critical"),
        ]))
        .unwrap();
        let items = run(
            &mut mapper,
            &[
                row("0", &[("severity", "low")]),
                row("1", &[("severity", "critical"), ("event_id", "E1")]),
                row("2", &[]),
                row("3", &[("urgency", "informational")]),
            ],
        );
        let channels: Vec<String> = items
            .iter()
            .map(|item| item.request_value()["channel"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(channels, vec!["#soc-critical", "#soc"]);
        assert_eq!(items[0].dedupe_key, "slack:default:#soc-critical:sid1:E1");
        assert!(items[1].dedupe_key.starts_with("slack:default:#soc:sid1:"));
        assert_eq!(items[1].context.rid, "2");
    }

    #[test]
    fn row_mode_digest_cap_adds_one_summary() {
        let mut mapper = SlackMapper::new(context(&[("mode", "row"), ("max_rows", "5")])).unwrap();
        let rows: Vec<Row> = (0..30).map(|i| row(&i.to_string(), &[("user", "x")])).collect();
        let items = run(&mut mapper, &rows);
        assert_eq!(items.len(), 6);
        let last = &items[5];
        assert!(all_text(&last.request_value()).contains("+25 more results not posted"));
        assert!(last.dedupe_key.ends_with(":more"));
        assert_eq!(last.context.rid, "5");
        let keys: std::collections::BTreeSet<_> = items.iter().map(|i| &i.dedupe_key).collect();
        assert_eq!(keys.len(), 6, "distinct dedupe keys");
    }

    #[test]
    fn per_result_alerts_key_by_result_id() {
        let mut ctx = context(&[]);
        ctx.result_id = Some("7".into());
        let mut mapper = SlackMapper::new(ctx).unwrap();
        let items = run(&mut mapper, &[row("7", &[("user", "x")])]);
        assert_eq!(items[0].dedupe_key, "slack:default:account-default:sid1:7");
    }

    #[test]
    fn row_hash_is_stable_and_sensitive() {
        let a = row("0", &[("user", "x")]);
        assert_eq!(row_hash(&a), row_hash(&row("0", &[("user", "x")])));
        assert_ne!(row_hash(&a), row_hash(&row("1", &[("user", "x")])));
        assert_ne!(row_hash(&a), row_hash(&row("0", &[("user", "y")])));
    }

    #[test]
    fn huge_values_stay_within_limits_and_budget() {
        let huge = "x<".repeat(5000);
        let mut mapper = SlackMapper::new(context(&[("max_rows", "60")])).unwrap();
        let rows: Vec<Row> = (0..60)
            .map(|i| {
                row(
                    &i.to_string(),
                    &[("user", &huge), ("src", &huge), ("dest", &huge), ("rule_name", &huge)],
                )
            })
            .collect();
        let items = run(&mut mapper, &rows);
        let body = slack_body(&items[0].request_value(), "#soc", &[], &LinkBases::default());
        let blocks = body["blocks"].as_array().unwrap();
        assert!(blocks.len() <= limits::MAX_BLOCKS);
        assert!(blocks[0]["text"]["text"].as_str().unwrap().chars().count() <= 150);
        let total: usize = blocks.iter().map(block_chars).sum();
        assert!(total <= MESSAGE_TEXT_BUDGET + 3000, "{total}");
        assert!(all_text(&body).contains("more results not shown"));
    }

    #[test]
    fn link_buttons_merge_hints_and_records() {
        let bases = LinkBases {
            soar: Some("https://soar.example.com/".into()),
            stackflow: Some("https://acme.example.com/prod/api".into()),
        };
        let mut blocks = vec![
            json!({"type": "actions", "block_id": ACTIONS_BLOCK_ID, "elements": [splunk_button("https://sh/x").unwrap()]}),
        ];
        let hints = vec![
            LinkRecord { event_id: "E1".into(), ..LinkRecord::default() },
            LinkRecord { event_id: "E2".into(), ..LinkRecord::default() },
        ];
        let records = vec![
            LinkRecord {
                event_id: "E1".into(),
                soar_container_id: "17".into(),
                ..LinkRecord::default()
            },
            LinkRecord {
                event_id: "E1".into(),
                stackflow_incident_id: "INC1".into(),
                ..LinkRecord::default()
            },
            LinkRecord {
                event_id: "E2".into(),
                soar_container_id: "17".into(),
                ..LinkRecord::default()
            },
        ];
        add_link_buttons(&mut blocks, &hints, &records, &bases);
        let elements = blocks[0]["elements"].as_array().unwrap();
        assert_eq!(elements.len(), 3);
        assert_eq!(elements[1]["text"]["text"], "Open SOAR container");
        assert_eq!(elements[1]["url"], "https://soar.example.com/mission/17");
        assert_eq!(elements[2]["text"]["text"], "Open StackFlow incident");
        assert_eq!(elements[2]["url"], "https://acme.example.com/prod/api/incidents/INC1");
    }

    #[test]
    fn fit_limits_cuts_and_drops() {
        let long_url = format!("https://x/{}", "a".repeat(3000));
        let mut blocks: Vec<Value> =
            vec![json!({"type": "header", "text": plain(&"h".repeat(400))})];
        for _ in 0..60 {
            blocks.push(json!({"type": "section", "text": mrkdwn(&"s".repeat(5000)),
                "fields": (0..12).map(|_| mrkdwn(&"f".repeat(2500))).collect::<Vec<_>>()}));
        }
        blocks.push(json!({"type": "actions", "block_id": ACTIONS_BLOCK_ID, "elements": [
            {"type": "button", "text": plain(&"b".repeat(100)), "url": long_url, "action_id": "a"},
            {"type": "button", "text": plain(&"b".repeat(100)), "url": "https://ok", "value": "v".repeat(3000), "action_id": "b"}
        ]}));
        fit_limits(&mut blocks);
        assert_eq!(blocks.len(), 50);
        assert_eq!(blocks[49]["block_id"], ACTIONS_BLOCK_ID);
        let elements = blocks[49]["elements"].as_array().unwrap();
        assert_eq!(elements.len(), 1);
        assert_eq!(elements[0]["text"]["text"].as_str().unwrap().chars().count(), 75);
        assert_eq!(elements[0]["value"].as_str().unwrap().chars().count(), 2000);
        assert_eq!(blocks[0]["text"]["text"].as_str().unwrap().chars().count(), 150);
        assert_eq!(blocks[1]["fields"].as_array().unwrap().len(), 10);
        assert_eq!(blocks[1]["text"]["text"].as_str().unwrap().chars().count(), 3000);
    }
}
