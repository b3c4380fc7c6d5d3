//! The simulated world: hosts (a core, its disk and its state machine), the network, the clients,
//! and the fault injector, all run from one event queue in virtual time.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::check::{Checker, Property, Violation};
use super::history::History;
use super::kv::{Command, Kv, KvOp, KvResult};
use super::{FaultCounts, Scenario, SimOptions, SimReport};
use crate::io::{Config, Input, PersistedState, ReadResult, Stepped};
use crate::message::{AppendResult, Message, MessageBody, SnapshotResult};
use crate::raft::Raft;
use crate::types::{
    ConfChange, Entry, HardState, Index, NodeId, Payload, Role, SnapshotId, SnapshotMeta, Term,
};
use crate::{Bug, StepError};

const TICK_MS: u64 = 10;
const CLIENT_TIMEOUT_MS: u64 = 1_000;
const SNAPSHOT_EVERY: u64 = 32;
const SNAPSHOT_KEEP: u64 = 8;
const KEYS: u8 = 3;
/// Messages a link remembers for a replay.
const REPLAY_DEPTH: usize = 64;

/// Chaos actions (a seed's swarm draws which of its scenario's it uses).
const HEAL_PARTITION: u8 = 0;
const SPLIT: u8 = 1;
const ONE_WAY: u8 = 2;
const DEAF_LEADER: u8 = 3;
const CRASH: u8 = 4;
const RESTART: u8 = 5;
const MEMBERSHIP: u8 = 6;
const TRANSFER: u8 = 7;
const REPLAY: u8 = 8;
const LAG: u8 = 9;
const ISOLATE_LEADER: u8 = 10;

/// Seeds the random stream of the slow-clock fault (apart from the seed's main stream).
const SLOW_CLOCK_STREAM: u64 = 0x534c_4f57_434c_4f43;
/// The stream the snapshot window (chunks in flight) is drawn from, apart from the others so that
/// adding it changed no other choice of an existing seed.
const SNAPSHOT_WINDOW_STREAM: u64 = 0x534e_4150_5749_4e44;

/// One seed's fault schedule within its scenario (swarm testing): which of the scenario's faults it
/// uses and how hard, and how often it strikes at the dangerous moments (a fresh leader, a leader
/// holding uncommitted entries, a follower that just persisted an append, a follower that just
/// installed a snapshot). Seeds that hammer a few faults find what seeds sprinkling all of them
/// miss. Drawn from its own stream of the seed, so a seed still replays exactly.
#[derive(Clone, Debug)]
struct Swarm {
    /// (drop probability, duplicate probability, max delay in ms)
    net: (f64, f64, u64),
    actions: Vec<u8>,
    /// Milliseconds between chaos actions, drawn from this range.
    chaos_every: (u64, u64),
    /// A fresh leader is struck (crashed, or isolated where the scenario partitions) with this
    /// probability, within 25 ms of winning.
    strike_new_leader: f64,
    /// A leader is struck right after it appended a proposal or a membership change (it holds
    /// uncommitted entries).
    strike_uncommitted_leader: f64,
    /// A follower crashes right after persisting an append.
    crash_after_append: f64,
    /// The leader's link to a follower that just installed a snapshot replays its last messages.
    replay_after_install: f64,
    /// Links remember their last messages, for replays.
    replays: bool,
    /// After a membership change is accepted, another is tried at once.
    membership_burst: f64,
    /// Share of gets that use a read index (the rest go through the log).
    read_index_share: f64,
    /// A node that starts a campaign gets the last messages of its inbound links again (old vote
    /// grants, old appends).
    replay_on_campaign: f64,
    /// Snapshot chunks in flight per transfer (the cores' `snapshot_chunks_in_flight`): 1 is the
    /// paper's one round trip per chunk, more is the nodes' pipelined transfer (default 4).
    snapshot_window: usize,
    /// Entries per append (the cores' `max_entries_per_append`): one entry at a time opens the
    /// windows where a leader's earlier-term entries reach a majority without its no-op.
    max_entries: usize,
    /// At most one strike per this many milliseconds.
    cooldown_ms: u64,
    /// The cores' check-quorum (with leader leases) and pre-vote: both supported modes, and a
    /// leader without check-quorum goes on believing it leads when cut off.
    check_quorum: bool,
    pre_vote: bool,
    /// After a timeout, a client tries the same node again with this probability.
    sticky_clients: f64,
    /// How long a client waits for an answer before it gives up (the outcome stays unknown) and
    /// looks for the leader again.
    client_timeout_ms: u64,
    /// A fresh leader's timer starts running slow with this probability (see
    /// [`Cluster::maybe_slow_clock`]), by a factor drawn from `slow_factor`.
    slow_clock: f64,
    slow_factor: (u64, u64),
}

impl Swarm {
    fn draw(opts: &SimOptions) -> Swarm {
        let scenario = opts.scenario;
        let (drop, dup, delay) = scenario.network();
        let mut rng = ChaCha8Rng::seed_from_u64(splitmix64(opts.seed ^ 0x5357_4152_4d5f_5345));
        let churn = scenario_is_churn(scenario);
        let calm = Swarm {
            net: (drop, dup, delay),
            actions: Vec::new(),
            chaos_every: (100, 400),
            strike_new_leader: 0.0,
            strike_uncommitted_leader: 0.0,
            crash_after_append: 0.0,
            replay_after_install: 0.0,
            replays: false,
            membership_burst: 0.0,
            read_index_share: 0.5,
            replay_on_campaign: 0.0,
            max_entries: if churn { 1 } else { 8 },
            snapshot_window: 4,
            cooldown_ms: 1_000,
            check_quorum: !churn,
            pre_vote: !churn,
            client_timeout_ms: CLIENT_TIMEOUT_MS,
            sticky_clients: 0.0,
            slow_clock: 0.0,
            slow_factor: (1, 1),
        };
        if scenario == Scenario::Calm {
            return calm;
        }
        let mut scale = |p: f64| (p * rng.random_range(0.25..=2.0)).min(0.5);
        let net = (scale(drop), scale(dup), delay);
        let net = (
            net.0,
            net.1,
            rng.random_range((delay / 2).max(2)..=delay * 2),
        );
        let mut all: Vec<u8> = Vec::new();
        if scenario.partitions() {
            all.extend([HEAL_PARTITION, SPLIT, ONE_WAY, DEAF_LEADER]);
        }
        if scenario.crashes() {
            all.extend([CRASH, RESTART]);
        }
        if scenario.membership() {
            all.extend([MEMBERSHIP, MEMBERSHIP]);
        }
        if matches!(scenario, Scenario::Partitions | Scenario::Chaos) {
            all.push(TRANSFER);
        }
        if scenario.partitions() && scenario.snapshots() {
            all.push(LAG);
        }
        if matches!(scenario, Scenario::Partitions | Scenario::LeaderChurn) {
            all.push(ISOLATE_LEADER);
        }
        all.push(REPLAY);
        let mut actions: Vec<u8> = all
            .iter()
            .copied()
            .filter(|_| rng.random_bool(0.75))
            .collect();
        if actions.is_empty()
            && let Some(&a) = all.choose(&mut rng)
        {
            actions.push(a);
        }
        let chaos_every = if churn {
            let lo = rng.random_range(20..=60);
            (lo, lo * 3)
        } else {
            let lo = rng.random_range(50..=150);
            (lo, lo * 4)
        };
        let strikes = scenario.crashes() || scenario.partitions();
        let mut maybe = |enabled: bool, lo: f64, hi: f64| {
            if enabled && rng.random_bool(0.5) {
                rng.random_range(lo..=hi)
            } else {
                0.0
            }
        };
        let strike_new_leader = if churn {
            maybe(true, 0.3, 0.9).max(0.3)
        } else {
            maybe(strikes, 0.1, 0.6)
        };
        let strike_uncommitted_leader = if churn {
            maybe(true, 0.05, 0.5).max(0.05)
        } else {
            maybe(strikes, 0.05, 0.5)
        };
        let crash_after_append = maybe(scenario.crashes(), 0.02, 0.3);
        let replay_after_install = maybe(scenario.snapshots(), 0.2, 1.0);
        let membership_burst = maybe(scenario.membership(), 0.3, 1.0);
        let replay_on_campaign = maybe(true, 0.2, 1.0);
        let sticky_clients = maybe(true, 0.3, 0.9);
        let replays =
            actions.contains(&REPLAY) || replay_after_install > 0.0 || replay_on_campaign > 0.0;
        // Both are supported modes. A removed server that never learned of its removal disrupts a
        // cluster that has neither (thesis §4.2.3), so membership scenarios keep one of them.
        let check_quorum = !churn && rng.random_bool(0.7);
        let pre_vote = !churn && (rng.random_bool(0.7) || scenario.membership() && !check_quorum);
        let max_entries = if churn {
            1
        } else {
            *[1, 2, 8].choose(&mut rng).unwrap_or(&8)
        };
        // Slow clocks came later: drawn from their own stream, so that every other choice of an
        // existing seed stays what it was.
        let mut clock_rng = ChaCha8Rng::seed_from_u64(splitmix64(opts.seed ^ SLOW_CLOCK_STREAM));
        let (slow_clock, slow_factor) = if clock_rng.random_bool(0.75) {
            let lo = clock_rng.random_range(3..=8);
            (clock_rng.random_range(0.2..=1.0), (lo, lo * 3))
        } else {
            (0.0, (1, 1))
        };
        let mut window_rng =
            ChaCha8Rng::seed_from_u64(splitmix64(opts.seed ^ SNAPSHOT_WINDOW_STREAM));
        let snapshot_window = window_rng.random_range(1..=4);
        Swarm {
            net,
            actions,
            chaos_every,
            strike_new_leader,
            strike_uncommitted_leader,
            crash_after_append,
            replay_after_install,
            replays,
            membership_burst,
            read_index_share: rng.random_range(0.2..=0.9),
            replay_on_campaign,
            max_entries,
            snapshot_window,
            // Churn strikes in quick succession: Figure 8 takes three leaders in a row.
            cooldown_ms: if churn {
                rng.random_range(0..=40)
            } else {
                rng.random_range(50..=400)
            },
            check_quorum,
            pre_vote,
            client_timeout_ms: if rng.random_bool(0.5) {
                CLIENT_TIMEOUT_MS
            } else {
                rng.random_range(150..=600)
            },
            sticky_clients,
            slow_clock,
            slow_factor,
        }
    }
}

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
    /// Read-index requests made here: request id → (client, op id, op, the highest index known
    /// committed anywhere when the read was asked).
    reads: BTreeMap<u64, (u32, u64, KvOp, Index)>,
    ready_scheduled: bool,
    /// A `Ready` whose early messages have left and whose disk write is still in progress: a crash
    /// now loses it.
    in_flight: Option<crate::io::Ready>,
    /// A `Ready` that installs a received snapshot, while the driver checks and decodes the file
    /// (the consensus actor does that on a blocking thread): the core keeps stepping, nothing of
    /// this `Ready` has happened beyond its chunk writes, and a crash drops it.
    loading: Option<crate::io::Ready>,
    /// The last term this host was seen leading.
    led_term: Term,
    /// The last term this host was seen campaigning in.
    campaign_term: Term,
    /// Until this time the host's timer ticks every `TICK_MS * tick_factor` ms (a slow clock).
    slow_until: u64,
    tick_factor: u64,
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
    /// The snapshot the host's loading `Ready` installs was checked and decoded.
    Loaded(NodeId, u32),
    ClientStart(u32),
    ClientSubmit(u32, u64),
    ClientReply(u32, u64, KvResult),
    ClientTimeout(u32, u64),
    Chaos,
    Heal,
    LivenessDeadline,
    StopClients,
    /// Crash this incarnation of the node (if it still runs), restart it a little later.
    Strike(NodeId, u32),
    Restart(NodeId),
    /// Lift the partition of this generation, if it is still in place.
    Unpartition(u64),
    /// Cut this incarnation of the node off from everyone for this many milliseconds.
    Isolate(NodeId, u32, u64),
    /// Deliver these messages again, in order (recorded earlier on one link).
    Redeliver(Vec<Message>),
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
    /// Bumped by every change of `blocked`.
    partition_gen: u64,
    net: (f64, f64, u64),
    swarm: Swarm,
    /// The last messages of each link, for replays.
    links: BTreeMap<(NodeId, NodeId), VecDeque<Message>>,
    /// When the last strike at a dangerous moment happened.
    last_strike: Option<u64>,
    /// The slow-clock fault's own random stream (its draws leave the main stream alone).
    clock_rng: ChaCha8Rng,
    /// A node cut off for a set time stays cut off until then: chaos leaves the partition alone.
    hold_partition_until: u64,
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
        let swarm = Swarm::draw(&opts);
        let net = swarm.net;
        let mut cluster = Cluster {
            rng,
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            hosts: BTreeMap::new(),
            clients: Vec::new(),
            blocked: BTreeSet::new(),
            partition_gen: 0,
            net,
            swarm,
            links: BTreeMap::new(),
            last_strike: None,
            clock_rng: ChaCha8Rng::seed_from_u64(splitmix64(opts.seed ^ !SLOW_CLOCK_STREAM)),
            hold_partition_until: 0,
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
            pre_vote: self.swarm.pre_vote,
            check_quorum: self.swarm.check_quorum,
            max_inflight: 4,
            max_entries_per_append: self.swarm.max_entries,
            max_bytes_per_append: 1024,
            snapshot_chunk_size: 16,
            snapshot_chunks_in_flight: self.swarm.snapshot_window,
            log_keep_after_snapshot: SNAPSHOT_KEEP,
            bug: self.opts.bug,
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
                loading: None,
                led_term: 0,
                campaign_term: 0,
                slow_until: 0,
                tick_factor: 1,
            },
        );
        self.boot(id)
            .map_err(|detail| self.violation(Property::Recovery, detail))?;
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
                let at = self.now + self.tick_period(id);
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
            Event::Loaded(id, life) => self.loaded(id, life)?,
            Event::ClientStart(c) => self.client_start(c),
            Event::ClientSubmit(c, op_id) => self.client_submit(c, op_id)?,
            Event::ClientReply(c, op_id, result) => self.client_reply(c, op_id, result),
            Event::ClientTimeout(c, op_id) => self.client_timeout(c, op_id),
            Event::Chaos => self.chaos()?,
            Event::Strike(id, life) => {
                if self.heal_time.is_none()
                    && self
                        .hosts
                        .get(&id)
                        .is_some_and(|h| h.life == life && h.raft.is_some())
                {
                    self.crash(id);
                    let at = self.now + self.rng.random_range(20..=200);
                    self.schedule(at, Event::Restart(id));
                }
            }
            Event::Isolate(id, life, ms) => {
                if self.heal_time.is_none() && self.hosts.get(&id).is_some_and(|h| h.life == life) {
                    self.isolate(id, ms);
                }
            }
            Event::Unpartition(generation) => {
                if self.partition_gen == generation {
                    self.set_blocked(BTreeSet::new());
                }
            }
            Event::Redeliver(messages) => {
                if self.heal_time.is_none() {
                    self.redeliver(messages);
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
        let new_campaign = raft.role() == Role::Candidate && raft.term() > host.campaign_term;
        if new_campaign {
            host.campaign_term = raft.term();
        }
        if raft.has_ready() && !host.ready_scheduled {
            host.ready_scheduled = true;
            let at = self.now + self.rng.random_range(0..=2);
            self.schedule(at, Event::Ready(id, life));
        }
        // A fresh leader is struck within a few messages of winning, the moment when its no-op
        // is not yet everywhere (Figure 8).
        if new_leader {
            let p = self.swarm.strike_new_leader;
            self.maybe_strike(id, life, p, 25);
            self.maybe_slow_clock(id, 0);
        }
        // A campaign: old traffic to the candidate (grants of its earlier campaigns) comes back.
        let p = self.swarm.replay_on_campaign;
        if new_campaign && p > 0.0 && self.heal_time.is_none() && self.rng.random_bool(p.min(1.0)) {
            let from: Vec<NodeId> = self.hosts.keys().copied().filter(|&f| f != id).collect();
            for f in from {
                self.replay(f, id);
            }
        }
        Ok(())
    }

    /// At a dangerous moment: with probability `p` (and at most once per cooldown, during the
    /// faults), crash the node within `within_ms`, or, where the scenario partitions rather than
    /// crashes, cut it off from everyone for a while.
    fn maybe_strike(&mut self, id: NodeId, life: u32, p: f64, within_ms: u64) {
        if p <= 0.0
            || self.heal_time.is_some()
            || self
                .last_strike
                .is_some_and(|t| self.now < t + self.swarm.cooldown_ms)
            || !self.rng.random_bool(p.min(1.0))
        {
            return;
        }
        self.last_strike = Some(self.now);
        let scenario = self.opts.scenario;
        let crash = scenario.crashes() && (!scenario.partitions() || self.rng.random_bool(0.5));
        if crash {
            let at = self.now + self.rng.random_range(0..=within_ms);
            self.schedule(at, Event::Strike(id, life));
        } else if scenario.partitions() {
            let ms = if scenario_is_churn(scenario) {
                self.rng.random_range(20..=150)
            } else {
                self.rng.random_range(50..=300)
            };
            let at = self.now + self.rng.random_range(0..=within_ms);
            self.schedule(at, Event::Isolate(id, life, ms));
        }
    }

    /// The time to a host's next tick: `TICK_MS`, or longer while its clock runs slow (never
    /// after the faults are healed).
    fn tick_period(&self, id: NodeId) -> u64 {
        match self.hosts.get(&id) {
            Some(h) if self.heal_time.is_none() && self.now < h.slow_until => {
                TICK_MS * h.tick_factor
            }
            _ => TICK_MS,
        }
    }

    /// With the seed's probability, a leader's timer runs slow for a while (a starved timer task,
    /// a paused VM, a clock running slow), so every timeout it counts in ticks — the election
    /// timeout, the check-quorum lease — stretches: at a fresh leader, at every chaos action, and
    /// whenever a leader is cut off (for at least as long as the cut). Cut off, the others elect a
    /// new leader and commit while the old one, its lease measured by the slow clock, still
    /// believes it leads. Safety must not depend on any node's clock: only a read index confirmed
    /// by a quorum round stays correct.
    fn maybe_slow_clock(&mut self, id: NodeId, at_least_ms: u64) {
        let p = self.swarm.slow_clock;
        if p <= 0.0
            || self.heal_time.is_some()
            || !self.is_up(id)
            || !self.clock_rng.random_bool(p.min(1.0))
        {
            return;
        }
        let (lo, hi) = self.swarm.slow_factor;
        let factor = self.clock_rng.random_range(lo..=hi);
        let ms = at_least_ms + self.clock_rng.random_range(200..=1_000);
        let now = self.now;
        if let Some(h) = self.hosts.get_mut(&id) {
            h.tick_factor = factor;
            h.slow_until = now + ms;
            self.faults.slow_clocks += 1;
        }
    }

    /// Cut `id` off from everyone for `ms`.
    fn isolate(&mut self, id: NodeId, ms: u64) {
        if self.leader() == Some(id) {
            self.maybe_slow_clock(id, ms);
        }
        let mut blocked = BTreeSet::new();
        for &b in self.hosts.keys().filter(|&&b| b != id) {
            blocked.insert((id, b));
            blocked.insert((b, id));
        }
        self.set_blocked(blocked);
        self.faults.partitions += 1;
        self.hold_partition_until = self.now + ms;
        self.schedule(self.now + ms, Event::Unpartition(self.partition_gen));
    }

    fn set_blocked(&mut self, blocked: BTreeSet<(NodeId, NodeId)>) {
        self.blocked = blocked;
        self.partition_gen += 1;
    }

    /// The link (from, to) re-delivers, in order, the messages it carried last.
    fn replay(&mut self, from: NodeId, to: NodeId) {
        let Some(recent) = self.links.get(&(from, to)) else {
            return;
        };
        if recent.is_empty() {
            return;
        }
        let recent: Vec<Message> = recent.iter().cloned().collect();
        self.redeliver(recent);
    }

    fn redeliver(&mut self, messages: Vec<Message>) {
        if messages.is_empty() {
            return;
        }
        self.faults.replays += 1;
        let mut at = self.now + self.rng.random_range(1..=5);
        for m in messages {
            self.schedule(at, Event::Deliver(m));
            at += self.rng.random_range(0..=2);
        }
    }

    /// The driver takes a `Ready`, as the consensus actor does: snapshot chunks are written at
    /// once; an install waits a little virtual time for its file to be checked and decoded (the
    /// core stepping meanwhile), then is durable at once; the early messages leave; committed entries are applied and clients
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
        let Some(rd) = raft.ready() else {
            return Ok(());
        };
        let contract = |detail: String| Violation {
            property: Property::SnapshotConsistency,
            time: now,
            detail,
        };
        // 1. Snapshot chunks, then an install, before anything else of the `Ready`
        //    (`handle_ready` in actors/node/src/consensus/actor.rs). A chunk is written to the
        //    partial file without an fsync: a crash loses the partial file (`crash`; a starting
        //    node removes `*.partial`, and the restarted core, whose transfer state was in memory,
        //    asks for the transfer again from offset 0), so a chunk acknowledgement (sent in
        //    step 5) only claims bytes this life of the node holds; step 5 checks that. The install
        //    is durable at once (the file fsynced, renamed, its directory fsynced), outside the
        //    write a crash can lose below (`in_flight`).
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
        if rd.snapshot_install.is_some() {
            // The install waits for the file to be checked and decoded, which takes a while; the
            // core keeps stepping meanwhile (`Ready` not advanced, no other `Ready` taken).
            host.loading = Some(rd);
            let at = now + self.rng.random_range(1..=20);
            self.schedule(at, Event::Loaded(id, life));
            return Ok(());
        }
        self.process_ready_rest(id, life, rd)
    }

    /// A loading snapshot is checked and decoded: the rest of its `Ready`.
    fn loaded(&mut self, id: NodeId, life: u32) -> Result<(), Violation> {
        let Some(host) = self.hosts.get_mut(&id) else {
            return Ok(());
        };
        if host.life != life {
            return Ok(());
        }
        let Some(rd) = host.loading.take() else {
            return Ok(());
        };
        self.process_ready_rest(id, life, rd)
    }

    /// A `Ready` after its chunk writes: the install, then steps 2 and 3, the write put in flight.
    fn process_ready_rest(
        &mut self,
        id: NodeId,
        life: u32,
        mut rd: crate::io::Ready,
    ) -> Result<(), Violation> {
        let now = self.now;
        let Some(host) = self.hosts.get_mut(&id) else {
            return Ok(());
        };
        let contract = |detail: String| Violation {
            property: Property::SnapshotConsistency,
            time: now,
            detail,
        };
        let mut replay = None;
        if let Some(meta) = &rd.snapshot_install {
            let bytes = host.disk.partial.remove(&meta.id).unwrap_or_default();
            if meta.index < host.kv.applied {
                return Err(Violation {
                    property: Property::MonotonicCommit,
                    time: now,
                    detail: format!(
                        "node {id}: installing snapshot {} at index {} takes its state machine \
                         back from index {}",
                        meta.id, meta.index, host.kv.applied
                    ),
                });
            }
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
            // A dangerous moment: the leader's link delivers the transfer again, a little later,
            // once the follower has gone on appending after the snapshot.
            let leader = host.raft.as_ref().and_then(Raft::leader);
            let p = self.swarm.replay_after_install;
            if let Some(leader) = leader
                && p > 0.0
                && self.heal_time.is_none()
                && self.rng.random_bool(p.min(1.0))
                && let Some(recent) = self.links.get(&(leader, id))
            {
                let at = now + self.rng.random_range(20..=400);
                replay = Some((at, recent.iter().cloned().collect::<Vec<_>>()));
            }
        }
        // 2. What may leave before the write: only a leader's traffic of a term durable here. What
        //    a message promises about the disk is checked first (it must hold already, before the
        //    write), then the kind of message.
        let early = std::mem::take(&mut rd.early_messages);
        for m in &early {
            if let Some(detail) = broken_promise(id, &host.disk, m) {
                return Err(Violation {
                    property: Property::PersistBeforeSend,
                    time: now,
                    detail: format!("{detail} (sent before the write)"),
                });
            }
        }
        if let Some(m) = early
            .iter()
            .find(|m| !m.body.is_from_leader() || m.term > host.disk.hard_state.term)
        {
            return Err(Violation {
                property: Property::PersistBeforeSend,
                time: now,
                detail: format!(
                    "node {id}: {} of term {} sent before the write, durable term {}",
                    m.body.kind(),
                    m.term,
                    host.disk.hard_state.term
                ),
            });
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
            let Some((client, op_id, op, committed_before)) = host.reads.remove(&rs.request_id)
            else {
                continue;
            };
            match rs.result {
                ReadResult::Ready { index } => {
                    // §6.4: the read point covers every entry committed before the read was asked
                    // (one a client may already have seen), whoever committed it.
                    if index < committed_before {
                        return Err(Violation {
                            property: Property::StaleRead,
                            time: now,
                            detail: format!(
                                "node {id}: read index {index} released for a read asked when \
                                 index {committed_before} was already committed"
                            ),
                        });
                    }
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
        if let Some((at, messages)) = replay {
            self.schedule(at, Event::Redeliver(messages));
        }
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
            if let Some(detail) = broken_promise(id, &host.disk, m) {
                return Err(Violation {
                    property: Property::PersistBeforeSend,
                    time: now,
                    detail,
                });
            }
        }
        let appended = !rd.entries.is_empty() && raft.role() != Role::Leader;
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
        // A dangerous moment: a follower that just persisted (and acknowledged) an append.
        if appended {
            let p = self.swarm.crash_after_append;
            if self.opts.scenario.crashes() {
                self.maybe_strike(id, life, p, 1);
            }
        }
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
        if self.swarm.replays && self.heal_time.is_none() {
            let link = self.links.entry((m.from, m.to)).or_default();
            if link.len() == REPLAY_DEPTH {
                link.pop_front();
            }
            link.push_back(m.clone());
        }
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
        let timeout = self.swarm.client_timeout_ms;
        self.schedule(self.now + timeout, Event::ClientTimeout(c, op_id));
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
        if self.opts.bug == Some(Bug::LocalReads)
            && matches!(pending.op, KvOp::Get { .. })
            && let Some(host) = self.hosts.get_mut(&target).filter(|h| h.raft.is_some())
        {
            let result = host.kv.execute(pending.op);
            let at = self.now + self.rng.random_range(1..=5);
            self.schedule(at, Event::ClientReply(c, op_id, result));
            return Ok(());
        }
        let via_read_index = matches!(pending.op, KvOp::Get { .. })
            && self.rng.random_bool(self.swarm.read_index_share);
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
        let committed_before = self.checker.max_committed();
        let outcome = self.step(target, input)?;
        let hint = match outcome {
            Some(Ok(Stepped::Proposed { index, term })) => {
                let mut life = None;
                if let Some(host) = self.hosts.get_mut(&target) {
                    host.proposals.insert(index, (term, c, op_id));
                    life = Some(host.life);
                }
                // A dangerous moment: the leader holds an entry not yet committed.
                if let Some(life) = life {
                    let p = self.swarm.strike_uncommitted_leader;
                    self.maybe_strike(target, life, p, 3);
                }
                Ok(())
            }
            Some(Ok(Stepped::Done)) => {
                if let Some(host) = self.hosts.get_mut(&target) {
                    host.reads
                        .insert(request_id, (c, op_id, pending.op, committed_before));
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
            // A sticky client tries the node it believed led again (it may still think it does).
            let sticky = self.swarm.sticky_clients;
            if (sticky <= 0.0 || !self.rng.random_bool(sticky.min(1.0)))
                && let Some(client) = self.clients.get_mut(c as usize)
            {
                client.leader_hint = None;
            }
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
        let (lo, hi) = self.swarm.chaos_every;
        let next = self.now + self.rng.random_range(lo..=hi);
        self.schedule(next, Event::Chaos);
        if self.clock_rng.random_bool(0.25)
            && let Some(l) = self.leader()
        {
            self.maybe_slow_clock(l, 0);
        }
        let Some(&action) = self.swarm.actions.choose(&mut self.rng) else {
            return Ok(());
        };
        let ids: Vec<NodeId> = self.hosts.keys().copied().collect();
        let partition = matches!(
            action,
            HEAL_PARTITION | SPLIT | ONE_WAY | DEAF_LEADER | LAG | ISOLATE_LEADER
        );
        if partition && self.now < self.hold_partition_until {
            return Ok(());
        }
        match action {
            HEAL_PARTITION => self.set_blocked(BTreeSet::new()),
            SPLIT => {
                // Symmetric partition: a minority cut off from the rest.
                let k = self.rng.random_range(1..=ids.len() / 2);
                let side: Vec<NodeId> = ids.choose_multiple(&mut self.rng, k).copied().collect();
                let mut blocked = BTreeSet::new();
                for &a in &side {
                    for &b in &ids {
                        if !side.contains(&b) {
                            blocked.insert((a, b));
                            blocked.insert((b, a));
                        }
                    }
                }
                self.set_blocked(blocked);
                self.faults.partitions += 1;
            }
            ONE_WAY => {
                // Asymmetric: some links fail in one direction only.
                let mut blocked = self.blocked.clone();
                for _ in 0..self.rng.random_range(1..=3) {
                    let pair: Vec<NodeId> =
                        ids.choose_multiple(&mut self.rng, 2).copied().collect();
                    if let [a, b] = pair[..] {
                        blocked.insert((a, b));
                    }
                }
                self.set_blocked(blocked);
                self.faults.partitions += 1;
            }
            DEAF_LEADER => {
                // The leader can send but not hear: check-quorum must make it step down.
                if let Some(l) = self.leader() {
                    let blocked = ids.iter().filter(|&&b| b != l).map(|&b| (b, l)).collect();
                    self.set_blocked(blocked);
                    self.faults.partitions += 1;
                }
            }
            CRASH => {
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
            RESTART => {
                let down: Vec<NodeId> = ids.iter().copied().filter(|id| !self.is_up(*id)).collect();
                if let Some(&v) = down.choose(&mut self.rng) {
                    self.restart(v)?;
                }
            }
            MEMBERSHIP => self.membership_action()?,
            ISOLATE_LEADER => {
                // A leader cut off long enough for the others to elect another and serve clients
                // (without check-quorum it goes on believing it leads).
                if let Some(l) = self.leader() {
                    let ms = self.rng.random_range(200..=1_000);
                    self.isolate(l, ms);
                }
            }
            LAG => {
                // A follower cut off long enough to fall behind the leader's log start.
                let leader = self.leader();
                let followers: Vec<NodeId> =
                    ids.iter().copied().filter(|&i| Some(i) != leader).collect();
                if let Some(&f) = followers.choose(&mut self.rng) {
                    let ms = self.rng.random_range(300..=900);
                    self.isolate(f, ms);
                }
            }
            TRANSFER => {
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
            _ => {
                // Replay: a link re-delivers what it carried last (old votes, appends, chunks).
                let links: Vec<(NodeId, NodeId)> = self
                    .links
                    .iter()
                    .filter(|(_, recent)| !recent.is_empty())
                    .map(|(&link, _)| link)
                    .collect();
                if let Some(&(from, to)) = links.choose(&mut self.rng) {
                    self.replay(from, to);
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
            host.loading = None;
            // Received snapshot chunks are written without an fsync, and a starting node removes
            // what is left of a transfer: it never survives a restart.
            host.disk.partial.clear();
            // A restarted process starts with a fresh timer.
            host.slow_until = 0;
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
            .map_err(|detail| self.violation(Property::Recovery, detail))?;
        self.after_step(id)
    }

    fn membership_action(&mut self) -> Result<(), Violation> {
        let mut tries = 0;
        while self.membership_change(tries > 0)? {
            // A burst: another change at once (a correct leader refuses it while one is pending).
            tries += 1;
            let p = self.swarm.membership_burst;
            if tries >= 3 || p <= 0.0 || !self.rng.random_bool(p.min(1.0)) {
                break;
            }
        }
        Ok(())
    }

    /// Propose one membership change at the leader; whether it was accepted. In a burst, a change
    /// of the voters is preferred (two of them in flight are what breaks single-server changes).
    fn membership_change(&mut self, burst: bool) -> Result<bool, Violation> {
        let Some(l) = self.leader() else {
            return Ok(false);
        };
        let Some(membership) = self
            .hosts
            .get(&l)
            .and_then(|h| h.raft.as_ref())
            .map(|r| r.membership().clone())
        else {
            return Ok(false);
        };
        let max_new = self.opts.nodes as NodeId + 4;
        let voters: Vec<NodeId> = membership.voters.iter().copied().collect();
        let change = if burst
            && voters.len() > 3
            && let Some(&v) = voters.choose(&mut self.rng)
        {
            ConfChange::Remove(v)
        } else if let Some(&learner) = membership.learners.iter().next() {
            ConfChange::Promote(learner)
        } else if membership.voters.len() < 5
            && self.next_node_id <= max_new
            && self.rng.random_bool(0.6)
        {
            ConfChange::AddLearner(self.next_node_id)
        } else if membership.voters.len() > 3 {
            match voters.choose(&mut self.rng) {
                Some(&v) => ConfChange::Remove(v),
                None => return Ok(false),
            }
        } else {
            return Ok(false);
        };
        let result = self.step(l, Input::ProposeConfChange(change))?;
        let Some(Ok(_)) = result else {
            return Ok(false);
        };
        self.faults.membership_changes += 1;
        if let ConfChange::AddLearner(id) = change {
            self.next_node_id += 1;
            self.add_host(id, Disk::default())?;
            self.after_step(id)?;
        }
        // A dangerous moment: the leader holds an uncommitted configuration.
        if let Some(life) = self.hosts.get(&l).map(|h| h.life) {
            let p = self.swarm.strike_uncommitted_leader;
            self.maybe_strike(l, life, p, 3);
        }
        Ok(true)
    }

    fn heal(&mut self) -> Result<(), Violation> {
        self.heal_time = Some(self.now);
        self.set_blocked(BTreeSet::new());
        self.links.clear();
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

/// What `m` promises about the sender's disk that the disk does not hold (persist before send): a
/// granted vote, an append or snapshot acknowledgement, a snapshot chunk acknowledgement.
fn broken_promise(id: NodeId, disk: &Disk, m: &Message) -> Option<String> {
    match &m.body {
        MessageBody::VoteResponse { granted: true } => {
            let hs = disk.hard_state;
            // A newer durable term also covers it: the node can never vote in m.term again.
            (hs.term < m.term || hs.term == m.term && hs.vote != Some(m.to))
                .then(|| format!("node {id}: vote for {} sent before it was persisted", m.to))
        }
        MessageBody::AppendResponse(AppendResult::Accepted { match_index })
        | MessageBody::InstallSnapshotResponse {
            result: SnapshotResult::Done { match_index },
            ..
        } => {
            (disk.last_index() < *match_index && disk.hard_state.commit < *match_index).then(|| {
                format!(
                    "node {id}: {} acknowledged {match_index} with only {} persisted",
                    m.body.kind(),
                    disk.last_index()
                )
            })
        }
        MessageBody::InstallSnapshotResponse {
            snapshot_id,
            result: SnapshotResult::Continue { next_offset },
        } => {
            let held = disk.partial.get(snapshot_id).map_or(0, |b| b.len() as u64);
            (held < *next_offset && !disk.files.contains_key(snapshot_id)).then(|| {
                format!(
                    "node {id}: acknowledged {next_offset} bytes of snapshot {snapshot_id} \
                     with {held} on disk"
                )
            })
        }
        _ => None,
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

    /// Seed 2800939812696974021 (membership): two chunks of one file reach a follower between two
    /// `Ready`s, the second from a new term's leader starting the transfer over at offset 0. The
    /// partial file then holds one chunk when the `Ready`'s messages leave, so the old transfer's
    /// "I hold 16 bytes" must not leave with them (the core withdraws it).
    #[test]
    fn a_transfer_started_over_within_one_ready_withdraws_the_old_acknowledgement() {
        let mut cluster = Cluster::new(SimOptions::for_seed(0));
        let chunk = |from: NodeId, term: Term, offset: u64| match first_chunk() {
            Input::Message(mut m) => {
                m.from = from;
                m.term = term;
                // A file of three chunks: neither of these finishes it.
                if let MessageBody::InstallSnapshot {
                    meta, offset: o, ..
                } = &mut m.body
                {
                    (meta.size, *o) = (24, offset);
                }
                Input::Message(m)
            }
            other => other,
        };
        let stepped = cluster.step(1, chunk(2, 1, 0)).expect("no violation");
        assert!(matches!(stepped, Some(Ok(_))), "{stepped:?}");
        let life = cluster.hosts[&1].life;
        cluster.process_ready(1, life).expect("ready");
        cluster.finish_ready(1, life).expect("persisted");
        // The second chunk of term 1, then term 2's leader sends the first chunk again.
        for input in [chunk(2, 1, 8), chunk(3, 2, 0)] {
            let stepped = cluster.step(1, input).expect("no violation");
            assert!(matches!(stepped, Some(Ok(_))), "{stepped:?}");
        }
        cluster.process_ready(1, life).expect("ready");
        cluster
            .finish_ready(1, life)
            .expect("no acknowledgement beyond the bytes held");
        assert_eq!(cluster.hosts[&1].disk.partial.get(&99), Some(&vec![7; 8]));
    }

    /// The simulated driver treats incoming snapshot chunks as the consensus actor does: each is
    /// written (without an fsync) before anything else of its `Ready`, and acknowledged only once
    /// that `Ready`'s write is done. A crash drops the partial transfer, as a starting node removes
    /// `*.partial` files, and the restarted node asks the leader for the snapshot from offset 0.
    #[test]
    fn snapshot_chunk_is_written_before_its_ack_and_a_crash_restarts_the_transfer() {
        let mut cluster = Cluster::new(SimOptions::for_seed(0));
        let stepped = cluster.step(1, first_chunk()).expect("no violation");
        assert!(matches!(stepped, Some(Ok(_))), "{stepped:?}");
        let life = cluster.hosts[&1].life;
        cluster.process_ready(1, life).expect("ready");
        // The `Ready`'s write (the new term) is in flight; the chunk is written already.
        assert!(cluster.hosts[&1].in_flight.is_some());
        assert_eq!(cluster.hosts[&1].disk.partial.get(&99), Some(&vec![7; 8]));
        assert!(
            !ack_queued(&cluster),
            "acknowledged before the write completed"
        );
        cluster.crash(1);
        assert_eq!(
            cluster.hosts[&1].disk.partial.get(&99),
            None,
            "a partial transfer does not survive a restart"
        );
        assert_eq!(
            cluster.hosts[&1].disk.hard_state.term, 0,
            "the write was lost"
        );
        cluster.restart(1).expect("restart");
        // The leader's next chunk: the restarted node holds nothing of the transfer and asks for
        // it from offset 0 (an acknowledgement of 0 bytes, which the checker accepts).
        let second = match first_chunk() {
            Input::Message(mut m) => {
                if let MessageBody::InstallSnapshot { offset, done, .. } = &mut m.body {
                    (*offset, *done) = (8, true);
                }
                Input::Message(m)
            }
            other => other,
        };
        let stepped = cluster.step(1, second).expect("no violation");
        assert!(matches!(stepped, Some(Ok(_))), "{stepped:?}");
        let life = cluster.hosts[&1].life;
        cluster.process_ready(1, life).expect("ready");
        cluster.finish_ready(1, life).expect("persisted");
        let asked_from_zero = cluster.queue.values().any(|e| {
            matches!(e, Event::Deliver(m) if matches!(m.body,
            MessageBody::InstallSnapshotResponse {
                snapshot_id: 99,
                result: SnapshotResult::Continue { next_offset: 0 },
            }))
        });
        assert!(asked_from_zero, "the restarted node asks for offset 0");
        assert_eq!(cluster.hosts[&1].disk.partial.get(&99), None);

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
        assert_eq!(v.property, Property::PersistBeforeSend);
        assert!(
            v.detail.contains("acknowledged 8 bytes of snapshot 99"),
            "{v}"
        );
    }
}
