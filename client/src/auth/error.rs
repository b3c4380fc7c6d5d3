//! Why authentication refused a request, each mapped to its stable API error code.

use crate::wire::ErrorCode;

/// A refusal or a bad key. [`AuthError::code`] gives the API error code to answer with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A required `X-Verisim-*` header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A header is present but unparsable.
    #[error("header {header}: {reason}")]
    MalformedHeader {
        /// Which header.
        header: &'static str,
        /// Why.
        reason: String,
    },
    /// The timestamp is too far from the verifier's clock.
    #[error(
        "timestamp {timestamp_ms} ms is more than {skew_ms} ms away from the server's clock ({now_ms} ms)"
    )]
    TimestampSkew {
        /// The request's timestamp.
        timestamp_ms: u64,
        /// The verifier's clock.
        now_ms: u64,
        /// The allowed difference.
        skew_ms: u64,
    },
    /// The signature header names another scheme than this library's (`v2`), e.g. a bare v1 HMAC.
    #[error("unsupported signature scheme: {0}")]
    UnsupportedScheme(String),
    /// The MAC or signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The method or path cannot be put in a canonical request.
    #[error("cannot sign this request: {0}")]
    Unsignable(String),
    /// A key in text form is not valid.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The X25519 agreement gave the all-zero secret: the peer's public key is a low-order point.
    #[error("the X25519 public key is a low-order point")]
    LowOrderKey,
    /// The client id has no registered key (decided by the proxy from the registry). Answered as
    /// `bad_signature`, like [`AuthError::UnknownWindow`].
    #[error("unknown client")]
    UnknownClient,
    /// The client's key was revoked (decided by the proxy from the registry).
    #[error("the client is revoked")]
    ClientRevoked,
    /// No such window, or it belongs to another client (decided by the proxy from the registry).
    #[error("unknown trust window")]
    UnknownWindow,
    /// The window has expired or was closed.
    #[error("the trust window expired at {expires_at_ms} ms (now {now_ms} ms)")]
    ExpiredWindow {
        /// When it expired.
        expires_at_ms: u64,
        /// The verifier's clock.
        now_ms: u64,
    },
    /// The request id was already used for a different request (decided by the proxy).
    #[error("the request id was already used for a different request")]
    ReplayedRequest,
}

impl AuthError {
    /// The API error code this refusal is answered with.
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::MissingHeader(_) => ErrorCode::MissingAuth,
            Self::MalformedHeader { .. } => ErrorCode::MalformedAuth,
            Self::TimestampSkew { .. } => ErrorCode::TimestampSkew,
            Self::UnsupportedScheme(_) => ErrorCode::UnsupportedScheme,
            // One code for the three, so that an unauthenticated caller cannot tell a client or
            // window id that exists from one that does not (docs/api.md, "Why one code").
            Self::BadSignature | Self::UnknownClient | Self::UnknownWindow => {
                ErrorCode::BadSignature
            }
            Self::Unsignable(_) | Self::InvalidKey(_) | Self::LowOrderKey => {
                ErrorCode::InvalidInput
            }
            Self::ClientRevoked => ErrorCode::ClientRevoked,
            Self::ExpiredWindow { .. } => ErrorCode::ExpiredWindow,
            Self::ReplayedRequest => ErrorCode::ReplayedRequest,
        }
    }
}
