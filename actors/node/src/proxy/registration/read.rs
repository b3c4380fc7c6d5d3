//! Reading an entity: the four modalities of one committed version, each from a replica whose copy
//! matches the hash the registry committed for it.
//!
//! A read fixes the entity's version at a read index, then looks for each modality on its replicas
//! (this node first). Three things can stand between it and a verified copy, and they are told apart:
//! - **the entity moved on**: an update or delete committed after the read started, and the replicas
//!   already hold the newer content. The read starts again on the newer version (or answers 404),
//!   so a read racing writes answers the version it started with or a newer one, never drift;
//! - **a replica is unreachable**: that is no evidence of drift. Another replica serves, or the read
//!   answers `503 unavailable` when none that could hold it answered;
//! - **drift**: every replica answered and none holds the committed content, not even a staged copy
//!   on any member (see `proxy::staging`): `502 drift_detected`, with what each replica held.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use verisim_client::wire::ErrorCode;
use verisim_stores::{ContentHash, EntityId, ExportedItem, ModalityKind};

use super::{Registration, no_entity};
use crate::proxy::error::ApiError;
use crate::proxy::ports::{RegistryPort, StorePort};
use crate::proxy::staging;
use crate::registry::{ClientId, EntityMeta, NodeName};
use crate::store_actors::MODALITIES;

/// How long a read looks again for a modality no replica holds at the committed hash before it
/// decides: a write's distribution in flight usually completes within a few fsyncs.
const DISTRIBUTION_GRACE: Duration = Duration::from_secs(2);

/// How many times a read starts again on a newer version before it gives up with `503`: an entity
/// rewritten faster than it can be read.
const MAX_RESTARTS: u32 = 16;

/// What one replica held for one modality, when it was not the committed content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Held {
    /// Another content (an older or newer version, or drift).
    Other(ContentHash),
    /// Nothing.
    Missing,
    /// The replica did not answer.
    Unreachable(String),
}

impl Held {
    fn describe(&self) -> String {
        match self {
            Held::Other(h) => format!("hash {}", h.to_hex()),
            Held::Missing => "missing".into(),
            Held::Unreachable(e) => format!("unreachable: {e}"),
        }
    }
}

/// What each replica asked held instead of a matching copy: (node, what).
pub type Seen = Vec<(String, Held)>;

/// The item of `kind` from the first of `nodes` whose copy matches `expected`, in the order given.
/// `Err` lists what each node held instead. (Also the drift checker's, the rebalancer's and the
/// backup's way to a verified copy.)
pub(crate) async fn fetch_verified<S: StorePort>(
    stores: &S,
    nodes: &[&str],
    id: &EntityId,
    kind: ModalityKind,
    expected: ContentHash,
) -> Result<(String, ExportedItem), Seen> {
    let mut seen = Vec::new();
    for &node in nodes {
        match stores.export(node, kind, id).await {
            // The store verified the payload against its hash on export.
            Ok(Some(item)) if item.hash == expected => return Ok((node.to_owned(), item)),
            Ok(Some(item)) => seen.push((node.to_owned(), Held::Other(item.hash))),
            Ok(None) => seen.push((node.to_owned(), Held::Missing)),
            Err(e) => seen.push((node.to_owned(), Held::Unreachable(e.to_string()))),
        }
    }
    Err(seen)
}

/// The replicas of `placement`, `local` first.
fn read_order<'a>(local: &str, placement: &'a [NodeName]) -> Vec<&'a str> {
    let mut order: Vec<&str> = placement.iter().map(NodeName::as_str).collect();
    order.sort_by_key(|n| *n != local);
    order
}

/// The modalities found: (node, item) each.
pub type Views = BTreeMap<ModalityKind, (String, ExportedItem)>;
/// The modalities found at no replica: the committed hash, and what each replica held instead.
pub type Unfound = Vec<(ModalityKind, ContentHash, Seen)>;

/// What a read found.
pub struct EntityRead {
    /// The version read, as the registry committed it.
    pub meta: EntityMeta,
    /// Every modality of that version, verified against its committed hash.
    pub views: Views,
    /// Only when the caller allowed drift: the modalities no replica (nor staged copy) held.
    pub unfound: Unfound,
}

enum Attempt {
    /// Every modality of this version, verified; or (only with `allow_drift`) some left unfound.
    Read(Views, Unfound),
    /// The entity changed (or went) since the version was fixed: read again.
    Moved,
}

impl<R: RegistryPort, S: StorePort> Registration<R, S> {
    /// Reads entity `id` for `caller`: all four modalities of one version, each verified against
    /// the hash the registry committed. Linearizable: the version is fixed at a read index from
    /// the leader, and a newer one is answered only if it committed meanwhile. With `allow_drift`,
    /// the modalities no replica holds are listed instead of failing the read.
    ///
    /// # Errors
    /// `not_found` when the caller may not read it (or it does not exist); `drift_detected` when
    /// every replica answered and none holds a modality's committed content; `unavailable` when a
    /// replica that might hold it did not answer, or the entity kept changing; `no_quorum` when
    /// the read index cannot be had.
    pub async fn get(
        &self,
        id: &EntityId,
        caller: &ClientId,
        allow_drift: bool,
    ) -> Result<EntityRead, ApiError> {
        self.registry.read_barrier().await?;
        let mut restarts = 0;
        loop {
            let meta = self.readable(id, caller)?;
            match self.attempt(id, &meta, allow_drift).await? {
                Attempt::Read(views, unfound) => {
                    if restarts > 0 {
                        tracing::debug!(%id, restarts, version = meta.version,
                            "read moved to a newer version");
                    }
                    return Ok(EntityRead {
                        meta,
                        views,
                        unfound,
                    });
                }
                Attempt::Moved if restarts < MAX_RESTARTS => restarts += 1,
                Attempt::Moved => {
                    return Err(ApiError::new(
                        ErrorCode::Unavailable,
                        format!("{id} changed {restarts} times while being read; retry later"),
                    ));
                }
            }
        }
    }

    /// The entity `caller` may read, as this node has applied it; 404 otherwise.
    fn readable(&self, id: &EntityId, caller: &ClientId) -> Result<EntityMeta, ApiError> {
        self.registry
            .entity(id)
            .filter(|e| e.can_read(caller))
            .ok_or_else(|| no_entity(id))
    }

    /// Whether the registry (as this node has applied it) no longer holds exactly `meta`'s
    /// content where `meta` placed it (the rebalancer moved it: old replicas drop their copies).
    fn moved(&self, id: &EntityId, meta: &EntityMeta) -> bool {
        self.registry.entity(id).is_none_or(|now| {
            now.version != meta.version
                || now.items != meta.items
                || now.placement != meta.placement
        })
    }

    /// One attempt at reading version `meta` of `id`.
    async fn attempt(
        &self,
        id: &EntityId,
        meta: &EntityMeta,
        allow_drift: bool,
    ) -> Result<Attempt, ApiError> {
        let local = self.registry.local_node();
        let order = read_order(&local, &meta.placement);
        let mut views = Views::new();
        let mut missing: Unfound = Vec::new();
        for kind in MODALITIES {
            let expected = meta
                .items
                .get(&kind)
                .ok_or_else(|| ApiError::internal(format!("no {kind:?} hash recorded")))?
                .hash;
            missing.push((kind, expected, Vec::new()));
        }
        // A write committed a moment ago may still be on its way to the replicas (its 201 waits
        // for that): look again for a short while before deciding (not when the caller asked for
        // whatever is there).
        let grace = Instant::now()
            + if allow_drift {
                Duration::ZERO
            } else {
                DISTRIBUTION_GRACE
            };
        let mut pause = Duration::from_millis(5);
        loop {
            let mut still = Vec::new();
            for (kind, expected, _) in missing {
                match fetch_verified(&self.stores, &order, id, kind, expected).await {
                    Ok(found) => {
                        views.insert(kind, found);
                    }
                    // No replica holds the committed content (yet): the node that took the write
                    // keeps a staged copy until its replicas do; serve it and repair from it.
                    Err(seen) => {
                        match staging::find_staged(&self.registry, &self.stores, id, kind, expected)
                            .await
                        {
                            Some((node, item)) => {
                                let (registry, stores) =
                                    (self.registry.clone(), self.stores.clone());
                                let repair = item.clone();
                                tokio::spawn(async move {
                                    staging::repair_replicas(&registry, &stores, &repair).await;
                                });
                                views.insert(kind, (node, item));
                            }
                            None => still.push((kind, expected, seen)),
                        }
                    }
                }
            }
            missing = still;
            if missing.is_empty() {
                return Ok(Attempt::Read(views, missing));
            }
            // The replicas may hold a newer version already: this node applies it soon after.
            if self.moved(id, meta) {
                return Ok(Attempt::Moved);
            }
            if Instant::now() + pause > grace {
                break;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
        if allow_drift {
            return Ok(Attempt::Read(views, missing));
        }
        // Before calling anything drift: is this still the version the quorum holds?
        self.registry.read_barrier().await?;
        if self.moved(id, meta) {
            return Ok(Attempt::Moved);
        }
        let details = serde_json::json!({ "modalities": describe(&missing) });
        // A replica that did not answer may hold it: that is not drift.
        let unreachable = missing
            .iter()
            .any(|(_, _, seen)| seen.iter().any(|(_, h)| matches!(h, Held::Unreachable(_))));
        if unreachable {
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                format!("no reachable replica holds the committed content of {id}; retry later"),
            )
            .with_details(details));
        }
        Err(ApiError::new(
            ErrorCode::DriftDetected,
            format!("{} modalities of {id} match no replica", missing.len()),
        )
        .with_details(details))
    }
}

/// What each replica held for each modality not found, as the error's `details`.
fn describe(missing: &Unfound) -> Vec<serde_json::Value> {
    missing
        .iter()
        .map(|(kind, expected, seen)| {
            serde_json::json!({
                "modality": kind,
                "expected": expected.to_hex(),
                "replicas": seen
                    .iter()
                    .map(|(n, h)| serde_json::json!({"node": n, "found": h.describe()}))
                    .collect::<Vec<_>>(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_node_is_asked_first_and_the_placement_order_kept_otherwise() {
        let p: Vec<NodeName> = ["node-1", "node-2", "node-3"]
            .iter()
            .map(|n| NodeName::new(*n).unwrap())
            .collect();
        assert_eq!(read_order("node-2", &p), vec!["node-2", "node-1", "node-3"]);
        assert_eq!(read_order("node-9", &p), vec!["node-1", "node-2", "node-3"]);
    }
}
