//! Change times as the state input trusts them (PRODUCT §15, "Checkpoints never trust the
//! remote's clock blindly"): a time moves a cursor only when it parses and is not in the future
//! beyond [`MAX_SKEW_S`]; the cursor's own text is checked the same way when it is loaded.

use crate::civil_time::{iso8601_utc, parse_iso8601};

/// How far ahead of this host's clock a remote's change time may be and still count.
pub const MAX_SKEW_S: f64 = 300.0;

/// Why `time` cannot move a cursor at `now_unix`, or `None` when it can.
pub fn untrusted(time: &str, now_unix: f64) -> Option<String> {
    match parse_iso8601(time) {
        None => Some(format!("unparsable change time {:?}", shown(time))),
        Some(at) if at > now_unix + MAX_SKEW_S => Some(format!(
            "change time {:?} is in the future (more than {MAX_SKEW_S:.0}s ahead of this host)",
            shown(time)
        )),
        Some(_) => None,
    }
}

/// The text of an untrusted time, cut for a log line.
fn shown(time: &str) -> String {
    time.chars().take(64).collect()
}

/// `since` minus the overlap, as ISO 8601 UTC (`None` when it is not a timestamp).
pub fn with_overlap(since: &str, overlap_s: u64) -> Option<String> {
    let seconds = parse_iso8601(since)?;
    let start = (seconds.floor() as i64).saturating_sub(overlap_s.min(i64::MAX as u64) as i64);
    Some(iso8601_utc(start))
}

/// The later of two trusted change times (compared by instant).
pub fn later(a: Option<String>, b: &str) -> Option<String> {
    if b.is_empty() {
        return a;
    }
    match &a {
        Some(current) => match (parse_iso8601(current), parse_iso8601(b)) {
            (Some(x), Some(y)) if y > x => Some(b.to_string()),
            (None, Some(_)) => Some(b.to_string()),
            _ => a,
        },
        None => Some(b.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_move_by_instant_with_an_overlap() {
        assert_eq!(with_overlap("2026-01-01T00:05:00.5Z", 300).unwrap(), "2026-01-01T00:00:00Z");
        assert_eq!(with_overlap("not a time", 300), None);
        assert!(with_overlap("1970-01-01T00:00:00Z", u64::MAX).is_some(), "saturates");
        let newer = later(Some("2026-01-01T00:00:00.9Z".into()), "2026-01-01T00:00:01Z");
        assert_eq!(newer.as_deref(), Some("2026-01-01T00:00:01Z"));
        let kept = later(Some("2026-01-01T00:00:02Z".into()), "2026-01-01T00:00:01.5Z");
        assert_eq!(kept.as_deref(), Some("2026-01-01T00:00:02Z"));
        assert_eq!(later(None, "").as_deref(), None);
        let healed = later(Some("garbage".into()), "2026-01-01T00:00:00Z");
        assert_eq!(healed.as_deref(), Some("2026-01-01T00:00:00Z"));
    }

    #[test]
    fn future_and_unparsable_times_are_untrusted() {
        let now = parse_iso8601("2026-06-01T00:00:00Z").unwrap();
        assert!(untrusted("2026-06-01T00:04:00Z", now).is_none(), "within the skew");
        assert!(untrusted("2026-05-01T00:00:00Z", now).is_none());
        assert!(untrusted("2026-06-01T00:06:00Z", now).unwrap().contains("future"));
        assert!(untrusted("9999-12-31T23:59:59Z", now).unwrap().contains("future"));
        assert!(untrusted("yesterday", now).unwrap().contains("unparsable"));
        assert!(untrusted("", now).is_some());
    }
}
