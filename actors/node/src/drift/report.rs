//! What a drift check pass found and did, and the node's running totals (kept outside the actor,
//! so that a restarted checker keeps counting and the admin API reads them without a message).

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// One check-and-repair pass over this node's stores.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassReport {
    /// The registry index the pass compared against (this node's applied index after a read
    /// barrier).
    pub applied_index: u64,
    /// Items the registry places on this node, all modalities, covered by the comparison.
    pub items_checked: u64,
    /// Buckets (of 4096 per modality) whose digests differed.
    pub buckets_differing: u64,
    /// Items that differed from the registry: missing + stale + orphans.
    pub drifted: u64,
    /// Placed here, committed, and absent from the store.
    pub missing: u64,
    /// Held with another content than the registry committed.
    pub stale: u64,
    /// Held here, but of no entity the registry places on this node.
    pub orphans: u64,
    /// Missing or stale items written back from a verified copy.
    pub repaired: u64,
    /// Orphans removed.
    pub orphans_removed: u64,
    /// Drifted items left as they were: no reachable replica held the committed content, or a
    /// write changed the entity meanwhile (the next pass looks again).
    pub unrepaired: u64,
    /// Payload bytes fetched from other nodes to repair.
    pub bytes_fetched: u64,
    /// Tombstones of removed items purged (older than the pass's horizon, see `pass`).
    pub tombstones_purged: u64,
    /// False for a dry run (`?repair=false`): compared and reported, nothing written.
    pub repair: bool,
    /// Wall time of the pass.
    pub duration_ms: u64,
    /// When it finished (ms since the Unix epoch, this node's clock).
    pub finished_at_ms: u64,
}

/// Sums over every pass since the node started.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftTotals {
    pub passes: u64,
    /// Passes that could not run to the end (no read barrier, a local store not answering).
    pub failed_passes: u64,
    pub items_checked: u64,
    pub drifted: u64,
    pub repaired: u64,
    pub orphans_removed: u64,
    pub unrepaired: u64,
    pub bytes_fetched: u64,
    pub tombstones_purged: u64,
}

impl DriftTotals {
    fn add(&mut self, r: &PassReport) {
        self.passes += 1;
        self.items_checked += r.items_checked;
        self.drifted += r.drifted;
        self.repaired += r.repaired;
        self.orphans_removed += r.orphans_removed;
        self.unrepaired += r.unrepaired;
        self.bytes_fetched += r.bytes_fetched;
        self.tombstones_purged += r.tombstones_purged;
    }
}

/// `GET /admin/drift`: the last pass, the last failure and the totals.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftStatus {
    pub last: Option<PassReport>,
    pub last_error: Option<String>,
    pub totals: DriftTotals,
    /// Seconds between periodic passes (0: only on demand).
    pub interval_s: u64,
}

/// The node's drift status, shared by the checker and the admin API.
#[derive(Debug, Default)]
pub struct DriftStats {
    inner: Mutex<DriftStatus>,
}

impl DriftStats {
    pub fn new(interval_s: u64) -> Self {
        Self {
            inner: Mutex::new(DriftStatus {
                interval_s,
                ..DriftStatus::default()
            }),
        }
    }

    pub fn status(&self) -> DriftStatus {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(super) fn record(&self, result: &Result<PassReport, String>) {
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(r) => {
                s.totals.add(r);
                s.last = Some(r.clone());
            }
            Err(e) => {
                s.totals.failed_passes += 1;
                s.last_error = Some(e.clone());
            }
        }
    }
}
