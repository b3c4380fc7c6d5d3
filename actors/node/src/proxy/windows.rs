//! Trust windows: `GET /v1/cluster-key`, `POST /v1/windows`, `DELETE /v1/windows/{id}`. Client
//! identity keys are enrolled through the admin API (`node::admin`).

use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use verisim_client::auth::{self, AuthError, ClusterPublicKey, IdentityPublicKey};
use verisim_client::wire::{
    ClusterKeyResponse, ErrorCode, Hex, OpenWindowRequest, OpenWindowResponse,
};

use super::error::{ApiError, parse_json};
use super::{ProxyState, read_body};
use crate::registry::{ClientId, Command, Outcome, PublicKey, WindowId};

/// `GET /v1/cluster-key`: the X25519 key clients agree window keys against.
pub async fn cluster_key(State(st): State<ProxyState>) -> Json<ClusterKeyResponse> {
    Json(ClusterKeyResponse {
        public_key: Hex(st.auth.cluster_public().0),
    })
}

fn client_id(s: &str) -> Result<ClientId, ApiError> {
    ClientId::new(s).map_err(|e| ApiError::invalid(e.to_string()))
}

/// `POST /v1/windows`: open a trust window. The opening is signed with the client's identity key and
/// carries its X25519 public key for the window; both sides derive the window's HMAC key, which is
/// never sent. Retrying the same opening answers the same window.
pub async fn open_window(State(st): State<ProxyState>, req: Request) -> Result<Response, ApiError> {
    let (_, body) = read_body(req, st.max_body).await?;
    let r: OpenWindowRequest = parse_json(&body)?;
    let client = client_id(r.client.as_str())?;
    let window = WindowId::new(r.window.as_str()).map_err(|e| ApiError::invalid(e.to_string()))?;
    let now = st.clock.now_ms();
    // Cheap and independent of the ids: a stale opening costs no registry lookup.
    auth::check_timestamp(r.timestamp_ms, now, st.auth.skew_ms())?;
    if st.replica.read().state.client(&client).is_none() {
        // Registered through another node a moment ago, perhaps: catch up before refusing, through
        // the rate-limited gate (the caller is not authenticated yet).
        st.catch_up().await?;
    }
    // An unknown client is answered like a bad signature, so that client ids cannot be enumerated;
    // revocation is told only to a caller whose opening verified under the client's key.
    let (identity, revoked) = {
        let replica = st.replica.read();
        match replica.state.client(&client) {
            None => {
                tracing::debug!(client = %client.as_str(), "window opening for an unknown client");
                return Err(AuthError::BadSignature.into());
            }
            Some(c) => (c.public_key, c.revoked),
        }
    };
    let identity = IdentityPublicKey::from_bytes(&identity.0)
        .map_err(|e| ApiError::internal(format!("registered key unusable: {e}")))?;
    let cluster: ClusterPublicKey = st.auth.cluster_public();
    auth::verify_open_window(&r, &identity, &cluster, now, st.auth.skew_ms())?;
    if revoked {
        return Err(ApiError::new(
            ErrorCode::ClientRevoked,
            "the client is revoked",
        ));
    }
    let client_dh = PublicKey(r.client_public_key.0);
    let applied = st
        .commit(Command::OpenWindow {
            client: client.clone(),
            window: window.clone(),
            expires_at_ms: now.saturating_add(r.ttl_ms),
            client_dh,
        })
        .await?;
    let expires_at_ms = match applied.outcome {
        Outcome::WindowOpened { expires_at_ms } => expires_at_ms,
        Outcome::Refused(crate::registry::Refusal::DuplicateWindow) => {
            // The same opening retried (same client and key) is answered with the window it opened.
            let replica = st.replica.read();
            match replica.state.window(&window) {
                Some(w) if w.client == client && w.client_dh == client_dh => w.expires_at_ms,
                _ => {
                    return Err(ApiError::new(
                        ErrorCode::AlreadyExists,
                        "a window with this id already exists",
                    ));
                }
            }
        }
        Outcome::Refused(refusal) => return Err(refusal.into()),
        other => {
            return Err(ApiError::internal(format!("unexpected outcome {other:?}")));
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(OpenWindowResponse {
            window: r.window,
            expires_at_ms,
        }),
    )
        .into_response())
}

/// `DELETE /v1/windows/{id}`: close a window, signed in that window.
pub async fn close_window(
    State(st): State<ProxyState>,
    axum::extract::Path(id): axum::extract::Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = read_body(req, st.max_body).await?;
    let verified = st.verify(&parts, &body).await?;
    let window = WindowId::new(id).map_err(|e| ApiError::invalid(e.to_string()))?;
    if window != verified.origin.window {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "a window can only be closed by a request signed in it",
        ));
    }
    let applied = st
        .commit(Command::CloseWindow {
            client: verified.origin.client,
            window: window.clone(),
        })
        .await?;
    match applied.outcome {
        Outcome::WindowClosed => Ok(Json(serde_json::json!({
            "window": window.as_str(),
            "index": applied.index,
        }))
        .into_response()),
        Outcome::Refused(r) => Err(r.into()),
        other => Err(ApiError::internal(format!("unexpected outcome {other:?}"))),
    }
}
