//! The simulator's power, proved on every run: each injected bug ([`Bug`]) is caught from a range of
//! seeds nobody chose, drawn at random on each run, and the clean core passes the same seeds.
//!
//! Each bug has a scenario where it shows most and the detection rate measured there on a fixed
//! large range (docs/simulator.md, `simulate -- --power`). Its budget is the number of seeds after
//! which a random start misses it with probability below 1/1000, at the lower 95% confidence bound
//! of that rate: `ceil(ln 1000 / -ln(1 - p))`. A test runs seeds from the start until one catches
//! the bug (usually within a few seeds), so the whole set costs little; the clean-core tests run
//! every seed of the largest budget of each scenario.
//!
//! The start is random on every run and printed; `VERISIM_SIM_START=<n>` pins it, which replays a
//! whole test exactly. Every catch prints the one-line replay command of its seed, and a failure of
//! the clean core prints its replay command as every simulator failure does.

use std::time::Instant;

use verisim_raft::sim::{self, Bug, Linearizability, Scenario, SimOptions};

/// Where each bug is hunted, and what was measured there (`simulate -- --power --seeds N --start
/// 1000000000 --scenarios S --bug B`, release build).
struct Hunt {
    bug: Bug,
    scenario: Scenario,
    /// Seeds measured and how many caught the bug.
    measured: u64,
    caught: u64,
}

const HUNTS: &[Hunt] = &[
    Hunt {
        bug: Bug::CommitPreviousTerm,
        scenario: Scenario::LeaderChurn,
        measured: 200,
        caught: 153,
    },
    Hunt {
        bug: Bug::VoteWithoutLogCheck,
        scenario: Scenario::LeaderChurn,
        measured: 200,
        caught: 130,
    },
    Hunt {
        bug: Bug::VoteNotPersisted,
        scenario: Scenario::Crashes,
        measured: 200,
        caught: 200,
    },
    Hunt {
        bug: Bug::KeepConflictingSuffix,
        scenario: Scenario::Partitions,
        measured: 200,
        caught: 168,
    },
    Hunt {
        bug: Bug::AckBeforeDurable,
        scenario: Scenario::Crashes,
        measured: 200,
        caught: 200,
    },
    Hunt {
        bug: Bug::ReadIndexWithoutQuorum,
        scenario: Scenario::Partitions,
        measured: 2000,
        caught: 134,
    },
    Hunt {
        bug: Bug::LocalReads,
        scenario: Scenario::Chaos,
        measured: 200,
        caught: 60,
    },
    Hunt {
        bug: Bug::SnapshotOverLongerLog,
        scenario: Scenario::Membership,
        measured: 200,
        caught: 24,
    },
    Hunt {
        bug: Bug::ConcurrentMembershipChanges,
        scenario: Scenario::Membership,
        measured: 200,
        caught: 46,
    },
    Hunt {
        bug: Bug::LeaderKeepsLeading,
        scenario: Scenario::Partitions,
        measured: 200,
        caught: 165,
    },
    Hunt {
        bug: Bug::CommitBeyondMatch,
        scenario: Scenario::Partitions,
        measured: 200,
        caught: 160,
    },
    Hunt {
        bug: Bug::ReadBeforeTermCommit,
        scenario: Scenario::Partitions,
        measured: 200,
        caught: 23,
    },
    Hunt {
        bug: Bug::CountStaleVotes,
        scenario: Scenario::LeaderChurn,
        measured: 200,
        caught: 67,
    },
];

/// Probability of missing a bug on a random start that the budget allows. At 1e-3 the hunts
/// together failed a CI run now and then on an unlucky start (2026-12-08: keep-conflicting-suffix
/// missed five seeds in a row); at 1e-9 the budgets are three times longer, and the longest check
/// (the clean core over the partition budgets) takes 4.5 s in a debug build.
const MISS: f64 = 1e-9;

impl Hunt {
    fn of(bug: Bug) -> &'static Hunt {
        match HUNTS.iter().find(|h| h.bug == bug) {
            Some(h) => h,
            None => panic!("no hunt for {}", bug.name()),
        }
    }

    /// The lower bound of the Wilson 95% interval of the measured rate.
    fn rate_lower_bound(&self) -> f64 {
        let n = self.measured as f64;
        let p = self.caught as f64 / n;
        let z = 1.96_f64;
        let centre = p + z * z / (2.0 * n);
        let spread = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
        (centre - spread) / (1.0 + z * z / n)
    }

    /// Seeds such that a random start misses the bug with probability below [`MISS`].
    fn budget(&self) -> u64 {
        let p = self.rate_lower_bound().clamp(1e-6, 0.999_999);
        ((1.0 / MISS).ln() / -(1.0 - p).ln()).ceil() as u64
    }

    fn options(&self, seed: u64, bug: Option<Bug>) -> SimOptions {
        SimOptions {
            scenario: self.scenario,
            bug,
            lincheck: true,
            ..SimOptions::for_seed(seed)
        }
    }
}

/// The first seed of this run: `VERISIM_SIM_START`, or random (far from any seed a person tuned).
fn start() -> u64 {
    match std::env::var("VERISIM_SIM_START") {
        Ok(v) => match v.trim().parse() {
            Ok(n) => n,
            Err(e) => panic!("VERISIM_SIM_START={v}: {e}"),
        },
        Err(_) => rand::random_range(1u64 << 32..1u64 << 62),
    }
}

fn rerun(test: &str, start: u64) -> String {
    format!("VERISIM_SIM_START={start} cargo nextest run -p verisim-raft --test bugs {test}")
}

/// Run seeds from a random start until one catches `bug`; fail if the budget runs out.
fn hunt(bug: Bug, test: &str) {
    let h = Hunt::of(bug);
    let start = start();
    let budget = h.budget();
    let began = Instant::now();
    eprintln!(
        "{}: seeds {start}..{} of {} (budget {budget} at a rate of at least {:.2}%); rerun: {}",
        bug.name(),
        start + budget,
        h.scenario.name(),
        100.0 * h.rate_lower_bound(),
        rerun(test, start)
    );
    for (n, seed) in (start..start + budget).enumerate() {
        if let Err(failure) = sim::run(&h.options(seed, Some(bug))) {
            eprintln!(
                "{}: caught after {} seeds ({:.1}s): {failure}",
                bug.name(),
                n + 1,
                began.elapsed().as_secs_f64()
            );
            return;
        }
    }
    panic!(
        "{}: not caught in seeds {start}..{} of {} ({:.1}s); rerun: {}",
        bug.name(),
        start + budget,
        h.scenario.name(),
        began.elapsed().as_secs_f64(),
        rerun(test, start)
    );
}

/// The clean core passes every seed of the largest bug budget of `scenario`, from the same start.
fn clean(scenario: Scenario, test: &str) {
    let start = start();
    let Some(budget) = HUNTS
        .iter()
        .filter(|h| h.scenario == scenario)
        .map(Hunt::budget)
        .max()
    else {
        panic!("no bug is hunted in {}", scenario.name());
    };
    let began = Instant::now();
    eprintln!(
        "clean core, {}: seeds {start}..{}; rerun: {}",
        scenario.name(),
        start + budget,
        rerun(test, start)
    );
    let mut failures = Vec::new();
    let mut undecided = Vec::new();
    for seed in start..start + budget {
        let options = SimOptions {
            scenario,
            lincheck: true,
            ..SimOptions::for_seed(seed)
        };
        match sim::run(&options) {
            Ok(report) => {
                if let Some(Linearizability::Undecided { .. }) = report.lincheck {
                    undecided.push(seed);
                }
            }
            Err(failure) => {
                eprintln!("FAIL {failure}");
                failures.push(seed);
            }
        }
    }
    eprintln!(
        "clean core, {}: {budget} seeds in {:.1}s, {} undecided",
        scenario.name(),
        began.elapsed().as_secs_f64(),
        undecided.len()
    );
    assert!(
        failures.is_empty(),
        "clean core failed seeds {failures:?} of {start}..{} (each printed its replay command)",
        start + budget
    );
    assert!(
        undecided.len() as u64 * 50 <= budget,
        "{} of {budget} histories undecided: {undecided:?}",
        undecided.len()
    );
}

#[test]
fn caught_commit_previous_term() {
    hunt(Bug::CommitPreviousTerm, "caught_commit_previous_term");
}

#[test]
fn caught_vote_without_log_check() {
    hunt(Bug::VoteWithoutLogCheck, "caught_vote_without_log_check");
}

#[test]
fn caught_vote_not_persisted() {
    hunt(Bug::VoteNotPersisted, "caught_vote_not_persisted");
}

#[test]
fn caught_keep_conflicting_suffix() {
    hunt(Bug::KeepConflictingSuffix, "caught_keep_conflicting_suffix");
}

#[test]
fn caught_ack_before_durable() {
    hunt(Bug::AckBeforeDurable, "caught_ack_before_durable");
}

#[test]
fn caught_read_index_without_quorum() {
    hunt(
        Bug::ReadIndexWithoutQuorum,
        "caught_read_index_without_quorum",
    );
}

#[test]
fn caught_local_reads() {
    hunt(Bug::LocalReads, "caught_local_reads");
}

#[test]
fn caught_snapshot_over_longer_log() {
    hunt(
        Bug::SnapshotOverLongerLog,
        "caught_snapshot_over_longer_log",
    );
}

#[test]
fn caught_concurrent_membership_changes() {
    hunt(
        Bug::ConcurrentMembershipChanges,
        "caught_concurrent_membership_changes",
    );
}

#[test]
fn caught_leader_keeps_leading() {
    hunt(Bug::LeaderKeepsLeading, "caught_leader_keeps_leading");
}

#[test]
fn caught_commit_beyond_match() {
    hunt(Bug::CommitBeyondMatch, "caught_commit_beyond_match");
}

#[test]
fn caught_read_before_term_commit() {
    hunt(Bug::ReadBeforeTermCommit, "caught_read_before_term_commit");
}

#[test]
fn caught_count_stale_votes() {
    hunt(Bug::CountStaleVotes, "caught_count_stale_votes");
}

/// The scenarios with a clean-core test below.
const CLEAN: [Scenario; 5] = [
    Scenario::LeaderChurn,
    Scenario::Partitions,
    Scenario::Crashes,
    Scenario::Membership,
    Scenario::Chaos,
];

/// Every bug has a hunt, every hunt's scenario a clean-core test, and every budget stays
/// affordable.
#[test]
fn every_bug_is_hunted_within_an_affordable_budget() {
    for h in HUNTS {
        assert!(
            CLEAN.contains(&h.scenario),
            "{}: no clean-core test for {}",
            h.bug.name(),
            h.scenario.name()
        );
    }
    for bug in Bug::ALL {
        let h = Hunt::of(bug);
        assert!(
            h.budget() <= 2_000,
            "{}: budget {} (rate at least {:.3}%)",
            bug.name(),
            h.budget(),
            100.0 * h.rate_lower_bound()
        );
    }
}

#[test]
fn clean_core_passes_the_bug_budgets_leader_churn() {
    clean(
        Scenario::LeaderChurn,
        "clean_core_passes_the_bug_budgets_leader_churn",
    );
}

#[test]
fn clean_core_passes_the_bug_budgets_partitions() {
    clean(
        Scenario::Partitions,
        "clean_core_passes_the_bug_budgets_partitions",
    );
}

#[test]
fn clean_core_passes_the_bug_budgets_crashes() {
    clean(
        Scenario::Crashes,
        "clean_core_passes_the_bug_budgets_crashes",
    );
}

#[test]
fn clean_core_passes_the_bug_budgets_membership() {
    clean(
        Scenario::Membership,
        "clean_core_passes_the_bug_budgets_membership",
    );
}

#[test]
fn clean_core_passes_the_bug_budgets_chaos() {
    clean(Scenario::Chaos, "clean_core_passes_the_bug_budgets_chaos");
}
