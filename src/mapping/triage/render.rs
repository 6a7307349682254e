//! A triage search's answer as a thread reply (PRODUCT §16): the row count, the top values of
//! the template's fields, the first rows as a compact table and a summary, in Block Kit within
//! Slack's limits. Rows are digested one at a time as they arrive (`Digest::push`), keeping
//! only counts (bounded distinct values per field) and the first rows, so memory does not grow
//! with the answer. Every outside value is escaped (`escape_mrkdwn`) and every mrkdwn text is
//! `verbatim`, so a value can neither mention nor link.
//!
//! Pure: no I/O.

use super::Template;
use crate::mapping::redact::USER_FIELDS;
use crate::mapping::slack::{escape_mrkdwn, limits, truncate, truncate_escaped};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Rows shown in the table.
pub const TABLE_ROWS: usize = 10;
/// Columns shown in the table.
pub const TABLE_COLUMNS: usize = 5;
/// A table cell is cut here.
pub const CELL_MAX: usize = 24;
/// Top values shown per field.
pub const TOP_VALUES: usize = 5;
/// Distinct values counted per field; later new values are counted as "other".
pub const DISTINCT_MAX: usize = 1000;
/// A counted value is cut here (so the counts stay small whatever the rows hold).
const COUNTED_VALUE_MAX: usize = 200;
/// Fields whose top values are shown at most (a section holds 10 fields).
const TOP_FIELDS: usize = limits::MAX_FIELDS;

/// How the search ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunEnd {
    /// splunkd answered every row.
    Complete,
    /// `max_rows` rows were read and the rest left unread.
    Truncated,
    /// Over `timeout_s`: the search was cancelled; the rows read until then are shown.
    TimedOut,
    /// splunkd refused or failed the search (the reason, plain text).
    Failed(String),
}

impl RunEnd {
    /// The receipt's `outcome`.
    pub fn outcome(&self) -> &'static str {
        match self {
            RunEnd::Complete | RunEnd::Truncated => "done",
            RunEnd::TimedOut => "timeout",
            RunEnd::Failed(_) => "failed",
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    values: HashMap<String, u64>,
    other: u64,
}

/// What the reply needs of the rows, gathered one row at a time.
#[derive(Debug)]
pub struct Digest {
    fields: Vec<String>,
    counts: Vec<Counts>,
    rows: u64,
    first: Vec<Map<String, Value>>,
}

/// A field's value as text: strings as they are, lists joined with ", ".
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(items) => items.iter().map(value_text).collect::<Vec<_>>().join(", "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl Digest {
    /// `fields`: the template's fields, whose values are counted.
    pub fn new(fields: &[String]) -> Digest {
        let fields: Vec<String> = fields.iter().take(TOP_FIELDS).cloned().collect();
        let counts = fields.iter().map(|_| Counts::default()).collect();
        Digest { fields, counts, rows: 0, first: Vec::new() }
    }

    /// One row of the answer (a JSON object; anything else is ignored).
    pub fn push(&mut self, row: &Value) {
        let Some(row) = row.as_object() else { return };
        self.rows = self.rows.saturating_add(1);
        for (field, counts) in self.fields.iter().zip(self.counts.iter_mut()) {
            let values: Vec<String> = match row.get(field) {
                Some(Value::Array(items)) => items.iter().map(value_text).collect(),
                Some(value) => vec![value_text(value)],
                None => Vec::new(),
            };
            for value in values {
                let value = truncate(value.trim(), COUNTED_VALUE_MAX);
                if value.is_empty() {
                    continue;
                }
                if let Some(count) = counts.values.get_mut(&value) {
                    *count = count.saturating_add(1);
                } else if counts.values.len() < DISTINCT_MAX {
                    counts.values.insert(value, 1);
                } else {
                    counts.other = counts.other.saturating_add(1);
                }
            }
        }
        if self.first.len() < TABLE_ROWS {
            let kept: Map<String, Value> = row
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(truncate(&value_text(v), CELL_MAX * 4))))
                .collect();
            self.first.push(kept);
        }
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The most common values of `field`, most common first (ties by value).
    pub fn top(&self, field: &str) -> Vec<(String, u64)> {
        let Some(index) = self.fields.iter().position(|f| f == field) else { return Vec::new() };
        let mut values: Vec<(String, u64)> =
            self.counts[index].values.iter().map(|(v, n)| (v.clone(), *n)).collect();
        values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        values.truncate(TOP_VALUES);
        values
    }

    /// The table's columns: the template's fields first, then the first rows' other visible
    /// fields (`_time` kept, other `_` fields left out), at most `TABLE_COLUMNS`.
    pub fn columns(&self) -> Vec<String> {
        let mut columns: Vec<String> = Vec::new();
        let mut add = |name: &str| {
            if columns.len() < TABLE_COLUMNS && !columns.iter().any(|c| c == name) {
                columns.push(name.to_string());
            }
        };
        if self.first.iter().any(|row| row.contains_key("_time")) {
            add("_time");
        }
        for field in &self.fields {
            if self.first.iter().any(|row| row.contains_key(field)) {
                add(field);
            }
        }
        for row in &self.first {
            for name in row.keys() {
                if !name.starts_with('_') {
                    add(name);
                }
            }
        }
        columns
    }

    /// The facts a model may summarise, in the shape `remotes::slack::summary` redacts
    /// (`fields`, and the user names seen in user-type fields).
    pub fn llm_context(&self, template: &Template, summary: &str) -> Value {
        let mut fields = Map::new();
        fields.insert("template".into(), json!(template.label));
        fields.insert(
            "time range".into(),
            json!(format!("{} to {}", template.earliest, template.latest)),
        );
        fields.insert("rows".into(), json!(self.rows.to_string()));
        let mut users: Vec<String> = Vec::new();
        for field in &self.fields {
            let top = self.top(field);
            if top.is_empty() {
                continue;
            }
            if USER_FIELDS.contains(&field.as_str()) {
                users.extend(top.iter().map(|(v, _)| v.clone()));
            }
            let text: Vec<String> = top.iter().map(|(v, n)| format!("{v} ({n})")).collect();
            fields.insert(format!("top {field}"), json!(text.join(", ")));
        }
        for row in &self.first {
            for name in USER_FIELDS {
                if let Some(Value::String(user)) = row.get(*name)
                    && !user.trim().is_empty()
                    && !users.contains(user)
                {
                    users.push(user.trim().to_string());
                }
            }
        }
        json!({"summary": summary, "fields": fields, "users": users})
    }
}

/// The deterministic summary: how many rows, and the most common value of each field.
pub fn template_summary(template: &Template, digest: &Digest, end: &RunEnd) -> String {
    let range = format!("between {} and {}", template.earliest, template.latest);
    let rows = digest.rows();
    let mut text = match end {
        RunEnd::Failed(reason) => {
            return format!("The search {} did not run: {}", template.label, truncate(reason, 300));
        }
        RunEnd::TimedOut => format!(
            "The search {} was cancelled after {} s; {rows} row{} had arrived.",
            template.label,
            template.timeout.as_secs_f64(),
            plural(rows)
        ),
        RunEnd::Truncated => format!(
            "At least {rows} events matched {} {range} (the first {rows} were read).",
            template.label
        ),
        RunEnd::Complete if rows == 0 => {
            return format!("No events matched {} {range}.", template.label);
        }
        RunEnd::Complete => {
            format!("{rows} event{} matched {} {range}.", plural(rows), template.label)
        }
    };
    let mut common: Vec<String> = Vec::new();
    for field in &digest.fields {
        if let Some((value, count)) = digest.top(field).into_iter().next() {
            common.push(format!("{field} {value} ({count} of {rows})"));
        }
    }
    if !common.is_empty() {
        text.push_str(&format!(" Most common: {}.", common.join(", ")));
    }
    truncate(&text, crate::mapping::slack::SUMMARY_MAX)
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn mrkdwn(text: String) -> Value {
    json!({"type": "mrkdwn", "text": text, "verbatim": true})
}

/// A cell: escaped, one line, no backtick (it would close the code block), cut.
fn cell(value: &str) -> String {
    let line: String = value
        .chars()
        .map(|c| {
            if c.is_control() {
                ' '
            } else if c == '`' {
                '\''
            } else {
                c
            }
        })
        .collect();
    truncate(line.trim(), CELL_MAX)
}

/// The first rows as a fixed-width table in a code block, escaped, within a section's text.
fn table(digest: &Digest) -> Option<String> {
    let columns = digest.columns();
    if columns.is_empty() || digest.first.is_empty() {
        return None;
    }
    let cells: Vec<Vec<String>> = digest
        .first
        .iter()
        .map(|row| {
            columns.iter().map(|c| cell(row.get(c).and_then(Value::as_str).unwrap_or(""))).collect()
        })
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells
                .iter()
                .map(|row| row[i].chars().count())
                .chain(std::iter::once(cell(c).chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |values: Vec<String>| -> String {
        let padded: Vec<String> = values
            .iter()
            .zip(&widths)
            .map(|(v, w)| {
                let pad = w.saturating_sub(v.chars().count());
                format!("{v}{}", " ".repeat(pad))
            })
            .collect();
        escape_mrkdwn(padded.join("  ").trim_end())
    };
    let budget = limits::SECTION_TEXT - 8;
    let mut text = line(columns.iter().map(|c| cell(c)).collect());
    for row in cells {
        let next = line(row);
        if text.chars().count() + next.chars().count() + 1 > budget {
            break;
        }
        text.push('\n');
        text.push_str(&next);
    }
    Some(format!("```{text}```"))
}

/// The reply (`text` fallback and `blocks`) for a template's run.
pub fn reply(template: &Template, digest: &Digest, summary: &str, end: &RunEnd) -> Value {
    let label = escape_mrkdwn(&template.label);
    let rows = digest.rows();
    let count = match end {
        RunEnd::Truncated => format!("{rows}+ rows (max_rows {})", template.max_rows),
        RunEnd::TimedOut => format!("cancelled at {} s", template.timeout.as_secs_f64()),
        RunEnd::Failed(_) => "failed".to_string(),
        RunEnd::Complete => format!("{rows} row{}", plural(rows)),
    };
    let title = format!(":mag: *Triage: {label}* — {count}");
    let mut blocks = vec![json!({"type": "section", "text": mrkdwn(truncate_escaped(
        &format!("{title}\n{}", escape_mrkdwn(summary)), limits::SECTION_TEXT))})];
    if !matches!(end, RunEnd::Failed(_)) {
        let fields: Vec<Value> = digest
            .fields
            .iter()
            .filter_map(|field| {
                let top = digest.top(field);
                if top.is_empty() {
                    return None;
                }
                let values: Vec<String> = top
                    .iter()
                    .map(|(v, n)| format!("{} ({n})", escape_mrkdwn(&truncate(v, 60))))
                    .collect();
                let text = format!("*{}*\n{}", escape_mrkdwn(field), values.join("\n"));
                Some(mrkdwn(truncate_escaped(&text, limits::FIELD_TEXT)))
            })
            .collect();
        if !fields.is_empty() {
            blocks.push(json!({"type": "section", "fields": fields}));
        }
        if let Some(table) = table(digest) {
            blocks.push(json!({"type": "section", "text": mrkdwn(table)}));
        }
    }
    let context = format!(
        "template `{}` · {} → {}",
        escape_mrkdwn(&template.name),
        escape_mrkdwn(&template.earliest),
        escape_mrkdwn(&template.latest)
    );
    blocks.push(json!({"type": "context", "elements": [mrkdwn(truncate_escaped(&context, limits::TEXT_OBJECT))]}));
    let text = truncate(&format!("Triage {}: {count}", template.label), limits::HEADER_TEXT);
    json!({"text": escape_mrkdwn(&text), "blocks": blocks})
}
