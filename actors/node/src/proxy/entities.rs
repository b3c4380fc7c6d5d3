//! The entity write routes: `POST /v1/entities`, `PUT /v1/entities/{id}`, `DELETE
//! /v1/entities/{id}`. Each parses and authenticates the request, calls the registration service
//! (`proxy::registration`), and maps its answer.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use verisim_client::wire::{
    self as w, EntityDeleted, EntityWritten, ModalityHashes, RegisterRequest, UpdateRequest,
};
use verisim_stores::{EntityId, ItemInput, ModalityKind};

use super::auth::Verified;
use super::convert;
use super::error::{ApiError, parse_json};
use super::registration::{Delete, Registration, Write};
use super::{ProxyState, read_body};
use crate::registry::ItemMeta;
use crate::store_actors::StoreDirectory;

impl ProxyState {
    /// The registration service on this node's registry client and stores.
    pub fn registration(&self) -> Registration<ProxyState, StoreDirectory> {
        Registration::new(self.clone(), self.stores.clone(), self.replicas)
    }
}

/// `POST /v1/entities`: register a new entity (refused with 409 if it exists).
pub async fn register(State(st): State<ProxyState>, req: Request) -> Result<Response, ApiError> {
    let (parts, body) = read_body(req, st.max_body).await?;
    let verified = st.verify(&parts, &body).await?;
    let r: RegisterRequest = parse_json(&body)?;
    let (wire_id, update) = r.into_update();
    write(
        &st,
        verified,
        wire_id,
        &update,
        Some(0),
        StatusCode::CREATED,
    )
    .await
}

/// `PUT /v1/entities/{id}` with `If-Match: <version>`: replace all four modalities.
pub async fn update(
    State(st): State<ProxyState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = read_body(req, st.max_body).await?;
    let verified = st.verify(&parts, &body).await?;
    let expected = if_match(&parts)?
        .ok_or_else(|| ApiError::invalid("an update needs If-Match: <current version>"))?;
    let r: UpdateRequest = parse_json(&body)?;
    let wire_id = w::EntityId::new(id).map_err(|e| ApiError::invalid(e.to_string()))?;
    write(&st, verified, wire_id, &r, Some(expected), StatusCode::OK).await
}

fn if_match(parts: &Parts) -> Result<Option<u64>, ApiError> {
    let Some(v) = parts.headers.get(w::headers::IF_MATCH) else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .map_err(|_| ApiError::invalid("If-Match is not ASCII"))?;
    s.trim()
        .trim_matches('"')
        .parse::<u64>()
        .map(Some)
        .map_err(|_| ApiError::invalid(format!("If-Match must be a version number, got {s:?}")))
}

/// Checks the body, runs the write, answers with what it committed.
async fn write(
    st: &ProxyState,
    verified: Verified,
    wire_id: w::EntityId,
    body: &UpdateRequest,
    expected_version: Option<u64>,
    status: StatusCode,
) -> Result<Response, ApiError> {
    body.check().map_err(|e| ApiError::invalid(e.0))?;
    let id = wire_id.clone();
    // On the request span (`node::request_log`): every log line of it names the entity.
    tracing::Span::current().record("entity", id.as_str());
    let written = st
        .registration()
        .write(Write {
            origin: verified.origin,
            retry_of: verified.retry_of.map(|r| r.outcome),
            inputs: inputs(&id, body)?,
            id,
            expected_version,
        })
        .await?;
    Ok((
        status,
        Json(EntityWritten {
            id: wire_id,
            version: written.version,
            index: written.index,
            hashes: hashes_of(&written.items)?,
        }),
    )
        .into_response())
}

/// `DELETE /v1/entities/{id}` (optionally `If-Match`): the registry forgets the entity, then its
/// replicas drop their items.
pub async fn delete(
    State(st): State<ProxyState>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = read_body(req, st.max_body).await?;
    let verified = st.verify(&parts, &body).await?;
    let expected_version = if_match(&parts)?;
    let wire_id = w::EntityId::new(id).map_err(|e| ApiError::invalid(e.to_string()))?;
    let id = wire_id.clone();
    tracing::Span::current().record("entity", id.as_str());
    let deleted = st
        .registration()
        .delete(Delete {
            origin: verified.origin,
            retry_of: verified.retry_of.map(|r| r.outcome),
            id,
            expected_version,
        })
        .await?;
    Ok(Json(EntityDeleted {
        id: wire_id,
        version: deleted.version,
        index: deleted.index,
    })
    .into_response())
}

pub(crate) fn inputs(id: &EntityId, body: &UpdateRequest) -> Result<[ItemInput; 4], ApiError> {
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

fn hashes_of(items: &BTreeMap<ModalityKind, ItemMeta>) -> Result<ModalityHashes, ApiError> {
    let get = |k: ModalityKind| {
        items
            .get(&k)
            .map(|m| w::ContentHash(m.hash.0))
            .ok_or_else(|| ApiError::internal(format!("no {k:?} hash recorded")))
    };
    Ok(ModalityHashes {
        graph: get(ModalityKind::Graph)?,
        vector: get(ModalityKind::Vector)?,
        tensor: get(ModalityKind::Tensor)?,
        semantic: get(ModalityKind::Semantic)?,
    })
}
