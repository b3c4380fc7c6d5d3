//! The per-modality query routes: vector k-NN over every node, graph and tensor queries on a replica
//! of the entity, semantic validation and by-type lookups. Every query is a signed `POST`.
//!
//! Nothing here answers a silently partial result: a k-NN or by-type lookup that some store did not
//! answer is refused with 503 naming the stores.
//!
//! Reads follow the entity grants (docs/api.md, Ownership and grants): a query about an entity the
//! caller may not read is answered 404 as if it did not exist, and results name only entities the
//! caller may read. Visibility is decided after a read barrier, so a revoked grant stops at once.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Request, State};
use serde::de::DeserializeOwned;
use verisim_client::wire::{self as w, ErrorCode};
use verisim_stores::graph::Direction;
use verisim_stores::semantic::Violation;
use verisim_stores::tensor::{ReduceOp, TensorItem};
use verisim_stores::vector::Hit;
use verisim_stores::{EntityId, ModalityKind};

use super::convert;
use super::error::{ApiError, parse_json};
use super::{ProxyState, read_body};
use crate::consensus::endpoint::node_name;
use crate::registry::{ClientId, NodeName, RegistryState};
use crate::store_actors::{Answer, KnnQuery, Query, StoreCallError, StoreRef, StoreRefusalCode};

use crate::store_actors::STORE_TIMEOUT;

/// Reads, authenticates and parses a query body; answers the caller with it.
async fn signed<T: DeserializeOwned>(
    st: &ProxyState,
    req: Request,
) -> Result<(ClientId, T), ApiError> {
    let (parts, body) = read_body(req, st.max_body).await?;
    let caller = st.verify(&parts, &body).await?.origin.client;
    Ok((caller, parse_json(&body)?))
}

/// Whether `caller` may see `id` in a result: a registered entity it may read. An id no entity
/// has (a dangling edge target, an orphan item) is treated as a hidden one, so that a result is
/// no oracle for which ids exist.
fn visible(state: &RegistryState, caller: &ClientId, id: &EntityId) -> bool {
    state.entity(id).is_some_and(|e| e.can_read(caller))
}

/// `ids` without those the caller may not see, order kept.
fn only_visible(st: &ProxyState, caller: &ClientId, ids: Vec<EntityId>) -> Vec<EntityId> {
    let replica = st.replica.read();
    ids.into_iter()
        .filter(|id| visible(&replica.state, caller, id))
        .collect()
}

/// A store's refusal as an API error: a missing entity or collection is `not_found`; the rest is
/// mapped as for writes ([`super::error::store_error`]).
fn store_error(e: StoreCallError) -> ApiError {
    match e {
        StoreCallError::Refused { refusal, .. } if refusal.code == StoreRefusalCode::NotFound => {
            ApiError::new(ErrorCode::NotFound, refusal.message)
        }
        other => super::error::store_error(other),
    }
}

fn is_client_refusal(e: &StoreCallError) -> bool {
    matches!(e, StoreCallError::Refused { refusal, .. } if refusal.client_error)
}

/// 503 naming every store that did not answer.
fn unavailable(what: &str, failed: &[StoreCallError]) -> ApiError {
    ApiError::new(
        ErrorCode::Unavailable,
        format!(
            "{what}: {} stores did not answer; refusing a partial result",
            failed.len()
        ),
    )
    .with_details(serde_json::json!({
        "failed": failed.iter().map(ToString::to_string).collect::<Vec<_>>(),
    }))
}

fn unexpected(answer: &Answer) -> ApiError {
    let got: String = format!("{answer:?}").chars().take(60).collect();
    ApiError::internal(format!("a store answered {got}"))
}

/// The replicas of an entity, this node first. Linearizable: read after a read barrier, so an
/// entity registered through any node a moment ago is found. 404 if the registry has no such
/// entity or the caller may not read it.
async fn replicas(
    st: &ProxyState,
    caller: &ClientId,
    id: &EntityId,
) -> Result<Vec<NodeName>, ApiError> {
    st.read_barrier().await?;
    let mut placement = st
        .replica
        .read()
        .state
        .entity(id)
        .filter(|e| e.can_read(caller))
        .map(|e| e.placement.clone())
        .ok_or_else(|| super::registration::no_entity(id))?;
    let local = node_name(st.id);
    placement.sort_by_key(|n| n.as_str() != local);
    Ok(placement)
}

/// Runs `q` on the first replica of `id` that answers, local first. A refusal that is the
/// caller's fault is final; any other failure moves on to the next replica.
async fn on_replica(
    st: &ProxyState,
    caller: &ClientId,
    id: &EntityId,
    kind: ModalityKind,
    q: &Query,
) -> Result<Answer, ApiError> {
    let mut failed = Vec::new();
    for node in replicas(st, caller, id).await? {
        let answer = match st.stores.on(node.as_str(), kind) {
            Ok(store) => store.query(q, STORE_TIMEOUT).await,
            Err(e) => Err(e),
        };
        match answer {
            Ok(a) => return Ok(a),
            Err(e) if is_client_refusal(&e) => return Err(store_error(e)),
            Err(e) => {
                tracing::debug!(node = node.as_str(), error = %e, "replica did not answer a query");
                failed.push(e);
            }
        }
    }
    Err(unavailable(
        &format!("no replica of {id} answered"),
        &failed,
    ))
}

fn ids_out(ids: Vec<EntityId>) -> Result<Vec<w::EntityId>, ApiError> {
    ids.into_iter()
        .map(|i| w::EntityId::new(i.as_str()).map_err(|e| ApiError::internal(e.to_string())))
        .collect()
}

fn direction(d: w::Direction) -> Direction {
    match d {
        w::Direction::Out => Direction::Out,
        w::Direction::In => Direction::In,
        w::Direction::Both => Direction::Both,
    }
}

/// `POST /v1/search/vector`: scatter-gather k-NN over every node's vector store, merged into the
/// global top-k with each entity once (its replicas hold the same vector). The top-k is over the
/// entities the caller may read: when the unfiltered answer names any other, the search runs again
/// restricted to the caller's readable entities, so hidden entities neither appear nor crowd the
/// caller's own out of the k.
pub async fn search_vector(
    State(st): State<ProxyState>,
    req: Request,
) -> Result<Json<w::VectorSearchResponse>, ApiError> {
    let (caller, r): (_, w::VectorSearchRequest) = signed(&st, req).await?;
    if r.k == 0 {
        return Err(ApiError::invalid("k must be at least 1"));
    }
    let mut q = KnnQuery {
        collection: r.collection.clone(),
        vector: r.vector,
        k: r.k,
        exact: r.exact,
        ef: r.ef,
        filter: None,
    };
    let mut hits = knn(&st, &q).await?;
    st.read_barrier().await?;
    let all_visible = {
        let replica = st.replica.read();
        hits.iter().all(|h| visible(&replica.state, &caller, &h.id))
    };
    if !all_visible {
        // One pass over the registry: the cost falls on searches that met someone else's data.
        let readable: BTreeSet<EntityId> = st
            .replica
            .read()
            .state
            .entities()
            .filter(|(_, e)| e.can_read(&caller))
            .map(|(id, _)| id.clone())
            .collect();
        hits = if readable.is_empty() {
            Vec::new()
        } else {
            q.filter = Some(readable);
            knn(&st, &q).await?
        };
        // Grants may have changed while the filtered search ran.
        let replica = st.replica.read();
        hits.retain(|h| visible(&replica.state, &caller, &h.id));
    }
    let hits = hits
        .into_iter()
        .map(|h| {
            Ok(w::VectorHit {
                id: w::EntityId::new(h.id.as_str())
                    .map_err(|e| ApiError::internal(e.to_string()))?,
                distance: h.distance,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Json(w::VectorSearchResponse { hits }))
}

/// One scatter-gather k-NN over every vector store, refused whole if any store did not answer.
async fn knn(st: &ProxyState, q: &KnnQuery) -> Result<Vec<Hit>, ApiError> {
    let stores = st.stores.actors_of(ModalityKind::Vector).len();
    if stores == 0 {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "no vector store is reachable",
        ));
    }
    let (hits, failed) = st.stores.knn_all(q, STORE_TIMEOUT).await;
    // A store without the collection holds none of its vectors: an empty answer, not a failure.
    let (missing, failed): (Vec<_>, Vec<_>) = failed.into_iter().partition(|e| {
        matches!(e, StoreCallError::Refused { refusal, .. } if refusal.code == StoreRefusalCode::NotFound)
    });
    if let Some(first) = failed.iter().position(is_client_refusal) {
        // A bad query (wrong dimension, k over the limit) is refused alike by every store.
        let mut failed = failed;
        return Err(store_error(failed.swap_remove(first)));
    }
    if !failed.is_empty() {
        return Err(unavailable("vector search", &failed));
    }
    if missing.len() == stores {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no collection {}", q.collection),
        ));
    }
    Ok(hits)
}

/// `POST /v1/graph/neighbours`, on a replica of the entity.
pub async fn graph_neighbours(
    State(st): State<ProxyState>,
    req: Request,
) -> Result<Json<w::GraphNeighboursResponse>, ApiError> {
    let (caller, r): (_, w::GraphNeighboursRequest) = signed(&st, req).await?;
    let id = r.id.clone();
    // Outgoing edges are the readable entity's own data (its GET shows them): every target is
    // answered, so the answer is no oracle for whether a target exists. An incoming edge is its
    // source's data: shown only if the caller may read the source.
    let mut ids = BTreeSet::new();
    if matches!(r.direction, w::Direction::Out | w::Direction::Both) {
        ids.extend(neighbours(&st, &caller, &id, Direction::Out, &r.predicate).await?);
    }
    if matches!(r.direction, w::Direction::In | w::Direction::Both) {
        let sources = neighbours(&st, &caller, &id, Direction::In, &r.predicate).await?;
        ids.extend(only_visible(&st, &caller, sources));
    }
    Ok(Json(w::GraphNeighboursResponse {
        ids: ids_out(ids.into_iter().collect())?,
    }))
}

async fn neighbours(
    st: &ProxyState,
    caller: &ClientId,
    id: &EntityId,
    direction: Direction,
    predicate: &Option<String>,
) -> Result<Vec<EntityId>, ApiError> {
    let q = Query::GraphNeighbours {
        id: id.clone(),
        direction,
        predicate: predicate.clone(),
    };
    match on_replica(st, caller, id, ModalityKind::Graph, &q).await? {
        Answer::Ids(ids) => Ok(ids),
        other => Err(unexpected(&other)),
    }
}

/// `POST /v1/graph/traverse`, on a replica of the start entity.
pub async fn graph_traverse(
    State(st): State<ProxyState>,
    req: Request,
) -> Result<Json<w::GraphTraverseResponse>, ApiError> {
    let (caller, r): (_, w::GraphTraverseRequest) = signed(&st, req).await?;
    let start = r.start.clone();
    let own_edges = r.direction == w::Direction::Out;
    let q = Query::GraphTraverse {
        start: start.clone(),
        max_hops: r.max_hops,
        direction: direction(r.direction),
        predicate: r.predicate,
    };
    match on_replica(&st, &caller, &start, ModalityKind::Graph, &q).await? {
        Answer::Reached(reached) => {
            // Readable entities, and (outgoing) the start's own edge targets at depth 1 whatever
            // they are: anything else may have been reached through a hidden entity's edges.
            let reached: Vec<_> = {
                let replica = st.replica.read();
                reached
                    .into_iter()
                    .filter(|(id, depth)| {
                        (own_edges && *depth <= 1) || visible(&replica.state, &caller, id)
                    })
                    .collect()
            };
            let visited = reached
                .into_iter()
                .map(|(id, depth)| {
                    Ok(w::Traversed {
                        id: w::EntityId::new(id.as_str())
                            .map_err(|e| ApiError::internal(e.to_string()))?,
                        depth,
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            Ok(Json(w::GraphTraverseResponse { visited }))
        }
        other => Err(unexpected(&other)),
    }
}

/// `POST /v1/graph/path`, on a replica of `from`.
pub async fn graph_path(
    State(st): State<ProxyState>,
    req: Request,
) -> Result<Json<w::GraphPathResponse>, ApiError> {
    let (caller, r): (_, w::GraphPathRequest) = signed(&st, req).await?;
    let from = r.from.clone();
    let own_edges = r.direction == w::Direction::Out;
    let q = Query::GraphShortestPath {
        from: from.clone(),
        to: r.to.clone(),
        max_hops: r.max_hops,
        direction: direction(r.direction),
        predicate: r.predicate,
    };
    match on_replica(&st, &caller, &from, ModalityKind::Graph, &q).await? {
        Answer::Path(path) => {
            // A path through an entity the caller may not read is answered as no path. Following
            // outgoing edges, the last id is an edge target of a readable entity (its own data),
            // shown whatever it is; following incoming edges, every id's own edge is used.
            let path = path.filter(|p| {
                let replica = st.replica.read();
                let last = p.len().saturating_sub(1);
                p.iter()
                    .enumerate()
                    .all(|(i, id)| (own_edges && i == last) || visible(&replica.state, &caller, id))
            });
            Ok(Json(w::GraphPathResponse {
                path: path.map(ids_out).transpose()?,
            }))
        }
        other => Err(unexpected(&other)),
    }
}

fn tensor_answer(id: &EntityId, answer: Answer) -> Result<Json<w::TensorPayload>, ApiError> {
    match answer {
        Answer::Tensor(Some(item)) => tensor_out(&item).map(Json),
        Answer::Tensor(None) => Err(ApiError::new(
            ErrorCode::NotFound,
            format!("entity {id} has no tensor"),
        )),
        other => Err(unexpected(&other)),
    }
}

fn tensor_out(item: &TensorItem) -> Result<w::TensorPayload, ApiError> {
    item.to_tensor()
        .map(|t| convert::tensor_out(&t))
        .map_err(|e| ApiError::internal(format!("a store's tensor does not decode: {e}")))
}

/// `POST /v1/tensor/slice`, on a replica of the entity.
pub async fn tensor_slice(
    State(st): State<ProxyState>,
    req: Request,
) -> Result<Json<w::TensorPayload>, ApiError> {
    let (caller, r): (_, w::TensorSliceRequest) = signed(&st, req).await?;
    let id = r.id.clone();
    let q = Query::TensorSlice {
        id: id.clone(),
        ranges: r.ranges.iter().map(|[a, b]| (*a, *b)).collect(),
    };
    let answer = on_replica(&st, &caller, &id, ModalityKind::Tensor, &q).await?;
    tensor_answer(&id, answer)
}

/// `POST /v1/tensor/reduce`, on a replica of the entity.
pub async fn tensor_reduce(
    State(st): State<ProxyState>,
    req: Request,
) -> Result<Json<w::TensorPayload>, ApiError> {
    let (caller, r): (_, w::TensorReduceRequest) = signed(&st, req).await?;
    let id = r.id.clone();
    let op = match r.op {
        w::ReduceOp::Sum => ReduceOp::Sum,
        w::ReduceOp::Mean => ReduceOp::Mean,
        w::ReduceOp::Min => ReduceOp::Min,
        w::ReduceOp::Max => ReduceOp::Max,
    };
    let q = Query::TensorReduce {
        id: id.clone(),
        op,
        axis: r.axis,
    };
    let answer = on_replica(&st, &caller, &id, ModalityKind::Tensor, &q).await?;
    tensor_answer(&id, answer)
}

fn violation_out(v: Violation) -> w::Violation {
    let dt = |d: verisim_stores::value::Datatype| d.to_string().to_lowercase();
    match v {
        Violation::UnknownType { iri } => w::Violation::UnknownType { iri },
        Violation::MissingRequired { type_iri, property } => {
            w::Violation::MissingRequired { type_iri, property }
        }
        Violation::UndeclaredProperty { property } => w::Violation::UndeclaredProperty { property },
        Violation::WrongDatatype {
            property,
            type_iri,
            expected,
            found,
        } => w::Violation::WrongDatatype {
            property,
            type_iri,
            expected: dt(expected),
            found: dt(found),
        },
        Violation::PatternMismatch {
            property,
            type_iri,
            pattern,
        } => w::Violation::PatternMismatch {
            property,
            type_iri,
            pattern,
        },
        Violation::OutOfRange {
            property,
            type_iri,
            value,
            min,
            max,
        } => w::Violation::OutOfRange {
            property,
            type_iri,
            value,
            min,
            max,
        },
        Violation::InvalidProof { index, reason } => w::Violation::InvalidProof {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            reason,
        },
    }
}

fn local_semantic(st: &ProxyState) -> Result<StoreRef, ApiError> {
    st.stores
        .on(&node_name(st.id), ModalityKind::Semantic)
        .map_err(store_error)
}

/// `POST /v1/semantic/validate`: a dry run against the schema on this node's semantic store (every
/// node holds the same schema).
pub async fn semantic_validate(
    State(st): State<ProxyState>,
    req: Request,
) -> Result<Json<w::SemanticValidateResponse>, ApiError> {
    // A dry run of the caller's own annotation: no entity is read.
    let (_, r): (_, w::SemanticValidateRequest) = signed(&st, req).await?;
    let q = Query::SemanticValidate {
        annotation: convert::semantic_in(&r.annotation),
    };
    let answer = local_semantic(&st)?
        .query(&q, STORE_TIMEOUT)
        .await
        .map_err(store_error)?;
    match answer {
        Answer::Violations(v) => Ok(Json(w::SemanticValidateResponse {
            valid: v.is_empty(),
            violations: v.into_iter().map(violation_out).collect(),
        })),
        other => Err(unexpected(&other)),
    }
}

/// `POST /v1/semantic/by-type`: asks every node's semantic store (each holds only the entities
/// placed on it) and answers the union, sorted; 503 if any store did not answer.
pub async fn semantic_by_type(
    State(st): State<ProxyState>,
    req: Request,
) -> Result<Json<w::SemanticByTypeResponse>, ApiError> {
    let (caller, r): (_, w::SemanticByTypeRequest) = signed(&st, req).await?;
    let stores = st.stores.actors_of(ModalityKind::Semantic);
    if stores.is_empty() {
        return Err(ApiError::new(
            ErrorCode::Unavailable,
            "no semantic store is reachable",
        ));
    }
    let q = Query::SemanticEntitiesOfType {
        iri: r.type_iri,
        include_subtypes: r.include_subtypes,
    };
    let mut calls = tokio::task::JoinSet::new();
    for store in stores {
        let q = q.clone();
        calls.spawn(async move { store.query(&q, STORE_TIMEOUT).await });
    }
    let mut ids = std::collections::BTreeSet::new();
    let mut failed = Vec::new();
    while let Some(joined) = calls.join_next().await {
        match joined {
            Ok(Ok(Answer::Ids(found))) => ids.extend(found),
            Ok(Ok(other)) => return Err(unexpected(&other)),
            Ok(Err(e)) if is_client_refusal(&e) => return Err(store_error(e)),
            Ok(Err(e)) => failed.push(e),
            Err(e) => return Err(ApiError::internal(format!("a store call failed: {e}"))),
        }
    }
    if !failed.is_empty() {
        return Err(unavailable("by-type lookup", &failed));
    }
    st.read_barrier().await?;
    let ids = only_visible(&st, &caller, ids.into_iter().collect());
    Ok(Json(w::SemanticByTypeResponse { ids: ids_out(ids)? }))
}
