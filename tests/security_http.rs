//! Whole-system tests of the HTTP server's limits, each written as the attack it stops: request
//! heads trickled a byte a second, more connections than the caps (from several loopback source
//! addresses: 127.0.0.2, 127.0.0.3, ... are all usable on Linux), a body trickled past its
//! deadline, a connection left open after its answer. Limits are configured small so each runs in
//! seconds; every wait has a deadline.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::{Cluster, Options, wait_for};

const LONG: Duration = Duration::from_secs(20);

/// A one-node cluster with `http` as its `[http]` section.
fn node_with(http: &str) -> (Cluster, SocketAddr) {
    let c = Cluster::start(Options {
        nodes: 1,
        config: Some(format!("[http]\n{http}")),
        ..Options::default()
    });
    let addr = c.node(1).http.expect("n1 listens");
    (c, addr)
}

/// A TCP connection to `to` from the loopback address `127.0.0.<last>`.
fn connect_from(last: u8, to: SocketAddr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("a runtime to connect with");
    rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4().expect("socket");
        s.bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, last), 0)))
            .expect("bind a loopback source address");
        let s = s.connect(to).await.expect("connect");
        let s = s.into_std().expect("a std socket");
        s.set_nonblocking(false).expect("blocking");
        s
    })
}

/// How a connection ended, as its client saw it.
struct Ended {
    /// Since the connection was made.
    after: Duration,
    /// Everything the server sent before closing.
    received: Vec<u8>,
}

/// Reads `s` until the server closes it (EOF or reset), calling `tick` before each wait of at
/// most `pace`; `None` if it is still open after `limit`.
fn until_closed(
    s: &mut TcpStream,
    since: Instant,
    pace: Duration,
    limit: Duration,
    mut tick: impl FnMut(&mut TcpStream),
) -> Option<Ended> {
    s.set_read_timeout(Some(pace)).expect("read timeout");
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    while since.elapsed() < limit {
        tick(s);
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => break,
        }
    }
    (since.elapsed() < limit).then(|| Ended {
        after: since.elapsed(),
        received,
    })
}

/// A plain GET on a fresh connection from 127.0.0.1 that asks to be closed after the answer:
/// `(status, body)`, or `None` when the server closed the connection without answering.
fn raw_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let head = format!("GET {path} HTTP/1.1\r\nHost: verisim\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).ok()?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).ok()?;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}

/// One sample of `GET /metrics` (the connection asking counts as open).
fn metric(addr: SocketAddr, sample: &str) -> Option<f64> {
    let (status, body) = raw_get(addr, "/metrics")?;
    assert_eq!(status, 200, "{body}");
    body.lines()
        .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
}

fn wait_metric(addr: SocketAddr, sample: &str, want: f64) {
    wait_for(&format!("{sample} = {want}"), LONG, || {
        (metric(addr, sample)? == want).then_some(())
    });
}

const OPEN: &str = "verisim_http_connections_open";
const CLOSED_HEADER: &str = "verisim_http_connections_deadline_closed_total{deadline=\"header\"}";
const CLOSED_BODY: &str = "verisim_http_connections_deadline_closed_total{deadline=\"body\"}";
const CLOSED_IDLE: &str = "verisim_http_connections_deadline_closed_total{deadline=\"idle\"}";
const REFUSED_NODE: &str = "verisim_http_connections_refused_total{cap=\"node\"}";
const REFUSED_PEER: &str = "verisim_http_connections_refused_total{cap=\"peer_ip\"}";

#[test]
fn request_heads_trickled_a_byte_a_second_are_cut_at_the_header_deadline_while_honest_requests_are_served()
 {
    const HEADER: Duration = Duration::from_secs(4);
    const ATTACKERS: usize = 24;
    let (_c, addr) = node_with(
        "header_read_timeout_ms = 4000\nidle_timeout_ms = 60000\nmax_connections = 64\nmax_connections_per_ip = 32",
    );
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|_| {
            // Taken before connecting: the server's deadline runs from its accept, which cannot
            // come earlier, so `since` never starts the count late.
            let since = Instant::now();
            let mut s = connect_from(2, addr);
            s.write_all(b"GET /admin/status HTTP/1.1\r\nHost: verisim\r\nX-Slow: ")
                .expect("half a head");
            std::thread::spawn(move || {
                // One more byte of the never-ending header value every second.
                until_closed(&mut s, since, Duration::from_secs(1), LONG, |s| {
                    let _ = s.write_all(b"a");
                })
            })
        })
        .collect();

    // Meanwhile an honest client is served, with every attacker still connected.
    let (status, body) = raw_get(addr, "/metrics").expect("an honest request is answered");
    assert_eq!(status, 200);
    let open: f64 = body
        .lines()
        .find_map(|l| l.strip_prefix(OPEN)?.strip_prefix(' ')?.parse().ok())
        .expect("the open-connections gauge");
    assert!(
        open >= (ATTACKERS + 1) as f64,
        "{open} open: the attackers are held while the honest request is served"
    );

    for a in attackers {
        let ended = a
            .join()
            .expect("attacker thread")
            .expect("a trickling connection is closed by the header deadline");
        assert!(
            ended.after >= HEADER,
            "closed after {:?}, before the deadline",
            ended.after
        );
        assert!(
            ended.received.is_empty(),
            "nothing is answered to half a head: {:?}",
            String::from_utf8_lossy(&ended.received)
        );
    }
    let closed = metric(addr, CLOSED_HEADER).expect("metrics");
    assert!(
        closed >= ATTACKERS as f64,
        "{closed} closed by the header deadline"
    );
    assert_eq!(raw_get(addr, "/readyz").map(|r| r.0), Some(200));
}

#[test]
fn connections_over_the_per_ip_cap_and_the_node_cap_are_closed_at_once_and_honest_clients_get_in_again()
 {
    // Idle connections left by the harness go within 1 s; the attackers' silent connections are
    // held by the (long) header deadline, as a cap-filling attacker's would be.
    let (_c, addr) = node_with(
        "header_read_timeout_ms = 30000\nidle_timeout_ms = 1000\nmax_connections = 8\nmax_connections_per_ip = 4",
    );
    // Only the scrape itself is open.
    wait_metric(addr, OPEN, 1.0);

    // One peer IP fills its share: the fifth connection is closed at once, unanswered.
    let from_2: Vec<TcpStream> = (0..4).map(|_| connect_from(2, addr)).collect();
    wait_metric(addr, OPEN, 5.0);
    let mut fifth = connect_from(2, addr);
    let ended = until_closed(&mut fifth, Instant::now(), LONG, LONG, |_| {})
        .expect("the connection over the per-IP cap is closed");
    assert!(ended.received.is_empty());
    assert_eq!(metric(addr, REFUSED_PEER), Some(1.0));
    assert_eq!(metric(addr, REFUSED_NODE), Some(0.0));
    // Another IP is still served: the per-IP cap kept room for it.
    assert_eq!(raw_get(addr, "/readyz").map(|r| r.0), Some(200));

    // A second IP fills the node with 4 more (a connection's slot is free once its client has
    // seen it end, so the scrapes above hold none now).
    let from_3: Vec<TcpStream> = (0..4).map(|_| connect_from(3, addr)).collect();
    // The node is full: an honest client is closed at once, unanswered ...
    assert_eq!(raw_get(addr, "/readyz"), None, "the node is at its cap");
    // ... and so is one more attacker from a third IP, within its own IP's share.
    let mut over = connect_from(4, addr);
    let ended = until_closed(&mut over, Instant::now(), LONG, LONG, |_| {})
        .expect("the connection over the node cap is closed");
    assert!(ended.received.is_empty());
    // Once the attackers' connections go, the honest client gets in again.
    drop(from_2);
    drop(from_3);
    let served = wait_for("an honest client served again", LONG, || {
        raw_get(addr, "/readyz").filter(|r| r.0 == 200)
    });
    assert_eq!(served.0, 200);
    let refused_node = metric(addr, REFUSED_NODE).expect("metrics");
    assert!(
        refused_node >= 2.0,
        "{refused_node} refused by the node cap"
    );
    assert_eq!(metric(addr, REFUSED_PEER), Some(1.0));
}

#[test]
fn a_body_trickled_past_its_deadline_is_answered_408_request_timeout_and_the_connection_closed() {
    const BODY: Duration = Duration::from_secs(2);
    let (_c, addr) = node_with("body_timeout_ms = 2000\nheader_read_timeout_ms = 10000");
    let mut s = connect_from(1, addr);
    let head = "POST /v1/windows HTTP/1.1\r\nHost: verisim\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{";
    // Before the write: the body deadline runs from the server's reading of the head, never earlier.
    let since = Instant::now();
    s.write_all(head.as_bytes()).expect("the head");
    // A byte of body every half second, never reaching its announced length.
    let ended = until_closed(&mut s, since, Duration::from_millis(500), LONG, |s| {
        let _ = s.write_all(b" ");
    })
    .expect("the trickling body's connection is closed");
    assert!(ended.after >= BODY, "answered after {:?}", ended.after);
    let text = String::from_utf8_lossy(&ended.received);
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    assert!(text.contains("\"code\":\"request_timeout\""), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    assert_eq!(metric(addr, CLOSED_BODY), Some(1.0));
    // The node still serves.
    assert_eq!(raw_get(addr, "/readyz").map(|r| r.0), Some(200));
}

#[test]
fn a_kept_alive_connection_left_idle_after_its_answer_is_closed_at_the_idle_deadline() {
    const IDLE: Duration = Duration::from_secs(1);
    // The header deadline is longer: the idle one, not it, closes a connection between requests.
    let (_c, addr) = node_with("idle_timeout_ms = 1000\nheader_read_timeout_ms = 20000");
    let mut s = connect_from(1, addr);
    // Before the write: the idle deadline runs from the answer, which comes later.
    let since = Instant::now();
    s.write_all(b"GET /readyz HTTP/1.1\r\nHost: verisim\r\n\r\n")
        .expect("a request");
    let ended =
        until_closed(&mut s, since, LONG, LONG, |_| {}).expect("the idle connection is closed");
    let text = String::from_utf8_lossy(&ended.received);
    assert!(text.starts_with("HTTP/1.1 200 "), "answered first: {text}");
    assert!(ended.after >= IDLE, "closed after {:?}", ended.after);
    assert!(
        ended.after < Duration::from_secs(20),
        "closed by the idle deadline, not the header one"
    );
    let idle = metric(addr, CLOSED_IDLE).expect("metrics");
    assert!(idle >= 1.0, "{idle} closed idle");
}
