//! Exponential redial backoff with jitter.
//!
//! "Full jitter" would sometimes redial at once; a node that is down for everyone would then be
//! hammered. We draw uniformly from the upper half of the current step instead, so retries
//! spread out but the delay still grows.

use std::time::Duration;

use rand::Rng;

/// Redial delays for one peer.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    /// Delays between `min` and `max` (`min <= max`).
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            attempt: 0,
        }
    }

    /// The un-jittered ceiling of the next delay: `min * 2^attempt`, capped at `max`.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.attempt.min(31)).unwrap_or(u32::MAX);
        self.min.saturating_mul(factor).min(self.max)
    }

    /// The delay before the next attempt; each call grows the following one.
    pub fn next_delay<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        let low = half.max(self.min.min(ceiling));
        if ceiling <= low {
            return ceiling;
        }
        let span = (ceiling - low).as_nanos() as u64;
        low + Duration::from_nanos(rng.random_range(0..=span))
    }

    /// Back to the first step, after a success.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Failed attempts since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(100));
        let ceilings: Vec<_> = (0..6)
            .map(|_| {
                let c = b.ceiling();
                b.next_delay(&mut rng);
                c.as_millis()
            })
            .collect();
        assert_eq!(ceilings, vec![10, 20, 40, 80, 100, 100]);
        b.reset();
        assert_eq!(b.ceiling(), Duration::from_millis(10));
        assert_eq!(b.attempts(), 0);
    }

    proptest! {
        #[test]
        fn prop_delay_within_bounds(seed in any::<u64>(), min_ms in 1u64..1000, extra in 0u64..10_000, steps in 1usize..80) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let min = Duration::from_millis(min_ms);
            let max = Duration::from_millis(min_ms + extra);
            let mut b = Backoff::new(min, max);
            for _ in 0..steps {
                let ceiling = b.ceiling();
                let d = b.next_delay(&mut rng);
                prop_assert!(d >= min, "seed {seed}: {d:?} < {min:?}");
                prop_assert!(d <= max, "seed {seed}: {d:?} > {max:?}");
                prop_assert!(d <= ceiling && d >= ceiling / 2, "seed {seed}: {d:?} vs {ceiling:?}");
            }
        }
    }
}
