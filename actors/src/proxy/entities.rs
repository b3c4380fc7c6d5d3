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
use verisim_stores::{EntityId, ExportedItem, ItemInput, ModalityKind};

use super::auth::Verified;
use super::convert;
use super::error::{ProxyError, parse_json, store_error};
use super::placement::{place, write_quorum};
use super::{ProxyState, read_body, staging};
use crate::consensus::endpoint::node_name;
use crate::registry::{ClientId, Command, ItemMeta, NodeName, Outcome, Refusal};
use crate::store_actors::{Fence, StoreCallError, StoreDirectory};

/// How long one store call may take.
const STORE_TIMEOUT: Duration = Duration::from_secs(10);

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
    // On the request span (`node::request_log`): every log line of it names the entity.
    tracing::Span::current().record("entity", id.as_str());
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
                        place(&id, &voters, st.replicas)
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
            distribute(st, &meta.placement, items.clone(), Fence { index, version }).await?;
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

/// How long a replica's failed import is retried in the background before it is left to the
/// drift checker (and the staged copy on this node).
const DISTRIBUTION_RETRY_FOR: Duration = Duration::from_secs(30);

/// Imports the items into the stores of every replica node; returns once a majority of the
/// replicas hold all of them durably. The remaining replicas finish in the background; one whose
/// import failed (its store actor restarting, a connection down) is tried again with backoff for
/// [`DISTRIBUTION_RETRY_FOR`] while the registry still commits exactly these items, then left to
/// the drift checker.
async fn distribute(
    st: &ProxyState,
    placement: &[NodeName],
    items: Vec<ExportedItem>,
    fence: Fence,
) -> Result<(), ProxyError> {
    let needed = write_quorum(placement.len());
    let (tx, mut rx) = tokio::sync::mpsc::channel(placement.len().max(1));
    for node in placement {
        let node = node.as_str().to_owned();
        let st = st.clone();
        let items = items.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut result = import_all(&st.stores, &node, &items, fence).await;
            let first = result.as_ref().map(|_| ()).map_err(ToString::to_string);
            let _ = tx.send((node.clone(), first)).await;
            let deadline = Instant::now() + DISTRIBUTION_RETRY_FOR;
            let mut pause = Duration::from_millis(100);
            while result.is_err() && Instant::now() + pause < deadline && still_current(&st, &items)
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
                result = import_all(&st.stores, &node, &items, fence).await;
                if result.is_ok() {
                    tracing::info!(%node, id = %items[0].id, "distribution to a replica completed on a retry");
                }
            }
            if let Err(e) = result {
                tracing::warn!(%node, error = %e, "distribution to a replica failed; left to the drift checker");
            }
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
                tracing::debug!(%node, error = %e, "distribution to a replica failed; retrying in the background");
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
            failures.join("; ")
        ),
    ))
}

/// Imports `items` into `node`'s stores: four store actors at once, so the node's group fsync
/// covers them together. A store that holds a newer version already (`Imported::Superseded`) has
/// what it should: that counts as done.
async fn import_all(
    stores: &StoreDirectory,
    node: &str,
    items: &[ExportedItem],
    fence: Fence,
) -> Result<(), StoreCallError> {
    let imports = items.iter().map(|item| async move {
        stores
            .import(node, item, fence, STORE_TIMEOUT)
            .await
            .map(|_| ())
    });
    futures::future::join_all(imports)
        .await
        .into_iter()
        .find_map(Result::err)
        .map_or(Ok(()), Err)
}

/// Whether the registry (as this node applied it) still commits exactly `items` for their entity:
/// a newer write distributes its own, and a deleted entity's items must not come back.
fn still_current(st: &ProxyState, items: &[ExportedItem]) -> bool {
    let Some(first) = items.first() else {
        return false;
    };
    let replica = st.replica.read();
    replica.state.entity(&first.id).is_some_and(|e| {
        items
            .iter()
            .all(|i| e.items.get(&i.modality).map(|m| m.hash) == Some(i.hash))
    })
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
    // On the request span (`node::request_log`): every log line of it names the entity.
    tracing::Span::current().record("entity", id.as_str());
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
                    // Fenced by the delete's index: a re-registration that committed after it
                    // and already reached this replica is not removed.
                    Ok(store) => store.remove(&id, index, STORE_TIMEOUT).await.map(|_| ()),
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
