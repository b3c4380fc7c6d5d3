//! Trust windows and client identities.

use serde::{Deserialize, Serialize};

use super::{ClientId, Hex, WindowId};

/// `200 OK` to `GET /v1/cluster-key`: the cluster's long-term X25519 public key, against which clients
/// agree window keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterKeyResponse {
    /// X25519 public key, 64 hex characters.
    pub public_key: Hex<32>,
}

/// `POST /v1/windows`: open a trust window. Not HMAC-signed (there is no window yet): `signature` is the
/// client's Ed25519 signature over the canonical bytes of the other fields (see
/// `auth::OpenWindow::signing_bytes` and docs/api.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenWindowRequest {
    /// Who opens it.
    pub client: ClientId,
    /// The window id the client chose (unique among open windows).
    pub window: WindowId,
    /// The client's ephemeral X25519 public key for this window.
    pub client_public_key: Hex<32>,
    /// Requested lifetime in milliseconds (the cluster caps it, default 24 h).
    pub ttl_ms: u64,
    /// When the client signed it, milliseconds since the Unix epoch (checked against the skew).
    pub timestamp_ms: u64,
    /// Ed25519 signature, 128 hex characters.
    pub signature: Hex<64>,
}

/// `201 Created` to `POST /v1/windows`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenWindowResponse {
    /// The window id.
    pub window: WindowId,
    /// When it expires, milliseconds since the Unix epoch (cluster time).
    pub expires_at_ms: u64,
}

/// `POST /admin/clients`: enroll a client's Ed25519 identity key (the same key again is a no-op;
/// another key for an enrolled client is refused with `client_exists`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterClientRequest {
    /// The client's name.
    pub client: ClientId,
    /// Ed25519 public key, 64 hex characters.
    pub public_key: Hex<32>,
}

/// `201 Created` (or `200 OK` when the same key was already enrolled) to `POST /admin/clients`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterClientResponse {
    /// The client's name.
    pub client: ClientId,
    /// The registry log index that committed the key.
    pub index: u64,
}

/// `POST /admin/clients/{id}/rotate`: replace an enrolled client's identity key (closes all of its
/// windows).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateClientRequest {
    /// The new Ed25519 public key, 64 hex characters.
    pub public_key: Hex<32>,
}

/// `200 OK` to `POST /admin/clients/{id}/rotate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateClientResponse {
    /// The client's name.
    pub client: ClientId,
    /// The registry log index that committed the new key.
    pub index: u64,
    /// How many windows of the client the rotation closed.
    pub windows_closed: u64,
}

/// `200 OK` to `DELETE /admin/clients/{id}`: the client is revoked and its windows are closed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeClientResponse {
    /// The client's name.
    pub client: ClientId,
    /// The registry log index that committed the revocation.
    pub index: u64,
}
