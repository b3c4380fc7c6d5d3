//! One check-and-repair pass: this node's stores against the registry state at a read index.
//!
//! 1. **Fix the registry view.** A read barrier, then the entities the registry places on this node
//!    and their committed hashes, at this node's applied index.
//! 2. **Compare digests.** Per modality, the XOR digest of each of the 4096 buckets of the id space
//!    (kept by the store, written in the same batch as the items) against the digest the registry's
//!    hashes imply. Equal buckets are done: nothing is read or sent for them.
//! 3. **Narrow to items.** For the differing buckets only, the store's (id, hash) list against the
//!    registry's: *missing*, *stale* (another hash) and *orphaned* (no entity placed here) items.
//! 4. **Repair**, paced (`[drift] repair_rate`), after a second read barrier and a re-check of each
//!    item against the registry as it is now (a write may have fixed or changed it meanwhile):
//!    missing and stale items are fetched from a replica whose copy matches the committed hash
//!    (verified by that store on export and again here), or from a staged copy on any member, and
//!    imported; orphans are removed. What cannot be repaired now is counted and left to the next pass.
//!    Every write is fenced (`store_actors::fence`): an import by the index of the registry entry
//!    that produced the item, an orphan's removal by the index the pass compared at, so a repair
//!    never overwrites or removes what a newer write put there meanwhile.
//! 5. **Purge tombstones** older than [`TOMBSTONE_KEEP`].
//!
//! The cost on this node is one pass over the registry's placement (in memory) and 4 × 4096 digests
//! from the stores; reads, transfers and writes grow with the drift only.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use verisim_stores::{BUCKETS, BucketDigest, ContentHash, EntityId, ModalityKind, bucket_of};

use super::report::PassReport;
use crate::consensus::endpoint::node_name;
use crate::proxy::ProxyState;
use crate::proxy::registration::fetch_verified;
use crate::proxy::staging::find_staged;
use crate::registry::NodeName;
use crate::store_actors::{Fence, Imported, MODALITIES, Removed, StoreRef};

use crate::store_actors::STORE_TIMEOUT;

/// Repairs in flight at once (each one a fetch from a peer and a local write).
const REPAIR_CONCURRENCY: usize = 8;

/// How long a removed item's tombstone is kept. It only has to outlive any import of an older
/// version still in flight, and each of those is bounded by a store call timeout (10 s) and checks
/// the registry before it starts.
pub(super) const TOMBSTONE_KEEP: Duration = Duration::from_secs(600);

/// Spaces repairs (and the rebalancer's copies) at most `rate` per second.
pub(crate) struct Pacer {
    period: Duration,
    next: Mutex<tokio::time::Instant>,
}

impl Pacer {
    pub(crate) fn new(rate: u32) -> Self {
        Self {
            period: Duration::from_secs(1) / rate.max(1),
            next: Mutex::new(tokio::time::Instant::now()),
        }
    }

    pub(crate) async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let at = (*next).max(tokio::time::Instant::now());
            *next = at + self.period;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// One item that differs from the registry.
#[derive(Debug)]
enum Diff {
    /// Placed here with `expected`; the store holds `held` (`None`: nothing).
    Fetch {
        kind: ModalityKind,
        id: EntityId,
        expected: ContentHash,
        held: Option<ContentHash>,
    },
    /// Held here (`held`) for no entity the registry places on this node.
    Orphan {
        kind: ModalityKind,
        id: EntityId,
        held: ContentHash,
    },
}

/// What became of one difference.
enum Fixed {
    Repaired {
        bytes_fetched: u64,
    },
    OrphanRemoved,
    /// A write fixed or changed it since it was listed: nothing to do now.
    Resolved,
    Unrepaired,
}

fn fail(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Runs one pass (`Err` when it could not compare at all: no read barrier, a local store down);
/// `repair: false` compares and reports only.
pub(super) async fn run(
    st: &ProxyState,
    pacer: &Pacer,
    repair: bool,
) -> Result<PassReport, String> {
    let started = Instant::now();
    let local = node_name(st.id);
    let me = NodeName::new(local.clone()).map_err(|e| fail("node name", e))?;
    st.read_barrier()
        .await
        .map_err(|e| fail("no read barrier", e.message))?;
    // Copied out under the lock, hashed outside it: the replica's writers are not held up.
    let (applied_index, placed) = {
        let replica = st.replica.read();
        let placed: Vec<(EntityId, [Option<ContentHash>; 4])> = replica
            .state
            .entities_on(&me)
            .map(|(id, e)| {
                (
                    id.clone(),
                    MODALITIES.map(|k| e.items.get(&k).map(|m| m.hash)),
                )
            })
            .collect();
        (replica.applied_index, placed)
    };
    let buckets: Vec<u16> = placed.iter().map(|(id, _)| bucket_of(id)).collect();
    let mut report = PassReport {
        applied_index,
        ..PassReport::default()
    };
    let mut diffs = Vec::new();
    for (k, kind) in MODALITIES.into_iter().enumerate() {
        let mut expected = vec![BucketDigest::default(); usize::from(BUCKETS)];
        for ((id, hashes), &b) in placed.iter().zip(&buckets) {
            if let Some(h) = hashes[k] {
                expected[usize::from(b)].toggle(id, &h);
                report.items_checked += 1;
            }
        }
        let store = st
            .stores
            .local(kind)
            .ok_or_else(|| format!("the local {kind:?} store is not running"))?;
        let held = store
            .bucket_digests(0..BUCKETS, STORE_TIMEOUT)
            .await
            .map_err(|e| fail("bucket digests", e))?;
        let differing: BTreeSet<u16> = held
            .iter()
            .filter(|(b, d)| expected.get(usize::from(*b)) != Some(d))
            .map(|(b, _)| *b)
            .collect();
        if differing.is_empty() {
            continue;
        }
        report.buckets_differing += differing.len() as u64;
        let mut want: BTreeMap<u16, BTreeMap<&EntityId, ContentHash>> = BTreeMap::new();
        for ((id, hashes), b) in placed.iter().zip(&buckets) {
            if let (true, Some(h)) = (differing.contains(b), hashes[k]) {
                want.entry(*b).or_default().insert(id, h);
            }
        }
        for b in differing {
            let mut want = want.remove(&b).unwrap_or_default();
            let items = store
                .bucket_items(b, STORE_TIMEOUT)
                .await
                .map_err(|e| fail("bucket items", e))?;
            for (id, held) in items {
                match want.remove(&id) {
                    Some(h) if h == held => {}
                    Some(h) => diffs.push(Diff::Fetch {
                        kind,
                        id,
                        expected: h,
                        held: Some(held),
                    }),
                    None => diffs.push(Diff::Orphan { kind, id, held }),
                }
            }
            for (id, h) in want {
                diffs.push(Diff::Fetch {
                    kind,
                    id: id.clone(),
                    expected: h,
                    held: None,
                });
            }
        }
    }
    for d in &diffs {
        match d {
            Diff::Fetch { held: None, .. } => report.missing += 1,
            Diff::Fetch { .. } => report.stale += 1,
            Diff::Orphan { .. } => report.orphans += 1,
        }
    }
    report.drifted = diffs.len() as u64;
    report.repair = repair;
    if !repair {
        report.unrepaired = report.drifted;
        report.duration_ms = started.elapsed().as_millis() as u64;
        report.finished_at_ms = now_ms();
        return Ok(report);
    }
    if !diffs.is_empty() {
        // Whatever a store held when listed was committed at or before this barrier's index, so
        // the re-checks below see every write whose items the listing showed.
        st.read_barrier()
            .await
            .map_err(|e| fail("no read barrier before repairing", e.message))?;
        // Orphans are removed fenced at this index: nothing committed after it is touched.
        let horizon = st.replica.read().applied_index;
        let bytes = AtomicU64::new(0);
        let outcomes: Vec<Fixed> = futures::stream::iter(diffs)
            .map(|d| {
                let (st, me, bytes) = (st, &me, &bytes);
                async move {
                    pacer.wait().await;
                    let fixed = repair_one(st, me, horizon, d).await;
                    if let Fixed::Repaired { bytes_fetched } = fixed {
                        bytes.fetch_add(bytes_fetched, Ordering::Relaxed);
                    }
                    fixed
                }
            })
            .buffer_unordered(REPAIR_CONCURRENCY)
            .collect()
            .await;
        for o in outcomes {
            match o {
                Fixed::Repaired { .. } => report.repaired += 1,
                Fixed::OrphanRemoved => report.orphans_removed += 1,
                Fixed::Resolved => {}
                Fixed::Unrepaired => report.unrepaired += 1,
            }
        }
        report.bytes_fetched = bytes.into_inner();
    }
    let before = now_ms().saturating_sub(TOMBSTONE_KEEP.as_millis() as u64);
    for kind in MODALITIES {
        if let Some(store) = st.stores.local(kind) {
            report.tombstones_purged += store
                .purge_tombstones(before, STORE_TIMEOUT)
                .await
                .map_err(|e| fail("purging tombstones", e))?;
        }
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    report.finished_at_ms = now_ms();
    Ok(report)
}

/// The registry's current hash of `id`'s `kind` item and the entry that wrote it, if it places
/// the entity on `me`.
fn placed_here(
    st: &ProxyState,
    me: &NodeName,
    id: &EntityId,
    kind: ModalityKind,
) -> Option<(ContentHash, Fence)> {
    let replica = st.replica.read();
    let e = replica.state.entity(id)?;
    if !e.placement.contains(me) {
        return None;
    }
    let fence = Fence {
        index: e.index,
        version: e.version,
    };
    e.items.get(&kind).map(|m| (m.hash, fence))
}

/// Whether the local store still holds exactly `held` for `id`.
async fn still_holds(store: &StoreRef, id: &EntityId, held: Option<ContentHash>) -> bool {
    matches!(store.item_hash(id, STORE_TIMEOUT).await, Ok(h) if h == held)
}

async fn repair_one(st: &ProxyState, me: &NodeName, horizon: u64, d: Diff) -> Fixed {
    let kind = match &d {
        Diff::Fetch { kind, .. } | Diff::Orphan { kind, .. } => *kind,
    };
    let Some(store) = st.stores.local(kind) else {
        return Fixed::Unrepaired;
    };
    match d {
        Diff::Fetch {
            id, expected, held, ..
        } => {
            let fence = match placed_here(st, me, &id, kind) {
                Some((h, fence)) if h == expected => fence,
                _ => return Fixed::Resolved,
            };
            if !still_holds(&store, &id, held).await {
                return Fixed::Resolved;
            }
            let peers: Vec<String> = {
                let replica = st.replica.read();
                replica
                    .state
                    .entity(&id)
                    .map(|e| {
                        e.placement
                            .iter()
                            .filter(|n| *n != me)
                            .map(|n| n.as_str().to_owned())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let order: Vec<&str> = peers.iter().map(String::as_str).collect();
            let (from, item) = match fetch_verified(&st.stores, &order, &id, kind, expected).await {
                Ok(found) => found,
                Err(_) => match find_staged(st, &st.stores, &id, kind, expected).await {
                    Some(found) => found,
                    None => {
                        tracing::warn!(%id, ?kind, "drift: no replica holds the committed content");
                        return Fixed::Unrepaired;
                    }
                },
            };
            // The export was verified by the store that sent it; check it again before writing.
            if item.id != id
                || item.modality != kind
                || ContentHash::of(kind.hash_domain(), &item.payload.0) != expected
            {
                tracing::warn!(%id, ?kind, %from, "drift: a fetched copy does not match its hash");
                return Fixed::Unrepaired;
            }
            // Fenced: a newer version distributed meanwhile is not overwritten.
            match store.import(&item, fence, STORE_TIMEOUT).await {
                Ok(Imported::Superseded { .. }) => Fixed::Resolved,
                Ok(Imported::Stored(_)) => {
                    tracing::info!(%id, ?kind, %from, "drift: item repaired");
                    let remote = from != st.stores.local_node();
                    Fixed::Repaired {
                        bytes_fetched: if remote {
                            item.payload.0.len() as u64
                        } else {
                            0
                        },
                    }
                }
                Err(e) => {
                    tracing::warn!(%id, ?kind, error = %e, "drift: writing a repaired item failed");
                    Fixed::Unrepaired
                }
            }
        }
        Diff::Orphan { id, held, .. } => {
            match placed_here(st, me, &id, kind) {
                // Committed meanwhile, with this content: not an orphan.
                Some((h, _)) if h == held => return Fixed::Resolved,
                // Committed with another content: the next pass fetches it.
                Some(_) => return Fixed::Unrepaired,
                None => {}
            }
            if !still_holds(&store, &id, Some(held)).await {
                return Fixed::Resolved;
            }
            // Fenced by the index the pass compared at: an item a write committed after it (and
            // distributed here meanwhile) is not removed.
            match store.remove(&id, horizon, STORE_TIMEOUT).await {
                Ok(Removed {
                    superseded: true, ..
                }) => Fixed::Resolved,
                Ok(_) => {
                    tracing::info!(%id, ?kind, "drift: orphaned item removed");
                    Fixed::OrphanRemoved
                }
                Err(e) => {
                    tracing::warn!(%id, ?kind, error = %e, "drift: removing an orphan failed");
                    Fixed::Unrepaired
                }
            }
        }
    }
}
