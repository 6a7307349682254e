//! `stackflow alert <soar|incident|slack> --execute`: one custom alert action run, as splunkd
//! starts it.
//!
//! Order of work, chosen so that bad input stops the run before anything is sent: payload →
//! settings → the whole results file validated (within `[limits]`) → mapper (parameters) →
//! target (account and secret) → rows streamed through mapper → deliverer → audit. The exit
//! code is the worst of all items' (PRODUCT §4). An absurd `maxtime` saturates at a day.

use crate::audit::Audit;
use crate::delivery::deliverer::Deliverer;
use crate::error::{Error, ExitCode, Result};
use crate::item::{DeliveryItem, Target, TargetKind};
use crate::mapping::{self, AlertContext};
use crate::net::RejectClass;
use crate::remotes::splunkd::Splunkd;
use crate::settings::{Settings, StoreKind};
use crate::splunk::conf::ConfFile;
use crate::splunk::payload::AlertPayload;
use crate::splunk::results::{Limits, ResultsReader, Row};
use crate::{logging, remotes};
use std::path::Path;
use std::time::Duration;

/// splunkd's default `maxtime` for alert actions.
const DEFAULT_MAXTIME: Duration = Duration::from_secs(300);

pub fn run(kind: TargetKind, execute: bool) -> ExitCode {
    let stanza = kind.action_name();
    if !execute {
        logging::fatal(&format!(
            "unsupported execution mode for {stanza}: expected the --execute flag (splunkd passes it; see `stackflow alert --help`)"
        ));
        return ExitCode::BadInvocation;
    }
    logging::init(false);
    let payload = match AlertPayload::read(std::io::stdin().lock(), stanza) {
        Ok(payload) => payload,
        Err(error) => return error.report(),
    };
    if payload.verbose() {
        logging::init(true);
    }
    match execute_run(kind, &payload) {
        Ok(code) => code,
        Err(error) => error.report(),
    }
}

/// The run's time budget: the action's `maxtime` less a margin for spooling and audit.
pub fn time_budget(settings: &Settings, stanza: &str) -> Duration {
    let maxtime = settings
        .app_dir
        .as_deref()
        .and_then(|dir| ConfFile::load_app_conf(dir, "alert_actions.conf").ok())
        .and_then(|conf| conf.get_nonempty(stanza, "maxtime").and_then(parse_splunk_duration))
        .unwrap_or(DEFAULT_MAXTIME);
    let margin = (maxtime / 5).min(Duration::from_secs(30)).max(Duration::from_secs(2));
    maxtime.saturating_sub(margin).max(Duration::from_secs(1))
}

/// The longest `maxtime` taken at its word; larger values (up to `1e300d`) count as this much.
/// A day is far beyond any alert run (retries stop after `[delivery] max_attempts` anyway) and
/// keeps the deadline arithmetic (`Instant + budget`) far from overflowing.
pub const MAX_MAXTIME: Duration = Duration::from_secs(86_400);

/// Parses `maxtime` values: `300`, `30s`, `5m`, `1h`, `1d`. Values above `MAX_MAXTIME`
/// saturate to it; what is not a finite, non-negative number with one of these units is `None`
/// (the caller's default).
pub fn parse_splunk_duration(value: &str) -> Option<Duration> {
    let value = value.trim();
    let (number, unit) = match value.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&value[..i], c.to_ascii_lowercase()),
        _ => (value, 's'),
    };
    let number: f64 = number.trim().parse().ok().filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let seconds = match unit {
        's' => number,
        'm' => number * 60.0,
        'h' => number * 3600.0,
        'd' => number * 86400.0,
        _ => return None,
    };
    // `Duration::from_secs_f64` panics above u64::MAX seconds (and `number * 86400.0` may be
    // infinite): compare as floats first; NaN and negatives are not durations.
    if seconds >= MAX_MAXTIME.as_secs_f64() {
        return Some(MAX_MAXTIME);
    }
    Duration::try_from_secs_f64(seconds).ok()
}

fn execute_run(kind: TargetKind, payload: &AlertPayload) -> Result<ExitCode> {
    let stanza = kind.action_name();
    // Before anything is read or sent: a bad name never reaches storage/passwords (§15).
    remotes::secrets::check_account(
        payload.param("account").unwrap_or("default"),
        &format!("alert action {stanza}, parameter account"),
    )?;
    let settings = Settings::load()?;
    if payload.results_file.trim().is_empty() {
        return Err(Error::results("(none)", "the payload has no results_file"));
    }
    let results_path = Path::new(payload.results_file.trim());
    let limits = Limits::from_conf(&settings.conf)?;
    let rows_total = ResultsReader::validate(results_path, limits)?;
    log::info!(
        "{stanza}: search \"{}\" sid={} rows={rows_total} account={}",
        payload.search_name,
        payload.sid,
        payload.param("account").unwrap_or("default")
    );
    if rows_total == 0 {
        log::info!("{stanza}: no results, nothing to send");
        return Ok(ExitCode::Success);
    }
    let mut context = AlertContext::from_payload(stanza, payload, rows_total);
    if kind == TargetKind::Slack {
        context.routes = mapping::route::Route::all(&settings.conf)?;
        let (templates, broken) = mapping::triage::Template::valid(&settings.conf);
        for error in broken {
            log::warn!("{stanza}: {error}; its Triage button is not offered (see stackflow check)");
        }
        context.triage = templates;
    }
    let account = context.account().to_string();
    let mut mapper = mapping::mapper_for(kind, context.clone())?;
    let delivery = settings.delivery()?;
    let mut deliverer = Deliverer::from_settings(&delivery, time_budget(&settings, stanza));
    let (splunkd, opened) =
        match Splunkd::new(&settings, &payload.server_uri, payload.session_key.clone()) {
            Ok(splunkd) => {
                let opened = remotes::open(kind, &account, &settings, &splunkd);
                if delivery.store == StoreKind::KvStore {
                    // A cluster member: what this run cannot deliver any member may flush, and
                    // what one member delivered every member must know.
                    deliverer = deliverer
                        .with_outbox(crate::outbox::open(&delivery, Some(splunkd.clone())));
                }
                (Some(splunkd), opened)
            }
            Err(error) => (None, Err(error)),
        };
    let mut audit = Audit::new(&context, &settings, splunkd);
    let mut target: Option<Box<dyn Target>> = None;
    let mut blocked: Option<Blocked> = None;
    match opened {
        Ok(opened) => target = Some(opened),
        Err(error) => {
            blocked = Some(match error.exit_code() {
                ExitCode::Credentials => {
                    Blocked::Reject(RejectClass::Credentials, error.to_string())
                }
                ExitCode::Configuration => {
                    Blocked::Reject(RejectClass::Configuration, error.to_string())
                }
                ExitCode::Deferred => Blocked::Defer(error.to_string()),
                _ => return Err(error),
            });
            log::error!("{error}");
        }
    }
    // Rows are read and mapped on this thread while the previous items are delivered on
    // another, so a slow remote and the CSV work overlap; the bounded channel keeps memory flat.
    let (sender, receiver) = std::sync::mpsc::sync_channel::<Work>(4);
    // Sent requests' buffers go back to the mapper (`RowMapper::reuse`).
    let (give_back, given_back) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
    let results_file = ResultsReader::open(results_path, payload.result_id.as_deref(), limits)?;
    let (mapped, exit) = std::thread::scope(|scope| {
        let worker = scope.spawn(move || {
            let mut exit = ExitCode::Success;
            for work in receiver {
                let Work { invoked, items, suppressed } = work;
                for (rid, orig_sid, orig_rid) in invoked.iter() {
                    audit.invoked_ids(rid, orig_sid, orig_rid);
                }
                for row in &suppressed {
                    audit.suppressed(row, &account);
                }
                for item in items {
                    let now = crate::civil_time::now_unix();
                    let report = match (&mut target, &blocked) {
                        (Some(target), _) => deliverer.deliver(item, target.as_mut()),
                        (None, Some(Blocked::Reject(class, reason))) => {
                            deliverer.dead_letter(item, *class, reason, 0, now)
                        }
                        (None, Some(Blocked::Defer(reason))) => {
                            deliverer.defer(item, 0, reason, now)
                        }
                        (None, None) => unreachable_report(item),
                    };
                    exit = exit.worst(report.exit_code());
                    audit.record(&report);
                    let buffer = report.item.request.into_bytes();
                    if buffer.capacity() >= REUSED_BUFFER_BYTES {
                        let _ = give_back.try_send(buffer);
                    }
                }
            }
            audit.finish();
            exit
        });
        let mapped = map_rows(results_file, mapper.as_mut(), &sender, &given_back);
        drop(sender);
        let exit = worker.join().unwrap_or(ExitCode::Internal);
        (mapped, exit)
    });
    // Items mapped before a failure were delivered (the file was validated first, so this is
    // an I/O failure while re-reading it): report the error, and let the worst code win.
    if let Err(error) = mapped {
        let code = exit.worst(error.report());
        log::info!("{stanza}: stopped with exit code {}", code.code());
        return Ok(code);
    }
    log::info!("{stanza}: finished with exit code {}", exit.code());
    Ok(exit)
}

/// What the reading thread hands to the delivering thread, in row order: the rows read since
/// the last hand-over (for their "Invoking" lines) and the items they completed. Handing over
/// in batches keeps thread wake-ups to one per batch instead of one per row.
struct Work {
    invoked: InvokedRows,
    items: Vec<DeliveryItem>,
    /// Rows a route suppressed (receipts with outcome `suppressed`).
    suppressed: Vec<mapping::Suppressed>,
}

/// The ids (rid, orig_sid, orig_rid) of rows read, one after the other in one string: three
/// strings per row would be three allocations per row.
#[derive(Default)]
struct InvokedRows {
    text: String,
    /// Where each row's three ids end in `text`.
    ends: Vec<[usize; 3]>,
}

impl InvokedRows {
    fn with_capacity(rows: usize) -> InvokedRows {
        InvokedRows { text: String::with_capacity(rows * 16), ends: Vec::with_capacity(rows) }
    }

    fn push(&mut self, ids: [&str; 3]) {
        let mut ends = [0; 3];
        for (end, id) in ends.iter_mut().zip(ids) {
            self.text.push_str(id);
            *end = self.text.len();
        }
        self.ends.push(ends);
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        let mut start = 0;
        self.ends.iter().map(move |&[rid, orig_sid, orig_rid]| {
            let ids =
                (&self.text[start..rid], &self.text[rid..orig_sid], &self.text[orig_sid..orig_rid]);
            start = orig_rid;
            ids
        })
    }
}

/// Request buffers at least this large are handed back to the mapper (SOAR batches; the small
/// requests of the other targets are not worth the trip).
const REUSED_BUFFER_BYTES: usize = 64 * 1024;

/// Rows read without completing an item are still handed over after this many.
const HAND_OVER_ROWS: usize = 512;

/// Streams the rows through the mapper (one `Row` read into again and again); stops early only
/// if the deliverer has gone away.
fn map_rows(
    mut rows: ResultsReader,
    mapper: &mut dyn mapping::RowMapper,
    sender: &std::sync::mpsc::SyncSender<Work>,
    given_back: &std::sync::mpsc::Receiver<Vec<u8>>,
) -> Result<()> {
    let stopped = || Error::Internal("the delivery thread stopped".into());
    let mut invoked = InvokedRows::with_capacity(HAND_OVER_ROWS);
    if let Some(header) = rows.header().cloned() {
        let mut row = Row::empty(header);
        while rows.read_into(&mut row)? {
            invoked.push([
                &row.rid,
                row.str("orig_sid").unwrap_or_default(),
                row.str("orig_rid").unwrap_or_default(),
            ]);
            while let Ok(buffer) = given_back.try_recv() {
                mapper.reuse(buffer);
            }
            let items = mapper.push(&row)?;
            let suppressed = mapper.take_suppressed();
            if !items.is_empty() || !suppressed.is_empty() || invoked.len() >= HAND_OVER_ROWS {
                let invoked =
                    std::mem::replace(&mut invoked, InvokedRows::with_capacity(HAND_OVER_ROWS));
                let work = Work { invoked, items, suppressed };
                sender.send(work).map_err(|_| stopped())?;
            }
        }
    }
    let items = mapper.finish()?;
    let suppressed = mapper.take_suppressed();
    if !items.is_empty() || !invoked.is_empty() || !suppressed.is_empty() {
        sender.send(Work { invoked, items, suppressed }).map_err(|_| stopped())?;
    }
    Ok(())
}

/// Why no item of this run can be attempted.
enum Blocked {
    /// Configuration or credentials: the items become dead letters until the cause is fixed.
    Reject(RejectClass, String),
    /// splunkd could not be reached to read the secret: the items wait in the spool.
    Defer(String),
}

fn unreachable_report(item: DeliveryItem) -> crate::delivery::deliverer::DeliveryReport {
    crate::delivery::deliverer::DeliveryReport {
        item,
        result: crate::delivery::deliverer::Final::Lost,
        attempts: 0,
        duration: Duration::ZERO,
        delivered: None,
        message: "internal error: no target and no reason".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splunk_durations_parse() {
        assert_eq!(parse_splunk_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_splunk_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_splunk_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_splunk_duration("soon"), None);
    }

    #[test]
    fn absurd_durations_saturate_instead_of_panicking() {
        for value in
            ["99999999999999999999s", "1e300d", "18446744073709551615", "213503982334602d", "25h"]
        {
            assert_eq!(parse_splunk_duration(value), Some(MAX_MAXTIME), "{value}");
        }
        assert_eq!(parse_splunk_duration("1d"), Some(MAX_MAXTIME));
        assert_eq!(parse_splunk_duration("23h"), Some(Duration::from_secs(23 * 3600)));
        for value in ["1e400", "inf", "NaN", "-5m", "5w", ""] {
            assert_eq!(parse_splunk_duration(value), None, "{value}");
        }
    }

    #[test]
    fn the_time_budget_of_an_absurd_maxtime_is_a_day_less_the_margin() {
        let app = std::env::temp_dir().join(format!("stackflow-maxtime-{}", std::process::id()));
        std::fs::create_dir_all(app.join("local")).unwrap();
        std::fs::write(
            app.join("local").join("alert_actions.conf"),
            "[stackflow_soar]\nmaxtime = 99999999999999999999s\n",
        )
        .unwrap();
        let settings = Settings::from_conf(ConfFile::default(), Some(app.clone()), None);
        let budget = time_budget(&settings, "stackflow_soar");
        assert_eq!(budget, MAX_MAXTIME - Duration::from_secs(30));
        assert!(std::time::Instant::now().checked_add(budget).is_some());
        let _ = std::fs::remove_dir_all(&app);
    }

    #[test]
    fn invoked_rows_give_back_each_rows_ids_empty_ones_included() {
        let mut rows = InvokedRows::with_capacity(1);
        assert!(rows.is_empty());
        rows.push(["0", "", ""]);
        rows.push(["17", "scheduler__a", "3"]);
        rows.push(["", "", "é"]);
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows.iter().collect::<Vec<_>>(),
            vec![("0", "", ""), ("17", "scheduler__a", "3"), ("", "", "é")]
        );
    }
}
