//! Registering, updating, deleting and reading entities: the seed's registration sequence.
//!
//! A write is prepared on this node's store actors (validated and hashed, nothing written), committed
//! to the registry with its hashes and placement, then imported into the store actors of the
//! entity's replica nodes; the answer is sent once a majority of them hold the payload durably. A
//! retry (same request id and content) is answered with the committed outcome and re-distributes the
//! payload if that version is still current, so a write whose distribution was cut short completes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use verisim_client::wire::{
    self as w, EntityDeleted, EntityWritten, ErrorCode, ModalityHashes, RegisterRequest,
    UpdateRequest,
};
use verisim_stores::{ContentHash, EntityId, ExportedItem, ItemInput, ModalityKind};

use super::auth::Verified;
use super::convert;
use super::error::{ProxyError, parse_json};
use super::placement::{DEFAULT_REPLICAS, place, write_quorum};
use super::{ProxyState, read_body, staging};
use crate::consensus::endpoint::node_name;
use crate::registry::{ClientId, Command, ItemMeta, NodeName, Outcome, Refusal};
use crate::store_actors::{StoreCallError, StoreDirectory};

/// How long one store call may take.
const STORE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a read looks again for a modality no replica holds at the committed hash before it
/// reports drift: a write's distribution in flight usually completes within a few fsyncs.
const DISTRIBUTION_GRACE: Duration = Duration::from_secs(2);

/// `POST /v1/entities`: register a new entity (refused with 409 if it exists).
pub async fn register(State(st): State<ProxyState>, req: Request) -> Result<Response, ProxyError> {
    let (parts, body) = read_body(req, st.max_body).await?;
    let verified = st.verify(&parts, &body).await?;
    let r: RegisterRequest = parse_json(&body)?;
    let (wire_id, update) = r.into_update();
    write(&st, verified, wire_id, update, Some(0), StatusCode::CREATED).await
}

/// `PUT /v1/entities/{id}` with `If-Match: <version>`: replace all four modalities.
pub async fn update(
    State(st): State<ProxyState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ProxyError> {
    let (parts, body) = read_body(req, st.max_body).await?;
    let verified = st.verify(&parts, &body).await?;
    let expected = if_match(&parts)?
        .ok_or_else(|| ProxyError::invalid("an update needs If-Match: <current version>"))?;
    let r: UpdateRequest = parse_json(&body)?;
    let wire_id = w::EntityId::new(id).map_err(|e| ProxyError::invalid(e.to_string()))?;
    write(&st, verified, wire_id, r, Some(expected), StatusCode::OK).await
}

fn if_match(parts: &Parts) -> Result<Option<u64>, ProxyError> {
    let Some(v) = parts.headers.get(w::headers::IF_MATCH) else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .map_err(|_| ProxyError::invalid("If-Match is not ASCII"))?;
    s.trim()
        .trim_matches('"')
        .parse::<u64>()
        .map(Some)
        .map_err(|_| ProxyError::invalid(format!("If-Match must be a version number, got {s:?}")))
}

fn inputs(id: &EntityId, body: &UpdateRequest) -> Result<[ItemInput; 4], ProxyError> {
    Ok([
        ItemInput::Graph {
            id: id.clone(),
            graph: convert::graph_in(&body.graph)?,
        },
        ItemInput::Vector {
            id: id.clone(),
            vectors: convert::vector_in(&body.vector),
        },
        ItemInput::Tensor {
            id: id.clone(),
            tensor: convert::tensor_in(&body.tensor)?,
        },
        ItemInput::Semantic {
            id: id.clone(),
            annotation: convert::semantic_in(&body.semantic),
        },
    ])
}

/// A store's answer as an API error: the caller's fault is `invalid_input` (with the schema
/// violations, if any), anything else means the stores are not available.
pub(super) fn store_error(e: StoreCallError) -> ProxyError {
    match e {
        StoreCallError::Refused { refusal, .. } if refusal.client_error => {
            let mut err = ProxyError::invalid(refusal.message.clone());
            if !refusal.violations.is_empty() {
                err = err.with_details(serde_json::json!({
                    "violations": refusal
                        .violations
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>(),
                }));
            }
            err
        }
        other => ProxyError::new(ErrorCode::Unavailable, other.to_string()),
    }
}

fn hashes_of(items: &BTreeMap<ModalityKind, ItemMeta>) -> Result<ModalityHashes, ProxyError> {
    let get = |k: ModalityKind| {
        items
            .get(&k)
            .map(|m| w::ContentHash(m.hash.0))
            .ok_or_else(|| ProxyError::internal(format!("no {k:?} hash recorded")))
    };
    Ok(ModalityHashes {
        graph: get(ModalityKind::Graph)?,
        vector: get(ModalityKind::Vector)?,
        tensor: get(ModalityKind::Tensor)?,
        semantic: get(ModalityKind::Semantic)?,
    })
}

/// 404 for an entity that does not exist or that the caller may not read: the same answer, so
/// that a client cannot tell the two apart (docs/api.md, Ownership and grants).
pub(super) fn no_entity(id: &EntityId) -> ProxyError {
    ProxyError::new(ErrorCode::NotFound, format!("no entity {id}"))
}

/// A refusal of a change to entity `id` as an API error: a hidden entity is answered as absent.
pub(super) fn refused(id: &EntityId, r: Refusal) -> ProxyError {
    match r {
        Refusal::UnknownEntity | Refusal::Forbidden { visible: false } => no_entity(id),
        Refusal::Forbidden { visible: true } => ProxyError::new(
            ErrorCode::Forbidden,
            format!("only the owner of {id} or a client it granted write may change it"),
        ),
        other => other.into(),
    }
}

fn written(id: &EntityId, outcome: Outcome) -> Result<(u64, u64), ProxyError> {
    match outcome {
        Outcome::EntityPut { version, index } => Ok((version, index)),
        // No version in the message: the caller may not be allowed to read the entity.
        Outcome::Refused(Refusal::VersionConflict { expected: 0, .. }) => Err(ProxyError::new(
            ErrorCode::VersionConflict,
            "the entity already exists",
        )),
        // An update of an entity that does not exist: answered as for a hidden one.
        Outcome::Refused(Refusal::VersionConflict { actual: 0, .. }) => Err(no_entity(id)),
        Outcome::Refused(r) => Err(refused(id, r)),
        other => Err(ProxyError::internal(format!(
            "unexpected outcome {other:?}"
        ))),
    }
}

async fn write(
    st: &ProxyState,
    verified: Verified,
    wire_id: w::EntityId,
    body: UpdateRequest,
    expected_version: Option<u64>,
    status: StatusCode,
) -> Result<Response, ProxyError> {
    let started = Instant::now();
    body.check().map_err(|e| ProxyError::invalid(e.0))?;
    let id = convert::entity_id(&wire_id)?;
    // Before any store work; a retry was authorised when it first committed.
    if verified.retry_of.is_none() && expected_version != Some(0) {
        check_write(st, &id, &verified.origin.client).await?;
    }
    let stores = st.stores.clone();
    let [g, v, t, s] = inputs(&id, &body)?;
    // Four store calls on four different actors: concurrently.
    let (g, v, t, s) = tokio::try_join!(
        prepare(&stores, g),
        prepare(&stores, v),
        prepare(&stores, t),
        prepare(&stores, s)
    )?;
    let items = vec![g, v, t, s];
    // Durable on this node before any hash of it can commit: see `staging`.
    staging::stage_local(&stores, &items).await?;
    let metas: BTreeMap<ModalityKind, ItemMeta> = items
        .iter()
        .map(|i| {
            (
                i.modality,
                ItemMeta {
                    hash: i.hash,
                    size: i.payload.0.len() as u64,
                },
            )
        })
        .collect();
    let prepared = started.elapsed();

    let outcome = match verified.retry_of {
        Some(prev) => prev.outcome,
        None => {
            let placement = {
                let replica = st.replica.read();
                match replica.state.entity(&id) {
                    Some(e) => e.placement.clone(),
                    None => {
                        let voters: Vec<NodeName> = replica
                            .membership
                            .voters
                            .iter()
                            .filter_map(|&v| NodeName::new(node_name(v)).ok())
                            .collect();
                        place(&id, &voters, DEFAULT_REPLICAS)
                    }
                }
            };
            // An error here leaves the staged copy: the command may still commit.
            st.commit(Command::PutEntity {
                origin: verified.origin,
                id: id.clone(),
                items: metas.clone(),
                placement,
                expected_version,
            })
            .await?
            .outcome
        }
    };
    let (version, index) = written(&id, outcome).inspect_err(|_| {
        // Refused: nothing of it committed.
        staging::unstage_local_later(&stores, &items);
    })?;
    let committed = started.elapsed();
    // Distribute only what is still the current version, and only the payload it committed: a
    // newer write has distributed its own.
    let current = st.replica.read().state.entity(&id).cloned();
    let hashes = match current {
        Some(_) if staging::skip_this_distribution(st) => {
            return Err(ProxyError::new(
                ErrorCode::Unavailable,
                "fault injection: the write committed and was not distributed",
            ));
        }
        Some(meta) if meta.version == version && meta.items == metas => {
            // On failure the staged copy stays: reads and the sweep repair from it.
            distribute(&stores, &meta.placement, items.clone()).await?;
            staging::unstage_local_later(&stores, &items);
            hashes_of(&meta.items)?
        }
        _ => {
            staging::unstage_local_later(&stores, &items);
            hashes_of(&metas)?
        }
    };
    tracing::debug!(
        %id,
        prepare_us = prepared.as_micros() as u64,
        commit_us = (committed - prepared).as_micros() as u64,
        distribute_us = (started.elapsed() - committed).as_micros() as u64,
        "entity written"
    );
    Ok((
        status,
        Json(EntityWritten {
            id: wire_id,
            version,
            index,
            hashes,
        }),
    )
        .into_response())
}

/// The proxy's early ownership check of an update or delete, on this node's replica: what apply
/// would refuse is refused before any store work. Apply has the final word (a grant or revocation
/// may commit in between). A refusal is looked at again after a read barrier, since this replica
/// may not have applied a grant the caller was just given.
async fn check_write(st: &ProxyState, id: &EntityId, client: &ClientId) -> Result<(), ProxyError> {
    let refusal = |st: &ProxyState| {
        st.replica
            .read()
            .state
            .entity(id)
            .filter(|e| !e.can_write(client))
            .map(|e| Refusal::Forbidden {
                visible: e.can_read(client),
            })
    };
    if refusal(st).is_none() {
        return Ok(());
    }
    st.read_barrier().await?;
    match refusal(st) {
        None => Ok(()),
        Some(r) => Err(refused(id, r)),
    }
}

async fn prepare(stores: &StoreDirectory, input: ItemInput) -> Result<ExportedItem, ProxyError> {
    stores
        .prepare_local(&input, STORE_TIMEOUT)
        .await
        .map_err(store_error)
}

/// Imports the items into the stores of every replica node; returns once a majority of the
/// replicas hold all of them durably. The remaining replicas finish in the background (or are
/// repaired by the drift checker).
async fn distribute(
    stores: &StoreDirectory,
    placement: &[NodeName],
    items: Vec<ExportedItem>,
) -> Result<(), ProxyError> {
    let needed = write_quorum(placement.len());
    let (tx, mut rx) = tokio::sync::mpsc::channel(placement.len().max(1));
    for node in placement {
        let node = node.as_str().to_owned();
        let stores = stores.clone();
        let items = items.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            // The items go to four store actors at once, so the node's group fsync covers them
            // together.
            let imports = items
                .iter()
                .map(|item| stores.import(&node, item, STORE_TIMEOUT));
            let result = futures::future::join_all(imports)
                .await
                .into_iter()
                .find_map(Result::err)
                .map_or(Ok(()), Err);
            let _ = tx.send((node, result)).await;
        });
    }
    drop(tx);
    let mut done = 0;
    let mut failures = Vec::new();
    while let Some((node, result)) = rx.recv().await {
        match result {
            Ok(()) => {
                done += 1;
                if done >= needed {
                    return Ok(());
                }
            }
            Err(e) => {
                tracing::warn!(%node, error = %e, "distribution to a replica failed");
                failures.push(e);
            }
        }
    }
    // A refusal that is the caller's fault would have been caught by prepare; any failure here
    // is the cluster's. The metadata is committed: a retry with the same request id completes it.
    Err(ProxyError::new(
        ErrorCode::Unavailable,
        format!(
            "the payload reached {done} of {} replicas ({needed} needed); retry with the same \
             request id: {}",
            placement.len(),
            failures
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ),
    ))
}

/// `DELETE /v1/entities/{id}` (optionally `If-Match`): the registry forgets the entity, then its
/// replicas drop their items (what they miss, the drift checker removes as orphans).
pub async fn delete(
    State(st): State<ProxyState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ProxyError> {
    let (parts, body) = read_body(req, st.max_body).await?;
    let verified = st.verify(&parts, &body).await?;
    let expected_version = if_match(&parts)?;
    let wire_id = w::EntityId::new(id).map_err(|e| ProxyError::invalid(e.to_string()))?;
    let id = convert::entity_id(&wire_id)?;
    if verified.retry_of.is_none() {
        check_write(&st, &id, &verified.origin.client).await?;
    }
    let placement = st
        .replica
        .read()
        .state
        .entity(&id)
        .map(|e| e.placement.clone());
    let outcome = match verified.retry_of {
        Some(prev) => prev.outcome,
        None => {
            st.commit(Command::DeleteEntity {
                origin: verified.origin,
                id: id.clone(),
                expected_version,
            })
            .await?
            .outcome
        }
    };
    let (version, index) = match outcome {
        Outcome::EntityDeleted { version, index } => (version, index),
        Outcome::Refused(r) => return Err(refused(&id, r)),
        other => {
            return Err(ProxyError::internal(format!(
                "unexpected outcome {other:?}"
            )));
        }
    };
    if st.replica.read().state.entity(&id).is_none() {
        for node in placement.unwrap_or_default() {
            for kind in crate::store_actors::MODALITIES {
                let removed = match st.stores.on(node.as_str(), kind) {
                    Ok(store) => store.remove(&id, STORE_TIMEOUT).await.map(|_| ()),
                    Err(e) => Err(e),
                };
                if let Err(e) = removed {
                    tracing::warn!(%node, ?kind, error = %e, "removing a deleted entity's item failed; the drift checker will");
                }
            }
        }
    }
    Ok(Json(EntityDeleted {
        id: wire_id,
        version,
        index,
    })
    .into_response())
}

/// What each replica held instead of a matching copy: (node, what was found).
type Seen = Vec<(String, String)>;

/// The item of `kind` from the first replica whose copy matches the registry's hash, local first.
/// `Err` lists what each replica had instead.
async fn fetch_verified(
    stores: &StoreDirectory,
    local: &str,
    placement: &[NodeName],
    id: &EntityId,
    kind: ModalityKind,
    expected: ContentHash,
) -> Result<(String, ExportedItem), Seen> {
    let mut order: Vec<&str> = placement.iter().map(NodeName::as_str).collect();
    order.sort_by_key(|n| *n != local);
    let mut seen = Vec::new();
    for node in order {
        match stores.export(node, kind, id, STORE_TIMEOUT).await {
            Ok(Some(item)) if item.hash == expected => return Ok((node.to_owned(), item)),
            Ok(Some(item)) => seen.push((node.to_owned(), format!("hash {}", item.hash.to_hex()))),
            Ok(None) => seen.push((node.to_owned(), "missing".into())),
            Err(e) => seen.push((node.to_owned(), format!("unreachable: {e}"))),
        }
    }
    Err(seen)
}

fn decode<T: serde::Serialize + serde::de::DeserializeOwned>(
    item: &ExportedItem,
) -> Result<T, ProxyError> {
    item.open(item.modality)
        .map_err(|e| ProxyError::internal(format!("a verified item does not decode: {e}")))
}

/// `GET /v1/entities/{id}`: all four modalities, each from a replica whose copy matches the hash
/// the registry committed. Linearizable: the registry is read at a read index from the leader.
pub async fn get(
    State(st): State<ProxyState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ProxyError> {
    let (parts, body) = read_body(req, st.max_body).await?;
    let caller = st.verify(&parts, &body).await?.origin.client;
    let allow_drift = parts
        .uri
        .query()
        .is_some_and(|q| q.split('&').any(|kv| kv == "allow_drift=true"));
    let wire_id = w::EntityId::new(id).map_err(|e| ProxyError::invalid(e.to_string()))?;
    let id = convert::entity_id(&wire_id)?;
    st.read_barrier().await?;
    let meta = st
        .replica
        .read()
        .state
        .entity(&id)
        .filter(|e| e.can_read(&caller))
        .cloned()
        .ok_or_else(|| no_entity(&id))?;
    let local = node_name(st.id);
    let mut views: BTreeMap<ModalityKind, (String, Option<ExportedItem>, bool)> = BTreeMap::new();
    // (modality, committed hash, what each replica had instead)
    let mut missing: Vec<(ModalityKind, ContentHash, Seen)> = Vec::new();
    for kind in crate::store_actors::MODALITIES {
        let expected = meta
            .items
            .get(&kind)
            .ok_or_else(|| ProxyError::internal(format!("no {kind:?} hash recorded")))?
            .hash;
        missing.push((kind, expected, Vec::new()));
    }
    // A write committed a moment ago may still be on its way to the replicas (its 201 waits for
    // that): look again for a short while before calling a difference drift (not when the
    // caller asked for whatever is there).
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
            match fetch_verified(&st.stores, &local, &meta.placement, &id, kind, expected).await {
                Ok((node, item)) => {
                    views.insert(kind, (node, Some(item), true));
                }
                // No replica holds the committed content (yet): the node that took the write
                // keeps a staged copy until its replicas do; serve it and repair from it.
                Err(seen) => match staging::find_staged(&st, &id, kind, expected).await {
                    Some((node, item)) => {
                        let repair = (st.clone(), item.clone());
                        tokio::spawn(async move {
                            staging::repair_replicas(&repair.0, &repair.1).await;
                        });
                        views.insert(kind, (node, Some(item), true));
                    }
                    None => still.push((kind, expected, seen)),
                },
            }
        }
        missing = still;
        if missing.is_empty() || Instant::now() + pause > grace {
            break;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
    let mut drifted = Vec::new();
    for (kind, expected, seen) in missing {
        drifted.push(serde_json::json!({
            "modality": kind,
            "expected": expected.to_hex(),
            "replicas": seen.iter().map(|(n, s)| serde_json::json!({"node": n, "found": s})).collect::<Vec<_>>(),
        }));
        views.insert(kind, (String::new(), None, false));
    }
    if !drifted.is_empty() && !allow_drift {
        return Err(ProxyError::new(
            ErrorCode::DriftDetected,
            format!("{} modalities of {id} match no replica", drifted.len()),
        )
        .with_details(serde_json::json!({ "modalities": drifted })));
    }
    let hash = |k: ModalityKind| w::ContentHash(meta.items.get(&k).map_or([0; 32], |m| m.hash.0));
    let view = |k: ModalityKind| views.get(&k).cloned().unwrap_or_default();
    let (gn, gi, gv) = view(ModalityKind::Graph);
    let (vn, vi, vv) = view(ModalityKind::Vector);
    let (tn, ti, tv) = view(ModalityKind::Tensor);
    let (sn, si, sv) = view(ModalityKind::Semantic);
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
                    .map_err(|e| ProxyError::internal(e.to_string()))
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
            replica: gn,
            data: graph,
        },
        vector: w::ModalityView {
            hash: hash(ModalityKind::Vector),
            verified: vv,
            replica: vn,
            data: vector,
        },
        tensor: w::ModalityView {
            hash: hash(ModalityKind::Tensor),
            verified: tv,
            replica: tn,
            data: tensor,
        },
        semantic: w::ModalityView {
            hash: hash(ModalityKind::Semantic),
            verified: sv,
            replica: sn,
            data: semantic,
        },
        owner: Some(convert::client_out(&meta.owner)?),
        grants: if meta.owner == caller {
            Some(convert::grants_out(&meta.grants)?)
        } else {
            None
        },
    })
    .into_response())
}
