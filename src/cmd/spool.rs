//! `stackflow spool list|flush|requeue|purge`: the admin's and the scripted input's view of the
//! delivery spool. Glue only: the spool itself is `delivery::spool`, the re-send loop
//! `delivery::flush`.
//!
//! `flush` is what the app's scripted input runs every minute with `passAuth`: with nothing due
//! it says one DEBUG line and exits 0; otherwise it reads the splunkd session key from stdin
//! (first line), opens each (target, account) once, sends every due item once, and exits with
//! the worst item's code (0 all sent, 7 some still pending, 6/5/4 some rejected, 8 the spool is
//! unusable or an item file was corrupt).
//!
//! An item whose account name is not a valid one (`[A-Za-z0-9_.-]{1,64}`, PRODUCT §15; only a
//! spool written by hand or by an older version holds one) becomes a dead letter of class
//! configuration (exit 4) without any secret being read; the flush goes on with the others.
//! Kept rather than dropped: its payload is intact, and `spool requeue` sends it once the
//! record's account is fixed.

use crate::audit::drain::DrainAudit;
use crate::civil_time::now_unix;
use crate::cli::SpoolCommand;
use crate::delivery::deliverer::DeliveryReport;
use crate::delivery::flush::{self, FlushOptions};
use crate::error::{Error, ExitCode};
use crate::item::Target;
use crate::logging;
use crate::net::retry::Backoff;
use crate::net::{Outcome, RejectClass};
use crate::outbox;
use crate::outbox::record::{ItemState, Listed, PAGE, SpoolRecord};
use crate::outbox::store::Store;
use crate::remotes;
use crate::remotes::splunkd::Splunkd;
use crate::secret::Secret;
use crate::settings::{DeliverySettings, Settings, StoreKind};
use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

pub fn run(command: SpoolCommand) -> ExitCode {
    logging::init(false);
    let (settings, delivery, options) = match open_spool() {
        Ok(opened) => opened,
        Err(error) => return error.report(),
    };
    let retention = delivery.ledger_retention;
    let splunkd = match delivery.store {
        StoreKind::File => None,
        StoreKind::KvStore => {
            let uri = match &command {
                SpoolCommand::Flush { splunkd_uri, .. } => splunkd_uri.clone().unwrap_or_default(),
                _ => String::new(),
            };
            match open_kv(&settings, &uri) {
                Ok(splunkd) => Some(splunkd),
                Err(error) => return error.report(),
            }
        }
    };
    let outbox = outbox::open(&delivery, splunkd.clone());
    let outbox = outbox.as_ref();
    match command {
        SpoolCommand::List { json } => list(outbox, json),
        SpoolCommand::Flush { splunkd_uri, all } => {
            let mut summary = FlushCounts::default();
            let options = FlushOptions { all, ..options };
            let code = flush(&settings, outbox, options, splunkd, splunkd_uri, &mut summary);
            sweep_stale_claims(&settings);
            let ledger = outbox.ledger();
            let code = match ledger.expire_hourly(retention) {
                Ok(0) => code,
                Ok(removed) => {
                    log::info!(
                        "spool: {removed} ledger entries past [delivery] ledger_retention_days removed"
                    );
                    code
                }
                Err(error) => code.worst(spool_unusable(outbox, &error)),
            };
            print_status(outbox, &summary, code);
            code
        }
        SpoolCommand::Requeue { ids } => requeue(outbox, &ids),
        SpoolCommand::Purge { older_than_days } => {
            let code = purge(outbox, older_than_days);
            match outbox.ledger().expire(retention) {
                Ok(removed) => {
                    log::info!(
                        "spool purge: removed {removed} ledger entries delivered more than {} day(s) ago ([delivery] ledger_retention_days)",
                        retention.as_secs() / 86400
                    );
                    code
                }
                Err(error) => code.worst(spool_unusable(outbox, &error)),
            }
        }
    }
}

/// Removes the per-container lock files of SOAR (and Slack storm) claims nobody has used for
/// a day; they would otherwise pile up, one per container ever sent to.
fn sweep_stale_claims(settings: &Settings) {
    let Ok(delivery) = settings.delivery() else {
        return;
    };
    let removed = remotes::soar::claim::ContainerClaims::sweep_stale(&delivery.spool_dir);
    if removed > 0 {
        log::info!(
            "spool flush: removed {removed} claim lock files unused for a day from {}",
            remotes::soar::claim::claims_dir(&delivery.spool_dir).display()
        );
    }
}

type Opened = (Settings, DeliverySettings, FlushOptions);

fn open_spool() -> Result<Opened, Error> {
    let settings = Settings::load()?;
    let delivery = settings.delivery()?;
    let options = FlushOptions {
        all: false,
        backoff: Backoff::with_base(delivery.retry_base),
        max_items: delivery.flush_max_items,
        max_time: delivery.flush_max_time,
    };
    Ok((settings, delivery, options))
}

/// The KV store spool of a cluster member: every command needs splunkd, so the session key
/// (first line of stdin) is read up front.
fn open_kv(settings: &Settings, uri: &str) -> Result<Splunkd, Error> {
    let session_key = read_session_key();
    if session_key.is_empty() {
        return Err(Error::Credentials(
            "the spool lives in the KV store ([delivery] store = kvstore, or this is a search head cluster member), which needs a splunkd session key on stdin: the app's scripted input passes it (passAuth); by hand, pipe one: `echo $KEY | stackflow spool …`".into(),
        ));
    }
    Splunkd::new(settings, uri, Secret::new(session_key))
}

fn spool_unusable(outbox: &dyn Store, error: &Error) -> ExitCode {
    if let Error::Unavailable(_) = error {
        // The KV store (splunkd) cannot answer now: the items are where they were.
        log::error!(
            "the spool {} cannot be read now: {error}; nothing was changed, the next run tries again",
            outbox.location()
        );
        return ExitCode::Deferred;
    }
    logging::fatal(&format!("the spool {} is unusable: {error}", outbox.location()));
    ExitCode::DataAtRisk
}

/// What one flush did, for the status line.
#[derive(Default)]
struct FlushCounts {
    delivered: usize,
    duplicates: usize,
    rejected: usize,
    not_due: usize,
    still_pending: usize,
    left_for_next_run: usize,
    counts_capped: bool,
    accounts: Vec<flush::AccountReport>,
}

/// One JSON line on stdout per flush: the scripted input indexes it as `stackflow:flush`, and
/// the overview dashboard reads the spool's state from it.
fn print_status(outbox: &dyn Store, counts: &FlushCounts, code: ExitCode) {
    // O(page), not O(backlog): pending is what this flush counted (or, while the remotes
    // stay down, what the last scan counted); the other states are read a page at most.
    let now = now_unix();
    let mut dead = Vec::new();
    let mut capped = counts.counts_capped;
    let mut count = |state| match outbox.page(state, PAGE) {
        Ok(page) => {
            capped |= page.more;
            if state == ItemState::Dead {
                dead.extend(
                    page.items
                        .iter()
                        .filter_map(|item| item.record.as_ref().ok())
                        .map(|record| dead_letter(record, now)),
                );
            }
            page.items.len()
        }
        Err(_) => 0,
    };
    let state = [
        counts.still_pending + counts.not_due,
        count(ItemState::Inflight),
        count(ItemState::Dead),
        count(ItemState::Quarantine),
    ];
    // The oldest first (they have waited longest), bounded: the count is `dead_letters`.
    dead.sort_by(|a, b| {
        b["age_s"].as_f64().unwrap_or(0.0).total_cmp(&a["age_s"].as_f64().unwrap_or(0.0))
    });
    dead.truncate(DEAD_LETTERS_LISTED);
    let line = serde_json::json!({
        "time": now_unix(),
        "pending": state[0],
        "in_flight": state[1],
        "dead_letters": state[2],
        "quarantined": state[3],
        "delivered": counts.delivered,
        "duplicates": counts.duplicates,
        "rejected": counts.rejected,
        "not_due": counts.not_due,
        "left_for_next_run": counts.left_for_next_run,
        "counts_capped": capped,
        "dead_letter_list": dead,
        "accounts": counts.accounts,
        "exit_code": code.code(),
    });
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
}

/// Most dead letters one status line lists (for the overview dashboard's table).
const DEAD_LETTERS_LISTED: usize = 100;

/// One dead letter as the dashboard shows it: what, whose, why, and the command that requeues it.
fn dead_letter(record: &SpoolRecord, now: f64) -> serde_json::Value {
    serde_json::json!({
        "id": record.id,
        "age_s": (now - record.first_attempt_unix).max(0.0).round(),
        "action": record.item.context.action,
        "target": record.item.target.as_str(),
        "account": record.item.account,
        "search_name": record.item.context.search_name,
        "reason_class": record.reject_class,
        "message": cut(&record.last_error.replace(['\n', '\r'], " "), 300),
        "requeue": format!("stackflow spool requeue {}", record.id),
    })
}

/// Receipts a flush keeps in memory before writing a stash file: a drain of any backlog holds
/// at most this many lines (about 1 KB each) at once, and writes (and fsyncs) one file per this
/// many items.
const RECEIPT_BATCH: usize = 500;

fn flush(
    settings: &Settings,
    outbox: &dyn Store,
    options: FlushOptions,
    splunkd: Option<Splunkd>,
    splunkd_uri: Option<String>,
    counts: &mut FlushCounts,
) -> ExitCode {
    let spool = outbox;
    let plan = match flush::prepare(spool, &options) {
        Ok(plan) => plan,
        Err(error) => return spool_unusable(outbox, &error),
    };
    counts.not_due = plan.not_due;
    if plan.due() == 0 {
        logging::write_line(
            "DEBUG",
            &format!(
                "spool flush: nothing due in {} ({} pending, not due yet)",
                spool.location(),
                plan.not_due
            ),
        );
        return ExitCode::Success;
    }
    let (splunkd, plan) = match splunkd {
        Some(splunkd) => (splunkd, plan),
        None => match open_splunkd(settings, outbox, plan, splunkd_uri) {
            Ok(opened) => opened,
            Err(code) => return code,
        },
    };
    log::debug!("spool flush: reading secrets through {}", splunkd.base_url());
    let mut open = |kind, account: &str| match remotes::secrets::account_problem(account) {
        Some(problem) => Ok(Box::new(RefusedAccount(problem)) as Box<dyn Target>),
        None => remotes::open(kind, account, settings, &splunkd),
    };
    // Items that end here leave the same trail as in an alert run: a receipt, the
    // ModularAction status line Incident Review reads, and the links, in memory that does not
    // grow with the number of searches in the backlog.
    let mut audit = DrainAudit::new(settings, Some(splunkd.clone()), RECEIPT_BATCH);
    let mut on_end = |report: DeliveryReport| audit.record(&report);
    let summary = flush::run(spool, plan, &options, &mut open, &mut on_end);
    audit.finish();
    counts.delivered = summary.delivered;
    counts.duplicates = summary.duplicates;
    counts.rejected = summary.rejected;
    counts.left_for_next_run = summary.left_for_next_run;
    counts.still_pending = summary.still_pending;
    counts.counts_capped = summary.counts_capped;
    counts.accounts = summary.accounts;
    summary.exit
}

/// The target of a spooled item whose account name is invalid: every attempt is refused as a
/// configuration problem, so the item is kept as a dead letter and nothing is read or sent.
struct RefusedAccount(String);

impl Target for RefusedAccount {
    fn attempt(&mut self, _item: &crate::item::DeliveryItem) -> Outcome {
        Outcome::rejected(RejectClass::Configuration, format!("configuration: {}", self.0))
    }
}

/// The splunkd a file spool's flush reads secrets through, from the session key on stdin
/// (read only when there is work); without one the plan is given back and the code returned.
fn open_splunkd(
    settings: &Settings,
    outbox: &dyn Store,
    plan: flush::Plan,
    splunkd_uri: Option<String>,
) -> Result<(Splunkd, flush::Plan), ExitCode> {
    let spool = outbox;
    let session_key = read_session_key();
    if session_key.is_empty() {
        log::error!(
            "spool flush: {} spooled item(s) are due but no splunkd session key arrived on stdin, so the accounts' secrets cannot be read. The app's scripted input passes it (inputs.conf passAuth = splunk-system-user); by hand, pipe a session key: `echo $KEY | stackflow spool flush`. The items stay pending.",
            plan.due()
        );
        if let Err(error) = flush::abandon(spool, plan) {
            return Err(spool_unusable(outbox, &error));
        }
        return Err(ExitCode::Credentials);
    }
    match Splunkd::new(settings, splunkd_uri.as_deref().unwrap_or(""), Secret::new(session_key)) {
        Ok(splunkd) => Ok((splunkd, plan)),
        Err(error) => {
            let code = error.report();
            if let Err(error) = flush::abandon(spool, plan) {
                return Err(spool_unusable(outbox, &error));
            }
            Err(code)
        }
    }
}

/// The first line of stdin (splunkd's passAuth token); empty when stdin is a terminal or empty.
pub(crate) fn read_session_key() -> String {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return String::new();
    }
    let mut line = String::new();
    match stdin.lock().read_line(&mut line) {
        Ok(_) => line.trim().to_string(),
        Err(_) => String::new(),
    }
}

/// At most a page (`PAGE`) of each state, read as the store gives them, so that a backlog of
/// any size lists in bounded time and memory; a line on stderr says when there are more.
fn list(outbox: &dyn Store, json: bool) -> ExitCode {
    let mut listed = Vec::new();
    let mut more = Vec::new();
    for state in [ItemState::Pending, ItemState::Inflight, ItemState::Dead, ItemState::Quarantine] {
        match outbox.page(state, PAGE) {
            Ok(page) => {
                if page.more {
                    more.push(state.as_str());
                }
                listed.extend(page.items);
            }
            Err(error) => return spool_unusable(outbox, &error),
        }
    }
    listed.sort_by(|a, b| {
        order(a.state).cmp(&order(b.state)).then(first_seen(a).total_cmp(&first_seen(b)))
    });
    let now = now_unix();
    let mut out = String::new();
    if json {
        for entry in &listed {
            out.push_str(&json_line(entry, now).to_string());
            out.push('\n');
        }
    } else {
        out.push_str(&table(&listed, now));
    }
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()).is_err() {
        return ExitCode::Internal;
    }
    if !more.is_empty() {
        log::warn!(
            "spool {}: more than {PAGE} items {}; the first {PAGE} of each are shown (in no particular order)",
            outbox.location(),
            more.join(", ")
        );
    }
    let count = |state| listed.iter().filter(|entry| entry.state == state).count();
    log::info!(
        "spool {}: {} pending, {} in flight, {} dead letters, {} quarantined",
        outbox.location(),
        count(ItemState::Pending),
        count(ItemState::Inflight),
        count(ItemState::Dead),
        count(ItemState::Quarantine)
    );
    ExitCode::Success
}

fn order(state: ItemState) -> u8 {
    match state {
        ItemState::Pending => 0,
        ItemState::Inflight => 1,
        ItemState::Dead => 2,
        ItemState::Quarantine => 3,
    }
}

fn first_seen(entry: &Listed) -> f64 {
    entry.record.as_ref().map(|record| record.first_attempt_unix).unwrap_or(entry.modified_unix)
}

fn json_line(entry: &Listed, now: f64) -> serde_json::Value {
    match &entry.record {
        Ok(record) => serde_json::json!({
            "state": entry.state.as_str(),
            "id": record.id,
            "target": record.item.target.as_str(),
            "account": record.item.account,
            "dedupe_key": record.item.dedupe_key,
            "attempts": record.attempts,
            "age_s": (now - record.first_attempt_unix).max(0.0).round(),
            "first_attempt_unix": record.first_attempt_unix,
            "last_attempt_unix": record.last_attempt_unix,
            "next_attempt_unix": record.next_attempt_unix,
            "last_error": record.last_error,
            "reject_class": record.reject_class,
            "action": record.item.context.action,
            "sid": record.item.context.sid,
            "search_name": record.item.context.search_name,
            "file": entry.path.display().to_string(),
        }),
        Err(problem) => serde_json::json!({
            "state": entry.state.as_str(),
            "file": entry.path.display().to_string(),
            "age_s": (now - entry.modified_unix).max(0.0).round(),
            "last_error": problem,
        }),
    }
}

/// `42s`, `3m`, `5h`, `2d`.
fn human_duration(seconds: f64) -> String {
    let seconds = seconds.max(0.0) as u64;
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86400 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86400),
    }
}

fn cut(text: &str, width: usize) -> String {
    match text.char_indices().nth(width) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

fn table(listed: &[Listed], now: f64) -> String {
    let header =
        ["STATE", "ID", "TARGET", "ACCOUNT", "DEDUPE KEY", "ATTEMPTS", "AGE", "NEXT", "LAST ERROR"];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|cell| cell.to_string()).collect()];
    for entry in listed {
        let row = match &entry.record {
            Ok(record) => vec![
                entry.state.as_str().to_string(),
                record.id.clone(),
                record.item.target.as_str().to_string(),
                record.item.account.clone(),
                cut(&record.item.dedupe_key, 48),
                record.attempts.to_string(),
                human_duration(now - record.first_attempt_unix),
                match entry.state {
                    ItemState::Pending if record.next_attempt_unix > now => {
                        format!("in {}", human_duration(record.next_attempt_unix - now))
                    }
                    ItemState::Pending => "due".to_string(),
                    _ => "-".to_string(),
                },
                cut(&record.last_error.replace(['\n', '\r'], " "), 160),
            ],
            Err(problem) => vec![
                entry.state.as_str().to_string(),
                entry
                    .path
                    .file_name()
                    .map(|name| name.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                "?".into(),
                "?".into(),
                "?".into(),
                "?".into(),
                human_duration(now - entry.modified_unix),
                "-".into(),
                cut(problem, 160),
            ],
        };
        rows.push(row);
    }
    let columns = header.len();
    let widths: Vec<usize> = (0..columns)
        .map(|column| rows.iter().map(|row| row[column].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            if column + 1 == columns {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[column] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn requeue(outbox: &dyn Store, ids: &[String]) -> ExitCode {
    let (done, missing) = match outbox.requeue(ids) {
        Ok(result) => result,
        Err(error) => return spool_unusable(outbox, &error),
    };
    for id in &done {
        log::info!("spool: dead letter {id} moved back to pending");
    }
    for id in &missing {
        log::error!(
            "spool: no dead letter with id {id} in {} (see `stackflow spool list`)",
            outbox.location()
        );
    }
    log::info!(
        "spool requeue: {} dead letter(s) back in pending; the next `stackflow spool flush` sends them",
        done.len()
    );
    if missing.is_empty() { ExitCode::Success } else { ExitCode::BadInvocation }
}

fn purge(outbox: &dyn Store, older_than_days: u64) -> ExitCode {
    let older_than = Duration::from_secs(older_than_days.saturating_mul(86400));
    match outbox.purge(older_than) {
        Ok(removed) => {
            for path in &removed {
                log::info!("spool: purged {}", path.display());
            }
            log::info!(
                "spool purge: removed {} dead letter(s) older than {older_than_days} day(s) from {}",
                removed.len(),
                outbox.location()
            );
            ExitCode::Success
        }
        Err(error) => spool_unusable(outbox, &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_human_wrote_them() {
        assert_eq!(human_duration(42.4), "42s");
        assert_eq!(human_duration(180.0), "3m");
        assert_eq!(human_duration(5.0 * 3600.0), "5h");
        assert_eq!(human_duration(2.5 * 86400.0), "2d");
        assert_eq!(human_duration(-3.0), "0s");
    }

    #[test]
    fn the_table_aligns_columns_and_shows_unreadable_files() {
        let listed = vec![Listed {
            state: ItemState::Quarantine,
            path: "/s/quarantine/abc.json".into(),
            record: Err("not a spool item".into()),
            modified_unix: 100.0,
        }];
        let text = table(&listed, 160.0);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("STATE       ID        TARGET"), "{text}");
        assert!(lines[1].starts_with("quarantine  abc.json  ?"), "{text}");
        assert!(lines[1].ends_with("1m   -     not a spool item"), "{text}");
    }
}
