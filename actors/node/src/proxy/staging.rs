//! The proxy's side of staged payloads (`store_actors::staging`): a write keeps its items durably
//! on the node that takes it *before* it proposes their hashes, so that whatever the registry
//! commits is held somewhere even when the write's own distribution never happens (the answer to
//! the commit was lost, the proxy was killed in between). Reads find such items when no replica
//! holds the committed content and repair the replicas from them; a periodic sweep completes or
//! drops what writes left behind.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use verisim_stores::{ContentHash, EntityId, ExportedItem, ModalityKind};

use super::ProxyState;
use super::error::ApiError;
use super::error::store_error;
use super::ports::{RegistryPort, StorePort};
use crate::consensus::endpoint::node_name;
use crate::registry::placement::write_quorum;
use crate::store_actors::{Fence, Imported, MODALITIES, StoreDirectory};

/// Test-only fault hook: a file of this name in the node's data directory, holding a count N,
/// makes the next N writes through this node commit and then answer `503 unavailable` without
/// distributing their items (as if the node had died right after the commit); the file is removed
/// when read at start. Anyone who can write there can corrupt the node's data anyway.
pub const FAULT_SKIP_DISTRIBUTION: &str = "FAULT_SKIP_DISTRIBUTION";

/// Reads and removes the [`FAULT_SKIP_DISTRIBUTION`] hook file in `dir`.
pub fn take_fault_hook(dir: &std::path::Path) -> u32 {
    let path = dir.join(FAULT_SKIP_DISTRIBUTION);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return 0;
    };
    let _ = std::fs::remove_file(&path);
    let n = text.trim().parse().unwrap_or(0);
    tracing::warn!(
        count = n,
        "fault injection active: writes will skip their distribution"
    );
    n
}

/// Takes one skip from the fault hook, if any is left.
pub(super) fn skip_this_distribution(st: &ProxyState) -> bool {
    use std::sync::atomic::Ordering;
    st.skip_distribution
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// How long one staging call may take.
const STAGING_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the sweep looks at this node's staged items.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// How old a staged item must be before the sweep decides about it: well past any commit timeout
/// and distribution of the write that staged it, so the sweep never races a write in flight.
pub const SETTLED_AFTER: Duration = Duration::from_secs(120);

/// Stages `items` on this node's stores (one group fsync covers the four); returns once they are
/// durable.
///
/// # Errors
/// `unavailable` when a local store cannot take them.
pub(super) async fn stage_local(
    stores: &StoreDirectory,
    items: &[ExportedItem],
) -> Result<(), ApiError> {
    let calls = items.iter().map(|item| async move {
        stores
            .on(stores.local_node(), item.modality)?
            .stage(item, STAGING_TIMEOUT)
            .await
    });
    for r in futures::future::join_all(calls).await {
        r.map_err(store_error)?;
    }
    Ok(())
}

/// Drops this node's staged copies of `items` in the background (their replicas hold them, or
/// they were never committed). A removal that fails is left to the sweep.
pub(super) fn unstage_local_later(stores: &StoreDirectory, items: &[ExportedItem]) {
    let stores = stores.clone();
    let keys: Vec<(ModalityKind, EntityId, ContentHash)> = items
        .iter()
        .map(|i| (i.modality, i.id.clone(), i.hash))
        .collect();
    tokio::spawn(async move {
        for (kind, id, hash) in keys {
            let removed = match stores.on(stores.local_node(), kind) {
                Ok(store) => store
                    .unstage(&[(id, hash)], STAGING_TIMEOUT)
                    .await
                    .map(|_| ()),
                Err(e) => Err(e),
            };
            if let Err(e) = removed {
                tracing::debug!(?kind, error = %e, "unstaging failed; the sweep will");
            }
        }
    });
}

/// The staged item (id, kind, hash) from the first member node that holds it, this node first;
/// verified by its store and again here.
pub(crate) async fn find_staged<R: RegistryPort, S: StorePort>(
    registry: &R,
    stores: &S,
    id: &EntityId,
    kind: ModalityKind,
    hash: ContentHash,
) -> Option<(String, ExportedItem)> {
    let local = registry.local_node();
    let mut nodes = registry.members();
    nodes.sort_by_key(|n| *n != local);
    for node in nodes {
        match stores.staged(&node, kind, id, hash).await {
            Ok(Some(item))
                if item.hash == hash
                    && item.modality == kind
                    && ContentHash::of(kind.hash_domain(), &item.payload.0) == hash =>
            {
                return Some((node, item));
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(%node, ?kind, error = %e, "staged lookup failed"),
        }
    }
    None
}

/// Imports `item` into every replica of its entity whose copy differs, while the registry still
/// commits exactly this content (a newer write distributes its own). Returns how many replicas
/// hold it afterwards and how many the placement has.
pub(crate) async fn repair_replicas<R: RegistryPort, S: StorePort>(
    registry: &R,
    stores: &S,
    item: &ExportedItem,
) -> (usize, usize) {
    let (placement, fence) = match registry.entity(&item.id) {
        Some(e) if e.items.get(&item.modality).map(|m| m.hash) == Some(item.hash) => (
            e.placement,
            Fence {
                index: e.index,
                version: e.version,
            },
        ),
        _ => return (0, 0),
    };
    let mut held = 0;
    for node in &placement {
        let node = node.as_str();
        match stores.item_hash(node, item.modality, &item.id).await {
            Ok(Some(h)) if h == item.hash => held += 1,
            Ok(_) => match stores.import(node, item, fence).await {
                Ok(Imported::Superseded { held }) => tracing::debug!(%node, ?held,
                    "replica holds a newer version than the staged copy"),
                Ok(Imported::Stored(_)) => {
                    held += 1;
                    tracing::info!(id = %item.id, kind = ?item.modality, %node,
                        "replica repaired from a staged copy");
                }
                Err(e) => tracing::warn!(id = %item.id, %node, error = %e,
                    "repairing a replica from a staged copy failed"),
            },
            Err(e) => tracing::debug!(%node, error = %e, "replica not reachable for repair"),
        }
    }
    (held, placement.len())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What one sweep pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Staged items looked at (old enough to decide about).
    pub settled: u64,
    /// Dropped: not the registry's current content, or held by a write quorum of replicas.
    pub dropped: u64,
    /// Kept: current content that too few replicas hold yet.
    pub kept: u64,
}

/// One pass over this node's staged items older than `settled_after`: an item the registry no
/// longer (or never) committed is dropped; a committed one is imported into its replicas that
/// miss it and dropped once a write quorum of them holds it.
///
/// # Errors
/// No read barrier (the registry view could be stale, so nothing is decided).
pub async fn sweep_once(st: &ProxyState, settled_after: Duration) -> Result<SweepReport, ApiError> {
    st.read_barrier().await?;
    let horizon = now_ms().saturating_sub(settled_after.as_millis() as u64);
    let mut report = SweepReport::default();
    for kind in MODALITIES {
        let Ok(store) = st.stores.on(&node_name(st.id), kind) else {
            continue;
        };
        let mut after = None;
        loop {
            let page = store
                .staged_list(after.clone(), STAGING_TIMEOUT)
                .await
                .map_err(store_error)?;
            let Some(last) = page.last() else { break };
            after = Some((last.hash, last.id.clone()));
            for entry in page.into_iter().filter(|e| e.staged_at_ms <= horizon) {
                report.settled += 1;
                let current = st
                    .replica
                    .read()
                    .state
                    .entity(&entry.id)
                    .and_then(|e| e.items.get(&kind).map(|m| m.hash))
                    == Some(entry.hash);
                let drop = if current {
                    match store.staged(&entry.id, entry.hash, STAGING_TIMEOUT).await {
                        Ok(Some(item)) => {
                            let (held, replicas) = repair_replicas(st, &st.stores, &item).await;
                            replicas == 0 || held >= write_quorum(replicas)
                        }
                        // Gone meanwhile, or corrupt: nothing to keep.
                        Ok(None) | Err(_) => true,
                    }
                } else {
                    true
                };
                if drop {
                    report.dropped += 1;
                    store
                        .unstage(&[(entry.id, entry.hash)], STAGING_TIMEOUT)
                        .await
                        .map_err(store_error)?;
                } else {
                    report.kept += 1;
                }
            }
        }
    }
    Ok(report)
}

/// The node's sweep: a pass every [`SWEEP_EVERY`] (the first one soon after start, for what a
/// crash left), deciding about items older than [`SETTLED_AFTER`].
pub async fn sweep_forever(st: ProxyState) {
    // Spread the nodes' passes apart.
    let jitter = Duration::from_millis((st.id % 7) * 1000);
    tokio::time::sleep(Duration::from_secs(5) + jitter).await;
    loop {
        match sweep_once(&st, SETTLED_AFTER).await {
            Ok(r) if r.settled > 0 => tracing::info!(?r, "staging sweep"),
            Ok(_) => {}
            Err(e) => tracing::debug!(error = ?e, "staging sweep skipped"),
        }
        tokio::time::sleep(SWEEP_EVERY + jitter).await;
    }
}
