//! The proxy's error answers: `{"code", "message"}` with the stable codes of `verisim-client`, each
//! with its HTTP status, and `Retry-After` on the retryable ones.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use verisim_client::auth::AuthError;
use verisim_client::wire::ErrorCode;

use crate::consensus::ConsensusError;
use crate::registry::Refusal;
use crate::store_actors::StoreCallError;

/// One error answer.
#[derive(Debug)]
pub struct ProxyError {
    pub code: ErrorCode,
    pub message: String,
    pub details: Option<serde_json::Value>,
}

impl ProxyError {
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

impl IntoResponse for ProxyError {
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

impl From<AuthError> for ProxyError {
    fn from(e: AuthError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

/// The consensus layer's one error, mapped once for every route (client and admin).
impl From<ConsensusError> for ProxyError {
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

/// The answer to a command the registry refused.
impl From<Refusal> for ProxyError {
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
pub(crate) fn store_error(e: StoreCallError) -> ProxyError {
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

/// Parses a JSON body, answering `malformed_json` with serde's reason.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ProxyError> {
    serde_json::from_slice(body)
        .map_err(|e| ProxyError::new(ErrorCode::MalformedJson, e.to_string()))
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
            assert_eq!(ProxyError::from(refusal.clone()).code, code, "{refusal:?}");
        }
    }
}
