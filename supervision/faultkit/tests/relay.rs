//! The relay on plain sockets: cut and heal, delay, and frame-aware drops of synthetic
//! ractor_cluster frames.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use verisim_faultkit::{Direction, DropRule, FaultError, FrameKind, Mode, Relay, wait_until};

const WAIT: Duration = Duration::from_secs(10);

/// A server that echoes every byte back, on its own thread.
fn echo_server() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 || c.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn connect(relay: &Relay) -> TcpStream {
    let c = TcpStream::connect(relay.addr()).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    c
}

fn roundtrip(c: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    c.write_all(msg)?;
    let mut buf = vec![0u8; msg.len()];
    c.read_exact(&mut buf)?;
    Ok(buf)
}

#[test]
fn a_cut_closes_connections_and_refuses_new_ones_until_healed() {
    let relay = Relay::start(echo_server()).unwrap();
    let mut c = connect(&relay);
    assert_eq!(roundtrip(&mut c, b"hello").unwrap(), b"hello");

    relay.cut();
    assert!(relay.is_cut());
    let mut buf = [0u8; 1];
    // The forwarded connection is closed: end of stream (or a reset).
    assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)));
    // A new one is accepted and closed at once.
    let mut d = connect(&relay);
    assert!(roundtrip(&mut d, b"x").is_err());

    relay.heal();
    let mut e = connect(&relay);
    assert_eq!(roundtrip(&mut e, b"again").unwrap(), b"again");
    let stats = relay.stats();
    assert_eq!(stats.connections, 2, "{stats:?}");
    assert!(stats.refused >= 1, "{stats:?}");
}

#[test]
fn a_delay_holds_every_chunk_and_keeps_the_order() {
    let relay = Relay::start(echo_server()).unwrap();
    let mut c = connect(&relay);
    let delay = Duration::from_millis(150);
    relay.set_delay(delay);
    let t = Instant::now();
    c.write_all(b"ab").unwrap();
    c.write_all(b"cd").unwrap();
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"abcd");
    // Delayed on the way there and on the way back.
    assert!(t.elapsed() >= 2 * delay, "{:?}", t.elapsed());
    relay.set_delay(Duration::ZERO);
    assert_eq!(roundtrip(&mut c, b"ef").unwrap(), b"ef");
}

#[test]
fn a_byte_relay_refuses_to_drop_messages() {
    let relay = Relay::start(echo_server()).unwrap();
    assert!(matches!(
        relay.drop_messages(0.5),
        Err(FaultError::NotFramed)
    ));
    assert!(matches!(
        DropRule::messages(1.5),
        Err(FaultError::BadProbability(_))
    ));
}

/// A ractor_cluster frame: u64 big-endian length, then a payload whose first bytes say its kind.
fn frame(kind: FrameKind, n: u8) -> Vec<u8> {
    let payload: Vec<u8> = match kind {
        FrameKind::Auth => vec![0x0a, 0x01, n],
        FrameKind::Cast => vec![0x12, 0x02, 0x0a, n],
        FrameKind::Call => vec![0x12, 0x02, 0x12, n],
        FrameKind::CallReply => vec![0x12, 0x02, 0x1a, n],
        FrameKind::Control => vec![0x1a, 0x01, n],
        FrameKind::Other => vec![0x22, 0x01, n],
    };
    let mut f = (payload.len() as u64).to_be_bytes().to_vec();
    f.extend(payload);
    f
}

/// Reads frames off `c` until `n` arrived; returns their last payload bytes.
fn read_frames(c: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..n {
        let mut h = [0u8; 8];
        c.read_exact(&mut h).unwrap();
        let mut p = vec![0u8; u64::from_be_bytes(h) as usize];
        c.read_exact(&mut p).unwrap();
        out.push(*p.last().unwrap());
    }
    out
}

#[test]
fn frame_mode_drops_actor_messages_and_keeps_control_frames() {
    let relay = Relay::builder(echo_server())
        .mode(Mode::RactorCluster)
        .seed(7)
        .start()
        .unwrap();
    assert_eq!(relay.seed(), 7);
    let mut c = connect(&relay);
    // Only on the way to the target: the echo comes back untouched.
    relay
        .set_drop(
            DropRule::messages(1.0)
                .unwrap()
                .direction(Direction::Forward),
        )
        .unwrap();
    let mut sent = Vec::new();
    sent.extend(frame(FrameKind::Auth, 1));
    sent.extend(frame(FrameKind::Cast, 2));
    sent.extend(frame(FrameKind::Control, 3));
    sent.extend(frame(FrameKind::Call, 4));
    sent.extend(frame(FrameKind::CallReply, 5));
    sent.extend(frame(FrameKind::Other, 6));
    c.write_all(&sent).unwrap();
    assert_eq!(read_frames(&mut c, 3), [1, 3, 6]);
    let stats = relay.stats();
    assert_eq!(stats.messages_dropped(), 3, "{stats:?}");

    // Half of the casts, seeded: some dropped, some through, and the counts add up.
    relay.drop_messages(0.5).unwrap();
    let casts: Vec<u8> = (0..100u8).flat_map(|i| frame(FrameKind::Cast, i)).collect();
    c.write_all(&casts).unwrap();
    c.write_all(&frame(FrameKind::Control, 200)).unwrap();
    // The control frame marks the end; everything before it that was kept arrives first.
    let mut got = Vec::new();
    loop {
        let last = read_frames(&mut c, 1)[0];
        if last == 200 {
            break;
        }
        got.push(last);
    }
    let stats = relay.stats();
    let dropped = stats.dropped[&FrameKind::Cast] - 1;
    assert_eq!(got.len() as u64 + dropped, 100, "{stats:?}");
    assert!(!got.is_empty() && dropped > 0, "{stats:?}");
    assert!(got.windows(2).all(|w| w[0] < w[1]), "order kept: {got:?}");

    relay.stop_dropping();
    c.write_all(&frame(FrameKind::Cast, 42)).unwrap();
    assert_eq!(read_frames(&mut c, 1), [42]);
}

#[test]
fn the_same_seed_drops_the_same_frames() {
    let run = |seed| {
        let relay = Relay::builder(echo_server())
            .mode(Mode::RactorCluster)
            .seed(seed)
            .start()
            .unwrap();
        relay
            .set_drop(
                DropRule::messages(0.5)
                    .unwrap()
                    .direction(Direction::Forward),
            )
            .unwrap();
        let mut c = connect(&relay);
        let casts: Vec<u8> = (0..50u8).flat_map(|i| frame(FrameKind::Cast, i)).collect();
        c.write_all(&casts).unwrap();
        c.write_all(&frame(FrameKind::Control, 200)).unwrap();
        let mut got = Vec::new();
        loop {
            let last = read_frames(&mut c, 1)[0];
            if last == 200 {
                return got;
            }
            got.push(last);
        }
    };
    assert_eq!(run(11), run(11));
}

#[test]
fn a_stream_that_is_not_framed_goes_through_as_bytes() {
    let relay = Relay::builder(echo_server())
        .mode(Mode::RactorCluster)
        .seed(1)
        .start()
        .unwrap();
    relay.drop_messages(1.0).unwrap();
    let mut c = connect(&relay);
    // A TLS record header: read as a length it is far beyond any frame.
    let tls = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03];
    assert_eq!(roundtrip(&mut c, &tls).unwrap(), tls);
    wait_until("the connection counted as unframed", WAIT, || {
        (relay.stats().unframed >= 1).then_some(())
    })
    .unwrap();
}
