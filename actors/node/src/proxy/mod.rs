//! The proxy: the public HTTP API on every node (signed client requests, trust windows, registration
//! through the quorum, distribution to the store actors, multi-modality reads). The routes and bodies
//! are `verisim-client`'s `wire` module; docs/api.md describes them.

pub mod auth;
pub mod body;
pub mod catch_up;
pub mod convert;
pub mod cors;
pub mod entities;
pub mod entity_read;
pub mod error;
pub mod grants;
pub mod ports;
pub mod queries;
pub mod registration;
pub mod staging;
pub mod windows;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::request::Parts;
use axum::routing::{delete, get, post, put};
use verisim_client::auth::AuthError;
use verisim_client::wire::{ErrorCode, routes};
use verisim_raft::NodeId;

use self::auth::Authenticator;
pub use self::body::read_body;
use self::catch_up::CatchUp;
use self::error::ApiError;
use crate::consensus::actor::Applied;
use crate::consensus::{ClusterClock, RegistryClient, SharedReplica};
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
    /// Commits and read barriers through the quorum.
    pub registry: RegistryClient,
    /// How long a write may wait for its commit.
    pub commit_timeout: Duration,
    pub max_body: usize,
    pub stores: StoreDirectory,
    /// Replicas a new entity is placed on (`[placement] replicas`).
    pub replicas: usize,
    /// Test-only fault hook ([`staging::FAULT_SKIP_DISTRIBUTION`]): how many more writes commit
    /// and then answer 503 without distributing, as if this node died right after the commit.
    pub skip_distribution: Arc<std::sync::atomic::AtomicU32>,
    /// The origins whose browser pages may call the API (`[proxy] cors_origins`; see [`cors`]).
    pub cors: Arc<cors::CorsOrigins>,
    /// The gate of read barriers made before authentication (shared with `/metrics`).
    pub catch_up: Arc<CatchUp>,
    /// Cluster time: what request timestamps and window expiry are checked against, and what
    /// proposals are stamped with.
    pub clock: ClusterClock,
}

impl ProxyState {
    /// Commits a registry command through the quorum (from any node) and waits until this node's
    /// replica has applied it, so that what the handler reads next includes it.
    pub async fn commit(&self, command: Command) -> Result<Applied, ApiError> {
        let at_ms = self.clock.stamp().ok_or_else(|| {
            ApiError::new(
                ErrorCode::NoQuorum,
                "cluster time is not agreed yet: too few voters heard from",
            )
        })?;
        let bytes = Proposal { at_ms, command }.encode();
        Ok(self.registry.commit(bytes, self.commit_timeout).await?)
    }

    /// Waits until this node's replica includes every write acknowledged before the call: the
    /// leader's read index, applied here. Reads of the registry after it are linearizable.
    pub async fn read_barrier(&self) -> Result<(), ApiError> {
        self.registry.read_barrier(self.commit_timeout).await?;
        Ok(())
    }
}

impl ProxyState {
    /// Authenticates a signed request against this node's registry replica and clock. A client or
    /// window this replica does not know yet may have been committed through another node a moment
    /// ago: it is looked up again after catching up with the quorum (through [`CatchUp`]: the
    /// caller is not authenticated, so that costs it no more than a share of a rate-limited
    /// barrier). Still unknown, it is answered `bad_signature`, like a wrong MAC.
    pub async fn verify(&self, parts: &Parts, body: &[u8]) -> Result<auth::Verified, ApiError> {
        let now_ms = self.clock.now_ms();
        let first = match self.verify_now(parts, body, now_ms) {
            Err(AuthError::UnknownWindow | AuthError::UnknownClient) => {
                self.catch_up().await?;
                self.verify_now(parts, body, now_ms)
            }
            other => other,
        };
        if let Ok(v) = &first {
            // On the request span (`node::request_log`): every log line of it names the client.
            tracing::Span::current().record("client", v.origin.client.as_str());
        }
        first.map_err(|e| {
            tracing::debug!(reason = %e, "signed request refused");
            match e {
                // Not told apart from a bad MAC (docs/api.md, "Why one code").
                AuthError::UnknownWindow | AuthError::UnknownClient => {
                    AuthError::BadSignature.into()
                }
                other => other.into(),
            }
        })
    }

    /// A read barrier through the node's single-flight, rate-limited gate: for lookups made
    /// before the caller is authenticated.
    pub async fn catch_up(&self) -> Result<(), ApiError> {
        self.catch_up.run(|| self.read_barrier()).await
    }

    fn verify_now(
        &self,
        parts: &Parts,
        body: &[u8],
        now_ms: u64,
    ) -> Result<auth::Verified, AuthError> {
        let path = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path(), |p| p.as_str());
        let replica = self.replica.read();
        self.auth.verify(
            &replica.state,
            &parts.headers,
            parts.method.as_str(),
            path,
            body,
            now_ms,
        )
    }
}

/// The public API routes. Paths under `/admin` belong to `node::admin`'s table (its guard covers
/// them wherever they are mounted, but keep them there).
pub fn router(state: ProxyState) -> Router {
    let cors = state.cors.clone();
    Router::new()
        .route(routes::CLUSTER_KEY, get(windows::cluster_key))
        .route(routes::WINDOWS, post(windows::open_window))
        .route("/v1/windows/{id}", delete(windows::close_window))
        .route(routes::ENTITIES, post(entities::register))
        .route(
            "/v1/entities/{id}",
            get(entity_read::get)
                .put(entities::update)
                .delete(entities::delete),
        )
        .route(
            "/v1/entities/{id}/grants/{client}",
            put(grants::put).delete(grants::delete),
        )
        .route(routes::SEARCH_VECTOR, post(queries::search_vector))
        .route(routes::GRAPH_NEIGHBOURS, post(queries::graph_neighbours))
        .route(routes::GRAPH_TRAVERSE, post(queries::graph_traverse))
        .route(routes::GRAPH_PATH, post(queries::graph_path))
        .route(routes::TENSOR_SLICE, post(queries::tensor_slice))
        .route(routes::TENSOR_REDUCE, post(queries::tensor_reduce))
        .route(routes::SEMANTIC_VALIDATE, post(queries::semantic_validate))
        .route(routes::SEMANTIC_BY_TYPE, post(queries::semantic_by_type))
        // Outermost: a preflight is answered before routing (no route serves OPTIONS).
        .layer(axum::middleware::from_fn_with_state(cors, cors::layer))
        .with_state(state)
}
