//! A deterministic simulator for the Raft core: N nodes with simulated disks, a network that drops,
//! delays, duplicates and reorders, partitions, crashes that lose what was not yet persisted,
//! membership changes, snapshot pressure, and clients of a key-value register that record a history.
//! Everything is driven by one seeded RNG and virtual time, so a seed replays exactly. Every safety
//! property is checked after every step ([`check::Checker`]).
//!
//! Run many seeds with `cargo run -p verisim-raft --release --example simulate -- --seeds N --start S`;
//! replay one with `-- --seed S` (printed by every failure).

pub mod check;
mod cluster;
pub mod history;
pub mod kv;

use std::fmt;

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
    /// Leaders crash every few dozen milliseconds on a lossy network with one entry per append:
    /// the shape of the paper's Figure 8, where commit rules matter most.
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
            Scenario::Partitions | Scenario::SnapshotPressure | Scenario::Chaos
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
    /// Test only: run the nodes with the "commit earlier-term entries by counting" bug.
    #[doc(hidden)]
    pub bug_commit_previous_term: bool,
    /// Test only: serve reads from the local state machine of whichever node a client reaches,
    /// without a read index (stale reads, for showing the linearizability check catches them).
    #[doc(hidden)]
    pub bug_local_reads: bool,
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
            bug_commit_previous_term: false,
            bug_local_reads: false,
        }
    }

    /// The command that replays exactly this run.
    pub fn replay_command(&self) -> String {
        let mut cmd = format!(
            "cargo run -p verisim-raft --release --example simulate -- --seed {}",
            self.seed
        );
        if *self != SimOptions::for_seed(self.seed) {
            cmd.push_str(&format!(
                " --scenario {} --nodes {} --clients {} --fault-ms {} --heal-ms {} --quiesce-ms {}",
                self.scenario.name(),
                self.nodes,
                self.clients,
                self.fault_ms,
                self.heal_ms,
                self.quiesce_ms
            ));
            if self.bug_commit_previous_term {
                cmd.push_str(" --bug-commit-previous-term");
            }
            if self.bug_local_reads {
                cmd.push_str(" --bug-local-reads");
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
    pub snapshots_installed: u64,
    pub messages_sent: u64,
    pub crashes: u64,
    pub membership_changes: u64,
    pub events: u64,
}

impl SimReport {
    /// One line for logs: what the run exercised.
    pub fn summary(&self) -> String {
        format!(
            "seed {} ({}): {} events, {} messages, {} entries committed, highest term {}, {} crashes, \
             {} membership changes, {} snapshots installed, {} client ops ({} completed)",
            self.seed,
            self.scenario.name(),
            self.events,
            self.messages_sent,
            self.committed_entries,
            self.leaders_elected,
            self.crashes,
            self.membership_changes,
            self.snapshots_installed,
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

/// Run one simulation to the end, checking every property on the way.
pub fn run(options: &SimOptions) -> Result<SimReport, SimFailure> {
    let mut cluster = Cluster::new(options.clone());
    cluster.run().map_err(|violation| SimFailure {
        options: options.clone(),
        violation,
    })
}
