//! `stackflow alert <soar|incident|slack> --execute`: one custom alert action run, as splunkd
//! starts it.
//!
//! Order of work, chosen so that bad input stops the run before anything is sent: payload →
//! settings → the whole results file validated → mapper (parameters) → target (account and
//! secret) → rows streamed through mapper → deliverer → audit. The exit code is the worst of
//! all items' (PRODUCT §4).

use crate::audit::Audit;
use crate::delivery::deliverer::Deliverer;
use crate::delivery::{DeliveryItem, RejectClass, Target, TargetKind};
use crate::error::{Error, ExitCode, Result};
use crate::mapping::{self, AlertContext};
use crate::settings::Settings;
use crate::splunk::conf::ConfFile;
use crate::splunk::payload::AlertPayload;
use crate::splunk::rest::Splunkd;
use crate::splunk::results::ResultsReader;
use crate::{logging, targets};
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
        Err(error) => return super::report_error(&error),
    };
    if payload.verbose() {
        logging::init(true);
    }
    match execute_run(kind, &payload) {
        Ok(code) => code,
        Err(error) => super::report_error(&error),
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

/// Parses `maxtime` values: `300`, `30s`, `5m`, `1h`, `1d`.
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
    Some(Duration::from_secs_f64(seconds))
}

fn execute_run(kind: TargetKind, payload: &AlertPayload) -> Result<ExitCode> {
    let stanza = kind.action_name();
    let settings = Settings::load()?;
    if payload.results_file.trim().is_empty() {
        return Err(Error::results("(none)", "the payload has no results_file"));
    }
    let results_path = Path::new(payload.results_file.trim());
    let rows_total = ResultsReader::validate(results_path)?;
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
    let context = AlertContext::from_payload(stanza, payload, rows_total);
    let account = context.account().to_string();
    let mut mapper = mapping::mapper_for(kind, context.clone())?;
    let delivery = settings.delivery()?;
    let mut deliverer = Deliverer::from_settings(&delivery, time_budget(&settings, stanza));
    let (splunkd, opened) =
        match Splunkd::new(&settings, &payload.server_uri, payload.session_key.clone()) {
            Ok(splunkd) => {
                let opened = targets::open(kind, &account, &settings, &splunkd);
                (Some(splunkd), opened)
            }
            Err(error) => (None, Err(error)),
        };
    let mut audit = Audit::new(&context, &settings, splunkd);
    let mut target: Option<Box<dyn Target>> = None;
    let mut cannot_attempt: Option<(RejectClass, String)> = None;
    match opened {
        Ok(opened) => target = Some(opened),
        Err(error) => {
            let class = match error.exit_code() {
                ExitCode::Credentials => RejectClass::Credentials,
                ExitCode::Configuration => RejectClass::Configuration,
                _ => return Err(error),
            };
            log::error!("{error}");
            cannot_attempt = Some((class, error.to_string()));
        }
    }
    let mut exit = ExitCode::Success;
    let mut deliver = |items: Vec<DeliveryItem>, audit: &mut Audit, exit: &mut ExitCode| {
        for item in items {
            let report = match (&mut target, &cannot_attempt) {
                (Some(target), _) => deliverer.deliver(item, target.as_mut()),
                (None, Some((class, reason))) => deliverer.dead_letter(
                    item,
                    *class,
                    reason,
                    0,
                    crate::delivery::spool::now_unix(),
                ),
                (None, None) => unreachable_report(item),
            };
            *exit = exit.worst(report.exit_code());
            audit.record(&report);
        }
    };
    let reader = ResultsReader::open(results_path, payload.result_id.as_deref())?;
    for row in reader {
        let row = row?;
        audit.invoked(&row);
        let items = mapper.push(&row)?;
        deliver(items, &mut audit, &mut exit);
    }
    let items = mapper.finish()?;
    deliver(items, &mut audit, &mut exit);
    audit.finish();
    log::info!("{stanza}: finished with exit code {}", exit.code());
    Ok(exit)
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
}
