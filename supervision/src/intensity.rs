//! Restart bookkeeping whose cost does not depend on the restart history.
//!
//! OTP keeps the list of restart instants inside the period and walks it on every restart, so a
//! supervisor with a large intensity slows down as restarts pile up. We keep only the last `R`
//! instants in a ring: more than `R` restarts lie within the period exactly when the oldest of
//! the last `R` (before the new one) is within the period. One comparison, one store.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The last `max_restarts` restart instants, oldest first from `next`. There is no reset: a
/// supervisor restarted by its parent or an operator is a new actor with a new, empty ring.
#[derive(Clone, Debug)]
pub struct RestartIntensity {
    max_restarts: u32,
    period: Duration,
    // Grows up to `max_restarts` and then wraps, so memory is min(R, restarts so far).
    ring: Vec<Instant>,
    next: usize,
}

impl RestartIntensity {
    /// At most `max_restarts` restarts within any `period`.
    pub fn new(max_restarts: u32, period: Duration) -> Self {
        Self {
            max_restarts,
            period,
            ring: Vec::new(),
            next: 0,
        }
    }

    /// Record a restart at `now` (non-decreasing between calls). Returns `false` when this
    /// restart makes more than `max_restarts` within the period: the supervisor must give up.
    pub fn record(&mut self, now: Instant) -> bool {
        let cap = self.max_restarts as usize;
        if cap == 0 {
            return false;
        }
        if self.ring.len() < cap {
            self.ring.push(now);
            return true;
        }
        let oldest = self.ring[self.next];
        let exceeded = now.saturating_duration_since(oldest) <= self.period;
        self.ring[self.next] = now;
        self.next = (self.next + 1) % cap;
        !exceeded
    }

    /// The configured maximum number of restarts.
    pub fn max_restarts(&self) -> u32 {
        self.max_restarts
    }

    /// The configured period.
    pub fn period(&self) -> Duration {
        self.period
    }
}

/// Optional exponential delay before a restart: `initial * 2^n`, capped at `max`, where `n`
/// counts the child's consecutive restarts. The streak resets once an incarnation has run for
/// at least `reset_after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backoff {
    /// Delay before the first restart of a streak.
    pub initial: Duration,
    /// Upper bound of the delay.
    pub max: Duration,
    /// An incarnation that lived this long ends the streak.
    pub reset_after: Duration,
}

impl Backoff {
    /// The delay before restart number `streak` (0-based) of a streak.
    pub fn delay(&self, streak: u32) -> Duration {
        let factor = 1u32.checked_shl(streak.min(31)).unwrap_or(u32::MAX);
        self.initial.saturating_mul(factor).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// OTP 25's `add_restart/3`: keep the instants within the period, add now, compare the count.
    fn otp_add_restart(list: &mut Vec<Instant>, now: Instant, max: u32, period: Duration) -> bool {
        list.retain(|r| now.saturating_duration_since(*r) <= period);
        list.push(now);
        list.len() <= max as usize
    }

    #[test]
    fn zero_intensity_gives_up_at_once() {
        let mut r = RestartIntensity::new(0, Duration::from_secs(5));
        assert!(!r.record(Instant::now()));
    }

    #[test]
    fn old_restarts_fall_out_of_the_window() {
        let t0 = Instant::now();
        let p = Duration::from_secs(5);
        let mut r = RestartIntensity::new(2, p);
        assert!(r.record(t0));
        assert!(r.record(t0 + Duration::from_secs(1)));
        // A third within 5 s of the first: too many.
        assert!(!r.record(t0 + Duration::from_secs(5)));
        let mut r = RestartIntensity::new(2, p);
        assert!(r.record(t0));
        assert!(r.record(t0 + Duration::from_secs(1)));
        assert!(r.record(t0 + Duration::from_secs(6)));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(300),
            reset_after: Duration::from_secs(1),
        };
        assert_eq!(b.delay(0), Duration::from_millis(10));
        assert_eq!(b.delay(1), Duration::from_millis(20));
        assert_eq!(b.delay(4), Duration::from_millis(160));
        assert_eq!(b.delay(5), Duration::from_millis(300));
        assert_eq!(b.delay(400), Duration::from_millis(300));
    }

    proptest! {
        /// The ring decides exactly like OTP's list, restart after restart, until OTP gives up.
        #[test]
        fn ring_matches_otp_list(
            max in 0u32..6,
            period_ms in 1u64..50,
            gaps in proptest::collection::vec(0u64..30, 1..200),
        ) {
            let t0 = Instant::now();
            let period = Duration::from_millis(period_ms);
            let mut ring = RestartIntensity::new(max, period);
            let mut list = Vec::new();
            let mut now = t0;
            for gap in gaps {
                now += Duration::from_millis(gap);
                let otp = otp_add_restart(&mut list, now, max, period);
                prop_assert_eq!(ring.record(now), otp);
                if !otp {
                    break;
                }
            }
        }
    }
}
