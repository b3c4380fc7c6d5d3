//! What goes into the core ([`Input`]) and what comes out of it ([`Ready`]).

use crate::message::Message;
use crate::types::{ConfChange, Entry, HardState, Index, NodeId, SnapshotId, SnapshotMeta, Term};

/// Everything the core reacts to. Time is a `Tick`; storage and snapshot I/O come back as inputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// One unit of logical time (the driver's timer).
    Tick,
    /// A message from a peer.
    Message(Message),
    /// Append an application command (leader only; a follower refuses with the leader's id).
    Propose(Vec<u8>),
    /// Append a one-server membership change (leader only).
    ProposeConfChange(ConfChange),
    /// Ask for a linearizable read point; the answer comes in [`Ready::read_states`].
    ReadIndex { request_id: u64 },
    /// Hand leadership to `to` (thesis §3.10).
    TransferLeadership { to: NodeId },
    /// Start an election now (operators and tests; a voter only).
    Campaign,
    /// The application wrote a snapshot of its state at `index` (at most the applied index). The core
    /// records it and compacts the log before `index`, keeping the configured trailing window.
    SnapshotTaken {
        index: Index,
        id: SnapshotId,
        size: u64,
    },
    /// The bytes of a chunk the core asked for in [`Ready::snapshot_reads`].
    SnapshotChunk {
        to: NodeId,
        snapshot_id: SnapshotId,
        offset: u64,
        data: Vec<u8>,
    },
    /// The snapshot of a requested chunk is gone; the core restarts the transfer from its latest one.
    SnapshotUnavailable { to: NodeId, snapshot_id: SnapshotId },
}

/// What a successful step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stepped {
    Done,
    /// The proposal is at (`index`, `term`). It succeeded if and only if the entry applied at `index`
    /// has this term.
    Proposed {
        index: Index,
        term: Term,
    },
}

/// A chunk for the driver to read from snapshot `snapshot_id` and feed back as
/// [`Input::SnapshotChunk`] (or [`Input::SnapshotUnavailable`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkRead {
    pub to: NodeId,
    pub snapshot_id: SnapshotId,
    pub offset: u64,
    pub len: u64,
}

impl ChunkRead {
    /// The input that answers this read: the bytes, or `None` when the snapshot is gone.
    pub fn answer(&self, data: Option<Vec<u8>>) -> Input {
        match data {
            Some(data) => Input::SnapshotChunk {
                to: self.to,
                snapshot_id: self.snapshot_id,
                offset: self.offset,
                data,
            },
            None => Input::SnapshotUnavailable {
                to: self.to,
                snapshot_id: self.snapshot_id,
            },
        }
    }
}

/// A chunk of an incoming snapshot to write at `offset` of the file for `snapshot_id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkWrite {
    pub snapshot_id: SnapshotId,
    pub offset: u64,
    pub data: Vec<u8>,
}

/// The answer to a [`Input::ReadIndex`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadState {
    pub request_id: u64,
    pub result: ReadResult,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadResult {
    /// Serve the read once the state machine has applied `index` (every committed entry of this
    /// `Ready` included): the result is linearizable.
    Ready { index: Index },
    /// Leadership was lost before the read was confirmed; retry at `leader`.
    Aborted { leader: Option<NodeId> },
}

/// Everything that must leave the core, in the order the driver handles it:
///
/// 1. write `snapshot_writes`; if `snapshot_install` is set, restore the state machine from that
///    snapshot, record its metadata and drop the whole persisted log;
/// 2. send `early_messages` at once (a leader's appends: its own disk write then overlaps its
///    followers', thesis §10.2.1);
/// 3. apply `committed_entries` in order, then serve `read_states`. This may come before step 4:
///    committed entries are durable on a majority already, whatever this node's disk holds;
/// 4. persist `entries` (drop persisted entries from `entries[0].index` on first) and `hard_state`,
///    behind one fsync when `must_sync` says so;
/// 5. only then send `messages` (persist before send: a vote or an acknowledgement is never sent
///    for something that could still be lost);
/// 6. start `snapshot_reads`; delete persisted entries up to `compact_log_to`;
/// 7. call [`crate::Raft::advance`]. The core may be stepped while the driver works through
///    steps 2–6 (it hands out no new `Ready` before `advance`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    pub snapshot_writes: Vec<ChunkWrite>,
    pub snapshot_install: Option<SnapshotMeta>,
    pub entries: Vec<Entry>,
    pub hard_state: Option<HardState>,
    /// A leader's appends, heartbeats and snapshot chunks of a term whose hard state is already
    /// durable. They promise nothing about this node's disk: the leader counts its own copy of an
    /// entry toward commit only once persisted, and it can never lead that term again after a crash
    /// (its vote for itself is durable), so no other entry can ever take the same index and term.
    pub early_messages: Vec<Message>,
    /// Everything else: sent only once `entries` and `hard_state` are durable.
    pub messages: Vec<Message>,
    /// Whether `entries` and `hard_state` need an fsync: there are entries, or the term or vote
    /// changed. A changed commit index alone may be written without one: the commit index is
    /// volatile in Raft, and a node that loses it in a crash learns it again from the leader.
    pub must_sync: bool,
    pub committed_entries: Vec<Entry>,
    pub read_states: Vec<ReadState>,
    pub snapshot_reads: Vec<ChunkRead>,
    pub compact_log_to: Option<Index>,
}

/// Tunables. Times are in ticks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub id: NodeId,
    /// The election timeout is drawn from `[election_ticks, 2 * election_ticks)`.
    pub election_ticks: u32,
    pub heartbeat_ticks: u32,
    /// Ask for pre-votes before raising the term (thesis §9.6).
    pub pre_vote: bool,
    /// A leader steps down when it has not heard from a majority within an election timeout, and a
    /// follower that hears from its leader ignores vote requests (thesis §6.2, §9.6).
    pub check_quorum: bool,
    /// Appends in flight per peer once it follows.
    pub max_inflight: usize,
    pub max_entries_per_append: usize,
    pub max_bytes_per_append: usize,
    pub snapshot_chunk_size: u64,
    /// Snapshot chunks sent to a peer and not yet acknowledged, at most (1: one round trip per
    /// chunk, as in the paper's Figure 13). A follower writes chunks in order and asks again from
    /// the first byte it lacks; a lost chunk is resent from there once the transfer has been idle
    /// for an election timeout.
    pub snapshot_chunks_in_flight: usize,
    /// Entries kept before a snapshot's index when the log is compacted, so a briefly slow follower
    /// catches up from the log.
    pub log_keep_after_snapshot: u64,
    /// Seeds the election-timeout randomness, so a run replays exactly.
    pub seed: u64,
    /// Test only (the `sim` feature, which no node build enables): the injected bug this node
    /// runs with ([`crate::Bug`]).
    #[cfg(feature = "sim")]
    #[doc(hidden)]
    pub bug: Option<crate::Bug>,
}

impl Config {
    /// Defaults in the spirit of etcd: election 10 ticks, heartbeat 1 tick.
    pub fn new(id: NodeId, seed: u64) -> Self {
        Config {
            id,
            election_ticks: 10,
            heartbeat_ticks: 1,
            pre_vote: true,
            check_quorum: true,
            max_inflight: 64,
            max_entries_per_append: 256,
            max_bytes_per_append: 1 << 20,
            snapshot_chunk_size: 1 << 20,
            snapshot_chunks_in_flight: 1,
            log_keep_after_snapshot: 1024,
            seed,
            #[cfg(feature = "sim")]
            bug: None,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), crate::InitError> {
        use crate::InitError::Config as E;
        if self.id == 0 {
            return Err(E("node id 0 is reserved"));
        }
        if self.heartbeat_ticks == 0 {
            return Err(E("heartbeat_ticks must be at least 1"));
        }
        if self.election_ticks <= self.heartbeat_ticks {
            return Err(E("election_ticks must exceed heartbeat_ticks"));
        }
        if self.max_inflight == 0
            || self.max_entries_per_append == 0
            || self.max_bytes_per_append == 0
        {
            return Err(E("replication limits must be at least 1"));
        }
        if self.snapshot_chunk_size == 0 {
            return Err(E("snapshot_chunk_size must be at least 1"));
        }
        if self.snapshot_chunks_in_flight == 0 {
            return Err(E("snapshot_chunks_in_flight must be at least 1"));
        }
        Ok(())
    }
}

/// What a node reads back from disk to restart (or an empty or bootstrap state to start).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersistedState {
    pub hard_state: HardState,
    /// The latest snapshot the node holds; index 0 carries the bootstrap membership.
    pub snapshot: SnapshotMeta,
    /// The persisted log, contiguous, starting at or before `snapshot.index + 1`.
    pub entries: Vec<Entry>,
}

impl PersistedState {
    /// A node of a new cluster whose initial voters are `voters`.
    pub fn bootstrap(voters: impl IntoIterator<Item = NodeId>) -> Self {
        PersistedState {
            snapshot: SnapshotMeta {
                membership: crate::types::Membership::with_voters(voters),
                ..SnapshotMeta::default()
            },
            ..PersistedState::default()
        }
    }

    /// A node that will join an existing cluster (added as a learner): it knows nothing yet.
    pub fn joining() -> Self {
        PersistedState::default()
    }
}
