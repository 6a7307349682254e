//! Retry timing: exponential backoff with jitter, capped, honouring the remote's Retry-After.
//!
//! Pure functions over numbers; the clock and the sleeping live in the deliverer.

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

impl Backoff {
    /// Delay before attempt `attempt + 1` (attempt counts from 1): `base * 2^(attempt-1)`,
    /// capped, with "equal jitter" (half fixed, half random) so that many actions failing at
    /// once do not retry in lockstep. A `Retry-After` is honoured as a floor.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, jitter_unit: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let raw = self.base.saturating_mul(1u32 << exponent).min(self.cap);
        let half = raw / 2;
        let jittered = half + half.mul_f64(jitter_unit.clamp(0.0, 1.0));
        match retry_after {
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
    fn jitter_is_in_range() {
        for _ in 0..100 {
            let unit = jitter_unit();
            assert!((0.0..1.0).contains(&unit));
        }
    }
}
