//! Multi-process tests of the cluster layer: each node is a `verisim-cluster-probe` process
//! (ractor's registry and process groups are process-global, so one process is one node).

mod support;

use std::time::{Duration, Instant};

use support::{Probe, WAIT, fast_flags, free_addr};

const COOKIE: &str = "cookie-of-the-multinode-tests";

#[test]
fn three_nodes_connect_survive_kill9_and_reconnect_after_restart() {
    let addrs = [free_addr(), free_addr(), free_addr()];
    let names = ["n1", "n2", "n3"];
    let flags = fast_flags();
    let start = |i: usize| {
        let seeds: Vec<_> = (0..3).filter(|&j| j != i).map(|j| addrs[j]).collect();
        Probe::start(names[i], addrs[i], COOKIE, &seeds, &flags)
    };
    let mut n1 = start(0);
    let mut n2 = start(1);
    let mut n3 = start(2);
    let n3_id_at_n1 = n1.expect_up("n3");
    n1.expect_up("n2");
    n2.expect_up("n1");
    n2.expect_up("n3");
    n3.expect_up("n1");
    n3.expect_up("n2");
    // Let duplicate-connection elections settle (calls succeed), then forget earlier events.
    n1.until_ok("ECHO n2 10", "ECHO_OK n2 10", "ECHO_ERR");
    n1.until_ok("ECHO n3 10", "ECHO_OK n3 10", "ECHO_ERR");
    n2.until_ok("ECHO n3 10", "ECHO_OK n3 10", "ECHO_ERR");
    let n3_id_at_n1 = latest_up_id(&n1, "n3").unwrap_or(n3_id_at_n1);
    n1.clear_pending();
    n2.clear_pending();

    // kill -9: the OS closes n3's sockets, so the others see the disconnect.
    n3.kill9();
    let t = Instant::now();
    let r1 = n1.expect_down("n3");
    let r2 = n2.expect_down("n3");
    eprintln!("kill -9 noticed after {:?} ({r1}, {r2})", t.elapsed());
    assert!(
        r1 == "disconnected" || r1 == "heartbeat-deadline",
        "unexpected reason {r1}"
    );

    // Same name, same address, new process: reconnects, with a new connection id.
    let t = Instant::now();
    let mut n3 = start(2);
    let new_id = n1.expect_up("n3");
    n2.expect_up("n3");
    n3.expect_up("n1");
    n3.expect_up("n2");
    eprintln!("restarted n3 up again after {:?}", t.elapsed());
    assert_ne!(new_id, n3_id_at_n1, "a new connection must get a new id");

    // And it is usable: a CBOR call round trip to the restarted node.
    n1.until_ok("ECHO n3 100", "ECHO_OK n3 100", "ECHO_ERR");
}

#[test]
fn sigstop_is_detected_by_heartbeat_deadline_and_sigcont_recovers() {
    let (a1, a2, a3) = (free_addr(), free_addr(), free_addr());
    let flags = fast_flags();
    let mut n1 = Probe::start("n1", a1, COOKIE, &[a2, a3], &flags);
    let mut n2 = Probe::start("n2", a2, COOKIE, &[a1, a3], &flags);
    let mut n3 = Probe::start("n3", a3, COOKIE, &[a1, a2], &flags);
    for (p, others) in [
        (&mut n1, ["n2", "n3"]),
        (&mut n2, ["n1", "n3"]),
        (&mut n3, ["n1", "n2"]),
    ] {
        for o in others {
            p.expect_up(o);
        }
    }
    // Both sides dialled; let the duplicate-connection elections settle on usable connections.
    n1.until_ok("ECHO n2 10", "ECHO_OK n2 10", "ECHO_ERR");
    n2.until_ok("ECHO n1 10", "ECHO_OK n1 10", "ECHO_ERR");
    n3.until_ok("ECHO n2 10", "ECHO_OK n2 10", "ECHO_ERR");
    n1.until_ok("ECHO n3 10", "ECHO_OK n3 10", "ECHO_ERR");
    n1.clear_pending();
    n3.clear_pending();

    n2.signal("STOP");
    let t = Instant::now();
    // A stopped process keeps its sockets open: only the heartbeat deadline notices.
    assert_eq!(n1.expect_down("n2"), "heartbeat-deadline");
    eprintln!("SIGSTOP noticed after {:?}", t.elapsed());
    assert_eq!(n3.expect_down("n2"), "heartbeat-deadline");
    // The others are unaffected and keep talking.
    n1.until_ok("ECHO n3 10", "ECHO_OK n3 10", "ECHO_ERR");
    assert!(!n1.saw("DOWN n3"), "n1 lost n3:\n{:?}", n1.log);
    assert!(!n3.saw("DOWN n1"), "n3 lost n1:\n{:?}", n3.log);

    n2.signal("CONT");
    let t = Instant::now();
    n1.expect_up("n2");
    eprintln!("SIGCONT: up again after {:?}", t.elapsed());
    n3.expect_up("n2");
    // n2 comes back to usable connections as well.
    n2.until_ok("ECHO n1 10", "ECHO_OK n1 10", "ECHO_ERR");
    n2.until_ok("ECHO n3 10", "ECHO_OK n3 10", "ECHO_ERR");
}

#[test]
fn wrong_cookie_is_refused() {
    let (a1, a2, a3) = (free_addr(), free_addr(), free_addr());
    let flags = fast_flags();
    let mut n1 = Probe::start("n1", a1, COOKIE, &[], &flags);
    let mut intruder = Probe::start("intruder", a2, "another-cookie-entirely", &[a1], &flags);
    // The intruder's connection is closed during authentication, on both sides.
    intruder.expect(|l| l.starts_with("HANDSHAKE_FAILED "), WAIT);
    n1.expect(|l| l.starts_with("HANDSHAKE_FAILED "), WAIT);
    // A node with the right cookie still gets in, so n1 is healthy...
    let mut n3 = Probe::start("n3", a3, COOKIE, &[a1], &flags);
    n1.expect_up("n3");
    n3.expect_up("n1");
    // ...and by then the intruder has been refused at least once more by its own redials.
    intruder.expect(|l| l.starts_with("HANDSHAKE_FAILED "), WAIT);
    assert!(
        !n1.saw("UP intruder"),
        "n1 accepted the intruder:\n{:?}",
        n1.log
    );
    assert!(!intruder.saw("UP "), "intruder got in:\n{:?}", intruder.log);
}

#[test]
fn cbor_round_trip_and_a_message_over_the_frame_cap_drops_the_connection() {
    let (a1, a2) = (free_addr(), free_addr());
    // A 1 MiB frame cap keeps the test fast.
    let mut flags = fast_flags();
    flags.extend(
        ["--max-frame-bytes", "1048576"]
            .iter()
            .map(|s| s.to_string()),
    );
    let mut n1 = Probe::start("n1", a1, COOKIE, &[a2], &flags);
    let mut n2 = Probe::start("n2", a2, COOKIE, &[a1], &flags);
    n1.expect_up("n2");
    n2.expect_up("n1");

    n1.until_ok("ECHO n2 1000", "ECHO_OK n2 1000 ", "ECHO_ERR");
    n2.until_ok("ECHO n1 10", "ECHO_OK n1 10 ", "ECHO_ERR");
    n1.clear_pending();
    n2.clear_pending();

    let big = 5 * 1024 * 1024 + 17;
    // A message over the cap: the receiver drops the connection
    // rather than allocate it, and the layer reconnects.
    n1.send(&format!("RAW n2 {big}"));
    n1.expect(|l| l.starts_with("RAW_SENT n2"), WAIT);
    let reason = n2.expect_down("n1");
    assert_eq!(reason, "disconnected");
    n1.expect_down("n2");
    n1.expect_up("n2");
    n2.expect_up("n1");
    assert!(!n2.saw("RAW_RECEIVED"), "an over-cap frame was delivered");
    // And the new connection works.
    n1.until_ok("ECHO n2 10", "ECHO_OK n2 10 ", "ECHO_ERR");
}

#[test]
fn a_node_without_seeds_is_found_by_one_that_has_it_as_seed() {
    // Membership grows by dialling: n2 knows n1, n1 knows nobody, both see each other up.
    let (a1, a2) = (free_addr(), free_addr());
    let flags = fast_flags();
    let mut n1 = Probe::start("n1", a1, COOKIE, &[], &flags);
    let mut n2 = Probe::start("n2", a2, COOKIE, &[a1], &flags);
    n1.expect_up("n2");
    n2.expect_up("n1");
    // Silence from a live peer never trips the deadline: beats flow while idle.
    assert!(
        n1.try_expect(|l| l.starts_with("DOWN "), Duration::from_millis(2_000))
            .is_none(),
        "spurious down:\n{:?}",
        n1.log
    );
}

/// The node id of the last `UP <node>` line seen.
fn latest_up_id(p: &Probe, node: &str) -> Option<u64> {
    let prefix = format!("UP {node} ");
    p.log.iter().rev().find_map(|l| {
        l.strip_prefix(&prefix)
            .and_then(|id| id.trim().parse().ok())
    })
}
