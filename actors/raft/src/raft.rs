//! The protocol: one state machine, one entry point ([`Raft::step`]), effects handed out in a
//! [`Ready`] and acknowledged with [`Raft::advance`].

use std::collections::{BTreeMap, VecDeque};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracing::{debug, trace};

use crate::bugs::Bug;
use crate::error::{InitError, StepError};
use crate::io::{
    ChunkRead, ChunkWrite, Config, Input, PersistedState, ReadResult, ReadState, Ready, Stepped,
};
use crate::log::RaftLog;
use crate::message::{AppendResult, Message, MessageBody, SnapshotResult};
use crate::progress::{Progress, ProgressState, SnapshotTransfer};
use crate::types::{
    ConfChange, Entry, HardState, Index, MAX_INDEX, MAX_TERM, Membership, NodeId, Payload, Role,
    SnapshotId, SnapshotMeta, Term,
};

/// A read waiting for a heartbeat round to confirm the leadership it was taken under.
#[derive(Clone, Debug)]
struct PendingRead {
    request_id: u64,
    index: Index,
    round: u64,
}

/// A snapshot being received from the leader.
#[derive(Clone, Debug)]
struct IncomingSnapshot {
    meta: SnapshotMeta,
    leader: NodeId,
    term: Term,
    received: u64,
}

#[derive(Clone, Debug)]
struct Transfer {
    to: NodeId,
    elapsed: u32,
}

/// What a handed-out `Ready` promised, settled by `advance`.
#[derive(Clone, Debug)]
struct ReadyMark {
    last_entry: Option<(Index, Term)>,
    hard_state: Option<HardState>,
    applied_to: Option<Index>,
}

/// One Raft node's consensus state. Deterministic: the same inputs produce the same outputs.
#[derive(Debug)]
pub struct Raft {
    cfg: Config,
    term: Term,
    vote: Option<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    log: RaftLog,
    /// The latest snapshot this node holds.
    snapshot: SnapshotMeta,
    membership: Membership,
    /// Index of the entry (or snapshot) the membership comes from.
    membership_index: Index,

    election_elapsed: u32,
    heartbeat_elapsed: u32,
    randomized_timeout: u32,
    rng: ChaCha8Rng,

    votes: BTreeMap<NodeId, bool>,
    progress: BTreeMap<NodeId, Progress>,
    transfer: Option<Transfer>,
    read_round: u64,
    read_acks: BTreeMap<NodeId, u64>,
    pending_reads: VecDeque<PendingRead>,
    reads_awaiting_term_commit: Vec<u64>,
    incoming: Option<IncomingSnapshot>,

    // Effects accumulated for the next Ready.
    msgs: Vec<Message>,
    chunk_writes: Vec<ChunkWrite>,
    chunk_reads: Vec<ChunkRead>,
    install: Option<SnapshotMeta>,
    read_states: Vec<ReadState>,
    compact_to: Option<Index>,
    persisted_hs: HardState,
    outstanding: Option<ReadyMark>,
}

impl Raft {
    /// Build a node from its configuration and what it persisted (see [`PersistedState`]).
    pub fn new(cfg: Config, state: PersistedState) -> Result<Raft, InitError> {
        cfg.validate()?;
        let PersistedState {
            hard_state,
            snapshot,
            mut entries,
        } = state;
        let p = InitError::Persisted;
        if hard_state.term > MAX_TERM {
            return Err(p("term beyond the highest usable term"));
        }
        if snapshot.index > MAX_INDEX || entries.iter().any(|e| e.index > MAX_INDEX) {
            return Err(p("index beyond the highest usable index"));
        }
        for pair in entries.windows(2) {
            if Some(pair[1].index) != pair[0].index.checked_add(1) {
                return Err(p("log entries are not contiguous"));
            }
            if pair[1].term < pair[0].term {
                return Err(p("log terms decrease"));
            }
        }
        if let Some(first) = entries.first()
            && (first.index == 0 || first.index > snapshot.index.saturating_add(1))
        {
            return Err(p("log starts after the snapshot's next index"));
        }
        if entries.last().is_some_and(|e| e.term > hard_state.term)
            || snapshot.term > hard_state.term
        {
            return Err(p("log or snapshot term beyond the persisted term"));
        }
        // A snapshot installed over a log it does not match (or that ends before it) supersedes it.
        if entries
            .iter()
            .any(|e| e.index == snapshot.index && e.term != snapshot.term)
            || entries.last().is_some_and(|e| e.index < snapshot.index)
        {
            entries.clear();
        }
        let (offset, offset_term) = match entries.first() {
            Some(first) if first.index <= snapshot.index => (first.index, first.term),
            _ => (snapshot.index, snapshot.term),
        };
        entries.retain(|e| e.index > offset);
        let mut log = RaftLog::restore(offset, offset_term, entries);
        log.commit = hard_state.commit.clamp(snapshot.index, log.last_index());
        log.applied = snapshot.index;
        log.applied_handed = snapshot.index;

        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let randomized_timeout = rng.random_range(cfg.election_ticks..2 * cfg.election_ticks);
        let mut raft = Raft {
            term: hard_state.term,
            vote: hard_state.vote,
            role: Role::Follower,
            leader: None,
            membership: snapshot.membership.clone(),
            membership_index: snapshot.index,
            snapshot,
            log,
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_timeout,
            rng,
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            transfer: None,
            read_round: 0,
            read_acks: BTreeMap::new(),
            pending_reads: VecDeque::new(),
            reads_awaiting_term_commit: Vec::new(),
            incoming: None,
            msgs: Vec::new(),
            chunk_writes: Vec::new(),
            chunk_reads: Vec::new(),
            install: None,
            read_states: Vec::new(),
            compact_to: None,
            persisted_hs: HardState {
                term: hard_state.term,
                vote: hard_state.vote,
                commit: hard_state.commit,
            },
            outstanding: None,
            cfg,
        };
        raft.refresh_membership();
        raft.check_invariants();
        Ok(raft)
    }

    /// Whether this node runs with the injected `bug` (test builds only; see [`Bug`]).
    #[cfg(feature = "sim")]
    fn bug(&self, bug: Bug) -> bool {
        self.cfg.bug == Some(bug)
    }

    /// A node build has no injected bugs: always `false`, and the branches behind it compile away.
    #[cfg(not(feature = "sim"))]
    #[inline(always)]
    fn bug(&self, _bug: Bug) -> bool {
        false
    }

    /// The hard state the next write persists. Bug `VoteNotPersisted`: without the vote.
    fn hard_state_to_write(&self) -> HardState {
        let mut hs = self.hard_state();
        if self.bug(Bug::VoteNotPersisted) {
            hs.vote = None;
        }
        hs
    }

    // ----- accessors -------------------------------------------------------------------------

    pub fn id(&self) -> NodeId {
        self.cfg.id
    }
    pub fn term(&self) -> Term {
        self.term
    }
    pub fn vote(&self) -> Option<NodeId> {
        self.vote
    }
    pub fn role(&self) -> Role {
        self.role
    }
    /// The leader of the current term, if known.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    pub fn commit_index(&self) -> Index {
        self.log.commit
    }
    /// Highest index the driver confirmed applied (through `advance`).
    pub fn applied_index(&self) -> Index {
        self.log.applied
    }
    pub fn last_index(&self) -> Index {
        self.log.last_index()
    }
    pub fn last_term(&self) -> Term {
        self.log.last_term()
    }
    /// The first index still in the in-memory log.
    pub fn first_index(&self) -> Index {
        self.log.first_index()
    }
    /// The term of the entry at `index`, if still in the log (or at the compaction point).
    pub fn term_at(&self, index: Index) -> Option<Term> {
        self.log.term(index)
    }
    /// The in-memory log, from [`Raft::first_index`] on.
    pub fn entries(&self) -> &[Entry] {
        self.log.entries()
    }
    pub fn membership(&self) -> &Membership {
        &self.membership
    }
    /// The latest snapshot this node holds (index 0 before any).
    pub fn snapshot(&self) -> &SnapshotMeta {
        &self.snapshot
    }
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.commit,
        }
    }
    /// The target of a leadership transfer in progress.
    pub fn transferring_to(&self) -> Option<NodeId> {
        self.transfer.as_ref().map(|t| t.to)
    }
    /// A peer's acknowledged match index, as this leader knows it.
    pub fn peer_match(&self, peer: NodeId) -> Option<Index> {
        self.progress.get(&peer).map(|p| p.match_index)
    }

    // ----- the entry point -------------------------------------------------------------------

    /// Feed one input. Never panics on any input; a refused input leaves the node unchanged apart
    /// from replies it may owe (a stale leader is told the newer term, for example).
    pub fn step(&mut self, input: Input) -> Result<Stepped, StepError> {
        let result = match input {
            Input::Tick => {
                self.tick();
                Ok(Stepped::Done)
            }
            Input::Message(m) => self.step_message(m).map(|()| Stepped::Done),
            Input::Propose(data) => self.propose(Payload::Normal(data)),
            Input::ProposeConfChange(change) => self.propose_conf_change(change),
            Input::ReadIndex { request_id } => self.read_index(request_id).map(|()| Stepped::Done),
            Input::TransferLeadership { to } => {
                self.transfer_leadership(to).map(|()| Stepped::Done)
            }
            Input::Campaign => {
                if !self.promotable() {
                    Err(StepError::NotVoter(self.cfg.id))
                } else if self.role == Role::Leader {
                    Ok(Stepped::Done)
                } else if !self.can_campaign() {
                    Err(StepError::Unexpected(
                        "term or index space exhausted: cannot campaign",
                    ))
                } else {
                    self.campaign(false);
                    Ok(Stepped::Done)
                }
            }
            Input::SnapshotTaken { index, id, size } => {
                self.snapshot_taken(index, id, size).map(|()| Stepped::Done)
            }
            Input::SnapshotChunk {
                to,
                snapshot_id,
                offset,
                data,
            } => self
                .snapshot_chunk_read(to, snapshot_id, offset, data)
                .map(|()| Stepped::Done),
            Input::SnapshotUnavailable { to, snapshot_id } => self
                .snapshot_unavailable(to, snapshot_id)
                .map(|()| Stepped::Done),
        };
        self.check_invariants();
        result
    }

    /// Whether [`Raft::ready`] would return something.
    pub fn has_ready(&self) -> bool {
        self.outstanding.is_none()
            && (!self.msgs.is_empty()
                || self.log.unstable_from <= self.log.last_index()
                || self.hard_state_to_write() != self.persisted_hs
                || self.log.commit.min(self.log.last_index()) > self.log.applied_handed
                || !self.chunk_writes.is_empty()
                || !self.chunk_reads.is_empty()
                || self.install.is_some()
                || !self.read_states.is_empty()
                || self.compact_to.is_some())
    }

    /// Take the pending effects. `None` when there are none, or when the previous `Ready` has not been
    /// acknowledged with [`Raft::advance`] yet (one is outstanding at a time; steps in between are
    /// fine).
    pub fn ready(&mut self) -> Option<Ready> {
        if !self.has_ready() {
            return None;
        }
        let entries = self.log.take_unstable();
        let hs = self.hard_state_to_write();
        let hard_state = (hs != self.persisted_hs).then_some(hs);
        let must_sync = !entries.is_empty()
            || hs.term != self.persisted_hs.term
            || hs.vote != self.persisted_hs.vote;
        let committed_entries = self.log.take_committed();
        self.outstanding = Some(ReadyMark {
            last_entry: entries.last().map(|e| (e.index, e.term)),
            hard_state,
            applied_to: committed_entries.last().map(|e| e.index),
        });
        // A leader-only message of a term at or below the durable one can go before the write
        // (see `Ready::early_messages`); a new leader's first messages, votes and every
        // acknowledgement wait for it.
        let durable_term = self.persisted_hs.term;
        let ack_early = self.bug(Bug::AckBeforeDurable);
        let (early_messages, messages) =
            std::mem::take(&mut self.msgs).into_iter().partition(|m| {
                m.body.is_from_leader() && m.term <= durable_term
                    || ack_early && matches!(m.body, MessageBody::AppendResponse(_))
            });
        Some(Ready {
            snapshot_writes: std::mem::take(&mut self.chunk_writes),
            snapshot_install: self.install.take(),
            entries,
            hard_state,
            early_messages,
            messages,
            must_sync,
            committed_entries,
            read_states: std::mem::take(&mut self.read_states),
            snapshot_reads: std::mem::take(&mut self.chunk_reads),
            compact_log_to: self.compact_to.take(),
        })
    }

    /// The driver finished handling the last `Ready`: its entries and hard state are durable and its
    /// committed entries applied.
    pub fn advance(&mut self) {
        let Some(mark) = self.outstanding.take() else {
            return;
        };
        if let Some((index, term)) = mark.last_entry {
            self.log.persisted_to(index, term);
        }
        if let Some(hs) = mark.hard_state {
            self.persisted_hs = hs;
        }
        if let Some(applied) = mark.applied_to {
            self.log.applied = self.log.applied.max(applied.min(self.log.applied_handed));
        }
        if self.role == Role::Leader {
            // The leader's own write counts toward the majority only once durable.
            if self.maybe_commit() {
                self.broadcast_append(true);
            }
        }
        self.check_invariants();
    }

    // ----- time ------------------------------------------------------------------------------

    fn tick(&mut self) {
        match self.role {
            Role::Leader => self.tick_leader(),
            _ => {
                self.election_elapsed = self.election_elapsed.saturating_add(1);
                if self.election_elapsed >= self.randomized_timeout
                    && self.promotable()
                    && self.can_campaign()
                {
                    self.election_elapsed = 0;
                    self.campaign(false);
                }
            }
        }
    }

    fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if let Some(t) = &mut self.transfer {
            t.elapsed += 1;
            if t.elapsed >= self.cfg.election_ticks {
                debug!(id = self.cfg.id, to = t.to, "leadership transfer timed out");
                self.transfer = None;
            }
        }
        if self.election_elapsed >= self.cfg.election_ticks {
            self.election_elapsed = 0;
            if self.cfg.check_quorum && !self.quorum_active() {
                debug!(
                    id = self.cfg.id,
                    term = self.term,
                    "check-quorum failed; stepping down"
                );
                self.become_follower(self.term, None);
                return;
            }
            for pr in self.progress.values_mut() {
                pr.recent_active = false;
            }
        }
        let mut resend = Vec::new();
        for (&id, pr) in &mut self.progress {
            if let ProgressState::Snapshot(t) = &mut pr.state {
                t.idle_ticks += 1;
                if t.idle_ticks >= self.cfg.election_ticks {
                    // Whatever was in flight is presumed lost: send again from the first byte
                    // the follower has not confirmed.
                    t.idle_ticks = 0;
                    t.next = t.acked;
                    resend.push(id);
                }
            }
        }
        for to in resend {
            self.fill_snapshot_window(to);
        }
        if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            self.broadcast_heartbeat();
        }
    }

    fn quorum_active(&self) -> bool {
        let active = self
            .membership
            .voters
            .iter()
            .filter(|&&v| {
                v == self.cfg.id || self.progress.get(&v).is_some_and(|p| p.recent_active)
            })
            .count();
        active >= self.membership.quorum()
    }

    // ----- roles -----------------------------------------------------------------------------

    fn promotable(&self) -> bool {
        self.membership.is_voter(self.cfg.id)
    }

    fn reset(&mut self, term: Term) {
        if term != self.term {
            self.term = term;
            self.vote = None;
        }
        self.leader = None;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.randomized_timeout = self
            .rng
            .random_range(self.cfg.election_ticks..2 * self.cfg.election_ticks);
        self.votes.clear();
        self.transfer = None;
        self.read_acks.clear();
        let leader = None;
        for read in std::mem::take(&mut self.pending_reads) {
            self.read_states.push(ReadState {
                request_id: read.request_id,
                result: ReadResult::Aborted { leader },
            });
        }
        for request_id in std::mem::take(&mut self.reads_awaiting_term_commit) {
            self.read_states.push(ReadState {
                request_id,
                result: ReadResult::Aborted { leader },
            });
        }
    }

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        let was = self.role;
        self.reset(term);
        self.role = Role::Follower;
        self.leader = leader;
        self.progress.clear();
        if was != Role::Follower {
            debug!(id = self.cfg.id, term, ?leader, "became follower");
        }
    }

    /// Whether a campaign fits the term and index space: the next term is at most [`MAX_TERM`]
    /// and a leader would have room for its no-op at most at [`MAX_INDEX`]. Only a node fed
    /// forged or corrupt terms or indexes gets near either limit.
    fn can_campaign(&self) -> bool {
        self.term < MAX_TERM && self.log.last_index() < MAX_INDEX
    }

    fn campaign(&mut self, transfer: bool) {
        debug_assert!(
            self.can_campaign(),
            "campaign without room for the next term"
        );
        if self.cfg.pre_vote && !transfer {
            self.become_pre_candidate();
        } else {
            self.become_candidate(transfer);
        }
    }

    fn become_pre_candidate(&mut self) {
        // The term stays; only the votes and the leader are forgotten.
        let term = self.term;
        let vote = self.vote;
        self.reset(term);
        self.vote = vote;
        self.role = Role::PreCandidate;
        self.progress.clear();
        debug!(id = self.cfg.id, term, "became pre-candidate");
        self.votes.insert(self.cfg.id, true);
        if self.won_election() {
            self.become_candidate(false);
            return;
        }
        let Some(next_term) = self.term.checked_add(1).filter(|&t| t <= MAX_TERM) else {
            self.become_follower(term, None);
            return;
        };
        let body = MessageBody::PreVote {
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
        };
        self.send_to_voters(next_term, body);
    }

    fn become_candidate(&mut self, transfer: bool) {
        let Some(term) = self.term.checked_add(1).filter(|&t| t <= MAX_TERM) else {
            self.become_follower(self.term, None);
            return;
        };
        self.reset(term);
        self.role = Role::Candidate;
        self.vote = Some(self.cfg.id);
        self.progress.clear();
        debug!(id = self.cfg.id, term, "became candidate");
        self.votes.insert(self.cfg.id, true);
        if self.won_election() {
            self.become_leader();
            return;
        }
        let body = MessageBody::Vote {
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
            transfer,
        };
        self.send_to_voters(term, body);
    }

    fn send_to_voters(&mut self, term: Term, body: MessageBody) {
        let voters: Vec<NodeId> = self
            .membership
            .voters
            .iter()
            .copied()
            .filter(|&v| v != self.cfg.id)
            .collect();
        for to in voters {
            self.send(to, term, body.clone());
        }
    }

    fn won_election(&self) -> bool {
        let granted = self
            .membership
            .voters
            .iter()
            .filter(|v| self.votes.get(v) == Some(&true))
            .count();
        granted >= self.membership.quorum()
    }

    fn lost_election(&self) -> bool {
        let rejected = self
            .membership
            .voters
            .iter()
            .filter(|v| self.votes.get(v) == Some(&false))
            .count();
        self.membership.voters.len() - rejected < self.membership.quorum()
    }

    fn become_leader(&mut self) {
        let term = self.term;
        // `can_campaign` left room for the no-op; a candidate's log does not grow (an append of its
        // term makes it a follower first).
        let Some(index) = self.next_log_index() else {
            self.become_follower(term, None);
            return;
        };
        self.reset(term);
        self.role = Role::Leader;
        self.leader = Some(self.cfg.id);
        debug!(id = self.cfg.id, term, "became leader");
        self.rebuild_progress();
        // A no-op of the new term, so earlier-term entries commit through it (§5.4.2, §8).
        self.log.append(Entry {
            term,
            index,
            payload: Payload::Noop,
        });
        self.broadcast_append(false);
    }

    /// The index a new entry of this node would take, if the index space has room for it.
    fn next_log_index(&self) -> Option<Index> {
        self.log
            .last_index()
            .checked_add(1)
            .filter(|&i| i <= MAX_INDEX)
    }

    fn rebuild_progress(&mut self) {
        let next = self.log.last_index() + 1;
        let me = self.cfg.id;
        let members: Vec<NodeId> = self.membership.members().filter(|&m| m != me).collect();
        self.progress.retain(|id, _| members.contains(id));
        for id in members {
            self.progress
                .entry(id)
                .or_insert_with(|| Progress::new(next));
        }
    }

    // ----- messages --------------------------------------------------------------------------

    fn send(&mut self, to: NodeId, term: Term, body: MessageBody) {
        trace!(from = self.cfg.id, to, term, kind = body.kind(), "send");
        self.msgs.push(Message {
            from: self.cfg.id,
            to,
            term,
            body,
        });
    }

    fn in_lease(&self) -> bool {
        self.cfg.check_quorum
            && self.leader.is_some()
            && self.election_elapsed < self.cfg.election_ticks
    }

    fn step_message(&mut self, m: Message) -> Result<(), StepError> {
        if m.to != self.cfg.id {
            return Err(StepError::WrongRecipient {
                to: m.to,
                me: self.cfg.id,
            });
        }
        if m.from == self.cfg.id || m.from == 0 {
            return Err(StepError::Malformed("sender is this node or id 0"));
        }
        if m.term == 0 {
            return Err(StepError::Malformed("term 0"));
        }
        if m.term > MAX_TERM {
            // It could never be incremented: a node at that term could not campaign again.
            return Err(StepError::Malformed("term beyond the highest usable term"));
        }
        // The message's own shape, before it can change anything (a malformed message of a newer
        // term must not raise this node's term).
        validate_message(&m)?;
        if m.term > self.term {
            match &m.body {
                MessageBody::PreVote { .. }
                | MessageBody::Vote {
                    transfer: false, ..
                } if self.in_lease() => {
                    return Err(StepError::InLease);
                }
                _ => {}
            }
            match &m.body {
                MessageBody::PreVote { .. } => {}
                MessageBody::PreVoteResponse { granted: true } => {}
                body if self.role == Role::Leader
                    && !body.is_from_leader()
                    && self.bug(Bug::LeaderKeepsLeading) =>
                {
                    // The bug: adopt the newer term, forget the vote, and go on leading in it.
                    self.term = m.term;
                    self.vote = None;
                }
                body => {
                    let leader = body.is_from_leader().then_some(m.from);
                    debug!(
                        id = self.cfg.id,
                        term = m.term,
                        from = m.from,
                        kind = body.kind(),
                        "newer term"
                    );
                    self.become_follower(m.term, leader);
                }
            }
        } else if m.term < self.term {
            if let MessageBody::VoteResponse { granted: true } = m.body
                && self.role == Role::Candidate
                && self.bug(Bug::CountStaleVotes)
            {
                // The bug: a grant from an earlier campaign counts in this one.
                self.record_vote(m.from, true);
                return Ok(());
            }
            match &m.body {
                MessageBody::Append { .. }
                | MessageBody::Heartbeat { .. }
                | MessageBody::InstallSnapshot { .. }
                    if self.cfg.check_quorum || self.cfg.pre_vote =>
                {
                    // Tell a stale leader about the newer term, or it would stay leader of a minority.
                    self.send(
                        m.from,
                        self.term,
                        MessageBody::HeartbeatResponse { read_round: 0 },
                    );
                }
                MessageBody::PreVote { .. } => {
                    self.send(
                        m.from,
                        self.term,
                        MessageBody::PreVoteResponse { granted: false },
                    );
                }
                _ => {}
            }
            return Err(StepError::StaleTerm {
                message: m.term,
                current: self.term,
            });
        }

        match m.body {
            MessageBody::PreVote {
                last_log_index,
                last_log_term,
            } => {
                self.handle_vote_request(m.from, m.term, true, last_log_index, last_log_term);
                Ok(())
            }
            MessageBody::Vote {
                last_log_index,
                last_log_term,
                ..
            } => {
                self.handle_vote_request(m.from, m.term, false, last_log_index, last_log_term);
                Ok(())
            }
            MessageBody::PreVoteResponse { granted } => {
                if self.role != Role::PreCandidate || m.term != self.term + 1 && granted {
                    return Err(StepError::Unexpected(
                        "pre-vote response outside a pre-campaign",
                    ));
                }
                self.record_vote(m.from, granted);
                Ok(())
            }
            MessageBody::VoteResponse { granted } => {
                if self.role != Role::Candidate {
                    return Err(StepError::Unexpected("vote response outside a campaign"));
                }
                self.record_vote(m.from, granted);
                Ok(())
            }
            MessageBody::Append {
                prev_index,
                prev_term,
                entries,
                commit,
            } => {
                self.follow(m.from)?;
                self.handle_append(m.from, prev_index, prev_term, entries, commit)
            }
            MessageBody::Heartbeat { commit, read_round } => {
                self.follow(m.from)?;
                let commit = commit.min(self.log.last_index());
                self.commit_to(commit);
                self.send(
                    m.from,
                    self.term,
                    MessageBody::HeartbeatResponse { read_round },
                );
                Ok(())
            }
            MessageBody::InstallSnapshot {
                meta,
                offset,
                data,
                done,
            } => {
                self.follow(m.from)?;
                self.handle_snapshot_chunk(m.from, meta, offset, data, done)
            }
            MessageBody::TimeoutNow => {
                if self.role == Role::Leader {
                    return Err(StepError::Unexpected("TimeoutNow at a leader"));
                }
                if self.leader.is_some_and(|l| l != m.from) {
                    return Err(StepError::Unexpected(
                        "TimeoutNow from a node that is not this term's leader",
                    ));
                }
                if !self.promotable() {
                    return Err(StepError::NotVoter(self.cfg.id));
                }
                if !self.can_campaign() {
                    return Err(StepError::Unexpected(
                        "term or index space exhausted: cannot campaign",
                    ));
                }
                debug!(
                    id = self.cfg.id,
                    term = self.term,
                    "leadership transferred here; campaigning"
                );
                self.campaign(true);
                Ok(())
            }
            MessageBody::AppendResponse(result) => {
                self.leader_peer(m.from)?;
                self.handle_append_response(m.from, result)
            }
            MessageBody::HeartbeatResponse { read_round } => {
                self.leader_peer(m.from)?;
                self.handle_heartbeat_response(m.from, read_round);
                Ok(())
            }
            MessageBody::InstallSnapshotResponse {
                snapshot_id,
                result,
            } => {
                self.leader_peer(m.from)?;
                self.handle_snapshot_response(m.from, snapshot_id, result)
            }
        }
    }

    /// A leader's message of the current term: follow it.
    fn follow(&mut self, from: NodeId) -> Result<(), StepError> {
        match self.role {
            Role::Leader => Err(StepError::Unexpected("another leader in this term")),
            // One leader per term (§5.2): a second one is impossible, the message forged or corrupt.
            Role::Follower if self.leader.is_some_and(|l| l != from) => Err(StepError::Unexpected(
                "leader message from a second leader in this term",
            )),
            Role::Follower => {
                self.leader = Some(from);
                self.election_elapsed = 0;
                Ok(())
            }
            Role::PreCandidate | Role::Candidate => {
                self.become_follower(self.term, Some(from));
                Ok(())
            }
        }
    }

    fn leader_peer(&mut self, from: NodeId) -> Result<(), StepError> {
        if self.role != Role::Leader {
            return Err(StepError::Unexpected(
                "response for a leader, and this node is not one",
            ));
        }
        match self.progress.get_mut(&from) {
            Some(pr) => {
                pr.recent_active = true;
                Ok(())
            }
            None => Err(StepError::UnknownPeer(from)),
        }
    }

    // ----- elections -------------------------------------------------------------------------

    fn handle_vote_request(
        &mut self,
        from: NodeId,
        term: Term,
        pre: bool,
        last_index: Index,
        last_term: Term,
    ) {
        let can_vote = self.vote == Some(from)
            || (self.vote.is_none() && self.leader.is_none())
            || (pre && term > self.term);
        let up_to_date = (last_term, last_index) >= (self.log.last_term(), self.log.last_index())
            || self.bug(Bug::VoteWithoutLogCheck);
        let granted = can_vote && up_to_date;
        trace!(id = self.cfg.id, from, term, pre, granted, "vote request");
        if pre {
            let reply_term = if granted { term } else { self.term };
            self.send(from, reply_term, MessageBody::PreVoteResponse { granted });
        } else {
            if granted {
                self.vote = Some(from);
                self.election_elapsed = 0;
            }
            self.send(from, self.term, MessageBody::VoteResponse { granted });
        }
    }

    fn record_vote(&mut self, from: NodeId, granted: bool) {
        if !self.membership.is_voter(from) {
            return;
        }
        self.votes.entry(from).or_insert(granted);
        if self.won_election() {
            match self.role {
                Role::PreCandidate => self.become_candidate(false),
                Role::Candidate => self.become_leader(),
                _ => {}
            }
        } else if self.lost_election() {
            self.become_follower(self.term, None);
        }
    }

    // ----- replication (follower side) -------------------------------------------------------

    /// An append of the current term from its leader. Its shape (contiguous from `prev_index + 1`,
    /// terms non-decreasing from `prev_term` and at most the message's term) was checked by
    /// [`validate_message`]; here it is checked against this log, all of it before anything
    /// changes.
    fn handle_append(
        &mut self,
        from: NodeId,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
        leader_commit: Index,
    ) -> Result<(), StepError> {
        let commit = self.log.commit;
        let offset = self.log.offset();
        // Every entry up to the commit index is in the log of this term's leader (Leader
        // Completeness, §5.4.1), so what the message says about positions at or below it must agree
        // with this log wherever the log still holds them (below its start the snapshot covers
        // them). A disagreement cannot come from a real leader: refuse it and change nothing; in
        // particular never truncate a committed entry.
        let disagrees = |index: Index, term: Term| {
            index <= commit && index >= offset && !self.log.matches(index, term)
        };
        if disagrees(prev_index, prev_term) || entries.iter().any(|e| disagrees(e.index, e.term)) {
            return Err(StepError::Malformed(
                "append disagrees with a committed entry",
            ));
        }
        let (prev_index, prev_term, entries) = if prev_index < commit {
            // A duplicate or reordered append: positions up to the commit index are settled, keep
            // what follows. The entries are contiguous, so if any follows, the one at the commit
            // index was in the message and matched: the commit point is the new previous entry.
            let entries: Vec<Entry> = entries.into_iter().filter(|e| e.index > commit).collect();
            if entries.is_empty() {
                self.send(
                    from,
                    self.term,
                    MessageBody::AppendResponse(AppendResult::Accepted {
                        match_index: commit,
                    }),
                );
                return Ok(());
            }
            let Some(commit_term) = self.log.term(commit) else {
                return Err(StepError::Unexpected("commit index outside the log"));
            };
            (commit, commit_term, entries)
        } else {
            (prev_index, prev_term, entries)
        };
        if !self.log.matches(prev_index, prev_term) {
            // Only past the commit index here (at or below it a mismatch was refused above).
            let hint_index = self
                .log
                .find_conflict_by_term(prev_index.min(self.log.last_index()), prev_term);
            let hint_term = self.log.term(hint_index).unwrap_or(0);
            self.send(
                from,
                self.term,
                MessageBody::AppendResponse(AppendResult::Rejected {
                    rejected: prev_index,
                    hint_index,
                    hint_term,
                }),
            );
            return Ok(());
        }
        // `validate_message` bounded every index by MAX_INDEX.
        let last_new = entries.last().map_or(prev_index, |e| e.index);
        // The first entry this log does not hold: from there on the message replaces the log.
        let first_new = entries
            .iter()
            .position(|e| !self.log.matches(e.index, e.term));
        let mut config_changed = false;
        if let Some(pos) = first_new
            && self.bug(Bug::KeepConflictingSuffix)
        {
            // The bug: overwrite the conflicting entries in place, keep whatever follows them.
            for e in entries.into_iter().skip(pos) {
                config_changed |= matches!(e.payload, Payload::Config { .. });
                if e.index <= self.log.last_index() {
                    self.log.overwrite(e);
                    config_changed = true;
                } else {
                    self.log.append_unchecked(e);
                }
            }
        } else if let Some(pos) = first_new {
            let at = entries[pos].index;
            debug_assert!(at > commit, "append would replace committed entry {at}");
            if at <= self.log.last_index() {
                self.retract_acks(at);
                self.log.truncate_from(at);
                config_changed = true;
            }
            for e in entries.into_iter().skip(pos) {
                config_changed |= matches!(e.payload, Payload::Config { .. });
                self.log.append(e);
            }
        }
        if config_changed {
            self.refresh_membership();
        }
        let known = if self.bug(Bug::CommitBeyondMatch) {
            self.log.last_index()
        } else {
            last_new
        };
        self.commit_to(leader_commit.min(known));
        self.send(
            from,
            self.term,
            MessageBody::AppendResponse(AppendResult::Accepted {
                match_index: last_new,
            }),
        );
        Ok(())
    }

    /// Drop acknowledgements not yet handed out that claim entries from `index` on: those entries
    /// were just replaced, so they will never be persisted and the acknowledgement would be a lie
    /// (an old leader could count it toward a majority).
    fn retract_acks(&mut self, index: Index) {
        self.msgs.retain(|m| {
            !matches!(m.body, MessageBody::AppendResponse(AppendResult::Accepted { match_index }) if match_index >= index)
        });
    }

    fn commit_to(&mut self, index: Index) {
        if index > self.log.commit {
            debug_assert!(index <= self.log.last_index());
            self.log.commit = index;
        }
    }

    // ----- replication (leader side) ---------------------------------------------------------

    fn propose(&mut self, payload: Payload) -> Result<Stepped, StepError> {
        if self.role != Role::Leader {
            return Err(StepError::NotLeader {
                leader: self.leader,
            });
        }
        if self.transfer.is_some() {
            return Err(StepError::TransferInProgress);
        }
        let is_config = matches!(payload, Payload::Config { .. });
        let Some(index) = self.next_log_index() else {
            return Err(StepError::Unexpected("log index space exhausted"));
        };
        let term = self.term;
        self.log.append(Entry {
            term,
            index,
            payload,
        });
        if is_config {
            self.refresh_membership();
        }
        self.broadcast_append(false);
        Ok(Stepped::Proposed { index, term })
    }

    fn propose_conf_change(&mut self, change: ConfChange) -> Result<Stepped, StepError> {
        if self.role != Role::Leader {
            return Err(StepError::NotLeader {
                leader: self.leader,
            });
        }
        // One change at a time, and only after this leader committed an entry of its own term
        // (the fix to single-server changes in Ongaro's 2015 raft-dev post).
        if (!self.committed_in_term() || self.log.has_config_after(self.log.commit))
            && !self.bug(Bug::ConcurrentMembershipChanges)
        {
            return Err(StepError::ConfChangePending);
        }
        let membership = self.membership.apply(change)?;
        if let ConfChange::Promote(id) = change
            && self
                .progress
                .get(&id)
                .is_none_or(|p| p.match_index < self.log.commit)
        {
            return Err(StepError::LearnerBehind(id));
        }
        self.propose(Payload::Config { change, membership })
    }

    fn committed_in_term(&self) -> bool {
        self.log.term(self.log.commit) == Some(self.term)
    }

    fn broadcast_append(&mut self, allow_empty: bool) {
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        for peer in peers {
            self.send_appends(peer, allow_empty);
        }
    }

    /// Send as many appends to `peer` as its progress allows (one for a probe, a pipeline once it
    /// follows). With `allow_empty`, send one even with no new entries (carries the commit index).
    fn send_appends(&mut self, peer: NodeId, allow_empty: bool) {
        let mut allow_empty = allow_empty;
        loop {
            let Some(pr) = self.progress.get(&peer) else {
                return;
            };
            if !pr.can_send(self.cfg.max_inflight) {
                return;
            }
            let next = pr.next_index.min(self.log.last_index() + 1);
            let prev_index = next - 1;
            let Some(prev_term) = self.log.term(prev_index) else {
                self.start_snapshot(peer);
                return;
            };
            let entries = self.log.slice(
                next,
                self.log.last_index(),
                self.cfg.max_entries_per_append,
                self.cfg.max_bytes_per_append,
            );
            if entries.is_empty() && !allow_empty {
                return;
            }
            let last = entries.last().map_or(prev_index, |e| e.index);
            let had_entries = !entries.is_empty();
            let commit = self.log.commit;
            if let Some(pr) = self.progress.get_mut(&peer) {
                pr.next_index = next;
                pr.sent(last, had_entries);
            }
            self.send(
                peer,
                self.term,
                MessageBody::Append {
                    prev_index,
                    prev_term,
                    entries,
                    commit,
                },
            );
            allow_empty = false;
            if !had_entries {
                return;
            }
        }
    }

    fn broadcast_heartbeat(&mut self) {
        let peers: Vec<(NodeId, Index)> = self
            .progress
            .iter()
            .map(|(&id, p)| (id, p.match_index))
            .collect();
        let unclamped = self.bug(Bug::CommitBeyondMatch);
        for (peer, matched) in peers {
            let commit = if unclamped {
                self.log.commit
            } else {
                self.log.commit.min(matched)
            };
            self.send(
                peer,
                self.term,
                MessageBody::Heartbeat {
                    commit,
                    read_round: self.read_round,
                },
            );
        }
    }

    fn handle_append_response(
        &mut self,
        from: NodeId,
        result: AppendResult,
    ) -> Result<(), StepError> {
        let last = self.log.last_index();
        match result {
            AppendResult::Accepted { match_index } => {
                if match_index > last {
                    return Err(StepError::Malformed("match index beyond the leader's log"));
                }
                let Some(pr) = self.progress.get_mut(&from) else {
                    return Err(StepError::UnknownPeer(from));
                };
                let advanced = pr.matched(match_index);
                if advanced || pr.match_index == match_index {
                    match &pr.state {
                        ProgressState::Probe { .. } => pr.become_replicate(),
                        ProgressState::Snapshot(t) if pr.match_index >= t.meta.index => {
                            pr.become_probe()
                        }
                        _ => {}
                    }
                }
                let matched = pr.match_index;
                if advanced && self.maybe_commit() {
                    self.broadcast_append(true);
                } else {
                    self.send_appends(from, false);
                }
                if self.transfer.as_ref().is_some_and(|t| t.to == from)
                    && matched == self.log.last_index()
                {
                    self.send(from, self.term, MessageBody::TimeoutNow);
                }
            }
            AppendResult::Rejected {
                rejected,
                hint_index,
                hint_term,
            } => {
                if rejected > last {
                    return Err(StepError::Malformed(
                        "rejection of an index beyond the leader's log",
                    ));
                }
                let probe_hint = if hint_term > 0 {
                    self.log.find_conflict_by_term(hint_index, hint_term)
                } else {
                    hint_index
                };
                let Some(pr) = self.progress.get_mut(&from) else {
                    return Err(StepError::UnknownPeer(from));
                };
                if pr.rejected(rejected, probe_hint) {
                    trace!(
                        id = self.cfg.id,
                        peer = from,
                        next = pr.next_index,
                        "backtracking"
                    );
                    self.send_appends(from, true);
                }
            }
        }
        Ok(())
    }

    fn handle_heartbeat_response(&mut self, from: NodeId, read_round: u64) {
        let max_inflight = self.cfg.max_inflight;
        let last = self.log.last_index();
        let behind = match self.progress.get_mut(&from) {
            Some(pr) => {
                pr.heartbeat_reply(max_inflight);
                pr.match_index < last
            }
            None => return,
        };
        if behind {
            self.send_appends(from, true);
        }
        if read_round > 0 && read_round <= self.read_round && self.membership.is_voter(from) {
            let ack = self.read_acks.entry(from).or_insert(0);
            *ack = (*ack).max(read_round);
            self.release_reads();
        }
    }

    /// Advance the commit index to the highest index a majority of voters hold, if it is of the
    /// current term (§5.4.2). Returns whether it advanced.
    fn maybe_commit(&mut self) -> bool {
        if self.role != Role::Leader || self.membership.voters.is_empty() {
            return false;
        }
        let mut matches: Vec<Index> = self
            .membership
            .voters
            .iter()
            .map(|&v| {
                if v == self.cfg.id {
                    self.log.persisted
                } else {
                    self.progress.get(&v).map_or(0, |p| p.match_index)
                }
            })
            .collect();
        matches.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = matches[self.membership.quorum() - 1];
        if candidate <= self.log.commit {
            return false;
        }
        let term_ok = self.log.term(candidate) == Some(self.term);
        if !term_ok && !self.bug(Bug::CommitPreviousTerm) {
            return false;
        }
        debug_assert!(candidate <= self.log.last_index());
        self.log.commit = candidate;
        trace!(id = self.cfg.id, commit = candidate, "commit advanced");
        if self.committed_in_term() {
            for request_id in std::mem::take(&mut self.reads_awaiting_term_commit) {
                self.start_read(request_id);
            }
        }
        // A leader removed by the change it just committed hands over by stepping down (thesis §4.2.2).
        if !self.membership.is_voter(self.cfg.id) && self.membership_index <= self.log.commit {
            debug!(id = self.cfg.id, "removed from the voters; stepping down");
            self.become_follower(self.term, None);
            return false;
        }
        true
    }

    // ----- membership ------------------------------------------------------------------------

    /// The membership is the latest configuration in the log, in effect as soon as appended (thesis
    /// §4.1), or the snapshot's when the log holds none after it.
    fn refresh_membership(&mut self) {
        let last_index = self.log.last_index();
        let (membership, index) = match self.log.last_config_at_or_below(last_index) {
            Some(Entry {
                index,
                payload: Payload::Config { membership, .. },
                ..
            }) if *index > self.snapshot.index => (membership.clone(), *index),
            _ => (self.snapshot.membership.clone(), self.snapshot.index),
        };
        if membership == self.membership && index == self.membership_index {
            return;
        }
        debug!(id = self.cfg.id, ?membership, index, "membership");
        self.membership = membership;
        self.membership_index = index;
        if self.role == Role::Leader {
            self.rebuild_progress();
            if self
                .transfer
                .as_ref()
                .is_some_and(|t| !self.membership.is_voter(t.to))
            {
                self.transfer = None;
            }
            self.read_acks.retain(|id, _| self.membership.is_voter(*id));
        }
    }

    /// The membership as of `index` (for a snapshot taken there).
    fn membership_at(&self, index: Index) -> Membership {
        match self.log.last_config_at_or_below(index) {
            Some(Entry {
                index: i,
                payload: Payload::Config { membership, .. },
                ..
            }) if *i > self.snapshot.index || self.snapshot.index > index => membership.clone(),
            _ => self.snapshot.membership.clone(),
        }
    }

    // ----- read index ------------------------------------------------------------------------

    fn read_index(&mut self, request_id: u64) -> Result<(), StepError> {
        if self.role != Role::Leader {
            return Err(StepError::NotLeader {
                leader: self.leader,
            });
        }
        if !self.committed_in_term() && !self.bug(Bug::ReadBeforeTermCommit) {
            // The commit index is not known to be current until the term's no-op commits (§8).
            self.reads_awaiting_term_commit.push(request_id);
            return Ok(());
        }
        self.start_read(request_id);
        Ok(())
    }

    fn start_read(&mut self, request_id: u64) {
        if self.bug(Bug::ReadIndexWithoutQuorum) {
            // The bug: no heartbeat round; this node answers as if it surely still led.
            self.read_states.push(ReadState {
                request_id,
                result: ReadResult::Ready {
                    index: self.log.commit,
                },
            });
            return;
        }
        self.read_round += 1;
        self.pending_reads.push_back(PendingRead {
            request_id,
            index: self.log.commit,
            round: self.read_round,
        });
        self.broadcast_heartbeat();
        self.release_reads();
    }

    /// Reads whose heartbeat round a majority of voters answered are confirmed.
    fn release_reads(&mut self) {
        if self.pending_reads.is_empty() {
            return;
        }
        let mut rounds: Vec<u64> = self
            .membership
            .voters
            .iter()
            .map(|&v| {
                if v == self.cfg.id {
                    self.read_round
                } else {
                    self.read_acks.get(&v).copied().unwrap_or(0)
                }
            })
            .collect();
        if rounds.is_empty() {
            return;
        }
        rounds.sort_unstable_by(|a, b| b.cmp(a));
        let confirmed = rounds[self.membership.quorum() - 1];
        while self
            .pending_reads
            .front()
            .is_some_and(|r| r.round <= confirmed)
        {
            if let Some(read) = self.pending_reads.pop_front() {
                self.read_states.push(ReadState {
                    request_id: read.request_id,
                    result: ReadResult::Ready { index: read.index },
                });
            }
        }
    }

    // ----- leadership transfer ---------------------------------------------------------------

    fn transfer_leadership(&mut self, to: NodeId) -> Result<(), StepError> {
        if self.role != Role::Leader {
            return Err(StepError::NotLeader {
                leader: self.leader,
            });
        }
        if to == self.cfg.id {
            return Ok(());
        }
        if !self.membership.is_voter(to) {
            return Err(StepError::NotVoter(to));
        }
        if self.transfer.as_ref().is_some_and(|t| t.to == to) {
            return Ok(());
        }
        debug!(id = self.cfg.id, to, "leadership transfer");
        self.transfer = Some(Transfer { to, elapsed: 0 });
        if self
            .progress
            .get(&to)
            .is_some_and(|p| p.match_index == self.log.last_index())
        {
            self.send(to, self.term, MessageBody::TimeoutNow);
        } else {
            self.send_appends(to, true);
        }
        Ok(())
    }

    // ----- snapshots -------------------------------------------------------------------------

    fn snapshot_taken(&mut self, index: Index, id: SnapshotId, size: u64) -> Result<(), StepError> {
        let refuse = |reason| Err(StepError::SnapshotTaken { index, reason });
        if index <= self.snapshot.index {
            return refuse("not newer than the current snapshot");
        }
        if index > self.log.applied {
            return refuse("beyond the applied index");
        }
        let Some(term) = self.log.term(index) else {
            return refuse("index no longer in the log");
        };
        let membership = self.membership_at(index);
        self.snapshot = SnapshotMeta {
            index,
            term,
            membership,
            id,
            size,
        };
        let keep_from = index.saturating_sub(self.cfg.log_keep_after_snapshot);
        if self.log.compact_to(keep_from) {
            self.compact_to = Some(keep_from);
        }
        debug!(id = self.cfg.id, index, term, "snapshot taken");
        Ok(())
    }

    fn start_snapshot(&mut self, peer: NodeId) {
        let meta = self.snapshot.clone();
        let Some(pr) = self.progress.get_mut(&peer) else {
            return;
        };
        debug!(
            id = self.cfg.id,
            peer,
            snapshot = meta.id,
            index = meta.index,
            "sending snapshot"
        );
        pr.state = ProgressState::Snapshot(SnapshotTransfer {
            meta,
            acked: 0,
            next: 0,
            idle_ticks: 0,
        });
        pr.inflight.clear();
        self.fill_snapshot_window(peer);
    }

    /// Asks the driver for the next chunks of `peer`'s snapshot transfer, until
    /// `snapshot_chunks_in_flight` chunks past the bytes it confirmed are being read or are in
    /// flight (an empty snapshot is one empty chunk, asked for every time).
    fn fill_snapshot_window(&mut self, peer: NodeId) {
        let chunk = self.cfg.snapshot_chunk_size;
        let span = chunk.saturating_mul(self.cfg.snapshot_chunks_in_flight as u64);
        let Some(ProgressState::Snapshot(t)) = self.progress.get_mut(&peer).map(|p| &mut p.state)
        else {
            return;
        };
        let (snapshot_id, size) = (t.meta.id, t.meta.size);
        let mut offsets = Vec::new();
        if size == 0 {
            offsets.push(0);
        } else {
            t.next = t.next.max(t.acked);
            while t.next < size && t.next - t.acked < span {
                offsets.push(t.next);
                t.next = t.next.saturating_add(chunk).min(size);
            }
        }
        for offset in offsets {
            self.request_chunk(peer, snapshot_id, offset, size);
        }
    }

    fn request_chunk(&mut self, to: NodeId, snapshot_id: SnapshotId, offset: u64, size: u64) {
        let len = self
            .cfg
            .snapshot_chunk_size
            .min(size.saturating_sub(offset));
        self.chunk_reads.push(ChunkRead {
            to,
            snapshot_id,
            offset,
            len,
        });
    }

    fn snapshot_chunk_read(
        &mut self,
        to: NodeId,
        snapshot_id: SnapshotId,
        offset: u64,
        data: Vec<u8>,
    ) -> Result<(), StepError> {
        let stale = |reason| {
            Err(StepError::Snapshot {
                id: snapshot_id,
                reason,
            })
        };
        if self.role != Role::Leader {
            return stale("chunk read after losing leadership");
        }
        let Some(ProgressState::Snapshot(t)) = self.progress.get(&to).map(|p| &p.state) else {
            return stale("peer is not receiving a snapshot");
        };
        let asked = offset >= t.acked && offset < t.next || t.meta.size == 0 && offset == 0;
        if t.meta.id != snapshot_id || !asked {
            return stale("chunk is not one asked for");
        }
        let expected = self
            .cfg
            .snapshot_chunk_size
            .min(t.meta.size.saturating_sub(offset));
        if data.len() as u64 != expected {
            return stale("chunk length differs from the requested length");
        }
        let meta = t.meta.clone();
        let done = offset + expected == meta.size;
        self.send(
            to,
            self.term,
            MessageBody::InstallSnapshot {
                meta,
                offset,
                data,
                done,
            },
        );
        Ok(())
    }

    fn snapshot_unavailable(
        &mut self,
        to: NodeId,
        snapshot_id: SnapshotId,
    ) -> Result<(), StepError> {
        if self.role != Role::Leader {
            return Err(StepError::NotLeader {
                leader: self.leader,
            });
        }
        let current = self.snapshot.id;
        let Some(pr) = self.progress.get_mut(&to) else {
            return Err(StepError::UnknownPeer(to));
        };
        match &pr.state {
            ProgressState::Snapshot(t) if t.meta.id == snapshot_id => {
                if snapshot_id == current {
                    // Our own latest snapshot is unreadable: fall back to probing and try again later.
                    pr.become_probe();
                    return Err(StepError::Snapshot {
                        id: snapshot_id,
                        reason: "the latest snapshot is unavailable",
                    });
                }
                self.start_snapshot(to);
                Ok(())
            }
            _ => Err(StepError::Snapshot {
                id: snapshot_id,
                reason: "no transfer of this snapshot to that peer",
            }),
        }
    }

    fn handle_snapshot_response(
        &mut self,
        from: NodeId,
        snapshot_id: SnapshotId,
        result: SnapshotResult,
    ) -> Result<(), StepError> {
        match result {
            SnapshotResult::Done { match_index } => {
                if match_index > self.log.last_index() {
                    return Err(StepError::Malformed(
                        "snapshot match beyond the leader's log",
                    ));
                }
                let Some(pr) = self.progress.get_mut(&from) else {
                    return Err(StepError::UnknownPeer(from));
                };
                pr.matched(match_index);
                if matches!(pr.state, ProgressState::Snapshot(_)) {
                    pr.become_probe();
                }
                if self.maybe_commit() {
                    self.broadcast_append(true);
                } else {
                    self.send_appends(from, true);
                }
                Ok(())
            }
            SnapshotResult::Continue { next_offset } => {
                let Some(pr) = self.progress.get_mut(&from) else {
                    return Err(StepError::UnknownPeer(from));
                };
                let ProgressState::Snapshot(t) = &mut pr.state else {
                    return Err(StepError::Snapshot {
                        id: snapshot_id,
                        reason: "peer is not receiving a snapshot",
                    });
                };
                if t.meta.id != snapshot_id || next_offset >= t.meta.size && t.meta.size > 0 {
                    return Err(StepError::Snapshot {
                        id: snapshot_id,
                        reason: "progress for another snapshot or past its end",
                    });
                }
                t.idle_ticks = 0;
                if next_offset < t.acked {
                    // The follower holds less than it confirmed (it restarted, or started over
                    // for a new term or leader): send again from where it is.
                    t.next = next_offset;
                }
                t.acked = next_offset;
                // An answer that confirms nothing new (a chunk out of order: one before it was
                // lost) asks for nothing either: the chunks in flight are resent once the
                // transfer has been idle for an election timeout.
                self.fill_snapshot_window(from);
                Ok(())
            }
        }
    }

    fn handle_snapshot_chunk(
        &mut self,
        from: NodeId,
        meta: SnapshotMeta,
        offset: u64,
        data: Vec<u8>,
        done: bool,
    ) -> Result<(), StepError> {
        // `validate_message` checked the metadata against the message's term, and that the chunk
        // fits the declared size.
        let id = meta.id;
        let reply = |raft: &mut Raft, result| {
            raft.send(
                from,
                raft.term,
                MessageBody::InstallSnapshotResponse {
                    snapshot_id: id,
                    result,
                },
            );
        };
        let install_anyway = self.bug(Bug::SnapshotOverLongerLog);
        if meta.index <= self.log.commit && !install_anyway {
            self.incoming = None;
            let match_index = self.log.commit;
            reply(self, SnapshotResult::Done { match_index });
            return Ok(());
        }
        if self.log.matches(meta.index, meta.term) && !install_anyway {
            // Our log already holds the snapshot's last entry: it matches up to there.
            self.incoming = None;
            self.commit_to(meta.index);
            reply(
                self,
                SnapshotResult::Done {
                    match_index: meta.index,
                },
            );
            return Ok(());
        }
        let resume = self
            .incoming
            .as_ref()
            .filter(|inc| inc.meta == meta && inc.leader == from && inc.term == self.term)
            .map(|inc| inc.received);
        let received = match resume {
            Some(received) => received,
            None if offset == 0 => {
                // A transfer of the same file started over (a new term or leader): the chunk
                // rewrites the partial file from its first byte, so an acknowledgement of the old
                // transfer still waiting in this `Ready` would claim bytes the file no longer
                // holds once it leaves. Withdraw it (it was for an older term's leader, which
                // could do nothing with it anyway).
                self.msgs.retain(|m| {
                    !matches!(m.body, MessageBody::InstallSnapshotResponse {
                        snapshot_id,
                        result: SnapshotResult::Continue { .. },
                    } if snapshot_id == id)
                });
                self.incoming = Some(IncomingSnapshot {
                    meta: meta.clone(),
                    leader: from,
                    term: self.term,
                    received: 0,
                });
                0
            }
            None => {
                reply(self, SnapshotResult::Continue { next_offset: 0 });
                return Ok(());
            }
        };
        if offset != received {
            reply(
                self,
                SnapshotResult::Continue {
                    next_offset: received,
                },
            );
            return Ok(());
        }
        let len = data.len() as u64;
        self.chunk_writes.push(ChunkWrite {
            snapshot_id: id,
            offset,
            data,
        });
        if !done {
            if let Some(inc) = &mut self.incoming {
                inc.received = received + len;
            }
            reply(
                self,
                SnapshotResult::Continue {
                    next_offset: received + len,
                },
            );
            return Ok(());
        }
        debug!(
            id = self.cfg.id,
            snapshot = id,
            index = meta.index,
            "installing snapshot"
        );
        self.incoming = None;
        self.retract_acks(meta.index + 1);
        self.log.reset_to_snapshot(meta.index, meta.term);
        self.snapshot = meta.clone();
        self.install = Some(meta.clone());
        self.compact_to = None;
        self.refresh_membership();
        reply(
            self,
            SnapshotResult::Done {
                match_index: meta.index,
            },
        );
        Ok(())
    }

    // ----- invariants ------------------------------------------------------------------------

    /// Structural invariants, checked in debug builds after every input.
    fn check_invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        self.log.debug_check();
        debug_assert!(
            self.snapshot.index >= self.log.offset(),
            "snapshot behind the log start"
        );
        debug_assert!(
            self.log.commit >= self.snapshot.index,
            "commit behind the snapshot"
        );
        debug_assert!(
            self.log
                .term(self.snapshot.index)
                .is_none_or(|t| t == self.snapshot.term),
            "snapshot term disagrees with the log"
        );
        debug_assert!(
            self.log.last_term() <= self.term,
            "log holds an entry from a future term"
        );
        match self.role {
            Role::Leader => debug_assert_eq!(self.leader, Some(self.cfg.id)),
            Role::Candidate => debug_assert_eq!(self.vote, Some(self.cfg.id)),
            _ => debug_assert_ne!(self.leader, Some(self.cfg.id)),
        }
    }
}

/// The checks a message must pass whatever this node's state: its shape, and its indexes and terms
/// within the usable space ([`MAX_INDEX`], [`MAX_TERM`]) so no arithmetic on them can overflow. The
/// message's own term is already known to be in `1..=MAX_TERM`.
fn validate_message(m: &Message) -> Result<(), StepError> {
    debug_assert!((1..=MAX_TERM).contains(&m.term));
    let malformed = |reason| Err(StepError::Malformed(reason));
    match &m.body {
        MessageBody::Append {
            prev_index,
            prev_term,
            entries,
            ..
        } => {
            if *prev_index > MAX_INDEX || *prev_term > m.term {
                return malformed("append's previous entry beyond the index space or the term");
            }
            // Index 0 is the empty log, of term 0; every entry after it has a leader's term.
            if (*prev_index == 0) != (*prev_term == 0) {
                return malformed("append's previous term does not fit its index");
            }
            let (mut index, mut term) = (*prev_index, *prev_term);
            for e in entries {
                if index.checked_add(1) != Some(e.index) || e.index > MAX_INDEX {
                    return malformed("append entries not contiguous after the previous entry");
                }
                if e.term < term || e.term == 0 || e.term > m.term {
                    return malformed("append entry terms decrease or exceed the message term");
                }
                if let Payload::Config { membership, .. } = &e.payload
                    && !membership.is_well_formed()
                {
                    return malformed("configuration entry with an impossible membership");
                }
                (index, term) = (e.index, e.term);
            }
        }
        MessageBody::AppendResponse(AppendResult::Rejected {
            rejected,
            hint_index,
            ..
        }) if hint_index > rejected => {
            return malformed("rejection hint beyond the rejected index");
        }
        MessageBody::InstallSnapshot {
            meta,
            offset,
            data,
            done,
        } => {
            let refuse = |reason| {
                Err(StepError::Snapshot {
                    id: meta.id,
                    reason,
                })
            };
            // A leader sends a snapshot only to replace log it compacted: never at index 0.
            if meta.index == 0 || meta.index > MAX_INDEX {
                return refuse("snapshot index 0 or beyond the index space");
            }
            if meta.term == 0 || meta.term > m.term {
                return refuse("snapshot term 0 or beyond the leader's term");
            }
            if !meta.membership.is_well_formed() {
                return refuse("snapshot with an impossible membership");
            }
            let end = offset.checked_add(data.len() as u64);
            if end.is_none_or(|end| end > meta.size || *done != (end == meta.size)) {
                return refuse("chunk does not fit the snapshot's size");
            }
        }
        _ => {}
    }
    Ok(())
}
