//! The public HTTP API's JSON bodies. Every type here is the contract between clients and the proxy;
//! `docs/api.md` lists the routes that carry them.
//!
//! Conventions: field names are `snake_case`; unknown fields are refused (a typo is an error, not a
//! silently ignored option); byte strings are standard base64 (with padding); keys, hashes and
//! signatures are lower-case hex.

mod bytes;
mod entity;
mod error;
mod example;
mod grant;
mod query;
mod tensor;
mod value;
mod window;

pub use bytes::{Base64Bytes, Hex};
pub use entity::{
    EdgePayload, EntityDeleted, EntityView, EntityWritten, GraphPayload, ModalityHashes,
    ModalityView, ProofKind, ProofPayload, RegisterRequest, SemanticPayload, UpdateRequest,
    VectorPayload,
};
pub use error::{DriftDetails, DriftedModality, ErrorBody, ErrorCode};
pub use example::example_entity;
pub use grant::{Access, GrantChanged, GrantRequest};
// The vocabulary the node shares: one definition each (crate `verisim-vocab`).
pub use query::{
    Direction, GraphNeighboursRequest, GraphNeighboursResponse, GraphPathRequest,
    GraphPathResponse, GraphTraverseRequest, GraphTraverseResponse, ReduceOp,
    SemanticByTypeRequest, SemanticByTypeResponse, SemanticValidateRequest,
    SemanticValidateResponse, TensorReduceRequest, TensorSliceRequest, Traversed, VectorHit,
    VectorSearchRequest, VectorSearchResponse, Violation,
};
pub use tensor::{DType, Scalar, TensorData, TensorPayload};
pub use value::Value;
pub use verisim_vocab::{
    ClientId, ContentHash, EntityId, IdError, InvalidInput, Modality, RequestId, WindowId,
};
pub use window::{
    ClusterKeyResponse, OpenWindowRequest, OpenWindowResponse, RegisterClientRequest,
    RegisterClientResponse, RevokeClientResponse, RotateClientRequest, RotateClientResponse,
};

/// Route paths, so the proxy's router and the client agree on them.
pub mod routes {
    /// `GET`: the cluster's X25519 public key (unsigned).
    pub const CLUSTER_KEY: &str = "/v1/cluster-key";
    /// `POST`: open a trust window (identity-signed in the body).
    pub const WINDOWS: &str = "/v1/windows";
    /// `POST`: register an entity. `/v1/entities/{id}`: `GET`, `PUT`, `DELETE`.
    pub const ENTITIES: &str = "/v1/entities";
    /// `POST`: vector k-NN.
    pub const SEARCH_VECTOR: &str = "/v1/search/vector";
    /// `POST`: graph neighbours.
    pub const GRAPH_NEIGHBOURS: &str = "/v1/graph/neighbours";
    /// `POST`: bounded breadth-first traversal.
    pub const GRAPH_TRAVERSE: &str = "/v1/graph/traverse";
    /// `POST`: shortest path.
    pub const GRAPH_PATH: &str = "/v1/graph/path";
    /// `POST`: tensor slice.
    pub const TENSOR_SLICE: &str = "/v1/tensor/slice";
    /// `POST`: tensor reduction along an axis.
    pub const TENSOR_REDUCE: &str = "/v1/tensor/reduce";
    /// `POST`: validate an annotation against the schema (nothing is stored).
    pub const SEMANTIC_VALIDATE: &str = "/v1/semantic/validate";
    /// `POST`: entities annotated with a type (and its subtypes).
    pub const SEMANTIC_BY_TYPE: &str = "/v1/semantic/by-type";
    /// `POST` (admin): enroll a client's identity key. `/admin/clients/{id}`: `GET`, `DELETE`
    /// (revoke); `/admin/clients/{id}/rotate`: `POST`.
    pub const ADMIN_CLIENTS: &str = "/admin/clients";
    /// `POST` (admin): one drift check-and-repair pass on the node asked, answered when done.
    pub const ADMIN_DRIFT_CHECK: &str = "/admin/drift/check";
    /// `GET` (admin): the node's last drift check pass and its running totals.
    pub const ADMIN_DRIFT: &str = "/admin/drift";
    /// `GET`: entities still to move, the rebalancer's last round and totals.
    pub const ADMIN_PLACEMENT: &str = "/admin/placement";
    /// `POST`: one rebalancing round now (on the leader).
    pub const ADMIN_PLACEMENT_REBALANCE: &str = "/admin/placement/rebalance";

    /// `/admin/clients/{id}` (`DELETE` revokes the client).
    #[must_use]
    pub fn admin_client(id: &super::ClientId) -> String {
        format!("{ADMIN_CLIENTS}/{id}")
    }

    /// `/admin/clients/{id}/rotate`.
    #[must_use]
    pub fn admin_client_rotate(id: &super::ClientId) -> String {
        format!("{ADMIN_CLIENTS}/{id}/rotate")
    }

    /// `/v1/entities/{id}`.
    #[must_use]
    pub fn entity(id: &super::EntityId) -> String {
        format!("{ENTITIES}/{id}")
    }

    /// `/v1/entities/{id}/grants/{client}` (`PUT` grants, `DELETE` revokes).
    #[must_use]
    pub fn grant(id: &super::EntityId, client: &super::ClientId) -> String {
        format!("{ENTITIES}/{id}/grants/{client}")
    }

    /// `/v1/windows/{id}` (`DELETE` closes the window).
    #[must_use]
    pub fn window(id: &super::WindowId) -> String {
        format!("{WINDOWS}/{id}")
    }
}

/// HTTP header names of the API.
pub mod headers {
    /// The client id (signed requests).
    pub const CLIENT: &str = "x-verisim-client";
    /// The trust window id (signed requests).
    pub const WINDOW: &str = "x-verisim-window";
    /// Milliseconds since the Unix epoch when the request was signed.
    pub const TIMESTAMP: &str = "x-verisim-timestamp";
    /// The client-chosen request id; a retry reuses it.
    pub const REQUEST_ID: &str = "x-verisim-request-id";
    /// The scheme and the signature: `v2=` and the lower-case hex HMAC-SHA256 of the canonical request.
    pub const SIGNATURE: &str = "x-verisim-signature";
    /// Response header: the HTTP address (`host:port`) of the node the server believes leads.
    pub const LEADER: &str = "x-verisim-leader";
    /// Request header on `PUT`/`DELETE`: the version the write expects (`0`: the entity must not exist).
    /// Signed (scheme v2).
    pub const IF_MATCH: &str = "if-match";
    /// Request header: the body's media type (`application/json`). Signed (scheme v2).
    pub const CONTENT_TYPE: &str = "content-type";
    /// Response header on 503: seconds to wait before retrying.
    pub const RETRY_AFTER: &str = "retry-after";
}

#[cfg(test)]
mod tests;
