//! The client against scripted in-process HTTP servers: retries, failover, leader hints, error bodies,
//! and that every attempt is signed with the same request id and verifies on the server side.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::*;
use crate::auth::{CoveredHeaders, DEFAULT_SKEW_MS, SignedHeaders, WindowKey, verify_request};
use crate::wire::{ErrorCode, GraphPayload, ModalityHashes, SemanticPayload, TensorPayload};

#[derive(Clone, Debug)]
struct Recorded {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

type Reply = (u16, Vec<(String, String)>, String);

/// A server that answers `replies` in order (the last one repeats), one connection per request.
struct Scripted {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Recorded>>>,
    thread: Option<JoinHandle<()>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Scripted {
    fn start(replies: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                if stop2.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let Some(req) = read_request(&mut conn) else {
                    continue;
                };
                s2.lock().unwrap().push(req);
                let (status, headers, body) = replies[n.min(replies.len() - 1)].clone();
                let mut out = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\ncontent-type: application/json\r\nconnection: close\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&body);
                let _ = conn.write_all(out.as_bytes());
            }
        });
        Self {
            addr,
            seen,
            thread: Some(thread),
            stop,
        }
    }

    fn seen(&self) -> Vec<Recorded> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so the thread ends.
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_request(conn: &mut std::net::TcpStream) -> Option<Recorded> {
    conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Recorded {
        method,
        path,
        headers,
        body,
    })
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        max_retry_after: Duration::from_millis(5),
        request_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
    }
}

fn key() -> WindowKey {
    WindowKey::from_bytes([0x42; 32])
}

fn session() -> Session {
    Session {
        client: ClientId::new("alice").unwrap(),
        window: WindowId::new("w-1").unwrap(),
        key: key(),
        expires_at_ms: u64::MAX,
    }
}

fn client(nodes: &[String]) -> Client {
    Client::new(nodes)
        .unwrap()
        .with_policy(fast())
        .with_session(session())
}

fn register_request() -> RegisterRequest {
    RegisterRequest {
        id: EntityId::new("e1").unwrap(),
        graph: GraphPayload::default(),
        vector: crate::wire::VectorPayload {
            collection: "docs".into(),
            values: vec![1.0, 0.0],
        },
        tensor: TensorPayload {
            shape: vec![1],
            dtype: crate::wire::DType::F32,
            data: vec![crate::wire::Scalar::Float(1.0)],
        },
        semantic: SemanticPayload::default(),
    }
}

fn written() -> String {
    serde_json::to_string(&EntityWritten {
        id: EntityId::new("e1").unwrap(),
        version: 1,
        index: 7,
        hashes: ModalityHashes {
            graph: crate::wire::ContentHash([1; 32]),
            vector: crate::wire::ContentHash([2; 32]),
            tensor: crate::wire::ContentHash([3; 32]),
            semantic: crate::wire::ContentHash([4; 32]),
        },
    })
    .unwrap()
}

fn error(code: ErrorCode) -> String {
    serde_json::to_string(&crate::wire::ErrorBody::new(code, "scripted")).unwrap()
}

/// The server side of the signing scheme: parse the headers and verify the MAC.
fn verify(r: &Recorded) {
    let h = SignedHeaders::parse(|n| r.headers.get(n).map(String::as_bytes)).unwrap();
    let covered = CoveredHeaders::from_request(|n| r.headers.get(n).map(String::as_bytes)).unwrap();
    verify_request(
        &key(),
        &h,
        &r.method,
        &r.path,
        &covered,
        &r.body,
        now_ms(),
        DEFAULT_SKEW_MS,
    )
    .unwrap();
}

#[test]
fn a_503_moves_to_the_next_node_keeping_the_request_id() {
    let a = Scripted::start(vec![(
        503,
        vec![("retry-after".into(), "0".into())],
        error(ErrorCode::NoQuorum),
    )]);
    let b = Scripted::start(vec![(201, vec![], written())]);
    let c = client(&[a.addr.to_string(), b.addr.to_string()]);
    let w = c.register(&register_request()).unwrap();
    assert_eq!(w.index, 7);
    let (sa, sb) = (a.seen(), b.seen());
    assert_eq!((sa.len(), sb.len()), (1, 1));
    assert_eq!(
        sa[0].headers["x-verisim-request-id"],
        sb[0].headers["x-verisim-request-id"]
    );
    assert_eq!(sb[0].method, "POST");
    assert_eq!(sb[0].path, "/v1/entities");
    verify(&sa[0]);
    verify(&sb[0]);
    let body: RegisterRequest = serde_json::from_slice(&sb[0].body).unwrap();
    assert_eq!(body, register_request());
}

#[test]
fn a_refused_connection_moves_to_the_next_node() {
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let b = Scripted::start(vec![(201, vec![], written())]);
    let c = client(&[dead.to_string(), b.addr.to_string()]);
    c.register(&register_request()).unwrap();
    assert_eq!(b.seen().len(), 1);
}

#[test]
fn a_leader_hint_is_followed() {
    let leader = Scripted::start(vec![(200, vec![], written())]);
    let a = Scripted::start(vec![(
        503,
        vec![("x-verisim-leader".into(), leader.addr.to_string())],
        error(ErrorCode::NoQuorum),
    )]);
    let other = Scripted::start(vec![(500, vec![], error(ErrorCode::Internal))]);
    let c = client(&[a.addr.to_string(), other.addr.to_string()]);
    let id = EntityId::new("e1").unwrap();
    let (_, update) = register_request().into_update();
    c.update(&id, &update, 1).unwrap();
    assert_eq!(
        other.seen().len(),
        0,
        "the hint skips the next node in the list"
    );
    let s = leader.seen();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].method, "PUT");
    assert_eq!(s[0].headers["if-match"], "1");
    verify(&s[0]);
    assert!(c.node_urls().contains(&format!("http://{}", leader.addr)));
}

#[test]
fn api_errors_are_typed_and_not_retried() {
    let a = Scripted::start(vec![(404, vec![], error(ErrorCode::NotFound))]);
    let c = client(&[a.addr.to_string()]);
    let e = c.get(&EntityId::new("nope").unwrap(), true).unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotFound));
    let s = a.seen();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].path, "/v1/entities/nope?allow_drift=true");
    verify(&s[0]);
}

#[test]
fn unknown_codes_and_non_json_errors_keep_the_raw_text() {
    let a = Scripted::start(vec![(
        418,
        vec![],
        r#"{"code":"teapot","message":"short and stout"}"#.into(),
    )]);
    let c = client(&[a.addr.to_string()]);
    match c.delete(&EntityId::new("x").unwrap(), None).unwrap_err() {
        ClientError::Api {
            status,
            code,
            raw_code,
            message,
            ..
        } => {
            assert_eq!((status, code), (418, None));
            assert_eq!(raw_code, "teapot");
            assert_eq!(message, "short and stout");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn retries_stop_after_max_attempts() {
    let a = Scripted::start(vec![(503, vec![], error(ErrorCode::Unavailable))]);
    let c = client(&[a.addr.to_string()]);
    let e = c.register(&register_request()).unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::Unavailable));
    let s = a.seen();
    assert_eq!(s.len(), 4);
    let ids: std::collections::BTreeSet<_> = s
        .iter()
        .map(|r| r.headers["x-verisim-request-id"].clone())
        .collect();
    assert_eq!(ids.len(), 1, "every attempt reuses the request id");
}

#[test]
fn open_window_signs_with_the_identity_and_derives_the_key() {
    let cluster = crate::auth::cluster_dh_secret(b"cookie").unwrap();
    let a = Scripted::start(vec![
        (
            200,
            vec![],
            format!(r#"{{"public_key":"{}"}}"#, cluster.public().to_hex()),
        ),
        (201, vec![], r#"{"window":"w-9","expires_at_ms":99}"#.into()),
    ]);
    let c = Client::new(&[a.addr.to_string()])
        .unwrap()
        .with_policy(fast());
    let identity = IdentityKey::from_seed(&[1; 32]);
    let alice = ClientId::new("alice").unwrap();
    let cluster_public = c.cluster_key().unwrap();
    assert_eq!(cluster_public, cluster.public());
    let s = c
        .open_window_with(
            &identity,
            &alice,
            &WindowId::new("w-9").unwrap(),
            &[7; 32],
            &cluster_public,
            Duration::from_secs(60),
        )
        .unwrap();
    assert_eq!(s.window.as_str(), "w-9");
    assert_eq!(s.expires_at_ms, 99);
    assert!(c.session().is_some());
    let seen = a.seen();
    assert_eq!(seen[0].path, "/v1/cluster-key");
    assert_eq!(seen[1].path, "/v1/windows");
    let req: crate::wire::OpenWindowRequest = serde_json::from_slice(&seen[1].body).unwrap();
    assert_eq!(req.ttl_ms, 60_000);
    crate::auth::verify_open_window(
        &req,
        &identity.public(),
        &cluster.public(),
        now_ms(),
        DEFAULT_SKEW_MS,
    )
    .unwrap();
    // A node derives the same key from the public key it committed.
    let node_key = crate::auth::derive_window_key_cluster(
        &cluster,
        &crate::auth::WindowPublicKey(req.client_public_key.0),
        &req.window,
    )
    .unwrap();
    assert_eq!(node_key, s.key);
}

#[test]
fn a_window_answered_under_another_id_is_refused() {
    let cluster = crate::auth::cluster_dh_secret(b"cookie").unwrap();
    let a = Scripted::start(vec![
        (
            200,
            vec![],
            format!(r#"{{"public_key":"{}"}}"#, cluster.public().to_hex()),
        ),
        (
            201,
            vec![],
            r#"{"window":"w-other","expires_at_ms":99}"#.into(),
        ),
    ]);
    let c = Client::new(&[a.addr.to_string()])
        .unwrap()
        .with_policy(fast());
    let e = c
        .open_window(
            &IdentityKey::from_seed(&[1; 32]),
            &ClientId::new("alice").unwrap(),
            Duration::from_secs(60),
        )
        .unwrap_err();
    assert!(matches!(e, ClientError::Json(_)), "{e}");
    assert!(c.session().is_none());
}

#[test]
fn signed_calls_need_a_window_and_nodes_are_validated() {
    let c = Client::new(&["127.0.0.1:1"]).unwrap();
    assert!(matches!(
        c.get(&EntityId::new("a").unwrap(), false),
        Err(ClientError::NoSession)
    ));
    assert!(Client::new::<&str>(&[]).is_err());
    assert!(Client::new(&["ftp://x"]).is_err());
    assert_eq!(
        Client::new(&["https://a:1/", "b:2"]).unwrap().node_urls(),
        vec!["https://a:1".to_string(), "http://b:2".to_string()]
    );
    let s = format!("{:?}", session());
    assert!(!s.contains("4242"), "{s}");
}
