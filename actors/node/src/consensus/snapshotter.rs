//! The Snapshotter actor: it watches the log's size and, past a threshold, writes a snapshot of the
//! applied registry and has the consensus actor compact the log behind it.
//!
//! Trigger (any of): entries since the last snapshot ≥ `max_entries`, their bytes ≥ `max_bytes`, or
//! (optionally) the last snapshot older than `max_age` plus a random jitter, so that nodes started
//! together do not all snapshot at once. Only applied entries are covered, and an entry is applied
//! only once a quorum has acknowledged it.
//!
//! The replica is cloned under a short read lock and written from a blocking thread, so neither the
//! consensus actor nor the snapshotter's mailbox waits for the disk.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rand::Rng;
use tokio::task::JoinHandle;
use tracing::{info, warn};
use verisim_raft::Index;

use super::actor::{ConsensusMsg, snapshot_id, wall_clock_ms};
use super::locator::ConsensusLocator;
use super::replica::SharedReplica;
use crate::snapshot::{SnapshotDir, SnapshotError};
use crate::telemetry::{TELEMETRY, secs};

/// The name the snapshotter registers under (operators trigger it through the admin API).
pub const SNAPSHOTTER_ACTOR_NAME: &str = "verisim.snapshotter";

/// When to take a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotPolicy {
    pub max_entries: u64,
    pub max_bytes: u64,
    /// Snapshot at least this often when anything new was applied (`None`: size triggers only).
    pub max_age: Option<Duration>,
    /// Up to this much is added to `max_age`, drawn at random for each period.
    pub age_jitter: Duration,
    /// How often the log size is checked.
    pub check_every: Duration,
    /// The size triggers fire only once the log since the last snapshot holds at least this
    /// percentage of that snapshot's size (0: no such floor). A large registry is then written
    /// out when its log has grown in proportion, not every `max_entries` (Raft thesis §5.1.1): at a
    /// million entities a snapshot is ~200 MiB and a second of the leader's CPU.
    pub min_log_percent: u64,
}

impl SnapshotPolicy {
    /// Whether the log since the last snapshot (`entries`, `bytes`) calls for a new one, given
    /// the last snapshot's file size (0 when there is none).
    pub fn size_trigger(&self, entries: u64, bytes: u64, snapshot_size: u64) -> bool {
        let grown = entries >= self.max_entries || bytes >= self.max_bytes;
        let in_proportion =
            u128::from(bytes) * 100 >= u128::from(self.min_log_percent) * u128::from(snapshot_size);
        grown && in_proportion
    }
}

impl Default for SnapshotPolicy {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_bytes: 10 * 1024 * 1024,
            max_age: None,
            age_jitter: Duration::from_secs(30),
            check_every: Duration::from_millis(250),
            min_log_percent: 50,
        }
    }
}

/// The snapshotter's protocol.
pub enum SnapshotterMsg {
    /// Check the triggers (sent by its own timer).
    Check,
    /// Take a snapshot now if anything was applied since the last one (operators); answers with
    /// what was written (`None`: nothing new to snapshot).
    TakeNow(RpcReplyPort<Result<Option<Written>, String>>),
}

/// A snapshot the snapshotter wrote, and what it cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Written {
    pub index: Index,
    pub size: u64,
    /// How long the replica's read lock was held to clone it (the only time the snapshot holds up
    /// the consensus actor's applies and the proxy's lookups).
    pub clone_us: u64,
    /// Encoding, checksum, fsync, rename and directory fsync, off every lock.
    pub write_us: u64,
}

impl ractor::Message for SnapshotterMsg {}

pub struct SnapshotterArgs {
    pub consensus: ConsensusLocator,
    pub replica: SharedReplica,
    /// The consensus actor's snapshot directory.
    pub dir: PathBuf,
    pub policy: SnapshotPolicy,
}

pub struct Snapshotter;

pub struct SnapshotterState {
    args: SnapshotterArgs,
    /// Index of the last snapshot this actor wrote (or found at start).
    last_index: Index,
    due_by_age: Option<Instant>,
    /// The size of this node's newest snapshot file, and the index it was read at.
    snapshot_size: Option<(Index, u64)>,
    ticker: Option<JoinHandle<()>>,
}

impl Drop for SnapshotterState {
    fn drop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.abort();
        }
    }
}

impl Actor for Snapshotter {
    type Msg = SnapshotterMsg;
    type State = SnapshotterState;
    type Arguments = SnapshotterArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<SnapshotterMsg>,
        args: SnapshotterArgs,
    ) -> Result<SnapshotterState, ActorProcessingErr> {
        let ticker = myself.send_interval(args.policy.check_every, || SnapshotterMsg::Check);
        let mut st = SnapshotterState {
            args,
            last_index: 0,
            due_by_age: None,
            snapshot_size: None,
            ticker: Some(ticker),
        };
        st.schedule_age();
        Ok(st)
    }

    async fn handle(
        &self,
        _myself: ActorRef<SnapshotterMsg>,
        msg: SnapshotterMsg,
        st: &mut SnapshotterState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SnapshotterMsg::Check => {
                if st.due().await
                    && let Err(e) = st.take().await
                {
                    warn!(error = %e, "snapshot failed; will retry");
                }
            }
            SnapshotterMsg::TakeNow(reply) => {
                let r = st.take().await.map_err(|e| e.to_string());
                let _ = reply.send(r);
            }
        }
        Ok(())
    }
}

impl SnapshotterState {
    fn schedule_age(&mut self) {
        self.due_by_age = self.args.policy.max_age.map(|age| {
            let jitter_ms = self.args.policy.age_jitter.as_millis() as u64;
            let extra = if jitter_ms == 0 {
                0
            } else {
                rand::rng().random_range(0..=jitter_ms)
            };
            Instant::now() + age + Duration::from_millis(extra)
        });
    }

    /// Whether a trigger fired.
    async fn due(&mut self) -> bool {
        let Some(consensus) = self.args.consensus.get() else {
            return false;
        };
        let status = match consensus
            .call(ConsensusMsg::Status, Some(Duration::from_secs(5)))
            .await
        {
            Ok(ractor::rpc::CallResult::Success(s)) => s,
            _ => return false,
        };
        self.last_index = self.last_index.max(status.snapshot_index);
        let snapshot_size = self.snapshot_size(status.snapshot_index);
        let by_size = self.args.policy.size_trigger(
            status.log.entries_since_snapshot,
            status.log.bytes_since_snapshot,
            snapshot_size,
        );
        let by_age = self.due_by_age.is_some_and(|t| Instant::now() >= t);
        (by_size || by_age) && status.applied_index > status.snapshot_index
    }

    /// The size of the newest snapshot file (taken here or received from the leader), read from
    /// the directory's headers once per snapshot index; 0 when there is none or it cannot be read
    /// (then the entry and byte triggers decide alone).
    fn snapshot_size(&mut self, index: Index) -> u64 {
        if index == 0 {
            return 0;
        }
        if let Some((at, size)) = self.snapshot_size
            && at == index
        {
            return size;
        }
        let size = SnapshotDir::at(&self.args.dir, 1)
            .list()
            .ok()
            .and_then(|l| {
                l.into_iter()
                    .rfind(|s| s.header.last_included_index == index)
            })
            .and_then(|s| std::fs::metadata(&s.path).ok())
            .map_or(0, |m| m.len());
        self.snapshot_size = Some((index, size));
        size
    }

    /// Writes a snapshot of the replica as applied now and tells the consensus actor.
    async fn take(&mut self) -> Result<Option<Written>, SnapshotError> {
        let started = Instant::now();
        let replica = self.args.replica.read().clone();
        let clone_us = started.elapsed().as_micros() as u64;
        if replica.applied_index <= self.last_index {
            return Ok(None);
        }
        let dir = SnapshotDir::at(&self.args.dir, 1);
        let index = replica.applied_index;
        let term = replica.applied_term;
        let membership = crate::registry::encode(&replica.membership);
        let written = tokio::task::spawn_blocking(move || {
            dir.write(index, term, membership, wall_clock_ms(), |w| {
                replica.state.write_snapshot_body(w)
            })
        })
        .await
        .map_err(|e| SnapshotError::Corrupt {
            path: self.args.dir.clone(),
            reason: format!("snapshot writer task failed: {e}"),
        })??;
        let size = std::fs::metadata(&written.path)
            .map_err(|source| SnapshotError::Io {
                path: written.path.clone(),
                source,
            })?
            .len();
        let id = snapshot_id(&written.header.body_blake3);
        let write_us = started.elapsed().as_micros() as u64 - clone_us;
        info!(index, size, clone_us, write_us, "snapshot written");
        TELEMETRY.snapshots.inc();
        TELEMETRY.snapshot_duration.observe(secs(started.elapsed()));
        TELEMETRY
            .snapshot_bytes
            .set(i64::try_from(size).unwrap_or(i64::MAX));
        TELEMETRY.snapshot_bytes_written.inc_by(size);
        self.last_index = index;
        self.schedule_age();
        if let Some(consensus) = self.args.consensus.get() {
            let _ = consensus.cast(ConsensusMsg::SnapshotTaken {
                index,
                path: written.path,
                id,
                size,
            });
        }
        Ok(Some(Written {
            index,
            size,
            clone_us,
            write_us,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::SnapshotPolicy;

    #[test]
    fn a_large_snapshot_waits_for_a_log_in_proportion_and_a_small_one_does_not() {
        let p = SnapshotPolicy::default();
        let entry = 1_000;
        let mib = 1024 * 1024;
        // A small registry: the entry count fires as it always did.
        assert!(!p.size_trigger(9_999, 9_999 * entry, 100_000));
        assert!(p.size_trigger(10_000, 10_000 * entry, 100_000));
        // A ~200 MiB registry: 10,000 entries (~10 MB) are not enough; half its size is.
        let large = 200 * mib;
        assert!(!p.size_trigger(10_000, 10_000 * entry, large));
        assert!(!p.size_trigger(50_000, 50 * mib - 1, large));
        assert!(p.size_trigger(104_858, 100 * mib, large));
        // Nothing grown, nothing written, whatever the proportion.
        assert!(!p.size_trigger(10, 10 * entry, 0));
        // Off: the triggers fire alone.
        let off = SnapshotPolicy {
            min_log_percent: 0,
            ..SnapshotPolicy::default()
        };
        assert!(off.size_trigger(10_000, 10_000 * entry, large));
    }
}
