//! The messages Raft peers exchange. The driver serializes them (CBOR in VeriSim) and hands received
//! ones back to [`crate::Raft::step`].

use serde::{Deserialize, Serialize};

use crate::types::{Entry, Index, NodeId, SnapshotId, SnapshotMeta, Term};

/// One peer-to-peer message. `term` is the sender's term, except for pre-votes, which carry the term
/// the sender would campaign in (and a granted pre-vote reply echoes it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    pub term: Term,
    pub body: MessageBody,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    /// Would you vote for me in `term`? (thesis §9.6). The receiver's term does not change.
    PreVote {
        last_log_index: Index,
        last_log_term: Term,
    },
    PreVoteResponse {
        granted: bool,
    },
    /// RequestVote (Raft §5.2). `transfer` marks an election started by a leadership transfer, which
    /// voters honour even while they hear from a leader (thesis §3.10, §4.2.3).
    Vote {
        last_log_index: Index,
        last_log_term: Term,
        transfer: bool,
    },
    VoteResponse {
        granted: bool,
    },
    /// AppendEntries (Raft §5.3). `commit` is the leader's commit index.
    Append {
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
        commit: Index,
    },
    AppendResponse(AppendResult),
    /// Leader liveness and read-index confirmation. `commit` never exceeds what the follower is known
    /// to hold; `read_round` is echoed back so the leader can confirm read requests.
    Heartbeat {
        commit: Index,
        read_round: u64,
    },
    HeartbeatResponse {
        read_round: u64,
    },
    /// One chunk of a snapshot (Raft §7). Chunks are sent one at a time; `offset` makes the transfer
    /// resumable and `meta.id` ties every chunk to the same bytes.
    InstallSnapshot {
        meta: SnapshotMeta,
        offset: u64,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        done: bool,
    },
    InstallSnapshotResponse {
        snapshot_id: SnapshotId,
        result: SnapshotResult,
    },
    /// Leadership transfer: start an election now (thesis §3.10).
    TimeoutNow,
}

/// The follower's answer to an `Append`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendResult {
    /// The follower's log matches the leader's up to `match_index`.
    Accepted { match_index: Index },
    /// `prev_index` did not match. The hint is the last index at or below `rejected` whose term is at
    /// most the leader's `prev_term`, with that term, so the leader can skip a whole term at once
    /// (the "fast backtracking" of §5.3).
    Rejected {
        rejected: Index,
        hint_index: Index,
        hint_term: Term,
    },
}

/// The follower's answer to an `InstallSnapshot` chunk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotResult {
    /// Send the chunk starting at `next_offset` (also the answer to a chunk out of order).
    Continue { next_offset: u64 },
    /// The follower's log now matches the leader's up to `match_index`.
    Done { match_index: Index },
}

impl MessageBody {
    /// Short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            MessageBody::PreVote { .. } => "PreVote",
            MessageBody::PreVoteResponse { .. } => "PreVoteResponse",
            MessageBody::Vote { .. } => "Vote",
            MessageBody::VoteResponse { .. } => "VoteResponse",
            MessageBody::Append { .. } => "Append",
            MessageBody::AppendResponse(_) => "AppendResponse",
            MessageBody::Heartbeat { .. } => "Heartbeat",
            MessageBody::HeartbeatResponse { .. } => "HeartbeatResponse",
            MessageBody::InstallSnapshot { .. } => "InstallSnapshot",
            MessageBody::InstallSnapshotResponse { .. } => "InstallSnapshotResponse",
            MessageBody::TimeoutNow => "TimeoutNow",
        }
    }

    /// Messages only a leader sends.
    pub fn is_from_leader(&self) -> bool {
        matches!(
            self,
            MessageBody::Append { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::InstallSnapshot { .. }
                | MessageBody::TimeoutNow
        )
    }
}
