//! Measures the checker on generated key-value histories.
//!
//! `cargo run -p verisim-lincheck --example bench [-- <seeds> [<scenario filter>]]` (add
//! `--release` for optimised numbers; the test profile is opt-level 1). Each scenario is checked
//! for `seeds` seeds (5 by default); the table shows the largest step count and the median and
//! largest time per history. `BENCH_VERBOSE=1` prints each seed, and the steps minimising took.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::{Mutation, Shape, linearizable, mutate};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use verisim_lincheck::{CheckOptions, KvModel, check};

struct Scenario {
    name: &'static str,
    shape: Shape,
    mutation: Option<Mutation>,
}

fn main() {
    let seeds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let base = Shape {
        clients: 5,
        keys: 20,
        ops: 3_000,
        spread: 4,
        unknown_percent: 1,
        failed_percent: 1,
    };
    let scenarios = [
        Scenario {
            name: "3000 ops, 20 keys, 5 clients",
            shape: base,
            mutation: None,
        },
        Scenario {
            name: "3000 ops, 20 keys, 16 clients",
            shape: Shape {
                clients: 16,
                spread: 12,
                ..base
            },
            mutation: None,
        },
        Scenario {
            name: "3000 ops, 1 key, 5 clients",
            shape: Shape { keys: 1, ..base },
            mutation: None,
        },
        Scenario {
            name: "3000 ops, 1 key, 8 clients, 5% unknown",
            shape: Shape {
                keys: 1,
                clients: 8,
                spread: 6,
                unknown_percent: 5,
                ..base
            },
            mutation: None,
        },
        Scenario {
            name: "10000 ops, 50 keys, 8 clients",
            shape: Shape {
                ops: 10_000,
                keys: 50,
                clients: 8,
                spread: 6,
                ..base
            },
            mutation: None,
        },
        Scenario {
            name: "3000 ops, 20 keys, 5 clients, one stale read",
            shape: base,
            mutation: Some(Mutation::Stale),
        },
        Scenario {
            name: "3000 ops, 1 key, 5 clients, one stale read",
            shape: Shape { keys: 1, ..base },
            mutation: Some(Mutation::Stale),
        },
        Scenario {
            name: "same, no unknown outcome",
            shape: Shape {
                keys: 1,
                unknown_percent: 0,
                ..base
            },
            mutation: Some(Mutation::Stale),
        },
    ];
    println!(
        "{:<48} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "scenario", "verdict", "search", "+minimise", "median", "max"
    );
    println!(
        "{:<48} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "", "", "steps", "steps", "time", "time"
    );
    let filter = std::env::args().nth(2).unwrap_or_default();
    for scenario in scenarios.iter().filter(|s| s.name.contains(&filter)) {
        let mut times: Vec<Duration> = Vec::new();
        let (mut search_steps, mut steps) = (0, 0);
        let mut verdicts = Vec::new();
        for seed in 0..seeds {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut history = linearizable(&mut rng, scenario.shape);
            if let Some(mutation) = scenario.mutation
                && let Some((bad, _)) = mutate(&mut rng, &history, mutation)
            {
                history = bad;
            }
            let options = CheckOptions::default();
            let (report, plain) = match (
                check(&KvModel::new(), &history, &options),
                check(&KvModel::new(), &history, &options.with_minimize(false)),
            ) {
                (Ok(report), Ok(plain)) => (report, plain),
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("seed {seed}: {e}");
                    std::process::exit(1);
                }
            };
            if std::env::var("BENCH_VERBOSE").is_ok() {
                eprintln!(
                    "  seed {seed}: {} steps ({} without minimising), {:.2?}, largest partition {}",
                    report.stats.steps,
                    plain.stats.steps,
                    report.stats.elapsed,
                    report.stats.largest_partition
                );
            }
            times.push(report.stats.elapsed);
            steps = steps.max(report.stats.steps);
            search_steps = search_steps.max(plain.stats.steps);
            verdicts.push(match report.verdict {
                v if v.is_linearizable() => "ok",
                v if v.is_violation() => "violation",
                _ => "unknown",
            });
        }
        times.sort();
        verdicts.dedup();
        println!(
            "{:<48} {:>9} {:>9} {:>9} {:>10.2?} {:>10.2?}",
            scenario.name,
            verdicts.join("/"),
            search_steps,
            steps,
            times[times.len() / 2],
            times[times.len() - 1],
        );
    }
}
