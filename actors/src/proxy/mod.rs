//! The proxy: the public HTTP API on every node (signed client requests, trust windows, registration
//! through the quorum, distribution to the store actors, multi-modality reads). The routes and bodies
//! are `verisim-client`'s `wire` module; docs/api.md describes them.

pub mod auth;
pub mod convert;
pub mod entities;
pub mod error;
pub mod placement;
pub mod queries;
pub mod windows;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::routing::{delete, get, post};
use verisim_client::auth::AuthError;
use verisim_client::wire::{ErrorCode, routes};
use verisim_raft::NodeId;

use self::auth::Authenticator;
use self::error::ProxyError;
use crate::consensus::actor::{Applied, wall_clock_ms};
use crate::consensus::{
    ClusterTransport, ConsensusLocator, SharedReplica, propose, read_index, wait_applied,
};
use crate::node::http_server::BodyDeadlineExceeded;
use crate::registry::{Command, Proposal};
use crate::store_actors::StoreDirectory;

/// Bodies larger than this are refused with 413 unless configured otherwise.
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;

/// What every proxy handler needs; cheap to clone.
#[derive(Clone)]
pub struct ProxyState {
    pub id: NodeId,
    pub auth: Arc<Authenticator>,
    pub replica: SharedReplica,
    pub consensus: ConsensusLocator,
    pub transport: Arc<ClusterTransport>,
    /// How long a write may wait for its commit.
    pub commit_timeout: Duration,
    pub max_body: usize,
    pub stores: StoreDirectory,
}

impl ProxyState {
    /// Commits a registry command through the quorum (from any node) and waits until this node's
    /// replica has applied it, so that what the handler reads next includes it.
    pub async fn commit(&self, command: Command) -> Result<Applied, ProxyError> {
        let bytes = Proposal {
            at_ms: wall_clock_ms(),
            command,
        }
        .encode();
        let applied = propose(
            self.id,
            &self.consensus,
            &self.transport,
            bytes,
            self.commit_timeout,
        )
        .await?;
        wait_applied(&self.replica, applied.index, self.commit_timeout).await?;
        Ok(applied)
    }

    /// Waits until this node's replica includes every write acknowledged before the call: the
    /// leader's read index, applied here. Reads of the registry after it are linearizable.
    pub async fn read_barrier(&self) -> Result<(), ProxyError> {
        let index = read_index(
            self.id,
            &self.consensus,
            &self.transport,
            self.commit_timeout,
        )
        .await?;
        wait_applied(&self.replica, index, self.commit_timeout).await?;
        Ok(())
    }
}

impl ProxyState {
    /// Authenticates a signed request against this node's registry replica and clock. A client or
    /// window this replica does not know yet may have been committed through another node a moment
    /// ago: it is looked up again after a read barrier before the request is refused.
    pub async fn verify(&self, parts: &Parts, body: &[u8]) -> Result<auth::Verified, ProxyError> {
        match self.verify_now(parts, body) {
            Err(AuthError::UnknownWindow | AuthError::UnknownClient) => {
                self.read_barrier().await?;
                Ok(self.verify_now(parts, body)?)
            }
            other => Ok(other?),
        }
    }

    fn verify_now(&self, parts: &Parts, body: &[u8]) -> Result<auth::Verified, AuthError> {
        let path = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path(), |p| p.as_str());
        let replica = self.replica.read();
        self.auth.verify(
            &replica.state,
            |name| parts.headers.get(name).map(|v| v.as_bytes()),
            parts.method.as_str(),
            path,
            body,
            wall_clock_ms(),
        )
    }
}

/// Reads a request's body, refusing more than `limit` bytes with 413, and a body that does not
/// arrive within the server's body deadline with 408 `request_timeout`. An oversized body is still
/// read (and dropped) up to [`DRAIN_FACTOR`] times the limit, so the client, still sending, gets
/// the 413 instead of a reset connection; beyond that the connection is closed on it.
pub async fn read_body(req: Request, limit: usize) -> Result<(Parts, Bytes), ProxyError> {
    use http_body_util::BodyExt;
    let (parts, mut body) = req.into_parts();
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            // The server's body deadline (node::http_server) passed: say so, not "bad JSON".
            let code = if BodyDeadlineExceeded::is(&e) {
                ErrorCode::RequestTimeout
            } else {
                ErrorCode::MalformedJson
            };
            ProxyError::new(code, format!("reading the body: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
            seen = seen.saturating_add(data.len());
            if seen <= limit {
                buf.extend_from_slice(&data);
            } else if seen > limit.saturating_mul(DRAIN_FACTOR) {
                break;
            }
        }
    }
    if seen > limit {
        return Err(ProxyError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is larger than {limit} bytes"),
        ));
    }
    Ok((parts, Bytes::from(buf)))
}

/// How much of an oversized body is drained before answering 413 (see [`read_body`]).
const DRAIN_FACTOR: usize = 4;

/// The public API routes.
pub fn router(state: ProxyState) -> Router {
    Router::new()
        .route(routes::CLUSTER_KEY, get(windows::cluster_key))
        .route(routes::WINDOWS, post(windows::open_window))
        .route("/v1/windows/{id}", delete(windows::close_window))
        .route(routes::ENTITIES, post(entities::register))
        .route(
            "/v1/entities/{id}",
            get(entities::get)
                .put(entities::update)
                .delete(entities::delete),
        )
        .route(routes::SEARCH_VECTOR, post(queries::search_vector))
        .route(routes::GRAPH_NEIGHBOURS, post(queries::graph_neighbours))
        .route(routes::GRAPH_TRAVERSE, post(queries::graph_traverse))
        .route(routes::GRAPH_PATH, post(queries::graph_path))
        .route(routes::TENSOR_SLICE, post(queries::tensor_slice))
        .route(routes::TENSOR_REDUCE, post(queries::tensor_reduce))
        .route(routes::SEMANTIC_VALIDATE, post(queries::semantic_validate))
        .route(routes::SEMANTIC_BY_TYPE, post(queries::semantic_by_type))
        .route(routes::ADMIN_CLIENTS, post(windows::register_client))
        .with_state(state)
}
