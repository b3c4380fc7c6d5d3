//! The simulated world: hosts (a core, its disk and its state machine), the network, the clients,
//! and the fault injector, all run from one event queue in virtual time.

use std::collections::{BTreeMap, BTreeSet};

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::check::{Checker, Property, Violation};
use super::history::History;
use super::kv::{Command, Kv, KvOp, KvResult};
use super::{FaultCounts, Scenario, SimOptions, SimReport};
use crate::StepError;
use crate::io::{Config, Input, PersistedState, ReadResult, Stepped};
use crate::message::{AppendResult, Message, MessageBody, SnapshotResult};
use crate::raft::Raft;
use crate::types::{
    ConfChange, Entry, HardState, Index, NodeId, Payload, Role, SnapshotId, SnapshotMeta, Term,
};

const TICK_MS: u64 = 10;
const CLIENT_TIMEOUT_MS: u64 = 1_000;
const SNAPSHOT_EVERY: u64 = 32;
const SNAPSHOT_KEEP: u64 = 8;
const KEYS: u8 = 3;

/// What survives a crash.
#[derive(Clone, Debug, Default)]
struct Disk {
    hard_state: HardState,
    snapshot: SnapshotMeta,
    /// Complete snapshot files by id, the newest last in `file_order`.
    files: BTreeMap<SnapshotId, Vec<u8>>,
    file_order: Vec<SnapshotId>,
    /// Snapshots being received.
    partial: BTreeMap<SnapshotId, Vec<u8>>,
    entries: Vec<Entry>,
    /// The commit index of the last fsynced write; a crash may lose any later commit-only write.
    synced_commit: Index,
}

impl Disk {
    fn last_index(&self) -> Index {
        self.entries.last().map_or(self.snapshot.index, |e| e.index)
    }
}

struct Host {
    raft: Option<Raft>,
    life: u32,
    disk: Disk,
    kv: Kv,
    /// Proposals made here: index → (term, client, op id).
    proposals: BTreeMap<Index, (Term, u32, u64)>,
    /// Read-index requests made here: request id → (client, op id, op).
    reads: BTreeMap<u64, (u32, u64, KvOp)>,
    ready_scheduled: bool,
    /// A `Ready` whose early messages have left and whose disk write is still in progress: a crash
    /// now loses it.
    in_flight: Option<crate::io::Ready>,
    /// The last term this host was seen leading.
    led_term: Term,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    op_id: u64,
    op: KvOp,
    slot: usize,
}

struct Client {
    pending: Option<Pending>,
    leader_hint: Option<NodeId>,
    next_op: u64,
}

#[derive(Clone, Debug)]
enum Event {
    Tick(NodeId),
    Deliver(Message),
    Ready(NodeId, u32),
    /// The disk write of the host's in-flight `Ready` completed.
    Persisted(NodeId, u32),
    ClientStart(u32),
    ClientSubmit(u32, u64),
    ClientReply(u32, u64, KvResult),
    ClientTimeout(u32, u64),
    Chaos,
    Heal,
    LivenessDeadline,
    StopClients,
    CrashLeader(NodeId, u32),
    Restart(NodeId),
}

/// A simulated cluster. Public so scripted tests can drive one; [`super::run`] runs a whole seed.
pub struct Cluster {
    opts: SimOptions,
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Event>,
    hosts: BTreeMap<NodeId, Host>,
    clients: Vec<Client>,
    blocked: BTreeSet<(NodeId, NodeId)>,
    net: (f64, f64, u64),
    checker: Checker,
    history: History,
    heal_time: Option<u64>,
    completed_after_heal: u64,
    clients_stopped: bool,
    next_node_id: NodeId,
    next_request: u64,
    messages_sent: u64,
    faults: FaultCounts,
    events: u64,
}

impl Cluster {
    pub fn new(opts: SimOptions) -> Cluster {
        let rng = ChaCha8Rng::seed_from_u64(opts.seed);
        let net = opts.scenario.network();
        let mut cluster = Cluster {
            rng,
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            hosts: BTreeMap::new(),
            clients: Vec::new(),
            blocked: BTreeSet::new(),
            net,
            checker: Checker::new(),
            history: History::default(),
            heal_time: None,
            completed_after_heal: 0,
            clients_stopped: false,
            next_node_id: opts.nodes as NodeId + 1,
            next_request: 1,
            messages_sent: 0,
            faults: FaultCounts::default(),
            events: 0,
            opts,
        };
        let voters: Vec<NodeId> = (1..=cluster.opts.nodes as NodeId).collect();
        for &id in &voters {
            let disk = Disk {
                snapshot: PersistedState::bootstrap(voters.iter().copied()).snapshot,
                ..Disk::default()
            };
            // Fresh disks always boot.
            let _ = cluster.add_host(id, disk);
        }
        for c in 0..cluster.opts.clients {
            cluster.clients.push(Client {
                pending: None,
                leader_hint: None,
                next_op: 1,
            });
            let at = cluster.rng.random_range(0..50);
            cluster.schedule(at, Event::ClientStart(c));
        }
        let fault_ms = cluster.opts.fault_ms;
        let heal_ms = cluster.opts.heal_ms;
        if cluster.opts.scenario != Scenario::Calm {
            let at = cluster.rng.random_range(100..400);
            cluster.schedule(at, Event::Chaos);
        }
        cluster.schedule(fault_ms, Event::Heal);
        cluster.schedule(fault_ms.saturating_add(heal_ms), Event::LivenessDeadline);
        cluster.schedule(fault_ms.saturating_add(heal_ms), Event::StopClients);
        cluster
    }

    fn node_config(&self, id: NodeId, life: u32) -> Config {
        // A fixed mixing function, not `DefaultHasher`: a seed must replay the same on any toolchain.
        let node_seed =
            splitmix64(self.opts.seed ^ splitmix64(id) ^ splitmix64(u64::from(life) << 32));
        let churn = scenario_is_churn(self.opts.scenario);
        Config {
            // Churn: short timeouts and no pre-vote or leases, so many terms fit in a run.
            election_ticks: if churn { 5 } else { 10 },
            heartbeat_ticks: 2,
            pre_vote: !churn,
            check_quorum: !churn,
            max_inflight: 4,
            max_entries_per_append: if scenario_is_churn(self.opts.scenario) {
                1
            } else {
                8
            },
            max_bytes_per_append: 1024,
            snapshot_chunk_size: 16,
            log_keep_after_snapshot: SNAPSHOT_KEEP,
            testing_commit_previous_term_by_count: self.opts.bug_commit_previous_term,
            ..Config::new(id, node_seed)
        }
    }

    fn add_host(&mut self, id: NodeId, disk: Disk) -> Result<(), Violation> {
        self.hosts.insert(
            id,
            Host {
                raft: None,
                life: 0,
                disk,
                kv: Kv::default(),
                proposals: BTreeMap::new(),
                reads: BTreeMap::new(),
                ready_scheduled: false,
                in_flight: None,
                led_term: 0,
            },
        );
        self.boot(id)
            .map_err(|detail| self.violation(Property::SnapshotConsistency, detail))?;
        let at = self.now + self.rng.random_range(0..TICK_MS);
        self.schedule(at, Event::Tick(id));
        Ok(())
    }

    /// Start (or restart) a host from its disk: the core from hard state + snapshot + log, the
    /// state machine from the snapshot file.
    fn boot(&mut self, id: NodeId) -> Result<(), String> {
        let Some(host) = self.hosts.get(&id) else {
            return Ok(());
        };
        let life = host.life + 1;
        let cfg = self.node_config(id, life);
        let Some(host) = self.hosts.get_mut(&id) else {
            return Ok(());
        };
        let state = PersistedState {
            hard_state: host.disk.hard_state,
            snapshot: host.disk.snapshot.clone(),
            entries: host.disk.entries.clone(),
        };
        let kv = if host.disk.snapshot.index == 0 {
            Some(Kv::default())
        } else {
            host.disk
                .files
                .get(&host.disk.snapshot.id)
                .and_then(|bytes| Kv::from_snapshot(bytes))
        };
        host.life = life;
        host.proposals.clear();
        host.reads.clear();
        host.ready_scheduled = false;
        host.in_flight = None;
        let Some(kv) = kv else {
            return Err(format!(
                "node {id}: snapshot file {} missing or malformed",
                host.disk.snapshot.id
            ));
        };
        host.kv = kv;
        let raft = Raft::new(cfg, state)
            .map_err(|e| format!("node {id}: restart from disk failed: {e}"))?;
        host.raft = Some(raft);
        Ok(())
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((at, self.seq), event);
    }

    fn violation(&self, property: Property, detail: String) -> Violation {
        Violation {
            property,
            time: self.now,
            detail,
        }
    }

    /// Run to the end and check convergence.
    pub fn run(&mut self) -> Result<SimReport, Violation> {
        let end = self
            .opts
            .fault_ms
            .saturating_add(self.opts.heal_ms)
            .saturating_add(self.opts.quiesce_ms);
        while let Some(((at, _), event)) = self.queue.pop_first() {
            if at > end {
                break;
            }
            self.now = at;
            self.checker.time = at;
            if self.opts.panic_at_ms.is_some_and(|t| at >= t) {
                panic!("injected panic at t={at}ms (SimOptions::panic_at_ms)");
            }
            self.events += 1;
            self.handle(event)?;
        }
        self.check_converged()?;
        Ok(SimReport {
            seed: self.opts.seed,
            scenario: self.opts.scenario,
            history: self.history.clone(),
            committed_entries: self.checker.committed_count(),
            leaders_elected: self.leaders_elected(),
            messages_sent: self.messages_sent,
            faults: self.faults,
            events: self.events,
            lincheck: None,
        })
    }

    /// Virtual time, in milliseconds.
    pub fn now(&self) -> u64 {
        self.now
    }

    fn leaders_elected(&self) -> usize {
        self.hosts
            .values()
            .filter_map(|h| h.raft.as_ref())
            .map(|r| r.term())
            .max()
            .unwrap_or(0) as usize
    }

    fn handle(&mut self, event: Event) -> Result<(), Violation> {
        match event {
            Event::Tick(id) => {
                let at = self.now + TICK_MS;
                self.schedule(at, Event::Tick(id));
                self.step(id, Input::Tick)?;
            }
            Event::Deliver(m) => {
                if self.blocked.contains(&(m.from, m.to)) {
                    self.faults.blocked += 1;
                } else {
                    let to = m.to;
                    self.step(to, Input::Message(m))?;
                }
            }
            Event::Ready(id, life) => self.process_ready(id, life)?,
            Event::Persisted(id, life) => self.finish_ready(id, life)?,
            Event::ClientStart(c) => self.client_start(c),
            Event::ClientSubmit(c, op_id) => self.client_submit(c, op_id)?,
            Event::ClientReply(c, op_id, result) => self.client_reply(c, op_id, result),
            Event::ClientTimeout(c, op_id) => self.client_timeout(c, op_id),
            Event::Chaos => self.chaos()?,
            Event::CrashLeader(id, life) => {
                if self.heal_time.is_none() && self.hosts.get(&id).is_some_and(|h| h.life == life) {
                    self.crash(id);
                    let at = self.now + self.rng.random_range(20..=200);
                    self.schedule(at, Event::Restart(id));
                }
            }
            Event::Restart(id) => {
                if self.heal_time.is_none() {
                    self.restart(id)?;
                }
            }
            Event::Heal => self.heal()?,
            Event::LivenessDeadline => {
                if self.completed_after_heal == 0 {
                    return Err(self.violation(
                        Property::Liveness,
                        format!(
                            "no client operation invoked after the heal at {}ms completed within {}ms",
                            self.heal_time.unwrap_or(0),
                            self.opts.heal_ms
                        ),
                    ));
                }
            }
            Event::StopClients => self.clients_stopped = true,
        }
        Ok(())
    }

    /// Feed an input to a host's core (if it is up), then check every property on it.
    fn step(
        &mut self,
        id: NodeId,
        input: Input,
    ) -> Result<Option<Result<Stepped, StepError>>, Violation> {
        let Some(host) = self.hosts.get_mut(&id) else {
            return Ok(None);
        };
        let Some(raft) = host.raft.as_mut() else {
            return Ok(None);
        };
        let result = raft.step(input);
        self.after_step(id)?;
        Ok(Some(result))
    }

    fn after_step(&mut self, id: NodeId) -> Result<(), Violation> {
        let Some(host) = self.hosts.get_mut(&id) else {
            return Ok(());
        };
        let Some(raft) = host.raft.as_ref() else {
            return Ok(());
        };
        self.checker.observe(host.life, raft)?;
        let life = host.life;
        let new_leader = raft.role() == Role::Leader && raft.term() > host.led_term;
        if new_leader {
            host.led_term = raft.term();
        }
        if raft.has_ready() && !host.ready_scheduled {
            host.ready_scheduled = true;
            let at = self.now + self.rng.random_range(0..=2);
            self.schedule(at, Event::Ready(id, life));
        }
        // Leader churn: a fresh leader often dies within a few messages of winning, the moment
        // when its no-op is not yet everywhere (Figure 8).
        if new_leader
            && scenario_is_churn(self.opts.scenario)
            && self.heal_time.is_none()
            && self.rng.random_bool(0.5)
        {
            let at = self.now + self.rng.random_range(0..=25);
            self.schedule(at, Event::CrashLeader(id, life));
        }
        Ok(())
    }

    /// The driver takes a `Ready`, as the consensus actor does: snapshot chunks and an install are
    /// written at once; the early messages leave; committed entries are applied and clients
    /// answered (they are durable on a majority, whatever this disk holds); then the entries and
    /// hard state take a little virtual time to become durable, during which the core keeps
    /// stepping and a crash loses them.
    fn process_ready(&mut self, id: NodeId, life: u32) -> Result<(), Violation> {
        let now = self.now;
        let Some(host) = self.hosts.get_mut(&id) else {
            return Ok(());
        };
        if host.life != life {
            return Ok(());
        }
        host.ready_scheduled = false;
        let Some(raft) = host.raft.as_mut() else {
            return Ok(());
        };
        let Some(mut rd) = raft.ready() else {
            return Ok(());
        };
        let contract = |detail: String| Violation {
            property: Property::SnapshotConsistency,
            time: now,
            detail,
        };

        // 1. Snapshot chunks, then an install, durable at once: the consensus actor writes each
        //    chunk with `sync_data` and installs with fsync, rename and directory fsync before
        //    anything else of the `Ready` (`handle_ready` in actors/src/consensus/actor.rs), so
        //    they are not part of the write a crash can lose below (`in_flight`), and a chunk's
        //    acknowledgement (sent in step 5) never claims bytes a crash could still lose. Step 5
        //    checks that; a partial file survives a crash (the restarted core starts the
        //    transfer over, from offset 0).
        for w in &rd.snapshot_writes {
            let buf = host.disk.partial.entry(w.snapshot_id).or_default();
            if (buf.len() as u64) < w.offset {
                return Err(contract(format!(
                    "node {id}: chunk at {} leaves a gap",
                    w.offset
                )));
            }
            buf.truncate(w.offset as usize);
            buf.extend_from_slice(&w.data);
        }
        if let Some(meta) = &rd.snapshot_install {
            let bytes = host.disk.partial.remove(&meta.id).unwrap_or_default();
            let Some(kv) = Kv::from_snapshot(&bytes)
                .filter(|kv| bytes.len() as u64 == meta.size && kv.applied == meta.index)
            else {
                return Err(contract(format!(
                    "node {id}: assembled snapshot {} does not match its metadata",
                    meta.id
                )));
            };
            host.kv = kv;
            host.disk.snapshot = meta.clone();
            host.disk.files.insert(meta.id, bytes);
            host.disk.file_order.push(meta.id);
            host.disk.entries.clear();
            host.proposals.retain(|&index, _| index > meta.index);
            self.faults.snapshots_installed += 1;
            self.checker
                .on_state(id, meta.index, host.kv.fingerprint(), "snapshot install")?;
        }
        // 2. What may leave before the write: only a leader's traffic of a term durable here.
        let early = std::mem::take(&mut rd.early_messages);
        if let Some(m) = early
            .iter()
            .find(|m| !m.body.is_from_leader() || m.term > host.disk.hard_state.term)
        {
            return Err(contract(format!(
                "node {id}: {} of term {} sent before the write, durable term {}",
                m.body.kind(),
                m.term,
                host.disk.hard_state.term
            )));
        }
        // 3. Apply committed entries, then serve reads.
        let mut replies = Vec::new();
        for e in &rd.committed_entries {
            let result = match &e.payload {
                Payload::Normal(data) => match Command::decode(data) {
                    Some(cmd) => Some(host.kv.apply(e.index, cmd.op)),
                    None => {
                        host.kv.applied = e.index;
                        None
                    }
                },
                Payload::Noop | Payload::Config { .. } => {
                    host.kv.applied = e.index;
                    None
                }
            };
            self.checker.on_apply(id, e, host.kv.fingerprint())?;
            if let Some((term, client, op_id)) = host.proposals.remove(&e.index) {
                if term == e.term {
                    if let Some(result) = result {
                        replies.push(Event::ClientReply(client, op_id, result));
                    }
                } else {
                    // Another entry took the slot: this proposal can never commit. Retry it.
                    replies.push(Event::ClientSubmit(client, op_id));
                }
            }
        }
        for rs in &rd.read_states {
            let Some((client, op_id, op)) = host.reads.remove(&rs.request_id) else {
                continue;
            };
            match rs.result {
                ReadResult::Ready { index } => {
                    if host.kv.applied < index {
                        return Err(contract(format!(
                            "node {id}: read index {index} released before applying it (applied {})",
                            host.kv.applied
                        )));
                    }
                    replies.push(Event::ClientReply(client, op_id, host.kv.execute(op)));
                }
                ReadResult::Aborted { .. } => replies.push(Event::ClientSubmit(client, op_id)),
            }
        }
        host.in_flight = Some(rd);
        for m in early {
            self.send(m);
        }
        for reply in replies {
            let at = self.now + self.rng.random_range(1..=5);
            self.schedule(at, reply);
        }
        let at = self.now + self.rng.random_range(0..=3);
        self.schedule(at, Event::Persisted(id, life));
        Ok(())
    }

    /// The rest of the driver's side of a `Ready` once its write is durable: messages that promise
    /// something about the disk, compaction, `advance`, snapshot chunk reads.
    fn finish_ready(&mut self, id: NodeId, life: u32) -> Result<(), Violation> {
        let now = self.now;
        let Some(host) = self.hosts.get_mut(&id) else {
            return Ok(());
        };
        if host.life != life {
            return Ok(());
        }
        let Some(rd) = host.in_flight.take() else {
            return Ok(());
        };
        let Some(raft) = host.raft.as_mut() else {
            return Ok(());
        };
        let contract = |detail: String| Violation {
            property: Property::SnapshotConsistency,
            time: now,
            detail,
        };
        // 4. Entries and hard state. A commit index alone is written without an fsync, as the
        //    consensus actor does: a crash may lose it (see `crash`).
        if let Some(first) = rd.entries.first() {
            host.disk.entries.retain(|e| e.index < first.index);
            if host.disk.last_index() + 1 != first.index {
                return Err(contract(format!(
                    "node {id}: entries from {} do not follow the persisted log ending at {}",
                    first.index,
                    host.disk.last_index()
                )));
            }
            host.disk.entries.extend(rd.entries.iter().cloned());
        }
        if let Some(hs) = rd.hard_state {
            host.disk.hard_state = hs;
        }
        if rd.must_sync {
            host.disk.synced_commit = host.disk.hard_state.commit;
        }
        // 5. Messages, checking that what they promise is on disk (persist before send).
        for m in &rd.messages {
            match &m.body {
                MessageBody::VoteResponse { granted: true } => {
                    let hs = host.disk.hard_state;
                    // A newer durable term also covers it: the node can never vote in m.term again.
                    if hs.term < m.term || hs.term == m.term && hs.vote != Some(m.to) {
                        return Err(contract(format!(
                            "node {id}: vote for {} sent before it was persisted",
                            m.to
                        )));
                    }
                }
                MessageBody::AppendResponse(AppendResult::Accepted { match_index })
                | MessageBody::InstallSnapshotResponse {
                    result: SnapshotResult::Done { match_index },
                    ..
                } if host.disk.last_index() < *match_index
                    && host.disk.hard_state.commit < *match_index =>
                {
                    return Err(contract(format!(
                        "node {id}: {} acknowledged {match_index} with only {} persisted",
                        m.body.kind(),
                        host.disk.last_index()
                    )));
                }
                MessageBody::InstallSnapshotResponse {
                    snapshot_id,
                    result: SnapshotResult::Continue { next_offset },
                } => {
                    let held = host
                        .disk
                        .partial
                        .get(snapshot_id)
                        .map_or(0, |b| b.len() as u64);
                    if held < *next_offset && !host.disk.files.contains_key(snapshot_id) {
                        return Err(contract(format!(
                            "node {id}: acknowledged {next_offset} bytes of snapshot {snapshot_id} \
                             with {held} on disk"
                        )));
                    }
                }
                _ => {}
            }
        }
        // 6. Compaction, then acknowledge.
        if let Some(upto) = rd.compact_log_to {
            host.disk.entries.retain(|e| e.index > upto);
        }
        raft.advance();
        for m in rd.messages {
            self.send(m);
        }
        for cr in rd.snapshot_reads {
            let Some(host) = self.hosts.get(&id) else {
                break;
            };
            let data = host.disk.files.get(&cr.snapshot_id).and_then(|bytes| {
                let start = cr.offset as usize;
                let end = start.checked_add(cr.len as usize)?;
                bytes.get(start..end).map(<[u8]>::to_vec)
            });
            let input = cr.answer(data);
            self.step(id, input)?;
        }
        self.maybe_snapshot(id)?;
        self.after_step(id)
    }

    /// The application snapshots every `SNAPSHOT_EVERY` applied entries (snapshot scenarios only).
    fn maybe_snapshot(&mut self, id: NodeId) -> Result<(), Violation> {
        if !self.opts.scenario.snapshots() {
            return Ok(());
        }
        let Some(host) = self.hosts.get_mut(&id) else {
            return Ok(());
        };
        let Some(raft) = host.raft.as_mut() else {
            return Ok(());
        };
        if host.kv.applied < host.disk.snapshot.index + SNAPSHOT_EVERY
            || raft.applied_index() != host.kv.applied
        {
            return Ok(());
        }
        let bytes = host.kv.snapshot_bytes();
        let snapshot_id = bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        let input = Input::SnapshotTaken {
            index: host.kv.applied,
            id: snapshot_id,
            size: bytes.len() as u64,
        };
        if raft.step(input).is_ok() {
            self.faults.snapshots_taken += 1;
            host.disk.snapshot = raft.snapshot().clone();
            host.disk.files.insert(snapshot_id, bytes);
            host.disk.file_order.push(snapshot_id);
            // Keep the two newest files: a transfer of the previous one may still be running.
            while host.disk.file_order.len() > 2 {
                let old = host.disk.file_order.remove(0);
                if !host.disk.file_order.contains(&old) && old != host.disk.snapshot.id {
                    host.disk.files.remove(&old);
                }
            }
        }
        Ok(())
    }

    fn send(&mut self, m: Message) {
        self.messages_sent += 1;
        if self.blocked.contains(&(m.from, m.to)) {
            self.faults.blocked += 1;
            return;
        }
        let (drop, dup, max_delay) = self.net;
        if self.rng.random_bool(drop) {
            self.faults.drops += 1;
            return;
        }
        let copies = if self.rng.random_bool(dup) {
            self.faults.duplicates += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let at = self.now + self.rng.random_range(1..=max_delay);
            self.schedule(at, Event::Deliver(m.clone()));
        }
    }

    // ----- clients -----------------------------------------------------------------------------

    fn client_start(&mut self, c: u32) {
        if self.clients_stopped {
            return;
        }
        let Some(client) = self.clients.get_mut(c as usize) else {
            return;
        };
        if client.pending.is_some() {
            return;
        }
        let op_id = client.next_op;
        client.next_op += 1;
        let key = self.rng.random_range(0..KEYS);
        // Values are unique per operation, so a history shows which write a read saw.
        let value = ((c as u64 + 1) << 32) | op_id;
        let op = match self.rng.random_range(0..10) {
            0..=3 => KvOp::Put { key, value },
            4..=6 => KvOp::Get { key },
            _ => {
                let expected = self.last_written(key);
                KvOp::Cas {
                    key,
                    expected,
                    new: value,
                }
            }
        };
        let slot = self.history.invoke(c, op, self.now);
        if let Some(client) = self.clients.get_mut(c as usize) {
            client.pending = Some(Pending { op_id, op, slot });
        }
        self.schedule(self.now, Event::ClientSubmit(c, op_id));
        self.schedule(self.now + CLIENT_TIMEOUT_MS, Event::ClientTimeout(c, op_id));
    }

    /// A plausible expected value for a compare-and-set: the last value any client wrote to the key.
    fn last_written(&self, key: u8) -> Option<u64> {
        self.history.ops.iter().rev().find_map(|o| match o.op {
            KvOp::Put { key: k, value }
            | KvOp::Cas {
                key: k, new: value, ..
            } if k == key => Some(value),
            _ => None,
        })
    }

    fn client_submit(&mut self, c: u32, op_id: u64) -> Result<(), Violation> {
        let Some(client) = self.clients.get(c as usize) else {
            return Ok(());
        };
        let Some(pending) = client.pending.filter(|p| p.op_id == op_id) else {
            return Ok(());
        };
        let ids: Vec<NodeId> = self.hosts.keys().copied().collect();
        let target = match client.leader_hint.filter(|h| self.hosts.contains_key(h)) {
            Some(h) => h,
            None => *ids.choose(&mut self.rng).unwrap_or(&1),
        };
        if self.opts.bug_local_reads
            && matches!(pending.op, KvOp::Get { .. })
            && let Some(host) = self.hosts.get_mut(&target).filter(|h| h.raft.is_some())
        {
            let result = host.kv.execute(pending.op);
            let at = self.now + self.rng.random_range(1..=5);
            self.schedule(at, Event::ClientReply(c, op_id, result));
            return Ok(());
        }
        let via_read_index = matches!(pending.op, KvOp::Get { .. }) && self.rng.random_bool(0.5);
        let request_id = self.next_request;
        self.next_request += 1;
        let input = if via_read_index {
            Input::ReadIndex { request_id }
        } else {
            let cmd = Command {
                client: c,
                op_id,
                op: pending.op,
            };
            Input::Propose(cmd.encode())
        };
        let outcome = self.step(target, input)?;
        let hint = match outcome {
            Some(Ok(Stepped::Proposed { index, term })) => {
                if let Some(host) = self.hosts.get_mut(&target) {
                    host.proposals.insert(index, (term, c, op_id));
                }
                Ok(())
            }
            Some(Ok(Stepped::Done)) => {
                if let Some(host) = self.hosts.get_mut(&target) {
                    host.reads.insert(request_id, (c, op_id, pending.op));
                }
                Ok(())
            }
            Some(Err(StepError::NotLeader { leader })) => Err(leader),
            Some(Err(_)) => Err(Some(target)),
            None => Err(None),
        };
        match hint {
            Ok(()) => {
                if let Some(client) = self.clients.get_mut(c as usize) {
                    client.leader_hint = Some(target);
                }
            }
            Err(hint) => {
                if let Some(client) = self.clients.get_mut(c as usize) {
                    client.leader_hint = hint;
                }
                let at = self.now + self.rng.random_range(5..=20);
                self.schedule(at, Event::ClientSubmit(c, op_id));
            }
        }
        Ok(())
    }

    fn client_reply(&mut self, c: u32, op_id: u64, result: KvResult) {
        let Some(client) = self.clients.get_mut(c as usize) else {
            return;
        };
        let Some(pending) = client.pending.filter(|p| p.op_id == op_id) else {
            return;
        };
        client.pending = None;
        self.history.complete(pending.slot, result, self.now);
        if self.heal_time.is_some_and(|h| {
            self.history
                .ops
                .get(pending.slot)
                .is_some_and(|o| o.invoked_at >= h)
        }) {
            self.completed_after_heal += 1;
        }
        let at = self.now + self.rng.random_range(0..=30);
        self.schedule(at, Event::ClientStart(c));
    }

    fn client_timeout(&mut self, c: u32, op_id: u64) {
        let Some(client) = self.clients.get_mut(c as usize) else {
            return;
        };
        if client.pending.is_some_and(|p| p.op_id == op_id) {
            // The outcome stays unknown in the history: it may still take effect.
            client.pending = None;
            client.leader_hint = None;
            let at = self.now + self.rng.random_range(1..=30);
            self.schedule(at, Event::ClientStart(c));
        }
    }

    // ----- faults ------------------------------------------------------------------------------

    fn leader(&self) -> Option<NodeId> {
        self.hosts
            .values()
            .filter_map(|h| h.raft.as_ref())
            .filter(|r| r.role() == Role::Leader)
            .max_by_key(|r| r.term())
            .map(|r| r.id())
    }

    fn chaos(&mut self) -> Result<(), Violation> {
        if self.heal_time.is_some() {
            return Ok(());
        }
        let churn = scenario_is_churn(self.opts.scenario);
        let next = self.now
            + if churn {
                self.rng.random_range(30..=120)
            } else {
                self.rng.random_range(100..=400)
            };
        self.schedule(next, Event::Chaos);
        let scenario = self.opts.scenario;
        let mut actions: Vec<u8> = Vec::new();
        if scenario.partitions() {
            actions.extend([0, 1, 2, 3]);
        }
        if scenario.crashes() {
            actions.extend([4, 5]);
        }
        if scenario.membership() {
            actions.extend([6, 6]);
        }
        if matches!(scenario, Scenario::Partitions | Scenario::Chaos) {
            actions.push(7);
        }
        let Some(&action) = actions.choose(&mut self.rng) else {
            return Ok(());
        };
        let ids: Vec<NodeId> = self.hosts.keys().copied().collect();
        match action {
            0 => self.blocked.clear(),
            1 => {
                // Symmetric partition: a minority cut off from the rest.
                self.blocked.clear();
                let k = self.rng.random_range(1..=ids.len() / 2);
                let side: Vec<NodeId> = ids.choose_multiple(&mut self.rng, k).copied().collect();
                for &a in &side {
                    for &b in &ids {
                        if !side.contains(&b) {
                            self.blocked.insert((a, b));
                            self.blocked.insert((b, a));
                        }
                    }
                }
                self.faults.partitions += 1;
            }
            2 => {
                // Asymmetric: some links fail in one direction only.
                for _ in 0..self.rng.random_range(1..=3) {
                    let pair: Vec<NodeId> =
                        ids.choose_multiple(&mut self.rng, 2).copied().collect();
                    if let [a, b] = pair[..] {
                        self.blocked.insert((a, b));
                    }
                }
                self.faults.partitions += 1;
            }
            3 => {
                // The leader can send but not hear: check-quorum must make it step down.
                if let Some(l) = self.leader() {
                    self.blocked.clear();
                    for &b in &ids {
                        if b != l {
                            self.blocked.insert((b, l));
                        }
                    }
                    self.faults.partitions += 1;
                }
            }
            4 => {
                let up: Vec<NodeId> = ids.iter().copied().filter(|id| self.is_up(*id)).collect();
                let prefer_leader = self.rng.random_bool(if churn { 0.9 } else { 0.3 });
                let victim = match self.leader() {
                    Some(l) if prefer_leader => Some(l),
                    _ => up.choose(&mut self.rng).copied(),
                };
                if let Some(v) = victim {
                    self.crash(v);
                }
            }
            5 => {
                let down: Vec<NodeId> = ids.iter().copied().filter(|id| !self.is_up(*id)).collect();
                if let Some(&v) = down.choose(&mut self.rng) {
                    self.restart(v)?;
                }
            }
            6 => self.membership_action()?,
            _ => {
                if let Some(l) = self.leader() {
                    let voters: Vec<NodeId> = self
                        .hosts
                        .get(&l)
                        .and_then(|h| h.raft.as_ref())
                        .map(|r| {
                            r.membership()
                                .voters
                                .iter()
                                .copied()
                                .filter(|&v| v != l)
                                .collect()
                        })
                        .unwrap_or_default();
                    if let Some(&to) = voters.choose(&mut self.rng)
                        && let Some(Ok(_)) = self.step(l, Input::TransferLeadership { to })?
                    {
                        self.faults.transfers += 1;
                    }
                }
            }
        }
        Ok(())
    }

    fn is_up(&self, id: NodeId) -> bool {
        self.hosts.get(&id).is_some_and(|h| h.raft.is_some())
    }

    /// Crash a host: memory is lost, the disk stays.
    pub fn crash(&mut self, id: NodeId) {
        if let Some(host) = self.hosts.get_mut(&id) {
            if host.raft.take().is_some() {
                self.faults.crashes += 1;
            }
            host.kv = Kv::default();
            host.proposals.clear();
            host.reads.clear();
            // The write in progress never reached the disk (its early messages may have left),
            // and a commit index written without an fsync may be lost too.
            host.in_flight = None;
            if self.rng.random_bool(0.5) {
                host.disk.hard_state.commit = host.disk.synced_commit;
            }
        }
    }

    pub fn restart(&mut self, id: NodeId) -> Result<(), Violation> {
        if self.is_up(id) {
            return Ok(());
        }
        self.faults.restarts += 1;
        self.boot(id)
            .map_err(|detail| self.violation(Property::SnapshotConsistency, detail))?;
        self.after_step(id)
    }

    fn membership_action(&mut self) -> Result<(), Violation> {
        let Some(l) = self.leader() else {
            return Ok(());
        };
        let Some(membership) = self
            .hosts
            .get(&l)
            .and_then(|h| h.raft.as_ref())
            .map(|r| r.membership().clone())
        else {
            return Ok(());
        };
        let max_new = self.opts.nodes as NodeId + 4;
        let change = if let Some(&learner) = membership.learners.iter().next() {
            ConfChange::Promote(learner)
        } else if membership.voters.len() < 5
            && self.next_node_id <= max_new
            && self.rng.random_bool(0.6)
        {
            ConfChange::AddLearner(self.next_node_id)
        } else if membership.voters.len() > 3 {
            let voters: Vec<NodeId> = membership.voters.iter().copied().collect();
            match voters.choose(&mut self.rng) {
                Some(&v) => ConfChange::Remove(v),
                None => return Ok(()),
            }
        } else {
            return Ok(());
        };
        let result = self.step(l, Input::ProposeConfChange(change))?;
        if let Some(Ok(_)) = result {
            self.faults.membership_changes += 1;
            if let ConfChange::AddLearner(id) = change {
                self.next_node_id += 1;
                self.add_host(id, Disk::default())?;
                self.after_step(id)?;
            }
        }
        Ok(())
    }

    fn heal(&mut self) -> Result<(), Violation> {
        self.heal_time = Some(self.now);
        self.blocked.clear();
        self.net = (0.0, 0.0, self.net.2.min(10));
        let ids: Vec<NodeId> = self.hosts.keys().copied().collect();
        for id in ids {
            self.restart(id)?;
        }
        Ok(())
    }

    /// After the quiet period: one leader, and every member applied everything it committed.
    fn check_converged(&self) -> Result<(), Violation> {
        let Some(l) = self.leader() else {
            return Err(
                self.violation(Property::Liveness, "no leader at the end of the run".into())
            );
        };
        let Some(leader) = self.hosts.get(&l).and_then(|h| h.raft.as_ref()) else {
            return Err(self.violation(Property::Liveness, "leader vanished".into()));
        };
        let commit = leader.commit_index();
        for m in leader.membership().members() {
            let Some(host) = self.hosts.get(&m) else {
                return Err(self.violation(Property::Liveness, format!("member {m} has no host")));
            };
            let applied = host.kv.applied;
            let node_commit = host.raft.as_ref().map_or(0, |r| r.commit_index());
            if applied != commit || node_commit != commit {
                return Err(self.violation(
                    Property::Liveness,
                    format!(
                        "member {m} did not converge: commit {node_commit}, applied {applied}, leader {l} commit {commit}"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The client history so far.
    pub fn history(&self) -> &History {
        &self.history
    }
}

fn scenario_is_churn(scenario: Scenario) -> bool {
    scenario == Scenario::LeaderChurn
}

/// SplitMix64: a small, fixed mixing function for deriving seeds.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Membership;

    fn first_chunk() -> Input {
        Input::Message(Message {
            from: 2,
            to: 1,
            term: 1,
            body: MessageBody::InstallSnapshot {
                meta: SnapshotMeta {
                    index: 5,
                    term: 1,
                    membership: Membership::with_voters([1, 2, 3]),
                    id: 99,
                    size: 16,
                },
                offset: 0,
                data: vec![7; 8],
                done: false,
            },
        })
    }

    fn ack_queued(cluster: &Cluster) -> bool {
        cluster.queue.values().any(|e| {
            matches!(e, Event::Deliver(m)
                if matches!(m.body, MessageBody::InstallSnapshotResponse { .. }))
        })
    }

    /// The simulated driver treats incoming snapshot chunks as the consensus actor does: each is
    /// written and fsynced (`sync_data`) before anything else of its `Ready`, so it is durable
    /// before the `Ready`'s log write (the part a crash can lose) and before its acknowledgement
    /// leaves (§7 with persist-before-send, as for appends).
    #[test]
    fn snapshot_chunk_is_durable_before_its_ack_and_survives_a_crash() {
        let mut cluster = Cluster::new(SimOptions::for_seed(0));
        let stepped = cluster.step(1, first_chunk()).expect("no violation");
        assert!(matches!(stepped, Some(Ok(_))), "{stepped:?}");
        let life = cluster.hosts[&1].life;
        cluster.process_ready(1, life).expect("ready");
        // The `Ready`'s write (the new term) is in flight; the chunk is on disk already.
        assert!(cluster.hosts[&1].in_flight.is_some());
        assert_eq!(cluster.hosts[&1].disk.partial.get(&99), Some(&vec![7; 8]));
        assert!(
            !ack_queued(&cluster),
            "acknowledged before the write completed"
        );
        cluster.crash(1);
        assert_eq!(
            cluster.hosts[&1].disk.partial.get(&99),
            Some(&vec![7; 8]),
            "a crash lost a chunk the driver had fsynced"
        );
        assert_eq!(
            cluster.hosts[&1].disk.hard_state.term, 0,
            "the write was lost"
        );
        cluster.restart(1).expect("restart");

        // Without a crash the acknowledgement leaves once the write is done.
        let mut cluster = Cluster::new(SimOptions::for_seed(0));
        cluster.step(1, first_chunk()).expect("no violation");
        let life = cluster.hosts[&1].life;
        cluster.process_ready(1, life).expect("ready");
        cluster.finish_ready(1, life).expect("persisted");
        assert!(ack_queued(&cluster));
        assert_eq!(cluster.hosts[&1].disk.hard_state.term, 1);
    }

    /// The persist-before-send check covers snapshot acknowledgements: an acknowledgement of more
    /// bytes than the disk holds is a violation.
    #[test]
    fn snapshot_ack_beyond_the_bytes_on_disk_is_a_violation() {
        let mut cluster = Cluster::new(SimOptions::for_seed(0));
        cluster.step(1, first_chunk()).expect("no violation");
        let life = cluster.hosts[&1].life;
        cluster.process_ready(1, life).expect("ready");
        // A driver that lost the chunk (or never wrote it) before acknowledging.
        if let Some(h) = cluster.hosts.get_mut(&1) {
            h.disk.partial.clear();
        }
        let v = cluster
            .finish_ready(1, life)
            .expect_err("acknowledged bytes not on disk");
        assert_eq!(v.property, Property::SnapshotConsistency);
        assert!(
            v.detail.contains("acknowledged 8 bytes of snapshot 99"),
            "{v}"
        );
    }
}
