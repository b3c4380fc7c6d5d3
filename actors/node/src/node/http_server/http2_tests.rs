//! HTTP/2 against the server, written as the attacks its limits stop: a client that opens more
//! streams than the server allows (each extra one is refused, and no more handlers ever run at
//! once than the cap), and a client that sends the HTTP/2 preface and then nothing. Raw frames on
//! a TCP socket: a well-behaved HTTP/2 library would never send the first attack.

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use super::*;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const END_STREAM_AND_HEADERS: u8 = 0x1 | 0x4;
/// RST_STREAM's error code for a stream the server would not open.
const REFUSED_STREAM: u32 = 0x7;
const WAIT: Duration = Duration::from_secs(10);

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.extend([kind, flags]);
    f.extend(stream.to_be_bytes());
    f.extend(payload);
    f
}

/// `GET /slow` as one HPACK block of literals and static-table entries (no dynamic table).
fn get_slow(stream: u32) -> Vec<u8> {
    let mut block = vec![0x82, 0x86]; // :method GET, :scheme http
    block.extend([0x04, 5]); // :path, literal, not indexed
    block.extend(b"/slow");
    block.extend([0x01, 1, b'a']); // :authority a
    frame(HEADERS, END_STREAM_AND_HEADERS, stream, &block)
}

/// One frame from the server: (type, stream, payload).
async fn read_frame(s: &mut tokio::net::TcpStream) -> Option<(u8, u32, Vec<u8>)> {
    let mut head = [0u8; 9];
    s.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    let mut payload = vec![0; len];
    s.read_exact(&mut payload).await.ok()?;
    Some((head[3], stream, payload))
}

/// A server on a free loopback port with `settings`, serving `app`; dropping the sender stops it.
async fn start(app: Router, settings: HttpSettings) -> (SocketAddr, watch::Sender<bool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = watch::channel(false);
    let metrics = ConnectionMetrics::default();
    tokio::spawn(serve(listener, app, settings, None, metrics, stopped));
    (addr, stop)
}

#[tokio::test]
async fn streams_beyond_the_cap_are_refused_and_never_run_at_once() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let app = {
        let (in_flight, most, gate) = (in_flight.clone(), most.clone(), gate.clone());
        Router::new().route(
            "/slow",
            get(move || async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let _permit = gate.acquire().await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                "done"
            }),
        )
    };
    let settings = HttpSettings {
        max_streams_per_connection: 4,
        ..HttpSettings::default()
    };
    let (addr, _stop) = start(app, settings).await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut out = PREFACE.to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    // Six streams at once, ignoring the server's SETTINGS_MAX_CONCURRENT_STREAMS of 4.
    for stream in [1, 3, 5, 7, 9, 11] {
        out.extend(get_slow(stream));
    }
    s.write_all(&out).await.unwrap();

    let mut refused = Vec::new();
    tokio::time::timeout(WAIT, async {
        while refused.len() < 2 {
            let (kind, stream, payload) = read_frame(&mut s).await.expect("a frame");
            if kind == RST_STREAM {
                let code = u32::from_be_bytes(payload[..4].try_into().unwrap());
                assert_eq!(code, REFUSED_STREAM, "stream {stream}");
                refused.push(stream);
            }
        }
    })
    .await
    .expect("the extra streams are refused");
    assert_eq!(refused, [9, 11]);
    tokio::time::timeout(WAIT, async {
        while in_flight.load(Ordering::SeqCst) < 4 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the four allowed streams reach their handler");

    // Released, the four are answered on their own streams, and there never were more than four.
    gate.add_permits(16);
    let mut answered = Vec::new();
    tokio::time::timeout(WAIT, async {
        while answered.len() < 4 {
            let (kind, stream, _) = read_frame(&mut s).await.expect("a frame");
            if kind == HEADERS {
                answered.push(stream);
            }
        }
    })
    .await
    .expect("the allowed streams are answered");
    answered.sort_unstable();
    assert_eq!(answered, [1, 3, 5, 7]);
    assert_eq!(most.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_preface_and_then_silence_is_closed_at_the_header_deadline() {
    let app = Router::new().route("/slow", get(|| async { "never asked" }));
    let settings = HttpSettings {
        header_read_timeout_ms: 200,
        ..HttpSettings::default()
    };
    let (addr, _stop) = start(app, settings).await;
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut out = PREFACE.to_vec();
    out.extend(frame(SETTINGS, 0, 0, &[]));
    s.write_all(&out).await.unwrap();
    let started = Instant::now();
    // The server's own frames (SETTINGS, its ACK), then the end of the connection.
    let ended = tokio::time::timeout(WAIT, async {
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the connection is still open after {WAIT:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "closed before the deadline: {:?}",
        started.elapsed()
    );
}
