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

    // The admin API's own codes (`/admin/*`, docs/operations.md). Same body, same closed set; a
    // public route never answers them.
    /// 421: this node does not lead the registry, and what was asked is done only by the leader
    /// (a leadership transfer, a linearizable read, a rebalancing round); ask the leader.
    NotLeader,
    /// 503: the proposal may or may not have committed (asked and unanswered, replaced by a new
    /// leader's entry, or committed and not yet applied here); retry after `Retry-After` seconds.
    NotCommitted,
    /// 409: the consensus layer refused the request as invalid (e.g. a membership change it
    /// cannot make).
    Invalid,
    /// 409: the consensus core or the registry refused the request; nothing was done.
    Refused,
    /// 400: not a valid node name or entity id in the path.
    BadName,
    /// 404: no node by this name is recorded in the registry.
    UnknownNode,
    /// 500: the supervision tree did not answer.
    Tree,
    /// 500: the snapshotter could not write a snapshot.
    SnapshotFailed,
    /// 400: only `verisim.*` actors can be killed.
    BadActor,
    /// 404: no actor by this name runs on this node.
    UnknownActor,
    /// 403: `POST /admin/proposals` is off (`admin.raw_proposals`).
    RawProposalsDisabled,
    /// 400: the body is not a CBOR array of registry proposals.
    BadCbor,
    /// 400: a raw proposal carries a command kept only to replay old logs.
    LegacyCommand,
    /// 400: more raw proposals in one request than a node accepts.
    TooMany,
    /// 500: a task proposing raw proposals failed.
    ProposerFailed,
    /// 404: no child at this path in the supervision tree.
    UnknownPath,
    /// 409: a supervisor on the path is not running.
    NotRunning,
    /// 409: the child runs; terminate it before deleting it.
    ChildRunning,
    /// 500: the supervisor could not restart the child.
    RestartFailed,
    /// 500: the supervisor could not terminate the child.
    TerminateFailed,
    /// 500: the supervisor could not delete the child.
    DeleteFailed,
    /// 503: the drift pass could not compare (no read barrier, a local store not answering);
    /// retry after `Retry-After` seconds.
    DriftCheckFailed,
    /// 503: the rebalancing round failed (a read barrier or a commit); retry after `Retry-After`
    /// seconds.
    RebalanceFailed,
    /// 500: an operator action could not be forwarded to the member (before the call was made).
    ForwardFailed,
    /// 502: the member answered a forwarded operator action with an error of its own that is not
    /// the caller's to act on (e.g. it refused this node's token).
    MemberFailed,
    /// 502: the member could not be reached with a forwarded operator action.
    MemberUnreachable,
}

impl ErrorCode {
    /// Every code, for tables and tests.
    pub const ALL: [Self; 51] = [
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
        Self::NotLeader,
        Self::NotCommitted,
        Self::Invalid,
        Self::Refused,
        Self::BadName,
        Self::UnknownNode,
        Self::Tree,
        Self::SnapshotFailed,
        Self::BadActor,
        Self::UnknownActor,
        Self::RawProposalsDisabled,
        Self::BadCbor,
        Self::LegacyCommand,
        Self::TooMany,
        Self::ProposerFailed,
        Self::UnknownPath,
        Self::NotRunning,
        Self::ChildRunning,
        Self::RestartFailed,
        Self::TerminateFailed,
        Self::DeleteFailed,
        Self::DriftCheckFailed,
        Self::RebalanceFailed,
        Self::ForwardFailed,
        Self::MemberFailed,
        Self::MemberUnreachable,
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
            Self::Forbidden | Self::RawProposalsDisabled => 403,
            Self::RequestTimeout => 408,
            Self::MalformedJson
            | Self::InvalidInput
            | Self::BadName
            | Self::BadActor
            | Self::BadCbor
            | Self::LegacyCommand
            | Self::TooMany => 400,
            Self::NotFound | Self::UnknownNode | Self::UnknownActor | Self::UnknownPath => 404,
            Self::MethodNotAllowed => 405,
            Self::VersionConflict
            | Self::AlreadyExists
            | Self::ClientExists
            | Self::Invalid
            | Self::Refused
            | Self::NotRunning
            | Self::ChildRunning => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::NotLeader => 421,
            Self::Internal
            | Self::Tree
            | Self::SnapshotFailed
            | Self::ProposerFailed
            | Self::RestartFailed
            | Self::TerminateFailed
            | Self::DeleteFailed
            | Self::ForwardFailed => 500,
            Self::DriftDetected | Self::MemberFailed | Self::MemberUnreachable => 502,
            Self::NoQuorum
            | Self::Unavailable
            | Self::NotCommitted
            | Self::DriftCheckFailed
            | Self::RebalanceFailed => 503,
        }
    }

    /// Whether retrying the same request (same request id) later may succeed: the 503s, answered
    /// with `Retry-After`.
    #[must_use]
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::NoQuorum
                | Self::Unavailable
                | Self::NotCommitted
                | Self::DriftCheckFailed
                | Self::RebalanceFailed
        )
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
            Self::NotLeader => "not_leader",
            Self::NotCommitted => "not_committed",
            Self::Invalid => "invalid",
            Self::Refused => "refused",
            Self::BadName => "bad_name",
            Self::UnknownNode => "unknown_node",
            Self::Tree => "tree",
            Self::SnapshotFailed => "snapshot_failed",
            Self::BadActor => "bad_actor",
            Self::UnknownActor => "unknown_actor",
            Self::RawProposalsDisabled => "raw_proposals_disabled",
            Self::BadCbor => "bad_cbor",
            Self::LegacyCommand => "legacy_command",
            Self::TooMany => "too_many",
            Self::ProposerFailed => "proposer_failed",
            Self::UnknownPath => "unknown_path",
            Self::NotRunning => "not_running",
            Self::ChildRunning => "child_running",
            Self::RestartFailed => "restart_failed",
            Self::TerminateFailed => "terminate_failed",
            Self::DeleteFailed => "delete_failed",
            Self::DriftCheckFailed => "drift_check_failed",
            Self::RebalanceFailed => "rebalance_failed",
            Self::ForwardFailed => "forward_failed",
            Self::MemberFailed => "member_failed",
            Self::MemberUnreachable => "member_unreachable",
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
