//! An async client on the global `fetch`: the native blocking client's behaviour (one request id
//! per call reused by every attempt, the next node on a network failure or 503, `Retry-After`,
//! exponential backoff with jitter, `X-Verisim-Leader` hints), with promises.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use verisim_vocab::backoff;
use wasm_bindgen::JsCast as _;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};

use super::keys::{IdentityKey, body_bytes, client_id, json_to_js, window_id};
use super::{SdkError, error::describe, now_ms, random_bytes, random_id, to_u64};
use crate::auth::{
    ClusterPublicKey, OpenWindow, WindowKey, WindowSecret, derive_window_key_client,
};
use crate::outgoing;
use crate::wire::{
    ClientId, ClusterKeyResponse, EntityDeleted, EntityId, EntityView, EntityWritten, Hex,
    OpenWindowRequest, OpenWindowResponse, RegisterClientRequest, RegisterClientResponse,
    RegisterRequest, RequestId, UpdateRequest, VectorSearchRequest, VectorSearchResponse, WindowId,
    headers, routes,
};

#[wasm_bindgen]
extern "C" {
    /// The global `fetch` (Node ≥ 18, browsers, workers).
    #[wasm_bindgen(js_name = fetch, catch)]
    fn global_fetch(req: &web_sys::Request) -> Result<js_sys::Promise, JsValue>;
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(f: &js_sys::Function, ms: f64) -> JsValue;
    /// `AbortSignal.timeout(ms)`: aborts the fetch (headers and body) after `ms`.
    #[wasm_bindgen(js_namespace = AbortSignal, js_name = timeout, catch)]
    fn abort_after(ms: f64) -> Result<web_sys::AbortSignal, JsValue>;

    /// Optional arguments typed for TypeScript (`options?: ClientOptions`): plain JS values,
    /// unchecked; `undefined` and `null` arrive as `None`.
    #[wasm_bindgen(typescript_type = "ClientOptions")]
    pub type ClientOptionsArg;
    /// A request body: a string (UTF-8 encoded) or bytes.
    #[wasm_bindgen(typescript_type = "Uint8Array | string")]
    pub type BodyArg;
    /// Any JSON-able value.
    #[wasm_bindgen(typescript_type = "unknown")]
    pub type JsonArg;
}

/// How calls are retried (the native `RetryPolicy`'s defaults), in milliseconds.
#[derive(Clone, Debug)]
struct Policy {
    max_attempts: u32,
    initial_backoff_ms: f64,
    max_backoff_ms: f64,
    max_retry_after_ms: f64,
    request_timeout_ms: f64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            initial_backoff_ms: 50.0,
            max_backoff_ms: 2000.0,
            max_retry_after_ms: 10_000.0,
            request_timeout_ms: 30_000.0,
        }
    }
}

impl Policy {
    /// The wait after failed attempt `attempt` (0-based): doubling, capped, ±50 % jitter.
    fn backoff_ms(&self, attempt: u32) -> f64 {
        // Options come from JavaScript: a negative or NaN one means no wait, a huge one no cap.
        let ms = |v: f64| {
            if v.is_nan() || v <= 0.0 {
                Duration::ZERO
            } else {
                Duration::try_from_secs_f64(v / 1000.0).unwrap_or(Duration::MAX)
            }
        };
        let max = ms(self.max_backoff_ms);
        let base = backoff::exponential(ms(self.initial_backoff_ms), max, attempt);
        // Jitter spreads retries of many clients after a shared failure (not a secret).
        backoff::spread(base, max, js_sys::Math::random()).as_secs_f64() * 1000.0
    }
}

/// An open trust window.
#[derive(Clone)]
struct Session {
    client: ClientId,
    window: WindowId,
    key: WindowKey,
    expires_at_ms: u64,
}

#[derive(Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionJson {
    client: ClientId,
    window: WindowId,
    key: String,
    expires_at_ms: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    None,
    Window,
    Admin,
}

struct Inner {
    nodes: RefCell<(Vec<String>, usize)>,
    session: RefCell<Option<Session>>,
    policy: Policy,
    admin_token: Option<String>,
}

struct Raw {
    status: u16,
    body: Vec<u8>,
    node: String,
}

/// `host:port` or a URL → a base URL without a trailing slash.
fn normalise(node: &str) -> Result<String, SdkError> {
    let n = node.trim().trim_end_matches('/');
    if n.is_empty() {
        return Err(SdkError::Config("an empty node address".into()));
    }
    if n.starts_with("http://") || n.starts_with("https://") {
        Ok(n.to_string())
    } else if n.contains("://") {
        Err(SdkError::Config(format!(
            "node {node:?}: only http and https URLs are supported"
        )))
    } else {
        Ok(format!("http://{n}"))
    }
}

async fn sleep(ms: f64) {
    let p = js_sys::Promise::new(&mut |resolve, _reject| {
        set_timeout(&resolve, ms);
    });
    // setTimeout's promise only resolves.
    let _ = JsFuture::from(p).await;
}

fn opt_number(options: &JsValue, key: &str) -> Result<Option<f64>, SdkError> {
    let v = js_sys::Reflect::get(options, &JsValue::from_str(key))
        .map_err(|e| SdkError::Config(format!("{key}: {}", describe(&e))))?;
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    match v.as_f64() {
        Some(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
        _ => Err(SdkError::Config(format!(
            "{key} must be a non-negative number"
        ))),
    }
}

/// The client. Methods answer promises; calls may run concurrently (they share the node
/// preference and the session).
#[wasm_bindgen]
pub struct Client(Rc<Inner>);

fn parse_json<T: DeserializeOwned>(what: &str, v: &JsValue) -> Result<T, SdkError> {
    let text = js_sys::JSON::stringify(v)
        .map_err(|e| SdkError::Json(format!("{what}: {}", describe(&e))))?
        .as_string()
        .ok_or_else(|| SdkError::Json(format!("{what} is not JSON")))?;
    serde_json::from_str(&text).map_err(|e| SdkError::Json(format!("{what}: {e}")))
}

fn entity_id(s: &str) -> Result<EntityId, SdkError> {
    EntityId::new(s).map_err(|e| SdkError::Config(format!("entity id: {e}")))
}

/// Runs `f` as a promise, its error thrown as a `VerisimError`.
fn promise<F>(f: F) -> js_sys::Promise
where
    F: Future<Output = Result<JsValue, SdkError>> + 'static,
{
    future_to_promise(async move { f.await.map_err(JsValue::from) })
}

#[wasm_bindgen]
impl Client {
    /// A client for the given nodes (`host:port` or `http(s)://host:port`), tried in order.
    #[wasm_bindgen(constructor)]
    pub fn new(nodes: Vec<String>, options: Option<ClientOptionsArg>) -> Result<Client, SdkError> {
        let options = options.map_or(JsValue::UNDEFINED, JsValue::from);
        let urls = nodes
            .iter()
            .map(|n| normalise(n))
            .collect::<Result<Vec<_>, _>>()?;
        if urls.is_empty() {
            return Err(SdkError::Config("no node addresses".into()));
        }
        let mut policy = Policy::default();
        let mut admin_token = None;
        if options.is_object() {
            if let Some(n) = opt_number(&options, "maxAttempts")? {
                policy.max_attempts = u32::try_from(to_u64("maxAttempts", n)?).unwrap_or(u32::MAX);
            }
            if let Some(n) = opt_number(&options, "initialBackoffMs")? {
                policy.initial_backoff_ms = n;
            }
            if let Some(n) = opt_number(&options, "maxBackoffMs")? {
                policy.max_backoff_ms = n;
            }
            if let Some(n) = opt_number(&options, "maxRetryAfterMs")? {
                policy.max_retry_after_ms = n;
            }
            if let Some(n) = opt_number(&options, "requestTimeoutMs")? {
                policy.request_timeout_ms = n;
            }
            let t = js_sys::Reflect::get(&options, &JsValue::from_str("adminToken"))
                .map_err(|e| SdkError::Config(format!("adminToken: {}", describe(&e))))?;
            if !t.is_undefined() && !t.is_null() {
                admin_token = Some(
                    t.as_string()
                        .ok_or_else(|| SdkError::Config("adminToken must be a string".into()))?,
                );
            }
        } else if !options.is_undefined() && !options.is_null() {
            return Err(SdkError::Config("options must be an object".into()));
        }
        Ok(Self(Rc::new(Inner {
            nodes: RefCell::new((urls, 0)),
            session: RefCell::new(None),
            policy,
            admin_token,
        })))
    }

    /// The node base URLs, the ones learned from leader hints included.
    #[wasm_bindgen(js_name = nodeUrls)]
    pub fn node_urls(&self) -> Vec<String> {
        self.0.nodes.borrow().0.clone()
    }

    /// The current window (`Session`), or `null`. Its `key` is a secret.
    #[wasm_bindgen(unchecked_return_type = "Session | null")]
    pub fn session(&self) -> Result<JsValue, SdkError> {
        match &*self.0.session.borrow() {
            None => Ok(JsValue::NULL),
            Some(s) => json_to_js(&SessionJson {
                client: s.client.clone(),
                window: s.window.clone(),
                key: s.key.to_hex().to_string(),
                expires_at_ms: s.expires_at_ms,
            }),
        }
    }

    /// Uses an already opened window (e.g. kept in storage), or forgets it with `null`.
    #[wasm_bindgen(js_name = setSession)]
    pub fn set_session(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Session | null")] session: JsValue,
    ) -> Result<(), SdkError> {
        let s = if session.is_null() || session.is_undefined() {
            None
        } else {
            let j: SessionJson = parse_json("session", &session)?;
            Some(Session {
                client: j.client,
                window: j.window,
                key: WindowKey::from_hex(&j.key)?,
                expires_at_ms: j.expires_at_ms,
            })
        };
        *self.0.session.borrow_mut() = s;
        Ok(())
    }

    /// `GET /v1/cluster-key`: the cluster's X25519 public key, hex.
    #[wasm_bindgen(js_name = clusterKey, unchecked_return_type = "Promise<string>")]
    pub fn cluster_key(&self) -> js_sys::Promise {
        let inner = self.0.clone();
        promise(async move {
            let key = inner.cluster_key().await?;
            Ok(JsValue::from_str(&key.to_hex()))
        })
    }

    /// `POST /admin/clients` (admin token): enrolls a client's identity public key (hex).
    #[wasm_bindgen(js_name = registerClient, unchecked_return_type = "Promise<RegisterClientResponse>")]
    pub fn register_client(&self, client: String, public_key_hex: String) -> js_sys::Promise {
        let inner = self.0.clone();
        promise(async move {
            let public = crate::auth::IdentityPublicKey::from_hex(&public_key_hex)?;
            let body = RegisterClientRequest {
                client: client_id(&client)?,
                public_key: Hex(public.to_bytes()),
            };
            let r: RegisterClientResponse = inner
                .call("POST", routes::ADMIN_CLIENTS, Some(&body), Auth::Admin, &[])
                .await?;
            json_to_js(&r)
        })
    }

    /// Opens a trust window with a fresh random window id and X25519 secret, and makes it the
    /// current session (answered).
    #[wasm_bindgen(js_name = openWindow, unchecked_return_type = "Promise<Session>")]
    pub fn open_window(
        &self,
        identity: &IdentityKey,
        client: String,
        ttl_ms: f64,
    ) -> js_sys::Promise {
        let inner = self.0.clone();
        let identity = identity.0.clone();
        promise(async move {
            let client = client_id(&client)?;
            let ttl_ms = to_u64("ttlMs", ttl_ms)?;
            let window = window_id(&random_id("w")?)?;
            let seed = random_bytes::<32>()?;
            let cluster = inner.cluster_key().await?;
            let secret = WindowSecret::from_seed(&seed);
            let body: OpenWindowRequest = OpenWindow {
                cluster,
                client: client.clone(),
                window: window.clone(),
                window_public_key: secret.public(),
                ttl_ms,
                timestamp_ms: now_ms(),
            }
            .sign(&identity);
            let key = derive_window_key_client(&secret, &cluster, &window)?;
            let r: OpenWindowResponse = inner
                .call("POST", routes::WINDOWS, Some(&body), Auth::None, &[])
                .await?;
            // The key is bound to the id we asked for; a server naming another window is broken.
            if r.window != window {
                return Err(SdkError::Json(format!(
                    "asked to open window {window}, the server answered {}",
                    r.window
                )));
            }
            let session = Session {
                client,
                window: r.window,
                key,
                expires_at_ms: r.expires_at_ms,
            };
            *inner.session.borrow_mut() = Some(session.clone());
            json_to_js(&SessionJson {
                client: session.client,
                window: session.window,
                key: session.key.to_hex().to_string(),
                expires_at_ms: session.expires_at_ms,
            })
        })
    }

    /// `DELETE /v1/windows/{id}`: closes the current window and forgets it.
    #[wasm_bindgen(js_name = closeWindow, unchecked_return_type = "Promise<void>")]
    pub fn close_window(&self) -> js_sys::Promise {
        let inner = self.0.clone();
        promise(async move {
            let s = inner.session.borrow().clone().ok_or(SdkError::NoSession)?;
            let _: serde_json::Value = inner
                .call(
                    "DELETE",
                    &routes::window(&s.window),
                    None::<&()>,
                    Auth::Window,
                    &[],
                )
                .await?;
            *inner.session.borrow_mut() = None;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// `POST /v1/entities`.
    #[wasm_bindgen(unchecked_return_type = "Promise<EntityWritten>")]
    pub fn register(
        &self,
        #[wasm_bindgen(unchecked_param_type = "RegisterRequest")] req: JsValue,
    ) -> js_sys::Promise {
        let inner = self.0.clone();
        promise(async move {
            let req: RegisterRequest = parse_json("register request", &req)?;
            let r: EntityWritten = inner
                .call("POST", routes::ENTITIES, Some(&req), Auth::Window, &[])
                .await?;
            json_to_js(&r)
        })
    }

    /// `GET /v1/entities/{id}` (`allowDrift`: see drifted modalities instead of `drift_detected`).
    #[wasm_bindgen(unchecked_return_type = "Promise<EntityView>")]
    pub fn get(&self, id: String, allow_drift: Option<bool>) -> js_sys::Promise {
        let inner = self.0.clone();
        promise(async move {
            let mut path = routes::entity(&entity_id(&id)?);
            if allow_drift == Some(true) {
                path.push_str("?allow_drift=true");
            }
            let r: EntityView = inner
                .call("GET", &path, None::<&()>, Auth::Window, &[])
                .await?;
            json_to_js(&r)
        })
    }

    /// `PUT /v1/entities/{id}` with `If-Match: <expectedVersion>`.
    #[wasm_bindgen(unchecked_return_type = "Promise<EntityWritten>")]
    pub fn update(
        &self,
        id: String,
        #[wasm_bindgen(unchecked_param_type = "UpdateRequest")] req: JsValue,
        expected_version: f64,
    ) -> js_sys::Promise {
        let inner = self.0.clone();
        promise(async move {
            let id = entity_id(&id)?;
            let req: UpdateRequest = parse_json("update request", &req)?;
            let v = to_u64("expectedVersion", expected_version)?.to_string();
            let r: EntityWritten = inner
                .call(
                    "PUT",
                    &routes::entity(&id),
                    Some(&req),
                    Auth::Window,
                    &[(headers::IF_MATCH, &v)],
                )
                .await?;
            json_to_js(&r)
        })
    }

    /// `DELETE /v1/entities/{id}`, with `If-Match` when a version is expected.
    #[wasm_bindgen(unchecked_return_type = "Promise<EntityDeleted>")]
    pub fn delete(&self, id: String, expected_version: Option<f64>) -> js_sys::Promise {
        let inner = self.0.clone();
        promise(async move {
            let id = entity_id(&id)?;
            let v = expected_version
                .map(|v| to_u64("expectedVersion", v).map(|v| v.to_string()))
                .transpose()?;
            let extra: Vec<(&str, &str)> = v
                .as_deref()
                .map(|v| vec![(headers::IF_MATCH, v)])
                .unwrap_or_default();
            let r: EntityDeleted = inner
                .call(
                    "DELETE",
                    &routes::entity(&id),
                    None::<&()>,
                    Auth::Window,
                    &extra,
                )
                .await?;
            json_to_js(&r)
        })
    }

    /// `POST /v1/search/vector`.
    #[wasm_bindgen(js_name = searchVector, unchecked_return_type = "Promise<VectorSearchResponse>")]
    pub fn search_vector(
        &self,
        #[wasm_bindgen(unchecked_param_type = "VectorSearchRequest")] req: JsValue,
    ) -> js_sys::Promise {
        let inner = self.0.clone();
        promise(async move {
            let req: VectorSearchRequest = parse_json("vector search request", &req)?;
            let r: VectorSearchResponse = inner
                .call("POST", routes::SEARCH_VECTOR, Some(&req), Auth::Window, &[])
                .await?;
            json_to_js(&r)
        })
    }

    /// Any signed request in the current window (graph, tensor and semantic routes, grants):
    /// `body` is sent as is (a string or bytes; JSON gets `Content-Type: application/json`),
    /// `ifMatch` sent and signed when given. Answers the status, node and parsed JSON body of a
    /// 2xx; throws a `VerisimError` otherwise.
    #[wasm_bindgen(js_name = sendSigned, unchecked_return_type = "Promise<RawResponse>")]
    pub fn send_signed(
        &self,
        method: String,
        path: String,
        body: Option<BodyArg>,
        if_match: Option<String>,
    ) -> js_sys::Promise {
        let inner = self.0.clone();
        promise(async move {
            let body = body_bytes(&body.map_or(JsValue::UNDEFINED, JsValue::from))?;
            let extra: Vec<(&str, &str)> = if_match
                .as_deref()
                .map(|v| vec![(headers::IF_MATCH, v)])
                .unwrap_or_default();
            let raw = inner
                .execute(
                    &method,
                    &path,
                    &body,
                    Auth::Window,
                    &extra,
                    &random_request_id()?,
                )
                .await?;
            raw_to_js(&raw)
        })
    }

    /// Any admin route (`/admin/...`) with the admin token; `body` is a JSON-able value.
    #[wasm_bindgen(unchecked_return_type = "Promise<RawResponse>")]
    pub fn admin(&self, method: String, path: String, body: Option<JsonArg>) -> js_sys::Promise {
        let inner = self.0.clone();
        promise(async move {
            let bytes = if let Some(body) = body {
                js_sys::JSON::stringify(&body)
                    .map_err(|e| SdkError::Json(describe(&e)))?
                    .as_string()
                    .ok_or_else(|| SdkError::Json("the admin body is not JSON".into()))?
                    .into_bytes()
            } else {
                Vec::new()
            };
            let raw = inner
                .execute(
                    &method,
                    &path,
                    &bytes,
                    Auth::Admin,
                    &[],
                    &random_request_id()?,
                )
                .await?;
            raw_to_js(&raw)
        })
    }
}

fn random_request_id() -> Result<RequestId, SdkError> {
    RequestId::new(random_id("r")?).map_err(|e| SdkError::Config(e.to_string()))
}

fn raw_to_js(raw: &Raw) -> Result<JsValue, SdkError> {
    let out = js_sys::Object::new();
    let body = if raw.body.is_empty() {
        JsValue::NULL
    } else {
        let text = std::str::from_utf8(&raw.body)
            .map_err(|e| SdkError::Json(format!("{} answered a non-UTF-8 body: {e}", raw.node)))?;
        js_sys::JSON::parse(text).map_err(|e| SdkError::Json(describe(&e)))?
    };
    for (k, v) in [
        ("status", JsValue::from_f64(f64::from(raw.status))),
        ("node", JsValue::from_str(&raw.node)),
        ("body", body),
    ] {
        // Setting a property on a fresh object cannot fail.
        let _ = js_sys::Reflect::set(&out, &JsValue::from_str(k), &v);
    }
    Ok(out.into())
}

/// One attempt's outcome.
enum Attempt {
    /// The request may not have reached the node (network failure, timeout): try the next one.
    Transient(String),
    /// An answer.
    Answer {
        status: u16,
        leader: Option<String>,
        retry_after_ms: Option<f64>,
        body: Vec<u8>,
    },
}

impl Inner {
    async fn cluster_key(&self) -> Result<ClusterPublicKey, SdkError> {
        let r: ClusterKeyResponse = self
            .call("GET", routes::CLUSTER_KEY, None::<&()>, Auth::None, &[])
            .await?;
        Ok(ClusterPublicKey(r.public_key.0))
    }

    async fn call<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&B>,
        auth: Auth,
        extra: &[(&str, &str)],
    ) -> Result<R, SdkError> {
        let bytes = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| SdkError::Json(e.to_string()))?,
            None => Vec::new(),
        };
        let raw = self
            .execute(method, path, &bytes, auth, extra, &random_request_id()?)
            .await?;
        serde_json::from_slice(&raw.body).map_err(|e| {
            SdkError::Json(format!(
                "{} answered {} with an unexpected body: {e}",
                raw.node, raw.status
            ))
        })
    }

    async fn execute(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        auth: Auth,
        extra: &[(&str, &str)],
        request_id: &RequestId,
    ) -> Result<Raw, SdkError> {
        let session = match auth {
            Auth::Window => Some(self.session.borrow().clone().ok_or(SdkError::NoSession)?),
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
        let mut last: Option<SdkError> = None;
        for attempt in 0..self.policy.max_attempts.max(1) {
            let node = self.current_node();
            let h = web_sys::Headers::new().map_err(|e| SdkError::Config(describe(&e)))?;
            let set = |k: &str, v: &str| {
                h.set(k, v)
                    .map_err(|e| SdkError::Config(format!("header {k}: {}", describe(&e))))
            };
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
                set(k, &v)?;
            }
            match self.attempt(&node, method, path, &h, body).await? {
                Attempt::Transient(reason) => {
                    last = Some(SdkError::Transport {
                        node: node.clone(),
                        reason,
                    });
                    self.advance(&node);
                    sleep(self.policy.backoff_ms(attempt)).await;
                }
                Attempt::Answer {
                    status,
                    leader,
                    retry_after_ms,
                    body,
                } => {
                    if (200..300).contains(&status) {
                        return Ok(Raw { status, body, node });
                    }
                    let err = SdkError::from_response(&node, status, &body);
                    if status != 503 {
                        return Err(err);
                    }
                    last = Some(err);
                    let followed = leader.as_deref().is_some_and(|l| self.follow_leader(l));
                    if !followed {
                        self.advance(&node);
                    }
                    sleep(match retry_after_ms {
                        Some(ms) => ms.min(self.policy.max_retry_after_ms),
                        None => self.policy.backoff_ms(attempt),
                    })
                    .await;
                }
            }
        }
        Err(last.unwrap_or_else(|| SdkError::Config("no attempt was made".into())))
    }

    /// One `fetch`, its body read whole.
    async fn attempt(
        &self,
        node: &str,
        method: &str,
        path: &str,
        headers: &web_sys::Headers,
        body: &[u8],
    ) -> Result<Attempt, SdkError> {
        let init = web_sys::RequestInit::new();
        init.set_method(method);
        init.set_headers(headers);
        if !body.is_empty() {
            init.set_body(&js_sys::Uint8Array::from(body));
        }
        if let Ok(signal) = abort_after(self.policy.request_timeout_ms) {
            init.set_signal(Some(&signal));
        }
        let url = format!("{node}{path}");
        let request = web_sys::Request::new_with_str_and_init(&url, &init).map_err(|e| {
            SdkError::Config(format!("cannot build a request to {url}: {}", describe(&e)))
        })?;
        let promise = match global_fetch(&request) {
            Ok(p) => p,
            Err(e) => {
                return Err(SdkError::Config(format!(
                    "the global fetch is unavailable: {}",
                    describe(&e)
                )));
            }
        };
        // A rejected fetch is a network failure or the timeout: the request may not have arrived.
        let resp: web_sys::Response = match JsFuture::from(promise).await {
            Ok(r) => r.dyn_into().map_err(|_| {
                SdkError::Config("fetch answered something else than a Response".into())
            })?,
            Err(e) => return Ok(Attempt::Transient(describe(&e))),
        };
        let status = resp.status();
        let header = |name: &str| resp.headers().get(name).ok().flatten();
        let leader = header(headers::LEADER);
        let retry_after_ms = header(headers::RETRY_AFTER)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .map(|s| f64::from(s) * 1000.0);
        let buf = match resp.array_buffer() {
            Ok(p) => match JsFuture::from(p).await {
                Ok(b) => b,
                Err(e) => {
                    return Ok(Attempt::Transient(format!(
                        "reading the response: {}",
                        describe(&e)
                    )));
                }
            },
            Err(e) => {
                return Ok(Attempt::Transient(format!(
                    "reading the response: {}",
                    describe(&e)
                )));
            }
        };
        Ok(Attempt::Answer {
            status,
            leader,
            retry_after_ms,
            body: js_sys::Uint8Array::new(&buf).to_vec(),
        })
    }

    fn current_node(&self) -> String {
        let n = self.nodes.borrow();
        n.0[n.1 % n.0.len()].clone()
    }

    /// Moves to the node after `failed` (unless another call already moved on).
    fn advance(&self, failed: &str) {
        let mut n = self.nodes.borrow_mut();
        let len = n.0.len();
        if n.0[n.1 % len] == failed {
            n.1 = (n.1 + 1) % len;
        }
    }

    /// Makes the hinted leader the current node, adding it if unknown. False if the hint is not
    /// an address.
    fn follow_leader(&self, hint: &str) -> bool {
        let Ok(url) = normalise(hint) else {
            return false;
        };
        let mut n = self.nodes.borrow_mut();
        let i = match n.0.iter().position(|u| *u == url) {
            Some(i) => i,
            None => {
                n.0.push(url);
                n.0.len() - 1
            }
        };
        n.1 = i;
        true
    }
}
