//! The safety properties of Raft (Figure 3 of the paper), checked against every node after every
//! step of a simulation. A property is checked from what nodes expose, never from the core's own
//! bookkeeping of it.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};

use crate::raft::Raft;
use crate::types::{Entry, Index, NodeId, Payload, Role, Term};

/// Which property broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Property {
    /// At most one leader per term (§5.2).
    ElectionSafety,
    /// Two logs with an entry of the same index and term agree on it and everything before (§5.3).
    LogMatching,
    /// A committed entry is in the log of every leader of a later term (§5.4).
    LeaderCompleteness,
    /// No two nodes commit or apply different entries at the same index (§5.4.3).
    StateMachineSafety,
    /// A node's commit index never moves back (nor past its log), and its state machine never
    /// goes back to an older state, within one run of the process.
    MonotonicCommit,
    /// A node's snapshot agrees with its log start and with what was committed (§7).
    SnapshotConsistency,
    /// A message that promises something about the sender's disk (a granted vote, an append or
    /// snapshot acknowledgement) leaves only once that is durable; only a leader's traffic of a
    /// durable term leaves before the write.
    PersistBeforeSend,
    /// A node restarts from what its disk holds.
    Recovery,
    /// A leader advances its commit index only to an entry of its own term (§5.4.2: never by
    /// counting replicas of an earlier term's entry).
    CommitRule,
    /// A leader's log holds at most one configuration entry beyond its commit index (thesis §4.1:
    /// one single-server change at a time).
    OneConfigChange,
    /// A read index covers every entry committed before the read was asked (§6.4).
    StaleRead,
    /// After faults heal, the cluster makes progress within bounded time.
    Liveness,
    /// Linearizability of client histories.
    Linearizability,
    /// The run panicked: a debug assertion of the core (its invariants), an arithmetic overflow,
    /// or a bug of the simulator. Never expected.
    Panic,
}

/// A broken property, with what showed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub property: Property,
    pub time: u64,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} violated at t={}ms: {}",
            self.property, self.time, self.detail
        )
    }
}

/// Fingerprint of an entry's payload.
pub fn payload_hash(payload: &Payload) -> u64 {
    let mut h = DefaultHasher::new();
    payload.hash(&mut h);
    h.finish()
}

#[derive(Clone, Copy, Debug)]
struct Committed {
    term: Term,
    hash: u64,
    /// The smallest term in which some node saw this entry committed: leaders of later terms must
    /// hold it.
    seen_in_term: Term,
}

/// Global knowledge accumulated over a run.
#[derive(Debug, Default)]
pub struct Checker {
    leaders: BTreeMap<Term, NodeId>,
    /// (index, term) → (payload hash, previous entry's term): log matching by induction.
    entries: BTreeMap<(Index, Term), (u64, Term)>,
    committed: BTreeMap<Index, Committed>,
    applied: BTreeMap<Index, (Term, u64)>,
    /// State-machine fingerprint after applying each index.
    states: BTreeMap<Index, u64>,
    /// Per leader (node, incarnation, term): committed entries up to here were found in its log.
    leader_verified: BTreeMap<(NodeId, u32, Term), Index>,
    /// Last commit index seen per (node, incarnation).
    commits: BTreeMap<(NodeId, u32), Index>,
    pub time: u64,
}

impl Checker {
    pub fn new() -> Self {
        Checker::default()
    }

    fn fail(&self, property: Property, detail: String) -> Result<(), Violation> {
        Err(Violation {
            property,
            time: self.time,
            detail,
        })
    }

    /// Check everything visible on `node` (incarnation `life` of it).
    pub fn observe(&mut self, life: u32, node: &Raft) -> Result<(), Violation> {
        let id = node.id();
        // Election safety.
        if node.role() == Role::Leader {
            let leader = *self.leaders.entry(node.term()).or_insert(id);
            if leader != id {
                return self.fail(
                    Property::ElectionSafety,
                    format!(
                        "nodes {leader} and {id} both leaders of term {}",
                        node.term()
                    ),
                );
            }
        }
        // Log matching. Entries up to the commit index seen last time were checked then, and
        // committed entries are checked against each other below; only the rest needs a look.
        let previous_commit = self.commits.get(&(id, life)).copied().unwrap_or(0);
        let skip = previous_commit.saturating_sub(node.first_index() - 1) as usize;
        let skip = skip.min(node.entries().len());
        let mut prev_term = node.term_at(node.first_index() - 1 + skip as Index);
        for e in &node.entries()[skip..] {
            let hash = payload_hash(&e.payload);
            let Some(pt) = prev_term else {
                return self.fail(
                    Property::LogMatching,
                    format!("node {id}: no term before entry {}", e.index),
                );
            };
            let known = *self.entries.entry((e.index, e.term)).or_insert((hash, pt));
            if known != (hash, pt) {
                return self.fail(
                    Property::LogMatching,
                    format!(
                        "node {id}: entry ({}, term {}) differs from another log's (payload or previous term)",
                        e.index, e.term
                    ),
                );
            }
            prev_term = Some(e.term);
        }
        // Monotonic commit within a process lifetime.
        let commit = node.commit_index();
        if commit < previous_commit {
            return self.fail(
                Property::MonotonicCommit,
                format!("node {id}: commit index went from {previous_commit} to {commit}"),
            );
        }
        if commit > node.last_index() {
            return self.fail(
                Property::MonotonicCommit,
                format!(
                    "node {id}: commit index {commit} beyond its last index {}",
                    node.last_index()
                ),
            );
        }
        if node.role() == Role::Leader {
            if commit > previous_commit && node.term_at(commit).is_some_and(|t| t != node.term()) {
                return self.fail(
                    Property::CommitRule,
                    format!(
                        "leader {id} of term {} advanced its commit index from {previous_commit} \
                         to {commit}, an entry of term {:?}",
                        node.term(),
                        node.term_at(commit)
                    ),
                );
            }
            let pending_configs = node
                .entries()
                .iter()
                .rev()
                .take_while(|e| e.index > commit)
                .filter(|e| matches!(e.payload, Payload::Config { .. }))
                .count();
            if pending_configs > 1 {
                return self.fail(
                    Property::OneConfigChange,
                    format!(
                        "leader {id} of term {} holds {pending_configs} uncommitted configuration \
                         entries",
                        node.term()
                    ),
                );
            }
        }
        self.commits.insert((id, life), commit);
        // Newly committed entries agree with what anyone committed before.
        let from = (previous_commit + 1).max(node.first_index());
        for index in from..=commit {
            let Some(term) = node.term_at(index) else {
                continue;
            };
            let hash = node
                .entries()
                .get((index - node.first_index()) as usize)
                .map_or(0, |e: &Entry| payload_hash(&e.payload));
            match self.committed.get(&index).copied() {
                Some(c) => {
                    if c.term != term || c.hash != hash {
                        return self.fail(
                            Property::StateMachineSafety,
                            format!(
                                "node {id} committed (index {index}, term {term}) but (index {index}, term {}) was committed before",
                                c.term
                            ),
                        );
                    }
                    if let Some(c) = self.committed.get_mut(&index) {
                        c.seen_in_term = c.seen_in_term.min(node.term());
                    }
                }
                None => {
                    self.committed.insert(
                        index,
                        Committed {
                            term,
                            hash,
                            seen_in_term: node.term(),
                        },
                    );
                }
            }
        }
        // Leader completeness.
        if node.role() == Role::Leader {
            // A leader's log only grows during its term: what was verified stays verified.
            let key = (id, life, node.term());
            let verified = self.leader_verified.get(&key).copied().unwrap_or(0);
            let first = node.first_index().max(verified + 1);
            self.leader_verified.insert(key, self.max_committed());
            for (&index, c) in self.committed.range(first..) {
                if c.seen_in_term >= node.term() {
                    continue;
                }
                if node.term_at(index) != Some(c.term) {
                    return self.fail(
                        Property::LeaderCompleteness,
                        format!(
                            "leader {id} of term {} lacks entry (index {index}, term {}) committed in term {}",
                            node.term(),
                            c.term,
                            c.seen_in_term
                        ),
                    );
                }
            }
        }
        // Snapshot consistency.
        let snap = node.snapshot();
        if snap.index > commit || snap.index + 1 < node.first_index() {
            return self.fail(
                Property::SnapshotConsistency,
                format!(
                    "node {id}: snapshot at {} with commit {commit} and log start {}",
                    snap.index,
                    node.first_index()
                ),
            );
        }
        if node.term_at(snap.index).is_some_and(|t| t != snap.term)
            || snap.index > 0
                && self
                    .committed
                    .get(&snap.index)
                    .is_some_and(|c| c.term != snap.term)
        {
            return self.fail(
                Property::SnapshotConsistency,
                format!(
                    "node {id}: snapshot (index {}, term {}) disagrees",
                    snap.index, snap.term
                ),
            );
        }
        Ok(())
    }

    /// A node applied `entry`, leaving its state machine with `state` as fingerprint.
    pub fn on_apply(&mut self, id: NodeId, entry: &Entry, state: u64) -> Result<(), Violation> {
        let hash = payload_hash(&entry.payload);
        let known = *self
            .applied
            .entry(entry.index)
            .or_insert((entry.term, hash));
        if known != (entry.term, hash) {
            return self.fail(
                Property::StateMachineSafety,
                format!(
                    "node {id} applied (index {}, term {}) where (index {}, term {}) was applied elsewhere",
                    entry.index, entry.term, entry.index, known.0
                ),
            );
        }
        if let Some(c) = self.committed.get(&entry.index)
            && c.term != entry.term
        {
            return self.fail(
                Property::StateMachineSafety,
                format!(
                    "node {id} applied index {} of term {}, committed term {}",
                    entry.index, entry.term, c.term
                ),
            );
        }
        self.on_state(id, entry.index, state, "apply")
    }

    /// A node's state machine reached `index` with fingerprint `state` (by applying or by
    /// installing a snapshot).
    pub fn on_state(
        &mut self,
        id: NodeId,
        index: Index,
        state: u64,
        how: &str,
    ) -> Result<(), Violation> {
        let known = *self.states.entry(index).or_insert(state);
        if known != state {
            return self.fail(
                Property::StateMachineSafety,
                format!("node {id}: state after index {index} ({how}) differs from another node's"),
            );
        }
        Ok(())
    }

    /// Entries known committed so far.
    pub fn committed_count(&self) -> usize {
        self.committed.len()
    }

    /// Highest index known committed.
    pub fn max_committed(&self) -> Index {
        self.committed.keys().next_back().copied().unwrap_or(0)
    }
}
