//! Client enrollment, an admin task: `POST /admin/clients` (enroll), `GET /admin/clients/{id}`,
//! `POST /admin/clients/{id}/rotate`, `DELETE /admin/clients/{id}` (revoke). Every decision
//! (idempotent re-enrollment, conflicting keys, revoked ids) is the registry's apply, so every node
//! reaches the same one; these handlers propose and translate the outcome.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use verisim_client::auth::IdentityPublicKey;
use verisim_client::wire::{
    ErrorCode, RegisterClientRequest, RegisterClientResponse, RevokeClientResponse,
    RotateClientRequest, RotateClientResponse,
};

use super::{AdminState, ApiError, TIMEOUT};
use crate::consensus::actor::{Applied, wall_clock_ms};
use crate::registry::{ClientId, Command, Outcome, Proposal, PublicKey, Refusal};

fn client_id(s: &str) -> Result<ClientId, ApiError> {
    ClientId::new(s).map_err(|e| ApiError::new(ErrorCode::InvalidInput, e.to_string()))
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::new(ErrorCode::MalformedJson, e.to_string()))
}

/// A usable Ed25519 public key, or `invalid_input`.
fn identity_key(bytes: [u8; 32]) -> Result<PublicKey, ApiError> {
    IdentityPublicKey::from_bytes(&bytes)
        .map_err(|e| ApiError::new(ErrorCode::InvalidInput, e.to_string()))?;
    Ok(PublicKey(bytes))
}

/// Commits `command` through the quorum and waits until this node applied it, so that the answer
/// (and what this node serves next) includes it.
async fn commit(st: &AdminState, command: Command) -> Result<Applied, ApiError> {
    let bytes = Proposal {
        at_ms: wall_clock_ms(),
        command,
    }
    .encode();
    st.proxy
        .registry
        .commit(bytes, TIMEOUT)
        .await
        .map_err(ApiError::from_consensus_admin)
}

/// The answer to a refused client command. An admin asking about an id the registry does not
/// know gets `404 not_found` (not the 401 `unknown_client` a signed request gets).
fn refused(client: &ClientId, r: &Refusal) -> ApiError {
    match r {
        Refusal::UnknownClient => ApiError::new(
            ErrorCode::NotFound,
            format!("no client {:?}", client.as_str()),
        ),
        Refusal::ClientRevoked => ApiError::new(
            ErrorCode::ClientRevoked,
            format!(
                "client {:?} is revoked; a revoked id stays revoked, enroll under a new id",
                client.as_str()
            ),
        ),
        Refusal::ClientExists => ApiError::new(
            ErrorCode::ClientExists,
            format!(
                "client {:?} is enrolled with another key; use POST /admin/clients/{}/rotate to replace it",
                client.as_str(),
                client.as_str()
            ),
        ),
        other => ApiError::new(ErrorCode::Internal, other.to_string()),
    }
}

fn unexpected(o: &Outcome) -> ApiError {
    ApiError::new(ErrorCode::Internal, format!("unexpected outcome {o:?}"))
}

/// `POST /admin/clients`: enroll a client's identity key. `201` when this call enrolled it, `200`
/// when the same key was already enrolled (a harmless re-run), `409 client_exists` for another
/// key, `401 client_revoked` for a revoked id.
pub(super) async fn enroll(
    State(st): State<AdminState>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let r: RegisterClientRequest = parse(&body)?;
    let client = client_id(r.client.as_str())?;
    let public_key = identity_key(r.public_key.0)?;
    let applied = commit(
        &st,
        Command::EnrollClient {
            client: client.clone(),
            public_key,
        },
    )
    .await?;
    match &applied.outcome {
        Outcome::ClientRegistered => {
            let created = st
                .replica
                .read()
                .state
                .client(&client)
                .is_some_and(|c| c.registered_index == applied.index);
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let body = RegisterClientResponse {
                client: r.client,
                index: applied.index,
            };
            Ok((status, Json(body)).into_response())
        }
        Outcome::Refused(refusal) => Err(refused(&client, refusal)),
        other => Err(unexpected(other)),
    }
}

/// `POST /admin/clients/{id}/rotate`: replace the key and close every window of the client.
pub(super) async fn rotate(
    State(st): State<AdminState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<RotateClientResponse>, ApiError> {
    let client = client_id(&id)?;
    let r: RotateClientRequest = parse(&body)?;
    let public_key = identity_key(r.public_key.0)?;
    let applied = commit(
        &st,
        Command::RotateClient {
            client: client.clone(),
            public_key,
        },
    )
    .await?;
    match &applied.outcome {
        Outcome::ClientRotated { windows_closed } => Ok(Json(RotateClientResponse {
            client: wire_id(&client)?,
            index: applied.index,
            windows_closed: *windows_closed,
        })),
        Outcome::Refused(refusal) => Err(refused(&client, refusal)),
        other => Err(unexpected(other)),
    }
}

/// `DELETE /admin/clients/{id}`: revoke the client. Its windows close on every node as each
/// applies the entry; revoking a revoked client again answers the same.
pub(super) async fn revoke(
    State(st): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<RevokeClientResponse>, ApiError> {
    let client = client_id(&id)?;
    let applied = commit(
        &st,
        Command::RevokeClient {
            client: client.clone(),
        },
    )
    .await?;
    match &applied.outcome {
        Outcome::ClientRevoked => Ok(Json(RevokeClientResponse {
            client: wire_id(&client)?,
            index: applied.index,
        })),
        Outcome::Refused(refusal) => Err(refused(&client, refusal)),
        other => Err(unexpected(other)),
    }
}

/// `GET /admin/clients/{id}`: this node's replica's record of the client (no read barrier: it
/// answers what this node has applied, with `applied_index`).
pub(super) async fn show(
    State(st): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let client = client_id(&id)?;
    let replica = st.replica.read();
    let applied_index = replica.state.applied_index();
    match replica.state.client(&client) {
        Some(c) => Ok(Json(json!({
            "client": client.as_str(),
            "public_key": hex::encode(c.public_key.0),
            "revoked": c.revoked,
            "registered_index": c.registered_index,
            "applied_index": applied_index,
        }))),
        None => Err(ApiError::new(
            ErrorCode::NotFound,
            format!(
                "no client {:?} (applied index {applied_index})",
                client.as_str()
            ),
        )),
    }
}

fn wire_id(c: &ClientId) -> Result<verisim_client::wire::ClientId, ApiError> {
    verisim_client::wire::ClientId::new(c.as_str())
        .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))
}
