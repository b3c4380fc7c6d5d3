//! Consensus actors of three nodes in one process, on a [`LocalTransport`], with real fjall logs and
//! snapshot files in temporary directories. (Whole-system tests with real processes live in `tests/`.)

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::concurrency::oneshot;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef};
use tokio::task::JoinHandle;
use verisim_raft::{Config, NodeId, Role};

use super::*;
use crate::registry::{Command, NodeInfo, NodeName, Outcome, Proposal};
use crate::telemetry::observations;

const TICK: Duration = Duration::from_millis(10);
const DEADLINE: Duration = Duration::from_secs(20);

struct Node {
    actor: ActorRef<ConsensusMsg>,
    handle: JoinHandle<()>,
    replica: SharedReplica,
    snapshotter: Option<(ActorRef<SnapshotterMsg>, JoinHandle<()>)>,
}

struct Cluster {
    dir: tempfile::TempDir,
    transport: Arc<LocalTransport>,
    ids: Vec<NodeId>,
    nodes: BTreeMap<NodeId, Node>,
    policy: Option<SnapshotPolicy>,
    keep_after_snapshot: u64,
}

fn command(n: u64) -> Vec<u8> {
    Proposal {
        at_ms: 1_000 + n,
        command: Command::SetNode {
            node: NodeName::new(format!("n{n}")).unwrap(),
            info: NodeInfo {
                cluster_addr: format!("127.0.0.1:{n}"),
                http_addr: "127.0.0.1:1".into(),
            },
        },
    }
    .encode()
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

impl Cluster {
    async fn start(n: u64, policy: Option<SnapshotPolicy>, keep_after_snapshot: u64) -> Self {
        let mut c = Cluster {
            dir: tempfile::tempdir().unwrap(),
            transport: LocalTransport::new(),
            ids: (1..=n).collect(),
            nodes: BTreeMap::new(),
            policy,
            keep_after_snapshot,
        };
        for id in c.ids.clone() {
            c.start_node(id).await.unwrap();
        }
        c
    }

    fn args(&self, id: NodeId) -> ConsensusArgs {
        let mut raft = Config::new(id, 0x5eed + id);
        raft.log_keep_after_snapshot = self.keep_after_snapshot;
        raft.snapshot_chunk_size = 512;
        ConsensusArgs {
            raft,
            dir: self.dir.path().join(format!("node{id}")),
            bootstrap_voters: self.ids.clone(),
            tick: TICK,
            transport: self.transport.clone(),
            replica: SharedReplica::default(),
            snapshots_kept: 1,
            auto_promote: true,
        }
    }

    async fn start_node(&mut self, id: NodeId) -> Result<(), ractor::SpawnErr> {
        let args = self.args(id);
        let replica = args.replica.clone();
        let dir = args.dir.join("snapshots");
        let (actor, handle) = Actor::spawn(None, ConsensusActor, args).await?;
        self.transport.register(id, actor.clone());
        let snapshotter = match &self.policy {
            Some(policy) => {
                let args = SnapshotterArgs {
                    consensus: ConsensusLocator::Fixed(actor.clone()),
                    replica: replica.clone(),
                    dir,
                    policy: policy.clone(),
                };
                Some(Actor::spawn(None, Snapshotter, args).await?)
            }
            None => None,
        };
        self.nodes.insert(
            id,
            Node {
                actor,
                handle,
                replica,
                snapshotter,
            },
        );
        Ok(())
    }

    async fn stop_node(&mut self, id: NodeId) {
        let node = self.nodes.remove(&id).unwrap();
        if let Some((s, h)) = node.snapshotter {
            s.stop(None);
            h.await.unwrap();
        }
        node.actor.stop(None);
        node.handle.await.unwrap();
    }

    async fn status(&self, id: NodeId) -> ConsensusStatus {
        match self.nodes[&id]
            .actor
            .call(ConsensusMsg::Status, Some(DEADLINE))
            .await
        {
            Ok(CallResult::Success(s)) => s,
            other => panic!("status of {id}: {other:?}"),
        }
    }

    async fn leader(&self) -> NodeId {
        let start = Instant::now();
        loop {
            for &id in self.nodes.keys() {
                if self.status(id).await.role == Role::Leader {
                    return id;
                }
            }
            assert!(start.elapsed() < DEADLINE, "no leader elected");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    async fn propose(&self, id: NodeId, n: u64) -> Result<Applied, ConsensusError> {
        let cmd = command(n);
        match self.nodes[&id]
            .actor
            .call(
                |reply| ConsensusMsg::Propose {
                    command: cmd,
                    reply,
                },
                Some(DEADLINE),
            )
            .await
        {
            Ok(CallResult::Success(r)) => r,
            other => panic!("propose at {id}: {other:?}"),
        }
    }

    /// Commits command `n` through whichever node leads, following leadership if it moves (a
    /// loaded machine can miss a heartbeat and elect anew). Retrying is safe: `SetNode` is
    /// idempotent.
    async fn commit(&self, n: u64) -> Applied {
        let start = Instant::now();
        loop {
            let leader = self.leader().await;
            match self.propose(leader, n).await {
                Ok(applied) => return applied,
                Err(e) => assert!(
                    start.elapsed() < DEADLINE,
                    "command {n} not committed before the deadline: {e}"
                ),
            }
        }
    }

    /// Waits until every running node has applied `index`, then checks they hold the same registry.
    async fn converged(&self, index: u64) {
        for &id in self.nodes.keys() {
            wait_until(&format!("node {id} applies {index}"), || async move {
                self.nodes[&id].replica.read().applied_index >= index
            })
            .await;
        }
        let digests: Vec<_> = self
            .nodes
            .values()
            .map(|n| {
                let r = n.replica.read();
                (r.applied_index, r.state.digest())
            })
            .collect();
        assert!(
            digests.windows(2).all(|w| w[0] == w[1]),
            "replicas differ: {digests:?}"
        );
    }

    async fn shutdown(mut self) {
        for id in self.nodes.keys().copied().collect::<Vec<_>>() {
            self.stop_node(id).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicates_and_applies_on_every_node() {
    let c = Cluster::start(3, None, 1024).await;
    let mut last = 0;
    for n in 0..20 {
        let applied = c.commit(n).await;
        assert_eq!(applied.outcome, Outcome::NodeSet);
        assert!(applied.index > last);
        last = applied.index;
    }
    c.converged(last).await;
    let leader = c.leader().await;
    assert_eq!(c.nodes[&leader].replica.read().state.nodes().len(), 20);
    let follower = *c.ids.iter().find(|&&id| id != leader).unwrap();
    let refused = c.propose(follower, 99).await;
    assert!(
        matches!(refused, Err(ConsensusError::NotLeader { leader: Some(_) })),
        "a follower refuses with a leader hint: {refused:?}"
    );
    c.shutdown().await;
}

/// Proposals queued while the actor is busy share one fsync (group commit).
#[tokio::test(flavor = "current_thread")]
async fn queued_proposals_share_one_fsync() {
    let c = Cluster::start(3, None, 1024).await;
    c.commit(0).await;
    let leader = c.leader().await;
    let before = c.status(leader).await.log_syncs;
    // On a current-thread runtime nothing runs until we await, so all 200 proposals are queued
    // before the actor steps the first one.
    let mut replies = Vec::new();
    for n in 1..=200 {
        let (tx, rx) = oneshot();
        c.nodes[&leader]
            .actor
            .cast(ConsensusMsg::Propose {
                command: command(n),
                reply: tx.into(),
            })
            .unwrap();
        replies.push(rx);
    }
    let mut last = 0;
    for rx in replies {
        last = rx.await.unwrap().unwrap().index;
    }
    let syncs = c.status(leader).await.log_syncs - before;
    assert!(
        syncs <= 10,
        "200 queued proposals took {syncs} fsyncs on the leader"
    );
    c.converged(last).await;
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_restart_recovers_every_applied_entry() {
    let mut c = Cluster::start(3, None, 1024).await;
    let leader = c.leader().await;
    let mut last = 0;
    for n in 0..30 {
        last = c.commit(n).await.index;
    }
    c.converged(last).await;
    let digest = c.nodes[&leader].replica.read().state.digest();
    for id in c.ids.clone() {
        c.stop_node(id).await;
    }
    for id in c.ids.clone() {
        c.start_node(id).await.unwrap();
    }
    c.converged(last).await;
    let leader = c.leader().await;
    let again = c.commit(100).await;
    assert!(again.index > last);
    c.converged(again.index).await;
    let r = c.nodes[&leader].replica.read().state.clone();
    assert_eq!(r.nodes().len(), 31);
    assert_ne!(r.digest(), digest, "the new entry changed the state");
    c.shutdown().await;
}

fn small_snapshots() -> SnapshotPolicy {
    SnapshotPolicy {
        max_entries: 20,
        max_bytes: u64::MAX,
        max_age: None,
        age_jitter: Duration::ZERO,
        check_every: Duration::from_millis(20),
        // The count trigger alone: these tests count entries.
        min_log_percent: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_compact_the_log_and_a_cut_off_follower_catches_up_by_snapshot() {
    let c = Cluster::start(3, Some(small_snapshots()), 5).await;
    let leader = c.leader().await;
    let lagging = *c.ids.iter().find(|&&id| id != leader).unwrap();
    c.transport.isolate(lagging, c.ids.clone());
    let mut last = 0;
    for n in 0..150 {
        last = c.commit(n).await.index;
    }
    let behind = c.nodes[&lagging].replica.read().applied_index;
    // Once the writes stop, the leader snapshots until fewer entries than the threshold follow its
    // last snapshot, and compacts past what the cut-off follower has, keeping only the window.
    wait_until(
        "the leader's log is compacted behind a recent snapshot",
        || async {
            // Leadership may move between the two nodes that still see each other.
            let s = c.status(c.leader().await).await;
            s.snapshot_index > 0
                && s.log.first_index > behind + 1
                && s.log.entries_since_snapshot < 20
                // The threshold, plus the trailing window of 5.
                && s.log.entries < 20 + 5
        },
    )
    .await;
    c.transport.heal();
    c.converged(last).await;
    let f = c.status(lagging).await;
    assert!(
        f.snapshot_index > behind,
        "caught up through InstallSnapshot: {f:?}"
    );
    assert_eq!(c.nodes[&lagging].replica.read().state.nodes().len(), 150);
    // Each stage of the install was timed (the nodes share this process's telemetry).
    for stage in ["receive", "load", "install"] {
        let name = format!("verisim_snapshot_{stage}_seconds");
        assert!(observations(&name) >= 1.0, "{name}");
    }
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_snapshot_is_never_loaded() {
    let mut c = Cluster::start(1, None, 0).await;
    let leader = c.leader().await;
    let mut last = 0;
    for n in 0..10 {
        last = c.commit(n).await.index;
    }
    // Take a snapshot by hand and let the log compact behind it.
    let replica = c.nodes[&leader].replica.clone();
    let snap_dir = c.args(leader).dir.join("snapshots");
    let (s, h) = Actor::spawn(
        None,
        Snapshotter,
        SnapshotterArgs {
            consensus: ConsensusLocator::Fixed(c.nodes[&leader].actor.clone()),
            replica,
            dir: snap_dir.clone(),
            policy: SnapshotPolicy {
                check_every: Duration::from_secs(3600),
                ..SnapshotPolicy::default()
            },
        },
    )
    .await
    .unwrap();
    let taken = s
        .call(SnapshotterMsg::TakeNow, Some(DEADLINE))
        .await
        .unwrap();
    assert!(matches!(taken, CallResult::Success(Ok(Some(w))) if w.index >= last && w.size > 0));
    wait_until("the log compacts behind the snapshot", || async {
        c.status(leader).await.log.first_index > last
    })
    .await;
    s.stop(None);
    h.await.unwrap();
    c.stop_node(leader).await;

    let file = std::fs::read_dir(&snap_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "vsnap"))
        .unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[12] ^= 0x40;
    std::fs::write(&file, bytes).unwrap();
    let err = c
        .start_node(leader)
        .await
        .expect_err("a node whose snapshot is corrupt must not start");
    // The only voter: nobody can send it the state, so it refuses to start, saying why.
    let msg = format!("{err:?}");
    assert!(msg.contains("unusable"), "{msg}");
    assert!(
        msg.contains(&file.display().to_string()),
        "names the file: {msg}"
    );
    assert!(
        msg.contains(&file.with_extension("corrupt").display().to_string()),
        "names where it was moved: {msg}"
    );
    assert!(msg.contains("checksum"), "names the cause: {msg}");
    assert!(!msg.contains("No such file"), "{msg}");
}

/// The attack/fault: a follower is sent snapshots whose bytes are wrong (the fault hook flips one
/// byte of each of the first two it receives). It refuses them, asks again, and catches up; its
/// consensus actor never fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_sent_corrupt_snapshots_refuses_them_and_asks_again() {
    let mut c = Cluster::start(3, Some(small_snapshots()), 5).await;
    let leader = c.leader().await;
    let lagging = *c.ids.iter().find(|&&id| id != leader).unwrap();
    c.stop_node(lagging).await;
    std::fs::write(c.args(lagging).dir.join(FAULT_CORRUPT_RECEIVED), "2").unwrap();
    let mut last = 0;
    for n in 0..150 {
        last = c.commit(n).await.index;
    }
    wait_until("the leader compacts past the stopped follower", || async {
        let s = c.status(c.leader().await).await;
        s.snapshot_index > 0 && s.log.first_index > 30
    })
    .await;
    c.start_node(lagging).await.unwrap();
    c.converged(last).await;
    let f = c.status(lagging).await;
    assert_eq!(
        f.snapshot_transfers_refused, 2,
        "both corrupted transfers refused: {f:?}"
    );
    assert!(
        f.last_snapshot_refusal
            .as_deref()
            .is_some_and(|r| r.contains("checksum")),
        "the cause is kept: {f:?}"
    );
    assert!(
        !c.nodes[&lagging].handle.is_finished(),
        "the consensus actor did not fail"
    );
    assert_eq!(c.nodes[&lagging].replica.read().state.nodes().len(), 150);
    c.shutdown().await;
}

/// The fault: a follower's own snapshot is corrupted on disk while it is stopped, and its log no
/// longer reaches back to any older snapshot. It says so, restarts without a log, stays out of
/// elections, and is brought up to date by the leader's snapshot without an operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_whose_own_snapshot_is_corrupt_recovers_from_the_leader() {
    let mut c = Cluster::start(3, Some(small_snapshots()), 0).await;
    let mut last = 0;
    for n in 0..60 {
        last = c.commit(n).await.index;
    }
    c.converged(last).await;
    let leader = c.leader().await;
    let f = *c.ids.iter().find(|&&id| id != leader).unwrap();
    wait_until("the follower has a snapshot", || async {
        c.status(f).await.snapshot_index > 0
    })
    .await;
    c.stop_node(f).await;
    let snap_dir = c.args(f).dir.join("snapshots");
    let mut corrupted = Vec::new();
    for p in std::fs::read_dir(&snap_dir).unwrap() {
        let p = p.unwrap().path();
        if p.extension().is_some_and(|e| e == "vsnap") {
            let mut bytes = std::fs::read(&p).unwrap();
            bytes[12] ^= 0x40;
            std::fs::write(&p, bytes).unwrap();
            corrupted.push(p);
        }
    }
    assert!(!corrupted.is_empty());
    c.start_node(f).await.unwrap();
    let s = c.status(f).await;
    let said = s.corrupt_own_snapshot.clone().unwrap_or_default();
    assert!(
        said.contains("checksum") && said.contains(".corrupt"),
        "{s:?}"
    );
    for n in 100..110 {
        last = c.commit(n).await.index;
    }
    c.converged(last).await;
    wait_until("the follower votes again", || async {
        c.status(f).await.recovery_horizon.is_none()
    })
    .await;
    assert_eq!(c.nodes[&f].replica.read().state.nodes().len(), 70);
    assert!(
        corrupted
            .iter()
            .all(|p| p.with_extension("corrupt").exists())
    );
    c.shutdown().await;
}
