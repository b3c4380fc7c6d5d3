//! The simulator's client histories checked for linearizability by `verisim-lincheck` (per-key
//! Wing–Gong–Lowe search against a key-value register model). Reads go through the log or through
//! a read index; operations whose outcome the client never learned stay open.

use verisim_lincheck::{CheckOptions, KvModel, Verdict, check};
use verisim_raft::sim::{self, Scenario, SimOptions};

fn verdict(options: &SimOptions) -> Verdict {
    let report = match sim::run(options) {
        Ok(report) => report,
        Err(failure) => panic!("simulation failed: {failure}"),
    };
    let history = report
        .history
        .to_lincheck()
        .expect("simulated history is well-formed");
    let checked = check(&KvModel::new(), &history, &CheckOptions::default())
        .unwrap_or_else(|e| panic!("seed {}: history rejected: {e}", options.seed));
    checked.verdict
}

/// Seeds 0..160 (20 of each scenario): every history is linearizable.
#[test]
fn simulated_histories_are_linearizable() {
    let mut undecided = Vec::new();
    for seed in 0..160 {
        let options = SimOptions::for_seed(seed);
        match verdict(&options) {
            Verdict::Linearizable => {}
            Verdict::NotLinearizable(v) => {
                panic!(
                    "seed {seed}: not linearizable: {v}\n  replay: {}",
                    options.replay_command()
                )
            }
            Verdict::Unknown(_) => undecided.push(seed),
        }
    }
    assert!(
        undecided.is_empty(),
        "check budget ran out for seeds {undecided:?}"
    );
}

/// Reads served from any node's local state, without a read index, are caught as stale.
#[test]
fn stale_local_reads_are_caught() {
    let mut caught = Vec::new();
    for seed in 0..40 {
        let mut options = SimOptions::for_seed(seed);
        options.scenario = Scenario::Partitions;
        options.bug_local_reads = true;
        if verdict(&options).is_violation() {
            caught.push(seed);
        }
    }
    assert!(!caught.is_empty(), "no seed showed a stale read");
}
