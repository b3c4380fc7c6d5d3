//! Injected bugs: real mistakes Raft implementations have made, each behind a switch that only the
//! simulator's builds can turn on, to measure how often the simulator's checks catch it (see
//! docs/simulator.md).
//!
//! Only with the crate's `sim` feature (enabled by its own tests and examples, never by a node) does
//! [`crate::Config`] have its `bug` field, so a node build cannot switch one on: there, every
//! `Raft::bug` test is a constant `false` the compiler removes.

/// One injected mistake. At most one runs at a time.
#[cfg_attr(not(feature = "sim"), allow(dead_code))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bug {
    /// A leader commits an entry of an earlier term once a majority holds it, by counting replicas
    /// (Raft §5.4.2, Figure 8).
    CommitPreviousTerm,
    /// A vote is granted without the check that the candidate's log is at least as up to date
    /// (§5.4.1).
    VoteWithoutLogCheck,
    /// The vote is not written with the hard state: after a restart in the same term the node
    /// votes again (Figure 2, "persistent state on all servers").
    VoteNotPersisted,
    /// A follower overwrites conflicting entries in place and keeps the rest of the conflicting
    /// suffix instead of deleting it (Figure 2, AppendEntries rule 3).
    KeepConflictingSuffix,
    /// A follower acknowledges appended entries before they are durable: the acknowledgement leaves
    /// with the early messages, before the fsync.
    AckBeforeDurable,
    /// A leader answers a read index at once, without a heartbeat round confirming it still leads
    /// (thesis §6.4; the stale reads Jepsen found in etcd, Consul and Redis-Raft).
    ReadIndexWithoutQuorum,
    /// Reads are served from the local state machine of whichever node a client reaches, without a
    /// read index (a driver bug; the simulator's clients do it).
    LocalReads,
    /// A follower installs a snapshot even when its log already holds the snapshot's last entry (or
    /// has committed past it), dropping the entries after it (§7, Figure 13 step 6).
    SnapshotOverLongerLog,
    /// A leader accepts a membership change while another is still uncommitted, or before it has
    /// committed an entry of its term (thesis §4.1; Ongaro's 2015 raft-dev fix).
    ConcurrentMembershipChanges,
    /// A leader that sees a higher term adopts it but keeps acting as leader: it goes on sending
    /// appends and committing in the new term (split brain).
    LeaderKeepsLeading,
    /// The commit index a follower takes from its leader is not clamped to what the leader verified
    /// the follower holds: an append advances it to `min(leaderCommit, last index)` instead of the
    /// last entry the append carried (Figure 2, AppendEntries rule 5), and a heartbeat carries the
    /// leader's whole commit index (etcd clamps it to the follower's match). A follower then commits
    /// a stale suffix that was never checked against the leader's log.
    CommitBeyondMatch,
    /// A new leader answers read indexes before it committed an entry of its own term, when its
    /// commit index may still be behind the cluster's (thesis §6.4 step 1).
    ReadBeforeTermCommit,
    /// A candidate counts vote grants that arrive with an earlier term (votes of a previous
    /// campaign), so two candidates can win the same term.
    CountStaleVotes,
}

#[cfg(feature = "sim")]
impl Bug {
    pub const ALL: [Bug; 13] = [
        Bug::CommitPreviousTerm,
        Bug::VoteWithoutLogCheck,
        Bug::VoteNotPersisted,
        Bug::KeepConflictingSuffix,
        Bug::AckBeforeDurable,
        Bug::ReadIndexWithoutQuorum,
        Bug::LocalReads,
        Bug::SnapshotOverLongerLog,
        Bug::ConcurrentMembershipChanges,
        Bug::LeaderKeepsLeading,
        Bug::CommitBeyondMatch,
        Bug::ReadBeforeTermCommit,
        Bug::CountStaleVotes,
    ];

    /// The switch's name on the command line (`simulate -- --bug NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Bug::CommitPreviousTerm => "commit-previous-term",
            Bug::VoteWithoutLogCheck => "vote-without-log-check",
            Bug::VoteNotPersisted => "vote-not-persisted",
            Bug::KeepConflictingSuffix => "keep-conflicting-suffix",
            Bug::AckBeforeDurable => "ack-before-durable",
            Bug::ReadIndexWithoutQuorum => "read-index-without-quorum",
            Bug::LocalReads => "local-reads",
            Bug::SnapshotOverLongerLog => "snapshot-over-longer-log",
            Bug::ConcurrentMembershipChanges => "concurrent-membership-changes",
            Bug::LeaderKeepsLeading => "leader-keeps-leading",
            Bug::CommitBeyondMatch => "commit-beyond-match",
            Bug::ReadBeforeTermCommit => "read-before-term-commit",
            Bug::CountStaleVotes => "count-stale-votes",
        }
    }

    pub fn parse(name: &str) -> Option<Bug> {
        Bug::ALL.into_iter().find(|b| b.name() == name)
    }
}
