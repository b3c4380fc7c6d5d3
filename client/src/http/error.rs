//! What a client call can fail with.

use crate::auth::AuthError;
use crate::wire::{ErrorBody, ErrorCode};

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body (after retries, for retryable codes).
    #[error("{node} answered {status} {raw_code}: {message}")]
    Api {
        /// The node that answered.
        node: String,
        /// HTTP status.
        status: u16,
        /// The code, if this client knows it.
        code: Option<ErrorCode>,
        /// The code as sent (or empty when the body was not an error body).
        raw_code: String,
        /// The message.
        message: String,
        /// Structured details.
        details: Option<serde_json::Value>,
    },
    /// No node could be reached (the last node's error, after all attempts).
    #[error("cannot reach {node}: {reason}")]
    Transport {
        /// The last node tried.
        node: String,
        /// Why.
        reason: String,
    },
    /// A signed call without an open window.
    #[error("no trust window is open (open one first)")]
    NoSession,
    /// Signing failed (e.g. a path that cannot be canonicalised).
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A body could not be encoded or decoded.
    #[error("JSON: {0}")]
    Json(String),
    /// Bad client configuration.
    #[error("{0}")]
    Config(String),
}

impl ClientError {
    pub(super) fn from_response(node: &str, status: u16, body: &[u8]) -> Self {
        if let Ok(b) = serde_json::from_slice::<ErrorBody>(body) {
            return Self::Api {
                node: node.to_string(),
                status,
                code: Some(b.code),
                raw_code: b.code.as_str().to_string(),
                message: b.message,
                details: b.details,
            };
        }
        // A newer server's code, or not an error body at all.
        let v: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let field = |k: &str| {
            v.as_ref()
                .and_then(|v| v.get(k))
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        };
        Self::Api {
            node: node.to_string(),
            status,
            code: None,
            raw_code: field("code").unwrap_or_default(),
            message: field("message")
                .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(512)]).into()),
            details: None,
        }
    }

    /// The API error code, when the server sent a known one.
    #[must_use]
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api { code, .. } => *code,
            _ => None,
        }
    }
}
