//! `GET /v1/entities/{id}`: authenticate, call the registration service's read
//! ([`Registration::get`](super::registration::Registration::get): one committed version, each
//! modality verified against its hash on a replica), render the view.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use verisim_client::wire as w;
use verisim_stores::{ExportedItem, ModalityKind};

use super::error::ApiError;
use super::registration::{EntityRead, Unfound};
use super::{ProxyState, convert, read_body};
use crate::registry::ClientId;

fn decode<T: serde::Serialize + serde::de::DeserializeOwned>(
    item: &ExportedItem,
) -> Result<T, ApiError> {
    item.open(item.modality)
        .map_err(|e| ApiError::internal(format!("a verified item does not decode: {e}")))
}

/// `GET /v1/entities/{id}`: all four modalities of one version, each verified against the hash the
/// registry committed (`?allow_drift=true`: whatever is there, with what is not).
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
    let id = wire_id.clone();
    tracing::Span::current().record("entity", id.as_str());
    let read = st.registration().get(&id, &caller, allow_drift).await?;
    render(wire_id, &caller, read)
}

fn render(wire_id: w::EntityId, caller: &ClientId, read: EntityRead) -> Result<Response, ApiError> {
    let EntityRead {
        meta,
        views,
        unfound,
    } = read;
    let unfound: &Unfound = &unfound;
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
        owner: Some(meta.owner.clone()),
        grants: if &meta.owner == caller {
            Some(convert::grants_out(&meta.grants))
        } else {
            None
        },
    })
    .into_response())
}
