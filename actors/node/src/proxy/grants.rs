//! Granting and revoking other clients' access to an entity: owner-only changes committed through
//! the quorum (apply checks the owner; no store is involved).

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use verisim_client::wire::{self as w, GrantChanged, GrantRequest};

use super::auth::Verified;
use super::convert;
use super::error::{ApiError, parse_json};
use super::registration::refused;
use super::{ProxyState, read_body};
use crate::registry::{Command, Outcome};

/// `PUT /v1/entities/{id}/grants/{client}` with `{"access": "read"|"write"}`.
pub async fn put(
    State(st): State<ProxyState>,
    Path((id, client)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = read_body(req, st.max_body).await?;
    let verified = st.verify(&parts, &body).await?;
    let r: GrantRequest = parse_json(&body)?;
    change(&st, verified, id, client, Some(r.access)).await
}

/// `DELETE /v1/entities/{id}/grants/{client}`: withdraws the grant (succeeds if there was none).
pub async fn delete(
    State(st): State<ProxyState>,
    Path((id, client)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = read_body(req, st.max_body).await?;
    let verified = st.verify(&parts, &body).await?;
    change(&st, verified, id, client, None).await
}

async fn change(
    st: &ProxyState,
    verified: Verified,
    id: String,
    client: String,
    access: Option<w::Access>,
) -> Result<Response, ApiError> {
    let wire_id = w::EntityId::new(id).map_err(|e| ApiError::invalid(e.to_string()))?;
    let wire_client = w::ClientId::new(client).map_err(|e| ApiError::invalid(e.to_string()))?;
    let id = wire_id.clone();
    tracing::Span::current().record("entity", id.as_str());
    let grantee = wire_client.clone();
    let outcome = match verified.retry_of {
        Some(prev) => prev.outcome,
        None => {
            let command = match access {
                Some(a) => Command::GrantAccess {
                    origin: verified.origin,
                    id: id.clone(),
                    grantee,
                    access: convert::access_in(a),
                },
                None => Command::RevokeAccess {
                    origin: verified.origin,
                    id: id.clone(),
                    grantee,
                },
            };
            st.commit(command).await?.outcome
        }
    };
    match outcome {
        Outcome::GrantChanged { index } => Ok(Json(GrantChanged {
            id: wire_id,
            client: wire_client,
            access,
            index,
        })
        .into_response()),
        Outcome::Refused(r) => Err(refused(&id, r)),
        other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
    }
}
