//! The consensus actor: one per node, it drives the pure Raft core.
//!
//! Each input (a tick, a peer message, a proposal) is stepped into the core at once; the effects are
//! handled by a `Flush` the actor sends itself when the first input of a batch arrives. Every input
//! already queued is stepped before that `Flush` runs, so one `Ready` — one fsync — covers all of them
//! (group commit), and the batch grows by itself under load while the previous fsync is running.
//!
//! A failed write to the log or snapshot directory fails the actor: its supervisor restarts it, and the
//! restart rebuilds the core and the replica from disk. It never carries on after a failed fsync.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};
use verisim_raft::{
    ChunkRead, ConfChange, Config, Entry, Index, Input, Membership, Message, MessageBody, NodeId,
    Payload, Raft, ReadResult, Ready, Role, SnapshotId, SnapshotMeta, StepError, Stepped, Term,
};

use super::log_store::{LogStats, LogStore};
use super::replica::SharedReplica;
use super::restore::restore;
use super::transport::Transport;
use crate::registry::{Outcome, RegistryState};
use crate::snapshot::{
    Expected, SnapshotDir, SnapshotError, SnapshotHeader, SnapshotInfo, read_received_registry,
};
use crate::telemetry::{TELEMETRY, secs};

/// After a refused snapshot transfer, chunks from the leader are ignored for this long, doubled
/// after each refusal in a row (up to [`TRANSFER_RETRY_MAX`]); the leader sends again once its
/// transfer has been idle for an election timeout.
const TRANSFER_RETRY_BASE: Duration = Duration::from_millis(200);
const TRANSFER_RETRY_MAX: Duration = Duration::from_secs(30);

/// Test-only fault hook: a file of this name in the Raft directory, holding a count N, makes the
/// node flip one byte in each of the next N snapshots it receives (the file is removed when read).
/// Anyone who can write there can corrupt the node's data anyway; it opens nothing new.
pub const FAULT_CORRUPT_RECEIVED: &str = "FAULT_CORRUPT_RECEIVED_SNAPSHOTS";

/// What a committed proposal produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Applied {
    pub index: Index,
    pub term: Term,
    pub outcome: Outcome,
}

/// Why a proposal, read or change was not carried out. The one error of the consensus layer: the
/// consensus actor answers it, it crosses nodes as it is (CBOR) when a proposal was forwarded to the
/// leader, and [`crate::consensus::RegistryClient`] hands it to the HTTP layer, which maps it once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum ConsensusError {
    /// This node does not lead; `leader` is the one it knows of.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    /// No leader answered before the deadline (an election, or no quorum reachable): nothing was
    /// proposed, so asking again is safe.
    #[error("no leader reachable before the deadline (last known: {last_known:?})")]
    NoLeader { last_known: Option<NodeId> },
    /// The entry was proposed and a new leader replaced it before it committed: it will never
    /// commit, so asking again is safe.
    #[error("the entry was replaced by another leader's before it committed; retry")]
    Dropped,
    /// Transient: the leader is busy (a transfer or change in progress), unreachable, or restarting.
    #[error("refused by the consensus core: {0}")]
    Refused(String),
    /// Permanent: the request can never succeed as asked (an impossible membership change).
    #[error("invalid: {0}")]
    Invalid(String),
    /// The request reached the consensus actor (or the leader) and no answer came back in time: it
    /// may still take effect. A proposal must not be made again in its place (that could apply it
    /// twice); the caller is told the outcome is unknown.
    #[error("no answer, the outcome is unknown: {0}")]
    Unknown(String),
    /// Committed at `index`, which this node has not applied before the deadline: the write is
    /// done, but this node cannot yet answer from a replica that includes it.
    #[error("committed at index {index}, not yet applied on this node; retry the read")]
    NotApplied { index: Index },
}

impl From<StepError> for ConsensusError {
    fn from(e: StepError) -> Self {
        match e {
            StepError::NotLeader { leader } => ConsensusError::NotLeader { leader },
            e @ (StepError::ConfChange(_) | StepError::NotVoter(_)) => {
                ConsensusError::Invalid(e.to_string())
            }
            other => ConsensusError::Refused(other.to_string()),
        }
    }
}

/// A node's consensus status, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConsensusStatus {
    pub id: NodeId,
    pub role: Role,
    pub term: Term,
    pub leader: Option<NodeId>,
    pub commit_index: Index,
    pub applied_index: Index,
    pub snapshot_index: Index,
    pub snapshot_term: Term,
    pub membership: Membership,
    pub log: LogStats,
    /// fsyncs of the log so far (one per `Ready` with entries or a new term or vote).
    pub log_syncs: u64,
    /// Snapshot transfers from a leader this node refused (bytes that fail their checks, a file
    /// that is not the one announced, an I/O error while receiving) and asked for again.
    pub snapshot_transfers_refused: u64,
    /// Why the last one was refused.
    pub last_snapshot_refusal: Option<String>,
    /// Set while this node rebuilds a log it lost with a corrupt snapshot: it does not vote
    /// until its applied index reaches this.
    pub recovery_horizon: Option<Index>,
    /// What was wrong with this node's own snapshot when it started, if anything.
    pub corrupt_own_snapshot: Option<String>,
    /// On a leader: the highest index known replicated to each other member (voters and
    /// learners); empty elsewhere. Its distance to `commit_index` is the member's lag.
    pub peer_match: BTreeMap<NodeId, Index>,
}

/// The consensus actor's protocol.
pub enum ConsensusMsg {
    /// Logical time.
    Tick,
    /// A message from a peer.
    Peer(Message),
    /// Handle the core's pending effects (sent to itself).
    Flush,
    /// Append a registry command; answered once it is applied (or known lost).
    Propose {
        command: Vec<u8>,
        reply: RpcReplyPort<Result<Applied, ConsensusError>>,
    },
    /// A linearizable read point: answered with an index once this node has applied it; reads of the
    /// replica after that see every write acknowledged before the request.
    ReadIndex {
        reply: RpcReplyPort<Result<Index, ConsensusError>>,
    },
    /// A one-server membership change; answered once applied.
    ChangeMembership {
        change: ConfChange,
        reply: RpcReplyPort<Result<Index, ConsensusError>>,
    },
    TransferLeadership {
        to: NodeId,
        reply: RpcReplyPort<Result<(), ConsensusError>>,
    },
    /// Start an election now.
    Campaign,
    /// The snapshotter wrote a snapshot of the replica at `index` to `path`.
    SnapshotTaken {
        index: Index,
        path: PathBuf,
        id: SnapshotId,
        size: u64,
    },
    Status(RpcReplyPort<ConsensusStatus>),
    /// A snapshot received from the leader was checked and decoded off the actor (sent to itself
    /// by the blocking task [`ConsensusState::start_loading`] starts).
    SnapshotLoaded {
        id: SnapshotId,
        loaded: Box<Result<(SnapshotHeader, RegistryState), SnapshotError>>,
    },
}

impl ractor::Message for ConsensusMsg {}

/// What the consensus actor needs to start.
#[derive(Clone)]
pub struct ConsensusArgs {
    pub raft: Config,
    /// `<data>/raft`: the fjall log lives in `log/`, snapshots in `snapshots/`.
    pub dir: PathBuf,
    /// Voters of a new cluster; ignored when the log already holds state. Empty for a node that
    /// joins an existing cluster (it starts with no membership and waits to be added).
    pub bootstrap_voters: Vec<NodeId>,
    pub tick: Duration,
    pub transport: Arc<dyn Transport>,
    pub replica: SharedReplica,
    /// Snapshots kept on disk (at least 1).
    pub snapshots_kept: usize,
    /// As leader, promote a learner to voter once it has caught up with the commit index.
    pub auto_promote: bool,
}

pub struct ConsensusActor;

pub struct ConsensusState {
    raft: Raft,
    /// The core's configuration, to rebuild it from disk after a refused transfer.
    raft_cfg: Config,
    log: LogStore,
    snapshots: SnapshotDir,
    /// Snapshot files this node can serve, by id.
    snapshot_paths: BTreeMap<SnapshotId, PathBuf>,
    replica: SharedReplica,
    transport: Arc<dyn Transport>,
    flush_scheduled: bool,
    /// Proposals waiting for their entry.
    proposals: BTreeMap<Index, Waiting>,
    /// When each proposal taken since the last flush arrived (`verisim_raft_proposal_queue`).
    queued: Vec<Instant>,
    /// The leader as of the last flush (`verisim_raft_leader_changes`).
    last_leader: Option<NodeId>,
    changes: BTreeMap<Index, (Term, RpcReplyPort<Result<Index, ConsensusError>>)>,
    read_requests: BTreeMap<u64, RpcReplyPort<Result<Index, ConsensusError>>>,
    /// Confirmed reads waiting for the replica to reach their index.
    reads_waiting: Vec<(Index, RpcReplyPort<Result<Index, ConsensusError>>)>,
    next_read_id: u64,
    log_syncs: u64,
    auto_promote: bool,
    refusals: Refusals,
    /// Received snapshots still to corrupt (the [`FAULT_CORRUPT_RECEIVED`] hook; 0 normally).
    fault_corrupt_received: u32,
    /// The transfer the hook corrupted and that has not completed yet. The hook's count goes down
    /// only when such a transfer completes (and is refused): a transfer the leader abandons for a
    /// newer snapshot does not use up a corruption.
    fault_transfer: Option<SnapshotId>,
    /// Set while this node rebuilds a log it lost (see [`restore`]): until its applied index
    /// reaches it, it neither votes nor campaigns.
    horizon: Option<Index>,
    /// What was wrong with this node's own snapshot at start, for the status.
    corrupt_own_snapshot: Option<String>,
    /// The `Ready` that installs a received snapshot, while the file is checked and decoded on a
    /// blocking thread. The core keeps stepping meanwhile (ticks, peer messages, status), but no
    /// other `Ready` is taken and this one is not advanced until the install is done.
    installing: Option<Ready>,
    /// The transfer being received and when its first chunk was written
    /// (`verisim_snapshot_receive_seconds`).
    receiving: Option<(SnapshotId, Instant)>,
    ticker: Option<JoinHandle<()>>,
}

/// A proposal waiting for its entry: the term it was appended in, the proposer's port, and when
/// the core took it (`verisim_raft_commit_seconds`).
type Waiting = (Term, RpcReplyPort<Result<Applied, ConsensusError>>, Instant);

/// Refused snapshot transfers: the metric, and the backoff before the next is accepted.
#[derive(Debug, Default)]
struct Refusals {
    total: u64,
    in_a_row: u32,
    ignore_until: Option<Instant>,
    last: Option<String>,
}

impl Refusals {
    fn refused(&mut self, cause: String) -> Duration {
        self.total += 1;
        self.in_a_row = self.in_a_row.saturating_add(1);
        let wait = verisim_vocab::backoff::exponential(
            TRANSFER_RETRY_BASE,
            TRANSFER_RETRY_MAX,
            self.in_a_row.saturating_sub(1),
        );
        self.ignore_until = Some(Instant::now() + wait);
        self.last = Some(cause);
        wait
    }

    fn backing_off(&mut self) -> bool {
        match self.ignore_until {
            Some(t) if Instant::now() < t => true,
            Some(_) => {
                self.ignore_until = None;
                false
            }
            None => false,
        }
    }
}

/// Why a snapshot transfer from the leader was refused. None of these is fatal: the transfer is
/// dropped, and the leader asked for it again.
#[derive(Debug, thiserror::Error)]
enum TransferError {
    #[error("{0}")]
    Snapshot(#[from] SnapshotError),
    #[error("writing a received chunk to {path}: {source}")]
    Chunk {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What handling a `Ready` came to.
enum Handled {
    /// Done: step these inputs (chunks read for followers) after `advance`.
    Done(Vec<Input>),
    /// The Ready was abandoned and the core rebuilt from disk: there is nothing to advance.
    Rebuilt,
    /// The Ready installs a snapshot that is being loaded off the actor: it is finished (and
    /// advanced) when [`ConsensusMsg::SnapshotLoaded`] arrives.
    Loading,
}

impl Drop for ConsensusState {
    fn drop(&mut self) {
        // post_stop does not run after a failure; the timer must stop with the state regardless.
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
    }
}

/// Runs a blocking call (an fsync) on this task's thread, first telling a multi-threaded tokio
/// runtime to move its other tasks to another worker, so HTTP requests and cluster sessions keep
/// running while the consensus actor waits for the disk. (On a current-thread runtime, as in some
/// tests, it just runs the call.)
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Reads and removes the [`FAULT_CORRUPT_RECEIVED`] hook file.
fn take_fault_hook(dir: &std::path::Path) -> u32 {
    let path = dir.join(FAULT_CORRUPT_RECEIVED);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return 0;
    };
    let _ = std::fs::remove_file(&path);
    let n = text.trim().parse().unwrap_or(0);
    warn!(
        count = n,
        "fault injection active: received snapshots will be corrupted"
    );
    n
}

/// Milliseconds since the Unix epoch, as stamped on proposals and snapshots.
pub fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A snapshot's id: the first 8 bytes of its body hash (never 0, which means "no snapshot").
pub fn snapshot_id(body_blake3: &[u8; 32]) -> SnapshotId {
    Expected::id_of(body_blake3)
}

impl Actor for ConsensusActor {
    type Msg = ConsensusMsg;
    type State = ConsensusState;
    type Arguments = ConsensusArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<ConsensusMsg>,
        args: ConsensusArgs,
    ) -> Result<ConsensusState, ActorProcessingErr> {
        let (mut log, persisted) = LogStore::open(&args.dir.join("log"))?;
        let (snapshots, report) =
            SnapshotDir::open(args.dir.join("snapshots"), args.snapshots_kept)?;
        let restored = restore(
            args.raft.id,
            &mut log,
            persisted,
            &snapshots,
            &report,
            &args.bootstrap_voters,
        )?;
        let (persisted, snapshot_paths, horizon) = (
            restored.persisted,
            restored.snapshot_paths,
            restored.horizon,
        );
        *args.replica.write() = restored.replica;
        args.replica.notify_applied();
        let fault_corrupt_received = take_fault_hook(&args.dir);
        let raft = Raft::new(args.raft.clone(), persisted)?;
        info!(
            id = raft.id(),
            term = raft.term(),
            last = raft.last_index(),
            "consensus member started"
        );
        let ticker = myself.send_interval(args.tick, || ConsensusMsg::Tick);
        Ok(ConsensusState {
            raft,
            raft_cfg: args.raft.clone(),
            log,
            snapshots,
            snapshot_paths,
            replica: args.replica,
            transport: args.transport,
            flush_scheduled: false,
            proposals: BTreeMap::new(),
            queued: Vec::new(),
            last_leader: None,
            changes: BTreeMap::new(),
            read_requests: BTreeMap::new(),
            reads_waiting: Vec::new(),
            next_read_id: 1,
            log_syncs: 0,
            auto_promote: args.auto_promote,
            refusals: Refusals::default(),
            fault_corrupt_received,
            fault_transfer: None,
            horizon,
            corrupt_own_snapshot: restored.corrupt.map(|c| c.to_string()),
            installing: None,
            receiving: None,
            ticker: Some(ticker),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<ConsensusMsg>,
        msg: ConsensusMsg,
        st: &mut ConsensusState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            // A recovering node's election timer never runs: it must not campaign.
            ConsensusMsg::Tick if st.recovering()? => {}
            ConsensusMsg::Tick => {
                st.step(Input::Tick);
                st.promote_caught_up_learners();
            }
            ConsensusMsg::Peer(m) => {
                if matches!(m.body, MessageBody::InstallSnapshot { .. })
                    && st.refusals.backing_off()
                {
                    debug!(
                        from = m.from,
                        "snapshot chunk ignored: backing off after a refusal"
                    );
                } else if matches!(
                    m.body,
                    MessageBody::PreVote { .. }
                        | MessageBody::Vote { .. }
                        | MessageBody::TimeoutNow
                ) && st.recovering()?
                {
                    // Its log no longer vouches for what it acknowledged: it stays out of elections.
                    debug!(from = m.from, kind = m.body.kind(), "recovering: no vote");
                } else if let Err(e) = st.raft.step(Input::Message(m)) {
                    debug!(error = %e, "peer message refused");
                }
            }
            ConsensusMsg::Flush => {
                st.flush_scheduled = false;
                return st.flush(&myself);
            }
            ConsensusMsg::SnapshotLoaded { id, loaded } => {
                st.loaded(id, *loaded)?;
                st.flush(&myself)?;
            }
            ConsensusMsg::Propose { command, reply } => match st.raft.step(Input::Propose(command))
            {
                Ok(Stepped::Proposed { index, term }) => {
                    let now = Instant::now();
                    st.proposals.insert(index, (term, reply, now));
                    st.queued.push(now);
                }
                Ok(Stepped::Done) => {
                    let _ = reply.send(Err(ConsensusError::Refused("nothing proposed".into())));
                }
                Err(e) => {
                    let _ = reply.send(Err(e.into()));
                }
            },
            ConsensusMsg::ReadIndex { reply } => {
                let request_id = st.next_read_id;
                st.next_read_id += 1;
                match st.raft.step(Input::ReadIndex { request_id }) {
                    Ok(_) => {
                        st.read_requests.insert(request_id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
            ConsensusMsg::ChangeMembership { change, reply } => {
                match st.raft.step(Input::ProposeConfChange(change)) {
                    Ok(Stepped::Proposed { index, term }) => {
                        st.changes.insert(index, (term, reply));
                    }
                    Ok(Stepped::Done) => {
                        let _ = reply.send(Err(ConsensusError::Refused("nothing proposed".into())));
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
            ConsensusMsg::TransferLeadership { to, reply } => {
                let r = st.raft.step(Input::TransferLeadership { to });
                let _ = reply.send(r.map(|_| ()).map_err(Into::into));
            }
            ConsensusMsg::Campaign if st.recovering()? => {
                warn!("not campaigning: this node is rebuilding a log it lost")
            }
            ConsensusMsg::Campaign => st.step(Input::Campaign),
            ConsensusMsg::SnapshotTaken {
                index,
                path,
                id,
                size,
            } => match st.raft.step(Input::SnapshotTaken { index, id, size }) {
                Ok(_) => {
                    // The log store records it before older snapshot files go.
                    st.log.record_snapshot(st.raft.snapshot())?;
                    st.snapshot_paths.insert(id, path);
                    st.snapshots.prune()?;
                    st.snapshot_paths.retain(|_, p| p.exists());
                    info!(index, size, "snapshot taken");
                }
                Err(e) => warn!(error = %e, "snapshot not used"),
            },
            ConsensusMsg::Status(reply) => {
                let _ = reply.send(st.status());
            }
        }
        if !st.flush_scheduled && st.raft.has_ready() {
            st.flush_scheduled = true;
            myself.cast(ConsensusMsg::Flush)?;
        }
        Ok(())
    }
}

impl ConsensusState {
    /// Whether this node is still rebuilding a log it lost; clears the persisted horizon (once)
    /// when its applied index has reached it.
    fn recovering(&mut self) -> Result<bool, ActorProcessingErr> {
        let Some(horizon) = self.horizon else {
            return Ok(false);
        };
        let applied = self.replica.read().applied_index;
        if applied < horizon {
            return Ok(true);
        }
        self.log.clear_recovery_horizon()?;
        self.horizon = None;
        info!(
            applied,
            horizon, "recovered the log lost with a corrupt snapshot: voting again"
        );
        Ok(false)
    }

    fn step(&mut self, input: Input) {
        if let Err(e) = self.raft.step(input) {
            debug!(error = %e, "input refused");
        }
    }

    /// Raft thesis §4.2.1: a new server joins as a learner and becomes a voter only once it holds the
    /// log, so adding it never stalls commits. One change at a time: the core refuses a second one
    /// while the first is pending.
    fn promote_caught_up_learners(&mut self) {
        if !self.auto_promote || self.raft.role() != Role::Leader || !self.changes.is_empty() {
            return;
        }
        let commit = self.raft.commit_index();
        let ready: Vec<NodeId> = self
            .raft
            .membership()
            .learners
            .iter()
            .copied()
            .filter(|&l| self.raft.peer_match(l).is_some_and(|m| m >= commit))
            .collect();
        if let Some(&learner) = ready.first() {
            match self
                .raft
                .step(Input::ProposeConfChange(ConfChange::Promote(learner)))
            {
                Ok(_) => info!(learner, "promoting a caught-up learner to voter"),
                Err(e) => debug!(error = %e, learner, "promotion not proposed yet"),
            }
        }
    }

    fn status(&self) -> ConsensusStatus {
        let snap = self.raft.snapshot();
        ConsensusStatus {
            id: self.raft.id(),
            role: self.raft.role(),
            term: self.raft.term(),
            leader: self.raft.leader(),
            commit_index: self.raft.commit_index(),
            applied_index: self.replica.read().applied_index,
            snapshot_index: snap.index,
            snapshot_term: snap.term,
            membership: self.raft.membership().clone(),
            log: self.log.stats(),
            log_syncs: self.log_syncs,
            snapshot_transfers_refused: self.refusals.total,
            last_snapshot_refusal: self.refusals.last.clone(),
            recovery_horizon: self.horizon,
            corrupt_own_snapshot: self.corrupt_own_snapshot.clone(),
            peer_match: self.peer_match(),
        }
    }

    fn peer_match(&self) -> BTreeMap<NodeId, Index> {
        if self.raft.role() != Role::Leader {
            return BTreeMap::new();
        }
        let m = self.raft.membership();
        m.voters
            .iter()
            .chain(&m.learners)
            .filter(|&&p| p != self.raft.id())
            .filter_map(|&p| self.raft.peer_match(p).map(|i| (p, i)))
            .collect()
    }

    /// Handles every pending `Ready`, in the order the core requires.
    fn flush(&mut self, myself: &ActorRef<ConsensusMsg>) -> Result<(), ActorProcessingErr> {
        let now = Instant::now();
        for t in self.queued.drain(..) {
            TELEMETRY
                .proposal_queue
                .observe(secs(now.saturating_duration_since(t)));
        }
        let leader = self.raft.leader();
        if leader != self.last_leader {
            self.last_leader = leader;
            TELEMETRY.leader_changes.inc();
        }
        while self.installing.is_none() {
            let Some(ready) = self.raft.ready() else {
                break;
            };
            match self.handle_ready(ready, myself)? {
                Handled::Done(chunk_inputs) => {
                    self.raft.advance();
                    for input in chunk_inputs {
                        self.step(input);
                    }
                }
                Handled::Rebuilt | Handled::Loading => {}
            }
        }
        Ok(())
    }

    fn handle_ready(
        &mut self,
        mut ready: Ready,
        myself: &ActorRef<ConsensusMsg>,
    ) -> Result<Handled, ActorProcessingErr> {
        // 1. Incoming snapshot chunks, then installation. A transfer that fails is refused before
        //    anything of this Ready leaves or is persisted, so disk still holds the state from
        //    before it: the core is rebuilt from there, as a restart would, without the restart.
        if let Err(e) = self.write_chunks(&mut ready) {
            self.refuse_transfer(&ready, e)?;
            return Ok(Handled::Rebuilt);
        }
        if let Some(meta) = &ready.snapshot_install {
            // Checking and decoding a large snapshot takes seconds: off the actor, which keeps
            // answering meanwhile. The rest of this Ready waits for it (`loaded`).
            self.start_loading(meta, myself);
            self.installing = Some(ready);
            return Ok(Handled::Loading);
        }
        self.handle_rest(ready)
    }

    /// Steps 2 to 6 of a `Ready` (after its chunks and install).
    fn handle_rest(&mut self, ready: Ready) -> Result<Handled, ActorProcessingErr> {
        // 2. A leader's appends leave before its own fsync, which then overlaps its followers'.
        self.transport.send_all(ready.early_messages);
        // 3. Apply and answer: committed entries are durable on a majority already, so the
        //    proposers need not wait for this node's fsync below.
        if !ready.committed_entries.is_empty() {
            let started = Instant::now();
            self.apply(&ready.committed_entries);
            TELEMETRY.apply.observe(secs(started.elapsed()));
        }
        for rs in ready.read_states {
            let Some(reply) = self.read_requests.remove(&rs.request_id) else {
                continue;
            };
            match rs.result {
                ReadResult::Ready { index } => self.reads_waiting.push((index, reply)),
                ReadResult::Aborted { leader } => {
                    let _ = reply.send(Err(ConsensusError::NotLeader { leader }));
                }
            }
        }
        self.serve_reads();
        // 4. Entries and hard state: one fsync, unless only the commit index moved.
        if !ready.entries.is_empty() || ready.hard_state.is_some() {
            let (log, entries, hs) = (&mut self.log, &ready.entries, ready.hard_state.as_ref());
            let started = Instant::now();
            blocking(|| log.append(entries, hs, ready.must_sync))?;
            if ready.must_sync {
                self.log_syncs += 1;
                TELEMETRY.log_fsync.observe(secs(started.elapsed()));
            }
        }
        // 5. Only now may votes and acknowledgements leave.
        self.transport.send_all(ready.messages);
        // 6. Snapshot chunks to read for lagging followers; log compaction.
        let inputs = ready
            .snapshot_reads
            .iter()
            .map(|r| self.read_chunk(r))
            .collect();
        if let Some(to) = ready.compact_log_to {
            self.log.compact(to)?;
            // The core dropped the compacted entries in this step; make their memory leave RSS.
            tokio::task::spawn_blocking(super::memory::release_freed_heap);
        }
        Ok(Handled::Done(inputs))
    }

    fn apply(&mut self, entries: &[Entry]) {
        let mut replica = self.replica.write();
        for e in entries {
            // A core rebuilt from disk hands out again what the replica already holds (committed
            // entries never change): skipping them keeps the replica from going back in time.
            if e.index <= replica.applied_index {
                continue;
            }
            let outcome = match &e.payload {
                Payload::Normal(bytes) => Some(replica.state.apply_bytes(e.index, bytes)),
                Payload::Noop => None,
                Payload::Config { membership, .. } => {
                    replica.membership = membership.clone();
                    None
                }
            };
            replica.applied_index = e.index;
            replica.applied_term = e.term;
            if let Some((term, reply, proposed)) = self.proposals.remove(&e.index) {
                let r = match outcome {
                    Some(outcome) if term == e.term => Ok(Applied {
                        index: e.index,
                        term,
                        outcome,
                    }),
                    _ => Err(ConsensusError::Dropped),
                };
                if r.is_ok() {
                    TELEMETRY.commit.observe(secs(proposed.elapsed()));
                }
                let _ = reply.send(r);
            }
            if let Some((term, reply)) = self.changes.remove(&e.index) {
                let ok = term == e.term && matches!(e.payload, Payload::Config { .. });
                let _ = reply.send(if ok {
                    Ok(e.index)
                } else {
                    Err(ConsensusError::Dropped)
                });
            }
        }
        drop(replica);
        self.replica.notify_applied();
        // A proposal whose index was overwritten by a shorter log never comes back: fail those
        // below the applied index that are still waiting.
        let applied = self.replica.read().applied_index;
        let stale: Vec<Index> = self.proposals.range(..=applied).map(|(i, _)| *i).collect();
        for i in stale {
            if let Some((_, reply, _)) = self.proposals.remove(&i) {
                let _ = reply.send(Err(ConsensusError::Dropped));
            }
        }
    }

    fn serve_reads(&mut self) {
        let applied = self.replica.read().applied_index;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads_waiting)
            .into_iter()
            .partition(|(index, _)| *index <= applied);
        self.reads_waiting = waiting;
        for (index, reply) in ready {
            let _ = reply.send(Ok(index));
        }
    }

    fn read_chunk(&self, r: &ChunkRead) -> Input {
        let data = self.snapshot_paths.get(&r.snapshot_id).and_then(|path| {
            crate::snapshot::read_chunk(path, r.offset, r.len)
                .map_err(|e| warn!(error = %e, "cannot read snapshot chunk"))
                .ok()
        });
        r.answer(data)
    }

    /// Writes the chunks of this Ready (no fsync: a partial transfer never survives a restart,
    /// and the complete file is fsynced before it is installed). Nothing of the node's state
    /// changes here.
    fn write_chunks(&mut self, ready: &mut Ready) -> Result<(), TransferError> {
        for w in &mut ready.snapshot_writes {
            if w.offset == 0 {
                self.receiving = Some((w.snapshot_id, Instant::now()));
            }
            if w.offset == 0 && self.fault_corrupt_received > 0 && !w.data.is_empty() {
                self.fault_transfer = Some(w.snapshot_id);
                let at = w.data.len() / 2;
                w.data[at] ^= 0x01;
                warn!(
                    snapshot = w.snapshot_id,
                    "fault injection: flipped a byte of a received snapshot"
                );
            }
            self.snapshots
                .write_chunk(w.snapshot_id, w.offset, &w.data)
                .map_err(|source| TransferError::Chunk {
                    path: self.snapshots.partial_path_for(w.snapshot_id),
                    source,
                })?;
        }
        Ok(())
    }

    /// Starts checking and decoding the received snapshot `meta` on a blocking thread, which
    /// answers with [`ConsensusMsg::SnapshotLoaded`]. The thread reads (and fsyncs) the partial
    /// file only; moving it into place is left to the actor (`loaded`), so a task that outlives
    /// its actor (a supervisor restart removes `*.partial` files) changes nothing.
    fn start_loading(&mut self, meta: &SnapshotMeta, myself: &ActorRef<ConsensusMsg>) {
        if self.fault_transfer.take() == Some(meta.id) {
            self.fault_corrupt_received = self.fault_corrupt_received.saturating_sub(1);
        }
        let partial = self.snapshots.partial_path_for(meta.id);
        let expect = Expected {
            index: meta.index,
            term: meta.term,
            size: meta.size,
            id: meta.id,
        };
        if let Some((_, first)) = self.receiving.take_if(|(id, _)| *id == meta.id) {
            TELEMETRY.snapshot_receive.observe(secs(first.elapsed()));
        }
        let (id, me) = (meta.id, myself.clone());
        info!(
            snapshot = id,
            index = meta.index,
            size = meta.size,
            "received a snapshot from the leader; checking and loading it"
        );
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let loaded = read_received_registry(&partial, &expect);
            TELEMETRY.snapshot_load.observe(secs(started.elapsed()));
            info!(
                snapshot = id,
                ok = loaded.is_ok(),
                ms = started.elapsed().as_millis() as u64,
                "received snapshot checked and decoded"
            );
            // The actor may be gone (stopped or restarted): then nobody waits for this.
            let _ = me.cast(ConsensusMsg::SnapshotLoaded {
                id,
                loaded: Box::new(loaded),
            });
        });
    }

    /// The received snapshot `id` was checked and decoded: moves it into place, installs it and
    /// finishes the `Ready` that waited for it; or refuses the transfer.
    fn loaded(
        &mut self,
        id: SnapshotId,
        loaded: Result<(SnapshotHeader, RegistryState), SnapshotError>,
    ) -> Result<(), ActorProcessingErr> {
        let Some(ready) = self
            .installing
            .take_if(|r| r.snapshot_install.as_ref().map(|m| m.id) == Some(id))
        else {
            debug!(snapshot = id, "a loaded snapshot nobody waits for: ignored");
            return Ok(());
        };
        let install_started = Instant::now();
        let placed = loaded
            .map_err(TransferError::from)
            .and_then(|(header, state)| {
                let partial = self.snapshots.partial_path_for(id);
                let snapshots = &self.snapshots;
                let info = blocking(|| snapshots.place_received(&partial, header))?;
                Ok((info, state))
            });
        match placed {
            Ok((info, state)) => {
                self.install_snapshot(&ready, info, state)?;
                TELEMETRY
                    .snapshot_install
                    .observe(secs(install_started.elapsed()));
                if let Handled::Done(chunk_inputs) = self.handle_rest(ready)? {
                    self.raft.advance();
                    for input in chunk_inputs {
                        self.step(input);
                    }
                }
            }
            Err(e) => self.refuse_transfer(&ready, e)?,
        }
        Ok(())
    }

    /// A checked snapshot received from the leader becomes this node's state: loaded into the
    /// replica, and the log replaced.
    fn install_snapshot(
        &mut self,
        ready: &Ready,
        info: SnapshotInfo,
        state: RegistryState,
    ) -> Result<(), ActorProcessingErr> {
        let Some(meta) = &ready.snapshot_install else {
            return Ok(());
        };
        let old = {
            let mut replica = self.replica.write();
            replica.applied_index = info.header.last_included_index;
            replica.applied_term = info.header.last_included_term;
            replica.membership = meta.membership.clone();
            std::mem::replace(&mut replica.state, state)
        };
        self.replica.notify_applied();
        // Freeing a large replaced state takes a while: neither under the lock nor on the actor.
        tokio::task::spawn_blocking(move || drop(old));
        self.log.install_snapshot(meta)?;
        self.snapshots.prune()?;
        self.snapshot_paths.insert(meta.id, info.path);
        self.snapshot_paths.retain(|_, p| p.exists());
        self.refusals.in_a_row = 0;
        info!(
            index = meta.index,
            term = meta.term,
            "installed a snapshot from the leader"
        );
        Ok(())
    }

    /// Drops a failed transfer: counts and logs it, removes what was received, rebuilds the core
    /// from disk (this Ready persisted and sent nothing, so the core forgets the transfer as if the
    /// node had restarted) and ignores the leader's chunks for a while. The leader, hearing
    /// nothing, sends again from the start once its transfer has been idle for an election timeout.
    fn refuse_transfer(
        &mut self,
        ready: &Ready,
        e: TransferError,
    ) -> Result<(), ActorProcessingErr> {
        let wait = self.refusals.refused(e.to_string());
        warn!(
            error = %e,
            snapshot = ready.snapshot_install.as_ref().map(|m| m.id),
            refused = self.refusals.total,
            retry_in_ms = wait.as_millis() as u64,
            "refused a snapshot from the leader; it will be asked for again"
        );
        self.snapshots.remove_partials()?;
        let persisted = self.log.read_back()?;
        self.raft = Raft::new(self.raft_cfg.clone(), persisted)?;
        self.snapshot_paths.retain(|_, p| p.exists());
        // Whatever the old core had accepted is gone with it.
        let gone = || ConsensusError::Refused("the consensus core was rebuilt from disk".into());
        for (_, (_, reply, _)) in std::mem::take(&mut self.proposals) {
            let _ = reply.send(Err(gone()));
        }
        for (_, (_, reply)) in std::mem::take(&mut self.changes) {
            let _ = reply.send(Err(gone()));
        }
        for (_, reply) in std::mem::take(&mut self.read_requests) {
            let _ = reply.send(Err(gone()));
        }
        Ok(())
    }
}
