//! What a rebalancing round found and did, and the node's running totals (kept outside the actor,
//! so that a restarted rebalancer keeps counting and the admin API reads them without a message).

use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One round on the leader.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundReport {
    /// The registry index the round planned at (after a read barrier).
    pub applied_index: u64,
    /// The round looked only at entities written or moved after this index (0: at every entity):
    /// the last round with the same voters found all of them in place up to it.
    #[serde(default)]
    pub examined_since: u64,
    /// The replication factor and the voters placements were computed over.
    pub replicas: u64,
    pub voters: Vec<String>,
    /// Entities placed elsewhere than the voters and the replication factor say, before the round.
    pub misplaced: u64,
    /// Placements widened to the desired replicas plus the old ones.
    pub widened: u64,
    /// Items (one modality of one entity) copied to a new replica, and their payload bytes
    /// fetched from another node.
    pub items_copied: u64,
    pub bytes_copied: u64,
    /// Placements narrowed to the desired replicas once those held the entity.
    pub narrowed: u64,
    /// Items removed from replicas a narrowing dropped.
    pub items_dropped: u64,
    /// Entities still misplaced after the round (the next round goes on).
    pub misplaced_after: u64,
    pub duration_ms: u64,
    /// When it finished (ms since the Unix epoch, this node's clock).
    pub finished_at_ms: u64,
}

/// Sums over every round since the node started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebalanceTotals {
    pub rounds: u64,
    /// Rounds that could not finish (no read barrier, a commit that failed).
    pub failed_rounds: u64,
    pub widened: u64,
    pub items_copied: u64,
    pub bytes_copied: u64,
    pub narrowed: u64,
    pub items_dropped: u64,
}

/// The node's rebalancing status, shared by the rebalancer and the admin API.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebalanceStatus {
    /// The last round this node ran (as leader) that had work, or found none after a change.
    pub last: Option<RoundReport>,
    pub last_error: Option<String>,
    pub totals: RebalanceTotals,
}

#[derive(Debug, Default)]
pub struct RebalanceStats {
    inner: Mutex<RebalanceStatus>,
}

impl RebalanceStats {
    pub fn status(&self) -> RebalanceStatus {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(super) fn record(&self, result: &Result<RoundReport, String>) {
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(r) => {
                let t = &mut s.totals;
                t.rounds += 1;
                t.widened += r.widened;
                t.items_copied += r.items_copied;
                t.bytes_copied += r.bytes_copied;
                t.narrowed += r.narrowed;
                t.items_dropped += r.items_dropped;
                s.last = Some(r.clone());
            }
            Err(e) => {
                s.totals.failed_rounds += 1;
                s.last_error = Some(e.clone());
            }
        }
    }
}
