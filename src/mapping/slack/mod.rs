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
use crate::error::{Error, Result};
use crate::item::{DeliveryItem, ItemContext, RowRef, TargetKind};
use crate::splunk::results::{FieldValue, Row};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Block Kit limits (Slack's Block Kit reference, docs.slack.dev/reference/block-kit; the same
/// numbers as `slack_sdk`'s constants).
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

    /// The row's severity: the highest of `severity`, else of `urgency` (one notable, one
    /// severity: [`crate::mapping::notable_severity`]); rows with neither (or an unknown word)
    /// count as `medium`, for the threshold, the routing and the header alike.
    pub fn of_row(row: &Row) -> Severity {
        crate::mapping::notable_severity(row).and_then(Severity::parse).unwrap_or(Severity::Medium)
    }
}

/// `mode=alert`: one message per trigger; `mode=row`: one message per row (capped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Alert,
    Row,
}

/// `summary = template` (default) or `llm` (PRODUCT §13).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SummaryMode {
    Template,
    Llm,
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
    pub summary: SummaryMode,
    /// The `[llm:<account>]` to ask: the alert's `account` (PRODUCT §13).
    pub llm_account: String,
    /// `aggregate_window_s`: alerts of the same rule and entity within this many seconds
    /// update one message (PRODUCT §13); `None` = off.
    pub aggregate_window_s: Option<u64>,
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
        let summary = match context.param("summary").map(str::to_ascii_lowercase).as_deref() {
            None | Some("template") => SummaryMode::Template,
            Some("llm") => SummaryMode::Llm,
            Some(other) => {
                return Err(param_error("summary", format!("\"{other}\" is not template or llm")));
            }
        };
        let aggregate_window_s = match context.param("aggregate_window_s") {
            None | Some("0") => None,
            Some(value) => {
                Some(value.parse::<u64>().ok().filter(|n| (1..=86_400).contains(n)).ok_or_else(
                    || {
                        param_error(
                            "aggregate_window_s",
                            format!("\"{value}\" is not a number of seconds from 0 (off) to 86400"),
                        )
                    },
                )?)
            }
        };
        Ok(SlackParams {
            aggregate_window_s,
            summary,
            llm_account: context.account().to_string(),
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

mod action;
mod blocks;
mod llm;
mod mapper;
#[cfg(test)]
mod props;
mod respond;
mod storm;
#[cfg(test)]
mod tests;
mod text;
mod view;

pub use action::{ACTION_IDS, Action};
pub use blocks::*;
pub use llm::*;
pub use mapper::*;
pub use respond::*;
pub use storm::*;
pub use text::*;
pub use view::*;
