//! Nodes reached through an address other than the one they announce (a wildcard listen
//! address, another name for the same host, a forwarded port): connected once, never redialled.
//!
//! The setup makes ractor refuse the second connection deterministically: n2 dials n1 first, and
//! the connection initiated by the node whose name sorts last (n2) is the one ractor keeps. When
//! n1 is then told to dial n2 by another address, n2 refuses the handshake before saying who it
//! is. Unless n1 can tell that address belongs to n2, it redials it every backoff period forever.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use support::{Probe, fast_flags, free_addr};

const COOKIE: &str = "cookie-of-the-address-tests";

/// Five redial periods at the fast flags' longest backoff (400 ms): the old behaviour fails
/// here several times over.
const QUIET: Duration = Duration::from_millis(2_000);

/// Start n1 (no seeds) and n2 (listening on `n2_listen`, seeding n1), wait until they are
/// connected, give n1 the seed `n1_seed` for n2, and check n1 does not keep dialling it.
fn connected_then_seeded(
    n2_addr: SocketAddr,
    n2_listen: SocketAddr,
    n2_extra: &[String],
    n1_seed: &str,
) {
    let flags = fast_flags();
    let a1 = free_addr();
    let mut n1 = Probe::start("n1", a1, COOKIE, &[], &flags);
    let mut n2_flags = flags.clone();
    n2_flags.extend_from_slice(n2_extra);
    let mut n2 = Probe::start_listening(
        "n2",
        n2_addr,
        n2_listen,
        COOKIE,
        &[a1.to_string()],
        &n2_flags,
    );
    n1.expect_up("n2");
    n2.expect_up("n1");

    n1.send(&format!("SEED {n1_seed}"));
    n1.expect(|l| l.starts_with("SEED_OK"), support::WAIT);
    n1.clear_pending();
    let mut refused = 0;
    let deadline = std::time::Instant::now() + QUIET;
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        if n1
            .try_expect(
                |l| l.starts_with("HANDSHAKE_FAILED") || l.starts_with("DIAL_FAILED"),
                left,
            )
            .is_some()
        {
            refused += 1;
        }
    }
    // One refusal is allowed: a dial that left before the address was recognised.
    assert!(
        refused <= 1,
        "n1 kept redialling n2 through {n1_seed} ({refused} refused dials); log:\n{}",
        n1.log.join("\n")
    );
    assert!(
        !n1.saw("DOWN n2"),
        "the connection dropped; log:\n{}",
        n1.log.join("\n")
    );
    n1.until_ok("ECHO n2 10", "ECHO_OK n2 10 ", "ECHO_ERR");
}

fn wildcard(addr: SocketAddr) -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], addr.port()))
}

#[test]
fn a_named_seed_is_not_redialled_while_its_node_is_connected() {
    // n2 listens on 0.0.0.0 and announces "0.0.0.0:port": only the seed's name can tell.
    let a2 = free_addr();
    connected_then_seeded(a2, wildcard(a2), &[], &format!("n2={a2}"));
}

#[test]
fn a_seed_at_the_advertised_address_is_not_redialled() {
    let a2 = free_addr();
    let advertise = vec!["--advertise".to_string(), a2.to_string()];
    connected_then_seeded(a2, wildcard(a2), &advertise, &a2.to_string());
}

#[test]
fn a_seed_naming_the_advertised_address_differently_is_not_redialled() {
    // `localhost:port` resolves to the `127.0.0.1:port` n2 announces.
    let a2 = free_addr();
    connected_then_seeded(a2, a2, &[], &format!("localhost:{}", a2.port()));
}

#[test]
fn a_node_behind_a_forwarded_port_advertises_that_port() {
    // n2 listens on one port and is reached through another (a TCP relay, as a NAT or a
    // container's published port would): it announces the forwarded port.
    let a2 = free_addr();
    let forwarded = relay_to(a2);
    let advertise = vec!["--advertise".to_string(), forwarded.to_string()];
    connected_then_seeded(a2, a2, &advertise, &forwarded.to_string());
}

/// A TCP relay from a new loopback port to `target`; its threads end with the test process.
fn relay_to(target: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
    let addr = listener.local_addr().expect("relay address");
    std::thread::spawn(move || {
        for inbound in listener.incoming() {
            let Ok(inbound) = inbound else { continue };
            let Ok(outbound) = TcpStream::connect(target) else {
                continue;
            };
            pipe(&inbound, &outbound);
            pipe(&outbound, &inbound);
        }
    });
    addr
}

fn pipe(from: &TcpStream, to: &TcpStream) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}
