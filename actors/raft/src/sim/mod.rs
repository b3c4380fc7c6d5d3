//! A deterministic simulator for the Raft core: N nodes with simulated disks, a network that drops,
//! delays, duplicates and reorders, partitions, crashes that lose what was not yet persisted,
//! membership changes, snapshot pressure, and clients of a key-value register that record a history.
//! Everything is driven by one seeded RNG and virtual time, so a seed replays exactly. Every safety
//! property is checked after every step ([`check::Checker`]).
//!
//! Run many seeds with `cargo run -p verisim-raft --release --example simulate -- --seeds N --start S`;
//! replay one with `cargo run -p verisim-raft --example simulate -- --seed S` (printed by every
//! failure: the dev profile, whose debug assertions and overflow checks the tests also run with).
//! A panic anywhere in a run (a debug assertion of the core, an overflow) is caught and reported
//! as a failure of that seed ([`Property::Panic`]), with the same replay line.

pub mod check;
mod cluster;
pub mod history;
pub mod kv;

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use verisim_lincheck::{CheckOptions, KvModel, Verdict};

pub use crate::Bug;
pub use check::{Property, Violation};
pub use cluster::Cluster;
pub use history::{ClientOp, History};

/// A family of fault schedules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// A reliable network, no faults: the baseline.
    Calm,
    /// Drops, duplicates and long, reordering delays.
    Lossy,
    /// Symmetric and asymmetric partitions, isolated leaders, leadership transfers.
    Partitions,
    /// Crashes (losing unpersisted state) and restarts from disk, with snapshots.
    Crashes,
    /// Learners added, promoted and removed while crashes happen; new nodes join from snapshots.
    Membership,
    /// Snapshots every 32 entries keeping 8, with a node cut off long enough to need one.
    SnapshotPressure,
    /// All of the above at once.
    Chaos,
    /// Leaders crash or are cut off every few dozen milliseconds on a lossy network with one entry
    /// per append, without pre-vote or leases: the shape of the paper's Figure 8, where commit
    /// rules matter most.
    LeaderChurn,
}

impl Scenario {
    pub const ALL: [Scenario; 8] = [
        Scenario::Calm,
        Scenario::Lossy,
        Scenario::Partitions,
        Scenario::Crashes,
        Scenario::Membership,
        Scenario::SnapshotPressure,
        Scenario::Chaos,
        Scenario::LeaderChurn,
    ];

    /// The scenario a seed runs (seeds cycle through all of them).
    pub fn for_seed(seed: u64) -> Scenario {
        Scenario::ALL[(seed % Scenario::ALL.len() as u64) as usize]
    }

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Calm => "calm",
            Scenario::Lossy => "lossy",
            Scenario::Partitions => "partitions",
            Scenario::Crashes => "crashes",
            Scenario::Membership => "membership",
            Scenario::SnapshotPressure => "snapshot-pressure",
            Scenario::Chaos => "chaos",
            Scenario::LeaderChurn => "leader-churn",
        }
    }

    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    pub(crate) fn partitions(self) -> bool {
        matches!(
            self,
            Scenario::Partitions
                | Scenario::SnapshotPressure
                | Scenario::Chaos
                | Scenario::LeaderChurn
        )
    }

    pub(crate) fn crashes(self) -> bool {
        matches!(
            self,
            Scenario::Crashes
                | Scenario::Membership
                | Scenario::Chaos
                | Scenario::SnapshotPressure
                | Scenario::LeaderChurn
        )
    }

    pub(crate) fn membership(self) -> bool {
        matches!(self, Scenario::Membership | Scenario::Chaos)
    }

    pub(crate) fn snapshots(self) -> bool {
        matches!(
            self,
            Scenario::Crashes | Scenario::Membership | Scenario::SnapshotPressure | Scenario::Chaos
        )
    }

    /// The faults every batch of this scenario's seeds must show, in aggregate (a single seed may
    /// miss some): the check that a scenario really exercises what its name says. `Calm` must show
    /// none at all.
    pub fn expected_faults(self) -> &'static [Fault] {
        use Fault::*;
        match self {
            Scenario::Calm => &[],
            Scenario::Lossy => &[Drop, Duplicate, Replay],
            Scenario::Partitions => &[Drop, Duplicate, Partition, Blocked, Transfer, SlowClock],
            Scenario::Crashes => &[Drop, Crash, Restart, SnapshotTaken, SlowClock],
            Scenario::Membership => &[
                Crash,
                Restart,
                MembershipChange,
                SnapshotTaken,
                SnapshotInstalled,
            ],
            Scenario::SnapshotPressure => &[
                Drop,
                Partition,
                Blocked,
                Crash,
                SnapshotTaken,
                SnapshotInstalled,
            ],
            Scenario::Chaos => &Fault::ALL,
            Scenario::LeaderChurn => &[Drop, Crash, Restart, Partition, Replay],
        }
    }

    /// (drop probability, duplicate probability, max delay in ms)
    pub(crate) fn network(self) -> (f64, f64, u64) {
        match self {
            Scenario::Calm => (0.0, 0.0, 5),
            Scenario::Lossy => (0.1, 0.05, 40),
            Scenario::Partitions | Scenario::Crashes | Scenario::Membership => (0.02, 0.02, 15),
            Scenario::SnapshotPressure => (0.05, 0.02, 20),
            Scenario::Chaos => (0.05, 0.03, 30),
            Scenario::LeaderChurn => (0.25, 0.02, 10),
        }
    }
}

/// A kind of fault or disturbance the simulator injects, counted in [`FaultCounts`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fault {
    /// A message lost by the network.
    Drop,
    /// A message delivered twice.
    Duplicate,
    /// A partition put in place: a symmetric split, one-way link failures, or a leader that can
    /// send but not hear.
    Partition,
    /// A message lost to a partition.
    Blocked,
    /// A node crashed (losing what was not yet on its disk).
    Crash,
    /// A node restarted from its disk.
    Restart,
    /// A membership change accepted by a leader.
    MembershipChange,
    /// A leadership transfer started.
    Transfer,
    /// A snapshot taken by a node's application.
    SnapshotTaken,
    /// A snapshot installed from a leader's chunks.
    SnapshotInstalled,
    /// A link re-delivered, in order, the messages it carried last (a replay of old traffic).
    Replay,
    /// A node's timer ran slow for a while (a starved timer task, a paused VM, a clock running
    /// slow): its election and check-quorum timeouts, counted in ticks, stretched.
    SlowClock,
}

impl Fault {
    pub const ALL: [Fault; 12] = [
        Fault::Drop,
        Fault::Duplicate,
        Fault::Partition,
        Fault::Blocked,
        Fault::Crash,
        Fault::Restart,
        Fault::MembershipChange,
        Fault::Transfer,
        Fault::SnapshotTaken,
        Fault::SnapshotInstalled,
        Fault::Replay,
        Fault::SlowClock,
    ];
}

/// How many of each [`Fault`] a run (or a batch of runs) saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub drops: u64,
    pub duplicates: u64,
    pub partitions: u64,
    pub blocked: u64,
    pub crashes: u64,
    pub restarts: u64,
    pub membership_changes: u64,
    pub transfers: u64,
    pub snapshots_taken: u64,
    pub snapshots_installed: u64,
    pub replays: u64,
    pub slow_clocks: u64,
}

impl FaultCounts {
    pub fn get(&self, fault: Fault) -> u64 {
        match fault {
            Fault::Drop => self.drops,
            Fault::Duplicate => self.duplicates,
            Fault::Partition => self.partitions,
            Fault::Blocked => self.blocked,
            Fault::Crash => self.crashes,
            Fault::Restart => self.restarts,
            Fault::MembershipChange => self.membership_changes,
            Fault::Transfer => self.transfers,
            Fault::SnapshotTaken => self.snapshots_taken,
            Fault::SnapshotInstalled => self.snapshots_installed,
            Fault::Replay => self.replays,
            Fault::SlowClock => self.slow_clocks,
        }
    }

    /// Add another run's counts.
    pub fn add(&mut self, other: &FaultCounts) {
        self.drops += other.drops;
        self.duplicates += other.duplicates;
        self.partitions += other.partitions;
        self.blocked += other.blocked;
        self.crashes += other.crashes;
        self.restarts += other.restarts;
        self.membership_changes += other.membership_changes;
        self.transfers += other.transfers;
        self.snapshots_taken += other.snapshots_taken;
        self.snapshots_installed += other.snapshots_installed;
        self.replays += other.replays;
        self.slow_clocks += other.slow_clocks;
    }

    /// The expected faults of `scenario` these counts lack (for `Calm`: every fault seen at all).
    pub fn missing(&self, scenario: Scenario) -> Vec<Fault> {
        if scenario == Scenario::Calm {
            return Fault::ALL
                .into_iter()
                .filter(|&f| self.get(f) > 0)
                .collect();
        }
        scenario
            .expected_faults()
            .iter()
            .copied()
            .filter(|&f| self.get(f) == 0)
            .collect()
    }
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} dropped, {} duplicated, {} partitions ({} messages blocked), {} crashes, {} restarts, \
             {} membership changes, {} transfers, {} snapshots taken, {} installed, {} replays, \
             {} slow clocks",
            self.drops,
            self.duplicates,
            self.partitions,
            self.blocked,
            self.crashes,
            self.restarts,
            self.membership_changes,
            self.transfers,
            self.snapshots_taken,
            self.snapshots_installed,
            self.replays,
            self.slow_clocks
        )
    }
}

/// The step budget of the linearizability check of a run's history ([`SimOptions::lincheck`]):
/// deterministic, so a replay reaches the same verdict. Seeds past it count as undecided.
pub const LINCHECK_MAX_STEPS: u64 = 2_000_000;

/// One simulated run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimOptions {
    pub seed: u64,
    pub scenario: Scenario,
    pub nodes: usize,
    pub clients: u32,
    /// Virtual milliseconds of faults, then of healed operation (liveness is required within it),
    /// then of quiet (no client requests) before the final convergence check.
    pub fault_ms: u64,
    pub heal_ms: u64,
    pub quiesce_ms: u64,
    /// The injected bug the run has (see [`Bug`]): failures are then expected, and how often they
    /// come is the simulator's power (docs/simulator.md).
    pub bug: Option<Bug>,
    /// Also check the client history for linearizability with `verisim-lincheck` (a budget of
    /// [`LINCHECK_MAX_STEPS`] model steps): a violation fails the run
    /// ([`Property::Linearizability`]); a check that runs out of budget leaves it undecided
    /// ([`SimReport::lincheck`]).
    pub lincheck: bool,
    /// Test only: panic at this virtual time, to show that a panic in a run is reported as that
    /// seed's failure with its replay command.
    #[doc(hidden)]
    pub panic_at_ms: Option<u64>,
}

impl SimOptions {
    /// The options a seed stands for: its scenario and a cluster of 3 or 5 voters.
    pub fn for_seed(seed: u64) -> SimOptions {
        let scenario = Scenario::for_seed(seed);
        let nodes = if (seed / Scenario::ALL.len() as u64).is_multiple_of(2) {
            3
        } else {
            5
        };
        SimOptions {
            seed,
            scenario,
            nodes,
            clients: 3,
            fault_ms: 3_000,
            heal_ms: 3_000,
            quiesce_ms: 1_500,
            bug: None,
            lincheck: false,
            panic_at_ms: None,
        }
    }

    /// The command that replays exactly this run, in the dev profile: the debug assertions and
    /// overflow checks the tests run with are on, so a failure found by a release batch (where
    /// they are off) replays with every check, and a panic of a test replays as the same panic.
    pub fn replay_command(&self) -> String {
        let mut cmd = format!(
            "cargo run -p verisim-raft --example simulate -- --seed {}",
            self.seed
        );
        if self.lincheck {
            cmd.push_str(" --lincheck");
        }
        let default = SimOptions {
            lincheck: self.lincheck,
            ..SimOptions::for_seed(self.seed)
        };
        if *self != default {
            cmd.push_str(&format!(
                " --scenario {} --nodes {} --clients {} --fault-ms {} --heal-ms {} --quiesce-ms {}",
                self.scenario.name(),
                self.nodes,
                self.clients,
                self.fault_ms,
                self.heal_ms,
                self.quiesce_ms
            ));
            if let Some(bug) = self.bug {
                cmd.push_str(&format!(" --bug {}", bug.name()));
            }
            if let Some(t) = self.panic_at_ms {
                cmd.push_str(&format!(" --panic-at-ms {t}"));
            }
        }
        cmd
    }
}

/// What a passing run did.
#[derive(Clone, Debug)]
pub struct SimReport {
    pub seed: u64,
    pub scenario: Scenario,
    pub history: History,
    pub committed_entries: usize,
    /// The highest term reached (an upper bound on elections won).
    pub leaders_elected: usize,
    pub messages_sent: u64,
    pub faults: FaultCounts,
    pub events: u64,
    /// With [`SimOptions::lincheck`]: the history's verdict (a violation fails the run instead).
    pub lincheck: Option<Linearizability>,
}

/// The verdict of a passing run's linearizability check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Linearizability {
    Linearizable,
    /// The step budget ran out on this partition (key) before a verdict.
    Undecided {
        partition: String,
    },
}

impl SimReport {
    /// One line for logs: what the run exercised.
    pub fn summary(&self) -> String {
        let lincheck = match &self.lincheck {
            None => String::new(),
            Some(Linearizability::Linearizable) => ", linearizable".into(),
            Some(Linearizability::Undecided { partition }) => {
                format!(", linearizability undecided (budget ran out on {partition})")
            }
        };
        format!(
            "seed {} ({}): {} events, {} messages, {} entries committed, highest term {}, {}, \
             {} client ops ({} completed){lincheck}",
            self.seed,
            self.scenario.name(),
            self.events,
            self.messages_sent,
            self.committed_entries,
            self.leaders_elected,
            self.faults,
            self.history.ops.len(),
            self.history.completed()
        )
    }
}

/// A run that broke a property: the seed, what broke, and how to replay it.
#[derive(Clone, Debug)]
pub struct SimFailure {
    pub options: SimOptions,
    pub violation: Violation,
}

impl fmt::Display for SimFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "seed {} ({}, {} nodes): {}\n  replay: {}",
            self.options.seed,
            self.options.scenario.name(),
            self.options.nodes,
            self.violation,
            self.options.replay_command()
        )
    }
}

impl std::error::Error for SimFailure {}

/// Run one simulation to the end, checking every property on the way (and the history's
/// linearizability with [`SimOptions::lincheck`]). Never panics: a panic in the run (a debug
/// assertion of the core, an arithmetic overflow, a bug of the simulator or the checker) is caught
/// and returned as a failure of this seed ([`Property::Panic`]), so a batch goes on and every
/// failure prints its seed and replay command.
pub fn run(options: &SimOptions) -> Result<SimReport, SimFailure> {
    let fail = |violation| SimFailure {
        options: options.clone(),
        violation,
    };
    let mut cluster: Option<Cluster> = None;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let cluster = cluster.insert(Cluster::new(options.clone()));
        let mut report = cluster.run()?;
        if options.lincheck {
            report.lincheck =
                Some(
                    check_linearizable(&report.history).map_err(|detail| Violation {
                        property: Property::Linearizability,
                        time: cluster.now(),
                        detail,
                    })?,
                );
        }
        Ok(report)
    }));
    match outcome {
        Ok(result) => result.map_err(fail),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            Err(fail(Violation {
                property: Property::Panic,
                time: cluster.as_ref().map_or(0, Cluster::now),
                detail: format!("panicked: {message}"),
            }))
        }
    }
}

/// Check a client history with `verisim-lincheck` against the key-value register model, with a
/// budget of [`LINCHECK_MAX_STEPS`]: `Err` with the explanation if it is not linearizable.
pub fn check_linearizable(history: &History) -> Result<Linearizability, String> {
    let out = history
        .to_lincheck()
        .map_err(|e| format!("malformed history: {e}"))?;
    let options = CheckOptions::default().with_max_steps(Some(LINCHECK_MAX_STEPS));
    let report = verisim_lincheck::check(&KvModel::new(), &out, &options)
        .map_err(|e| format!("history refused by the checker: {e}"))?;
    match report.verdict {
        Verdict::Linearizable => Ok(Linearizability::Linearizable),
        Verdict::NotLinearizable(v) => Err(format!("not linearizable: {v}")),
        Verdict::Unknown(incomplete) => Ok(Linearizability::Undecided {
            partition: incomplete.partition,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_command_uses_the_dev_profile_and_names_what_differs_from_the_seed() {
        let plain = SimOptions::for_seed(42);
        assert_eq!(
            plain.replay_command(),
            "cargo run -p verisim-raft --example simulate -- --seed 42"
        );
        let checked = SimOptions {
            lincheck: true,
            ..SimOptions::for_seed(42)
        };
        assert_eq!(
            checked.replay_command(),
            "cargo run -p verisim-raft --example simulate -- --seed 42 --lincheck"
        );
        let bug = SimOptions {
            bug: Some(Bug::CommitPreviousTerm),
            ..SimOptions::for_seed(42)
        };
        assert!(bug.replay_command().ends_with("--bug commit-previous-term"));
        assert!(
            bug.replay_command()
                .contains("--scenario partitions --nodes 5")
        );
    }

    #[test]
    fn missing_faults_are_the_expected_ones_not_seen_and_calm_expects_none() {
        let mut counts = FaultCounts {
            drops: 3,
            ..FaultCounts::default()
        };
        assert_eq!(
            counts.missing(Scenario::Lossy),
            vec![Fault::Duplicate, Fault::Replay]
        );
        assert_eq!(counts.missing(Scenario::Calm), vec![Fault::Drop]);
        counts.add(&FaultCounts {
            duplicates: 1,
            replays: 1,
            ..FaultCounts::default()
        });
        assert!(counts.missing(Scenario::Lossy).is_empty());
        assert_eq!(
            FaultCounts::default().missing(Scenario::Chaos),
            Fault::ALL.to_vec()
        );
        assert!(FaultCounts::default().missing(Scenario::Calm).is_empty());
        for scenario in Scenario::ALL {
            for &fault in scenario.expected_faults() {
                let mut one = FaultCounts::default();
                // Every fault kind is counted in its own field.
                match fault {
                    Fault::Drop => one.drops = 1,
                    Fault::Duplicate => one.duplicates = 1,
                    Fault::Partition => one.partitions = 1,
                    Fault::Blocked => one.blocked = 1,
                    Fault::Crash => one.crashes = 1,
                    Fault::Restart => one.restarts = 1,
                    Fault::MembershipChange => one.membership_changes = 1,
                    Fault::Transfer => one.transfers = 1,
                    Fault::SnapshotTaken => one.snapshots_taken = 1,
                    Fault::SnapshotInstalled => one.snapshots_installed = 1,
                    Fault::Replay => one.replays = 1,
                    Fault::SlowClock => one.slow_clocks = 1,
                }
                assert_eq!(one.get(fault), 1);
                assert!(!one.missing(scenario).contains(&fault));
            }
        }
    }
}
