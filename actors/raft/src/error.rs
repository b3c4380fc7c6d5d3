//! Typed errors. A rejected input changes nothing in the core; the driver logs it and moves on.

use thiserror::Error;

pub use crate::types::ConfChangeError;
use crate::types::{Index, NodeId, SnapshotId, Term};

/// Why the core refused an input.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum StepError {
    /// Proposals and reads are served by the leader only; the driver forwards to `leader` if known.
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("a leadership transfer is in progress; proposals are paused")]
    TransferInProgress,
    #[error(
        "a membership change is pending, or the leader has not committed an entry in its term yet"
    )]
    ConfChangePending,
    #[error("membership change refused: {0}")]
    ConfChange(#[from] ConfChangeError),
    #[error("learner {0} has not caught up with the commit index yet")]
    LearnerBehind(NodeId),
    #[error("node {0} is not a voter and cannot campaign or receive leadership")]
    NotVoter(NodeId),
    #[error("message from term {message} is older than term {current}")]
    StaleTerm { message: Term, current: Term },
    #[error("message addressed to {to}, this node is {me}")]
    WrongRecipient { to: NodeId, me: NodeId },
    #[error("message from {0}, which is not a peer this node tracks")]
    UnknownPeer(NodeId),
    #[error("vote request ignored: this node heard from its leader within the election timeout")]
    InLease,
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    #[error("message does not apply to this node's role or state: {0}")]
    Unexpected(&'static str),
    #[error("snapshot {id}: {reason}")]
    Snapshot {
        id: SnapshotId,
        reason: &'static str,
    },
    #[error("snapshot at {index} refused: {reason}")]
    SnapshotTaken { index: Index, reason: &'static str },
}

/// Why a core could not be built from a configuration and persisted state.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum InitError {
    #[error("invalid configuration: {0}")]
    Config(&'static str),
    #[error("persisted state is inconsistent: {0}")]
    Persisted(&'static str),
}
