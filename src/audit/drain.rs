//! The audit trail of a `spool flush`: the same lines, receipts and links as an alert run
//! leaves for each item (`Audit`), for a backlog whose items come from any number of searches,
//! in memory and files that do not grow with the backlog.
//!
//! An alert run is one search, so `Audit` owns one log file, one receipt writer and one link
//! writer. A flush of 10,000 items from as many searches built one `Audit` per search and kept
//! them all to the end: a 64 KB log buffer and an open file each (peak RSS ~100 MB), then one
//! fsynced stash file and one `batch_save` per search when they were finished. Here the run
//! shares one receipt writer (a stash file per `receipt_batch` receipts), one link writer
//! (a `batch_save` per `links::BATCH` records) and one log file per action, and keeps per search
//! only what its lines name (its `Invocation`) and its receipt count, for at most
//! `OPEN_SEARCHES` searches, the least recently used leaving first with its
//! "Successfully created splunk events" line. A search met again later starts a new count (a
//! second such line); every item's own status line and receipt are written either way.

use super::modalert::{self, Invocation, Level, ModAlertLog};
use super::record_item;
use crate::delivery::deliverer::DeliveryReport;
use crate::item::DeliveryItem;
use crate::links::LinkWriter;
use crate::mapping::AlertContext;
use crate::remotes::splunkd::Splunkd;
use crate::settings::Settings;
use crate::splunk::stash::ReceiptWriter;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// Searches whose count a flush keeps at once (an entry is a few hundred bytes).
pub const OPEN_SEARCHES: usize = 1024;

/// (action, sid): one alert run's items.
type SearchKey = (String, String);

struct Search {
    invocation: Invocation,
    /// The log file of its action (`<action>_modalert.log`).
    action: String,
    /// Receipts pushed for this search, and the run-wide number of its last one.
    receipts: usize,
    last_receipt: usize,
    /// When it was last used (its key in `DrainAudit::recent`).
    used: u64,
}

pub struct DrainAudit {
    log_dir: Option<PathBuf>,
    worker: String,
    receipts: Option<ReceiptWriter>,
    links: LinkWriter,
    logs: HashMap<String, ModAlertLog>,
    searches: HashMap<SearchKey, Search>,
    /// Searches by last use, the least recent first.
    recent: BTreeMap<u64, SearchKey>,
    clock: u64,
    /// Receipts pushed in this run.
    pushed: usize,
    finished: bool,
}

impl DrainAudit {
    /// `splunkd` writes the links; `receipt_batch` receipts make one stash file.
    pub fn new(settings: &Settings, splunkd: Option<Splunkd>, receipt_batch: usize) -> DrainAudit {
        let home = settings.splunk_home.as_deref();
        if home.is_none() {
            log::warn!(
                "SPLUNK_HOME is unknown: no modular action log and no receipts for this flush"
            );
        }
        DrainAudit {
            log_dir: home.map(|home| home.join("var").join("log").join("splunk")),
            // A flush's items carry no server host: the worker comes from server.conf.
            worker: modalert::worker_name(home, ""),
            receipts: home.map(|home| {
                ReceiptWriter::new(home, &settings.receipts_index()).with_flush_every(receipt_batch)
            }),
            links: LinkWriter::new(splunkd),
            logs: HashMap::new(),
            searches: HashMap::new(),
            recent: BTreeMap::new(),
            clock: 0,
            pushed: 0,
            finished: false,
        }
    }

    /// Called once per item whose journey ended in this flush.
    pub fn record(&mut self, report: &DeliveryReport) {
        let context = &report.item.context;
        let key = (context.action.clone(), context.sid.clone());
        self.clock = self.clock.saturating_add(1);
        let now = self.clock;
        let mut search = match self.searches.remove(&key) {
            Some(search) => {
                self.recent.remove(&search.used);
                search
            }
            None => {
                if self.searches.len() >= OPEN_SEARCHES {
                    self.close_least_recent();
                }
                let alert = alert_context_of(&report.item);
                Search {
                    invocation: Invocation::new(&alert, self.worker.clone()),
                    action: context.action.clone(),
                    receipts: 0,
                    last_receipt: 0,
                    used: now,
                }
            }
        };
        let log_dir = self.log_dir.as_deref();
        let log = self
            .logs
            .entry(search.action.clone())
            .or_insert_with(|| ModAlertLog::new(Invocation::default(), log_dir, &search.action));
        let pushed = record_item(
            report,
            &search.action,
            &search.invocation,
            log,
            self.receipts.as_mut(),
            &mut self.links,
        );
        if self.receipts.is_some() && pushed > 0 {
            self.pushed = self.pushed.saturating_add(pushed);
            search.receipts = search.receipts.saturating_add(pushed);
            search.last_receipt = self.pushed;
        }
        search.used = now;
        self.recent.insert(now, key.clone());
        self.searches.insert(key, search);
    }

    fn close_least_recent(&mut self) {
        if let Some((_, key)) = self.recent.pop_first()
            && let Some(search) = self.searches.remove(&key)
        {
            self.close(search);
        }
    }

    /// The search's "Successfully created splunk events" line, once its receipts are written.
    fn close(&mut self, search: Search) {
        let Some(writer) = self.receipts.as_mut() else {
            return;
        };
        if search.receipts == 0 {
            return;
        }
        // Receipts leave the buffer in order: the search's last one is written once fewer
        // than (pushed - last_receipt) remain buffered.
        if self.pushed.saturating_sub(writer.pending()) < search.last_receipt
            && let Err(error) = writer.flush()
        {
            log::warn!("receipts: {error}");
        }
        let log_dir = self.log_dir.as_deref();
        let log = self
            .logs
            .entry(search.action.clone())
            .or_insert_with(|| ModAlertLog::new(Invocation::default(), log_dir, &search.action));
        log.message_for(
            &search.invocation,
            Level::Info,
            "Successfully created splunk events",
            "",
            None,
            &[("event_count", search.receipts.to_string())],
        );
    }

    /// Writes what is still buffered (receipts, links, the searches' closing lines). Errors are
    /// WARN lines: the items themselves are already delivered or dead letters. Runs once; also
    /// on drop.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if let Some(writer) = self.receipts.as_mut()
            && let Err(error) = writer.flush()
        {
            log::warn!("receipts: {error}");
        }
        while !self.recent.is_empty() {
            self.close_least_recent();
        }
        for log in self.logs.values_mut() {
            log.flush();
        }
        self.links.flush();
        let (saved, failed) = self.links.counts();
        if saved + failed > 0 {
            log::debug!(
                "links: {saved} saved, {failed} not saved to {}",
                crate::item::link::COLLECTION
            );
        }
    }

    /// Searches whose count is kept now (tests).
    pub fn open_searches(&self) -> usize {
        self.searches.len()
    }
}

impl Drop for DrainAudit {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The alert run an item came from, as far as its context tells (for its audit trail).
pub fn alert_context_of(item: &DeliveryItem) -> AlertContext {
    let context = &item.context;
    AlertContext {
        action: context.action.clone(),
        sid: context.sid.clone(),
        search_name: context.search_name.clone(),
        app: context.app.clone(),
        owner: context.owner.clone(),
        results_link: context.results_link.clone(),
        params: [("account".to_string(), item.account.clone())].into_iter().collect(),
        ..AlertContext::default()
    }
}

#[cfg(test)]
mod tests;
