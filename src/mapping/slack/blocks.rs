//! The Block Kit builder: header, sections, context, buttons, the fallback text, the link
//! buttons added at send time, and `fit_limits`, which makes any message respect every Block
//! Kit limit (truncate, never fail).

use super::*;

// ---------------------------------------------------------------------------------------------
// Blocks

/// A plain text object. Its text is ours or already escaped: outside text in plain text is
/// escaped too, so that no `<!channel>` reaches Slack raw anywhere.
pub(super) fn plain(text: &str) -> Value {
    json!({"type": "plain_text", "text": text, "emoji": true})
}

/// A mrkdwn text object, `verbatim` (Block Kit text object: no automatic parsing of URLs,
/// channel names or mentions): its text holds row data, which must stay inert (PRODUCT §15).
pub(super) fn mrkdwn(text: &str) -> Value {
    json!({"type": "mrkdwn", "text": text, "verbatim": true})
}

/// The header block: `🔴 HIGH · <title>` (the title escaped).
pub fn header_text(severity: Severity, title: &str) -> String {
    truncate_escaped(
        &format!(
            "{} {} · {}",
            severity.emoji(),
            severity.as_str().to_ascii_uppercase(),
            escape_mrkdwn(title)
        ),
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
pub(super) fn block_chars(block: &Value) -> usize {
    let text = block.pointer("/text/text").and_then(Value::as_str).map_or(0, chars);
    let fields = block.get("fields").and_then(Value::as_array).map_or(0, |fields| {
        fields.iter().filter_map(|f| f.get("text").and_then(Value::as_str)).map(chars).sum()
    });
    text + fields
}

/// The "Open in Splunk" button, when the link fits.
pub(super) fn splunk_button(results_link: &str) -> Option<Value> {
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
pub(super) fn results_phrase(results_link: &str, label: &str) -> String {
    let link = results_link.trim();
    if link.is_empty() || chars(link) > 2000 || link.contains(['|', '>', '<']) {
        escape_mrkdwn(label)
    } else {
        // Slack's link syntax takes the URL escaped like any text (`&` as `&amp;`).
        format!("<{}|{}>", escape_mrkdwn(link), escape_mrkdwn(label))
    }
}

pub(super) fn actions_block(results_link: &str) -> Option<Value> {
    splunk_button(results_link).map(
        |button| json!({"type": "actions", "block_id": ACTIONS_BLOCK_ID, "elements": [button]}),
    )
}

/// The `context` line under the header: search name, result count, app; then, when the
/// (first) row carries ES asset & identity fields, a second element naming them (escaped).
pub(super) fn context_block(context: &AlertContext, results: u64, assets: Option<&str>) -> Value {
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
    let mut elements = vec![mrkdwn(&text)];
    if let Some(assets) = assets {
        elements.push(mrkdwn(&truncate_escaped(&escape_mrkdwn(assets), limits::TEXT_OBJECT)));
    }
    json!({"type": "context", "elements": elements})
}

pub(super) fn fallback_text(severity: Severity, title: &str, summary: &str, more: u64) -> String {
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

pub(super) fn title_of(view: Option<&RowView>, context: &AlertContext) -> String {
    view.and_then(|view| view.title.clone())
        .or_else(|| Some(context.search_name.clone()).filter(|name| !name.is_empty()))
        .unwrap_or_else(|| "Splunk alert".to_string())
}

pub(super) fn links_json(views: &[&RowView]) -> Value {
    Value::Array(
        views.iter().filter(|view| !view.link.is_empty()).map(|view| view.link.to_json()).collect(),
    )
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
        self.soar.as_deref().map(|base| crate::mapping::soar_container_url(base, container_id))
    }

    pub fn stackflow_url(&self, incident_id: &str) -> Option<String> {
        self.stackflow
            .as_deref()
            .map(|base| crate::mapping::stackflow_incident_url(base, incident_id))
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
    let mut push = |kind: &str,
                    label: &str,
                    ids: &[String],
                    url_of: &dyn Fn(&str) -> Option<String>| {
        for id in ids {
            let Some(url) = url_of(id).filter(|url| chars(url) <= limits::BUTTON_URL) else {
                continue;
            };
            let text = if ids.len() == 1 {
                label.to_string()
            } else {
                format!("{label} {}", escape_mrkdwn(id))
            };
            buttons.push(json!({
                "type": "button",
                "action_id": truncate(&format!("stackflow_open_{kind}_{}", escape_mrkdwn(id)), limits::ACTION_ID),
                "text": plain(&truncate_escaped(&text, limits::BUTTON_TEXT)),
                "url": url,
                "value": truncate(id, limits::BUTTON_VALUE),
            }));
        }
    };
    push("soar", "Open SOAR container", &soar, &|id| bases.soar_url(id));
    push("stackflow", "Open StackFlow incident", &stackflow, &|id| bases.stackflow_url(id));
    add_to_actions_block(blocks, buttons, false);
}

/// Adds `buttons` to the message's buttons block (made when there is none and a block is still
/// allowed), at the end or — `first` — in front of the buttons already there, while the block
/// has room (Block Kit: at most 25 elements).
pub(super) fn add_to_actions_block(blocks: &mut Vec<Value>, buttons: Vec<Value>, first: bool) {
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
        for (offset, button) in buttons.into_iter().enumerate() {
            if elements.len() >= limits::ACTIONS_ELEMENTS {
                break;
            }
            let at = if first { offset.min(elements.len()) } else { elements.len() };
            elements.insert(at, button);
        }
    }
}

pub(super) fn fit_text_object(object: &mut Value, max: usize) {
    // Plain and mrkdwn text alike carry escaped text: never cut an entity in half.
    if let Some(Value::String(text)) = object.get_mut("text")
        && chars(text) > max
    {
        *text = truncate_escaped(text, max);
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
