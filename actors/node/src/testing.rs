//! Helpers for this crate's unit tests.

/// The seed of a randomised test: `VERISIM_SEED` if set, else a random one; printed so that a
/// failure can be replayed (the whole-system tests have the same helper in `tests/support`).
pub(crate) fn test_seed() -> u64 {
    use rand::Rng;
    let seed = std::env::var("VERISIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("seed {seed} (rerun with VERISIM_SEED={seed})");
    seed
}
