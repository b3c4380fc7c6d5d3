//! The admin HTTP API: status, the supervision tree, snapshots, leadership and membership, and the
//! node-address registry commands the whole-system tests use as a replicated register.
//!
//! Errors are the public API's [`ApiError`]: JSON `{"code": ..., "message": ...}` with a stable
//! `ErrorCode` and its status, 503 with `Retry-After` when retrying may help; the consensus layer's
//! errors map through [`ApiError::from_consensus_admin`], not the client routes' `From`. Every
//! admin route comes from one table ([`routes`]); with a token
//! configured one guard, a layer over the node's whole app, wants `Authorization: Bearer <token>`
//! on every path under `/admin`; `/healthz`, `/readyz` and `/metrics` stay open.

mod backup;
mod clients;
mod drift;
mod events;
pub mod metrics;
mod overview;
mod placement;
pub mod process;
mod supervision;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, get, on};
use axum::{Json, Router};
use ractor::rpc::CallResult;
use serde::{Deserialize, Serialize};
use serde_json::json;
use subtle::ConstantTimeEq;
use verisim_client::wire::{ErrorCode, routes};
use verisim_cluster::ClusterHandle;
use verisim_raft::{ConfChange, NodeId};
use verisim_supervision::{ChildState, SupervisorHandle};

use crate::consensus::{
    ConsensusLocator, ConsensusMsg, SNAPSHOTTER_ACTOR_NAME, SharedReplica, SnapshotterMsg,
};
use crate::proxy::error::ApiError;
use crate::registry::{Command, NodeInfo, NodeName, Outcome, Proposal};

const TIMEOUT: Duration = Duration::from_secs(10);
/// How long the admin API waits for a supervisor to answer a question about its children.
pub(crate) const TREE_TIMEOUT: Duration = Duration::from_secs(10);
#[derive(Clone)]
pub struct AdminState {
    pub id: NodeId,
    pub consensus: ConsensusLocator,
    pub tree: SupervisorHandle,
    pub replica: SharedReplica,
    pub cluster: Arc<ClusterHandle>,
    /// `admin.raw_proposals`: whether `POST /admin/proposals` is served.
    pub raw_proposals: bool,
    /// The bearer token `/admin/*` requires; `None` leaves those routes open.
    pub token: Option<Arc<str>>,
    pub http: metrics::HttpMetrics,
    /// The stores' group commit, for its counters.
    pub store_sync: Arc<crate::store_actors::GroupSync>,
    /// The proxy's pre-authentication read-barrier gate, for its counter.
    pub catch_up: Arc<crate::proxy::catch_up::CatchUp>,
    /// Cluster time, for stamping proposals and for the status.
    pub clock: crate::consensus::ClusterClock,
    /// The node's proxy, for the staging sweep.
    pub proxy: crate::proxy::ProxyState,
    /// The drift checker's reports, for `GET /admin/drift` and `/metrics`.
    pub drift: Arc<crate::drift::DriftStats>,
    /// The rebalancer's rounds, for `GET /admin/placement` and `/metrics`.
    pub rebalance: Arc<crate::rebalance::RebalanceStats>,
    pub placement: crate::rebalance::PlacementSettings,
    /// The supervisor events of this node's tree, for `GET /admin/events`.
    pub events: Arc<crate::node::events::EventLog>,
    /// Whether this node serves HTTPS (`[http] tls`): `GET /admin/overview` asks members so too.
    pub tls: bool,
}

/// The HTTP verbs admin routes are served with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Put,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Self::Get => MethodFilter::GET,
            Self::Post => MethodFilter::POST,
            Self::Put => MethodFilter::PUT,
            Self::Delete => MethodFilter::DELETE,
        }
    }
}

/// One admin route: a verb and a path template under [`ADMIN_PREFIX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminRoute {
    pub verb: Verb,
    pub path: &'static str,
}

impl AdminRoute {
    /// The path with every `{param}` and `{*rest}` replaced by `value`: a concrete request path.
    pub fn path_with(&self, value: &str) -> String {
        self.path
            .split('/')
            .map(|seg| if seg.starts_with('{') { value } else { seg })
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// Every path under this prefix is behind [`guard`], whichever router serves it.
pub const ADMIN_PREFIX: &str = "/admin";

/// The one table every admin route is built from (and that tests walk).
fn table() -> Vec<(AdminRoute, MethodRouter<AdminState>)> {
    fn r<H, T>(verb: Verb, path: &'static str, h: H) -> (AdminRoute, MethodRouter<AdminState>)
    where
        H: Handler<T, AdminState>,
        T: 'static,
    {
        (AdminRoute { verb, path }, on(verb.filter(), h))
    }
    use Verb::{Delete, Get, Post, Put};
    vec![
        r(Get, "/admin/status", status),
        r(Get, "/admin/tree", tree),
        r(Post, "/admin/snapshot", snapshot),
        r(Post, "/admin/transfer/{to}", transfer),
        r(Post, "/admin/members", members),
        r(Post, "/admin/kill/{actor}", kill),
        r(Get, "/admin/nodes/{name}", get_node),
        r(Put, "/admin/nodes/{name}", put_node),
        r(Get, "/admin/entities/{id}", get_entity),
        r(Post, "/admin/proposals", raw_proposals),
        r(Post, "/admin/restart/{*path}", supervision::restart),
        r(Post, "/admin/terminate/{*path}", supervision::terminate),
        r(Delete, "/admin/children/{*path}", supervision::delete),
        r(Get, "/admin/members", members_list),
        r(Post, routes::ADMIN_CLIENTS, clients::enroll),
        r(Get, "/admin/clients/{id}", clients::show),
        r(Delete, "/admin/clients/{id}", clients::revoke),
        r(Post, "/admin/clients/{id}/rotate", clients::rotate),
        r(Post, "/admin/staging/sweep", staging_sweep),
        r(Post, "/admin/drift/check", drift::check),
        r(Get, "/admin/drift", drift::status),
        r(Get, "/admin/placement", placement::status),
        r(Post, "/admin/placement/rebalance", placement::rebalance),
        r(Get, "/admin/backup", backup::backup),
        r(Get, "/admin/events", events::list),
        r(Get, "/admin/overview", overview::overview),
        r(
            Post,
            "/admin/nodes/{name}/restart/{*path}",
            overview::restart_on,
        ),
        r(
            Post,
            "/admin/nodes/{name}/terminate/{*path}",
            overview::terminate_on,
        ),
    ]
}

/// The admin routes, in table order.
pub fn routes() -> Vec<AdminRoute> {
    table().into_iter().map(|(route, _)| route).collect()
}

/// The admin routes and the open ones (`/healthz`, `/readyz`, `/metrics`), unguarded: [`app`]
/// puts the guard in front of them.
fn router(state: AdminState) -> Router {
    let mut router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text));
    for (route, handler) in table() {
        router = router.route(route.path, handler);
    }
    router.with_state(state)
}

/// The node's whole HTTP app: the admin routes and the public API, with [`guard`] as a layer over
/// all of it, so that any path under `/admin` (routed, added later by either router, or unknown)
/// needs the token.
pub fn app(state: AdminState, proxy: crate::proxy::ProxyState) -> Router {
    let token = state.token.clone();
    router(state)
        .merge(crate::proxy::router(proxy))
        .merge(super::console::router())
        .layer(middleware::from_fn_with_state(token, guard))
}

/// Whether `path` is an admin path: `/admin` itself or anything below it.
pub fn is_admin_path(path: &str) -> bool {
    path.strip_prefix(ADMIN_PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The admin guard: `Authorization: Bearer <token>` on every admin path, checked in constant
/// time: 401 `missing_auth` without one, 403 `forbidden` for a wrong one. Other paths pass. With
/// no token configured everything passes (a node refuses to start so on a non-loopback address
/// unless told `admin.insecure_open`).
async fn guard(State(token): State<Option<Arc<str>>>, req: Request, next: Next) -> Response {
    match (&token, is_admin_path(req.uri().path())) {
        (Some(token), true) => match check_bearer(token, req.headers()) {
            Ok(()) => next.run(req).await,
            Err(e) => e.into_response(),
        },
        _ => next.run(req).await,
    }
}

fn check_bearer(token: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    match given {
        None => Err(ApiError::new(
            ErrorCode::MissingAuth,
            "this route needs `Authorization: Bearer <admin token>`",
        )),
        // Hashed first so that neither the content nor the length leaks through timing.
        Some(g)
            if bool::from(
                blake3::hash(g.as_bytes())
                    .as_bytes()
                    .ct_eq(blake3::hash(token.as_bytes()).as_bytes()),
            ) =>
        {
            Ok(())
        }
        Some(_) => Err(ApiError::new(ErrorCode::Forbidden, "wrong admin token")),
    }
}

async fn call<T: Send + 'static>(
    st: &AdminState,
    msg: impl FnOnce(ractor::RpcReplyPort<T>) -> ConsensusMsg,
) -> Result<T, ApiError> {
    let actor = st
        .consensus
        .get()
        .ok_or_else(|| ApiError::new(ErrorCode::NoQuorum, "the consensus actor is restarting"))?;
    match actor.call(msg, Some(TIMEOUT)).await {
        Ok(CallResult::Success(v)) => Ok(v),
        _ => Err(ApiError::new(
            ErrorCode::NoQuorum,
            "the consensus actor did not answer",
        )),
    }
}

async fn status(State(st): State<AdminState>) -> Result<Json<serde_json::Value>, ApiError> {
    let s = call(&st, ConsensusMsg::Status).await?;
    let peers = st.cluster.peers().await.unwrap_or_default();
    let peers_up: Vec<&str> = peers
        .iter()
        .filter(|p| p.up)
        .map(|p| p.node.as_str())
        .collect();
    // How long ago each connected peer's last heartbeat arrived (Kafka's last fetch, per replica).
    let contact: serde_json::Map<String, serde_json::Value> = peers
        .iter()
        .filter_map(|p| {
            p.since_last_beat
                .map(|d| (p.node.clone(), json!(d.as_millis() as u64)))
        })
        .collect();
    let now = st.clock.now();
    let clock = json!({
        "local_ms": crate::consensus::actor::wall_clock_ms(),
        "cluster_ms": now.ms,
        "agreed": now.agreed,
        "registry_ms": st.replica.read().state.clock_ms(),
    });
    // The size of the last snapshot this process wrote (0 before its first).
    let snapshot_bytes = crate::telemetry::TELEMETRY.snapshot_bytes.get();
    Ok(Json(
        json!({"id": st.id, "consensus": s, "peers_up": peers_up, "last_contact_ms": contact, "clock": clock, "last_snapshot_bytes": snapshot_bytes}),
    ))
}

async fn tree(State(st): State<AdminState>) -> Result<Json<serde_json::Value>, ApiError> {
    let t = st
        .tree
        .tree()
        .await
        .map_err(|e| ApiError::new(ErrorCode::Tree, e.to_string()))?;
    Ok(Json(serde_json::to_value(t).unwrap_or_default()))
}

/// 200 when the consensus actor answers, a leader is known and the stores subtree runs; 503 with
/// the reason otherwise.
async fn readyz(State(st): State<AdminState>) -> Response {
    let not_ready = |reason: String| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false, "reason": reason})),
        )
            .into_response()
    };
    let s = match call(&st, ConsensusMsg::Status).await {
        Ok(s) => s,
        Err(_) => return not_ready("the consensus actor does not answer".into()),
    };
    let Some(leader) = s.leader else {
        return not_ready("no known leader".into());
    };
    match st.tree.child("stores").await {
        Ok(c) if c.state == ChildState::Running => {}
        Ok(c) => return not_ready(format!("the stores subtree is {:?}", c.state)),
        Err(e) => return not_ready(format!("the supervision tree: {e}")),
    }
    Json(json!({"ready": true, "leader": leader, "applied_index": s.applied_index})).into_response()
}

/// OpenMetrics text; parts that do not answer are left out (`verisim_consensus_up` says so).
async fn metrics_text(State(st): State<AdminState>) -> Response {
    let consensus = call(&st, ConsensusMsg::Status).await.ok();
    let tree = st.tree.tree().await.ok();
    let peers_up = st.cluster.up_peers().await.map(|p| p.len()).unwrap_or(0);
    let (entities, clients, windows) = {
        let r = st.replica.read();
        (
            r.state.entity_count(),
            r.state.client_count(),
            r.state.window_count(),
        )
    };
    let sync = st.store_sync.stats();
    let text = metrics::render(
        &metrics::Snapshot {
            consensus: consensus.as_ref(),
            peers_up,
            tree: tree.as_ref(),
            entities,
            clients,
            windows,
            store_syncs: sync.syncs.load(std::sync::atomic::Ordering::Relaxed),
            store_synced_writes: sync.writes.load(std::sync::atomic::Ordering::Relaxed),
            catch_up_barriers: st.catch_up.started(),
            drift: st.drift.status(),
            rebalance: st.rebalance.status().totals,
            process: process::ProcessStats::read(),
        },
        &st.http,
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(metrics::CONTENT_TYPE),
        )],
        text,
    )
        .into_response()
}

async fn snapshot(State(_st): State<AdminState>) -> Result<Json<serde_json::Value>, ApiError> {
    let Some(cell) = ractor::registry::where_is(SNAPSHOTTER_ACTOR_NAME) else {
        return Err(ApiError::new(
            ErrorCode::NoQuorum,
            "the snapshotter is restarting",
        ));
    };
    let actor: ractor::ActorRef<SnapshotterMsg> = cell.into();
    match actor
        .call(SnapshotterMsg::TakeNow, Some(Duration::from_secs(600)))
        .await
    {
        Ok(CallResult::Success(Ok(written))) => Ok(Json(json!({
            "snapshot_index": written.map(|w| w.index),
            "written": written,
        }))),
        Ok(CallResult::Success(Err(e))) => Err(ApiError::new(ErrorCode::SnapshotFailed, e)),
        _ => Err(ApiError::new(
            ErrorCode::NoQuorum,
            "the snapshotter did not answer",
        )),
    }
}

async fn transfer(
    State(st): State<AdminState>,
    Path(to): Path<NodeId>,
) -> Result<Json<serde_json::Value>, ApiError> {
    call(&st, |reply| ConsensusMsg::TransferLeadership { to, reply })
        .await?
        .map_err(ApiError::from_consensus_admin)?;
    Ok(Json(json!({"transferring_to": to})))
}

/// Fault injection, like OTP's `exit(Pid, kill)`: kills a registered VeriSim actor abnormally so that
/// its supervisor's restart policy is exercised. Only `verisim.*` names are accepted.
async fn kill(Path(actor): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    if !actor.starts_with("verisim.") {
        return Err(ApiError::new(
            ErrorCode::BadActor,
            "only verisim.* actors can be killed",
        ));
    }
    // Store actors by their process group: see `store_actors::local_store` for why not by name.
    let found = match crate::store_actors::kind_of_actor_name(&actor) {
        Some(kind) => crate::store_actors::local_store(kind),
        None => ractor::registry::where_is(actor.clone()),
    };
    let Some(cell) = found else {
        return Err(ApiError::new(
            ErrorCode::UnknownActor,
            format!("no actor named {actor}"),
        ));
    };
    tracing::warn!(%actor, "killed through the admin API");
    cell.kill();
    Ok(Json(json!({"killed": actor})))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum MemberChange {
    AddLearner(NodeId),
    Promote(NodeId),
    Remove(NodeId),
}

async fn members(
    State(st): State<AdminState>,
    Json(change): Json<MemberChange>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let change = match change {
        MemberChange::AddLearner(id) => ConfChange::AddLearner(id),
        MemberChange::Promote(id) => ConfChange::Promote(id),
        MemberChange::Remove(id) => ConfChange::Remove(id),
    };
    // Through the leader, from whichever node was asked.
    let index = st
        .proxy
        .registry
        .change_membership(change, TIMEOUT)
        .await
        .map_err(ApiError::from_consensus_admin)?;
    Ok(Json(json!({"index": index})))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct NodeAddresses {
    pub cluster_addr: String,
    pub http_addr: String,
}

fn node_name(name: &str) -> Result<NodeName, ApiError> {
    NodeName::new(name).map_err(|e| ApiError::new(ErrorCode::BadName, e.to_string()))
}

/// Records a node's addresses in the registry (committed through the quorum, from any node).
async fn put_node(
    State(st): State<AdminState>,
    Path(name): Path<String>,
    Json(addrs): Json<NodeAddresses>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let command = Proposal {
        at_ms: st.clock.stamp().ok_or_else(|| {
            ApiError::new(
                ErrorCode::NoQuorum,
                "cluster time is not agreed yet: too few voters heard from",
            )
        })?,
        command: Command::SetNode {
            node: node_name(&name)?,
            info: NodeInfo {
                cluster_addr: addrs.cluster_addr,
                http_addr: addrs.http_addr,
            },
        },
    }
    .encode();
    let applied = st
        .proxy
        .registry
        .propose(command, TIMEOUT)
        .await
        .map_err(ApiError::from_consensus_admin)?;
    if let Outcome::Refused(r) = applied.outcome {
        return Err(ApiError::new(ErrorCode::Refused, r.to_string()));
    }
    Ok(Json(json!({"index": applied.index, "term": applied.term})))
}

/// `GET /admin/members`: the Raft members as this node applied them (voters and learners), each
/// with the addresses it recorded in the registry (absent until it could commit them), and the
/// leader this node knows. What `verisim status --cluster` fans out over.
async fn members_list(State(st): State<AdminState>) -> Result<Json<serde_json::Value>, ApiError> {
    let s = call(&st, ConsensusMsg::Status).await?;
    let replica = st.replica.read();
    let member = |id: NodeId, role: &str| {
        let name = crate::consensus::endpoint::node_name(id);
        let info = NodeName::new(name.clone())
            .ok()
            .and_then(|n| replica.state.nodes().get(&n).cloned());
        json!({
            "id": id,
            "name": name,
            "role": role,
            "cluster_addr": info.as_ref().map(|i| i.cluster_addr.clone()),
            "http_addr": info.as_ref().map(|i| i.http_addr.clone()),
        })
    };
    let m = &replica.membership;
    let members: Vec<serde_json::Value> = m
        .voters
        .iter()
        .map(|&id| member(id, "voter"))
        .chain(m.learners.iter().map(|&id| member(id, "learner")))
        .collect();
    Ok(Json(json!({
        "leader": s.leader,
        "applied_index": replica.applied_index,
        "members": members,
    })))
}

/// A linearizable read of a node's addresses: served by the leader once it has confirmed its
/// leadership and applied the read index (421 with the leader's id elsewhere).
async fn get_node(
    State(st): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let name = node_name(&name)?;
    let index = call(&st, |reply| ConsensusMsg::ReadIndex { reply })
        .await?
        .map_err(ApiError::from_consensus_admin)?;
    let found = st.replica.read().state.nodes().get(&name).cloned();
    Ok(match found {
        Some(info) => Json(json!({"read_index": index, "cluster_addr": info.cluster_addr, "http_addr": info.http_addr})).into_response(),
        None => ApiError::new(ErrorCode::UnknownNode, format!("{name} is not registered")).into_response(),
    })
}

/// Everything the registry holds of an entity, whoever owns it (operator tooling: the public
/// route hides entities from clients without a grant). Linearizable from any node: read after the
/// leader's read index is applied here.
async fn get_entity(
    State(st): State<AdminState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = crate::registry::EntityId::new(&id)
        .map_err(|e| ApiError::new(ErrorCode::BadName, e.to_string()))?;
    let index = st
        .proxy
        .registry
        .read_barrier(TIMEOUT)
        .await
        .map_err(ApiError::from_consensus_admin)?;
    let Some(meta) = st.replica.read().state.entity(&id).cloned() else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("no entity {id}"),
        ));
    };
    let hashes: serde_json::Map<String, serde_json::Value> = meta
        .items
        .iter()
        .map(|(kind, item)| {
            (
                format!("{kind:?}").to_lowercase(),
                json!({"hash": item.hash.to_hex(), "size": item.size}),
            )
        })
        .collect();
    Ok(Json(json!({
        "id": id.as_str(),
        "owner": meta.owner.as_str(),
        "grants": meta.grants.iter().map(|(c, a)| (c.as_str().to_owned(), json!(format!("{a:?}").to_lowercase()))).collect::<serde_json::Map<_, _>>(),
        "version": meta.version,
        "index": meta.index,
        "placement": meta.placement.iter().map(NodeName::as_str).collect::<Vec<_>>(),
        "items": hashes,
        "read_index": index,
    }))
    .into_response())
}

/// Most proposals one `POST /admin/proposals` may carry.
const MAX_RAW_PROPOSALS: usize = 10_000;

/// Proposes a CBOR array of registry [`Proposal`]s as they are, concurrently (so group commit
/// batches them), answering with each one's index, term and outcome, or its error, in order. An
/// operator and benchmark tool: it bypasses every check the proxy makes, so it is served only when
/// the node's configuration sets `admin.raw_proposals`.
async fn raw_proposals(
    State(st): State<AdminState>,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    if !st.raw_proposals {
        return Err(ApiError::new(
            ErrorCode::RawProposalsDisabled,
            "raw proposals are off; set admin.raw_proposals (--admin-raw-proposals)",
        ));
    }
    let proposals: Vec<Proposal> = crate::registry::decode_exact(&body).map_err(|e| {
        ApiError::new(
            ErrorCode::BadCbor,
            format!("expected a CBOR array of proposals: {e}"),
        )
    })?;
    if let Some(i) = proposals.iter().position(|p| p.command.is_legacy()) {
        return Err(ApiError::new(
            ErrorCode::LegacyCommand,
            format!(
                "proposal {i}: RegisterClient is kept only to replay old logs; \
                 enroll clients with POST /admin/clients"
            ),
        ));
    }
    if proposals.len() > MAX_RAW_PROPOSALS {
        return Err(ApiError::new(
            ErrorCode::TooMany,
            format!("at most {MAX_RAW_PROPOSALS} proposals per request"),
        ));
    }
    let mut results = vec![serde_json::Value::Null; proposals.len()];
    let mut set = tokio::task::JoinSet::new();
    for (i, p) in proposals.into_iter().enumerate() {
        let st = st.clone();
        set.spawn(async move {
            let r = st.proxy.registry.propose(p.encode(), TIMEOUT).await;
            (i, r)
        });
    }
    while let Some(joined) = set.join_next().await {
        let (i, r) = joined.map_err(|e| ApiError::new(ErrorCode::ProposerFailed, e.to_string()))?;
        results[i] = match r {
            Ok(a) => json!({
                "index": a.index,
                "term": a.term,
                "outcome": serde_json::to_value(&a.outcome).unwrap_or_default(),
            }),
            Err(e) => json!({"error": e.to_string()}),
        };
    }
    Ok(Json(json!({ "results": results })))
}

#[derive(Debug, serde::Deserialize)]
struct SweepParams {
    /// Decide only about staged items older than this (default: the periodic sweep's).
    settled_after_ms: Option<u64>,
}

/// `POST /admin/staging/sweep[?settled_after_ms=N]`: one pass of the staging sweep on this node
/// (`proxy::staging`), answered when done: how many staged items were old enough to decide
/// about, dropped, and kept (committed content too few replicas hold yet).
async fn staging_sweep(
    State(st): State<AdminState>,
    axum::extract::Query(p): axum::extract::Query<SweepParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let settled = p
        .settled_after_ms
        .map_or(crate::proxy::staging::SETTLED_AFTER, Duration::from_millis);
    let r = crate::proxy::staging::sweep_once(&st.proxy, settled).await?;
    Ok(Json(serde_json::json!({
        "settled": r.settled,
        "dropped": r.dropped,
        "kept": r.kept,
    })))
}
