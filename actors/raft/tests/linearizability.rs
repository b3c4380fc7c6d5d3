//! The simulator's client histories checked for linearizability by `verisim-lincheck` (per-key
//! Wing–Gong–Lowe search against a key-value register model). Reads go through the log or through
//! a read index; operations whose outcome the client never learned stay open.
//!
//! Every CI seed's history is checked where the seed runs, in `tests/simulation.rs`
//! (`SimOptions::lincheck`); here, the check is shown to catch stale reads.

use verisim_raft::sim::{self, Bug, Linearizability, Property, Scenario, SimOptions};

/// Reads served from any node's local state, without a read index, are caught as stale; every
/// failure is a linearizability violation (no other property notices such reads).
#[test]
fn stale_local_reads_are_caught() {
    let mut caught = Vec::new();
    for seed in 0..40 {
        let options = SimOptions {
            scenario: Scenario::Partitions,
            bug: Some(Bug::LocalReads),
            lincheck: true,
            ..SimOptions::for_seed(seed)
        };
        match sim::run(&options) {
            Ok(report) => assert!(report.lincheck.is_some()),
            Err(failure) => {
                assert_eq!(
                    failure.violation.property,
                    Property::Linearizability,
                    "{failure}"
                );
                assert!(
                    failure
                        .to_string()
                        .contains("--lincheck --scenario partitions")
                );
                assert!(failure.to_string().contains("--bug local-reads"));
                caught.push(seed);
            }
        }
    }
    assert!(!caught.is_empty(), "no seed showed a stale read");
}

/// The same seeds without the bug: every history linearizable (none undecided).
#[test]
fn the_same_seeds_without_the_bug_are_linearizable() {
    for seed in 0..40 {
        let options = SimOptions {
            scenario: Scenario::Partitions,
            lincheck: true,
            ..SimOptions::for_seed(seed)
        };
        match sim::run(&options) {
            Ok(report) => assert_eq!(
                report.lincheck,
                Some(Linearizability::Linearizable),
                "seed {seed}"
            ),
            Err(failure) => panic!("{failure}"),
        }
    }
}
