//! Retry timing: exponential backoff with jitter, capped, honouring the remote's Retry-After.
//!
//! Two scales share one knob, `[delivery] retry_base_s` (default 0.5 s): retries inside one
//! alert run wait `base · 2^(n-1)` (capped at 30 s), and items in the spool wait
//! `120 · base · 2^(n-1)` between flushes (1 min, 2 min, 4 min … capped at 1 h). A remote's
//! `Retry-After` is a floor, never more than `MAX_RETRY_AFTER` (1 h): a remote cannot make us
//! wait (or overflow a clock) with a huge value. Pure functions over numbers, none of which can
//! panic whatever they are given; the clock and the sleeping live in the deliverer and the
//! flusher.

use std::time::Duration;

/// Backoff policy for one run or one flush.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { base: Duration::from_millis(500), cap: Duration::from_secs(30) }
    }
}

/// The spool's backoff is this many times the in-run base (0.5 s → 1 min).
const SPOOL_SCALE: u32 = 120;
/// Longest wait between two flush attempts of one item.
pub const SPOOL_CAP: Duration = Duration::from_secs(3600);

/// Longest wait a remote's `Retry-After` (or rate-limit reset) can impose: a longer one is read
/// as this. An alert run waits in process only while its time budget allows (else it spools
/// the item), and a spooled item is due again after at most `SPOOL_CAP`, the same hour.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// A remote's wait, bounded by `MAX_RETRY_AFTER`.
pub fn bounded_retry_after(after: Option<Duration>) -> Option<Duration> {
    after.map(|after| after.min(MAX_RETRY_AFTER))
}

impl Backoff {
    /// The in-run policy for a base delay (`[delivery] retry_base_s`).
    pub fn with_base(base: Duration) -> Backoff {
        Backoff { base, ..Backoff::default() }
    }

    /// Delay before a spooled item's next flush, after `flushes` failed flush attempts (0 when
    /// it was just spooled): `120 · base · 2^flushes`, capped at one hour, with equal jitter.
    /// A remote's `Retry-After` is a floor, the cap still applies.
    pub fn spool_delay(
        &self,
        flushes: u32,
        retry_after: Option<Duration>,
        jitter_unit: f64,
    ) -> Duration {
        let spool = Backoff { base: self.base.saturating_mul(SPOOL_SCALE), cap: SPOOL_CAP };
        spool.delay(flushes.saturating_add(1), retry_after, jitter_unit).min(SPOOL_CAP)
    }

    /// Delay before attempt `attempt + 1` (attempt counts from 1): `base * 2^(attempt-1)`,
    /// capped, with "equal jitter" (half fixed, half random) so that many actions failing at
    /// once do not retry in lockstep. A `Retry-After` is honoured as a floor.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, jitter_unit: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let raw = self.base.saturating_mul(1u32 << exponent).min(self.cap);
        let half = raw / 2;
        // `clamp` keeps a NaN, which `mul_f64` would panic on.
        let unit = if jitter_unit.is_nan() { 0.0 } else { jitter_unit.clamp(0.0, 1.0) };
        let jittered = half.saturating_add(half.mul_f64(unit));
        match bounded_retry_after(retry_after) {
            Some(after) => jittered.max(after),
            None => jittered,
        }
    }
}

/// A cheap random number in [0, 1) for jitter; quality does not matter, independence between
/// processes does (pid and clock mixed through a SplitMix64 step).
pub fn jitter_unit() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut z = (nanos as u64) ^ ((std::process::id() as u64) << 32);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_within_the_cap() {
        let backoff = Backoff { base: Duration::from_millis(100), cap: Duration::from_secs(1) };
        assert_eq!(backoff.delay(1, None, 1.0), Duration::from_millis(100));
        assert_eq!(backoff.delay(2, None, 1.0), Duration::from_millis(200));
        assert_eq!(backoff.delay(3, None, 0.0), Duration::from_millis(200));
        assert_eq!(backoff.delay(30, None, 1.0), Duration::from_secs(1));
    }

    #[test]
    fn retry_after_is_a_floor() {
        let backoff = Backoff::default();
        assert_eq!(backoff.delay(1, Some(Duration::from_secs(7)), 0.5), Duration::from_secs(7));
    }

    #[test]
    fn jitter_spreads_between_half_and_full() {
        let backoff = Backoff { base: Duration::from_millis(100), cap: Duration::from_secs(1) };
        assert_eq!(backoff.delay(2, None, 0.0), Duration::from_millis(100));
        assert_eq!(backoff.delay(2, None, 0.5), Duration::from_millis(150));
        assert_eq!(backoff.delay(2, None, 7.0), Duration::from_millis(200));
    }

    #[test]
    fn spool_delays_start_at_a_minute_and_cap_at_an_hour() {
        let backoff = Backoff::default();
        assert_eq!(backoff.spool_delay(0, None, 1.0), Duration::from_secs(60));
        assert_eq!(backoff.spool_delay(1, None, 1.0), Duration::from_secs(120));
        assert_eq!(backoff.spool_delay(3, None, 1.0), Duration::from_secs(480));
        assert_eq!(backoff.spool_delay(40, None, 1.0), SPOOL_CAP);
        assert_eq!(
            backoff.spool_delay(0, Some(Duration::from_secs(90)), 1.0),
            Duration::from_secs(90)
        );
        assert_eq!(backoff.spool_delay(0, Some(Duration::from_secs(86400)), 1.0), SPOOL_CAP);
        let fast = Backoff::with_base(Duration::from_millis(50));
        assert_eq!(fast.spool_delay(0, None, 1.0), Duration::from_secs(6));
    }

    #[test]
    fn any_input_gives_a_bounded_delay() {
        let backoff = Backoff { base: Duration::MAX, cap: Duration::MAX };
        for attempt in [0, 1, 2, 21, u32::MAX] {
            for jitter in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, 0.5] {
                for after in [None, Some(Duration::ZERO), Some(Duration::MAX)] {
                    let delay = backoff.delay(attempt, after, jitter);
                    assert!(delay <= Duration::MAX, "{attempt} {jitter} {after:?}");
                    let spool = backoff.spool_delay(attempt, after, jitter);
                    assert!(spool <= SPOOL_CAP, "{attempt} {jitter} {after:?}: {spool:?}");
                }
            }
        }
        let default = Backoff::default();
        assert_eq!(default.delay(1, Some(Duration::MAX), 0.0), MAX_RETRY_AFTER);
        assert_eq!(default.delay(1, None, f64::NAN), Duration::from_millis(250));
    }

    #[test]
    fn jitter_is_in_range() {
        for _ in 0..100 {
            let unit = jitter_unit();
            assert!((0.0..1.0).contains(&unit));
        }
    }
}
