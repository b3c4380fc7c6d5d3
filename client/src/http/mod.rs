//! A blocking native HTTP client for the public API (default feature `http`; not for wasm32).
//!
//! Every call gets one request id that all its attempts reuse, so a retry after a lost answer is
//! answered with the first outcome instead of writing twice. Attempts move to the next node on
//! connection errors and on 503 (waiting `Retry-After` when given, otherwise exponential backoff with
//! jitter), and go straight to the node named by an `X-Verisim-Leader` header.

mod error;
#[cfg(feature = "http2")]
mod multiplex;
mod retry;
mod session;
#[cfg(test)]
mod tests;

pub use error::ClientError;
#[cfg(feature = "http2")]
pub use multiplex::MultiplexClient;
pub use retry::RetryPolicy;
pub use session::{Session, now_ms, random_id, random_request_id};

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::{
    ClusterPublicKey, IdentityKey, IdentityPublicKey, OpenWindow, WindowSecret,
    derive_window_key_client,
};
use crate::outgoing;
use crate::wire::{
    Access, ClientId, ClusterKeyResponse, EntityDeleted, EntityId, EntityView, EntityWritten,
    GrantChanged, GrantRequest, GraphNeighboursRequest, GraphNeighboursResponse, GraphPathRequest,
    GraphPathResponse, GraphTraverseRequest, GraphTraverseResponse, Hex, OpenWindowResponse,
    RegisterClientRequest, RegisterClientResponse, RegisterRequest, RequestId,
    RevokeClientResponse, RotateClientRequest, RotateClientResponse, SemanticByTypeRequest,
    SemanticByTypeResponse, SemanticValidateRequest, SemanticValidateResponse, TensorPayload,
    TensorReduceRequest, TensorSliceRequest, UpdateRequest, VectorSearchRequest,
    VectorSearchResponse, WindowId, headers, routes,
};

/// Largest response body read (big tensors).
const MAX_RESPONSE_BYTES: u64 = 256 * 1024 * 1024;

/// How a call authenticates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Auth {
    /// No authentication (cluster key, window opening).
    None,
    /// HMAC-signed in the current window.
    Window,
    /// `Authorization: Bearer <admin token>` when one is configured.
    Admin,
}

/// A raw answer: status, leader hint, body.
#[derive(Debug)]
pub struct RawResponse {
    /// HTTP status.
    pub status: u16,
    /// The body bytes.
    pub body: Vec<u8>,
    /// The node that answered.
    pub node: String,
}

struct Nodes {
    urls: Vec<String>,
    current: usize,
}

/// The client. Cheap to share between threads (`&self` methods); for many concurrent clients, one per
/// thread keeps their node preferences apart.
pub struct Client {
    agent: ureq::Agent,
    nodes: Mutex<Nodes>,
    session: Mutex<Option<Session>>,
    policy: RetryPolicy,
    admin_token: Option<String>,
    /// The certificate authorities `https://` nodes are checked against (none: https fails).
    tls_roots: Vec<ureq::tls::Certificate<'static>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("nodes", &self.node_urls())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// `host:port` or a URL → a base URL without a trailing slash.
fn normalise(node: &str) -> Result<String, ClientError> {
    let n = node.trim().trim_end_matches('/');
    if n.is_empty() {
        return Err(ClientError::Config("an empty node address".into()));
    }
    if n.starts_with("http://") || n.starts_with("https://") {
        Ok(n.to_string())
    } else if n.contains("://") {
        Err(ClientError::Config(format!(
            "node {node:?}: only http and https URLs are supported"
        )))
    } else {
        Ok(format!("http://{n}"))
    }
}

impl Client {
    /// A client for the given nodes (`host:port` or `http(s)://host:port`), tried in order.
    ///
    /// # Errors
    /// [`ClientError::Config`] if the list is empty or an entry is not an address.
    pub fn new<S: AsRef<str>>(nodes: &[S]) -> Result<Self, ClientError> {
        let urls = nodes
            .iter()
            .map(|n| normalise(n.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        if urls.is_empty() {
            return Err(ClientError::Config("no node addresses".into()));
        }
        let policy = RetryPolicy::default();
        Ok(Self {
            agent: Self::agent(&policy, &[]),
            nodes: Mutex::new(Nodes { urls, current: 0 }),
            session: Mutex::new(None),
            policy,
            admin_token: None,
            tls_roots: Vec::new(),
        })
    }

    /// The HTTP agent: `https://` is verified against `roots` only (a node's `[http] tls`
    /// certificate is issued by the operator's own authority, not a public one), with the aws-lc-rs
    /// provider the rest of the tree uses.
    fn agent(policy: &RetryPolicy, roots: &[ureq::tls::Certificate<'static>]) -> ureq::Agent {
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::new_with_certs(roots))
            .unversioned_rustls_crypto_provider(std::sync::Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .build();
        ureq::Agent::config_builder()
            .timeout_global(Some(policy.request_timeout))
            .timeout_connect(Some(policy.connect_timeout))
            .http_status_as_error(false)
            .tls_config(tls)
            .build()
            .into()
    }

    /// Replaces the retry policy.
    #[must_use]
    pub fn with_policy(mut self, policy: RetryPolicy) -> Self {
        self.agent = Self::agent(&policy, &self.tls_roots);
        self.policy = policy;
        self
    }

    /// Trusts the certificate authorities in `pem` (one or more PEM certificates) for `https://`
    /// nodes, in place of any given before. Without any, an `https://` node cannot be reached.
    ///
    /// # Errors
    /// [`ClientError::Config`] if `pem` holds no certificate or one that does not parse.
    pub fn with_ca_pem(mut self, pem: &[u8]) -> Result<Self, ClientError> {
        let mut roots = Vec::new();
        for item in ureq::tls::parse_pem(pem) {
            match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => roots.push(c),
                Ok(_) => {}
                Err(e) => {
                    return Err(ClientError::Config(format!(
                        "the CA file does not parse: {e}"
                    )));
                }
            }
        }
        if roots.is_empty() {
            return Err(ClientError::Config(
                "the CA file holds no certificate".into(),
            ));
        }
        self.agent = Self::agent(&self.policy, &roots);
        self.tls_roots = roots;
        Ok(self)
    }

    /// Sends `Authorization: Bearer <token>` on admin routes.
    #[must_use]
    pub fn with_admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin_token = Some(token.into());
        self
    }

    /// Uses an already opened window (e.g. read back from a session file).
    #[must_use]
    pub fn with_session(self, session: Session) -> Self {
        self.set_session(Some(session));
        self
    }

    /// Sets or clears the window signed requests use.
    pub fn set_session(&self, session: Option<Session>) {
        *lock(&self.session) = session;
    }

    /// The current window, if any.
    #[must_use]
    pub fn session(&self) -> Option<Session> {
        lock(&self.session).clone()
    }

    /// The node base URLs, the ones learned from leader hints included.
    #[must_use]
    pub fn node_urls(&self) -> Vec<String> {
        lock(&self.nodes).urls.clone()
    }

    /// `GET /v1/cluster-key`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn cluster_key(&self) -> Result<ClusterPublicKey, ClientError> {
        let r: ClusterKeyResponse =
            self.call("GET", routes::CLUSTER_KEY, None::<&()>, Auth::None, &[])?;
        Ok(ClusterPublicKey(r.public_key.0))
    }

    /// Opens a trust window with a fresh random window id and X25519 secret, and makes it the
    /// current session.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn open_window(
        &self,
        identity: &IdentityKey,
        client: &ClientId,
        ttl: Duration,
    ) -> Result<Session, ClientError> {
        let window =
            WindowId::new(random_id("w")).map_err(|e| ClientError::Config(e.to_string()))?;
        let seed = zeroize::Zeroizing::new(rand::random::<[u8; 32]>());
        let cluster = self.cluster_key()?;
        self.open_window_with(identity, client, &window, &seed, &cluster, ttl)
    }

    /// [`Client::open_window`] with the caller's window id, seed and cluster key.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn open_window_with(
        &self,
        identity: &IdentityKey,
        client: &ClientId,
        window: &WindowId,
        seed: &[u8; 32],
        cluster: &ClusterPublicKey,
        ttl: Duration,
    ) -> Result<Session, ClientError> {
        let secret = WindowSecret::from_seed(seed);
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        let body = OpenWindow {
            cluster: *cluster,
            client: client.clone(),
            window: window.clone(),
            window_public_key: secret.public(),
            ttl_ms,
            timestamp_ms: now_ms(),
        }
        .sign(identity);
        let key = derive_window_key_client(&secret, cluster, window)?;
        let r: OpenWindowResponse =
            self.call("POST", routes::WINDOWS, Some(&body), Auth::None, &[])?;
        // The key is bound to the id we asked for; a server naming another window is broken.
        if r.window != *window {
            return Err(ClientError::Json(format!(
                "asked to open window {window}, the server answered {}",
                r.window
            )));
        }
        let session = Session {
            client: client.clone(),
            window: r.window,
            key,
            expires_at_ms: r.expires_at_ms,
        };
        self.set_session(Some(session.clone()));
        Ok(session)
    }

    /// `DELETE /v1/windows/{id}`: closes the current window and forgets it.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn close_window(&self) -> Result<(), ClientError> {
        let s = self.session().ok_or(ClientError::NoSession)?;
        let _: serde_json::Value = self.call(
            "DELETE",
            &routes::window(&s.window),
            None::<&()>,
            Auth::Window,
            &[],
        )?;
        self.set_session(None);
        Ok(())
    }

    /// `POST /admin/clients`: registers a client's identity key (an admin call).
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn register_client(
        &self,
        client: &ClientId,
        public_key: &IdentityPublicKey,
    ) -> Result<RegisterClientResponse, ClientError> {
        let body = RegisterClientRequest {
            client: client.clone(),
            public_key: Hex(public_key.to_bytes()),
        };
        self.call("POST", routes::ADMIN_CLIENTS, Some(&body), Auth::Admin, &[])
    }

    /// `POST /admin/clients/{id}/rotate`: replaces an enrolled client's identity key; every window
    /// it had open is closed (an admin call).
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn rotate_client(
        &self,
        client: &ClientId,
        public_key: &IdentityPublicKey,
    ) -> Result<RotateClientResponse, ClientError> {
        let body = RotateClientRequest {
            public_key: Hex(public_key.to_bytes()),
        };
        let path = routes::admin_client_rotate(client);
        self.call("POST", &path, Some(&body), Auth::Admin, &[])
    }

    /// `DELETE /admin/clients/{id}`: revokes a client; its windows close on every node (an admin
    /// call).
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn revoke_client(&self, client: &ClientId) -> Result<RevokeClientResponse, ClientError> {
        let path = routes::admin_client(client);
        self.call("DELETE", &path, None::<&()>, Auth::Admin, &[])
    }

    /// `POST /admin/drift/check`: one drift check-and-repair pass on the first node (not retried
    /// elsewhere: each node checks its own stores); `repair: false` compares and reports only.
    /// The report's fields are in docs/drift.md.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn drift_check(&self, repair: bool) -> Result<serde_json::Value, ClientError> {
        let path = if repair {
            routes::ADMIN_DRIFT_CHECK.to_owned()
        } else {
            format!("{}?repair=false", routes::ADMIN_DRIFT_CHECK)
        };
        self.call("POST", &path, None::<&()>, Auth::Admin, &[])
    }

    /// `GET /admin/drift`: the first node's last drift check pass and its running totals.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn drift_status(&self) -> Result<serde_json::Value, ClientError> {
        self.call("GET", routes::ADMIN_DRIFT, None::<&()>, Auth::Admin, &[])
    }

    /// Any admin route (`/admin/...`), with the admin token, the JSON answer as it is: what the
    /// operator CLI (`verisim status|tree|restart|...`) is built on.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn admin(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, ClientError> {
        self.call(method, path, body, Auth::Admin, &[])
    }

    /// `GET /admin/placement`: how many entities the first node's replica places elsewhere than
    /// the replication factor over the current voters says, and its rebalancer's rounds.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn placement_status(&self) -> Result<serde_json::Value, ClientError> {
        self.call(
            "GET",
            routes::ADMIN_PLACEMENT,
            None::<&()>,
            Auth::Admin,
            &[],
        )
    }

    /// `POST /admin/placement/rebalance`: one rebalancing round on the first node, which must
    /// lead (`421 not_leader` otherwise).
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn placement_rebalance(&self) -> Result<serde_json::Value, ClientError> {
        let path = routes::ADMIN_PLACEMENT_REBALANCE;
        self.call("POST", path, None::<&()>, Auth::Admin, &[])
    }

    /// `POST /v1/entities`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn register(&self, req: &RegisterRequest) -> Result<EntityWritten, ClientError> {
        self.call("POST", routes::ENTITIES, Some(req), Auth::Window, &[])
    }

    /// `PUT /v1/entities/{id}` with `If-Match: <expected_version>`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn update(
        &self,
        id: &EntityId,
        req: &UpdateRequest,
        expected_version: u64,
    ) -> Result<EntityWritten, ClientError> {
        let v = expected_version.to_string();
        self.call(
            "PUT",
            &routes::entity(id),
            Some(req),
            Auth::Window,
            &[(headers::IF_MATCH, &v)],
        )
    }

    /// `DELETE /v1/entities/{id}`, with `If-Match` when a version is expected.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn delete(
        &self,
        id: &EntityId,
        expected_version: Option<u64>,
    ) -> Result<EntityDeleted, ClientError> {
        let v = expected_version.map(|v| v.to_string());
        let extra: Vec<(&str, &str)> = v
            .as_deref()
            .map(|v| vec![(headers::IF_MATCH, v)])
            .unwrap_or_default();
        self.call(
            "DELETE",
            &routes::entity(id),
            None::<&()>,
            Auth::Window,
            &extra,
        )
    }

    /// `PUT /v1/entities/{id}/grants/{client}`: the owner gives `client` read or write access.
    ///
    /// # Errors
    /// See [`ClientError`]; a caller that is not the owner gets `forbidden` (or `not_found` if it
    /// may not even read the entity).
    pub fn grant(
        &self,
        id: &EntityId,
        client: &ClientId,
        access: Access,
    ) -> Result<GrantChanged, ClientError> {
        self.call(
            "PUT",
            &routes::grant(id, client),
            Some(&GrantRequest { access }),
            Auth::Window,
            &[],
        )
    }

    /// `DELETE /v1/entities/{id}/grants/{client}`: the owner withdraws `client`'s grant.
    ///
    /// # Errors
    /// See [`ClientError`] and [`Client::grant`].
    pub fn revoke_grant(
        &self,
        id: &EntityId,
        client: &ClientId,
    ) -> Result<GrantChanged, ClientError> {
        self.call(
            "DELETE",
            &routes::grant(id, client),
            None::<&()>,
            Auth::Window,
            &[],
        )
    }

    /// `GET /v1/entities/{id}` (`?allow_drift=true` to see drifted modalities instead of an error).
    ///
    /// # Errors
    /// See [`ClientError`]; drift is [`ClientError::Api`] with code `drift_detected`.
    pub fn get(&self, id: &EntityId, allow_drift: bool) -> Result<EntityView, ClientError> {
        let mut path = routes::entity(id);
        if allow_drift {
            path.push_str("?allow_drift=true");
        }
        self.call("GET", &path, None::<&()>, Auth::Window, &[])
    }

    /// `POST /v1/search/vector`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn search_vector(
        &self,
        req: &VectorSearchRequest,
    ) -> Result<VectorSearchResponse, ClientError> {
        self.call("POST", routes::SEARCH_VECTOR, Some(req), Auth::Window, &[])
    }

    /// `POST /v1/graph/neighbours`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn graph_neighbours(
        &self,
        req: &GraphNeighboursRequest,
    ) -> Result<GraphNeighboursResponse, ClientError> {
        self.call(
            "POST",
            routes::GRAPH_NEIGHBOURS,
            Some(req),
            Auth::Window,
            &[],
        )
    }

    /// `POST /v1/graph/traverse`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn graph_traverse(
        &self,
        req: &GraphTraverseRequest,
    ) -> Result<GraphTraverseResponse, ClientError> {
        self.call("POST", routes::GRAPH_TRAVERSE, Some(req), Auth::Window, &[])
    }

    /// `POST /v1/graph/path`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn graph_path(&self, req: &GraphPathRequest) -> Result<GraphPathResponse, ClientError> {
        self.call("POST", routes::GRAPH_PATH, Some(req), Auth::Window, &[])
    }

    /// `POST /v1/tensor/slice`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn tensor_slice(&self, req: &TensorSliceRequest) -> Result<TensorPayload, ClientError> {
        self.call("POST", routes::TENSOR_SLICE, Some(req), Auth::Window, &[])
    }

    /// `POST /v1/tensor/reduce`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn tensor_reduce(&self, req: &TensorReduceRequest) -> Result<TensorPayload, ClientError> {
        self.call("POST", routes::TENSOR_REDUCE, Some(req), Auth::Window, &[])
    }

    /// `POST /v1/semantic/validate`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn semantic_validate(
        &self,
        req: &SemanticValidateRequest,
    ) -> Result<SemanticValidateResponse, ClientError> {
        self.call(
            "POST",
            routes::SEMANTIC_VALIDATE,
            Some(req),
            Auth::Window,
            &[],
        )
    }

    /// `POST /v1/semantic/by-type`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn semantic_by_type(
        &self,
        req: &SemanticByTypeRequest,
    ) -> Result<SemanticByTypeResponse, ClientError> {
        self.call(
            "POST",
            routes::SEMANTIC_BY_TYPE,
            Some(req),
            Auth::Window,
            &[],
        )
    }

    /// A signed request with a raw JSON body, answered with the raw body of a 2xx (for tools that
    /// pass JSON through, like the CLI).
    ///
    /// # Errors
    /// See [`ClientError`].
    pub fn send_signed(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        extra: &[(&str, &str)],
    ) -> Result<RawResponse, ClientError> {
        self.execute(
            method,
            path,
            body,
            Auth::Window,
            extra,
            &random_request_id(),
        )
    }

    fn call<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&B>,
        auth: Auth,
        extra: &[(&str, &str)],
    ) -> Result<R, ClientError> {
        let bytes = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| ClientError::Json(e.to_string()))?,
            None => Vec::new(),
        };
        let raw = self.execute(method, path, &bytes, auth, extra, &random_request_id())?;
        serde_json::from_slice(&raw.body).map_err(|e| {
            ClientError::Json(format!(
                "{} answered {} with an unexpected body: {e}",
                raw.node, raw.status
            ))
        })
    }

    fn execute(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        auth: Auth,
        extra: &[(&str, &str)],
        request_id: &RequestId,
    ) -> Result<RawResponse, ClientError> {
        let session = match auth {
            Auth::Window => Some(self.session().ok_or(ClientError::NoSession)?),
            Auth::None | Auth::Admin => None,
        };
        // Every header the server acts on is sent exactly as signed (scheme v2).
        let covered = outgoing::covered(extra, body);
        let signer = session.as_ref().map(|s| outgoing::Signer {
            key: &s.key,
            client: &s.client,
            window: &s.window,
        });
        let admin_token = self.admin_token.as_deref().filter(|_| auth == Auth::Admin);
        let mut last: Option<ClientError> = None;
        for attempt in 0..self.policy.max_attempts.max(1) {
            let node = self.current_node();
            let mut builder = ureq::http::Request::builder()
                .method(method)
                .uri(format!("{node}{path}"));
            for (k, v) in outgoing::attempt_headers(
                method,
                path,
                body,
                &covered,
                extra,
                request_id,
                signer.as_ref(),
                admin_token,
                now_ms(),
            )? {
                builder = builder.header(k, v);
            }
            let request = builder
                .body(body.to_vec())
                .map_err(|e| ClientError::Config(format!("cannot build the request: {e}")))?;
            match self.agent.run(request) {
                Err(e) if retry::is_transient(&e) => {
                    tracing::debug!(node = %node, attempt, error = %e, "request failed, trying the next node");
                    last = Some(ClientError::Transport {
                        node: node.clone(),
                        reason: e.to_string(),
                    });
                    self.advance(&node);
                    std::thread::sleep(self.policy.backoff(attempt));
                }
                Err(e) => {
                    return Err(ClientError::Transport {
                        node,
                        reason: e.to_string(),
                    });
                }
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let leader = header_str(&resp, headers::LEADER);
                    let retry_after = header_str(&resp, headers::RETRY_AFTER)
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let bytes = resp
                        .body_mut()
                        .with_config()
                        .limit(MAX_RESPONSE_BYTES)
                        .read_to_vec()
                        .map_err(|e| ClientError::Transport {
                            node: node.clone(),
                            reason: format!("reading the response: {e}"),
                        })?;
                    if (200..300).contains(&status) {
                        return Ok(RawResponse {
                            status,
                            body: bytes,
                            node,
                        });
                    }
                    let err = ClientError::from_response(&node, status, &bytes);
                    if status != 503 {
                        return Err(err);
                    }
                    tracing::debug!(node = %node, attempt, leader = ?leader, "503, retrying");
                    last = Some(err);
                    let followed = leader.as_deref().is_some_and(|l| self.follow_leader(l));
                    if !followed {
                        self.advance(&node);
                    }
                    std::thread::sleep(match retry_after {
                        Some(d) => d.min(self.policy.max_retry_after),
                        None => self.policy.backoff(attempt),
                    });
                }
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Config("no attempt was made".into())))
    }

    fn current_node(&self) -> String {
        let n = lock(&self.nodes);
        n.urls[n.current % n.urls.len()].clone()
    }

    /// Moves to the node after `failed` (unless another thread already moved on).
    fn advance(&self, failed: &str) {
        let mut n = lock(&self.nodes);
        let len = n.urls.len();
        if n.urls[n.current % len] == failed {
            n.current = (n.current + 1) % len;
        }
    }

    /// Makes the hinted leader the current node, adding it if unknown. False if the hint is not an
    /// address.
    fn follow_leader(&self, hint: &str) -> bool {
        let Ok(url) = normalise(hint) else {
            return false;
        };
        let mut n = lock(&self.nodes);
        let i = match n.urls.iter().position(|u| *u == url) {
            Some(i) => i,
            None => {
                n.urls.push(url);
                n.urls.len() - 1
            }
        };
        n.current = i;
        true
    }
}

fn header_str(resp: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A poisoned lock only means another thread panicked mid-update of plain data; keep going.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
