//! `GET /v1/entities/{id}`: the four modalities of one committed version, each from a replica whose
//! copy matches the hash the registry committed for it.
//!
//! A read fixes the entity's version at a read index, then looks for each modality on its replicas
//! (this node first). Three things can stand between it and a verified copy, and they are told apart:
//! - **the entity moved on**: an update or delete committed after the read started, and the replicas
//!   already hold the newer content. The read starts again on the newer version (or answers 404),
//!   so a read racing writes answers the version it started with or a newer one, never drift;
//! - **a replica is unreachable**: that is no evidence of drift. Another replica serves, or the read
//!   answers `503 unavailable` with `Retry-After` when none that could hold it answered;
//! - **drift**: every replica answered and none holds the committed content, not even a staged copy
//!   on any member (see `staging`): `502 drift_detected`, with what each replica held.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use verisim_client::wire::{self as w, ErrorCode};
use verisim_stores::{ContentHash, EntityId, ExportedItem, ModalityKind};

use super::error::ApiError;
use super::registration::no_entity;
use super::{ProxyState, convert, read_body, staging};
use crate::consensus::endpoint::node_name;
use crate::registry::{ClientId, EntityMeta, NodeName};
use crate::store_actors::StoreDirectory;

use crate::store_actors::STORE_TIMEOUT;

/// How long a read looks again for a modality no replica holds at the committed hash before it
/// decides: a write's distribution in flight usually completes within a few fsyncs.
const DISTRIBUTION_GRACE: Duration = Duration::from_secs(2);

/// How many times a read starts again on a newer version before it gives up with `503`: an entity
/// rewritten faster than it can be read.
const MAX_RESTARTS: u32 = 16;

/// What one replica held for one modality, when it was not the committed content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Held {
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
pub(crate) type Seen = Vec<(String, Held)>;

/// The item of `kind` from the first of `nodes` whose copy matches `expected`, in the order given.
/// `Err` lists what each node held instead.
pub(crate) async fn fetch_verified(
    stores: &StoreDirectory,
    nodes: &[&str],
    id: &EntityId,
    kind: ModalityKind,
    expected: ContentHash,
) -> Result<(String, ExportedItem), Seen> {
    let mut seen = Vec::new();
    for &node in nodes {
        match stores.export(node, kind, id, STORE_TIMEOUT).await {
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

/// The modalities found (node, item), and those found at no replica with what each held.
type Views = BTreeMap<ModalityKind, (String, ExportedItem)>;
type Unfound = Vec<(ModalityKind, ContentHash, Seen)>;

enum Attempt {
    /// Every modality of this version, verified; or (only with `allow_drift`) some left unfound.
    Read(Views, Unfound),
    /// The entity changed (or went) since the version was fixed: read again.
    Moved,
}

/// Whether the registry (as this node has applied it) no longer holds exactly `meta`'s content
/// where `meta` placed it (the rebalancer moved it: old replicas drop their copies).
fn moved(st: &ProxyState, id: &EntityId, meta: &EntityMeta) -> bool {
    st.replica.read().state.entity(id).is_none_or(|now| {
        now.version != meta.version || now.items != meta.items || now.placement != meta.placement
    })
}

/// One attempt at reading version `meta` of `id`.
async fn attempt(
    st: &ProxyState,
    id: &EntityId,
    meta: &EntityMeta,
    allow_drift: bool,
) -> Result<Attempt, ApiError> {
    let local = node_name(st.id);
    let order = read_order(&local, &meta.placement);
    let mut views = Views::new();
    let mut missing: Unfound = Vec::new();
    for kind in crate::store_actors::MODALITIES {
        let expected = meta
            .items
            .get(&kind)
            .ok_or_else(|| ApiError::internal(format!("no {kind:?} hash recorded")))?
            .hash;
        missing.push((kind, expected, Vec::new()));
    }
    // A write committed a moment ago may still be on its way to the replicas (its 201 waits for
    // that): look again for a short while before deciding (not when the caller asked for whatever
    // is there).
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
            match fetch_verified(&st.stores, &order, id, kind, expected).await {
                Ok(found) => {
                    views.insert(kind, found);
                }
                // No replica holds the committed content (yet): the node that took the write
                // keeps a staged copy until its replicas do; serve it and repair from it.
                Err(seen) => match staging::find_staged(st, id, kind, expected).await {
                    Some((node, item)) => {
                        let repair = (st.clone(), item.clone());
                        tokio::spawn(async move {
                            staging::repair_replicas(&repair.0, &repair.1).await;
                        });
                        views.insert(kind, (node, item));
                    }
                    None => still.push((kind, expected, seen)),
                },
            }
        }
        missing = still;
        if missing.is_empty() {
            return Ok(Attempt::Read(views, missing));
        }
        // The replicas may hold a newer version already: this node applies it soon after.
        if moved(st, id, meta) {
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
    st.read_barrier().await?;
    if moved(st, id, meta) {
        return Ok(Attempt::Moved);
    }
    let describe = |missing: &Unfound| {
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
            .collect::<Vec<_>>()
    };
    // A replica that did not answer may hold it: that is not drift.
    let unreachable = missing
        .iter()
        .any(|(_, _, seen)| seen.iter().any(|(_, h)| matches!(h, Held::Unreachable(_))));
    if unreachable {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            format!("no reachable replica holds the committed content of {id}; retry later"),
        )
        .with_details(serde_json::json!({ "modalities": describe(&missing) })));
    }
    Err(ApiError::new(
        ErrorCode::DriftDetected,
        format!("{} modalities of {id} match no replica", missing.len()),
    )
    .with_details(serde_json::json!({ "modalities": describe(&missing) })))
}

fn decode<T: serde::Serialize + serde::de::DeserializeOwned>(
    item: &ExportedItem,
) -> Result<T, ApiError> {
    item.open(item.modality)
        .map_err(|e| ApiError::internal(format!("a verified item does not decode: {e}")))
}

/// The entity `caller` may read, as this node has applied it; 404 otherwise.
fn readable(st: &ProxyState, id: &EntityId, caller: &ClientId) -> Result<EntityMeta, ApiError> {
    st.replica
        .read()
        .state
        .entity(id)
        .filter(|e| e.can_read(caller))
        .cloned()
        .ok_or_else(|| no_entity(id))
}

/// `GET /v1/entities/{id}`: all four modalities of one version, each verified against the hash the
/// registry committed. Linearizable: the version is fixed at a read index from the leader, and a
/// newer one is answered only if it committed meanwhile.
pub async fn get(
    State(st): State<ProxyState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = read_body(req, st.max_body).await?;
    let caller = st.verify(&parts, &body).await?.origin.client;
    let allow_drift = parts
        .uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "allow_drift=true"));
    let wire_id = w::EntityId::new(id).map_err(|e| ApiError::invalid(e.to_string()))?;
    let id = convert::entity_id(&wire_id)?;
    tracing::Span::current().record("entity", id.as_str());
    st.read_barrier().await?;
    let mut restarts = 0;
    let (meta, views, unfound) = loop {
        let meta = readable(&st, &id, &caller)?;
        match attempt(&st, &id, &meta, allow_drift).await? {
            Attempt::Read(views, unfound) => break (meta, views, unfound),
            Attempt::Moved if restarts < MAX_RESTARTS => restarts += 1,
            Attempt::Moved => {
                return Err(ApiError::new(
                    ErrorCode::Unavailable,
                    format!("{id} changed {restarts} times while being read; retry later"),
                ));
            }
        }
    };
    if restarts > 0 {
        tracing::debug!(%id, restarts, version = meta.version, "read moved to a newer version");
    }
    render(wire_id, &caller, &meta, views, &unfound)
}

fn render(
    wire_id: w::EntityId,
    caller: &ClientId,
    meta: &EntityMeta,
    views: Views,
    unfound: &Unfound,
) -> Result<Response, ApiError> {
    let hash = |k: ModalityKind| w::ContentHash(meta.items.get(&k).map_or([0; 32], |m| m.hash.0));
    let view = |k: ModalityKind| views.get(&k).cloned();
    debug_assert!(unfound.iter().all(|(k, _, _)| !views.contains_key(k)));
    let (gn, gi) = view(ModalityKind::Graph).unzip();
    let (vn, vi) = view(ModalityKind::Vector).unzip();
    let (tn, ti) = view(ModalityKind::Tensor).unzip();
    let (sn, si) = view(ModalityKind::Semantic).unzip();
    let (gv, vv, tv, sv) = (gi.is_some(), vi.is_some(), ti.is_some(), si.is_some());
    let graph = gi
        .map(|i| decode(&i).and_then(|g| convert::graph_out(&g)))
        .transpose()?;
    let vector = vi
        .map(|i| decode(&i).and_then(|v| convert::vector_out(&v)))
        .transpose()?;
    let tensor = ti
        .map(|i| {
            decode::<verisim_stores::tensor::TensorItem>(&i).and_then(|t| {
                t.to_tensor()
                    .map(|t| convert::tensor_out(&t))
                    .map_err(|e| ApiError::internal(e.to_string()))
            })
        })
        .transpose()?;
    let semantic = si
        .map(|i| decode(&i).map(|a| convert::semantic_out(&a)))
        .transpose()?;
    Ok(Json(w::EntityView {
        id: wire_id,
        version: meta.version,
        index: meta.index,
        placement: meta
            .placement
            .iter()
            .map(|n| n.as_str().to_owned())
            .collect(),
        graph: w::ModalityView {
            hash: hash(ModalityKind::Graph),
            verified: gv,
            replica: gn.unwrap_or_default(),
            data: graph,
        },
        vector: w::ModalityView {
            hash: hash(ModalityKind::Vector),
            verified: vv,
            replica: vn.unwrap_or_default(),
            data: vector,
        },
        tensor: w::ModalityView {
            hash: hash(ModalityKind::Tensor),
            verified: tv,
            replica: tn.unwrap_or_default(),
            data: tensor,
        },
        semantic: w::ModalityView {
            hash: hash(ModalityKind::Semantic),
            verified: sv,
            replica: sn.unwrap_or_default(),
            data: semantic,
        },
        owner: Some(convert::client_out(&meta.owner)?),
        grants: if &meta.owner == caller {
            Some(convert::grants_out(&meta.grants)?)
        } else {
            None
        },
    })
    .into_response())
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
