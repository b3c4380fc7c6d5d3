//! The node's one error answer, for the public routes and the admin routes alike: `{"code",
//! "message"}` (plus `details` for some codes) with a stable `ErrorCode` of `verisim-client`, each
//! with its one HTTP status, and `Retry-After` on the retryable ones.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use verisim_client::auth::AuthError;
use verisim_client::wire::ErrorCode;

use crate::consensus::ConsensusError;
use crate::registry::Refusal;
use crate::store_actors::StoreCallError;

/// One error answer of the HTTP API (client and admin routes).
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body = serde_json::json!({"code": self.code, "message": self.message});
        if let Some(d) = self.details {
            body["details"] = d;
        }
        let mut r = (status, Json(body)).into_response();
        if self.code.is_retryable() {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(1u32));
        }
        r
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

/// The consensus layer's one error as a public (client) route answers it. The admin routes answer
/// it otherwise: see [`ApiError::from_consensus_admin`].
impl From<ConsensusError> for ApiError {
    fn from(e: ConsensusError) -> Self {
        let code = match &e {
            // Nothing was committed, or whether it was is unknown: the client retries (with the
            // same request id, which the registry answers once).
            ConsensusError::NotLeader { .. }
            | ConsensusError::NoLeader { .. }
            | ConsensusError::Unknown(_) => ErrorCode::NoQuorum,
            // Definitely not committed (a new leader replaced it), or committed and not yet
            // applied here, or a busy core: safe to retry at once.
            ConsensusError::Dropped
            | ConsensusError::NotApplied { .. }
            | ConsensusError::Refused(_) => ErrorCode::Unavailable,
            // The proxy only proposes what it built: an invalid proposal is a bug here.
            ConsensusError::Invalid(_) => ErrorCode::Internal,
        };
        Self::new(code, e.to_string())
    }
}

impl ApiError {
    /// The consensus layer's one error as an admin route answers it. The two mappings differ
    /// because their callers do: a client only needs to know whether to retry the same request
    /// (its SDK retries any 503 with the same request id, and the registry answers a replay
    /// once), so it gets `no_quorum` or `unavailable`, and an invalid proposal is the proxy's bug
    /// (`internal`). An operator driving the cluster (leadership, membership, raw proposals, the
    /// node-address register the whole-system tests check for linearizability) is told what
    /// happened: which node leads (`421 not_leader`), that the outcome is unknown (`503
    /// not_committed`, never a 409, which says nothing was done), or that the core refused what
    /// they asked (`409 refused`: busy with a transfer or a change; `409 invalid`: impossible).
    pub fn from_consensus_admin(e: ConsensusError) -> Self {
        let message = e.to_string();
        match e {
            ConsensusError::NotLeader { leader } => {
                Self::new(ErrorCode::NotLeader, format!("ask the leader: {leader:?}"))
            }
            ConsensusError::NoLeader { .. } => Self::new(ErrorCode::NoQuorum, message),
            ConsensusError::Unknown(_)
            | ConsensusError::Dropped
            | ConsensusError::NotApplied { .. } => Self::new(ErrorCode::NotCommitted, message),
            ConsensusError::Invalid(_) => Self::new(ErrorCode::Invalid, message),
            ConsensusError::Refused(_) => Self::new(ErrorCode::Refused, message),
        }
    }
}

/// The answer to a command the registry refused.
impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        let code = match &r {
            // The proxy only proposes what it encoded, and placement is its choice, not the
            // client's: either refusal is a bug here, not bad input (docs/api.md, Errors).
            Refusal::Malformed(_) | Refusal::BadPlacement => ErrorCode::Internal,
            Refusal::UnknownClient => ErrorCode::UnknownClient,
            Refusal::ClientRevoked => ErrorCode::ClientRevoked,
            Refusal::UnknownWindow | Refusal::WindowOfAnotherClient => ErrorCode::UnknownWindow,
            Refusal::WindowExpired => ErrorCode::ExpiredWindow,
            Refusal::DuplicateWindow => ErrorCode::AlreadyExists,
            Refusal::WindowTooLong { .. }
            | Refusal::MissingModality
            | Refusal::UnknownGrantee
            | Refusal::GrantToOwner => ErrorCode::InvalidInput,
            Refusal::VersionConflict { .. } => ErrorCode::VersionConflict,
            Refusal::UnknownEntity => ErrorCode::NotFound,
            Refusal::ReplayedRequest => ErrorCode::ReplayedRequest,
            // A client that may read the entity is told it may not change it; any other client
            // is told what it would be told of an entity that does not exist (docs/api.md,
            // Ownership and grants).
            Refusal::Forbidden { visible: true } => ErrorCode::Forbidden,
            Refusal::Forbidden { visible: false } => ErrorCode::NotFound,
            Refusal::ClientExists => ErrorCode::ClientExists,
        };
        if let Refusal::Forbidden { visible: false } = r {
            return Self::new(code, "no such entity");
        }
        Self::new(code, r.to_string())
    }
}

/// A store's answer as an API error: the caller's fault is `invalid_input` (with the schema
/// violations, if any), anything else means the stores are not available.
pub(crate) fn store_error(e: StoreCallError) -> ApiError {
    match e {
        StoreCallError::Refused { refusal, .. } if refusal.client_error => {
            let mut err = ApiError::invalid(refusal.message.clone());
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
        other => ApiError::new(ErrorCode::Unavailable, other.to_string()),
    }
}

/// Parses a JSON body, answering `malformed_json` with serde's reason.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::new(ErrorCode::MalformedJson, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table "How the registry's refusals map to codes" of docs/api.md.
    #[test]
    fn refusals_map_to_the_documented_codes() {
        let cases = [
            (Refusal::Malformed("x".into()), ErrorCode::Internal),
            (Refusal::UnknownClient, ErrorCode::UnknownClient),
            (Refusal::ClientRevoked, ErrorCode::ClientRevoked),
            (Refusal::UnknownWindow, ErrorCode::UnknownWindow),
            (Refusal::WindowOfAnotherClient, ErrorCode::UnknownWindow),
            (Refusal::WindowExpired, ErrorCode::ExpiredWindow),
            (Refusal::DuplicateWindow, ErrorCode::AlreadyExists),
            (
                Refusal::WindowTooLong {
                    asked_ms: 2,
                    max_ms: 1,
                },
                ErrorCode::InvalidInput,
            ),
            (
                Refusal::VersionConflict {
                    expected: 1,
                    actual: 2,
                },
                ErrorCode::VersionConflict,
            ),
            (Refusal::UnknownEntity, ErrorCode::NotFound),
            (Refusal::MissingModality, ErrorCode::InvalidInput),
            (Refusal::BadPlacement, ErrorCode::Internal),
            (Refusal::ReplayedRequest, ErrorCode::ReplayedRequest),
            (Refusal::Forbidden { visible: true }, ErrorCode::Forbidden),
            (Refusal::Forbidden { visible: false }, ErrorCode::NotFound),
            (Refusal::UnknownGrantee, ErrorCode::InvalidInput),
            (Refusal::GrantToOwner, ErrorCode::InvalidInput),
            (Refusal::ClientExists, ErrorCode::ClientExists),
        ];
        for (refusal, code) in cases {
            assert_eq!(ApiError::from(refusal.clone()).code, code, "{refusal:?}");
        }
    }

    fn consensus_errors() -> Vec<ConsensusError> {
        vec![
            ConsensusError::NotLeader { leader: Some(2) },
            ConsensusError::NoLeader { last_known: None },
            ConsensusError::Dropped,
            ConsensusError::Refused("busy".into()),
            ConsensusError::Invalid("no such voter".into()),
            ConsensusError::Unknown("timeout".into()),
            ConsensusError::NotApplied { index: 7 },
        ]
    }

    /// Status, body code and `Retry-After` of an error as answered.
    async fn answered(e: ApiError) -> (u16, String, Option<String>) {
        let r = e.into_response();
        let status = r.status().as_u16();
        let retry = r
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = http_body_util::BodyExt::collect(r.into_body())
            .await
            .expect("an in-memory body")
            .to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&bytes).expect("a JSON body");
        let code = body["code"].as_str().unwrap_or_default().to_owned();
        (status, code, retry)
    }

    /// The client routes: only codes a client's SDK retries on, or a bug.
    #[test]
    fn consensus_errors_map_for_the_client_routes() {
        let want = [
            ErrorCode::NoQuorum,
            ErrorCode::NoQuorum,
            ErrorCode::Unavailable,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
            ErrorCode::NoQuorum,
            ErrorCode::Unavailable,
        ];
        for (e, code) in consensus_errors().into_iter().zip(want) {
            assert_eq!(ApiError::from(e.clone()).code, code, "{e:?}");
        }
    }

    /// The admin routes: the answers the admin API gave before it shared this type (status, code
    /// and `Retry-After` unchanged).
    #[tokio::test]
    async fn consensus_errors_map_for_the_admin_routes() {
        let want: [(u16, &str, Option<&str>); 7] = [
            (421, "not_leader", None),
            (503, "no_quorum", Some("1")),
            (503, "not_committed", Some("1")),
            (409, "refused", None),
            (409, "invalid", None),
            (503, "not_committed", Some("1")),
            (503, "not_committed", Some("1")),
        ];
        for (e, (status, code, retry)) in consensus_errors().into_iter().zip(want) {
            let got = answered(ApiError::from_consensus_admin(e.clone())).await;
            assert_eq!(
                (got.0, got.1.as_str(), got.2.as_deref()),
                (status, code, retry),
                "{e:?}"
            );
        }
    }
}
