//! Seeded randomness: every random choice of the kit comes from a seed that is printed, so a
//! failing run can be replayed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The environment variable the kit reads a seed from when none is given.
pub const SEED_VAR: &str = "FAULTKIT_SEED";

/// The seed in environment variable `var` (a `u64`), or a fresh random one; printed to stderr
/// with how to replay it (`rerun with VAR=seed`). Tests print it before they start, so it is in
/// the output of a failed test.
pub fn seed_from_env(var: &str) -> u64 {
    let seed = std::env::var(var)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("seed {seed} (rerun with {var}={seed})");
    seed
}

/// A deterministic generator for `seed`.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_choices() {
        let a: Vec<u32> = (0..8)
            .map(|_| 0)
            .scan(rng(7), |r, _| Some(r.random()))
            .collect();
        let b: Vec<u32> = (0..8)
            .map(|_| 0)
            .scan(rng(7), |r, _| Some(r.random()))
            .collect();
        assert_eq!(a, b);
    }
}
