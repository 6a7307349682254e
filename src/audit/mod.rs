//! The audit trail of every item a run handles: the stderr line splunkd logs, the
//! ModularAction log lines ES Incident Review reads (`modalert`), the receipt events indexed
//! from stash files (`splunk::stash`) and the KV store links to remote objects (`links`).
//!
//! Per row: one `Invoking modular action` line when the row is read, and one status line plus
//! one receipt when the item that carried it ended. Nothing here can fail a run: a file or KV
//! store that cannot be written is a WARN line, the exit code stays the items' own.

pub mod drain;
pub mod modalert;

use crate::delivery::deliverer::{DeliveryReport, Final};
use crate::item::link::COLLECTION;
use crate::item::{RowRef, TargetKind};
use crate::links::LinkWriter;
use crate::mapping::AlertContext;
use crate::net::RejectClass;
use crate::remotes::splunkd::Splunkd;
use crate::settings::Settings;
use crate::splunk::results::Row;
use crate::splunk::stash::{Receipt, ReceiptRef, ReceiptWriter};
use modalert::{Invocation, Level, LineTemplate, ModAlertLog, RowIds};
use std::time::{SystemTime, UNIX_EPOCH};

/// Collects what each run must leave behind in Splunk.
pub struct Audit {
    action: String,
    search_name: String,
    log: ModAlertLog,
    receipts: Option<ReceiptWriter>,
    links: LinkWriter,
    finished: bool,
    /// The "Invoking modular action" line (one per row), rendered once, and its row's ids.
    invoking: Option<LineTemplate>,
    row_ids: RowIds,
}

/// How the product names a target in messages.
fn target_name(target: TargetKind) -> &'static str {
    match target {
        TargetKind::Soar => "SOAR",
        TargetKind::Stackflow => "StackFlow",
        TargetKind::Slack => "Slack",
    }
}

/// The status line of an outcome: level, `action_status`, signature.
pub fn status_of(result: Final, target: TargetKind) -> (Level, &'static str, String) {
    let name = target_name(target);
    match result {
        Final::Delivered => (Level::Info, "success", format!("Delivered to {name}")),
        Final::Duplicate => (Level::Info, "success", format!("Already in {name}; not sent again")),
        // cim_actions knows success and failure only: "not yet" is a failure for now, and
        // the signature and outcome="spooled" say that it will be retried.
        Final::Spooled => (
            Level::Warning,
            "failure",
            format!("Not delivered to {name} yet; spooled, will be retried"),
        ),
        Final::Rejected(RejectClass::Remote) => {
            (Level::Error, "failure", format!("Rejected by {name}"))
        }
        Final::Rejected(RejectClass::Credentials) => {
            (Level::Error, "failure", format!("Not sent to {name}: credentials"))
        }
        Final::Rejected(RejectClass::Configuration) => {
            (Level::Error, "failure", format!("Not sent to {name}: configuration"))
        }
        Final::Lost => (
            Level::Error,
            "failure",
            format!("Not delivered to {name} and not spooled: data at risk"),
        ),
    }
}

impl Audit {
    /// `splunkd` writes the links; without it they are skipped with a WARN line.
    pub fn new(context: &AlertContext, settings: &Settings, splunkd: Option<Splunkd>) -> Audit {
        let home = settings.splunk_home.as_deref();
        if home.is_none() {
            log::warn!(
                "SPLUNK_HOME is unknown: no modular action log and no receipts for this run"
            );
        }
        let worker = modalert::worker_name(home, &context.server_host);
        let invocation = Invocation::new(context, worker);
        let log_dir = home.map(|home| home.join("var").join("log").join("splunk"));
        Audit {
            action: context.action.clone(),
            search_name: context.search_name.clone(),
            log: ModAlertLog::new(invocation, log_dir.as_deref(), &context.action),
            receipts: home.map(|home| ReceiptWriter::new(home, &settings.receipts_index())),
            links: LinkWriter::new(splunkd),
            finished: false,
            invoking: None,
            row_ids: RowIds::default(),
        }
    }

    /// Writes a stash file every `lines` receipts instead of every `receipts::FLUSH_EVERY`
    /// (`spool flush`: a drain of a large backlog keeps its memory flat).
    pub fn with_receipt_batch(mut self, lines: usize) -> Audit {
        self.receipts = self.receipts.take().map(|writer| writer.with_flush_every(lines));
        self
    }

    /// Called once per row before it is mapped ("Invoking modular action").
    pub fn invoked(&mut self, row: &Row) {
        self.invoked_ids(
            &row.rid,
            row.str("orig_sid").unwrap_or_default(),
            row.str("orig_rid").unwrap_or_default(),
        );
    }

    /// `invoked` for a row known by its ids.
    pub fn invoked_ids(&mut self, rid: &str, orig_sid: &str, orig_rid: &str) {
        let invocation = &self.log.invocation;
        let line = self.invoking.get_or_insert_with(|| {
            LineTemplate::new(Level::Info, invocation, "Invoking modular action", "", &[])
        });
        invocation.fill_row_ids(&mut self.row_ids, rid, orig_sid, orig_rid);
        self.log.write(line, Some(&self.row_ids));
    }

    /// Called once per item after delivery ended.
    pub fn record(&mut self, report: &DeliveryReport) {
        // The log's own invocation names the lines; it is taken out for the call so that the
        // log can be written meanwhile (nothing is cloned per item).
        let invocation = std::mem::take(&mut self.log.invocation);
        record_item(
            report,
            &self.action,
            &invocation,
            &mut self.log,
            self.receipts.as_mut(),
            &mut self.links,
        );
        self.log.invocation = invocation;
    }

    /// A row a `[route:<name>]` suppressed (PRODUCT §13): counted in a receipt with outcome
    /// `suppressed` and a status line, never silently dropped.
    pub fn suppressed(&mut self, suppressed: &crate::mapping::Suppressed, account: &str) {
        let row = &suppressed.row;
        let message = format!("suppressed by [route:{}]", suppressed.route);
        log::info!("action={} rid={} outcome=suppressed: {message}", self.action, row.rid);
        let ids = self.log.invocation.row_ids(&row.rid, &row.orig_sid, &row.orig_rid);
        self.log.message(
            Level::Info,
            "Not sent: suppressed by a route",
            "success",
            Some(&ids),
            &[("outcome", "suppressed".to_string()), ("route", suppressed.route.clone())],
        );
        let receipt = Receipt {
            time: SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default(),
            action: self.action.clone(),
            account: account.to_string(),
            sid: self.log.invocation.sid.clone(),
            rid: ids.rid,
            orig_sid: ids.orig_sid,
            orig_rid: ids.orig_rid,
            event_id: row.event_id.clone(),
            search_name: self.search_name.clone(),
            outcome: "suppressed".into(),
            message,
            ..Receipt::default()
        };
        self.push_receipt(&receipt);
        self.log.flush();
    }

    fn push_receipt(&mut self, receipt: &Receipt) {
        push_receipt(self.receipts.as_mut(), receipt);
    }

    /// Writes what was collected (receipts, links). Errors are logged, never fatal: the items
    /// themselves are already delivered or spooled.
    /// Runs once; also run on drop, so that a run stopped by an error still leaves the
    /// receipts and links of the items it had already handled.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if let Some(writer) = self.receipts.as_mut() {
            if let Err(error) = writer.flush() {
                log::warn!("receipts: {error}");
            }
            if writer.receipts_written() > 0 {
                let count = writer.receipts_written().to_string();
                self.log.message(
                    Level::Info,
                    "Successfully created splunk events",
                    "",
                    None,
                    &[("event_count", count)],
                );
            }
        }
        self.log.flush();
        self.links.flush();
        let (saved, failed) = self.links.counts();
        if saved + failed > 0 {
            log::debug!("links: {saved} saved, {failed} not saved to {COLLECTION}");
        }
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        self.finish();
    }
}

fn push_receipt(writer: Option<&mut ReceiptWriter>, receipt: &Receipt) {
    let Some(writer) = writer else {
        return;
    };
    if let Err(error) = writer.push(receipt) {
        log::warn!("receipts: {error}");
    }
}

fn stderr_line(action: &str, report: &DeliveryReport) {
    let remote = report
        .delivered
        .as_ref()
        .and_then(|delivered| delivered.remote_id.clone())
        .map(|id| format!(" remote_id={id}"))
        .unwrap_or_default();
    let line = format!(
        "action={action} rid={} outcome={} attempts={}{remote}: {}",
        report.item.context.rid,
        report.result.outcome_word(),
        report.attempts,
        report.message
    );
    match report.result {
        Final::Delivered | Final::Duplicate => log::info!("{line}"),
        Final::Spooled => log::warn!("{line}"),
        Final::Rejected(_) => log::error!("{line}"),
        Final::Lost => crate::logging::fatal(&line),
    }
}

/// What one ended item leaves behind: the stderr line, a status line per row in `log` (naming
/// `invocation`'s search), a receipt per row, and its links. Returns the receipts pushed.
fn record_item(
    report: &DeliveryReport,
    action: &str,
    invocation: &Invocation,
    log: &mut ModAlertLog,
    mut receipts: Option<&mut ReceiptWriter>,
    links: &mut LinkWriter,
) -> usize {
    stderr_line(action, report);
    let context = &report.item.context;
    let fallback;
    let rows: &[RowRef] = if context.rows.is_empty() {
        fallback = [RowRef {
            rid: context.rid.clone(),
            orig_sid: context.orig_sid.clone(),
            orig_rid: context.orig_rid.clone(),
            event_id: context.event_id.clone(),
        }];
        &fallback
    } else {
        &context.rows
    };
    let (level, status, signature) = status_of(report.result, report.item.target);
    let delivered = report.delivered.as_ref();
    let remote_id = delivered.and_then(|d| d.remote_id.clone()).unwrap_or_default();
    let remote_url = delivered.and_then(|d| d.remote_url.clone()).unwrap_or_default();
    let duration_ms = report.duration.as_millis() as u64;
    let mut extra = vec![
        ("outcome", report.result.outcome_word().to_string()),
        ("attempts", report.attempts.to_string()),
        ("duration", duration_ms.to_string()),
        ("dedupe_key", report.item.dedupe_key.clone()),
        ("remote_id", remote_id.clone()),
        ("remote_url", remote_url.clone()),
    ];
    if !report.result.is_success() {
        extra.push(("message", report.message.clone()));
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let target = report.detail(&["target"]);
    let slack_channel = report.detail(&["slack_channel", "channel"]);
    let slack_ts = report.detail(&["slack_ts", "ts"]);
    let line = LineTemplate::new(level, invocation, &signature, status, &extra);
    let mut ids = RowIds::default();
    for row in rows {
        invocation.fill_row_ids(&mut ids, &row.rid, &row.orig_sid, &row.orig_rid);
        log.write(&line, Some(&ids));
        let receipt = ReceiptRef {
            time: now,
            action,
            account: &report.item.account,
            sid: &invocation.sid,
            rid: &ids.rid,
            orig_sid: &ids.orig_sid,
            orig_rid: &ids.orig_rid,
            event_id: &row.event_id,
            search_name: &context.search_name,
            dedupe_key: &report.item.dedupe_key,
            remote_id: &remote_id,
            remote_url: &remote_url,
            outcome: report.result.outcome_word(),
            attempts: report.attempts,
            duration_ms,
            message: &report.message,
            target: target.as_deref(),
            slack_channel: slack_channel.as_deref(),
            slack_ts: slack_ts.as_deref(),
        };
        if let Some(writer) = receipts.as_deref_mut()
            && let Err(error) = writer.push_ref(&receipt)
        {
            log::warn!("receipts: {error}");
        }
    }
    links.push(crate::links::link_records(report, now.as_secs_f64()));
    log.flush();
    rows.len()
}
