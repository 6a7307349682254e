//! `SlackMapper`: rows → Slack items — severity threshold, channel routing, one message per
//! row or one per alert, the digest cap (`max_rows`, "+K more") and dedupe keys.

use super::*;
use crate::mapping::Suppressed;
use crate::mapping::route::{Route, route_for};

// ---------------------------------------------------------------------------------------------
// The mapper

/// A row listed in an alert message, already rendered.
pub(super) struct Listed {
    view: RowView,
    section: Value,
}

pub struct SlackMapper {
    context: AlertContext,
    params: SlackParams,
    /// The response buttons (PRODUCT §9) and, in mode=alert, the first listed row's part.
    respond: ResponseParams,
    first_respond: Option<Value>,
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
    /// Rows a route suppressed, until `take_suppressed`.
    suppressed: Vec<Suppressed>,
    /// mode=alert: the route of the first row posted (`None` inside: no route matched it).
    alert_route: Option<Option<Route>>,
}

/// Rows kept for status lines beyond the listed ones (about 100 bytes each).
pub(super) const MAX_SUMMARIZED_ROWS: usize = 100_000;

impl SlackMapper {
    pub fn new(context: AlertContext) -> Result<SlackMapper> {
        let params = SlackParams::from_context(&context)?;
        let respond = ResponseParams::from_context(&context)?;
        Ok(SlackMapper {
            context,
            params,
            respond,
            first_respond: None,
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
            suppressed: Vec::new(),
            alert_route: None,
        })
    }

    pub fn params(&self) -> &SlackParams {
        &self.params
    }

    /// A row's view, with the model context when `summary = llm`.
    fn view(&self, row: &Row) -> RowView {
        let mut view = row_view(row, &self.context, self.params.summary_template.as_deref());
        if self.params.summary == SummaryMode::Llm {
            view.llm = Some(llm_context(row, &self.params.llm_account, &view.summary));
        }
        if let Some(window_s) = self.params.aggregate_window_s {
            view.storm = Some(storm_context(row, &self.context, &self.params.account, window_s));
        }
        view
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
            list_index: None,
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
            context_block(&self.context, results, first.and_then(|view| view.assets.as_deref())),
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
        let route = self.alert_route.take().flatten();
        let channel = route
            .as_ref()
            .and_then(|route| route.channel.clone())
            .or_else(|| self.params.route(severity).map(str::to_string));
        let views: Vec<&RowView> = listed.iter().map(|listed| &listed.view).collect();
        let mut request = json!({
            "channel": channel,
            "text": fallback_text(severity, &title, &summary, results.saturating_sub(1)),
            "blocks": blocks,
            "links": links_json(&views),
        });
        let first_respond = self.first_respond.take();
        if let (Some(part), 1, 0) = (first_respond, listed.len(), self.unlisted) {
            request["respond"] = part;
        }
        if let Some(llm) = first.and_then(|view| view.llm.clone()) {
            request["llm"] = llm;
        }
        if let Some(storm) = first.and_then(|view| view.storm.clone()) {
            request["storm"] = storm;
        }
        apply_route(&mut request, route.as_ref());
        war_room_part(&mut request, route.as_ref(), &title);
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
    fn row_message(&self, view: RowView, row: &Row, route: Option<&Route>) -> DeliveryItem {
        let title = title_of(Some(&view), &self.context);
        let mut blocks = vec![
            json!({"type": "header", "text": plain(&header_text(view.severity, &title))}),
            context_block(&self.context, 1, view.assets.as_deref()),
            row_section(&view, ""),
        ];
        if let Some(actions) = actions_block(&self.context.results_link) {
            blocks.push(actions);
        }
        let channel = route
            .and_then(|route| route.channel.clone())
            .or_else(|| self.params.route(view.severity).map(str::to_string));
        let mut request = json!({
            "channel": channel,
            "text": fallback_text(view.severity, &title, &view.summary, 0),
            "blocks": blocks,
            "links": links_json(&[&view]),
        });
        if let Some(part) = self.respond.request_part(&self.context, row, route) {
            request["respond"] = part;
        }
        if let Some(llm) = view.llm.clone() {
            request["llm"] = llm;
        }
        if let Some(storm) = view.storm.clone() {
            request["storm"] = storm;
        }
        apply_route(&mut request, route);
        war_room_part(&mut request, route, &title);
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
        let link = escape_mrkdwn(self.context.results_link.trim());
        let fallback = truncate_escaped(
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
        let route = route_for(&self.context.routes, row, &self.context).cloned();
        if let Some(route) = route.as_ref().filter(|route| route.suppress) {
            let row_ref = self.context.item_context(&[row]).rows.into_iter().next();
            self.suppressed
                .extend(row_ref.map(|row| Suppressed { row, route: route.name.clone() }));
            return Ok(Vec::new());
        }
        if self.params.mode == Mode::Alert && self.alert_route.is_none() {
            self.alert_route = Some(route.clone());
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
                let view = self.view(row);
                if self.listed.is_empty() {
                    self.first_respond =
                        self.respond.request_part(&self.context, row, route.as_ref());
                }
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
                let view = self.view(row);
                Ok(vec![self.row_message(view, row, route.as_ref())])
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

    fn take_suppressed(&mut self) -> Vec<Suppressed> {
        std::mem::take(&mut self.suppressed)
    }
}

/// A route's effects on a built message: a mention before the summary (and in the
/// notification text) and the route's name for the record. Its `buttons` are the response
/// buttons of the rows it matches ([`ResponseParams::request_part`]).
/// A route with `war_room = true` (PRODUCT §17): the request asks the Slack target to open the
/// notable's war room after posting, naming the rule.
pub fn war_room_part(request: &mut Value, route: Option<&Route>, rule: &str) {
    if route.is_some_and(|route| route.war_room) {
        request["war_room"] = json!({"rule": rule});
    }
}

pub fn apply_route(request: &mut Value, route: Option<&Route>) {
    let Some(route) = route else { return };
    request["route"] = Value::String(route.name.clone());
    if let Some(mention) = &route.mention {
        let section = request
            .get_mut("blocks")
            .and_then(Value::as_array_mut)
            .and_then(|blocks| {
                blocks.iter_mut().find(|block| {
                    block.get("type").and_then(Value::as_str) == Some("section")
                        && block.pointer("/text/text").is_some()
                })
            })
            .and_then(|block| block.pointer_mut("/text/text"));
        if let Some(text) = section {
            let joined = format!("{mention} {}", text.as_str().unwrap_or(""));
            *text = Value::String(truncate_escaped(&joined, limits::SECTION_TEXT));
        }
        if let Some(text) = request.get_mut("text") {
            let joined = format!("{mention} {}", text.as_str().unwrap_or(""));
            *text = Value::String(truncate_escaped(&joined, FALLBACK_TEXT_MAX));
        }
    }
}
