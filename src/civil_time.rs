//! Calendar dates from Unix time, in UTC, without a time-zone database: the one conversion
//! behind every timestamp we format (ModularAction log lines, Slack's time field, ISO 8601
//! query parameters). Proleptic Gregorian calendar, Howard Hinnant's `civil_from_days`
//! ("chrono-Compatible Low-Level Date Algorithms").

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
}
