//! Exponential backoff: the one doubling-and-capping rule, its two jitters, and the stateful
//! redial [`Backoff`]. No randomness of its own (so it builds for wasm32 without `getrandom`):
//! callers pass a random number in.

use std::time::Duration;

/// `initial * 2^attempt`, capped at `max` (saturating: any `attempt` is fine).
#[must_use]
pub fn exponential(initial: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
    initial.saturating_mul(factor).min(max)
}

/// `base` scaled by a factor in `[0.5, 1.5)` chosen by `unit` in `[0, 1)` (±50 % jitter), capped
/// at `max`: many clients that failed together spread their retries. A `unit` out of range is
/// clamped; a non-finite one counts as 0.5 (no jitter).
#[must_use]
pub fn spread(base: Duration, max: Duration, unit: f64) -> Duration {
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.5
    };
    Duration::try_from_secs_f64(base.as_secs_f64() * (0.5 + unit))
        .unwrap_or(max)
        .min(max)
}

/// Redial delays for one peer: exponential from `min` to `max`, jittered in the upper half of
/// each step.
///
/// "Full jitter" would sometimes redial at once; a node that is down for everyone would then be
/// hammered. Drawing from the upper half of the current step spreads retries out while the delay
/// still grows.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Delays between `min` and `max` (a `max` below `min` counts as `min`).
    #[must_use]
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    /// The un-jittered ceiling of the next delay: `min * 2^attempt`, capped at `max`.
    #[must_use]
    pub fn ceiling(&self) -> Duration {
        exponential(self.min, self.max, self.attempt)
    }

    /// The delay before the next attempt; each call grows the following one. `random` is a
    /// uniformly random `u64` from the caller's generator (`rand::random()`).
    pub fn next_delay(&mut self, random: u64) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        let low = half.max(self.min.min(ceiling));
        if ceiling <= low {
            return ceiling;
        }
        let span = u64::try_from((ceiling - low).as_nanos()).unwrap_or(u64::MAX);
        // Uniform over 0..=span: a span is at most `max` in nanoseconds, so the modulo's bias is
        // negligible.
        let offset = match span.checked_add(1) {
            Some(n) => random % n,
            None => random,
        };
        low + Duration::from_nanos(offset)
    }

    /// Back to the first step, after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Failed attempts since the last reset.
    #[must_use]
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn exponential_doubles_up_to_the_cap() {
        let ms = Duration::from_millis;
        assert_eq!(exponential(ms(10), ms(300), 0), ms(10));
        assert_eq!(exponential(ms(10), ms(300), 1), ms(20));
        assert_eq!(exponential(ms(10), ms(300), 4), ms(160));
        assert_eq!(exponential(ms(10), ms(300), 5), ms(300));
        assert_eq!(exponential(ms(10), ms(300), u32::MAX), ms(300));
        assert_eq!(exponential(Duration::MAX, Duration::MAX, 40), Duration::MAX);
    }

    #[test]
    fn spread_stays_within_half_and_cap() {
        let ms = Duration::from_millis;
        assert_eq!(spread(ms(100), ms(1000), 0.0), ms(50));
        assert_eq!(spread(ms(100), ms(1000), 0.5), ms(100));
        assert_eq!(spread(ms(100), ms(120), 0.99), ms(120));
        assert_eq!(spread(ms(100), ms(1000), f64::NAN), ms(100));
        assert_eq!(spread(ms(100), ms(1000), -3.0), ms(50));
        assert_eq!(spread(Duration::MAX, Duration::MAX, 0.9), Duration::MAX);
    }

    #[test]
    fn grows_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
        let ceilings: Vec<_> = (0..6u64)
            .map(|i| {
                let c = b.ceiling();
                b.next_delay(i.wrapping_mul(0x9e37_79b9_7f4a_7c15));
                c.as_millis()
            })
            .collect();
        assert_eq!(ceilings, vec![10, 20, 40, 80, 100, 100]);
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(10));
        assert_eq!(b.attempts(), 0);
    }

    #[test]
    fn the_extremes_of_random_reach_both_ends_of_the_step() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_secs(1));
        b.next_delay(0);
        // Second step: ceiling 20 ms, drawn from [10 ms, 20 ms].
        let mut lo = b.clone();
        assert_eq!(lo.next_delay(0), Duration::from_millis(10));
        assert_eq!(b.next_delay(10_000_000), Duration::from_millis(20));
    }

    proptest! {
        #[test]
        fn prop_delay_within_bounds(random in proptest::collection::vec(any::<u64>(), 1..80), min_ms in 1u64..1000, extra in 0u64..10_000) {
            let min = Duration::from_millis(min_ms);
            let max = Duration::from_millis(min_ms + extra);
            let mut b = Backoff::new(min, max);
            for r in random {
                let ceiling = b.ceiling();
                let d = b.next_delay(r);
                prop_assert!(d >= min, "{d:?} < {min:?}");
                prop_assert!(d <= max, "{d:?} > {max:?}");
                prop_assert!(d <= ceiling && d >= ceiling / 2, "{d:?} vs {ceiling:?}");
            }
        }

        #[test]
        fn prop_spread_is_within_half_of_base(base_ms in 0u64..100_000, unit in 0.0f64..1.0) {
            let base = Duration::from_millis(base_ms);
            let d = spread(base, Duration::MAX, unit);
            prop_assert!(d >= base / 2 && d <= base * 3 / 2, "{d:?} vs {base:?}");
        }
    }
}
