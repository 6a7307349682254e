//! Calendar dates from Unix time, in UTC, without a time-zone database: the one conversion
//! behind every timestamp we format (ModularAction log lines, Slack's time field, ISO 8601
//! query parameters). Proleptic Gregorian calendar, Howard Hinnant's `civil_from_days`
//! ("chrono-Compatible Low-Level Date Algorithms"). Also the one clock: `now` and its two
//! readings, seconds as `f64` (records, leases) and whole seconds (headers, wall-clock text).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Time since the Unix epoch (zero for a clock set before 1970).
pub fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// `now()` in seconds with a fraction: the time kept in spool records, ledgers and leases.
pub fn now_unix() -> f64 {
    now().as_secs_f64()
}

/// `now()` in whole seconds.
pub fn now_unix_secs() -> u64 {
    now().as_secs()
}

/// Days since 1970-01-01 → (year, month, day).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe.saturating_add(era.saturating_mul(400)).saturating_add(i64::from(month <= 2));
    (year, month, day)
}

/// Whole seconds since the epoch → (year, month, day, hour, minute, second).
pub fn civil_from_unix(seconds: i64) -> (i64, u32, u32, u32, u32, u32) {
    let (days, of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400) as u32);
    let (year, month, day) = civil_from_days(days);
    (year, month, day, of_day / 3600, of_day / 60 % 60, of_day % 60)
}

/// `YYYY-MM-DDTHH:MM:SSZ` (ISO 8601 / RFC 3339, UTC).
pub fn iso8601_utc(seconds: i64) -> String {
    let (year, month, day, hour, minute, second) = civil_from_unix(seconds);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// (year, month, day) → days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era.saturating_mul(146_097).saturating_add(doe).saturating_sub(719_468)
}

/// Epoch seconds of an ISO 8601 / RFC 3339 timestamp as remotes write them:
/// `YYYY-MM-DD[T ]HH:MM:SS[.fraction][Z|±HH:MM|±HHMM]` (no offset = UTC). `None` for anything
/// else, including out-of-range fields.
pub fn parse_iso8601(text: &str) -> Option<f64> {
    let text = text.trim();
    let bytes = text.as_bytes();
    if bytes.len() < 19 || !matches!(bytes[10], b'T' | b't' | b' ') {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = text.get(range)?;
        part.bytes().all(|b| b.is_ascii_digit()).then(|| part.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(at, ch)| bytes[at] != ch)
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut fraction = 0.0;
    if let Some(after_dot) = rest.strip_prefix('.') {
        let digits = after_dot.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        fraction = format!("0.{}", &after_dot[..digits.min(9)]).parse().ok()?;
        rest = &after_dot[digits..];
    }
    let offset: i64 = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = rest[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let hours: i64 = digits[..2].parse().ok()?;
            let minutes: i64 = digits[2..].parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let days = days_from_civil(i64::from(year), month, day);
    let seconds = days
        .checked_mul(86_400)?
        .checked_add(i64::from(hour * 3600 + minute * 60 + second))?
        .checked_sub(offset)?;
    Some(seconds as f64 + fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(iso8601_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601_utc(1_763_750_000), "2025-11-21T18:33:20Z");
        assert_eq!(iso8601_utc(-1), "1969-12-31T23:59:59Z");
        let _ = iso8601_utc(i64::MAX);
        let _ = iso8601_utc(i64::MIN);
    }

    #[test]
    fn timestamps_are_parsed() {
        assert_eq!(parse_iso8601("2025-11-21T18:33:20Z"), Some(1_763_750_000.0));
        assert_eq!(parse_iso8601("2000-02-29T00:00:00+01:00"), Some(951_778_800.0));
        assert_eq!(parse_iso8601("2000-02-29 00:00:00-0130"), Some(951_787_800.0));
        let fractional = parse_iso8601("2023-01-02T01:11:07.408873Z").unwrap();
        assert!((fractional - 1_672_621_867.408_873).abs() < 1e-5, "{fractional}");
        for day in [0i64, 1, 59, 60, 365, 10_957, 20_000, -1, -719_468] {
            let (year, month, dom) = civil_from_days(day);
            assert_eq!(days_from_civil(year, month, dom), day);
        }
        for bad in [
            "",
            "2025-13-01T00:00:00Z",
            "2025-01-01T00:00:00.Z",
            "2025-01-01",
            "x".repeat(30).as_str(),
            "2025-01-01T00:00:00+5",
            "２０２５-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }
}
