//! A hand-driven cluster for scripted tests: every core, its "disk", and a message queue the test
//! delivers from selectively. The simulator's checker watches every step.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use verisim_raft::sim::check::{Checker, Violation};
use verisim_raft::{
    Config, Entry, Input, Message, NodeId, Payload, PersistedState, Raft, ReadState, Role,
    StepError, Stepped,
};

pub struct Net {
    pub nodes: BTreeMap<NodeId, Raft>,
    pub disks: BTreeMap<NodeId, PersistedState>,
    pub lives: BTreeMap<NodeId, u32>,
    pub queue: Vec<Message>,
    pub applied: BTreeMap<NodeId, Vec<Entry>>,
    pub read_states: BTreeMap<NodeId, Vec<ReadState>>,
    pub checker: Checker,
    pub violation: Option<Violation>,
    pub configure: fn(&mut Config),
    /// Snapshot bytes by node (the tests' "files"); a snapshot is `size` bytes of its index.
    pub snapshot_files: BTreeMap<(NodeId, u64), Vec<u8>>,
    pub partial: BTreeMap<NodeId, Vec<u8>>,
}

pub fn plain(cfg: &mut Config) {
    cfg.pre_vote = false;
    cfg.check_quorum = false;
}

impl Net {
    /// A cluster of voters `1..=n`, each configured by `configure`.
    pub fn new(n: u64, configure: fn(&mut Config)) -> Net {
        let mut net = Net {
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            lives: BTreeMap::new(),
            queue: Vec::new(),
            applied: BTreeMap::new(),
            read_states: BTreeMap::new(),
            checker: Checker::new(),
            violation: None,
            configure,
            snapshot_files: BTreeMap::new(),
            partial: BTreeMap::new(),
        };
        for id in 1..=n {
            net.disks.insert(id, PersistedState::bootstrap(1..=n));
            net.start(id);
        }
        net
    }

    pub fn config(&self, id: NodeId) -> Config {
        let life = self.lives.get(&id).copied().unwrap_or(0);
        let mut cfg = Config::new(id, id * 1000 + life as u64);
        (self.configure)(&mut cfg);
        cfg
    }

    /// Start a node from its disk (a restart if it ran before).
    pub fn start(&mut self, id: NodeId) {
        *self.lives.entry(id).or_insert(0) += 1;
        let cfg = self.config(id);
        let state = self.disks.get(&id).cloned().unwrap_or_default();
        let raft = Raft::new(cfg, state).expect("test disk is consistent");
        self.nodes.insert(id, raft);
        self.applied.entry(id).or_default();
        self.observe(id);
        self.drain(id);
    }

    /// Add a node that joins with an empty state.
    pub fn add_joining(&mut self, id: NodeId) {
        self.disks.insert(id, PersistedState::joining());
        self.start(id);
    }

    pub fn crash(&mut self, id: NodeId) {
        self.nodes.remove(&id);
    }

    pub fn node(&self, id: NodeId) -> &Raft {
        &self.nodes[&id]
    }

    fn observe(&mut self, id: NodeId) {
        let life = self.lives.get(&id).copied().unwrap_or(0);
        if let Some(raft) = self.nodes.get(&id)
            && let Err(v) = self.checker.observe(life, raft)
        {
            self.violation.get_or_insert(v);
        }
    }

    pub fn step(&mut self, id: NodeId, input: Input) -> Result<Stepped, StepError> {
        let Some(raft) = self.nodes.get_mut(&id) else {
            return Err(StepError::Unexpected("node is down"));
        };
        let r = raft.step(input);
        self.observe(id);
        self.drain(id);
        r
    }

    pub fn tick(&mut self, id: NodeId, n: u32) {
        for _ in 0..n {
            let _ = self.step(id, Input::Tick);
        }
    }

    pub fn propose(&mut self, id: NodeId, data: &[u8]) -> Result<Stepped, StepError> {
        self.step(id, Input::Propose(data.to_vec()))
    }

    /// Handle every Ready of `id` like a driver would.
    pub fn drain(&mut self, id: NodeId) {
        loop {
            let Some(raft) = self.nodes.get_mut(&id) else {
                return;
            };
            let Some(rd) = raft.ready() else { return };
            let disk = self.disks.entry(id).or_default();
            for w in &rd.snapshot_writes {
                let buf = self.partial.entry(id).or_default();
                buf.truncate(w.offset as usize);
                buf.extend_from_slice(&w.data);
            }
            if let Some(meta) = &rd.snapshot_install {
                let bytes = self.partial.remove(&id).unwrap_or_default();
                assert_eq!(bytes.len() as u64, meta.size, "assembled snapshot size");
                self.snapshot_files.insert((id, meta.id), bytes);
                disk.snapshot = meta.clone();
                disk.entries.clear();
                self.applied.entry(id).or_default().clear();
            }
            if let Some(first) = rd.entries.first() {
                disk.entries.retain(|e| e.index < first.index);
                disk.entries.extend(rd.entries.iter().cloned());
            }
            if let Some(hs) = rd.hard_state {
                disk.hard_state = hs;
            }
            if let Some(upto) = rd.compact_log_to {
                disk.entries.retain(|e| e.index > upto);
            }
            self.queue.extend(rd.early_messages.iter().cloned());
            self.queue.extend(rd.messages.iter().cloned());
            self.applied
                .entry(id)
                .or_default()
                .extend(rd.committed_entries.iter().cloned());
            self.read_states
                .entry(id)
                .or_default()
                .extend(rd.read_states.iter().cloned());
            raft.advance();
            for cr in rd.snapshot_reads {
                let data = self
                    .snapshot_files
                    .get(&(id, cr.snapshot_id))
                    .and_then(|b| b.get(cr.offset as usize..(cr.offset + cr.len) as usize))
                    .map(<[u8]>::to_vec);
                let input = cr.answer(data);
                if let Some(raft) = self.nodes.get_mut(&id) {
                    let _ = raft.step(input);
                }
            }
            self.observe(id);
        }
    }

    /// Deliver queued messages that pass `keep` (the rest are dropped), until none are left.
    pub fn deliver_if(&mut self, keep: impl Fn(&Message) -> bool) -> usize {
        let mut delivered = 0;
        for _ in 0..10_000 {
            if self.queue.is_empty() {
                return delivered;
            }
            let batch = std::mem::take(&mut self.queue);
            for m in batch {
                if keep(&m) && self.nodes.contains_key(&m.to) {
                    delivered += 1;
                    let to = m.to;
                    let _ = self.step(to, Input::Message(m));
                }
            }
        }
        panic!("messages kept flowing for 10,000 rounds");
    }

    pub fn deliver_all(&mut self) -> usize {
        self.deliver_if(|_| true)
    }

    /// Deliver only among `group`.
    pub fn deliver_within(&mut self, group: &[NodeId]) -> usize {
        let group: BTreeSet<NodeId> = group.iter().copied().collect();
        self.deliver_if(|m| group.contains(&m.from) && group.contains(&m.to))
    }

    pub fn campaign(&mut self, id: NodeId) {
        let _ = self.step(id, Input::Campaign);
    }

    /// Elect `id` with every message delivered.
    pub fn elect(&mut self, id: NodeId) {
        self.campaign(id);
        self.deliver_all();
        assert_eq!(
            self.node(id).role(),
            Role::Leader,
            "node {id} should have won"
        );
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.nodes
            .values()
            .filter(|r| r.role() == Role::Leader)
            .max_by_key(|r| r.term())
            .map(|r| r.id())
    }

    /// Normal payloads applied by `id`, in order.
    pub fn applied_data(&self, id: NodeId) -> Vec<Vec<u8>> {
        self.applied[&id]
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::Normal(d) => Some(d.clone()),
                _ => None,
            })
            .collect()
    }

    /// The application takes a snapshot at its applied index: `size` bytes.
    pub fn take_snapshot(&mut self, id: NodeId, size: u64) -> Result<Stepped, StepError> {
        let index = self.node(id).applied_index();
        let snapshot_id = id * 1_000_000 + index;
        let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        self.snapshot_files.insert((id, snapshot_id), bytes);
        let r = self.step(
            id,
            Input::SnapshotTaken {
                index,
                id: snapshot_id,
                size,
            },
        );
        if r.is_ok() {
            let meta = self.node(id).snapshot().clone();
            if let Some(disk) = self.disks.get_mut(&id) {
                disk.snapshot = meta;
            }
        }
        r
    }

    pub fn assert_safe(&self) {
        if let Some(v) = &self.violation {
            panic!("safety violated: {v}");
        }
    }
}
