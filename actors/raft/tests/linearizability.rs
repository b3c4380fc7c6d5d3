//! The simulator's client histories checked for linearizability by `verisim-lincheck` (per-key
//! Wing–Gong–Lowe search against a key-value register model). Reads go through the log or through
//! a read index; operations whose outcome the client never learned stay open.

use verisim_lincheck::{CheckOptions, KvHistory, KvInput, KvModel, KvOutput, Verdict, check};
use verisim_raft::sim::kv::{KvOp, KvResult};
use verisim_raft::sim::{self, History, Scenario, SimOptions};

fn to_lincheck(history: &History) -> KvHistory<u8, u64> {
    let mut out = KvHistory::new();
    for op in &history.ops {
        let input = match op.op {
            KvOp::Put { key, value } => KvInput::put(key, value),
            KvOp::Get { key } => KvInput::get(key),
            KvOp::Cas { key, expected, new } => KvInput::cas(key, expected, new),
        };
        let id = out.invoke(u64::from(op.client), input, op.invoked_at);
        if let Some((result, at)) = op.returned {
            let output = match result {
                KvResult::Put => KvOutput::Ok,
                KvResult::Get(v) => KvOutput::Value(v),
                KvResult::Cas(swapped) => KvOutput::Swapped(swapped),
            };
            out.complete(id, output, at)
                .expect("simulated history is well-formed");
        }
    }
    out
}

fn verdict(options: &SimOptions) -> Verdict {
    let report = match sim::run(options) {
        Ok(report) => report,
        Err(failure) => panic!("simulation failed: {failure}"),
    };
    let history = to_lincheck(&report.history);
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
