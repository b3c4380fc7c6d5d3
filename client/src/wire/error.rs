//! The error body and the closed set of stable error codes.

use serde::{Deserialize, Serialize};

use super::{ContentHash, Modality};

/// Every error the API answers, each with one HTTP status. The set is closed: a new code is an API
/// change. Serialised as its `snake_case` name, e.g. `"bad_signature"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 401: a signed request lacks one of the `X-Verisim-*` headers.
    MissingAuth,
    /// 401: an `X-Verisim-*` header is present but unparsable.
    MalformedAuth,
    /// 401: the signature is under another scheme than `v2` (e.g. a v1-signed request).
    UnsupportedScheme,
    /// 401: the HMAC (or, opening a window, the Ed25519 signature) does not verify; also the answer
    /// for an unknown client or window id, so that ids cannot be enumerated.
    BadSignature,
    /// 401: the client id has no registered identity key. No longer answered to a signed request
    /// or a window opening (those say `bad_signature`).
    UnknownClient,
    /// 401: the client's key was revoked.
    ClientRevoked,
    /// 401: no such trust window, or it belongs to another client. No longer answered to a signed
    /// request (that says `bad_signature`).
    UnknownWindow,
    /// 401: the trust window has expired or was closed.
    ExpiredWindow,
    /// 401: the timestamp is further than the allowed skew (default 300 s) from the server's clock.
    TimestampSkew,
    /// 401: the request id was already used for a different request.
    ReplayedRequest,
    /// 403: authenticated, but not allowed (e.g. an admin route without admin credentials).
    Forbidden,
    /// 400: the body is not JSON or not the expected shape.
    MalformedJson,
    /// 400: well-formed but unacceptable: a bad id, wrong vector dimension, unknown collection, an
    /// annotation that breaks the schema, a window too long, ...
    InvalidInput,
    /// 404: no such entity, window or route.
    NotFound,
    /// 405: the route exists but not with this method.
    MethodNotAllowed,
    /// 409: `If-Match` named another version, or the entity already exists on registration.
    VersionConflict,
    /// 409: a window with this id already exists (with another key).
    AlreadyExists,
    /// 413: the body is larger than the server accepts.
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 500: a bug or an unexpected failure; the message says what, never a secret.
    Internal,
    /// 502: a replica's data does not match the registry's hash (see `details`).
    DriftDetected,
    /// 503: the registry has no quorum (or no leader yet); retry after `Retry-After` seconds.
    NoQuorum,
    /// 503: too few replicas of the entity's stores answered; retry after `Retry-After` seconds.
    Unavailable,
    /// 409: the client id is enrolled with another identity key; replacing it takes an explicit
    /// rotation (`POST /admin/clients/{id}/rotate`).
    ClientExists,
    /// 408: the request's body did not arrive within the node's body deadline; the connection is
    /// closed after this answer.
    RequestTimeout,
}

impl ErrorCode {
    /// Every code, for tables and tests.
    pub const ALL: [Self; 25] = [
        Self::MissingAuth,
        Self::MalformedAuth,
        Self::UnsupportedScheme,
        Self::BadSignature,
        Self::UnknownClient,
        Self::ClientRevoked,
        Self::UnknownWindow,
        Self::ExpiredWindow,
        Self::TimestampSkew,
        Self::ReplayedRequest,
        Self::Forbidden,
        Self::MalformedJson,
        Self::InvalidInput,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::VersionConflict,
        Self::AlreadyExists,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::Internal,
        Self::DriftDetected,
        Self::NoQuorum,
        Self::Unavailable,
        Self::ClientExists,
        Self::RequestTimeout,
    ];

    /// The HTTP status code this error is answered with.
    #[must_use]
    pub fn status(self) -> u16 {
        match self {
            Self::MissingAuth
            | Self::MalformedAuth
            | Self::UnsupportedScheme
            | Self::BadSignature
            | Self::UnknownClient
            | Self::ClientRevoked
            | Self::UnknownWindow
            | Self::ExpiredWindow
            | Self::TimestampSkew
            | Self::ReplayedRequest => 401,
            Self::Forbidden => 403,
            Self::RequestTimeout => 408,
            Self::MalformedJson | Self::InvalidInput => 400,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::VersionConflict | Self::AlreadyExists | Self::ClientExists => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::Internal => 500,
            Self::DriftDetected => 502,
            Self::NoQuorum | Self::Unavailable => 503,
        }
    }

    /// Whether retrying the same request (same request id) later may succeed.
    #[must_use]
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::NoQuorum | Self::Unavailable)
    }

    /// The wire name, e.g. `"bad_signature"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingAuth => "missing_auth",
            Self::MalformedAuth => "malformed_auth",
            Self::UnsupportedScheme => "unsupported_scheme",
            Self::BadSignature => "bad_signature",
            Self::UnknownClient => "unknown_client",
            Self::ClientRevoked => "client_revoked",
            Self::UnknownWindow => "unknown_window",
            Self::ExpiredWindow => "expired_window",
            Self::TimestampSkew => "timestamp_skew",
            Self::ReplayedRequest => "replayed_request",
            Self::Forbidden => "forbidden",
            Self::MalformedJson => "malformed_json",
            Self::InvalidInput => "invalid_input",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::VersionConflict => "version_conflict",
            Self::AlreadyExists => "already_exists",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Internal => "internal",
            Self::DriftDetected => "drift_detected",
            Self::NoQuorum => "no_quorum",
            Self::Unavailable => "unavailable",
            Self::ClientExists => "client_exists",
            Self::RequestTimeout => "request_timeout",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every non-2xx answer: `{"code": "not_found", "message": "no entity \"a\""}`, plus `details` for
/// codes that carry structured data (`drift_detected`: [`DriftDetails`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// The stable code.
    pub code: ErrorCode,
    /// A readable explanation (for people; do not parse it).
    pub message: String,
    /// Structured data for some codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl ErrorBody {
    /// An error without details.
    #[must_use]
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
        }
    }
}

/// `details` of a `drift_detected` error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftDetails {
    /// The modalities no replica could serve with the committed hash.
    pub modalities: Vec<DriftedModality>,
}

/// One drifted modality.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftedModality {
    /// Which modality.
    pub modality: Modality,
    /// The registry's hash.
    pub expected: ContentHash,
    /// What the replicas hold (`null`: the item is missing on every replica asked).
    pub found: Option<ContentHash>,
}
