//! The node's HTTP server (admin API and proxy on one listener): a tokio accept loop serving hyper
//! HTTP/1.1 and HTTP/2 connections under the limits a client on the network could otherwise exhaust.
//!
//! - **Protocols**: each connection is HTTP/1.1 or HTTP/2, told apart by its first bytes (the
//!   HTTP/2 preface; over TLS, ALPN offers `h2` and `http/1.1`). HTTP/2 lets one connection carry
//!   many requests at once (`http.max_streams_per_connection` of them), which is how a client keeps
//!   many requests in flight without a connection each.
//!
//! - **Connection caps** (`http.max_connections`, `http.max_connections_per_ip`): a connection over
//!   either cap is closed as soon as it is accepted, before a byte of it is read.
//! - **Header-read deadline**: a request head (the first one from accept, or a later one from its
//!   first byte) must be complete within `http.header_read_timeout_ms`, however slowly it trickles.
//! - **Body deadline**: a request's whole body must arrive within `http.body_timeout_ms` of its
//!   head; otherwise the request is answered `408 request_timeout` and the connection closed.
//! - **Idle deadline**: between requests, a connection where no byte moves (in either direction,
//!   so a client that stops reading its response counts too) for `http.idle_timeout_ms` is closed.
//!
//! Each connection's deadlines are kept by its own task from what its socket and its requests do
//! ([`Activity`]); hyper's own header timer is off because it also runs while a kept-alive
//! connection waits for its next request, which would make the idle deadline meaningless.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use hyper::body::Incoming;
use hyper::service::Service as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, warn};
use verisim_client::wire::{ErrorBody, ErrorCode};

use super::admin::metrics::{ConnectionMetrics, Deadline, Refused};
use super::config::HttpSettings;
use crate::proxy::body::BodyDeadlineExceeded;

/// How long the accept loop pauses after an accept error (e.g. out of file descriptors), so that
/// it does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `app` on `listener` until `stop` turns true, then lets every open connection finish its
/// request in flight (deadlines still apply) and returns once all are closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: HttpSettings,
    tls: Option<TlsAcceptor>,
    metrics: ConnectionMetrics,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Slots::new(
        settings.max_connections,
        settings.max_connections_per_ip,
        metrics.clone(),
    );
    let http = protocols(&settings);
    let mut tasks = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            () = stopped(&mut stop) => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "accepting an HTTP connection failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let slot = match slots.acquire(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                metrics.refused(why);
                debug!(%peer, ?why, "HTTP connection over the cap, closed");
                drop(stream);
                continue;
            }
        };
        let conn = Connection {
            http: http.clone(),
            tls: tls.clone(),
            app: app.clone(),
            settings: settings.clone(),
            metrics: metrics.clone(),
            stop: stop.clone(),
        };
        tasks.spawn(conn.run(stream, peer, slot));
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
}

/// The HTTP/1.1 and HTTP/2 connection settings.
fn protocols(settings: &HttpSettings) -> auto::Builder<TokioExecutor> {
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None);
    // HTTP/2's own bounds on what a peer may hold before it is authenticated: streams in progress,
    // the size of a header block. Stream resets without a request (the "rapid reset" flood) are
    // bounded by h2's defaults.
    http.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(settings.max_streams_per_connection)
        .max_header_list_size(MAX_HEADER_LIST_BYTES);
    http
}

/// The largest HTTP/2 header block a request may send (hyper's HTTP/1.1 head limit is about as large).
const MAX_HEADER_LIST_BYTES: u32 = 64 * 1024;

/// What one connection's task needs.
struct Connection {
    http: auto::Builder<TokioExecutor>,
    /// `[http.tls]`: the handshake comes first, within the header-read deadline.
    tls: Option<TlsAcceptor>,
    app: Router,
    settings: HttpSettings,
    metrics: ConnectionMetrics,
    stop: watch::Receiver<bool>,
}

impl Connection {
    async fn run(mut self, stream: TcpStream, peer: SocketAddr, slot: Slot) {
        let activity = Arc::new(Activity::new(Instant::now()));
        let tracked = Tracked {
            slot: Some(slot),
            inner: stream,
            activity: activity.clone(),
        };
        let stream: Box<dyn Stream> = match &self.tls {
            None => Box::new(tracked),
            // The handshake is part of what must arrive before the first request head: a client
            // trickling its ClientHello is cut off at the same deadline as one trickling a head.
            Some(acceptor) => {
                let header = self.settings.header_read_timeout();
                match tokio::time::timeout(header, acceptor.accept(tracked)).await {
                    Ok(Ok(tls)) => Box::new(tls),
                    Ok(Err(e)) => {
                        debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        self.metrics.deadline(Deadline::Header);
                        debug!(%peer, "TLS handshake cut off by the header-read deadline");
                        return;
                    }
                }
            }
        };
        let io = TokioIo::new(stream);
        let router = TowerToHyperService::new(self.app);
        let in_service = activity.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let busy = Busy::start(in_service.clone());
            let answer = router.call(req);
            async move {
                let r = answer.await;
                drop(busy);
                r
            }
        });
        let conn = self.http.serve_connection(io, service);
        tokio::pin!(conn);
        let mut stopping = false;
        let limits = Limits {
            header: self.settings.header_read_timeout(),
            idle: self.settings.idle_timeout(),
        };
        loop {
            let due = activity.due(&limits);
            tokio::select! {
                served = conn.as_mut() => {
                    if let Err(e) = served {
                        debug!(%peer, error = %e, "HTTP connection ended with an error");
                    }
                    return;
                }
                () = stopped(&mut self.stop), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
                // The deadline moved (a request began or ended, a head began): compute it anew.
                () = activity.changed.notified() => {}
                () = sleep_until(due.map(|(at, _)| at)) => {
                    if let Some((_, which)) = activity.expired(&limits, Instant::now()) {
                        self.metrics.deadline(which);
                        debug!(%peer, ?which, "HTTP connection closed by a deadline");
                        return;
                    }
                }
            }
        }
    }
}

/// A connection's byte stream: the TCP socket, or TLS over it.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Resolves once the server is told to stop (or the node that would tell it is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The connection deadlines [`Activity`] is checked against.
struct Limits {
    header: Duration,
    idle: Duration,
}

/// Where a connection is in its request cycle, as seen from its socket and its service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// A request head is expected or arriving, since `since`.
    Head { since: Instant },
    /// `n` requests are being served (head parsed, handler running); the body deadline is the
    /// request's own, the handler's waits are bounded by their own timeouts.
    Busy { n: usize },
    /// Between requests: the last answer is out (or being written).
    Waiting,
}

/// One connection's phase and its last byte moved, updated by [`Tracked`] and [`Busy`].
#[derive(Debug)]
struct Activity {
    state: Mutex<(Phase, Instant)>,
    /// Signalled when the phase changes, so the connection's task computes its deadline anew.
    changed: Notify,
}

impl Activity {
    /// A new connection: its first request head is due from now.
    fn new(now: Instant) -> Self {
        Self {
            state: Mutex::new((Phase::Head { since: now }, now)),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Phase, Instant)> {
        // Only this module's short, panic-free updates hold it: a poisoned lock keeps valid data.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes arrived: between requests, they start the next request's head.
    fn read(&self, now: Instant) {
        let mut s = self.lock();
        s.1 = now;
        if s.0 == Phase::Waiting {
            s.0 = Phase::Head { since: now };
            drop(s);
            self.changed.notify_one();
        }
    }

    fn wrote(&self, now: Instant) {
        self.lock().1 = now;
    }

    /// A request head was parsed and handed to the service.
    fn begin(&self) {
        let mut s = self.lock();
        s.0 = match s.0 {
            Phase::Busy { n } => Phase::Busy { n: n + 1 },
            _ => Phase::Busy { n: 1 },
        };
        drop(s);
        self.changed.notify_one();
    }

    /// The service answered a request.
    fn end(&self, now: Instant) {
        let mut s = self.lock();
        s.0 = match s.0 {
            Phase::Busy { n } if n > 1 => Phase::Busy { n: n - 1 },
            _ => Phase::Waiting,
        };
        s.1 = now;
        drop(s);
        self.changed.notify_one();
    }

    /// When the current phase's deadline falls, and which it is (none while a request is served).
    fn due(&self, limits: &Limits) -> Option<(Instant, Deadline)> {
        let (phase, last) = *self.lock();
        match phase {
            Phase::Head { since } => Some((since + limits.header, Deadline::Header)),
            Phase::Busy { .. } => None,
            Phase::Waiting => Some((last + limits.idle, Deadline::Idle)),
        }
    }

    /// The deadline that has passed at `now`, if any.
    fn expired(&self, limits: &Limits, now: Instant) -> Option<(Instant, Deadline)> {
        self.due(limits).filter(|(at, _)| *at <= now)
    }
}

/// Marks a request in service for as long as it lives (also if its future is dropped).
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: Arc<Activity>) -> Self {
        activity.begin();
        Self(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.end(Instant::now());
    }
}

/// The socket, reporting every byte moved to the connection's [`Activity`]. It holds the
/// connection's [`Slot`] and gives it back before the socket closes (at shutdown, or dropped
/// first: fields drop in order), so a client that has seen its connection end can count on its
/// slot being free again.
struct Tracked {
    slot: Option<Slot>,
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.read(Instant::now());
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.wrote(Instant::now());
        }
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.wrote(Instant::now());
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.slot = None;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// Counts open connections, per node and per peer IP, against the caps.
#[derive(Clone)]
struct Slots {
    inner: Arc<Mutex<SlotCounts>>,
    max: usize,
    per_ip: usize,
    metrics: ConnectionMetrics,
}

#[derive(Default)]
struct SlotCounts {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

impl Slots {
    fn new(max: usize, per_ip: usize, metrics: ConnectionMetrics) -> Self {
        Self {
            inner: Arc::default(),
            max,
            per_ip,
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotCounts> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a connection from `ip`, or which cap it is over. An IPv4 peer seen through an
    /// IPv6 listener (`::ffff:a.b.c.d`) counts as that IPv4 address.
    fn acquire(&self, ip: IpAddr) -> Result<Slot, Refused> {
        let ip = ip.to_canonical();
        let mut c = self.lock();
        if c.total >= self.max {
            return Err(Refused::NodeCap);
        }
        let mine = c.by_ip.entry(ip).or_default();
        if *mine >= self.per_ip {
            return Err(Refused::PeerCap);
        }
        *mine += 1;
        c.total += 1;
        self.metrics.opened();
        Ok(Slot {
            slots: self.clone(),
            ip,
        })
    }
}

/// One open connection's place under the caps, given back when dropped.
struct Slot {
    slots: Slots,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.slots.lock();
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.by_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.by_ip.remove(&self.ip);
            }
        }
        self.slots.metrics.closed();
    }
}

/// The state of the [`body_deadline`] middleware.
#[derive(Clone)]
pub struct BodyDeadline {
    pub timeout: Duration,
    pub metrics: ConnectionMetrics,
}

/// Middleware: the request's body must arrive within the deadline, counted from here (the head has
/// been read). Past it the body yields [`BodyDeadlineExceeded`], and whatever the handler answered
/// is replaced by `408 request_timeout` with `Connection: close` (the rest of the body is never
/// read, so the connection cannot serve another request).
pub async fn body_deadline(State(d): State<BodyDeadline>, req: Request, next: Next) -> Response {
    let at = Instant::now() + d.timeout;
    let fired = Arc::new(AtomicBool::new(false));
    let req = req.map(|body| {
        let fired = fired.clone();
        let timeout = d.timeout;
        let stream = futures::stream::unfold(Some(body.into_data_stream()), move |stream| {
            let fired = fired.clone();
            async move {
                let mut stream = stream?;
                match tokio::time::timeout_at(at, stream.next()).await {
                    Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(stream))),
                    Ok(Some(Err(e))) => Some((Err(axum::BoxError::from(e)), None)),
                    Ok(None) => None,
                    Err(_) => {
                        fired.store(true, Ordering::Relaxed);
                        let e = axum::BoxError::from(BodyDeadlineExceeded(timeout));
                        Some((Err(e), None))
                    }
                }
            }
        });
        Body::from_stream(stream)
    });
    let resp = next.run(req).await;
    if !fired.load(Ordering::Relaxed) {
        return resp;
    }
    d.metrics.deadline(Deadline::Body);
    request_timeout(d.timeout)
}

/// `408 request_timeout`, closing the connection.
fn request_timeout(timeout: Duration) -> Response {
    let body = ErrorBody::new(
        ErrorCode::RequestTimeout,
        BodyDeadlineExceeded(timeout).to_string(),
    );
    let mut r = (StatusCode::REQUEST_TIMEOUT, axum::Json(body)).into_response();
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

#[cfg(test)]
mod http2_tests;

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn limits() -> Limits {
        Limits {
            header: 100 * MS,
            idle: 1000 * MS,
        }
    }

    #[test]
    fn a_new_connection_owes_its_head_from_accept_however_slowly_it_trickles() {
        let t0 = Instant::now();
        let a = Activity::new(t0);
        for i in 1..=99 {
            a.read(t0 + i * MS);
        }
        assert_eq!(a.expired(&limits(), t0 + 99 * MS), None);
        assert_eq!(
            a.expired(&limits(), t0 + 100 * MS),
            Some((t0 + 100 * MS, Deadline::Header))
        );
    }

    #[test]
    fn a_request_in_service_has_no_connection_deadline_and_then_the_idle_one_runs() {
        let t0 = Instant::now();
        let a = Activity::new(t0);
        a.read(t0 + MS);
        a.begin();
        assert_eq!(a.due(&limits()), None, "the handler's own waits bound it");
        a.end(t0 + 5000 * MS);
        a.wrote(t0 + 5001 * MS);
        assert_eq!(
            a.due(&limits()),
            Some((t0 + 6001 * MS, Deadline::Idle)),
            "idle counts from the last byte of the answer"
        );
        // The next request's first byte starts its header deadline.
        a.read(t0 + 5500 * MS);
        assert_eq!(a.due(&limits()), Some((t0 + 5600 * MS, Deadline::Header)));
    }

    #[test]
    fn a_connection_counts_as_busy_until_every_request_it_has_in_service_is_answered() {
        let t0 = Instant::now();
        let a = Activity::new(t0);
        a.begin();
        a.begin();
        a.end(t0 + MS);
        assert_eq!(a.due(&limits()), None);
        a.end(t0 + 2 * MS);
        assert_eq!(a.due(&limits()), Some((t0 + 1002 * MS, Deadline::Idle)));
    }

    #[test]
    fn the_caps_refuse_over_the_node_total_and_over_one_ip_and_free_their_slots_on_drop() {
        let m = ConnectionMetrics::default();
        let slots = Slots::new(3, 2, m.clone());
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let a1 = slots.acquire(a).unwrap();
        let _a2 = slots.acquire(a).unwrap();
        assert_eq!(slots.acquire(mapped).err(), Some(Refused::PeerCap));
        let _b1 = slots.acquire(b).unwrap();
        assert_eq!(m.open(), 3);
        assert_eq!(slots.acquire(b).err(), Some(Refused::NodeCap));
        drop(a1);
        assert_eq!(m.open(), 2);
        let _a3 = slots.acquire(a).unwrap();
        assert_eq!(slots.lock().by_ip[&a], 2);
        assert_eq!(slots.lock().total, 3);
    }

    /// A JSON body that starts and never finishes.
    fn stalled_body() -> Body {
        let start = futures::stream::iter([Ok::<_, io::Error>(axum::body::Bytes::from_static(
            b"{\"a\": ",
        ))]);
        Body::from_stream(start.chain(futures::stream::pending()))
    }

    #[tokio::test]
    async fn a_body_that_stops_arriving_is_answered_408_on_a_read_body_route_and_a_json_route() {
        use axum::routing::post;
        let m = ConnectionMetrics::default();
        let app = Router::new()
            .route(
                "/raw",
                post(|req: Request| async move {
                    match crate::proxy::read_body(req, 1024).await {
                        Ok(_) => StatusCode::OK.into_response(),
                        Err(e) => e.into_response(),
                    }
                }),
            )
            .route(
                "/json",
                post(|axum::Json(v): axum::Json<serde_json::Value>| async move { axum::Json(v) }),
            )
            .layer(axum::middleware::from_fn_with_state(
                BodyDeadline {
                    timeout: 50 * MS,
                    metrics: m.clone(),
                },
                body_deadline,
            ));
        for path in ["/raw", "/json"] {
            let req = Request::post(path)
                .header("content-type", "application/json")
                .body(stalled_body())
                .unwrap();
            let resp = TowerToHyperService::new(app.clone())
                .call(req)
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT, "{path}");
            assert_eq!(resp.headers()[header::CONNECTION], "close", "{path}");
            let bytes = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap()
                .to_bytes();
            let body: ErrorBody = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(body.code, ErrorCode::RequestTimeout, "{path}");
        }
        // A body that arrives in time is untouched.
        let req = Request::post("/json")
            .header("content-type", "application/json")
            .body(Body::from("{\"a\": 1}"))
            .unwrap();
        let resp = TowerToHyperService::new(app).call(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(m.closed_by(Deadline::Body), 2);
    }

    #[tokio::test]
    async fn read_body_answers_the_deadline_as_request_timeout_not_as_bad_json() {
        let failing =
            futures::stream::iter([Err::<axum::body::Bytes, _>(BodyDeadlineExceeded(MS))]);
        let req = Request::post("/").body(Body::from_stream(failing)).unwrap();
        let err = crate::proxy::read_body(req, 1024).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::RequestTimeout);
        let reset = futures::stream::iter([Err::<axum::body::Bytes, _>(io::Error::other("reset"))]);
        let req = Request::post("/").body(Body::from_stream(reset)).unwrap();
        let err = crate::proxy::read_body(req, 1024).await.unwrap_err();
        assert_eq!(err.code, ErrorCode::MalformedJson);
    }

    #[test]
    fn the_deadline_error_is_found_through_the_errors_wrapping_it() {
        let inner = axum::Error::new(BodyDeadlineExceeded(MS));
        assert!(BodyDeadlineExceeded::is(&inner));
        let other = axum::Error::new(io::Error::other("reset"));
        assert!(!BodyDeadlineExceeded::is(&other));
    }
}
