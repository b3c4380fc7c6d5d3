//! One rebalancing round, run by the leader: widen, copy, narrow, drop (see `plan` for the steps).
//!
//! Every step is safe to stop at any point: a widened placement is a valid placement (writes go
//! to all of it, the drift checkers of its nodes fill it in), a narrowing commits only if the
//! entity did not change since its copies were checked, and a copy left on a dropped node is an
//! orphan the drift checker removes. A new leader picks up where the last one stopped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures::StreamExt;
use verisim_stores::ContentHash;

use super::plan::{Settle, misplaced_since, plan};
use super::report::RoundReport;
use crate::consensus::endpoint::node_name;
use crate::drift::Pacer;
use crate::proxy::ProxyState;
use crate::proxy::registration::fetch_verified;
use crate::proxy::staging::find_staged;
use crate::registry::{Command, NodeName, Outcome, PlacementMove, RegistryState};
use crate::store_actors::{Fence, Imported, MODALITIES};

use crate::store_actors::STORE_TIMEOUT;

/// Entities copied at once.
const COPY_CONCURRENCY: usize = 8;

/// The voters of the membership this node applied, as node names.
pub fn voters(st: &ProxyState) -> Vec<NodeName> {
    st.replica
        .read()
        .membership
        .voters
        .iter()
        .filter_map(|&v| NodeName::new(node_name(v)).ok())
        .collect()
}

fn fail(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

/// Commits `moves` (if any) and answers the index of the entry and how many applied.
async fn commit_moves(st: &ProxyState, moves: Vec<PlacementMove>) -> Result<(u64, u64), String> {
    if moves.is_empty() {
        return Ok((0, 0));
    }
    let applied = st
        .commit(Command::MovePlacements { moves })
        .await
        .map_err(|e| fail("committing placement moves", e.message))?;
    match applied.outcome {
        Outcome::PlacementsMoved { moved, index, .. } => Ok((index, moved)),
        other => Err(format!("placement moves were answered {other:?}")),
    }
}

/// What a round that ended with nothing misplaced vouches for: every entity written or moved at
/// or before `through` is placed as `replicas` of `voters` say. The next round with the same voters
/// looks only at the entities changed after it (an entity's `index` is that of the entry that last
/// wrote or moved it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct InPlace {
    pub voters: Vec<NodeName>,
    pub through: u64,
}

/// The registry as this node applied it, read under the lock for as long as a clone takes (its
/// maps are persistent: the clone shares them), then `f` over it on a blocking thread, so that a
/// scan of a million entities neither holds the lock the consensus actor applies under nor a
/// runtime worker.
async fn scan<T: Send + 'static>(
    st: &ProxyState,
    f: impl FnOnce(&RegistryState) -> T + Send + 'static,
) -> Result<(u64, T), String> {
    let (index, state) = {
        let replica = st.replica.read();
        (replica.applied_index, replica.state.clone())
    };
    let out = tokio::task::spawn_blocking(move || f(&state))
        .await
        .map_err(|e| fail("scanning the registry", e))?;
    Ok((index, out))
}

/// How many entities this node's replica places elsewhere than `replicas` of `voters` say, with
/// the applied index and the entity count it counted at (scanned off the lock, as a round does).
pub async fn count_misplaced(
    st: &ProxyState,
    voters: Vec<NodeName>,
    replicas: usize,
) -> Result<(u64, u64, u64), String> {
    let (index, (entities, misplaced)) = scan(st, move |s| {
        (
            s.entity_count() as u64,
            misplaced_since(s, &voters, replicas, 0),
        )
    })
    .await?;
    Ok((index, entities, misplaced))
}

/// Runs one round over at most `limit` entities per step; `in_place` is what the last round that
/// ended with nothing misplaced vouches for. Answers the report and what this round vouches for.
pub(super) async fn run(
    st: &ProxyState,
    pacer: &Pacer,
    replicas: usize,
    limit: usize,
    in_place: Option<&InPlace>,
) -> Result<(RoundReport, Option<InPlace>), String> {
    let started = Instant::now();
    st.read_barrier()
        .await
        .map_err(|e| fail("no read barrier", e.message))?;
    let voters = voters(st);
    let since = in_place
        .filter(|p| p.voters == voters)
        .map_or(0, |p| p.through);
    let (applied_index, plan) = {
        let voters = voters.clone();
        scan(st, move |s| plan(s, &voters, replicas, limit, since)).await?
    };
    let mut report = RoundReport {
        applied_index,
        examined_since: since,
        replicas: replicas as u64,
        voters: voters.iter().map(|n| n.as_str().to_owned()).collect(),
        misplaced: plan.misplaced,
        ..RoundReport::default()
    };
    if plan.misplaced == 0 {
        // Nothing to move: nothing this round could change.
        report.duration_ms = started.elapsed().as_millis() as u64;
        report.finished_at_ms = super::report::now_ms();
        let in_place = InPlace {
            voters,
            through: applied_index,
        };
        return Ok((report, Some(in_place)));
    }
    let mut settle = plan.settle;
    let (_, widened) = commit_moves(st, plan.widen.iter().map(|w| w.mv.clone()).collect()).await?;
    report.widened = widened;
    if widened > 0 {
        let replica = st.replica.read();
        settle.extend(
            plan.widen
                .iter()
                .filter(|w| {
                    replica
                        .state
                        .entity(&w.mv.id)
                        .is_some_and(|e| e.version == w.mv.version && e.placement == w.mv.to)
                })
                .map(|w| w.then()),
        );
    }
    let copied = AtomicU64::new(0);
    let bytes = AtomicU64::new(0);
    let ready: Vec<Settle> = futures::stream::iter(settle)
        .map(|t| {
            let (copied, bytes) = (&copied, &bytes);
            async move {
                match copy_to_desired(st, pacer, &t).await {
                    Ok((items, b)) => {
                        copied.fetch_add(items, Ordering::Relaxed);
                        bytes.fetch_add(b, Ordering::Relaxed);
                        Some(t)
                    }
                    Err(e) => {
                        tracing::info!(id = %t.id, error = %e, "rebalance: copies not complete yet");
                        None
                    }
                }
            }
        })
        .buffer_unordered(COPY_CONCURRENCY)
        .filter_map(|t| async move { t })
        .collect()
        .await;
    report.items_copied = copied.into_inner();
    report.bytes_copied = bytes.into_inner();
    let narrowing: Vec<&Settle> = ready.iter().filter(|t| t.narrows()).collect();
    let (index, narrowed) =
        commit_moves(st, narrowing.iter().map(|t| t.narrowing()).collect()).await?;
    report.narrowed = narrowed;
    if narrowed > 0 {
        for t in narrowing {
            // Narrowed by this entry: nothing but a move changes a placement, and an update
            // right after it (a new index, the same placement) changes nothing for the drop.
            let moved = st
                .replica
                .read()
                .state
                .entity(&t.id)
                .is_some_and(|e| e.index >= index && e.placement == t.to);
            if moved {
                report.items_dropped += drop_copies(st, t, index).await;
            }
        }
    }
    let (through, misplaced_after) = {
        let voters = voters.clone();
        scan(st, move |s| misplaced_since(s, &voters, replicas, since)).await?
    };
    report.misplaced_after = misplaced_after;
    report.duration_ms = started.elapsed().as_millis() as u64;
    report.finished_at_ms = super::report::now_ms();
    let in_place = (misplaced_after == 0).then_some(InPlace { voters, through });
    Ok((report, in_place))
}

/// Makes every node of `t.to` hold the entity's committed content (still version `t.version` with
/// placement `t.from`): each item checked by hash on that node and, where missing or stale, copied
/// from a replica whose copy matches (verified by the sender's store on export and again here) and
/// imported fenced by the entity's index. Answers the items and bytes copied.
async fn copy_to_desired(st: &ProxyState, pacer: &Pacer, t: &Settle) -> Result<(u64, u64), String> {
    let (mut items, mut bytes) = (0, 0);
    for node in &t.to {
        for kind in MODALITIES {
            let Some((expected, fence)) = committed(st, t, kind) else {
                return Err("the entity changed since the round began".into());
            };
            let store = st
                .stores
                .on(node.as_str(), kind)
                .map_err(|e| fail("store", e))?;
            if store
                .item_hash(&t.id, STORE_TIMEOUT)
                .await
                .map_err(|e| fail("item hash", e))?
                == Some(expected)
            {
                continue;
            }
            pacer.wait().await;
            let order: Vec<&str> = t
                .from
                .iter()
                .filter(|n| *n != node)
                .map(NodeName::as_str)
                .collect();
            let (from, item) = match fetch_verified(&st.stores, &order, &t.id, kind, expected).await
            {
                Ok(found) => found,
                Err(_) => find_staged(st, &st.stores, &t.id, kind, expected)
                    .await
                    .ok_or_else(|| format!("no replica holds its {kind:?} content"))?,
            };
            if item.id != t.id
                || item.modality != kind
                || ContentHash::of(kind.hash_domain(), &item.payload.0) != expected
            {
                return Err(format!("a copy from {from} does not match its hash"));
            }
            match store
                .import(&item, fence, STORE_TIMEOUT)
                .await
                .map_err(|e| fail("import", e))?
            {
                Imported::Stored(_) => {
                    items += 1;
                    if from != node.as_str() {
                        bytes += item.payload.0.len() as u64;
                    }
                }
                // Something newer is there: the entity changed, the narrowing will not apply.
                Imported::Superseded { .. } => {
                    return Err("the entity changed since the round began".into());
                }
            }
        }
    }
    Ok((items, bytes))
}

/// The registry's hash of `t`'s `kind` item and its fence, while it is still as `t` saw it.
fn committed(
    st: &ProxyState,
    t: &Settle,
    kind: verisim_stores::ModalityKind,
) -> Option<(ContentHash, Fence)> {
    let replica = st.replica.read();
    let e = replica
        .state
        .entity(&t.id)
        .filter(|e| e.version == t.version && e.placement == t.from)?;
    let fence = Fence {
        index: e.index,
        version: e.version,
    };
    e.items.get(&kind).map(|m| (m.hash, fence))
}

/// Removes the entity's items from the nodes the narrowing at `index` dropped, fenced by it: an
/// item a later write put there is kept. Best effort: what fails is an orphan for the drift
/// checker of that node. Answers the items removed.
async fn drop_copies(st: &ProxyState, t: &Settle, index: u64) -> u64 {
    let mut removed = 0;
    for node in t.dropped() {
        for kind in MODALITIES {
            let Ok(store) = st.stores.on(node.as_str(), kind) else {
                continue;
            };
            match store.remove(&t.id, index, STORE_TIMEOUT).await {
                Ok(r) if !r.superseded => removed += 1,
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(id = %t.id, %node, error = %e, "rebalance: a dropped copy stays for the drift checker");
                }
            }
        }
    }
    removed
}
