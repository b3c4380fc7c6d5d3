//! An async client that keeps many requests in flight on one HTTP/2 connection to one node
//! (feature `http2`).
//!
//! [`super::Client`] sends one request at a time per connection (HTTP/1.1) and fails over between
//! nodes; a program that wants throughput from one node (a loader, a gateway in front of many
//! users, the benchmarks) shares one [`MultiplexClient`] between many tokio tasks instead: each call
//! is an HTTP/2 stream of the same connection, signed exactly as [`super::Client`] signs it (one
//! place: `crate::outgoing`). A node serves at most `http.max_streams_per_connection` streams of a
//! connection at once; further calls wait for a free stream.
//!
//! What it does not do, so a caller knows what to build around it: no retries and no failover
//! (an error is the node's answer or the connection's failure, as is; a caller retries with the
//! same request id through [`MultiplexClient::send`]); cleartext HTTP/2 only (`http://`, the
//! HTTP/2 preface with prior knowledge): an `https://` node is refused at [`MultiplexClient::connect`].

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;

use super::{Auth, ClientError, MAX_RESPONSE_BYTES, RawResponse, Session, normalise};
use super::{now_ms, random_request_id};
use crate::outgoing;
use crate::wire::{EntityWritten, RegisterRequest, RequestId, routes};

/// How long [`MultiplexClient::connect`] waits for the TCP connection and the HTTP/2 handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP/2 connection to one node, shared by every clone (a clone is a handle, not a new
/// connection). The connection closes when the last clone is dropped.
#[derive(Clone)]
pub struct MultiplexClient {
    /// `http://host:port`, as errors name it.
    node: String,
    sender: SendRequest<Full<Bytes>>,
    session: Option<Session>,
    admin_token: Option<String>,
}

impl std::fmt::Debug for MultiplexClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiplexClient")
            .field("node", &self.node)
            .field("session", &self.session.as_ref().map(|s| &s.window))
            .finish_non_exhaustive()
    }
}

impl MultiplexClient {
    /// Opens an HTTP/2 connection to `node` (`host:port` or `http://host:port`). Must be called
    /// inside a tokio runtime, which then drives the connection.
    ///
    /// # Errors
    /// [`ClientError::Config`] for an address that is not one, or an `https://` node;
    /// [`ClientError::Transport`] if the node cannot be reached or does not speak HTTP/2.
    pub async fn connect(node: &str) -> Result<Self, ClientError> {
        let node = normalise(node)?;
        let Some(authority) = node.strip_prefix("http://") else {
            return Err(ClientError::Config(format!(
                "{node}: the multiplexed client speaks cleartext HTTP/2 only; use Client for https"
            )));
        };
        let transport = |reason: String| ClientError::Transport {
            node: node.clone(),
            reason,
        };
        let handshake = async {
            let tcp = TcpStream::connect(authority)
                .await
                .map_err(|e| transport(format!("connecting: {e}")))?;
            // Requests are small and answered at once: do not hold them back for coalescing.
            tcp.set_nodelay(true)
                .map_err(|e| transport(format!("TCP_NODELAY: {e}")))?;
            hyper::client::conn::http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .handshake(TokioIo::new(tcp))
                .await
                .map_err(|e| transport(format!("HTTP/2 handshake: {e}")))
        };
        let (sender, connection) = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
            .await
            .map_err(|_| transport(format!("no HTTP/2 connection within {CONNECT_TIMEOUT:?}")))??;
        let name = node.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(node = %name, error = %e, "HTTP/2 connection ended");
            }
        });
        Ok(Self {
            node,
            sender,
            session: None,
            admin_token: None,
        })
    }

    /// Signs calls in this trust window.
    #[must_use]
    pub fn with_session(mut self, session: Session) -> Self {
        self.session = Some(session);
        self
    }

    /// Sends `Authorization: Bearer <token>` on admin calls.
    #[must_use]
    pub fn with_admin_token(mut self, token: impl Into<String>) -> Self {
        self.admin_token = Some(token.into());
        self
    }

    /// The node this client is connected to.
    #[must_use]
    pub fn node(&self) -> &str {
        &self.node
    }

    /// `POST /v1/entities`, signed in the session's window.
    ///
    /// # Errors
    /// See [`ClientError`]; [`ClientError::NoSession`] without a session.
    pub async fn register(&self, req: &RegisterRequest) -> Result<EntityWritten, ClientError> {
        self.call("POST", routes::ENTITIES, Some(req), Auth::Window)
            .await
    }

    /// An admin call with a JSON body (or none), answered with JSON.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn admin<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&B>,
    ) -> Result<R, ClientError> {
        self.call(method, path, body, Auth::Admin).await
    }

    /// One signed call with a raw body and a caller-chosen request id (the id a retry must repeat
    /// so that the cluster answers it with the first attempt's outcome), answered with the raw
    /// body of a 2xx.
    ///
    /// # Errors
    /// See [`ClientError`]; a non-2xx answer is [`ClientError::Api`].
    pub async fn send_signed(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        extra: &[(&str, &str)],
        request_id: &RequestId,
    ) -> Result<RawResponse, ClientError> {
        let body = Bytes::copy_from_slice(body);
        self.execute(method, path, body, Auth::Window, extra, request_id)
            .await
    }

    async fn call<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&B>,
        auth: Auth,
    ) -> Result<R, ClientError> {
        let bytes = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| ClientError::Json(e.to_string()))?,
            None => Vec::new(),
        };
        let raw = self
            .execute(method, path, bytes.into(), auth, &[], &random_request_id())
            .await?;
        serde_json::from_slice(&raw.body).map_err(|e| {
            ClientError::Json(format!(
                "{} answered {} with an unexpected body: {e}",
                raw.node, raw.status
            ))
        })
    }

    async fn execute(
        &self,
        method: &str,
        path: &str,
        body: Bytes,
        auth: Auth,
        extra: &[(&str, &str)],
        request_id: &RequestId,
    ) -> Result<RawResponse, ClientError> {
        let signer = match auth {
            Auth::Window => {
                let s = self.session.as_ref().ok_or(ClientError::NoSession)?;
                Some(outgoing::Signer {
                    key: &s.key,
                    client: &s.client,
                    window: &s.window,
                })
            }
            Auth::None | Auth::Admin => None,
        };
        let covered = outgoing::covered(extra, &body);
        let admin_token = self.admin_token.as_deref().filter(|_| auth == Auth::Admin);
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.node));
        for (k, v) in outgoing::attempt_headers(
            method,
            path,
            &body,
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
            .body(Full::new(body))
            .map_err(|e| ClientError::Config(format!("cannot build the request: {e}")))?;
        let transport = |reason: String| ClientError::Transport {
            node: self.node.clone(),
            reason,
        };
        // Each call drives its own stream; the shared connection is a cheap handle.
        let mut sender = self.sender.clone();
        sender
            .ready()
            .await
            .map_err(|e| transport(format!("connection: {e}")))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| transport(format!("request: {e}")))?;
        let status = response.status().as_u16();
        let limit = usize::try_from(MAX_RESPONSE_BYTES).unwrap_or(usize::MAX);
        let bytes = Limited::new(response.into_body(), limit)
            .collect()
            .await
            .map_err(|e| transport(format!("reading the response: {e}")))?
            .to_bytes();
        if (200..300).contains(&status) {
            Ok(RawResponse {
                status,
                body: bytes.to_vec(),
                node: self.node.clone(),
            })
        } else {
            Err(ClientError::from_response(&self.node, status, &bytes))
        }
    }
}
