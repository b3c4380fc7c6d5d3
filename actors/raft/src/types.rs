//! The plain data the core reads and writes: ids, entries, hard state, membership, snapshot metadata.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A member of the cluster. `0` is never a valid id (it means "none" on the wire of other Rafts).
pub type NodeId = u64;
/// A Raft term. Term 0 is the bootstrap term: no leader ever has it.
pub type Term = u64;
/// A log index. Index 0 is the empty-log position (the bootstrap configuration lives there).
pub type Index = u64;

/// The highest term a node may hold or a message may carry: one below `u64::MAX`, so every term a
/// node holds can be incremented for a campaign (or a pre-vote) without overflow. A message of a
/// higher term is malformed; a node at this term does not campaign.
pub const MAX_TERM: Term = u64::MAX - 1;

/// The highest index an entry or a snapshot may have: one below `u64::MAX`, so `last_index + 1`
/// never overflows. A message naming a higher one is malformed; a leader whose log reaches it
/// refuses further proposals.
pub const MAX_INDEX: Index = u64::MAX - 1;

/// One log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub index: Index,
    pub payload: Payload,
}

/// What an entry carries. The kind is part of the type so the core never decodes opaque bytes.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Payload {
    /// Appended by every new leader so it can commit entries of earlier terms (Raft §5.4.2).
    Noop,
    /// An application command, opaque to the core. A CBOR byte string on the wire and on disk (an
    /// array of integers would cost up to twice the size); arrays written by earlier builds still
    /// decode.
    Normal(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A one-server membership change. It carries the whole resulting membership so a node that
    /// joins from an empty state needs no earlier configuration to interpret it.
    Config {
        change: ConfChange,
        membership: Membership,
    },
}

impl Entry {
    /// Bytes the entry costs in a message, for batching limits.
    pub fn approx_size(&self) -> usize {
        let payload = match &self.payload {
            Payload::Noop => 0,
            Payload::Normal(data) => data.len(),
            Payload::Config { membership, .. } => {
                8 * (membership.voters.len() + membership.learners.len()) + 16
            }
        };
        payload + 24
    }
}

/// A single-server membership change (Raft thesis §4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConfChange {
    /// A new non-voting member that receives the log.
    AddLearner(NodeId),
    /// Turn a learner into a voter.
    Promote(NodeId),
    /// Remove a voter or a learner.
    Remove(NodeId),
}

/// The voting and non-voting members. Disjoint sets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    pub voters: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
}

impl Membership {
    /// A configuration of voters only.
    pub fn with_voters(voters: impl IntoIterator<Item = NodeId>) -> Self {
        Membership {
            voters: voters.into_iter().collect(),
            learners: BTreeSet::new(),
        }
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.learners.contains(&id)
    }

    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }

    /// Every member, voters first, each in id order.
    pub fn members(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.voters.iter().chain(self.learners.iter()).copied()
    }

    /// Well-formed: at least one voter, no node id 0, no node both a voter and a learner. A
    /// membership that arrives in a message (a snapshot's, a configuration entry's) must be: a
    /// leader never sends another (the last voter cannot be removed). Only a joining node's empty
    /// starting state has no voters.
    pub fn is_well_formed(&self) -> bool {
        !self.voters.is_empty() && !self.contains(0) && self.voters.is_disjoint(&self.learners)
    }

    /// Votes needed for a majority of the voters.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// The membership after `change`, or why the change is not allowed.
    pub fn apply(&self, change: ConfChange) -> Result<Membership, ConfChangeError> {
        use ConfChangeError as E;
        let mut next = self.clone();
        match change {
            ConfChange::AddLearner(id) => {
                if id == 0 {
                    return Err(E::InvalidNodeId);
                }
                if self.contains(id) {
                    return Err(E::AlreadyMember(id));
                }
                next.learners.insert(id);
            }
            ConfChange::Promote(id) => {
                if !next.learners.remove(&id) {
                    return Err(E::NotALearner(id));
                }
                next.voters.insert(id);
            }
            ConfChange::Remove(id) => {
                if !self.contains(id) {
                    return Err(E::NotAMember(id));
                }
                next.learners.remove(&id);
                if next.voters.remove(&id) && next.voters.is_empty() {
                    return Err(E::LastVoter);
                }
            }
        }
        Ok(next)
    }
}

/// What must be on disk before any message produced alongside it is sent (Raft Figure 2,
/// "persistent state on all servers"). `commit` is kept too so a restart re-applies only what is known
/// committed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: Term,
    pub vote: Option<NodeId>,
    pub commit: Index,
}

/// Identifies a snapshot file. The driver chooses it (a content hash is a good choice); it tells a
/// resumed chunk transfer that it is still reading the same bytes.
pub type SnapshotId = u64;

/// Describes a snapshot the application holds; the bytes stay with the driver.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The last index the snapshot covers ("last_included_index").
    pub index: Index,
    /// The term of that entry ("last_included_term").
    pub term: Term,
    /// The membership as of `index`.
    pub membership: Membership,
    pub id: SnapshotId,
    /// Length of the snapshot in bytes, so a chunked transfer knows where it ends.
    pub size: u64,
}

/// The role a node plays in its current term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Follower,
    /// Asking for pre-votes without raising its term (thesis §9.6).
    PreCandidate,
    Candidate,
    Leader,
}

/// Why a membership change is not allowed from the current membership.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ConfChangeError {
    #[error("node id 0 is reserved")]
    InvalidNodeId,
    #[error("node {0} is already a member")]
    AlreadyMember(NodeId),
    #[error("node {0} is not a learner")]
    NotALearner(NodeId),
    #[error("node {0} is not a member")]
    NotAMember(NodeId),
    #[error("the last voter cannot be removed")]
    LastVoter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_server_changes() {
        let m = Membership::with_voters([1, 2, 3]);
        assert_eq!(m.quorum(), 2);
        let m = m.apply(ConfChange::AddLearner(4)).expect("add");
        assert!(m.learners.contains(&4) && !m.is_voter(4));
        assert_eq!(
            m.apply(ConfChange::AddLearner(4)),
            Err(ConfChangeError::AlreadyMember(4))
        );
        assert_eq!(
            m.apply(ConfChange::Promote(1)),
            Err(ConfChangeError::NotALearner(1))
        );
        let m = m.apply(ConfChange::Promote(4)).expect("promote");
        assert_eq!(m.quorum(), 3);
        let m = m.apply(ConfChange::Remove(1)).expect("remove");
        assert_eq!(m.members().collect::<Vec<_>>(), vec![2, 3, 4]);
        assert_eq!(
            m.apply(ConfChange::AddLearner(0)),
            Err(ConfChangeError::InvalidNodeId)
        );
        let single = Membership::with_voters([7]);
        assert_eq!(
            single.apply(ConfChange::Remove(7)),
            Err(ConfChangeError::LastVoter)
        );
    }
}
