//! Whole-system tests: real `verisim node` processes on loopback, killed, paused and restarted.
//!
//! The registry's node-address records (`PUT`/`GET /admin/nodes/{name}`) serve as the replicated
//! register: key = record name, value = its `cluster_addr`.

mod support;

use std::time::Duration;

use support::{Cluster, Options, wait_for};

const LONG: Duration = Duration::from_secs(30);

/// Writes `k{from}..k{to}` with values `v{i}-{tag}` and returns the highest acknowledged index.
fn write_range(c: &Cluster, from: usize, to: usize, tag: &str) -> u64 {
    let mut last = 0;
    for i in from..to {
        let (index, _) = c.put(&format!("k{i}"), &format!("v{i}-{tag}"));
        last = last.max(index);
    }
    last
}

fn assert_range(c: &Cluster, from: usize, to: usize, tag: &str) {
    for i in from..to {
        assert_eq!(
            c.get(&format!("k{i}")).as_deref(),
            Some(format!("v{i}-{tag}").as_str()),
            "acknowledged write k{i} lost or wrong"
        );
    }
}

#[test]
fn leader_kill9_elects_a_new_leader_and_loses_no_committed_entry() {
    let mut c = Cluster::start(Options::default());
    write_range(&c, 0, 30, "a");
    let (old, old_term) = c.wait_leader(LONG);

    c.node_mut(old).kill9();
    let (new, new_term) = c.wait_new_leader(old, old_term, LONG);
    assert_ne!(new, old);
    assert!(new_term > old_term);

    assert_range(&c, 0, 30, "a");
    let last = write_range(&c, 30, 45, "b");
    assert_range(&c, 30, 45, "b");

    // The killed node comes back on the same data directory and catches up.
    c.node_mut(old).start();
    let commit = c.leader_commit().max(last);
    c.wait_applied(old, commit, LONG);
    // And the cluster keeps working with all three.
    write_range(&c, 45, 50, "c");
    assert_range(&c, 0, 30, "a");
}

#[test]
fn sigstop_of_the_leader_and_of_a_follower() {
    let mut c = Cluster::start(Options::default());
    write_range(&c, 0, 10, "a");

    // The leader pauses: the other two elect a new one and keep taking writes.
    let (old, old_term) = c.wait_leader(LONG);
    c.node_mut(old).sigstop();
    let (new, new_term) = c.wait_new_leader(old, old_term, LONG);
    let last = write_range(&c, 10, 20, "b");

    // It resumes: steps down (it sees the higher term) and catches up.
    c.node_mut(old).sigcont();
    wait_for(&format!("n{old} to step down"), LONG, || {
        let s = c.node(old).consensus()?;
        (s["role"] != "Leader" && s["term"].as_u64()? >= new_term).then_some(())
    });
    c.wait_applied(old, last, LONG);
    assert_range(&c, 0, 10, "a");
    assert_range(&c, 10, 20, "b");
    assert_ne!(new, old);

    // A follower pauses: writes go on throughout, and it catches up after resuming.
    let (leader, _) = c.wait_leader(LONG);
    let follower = (1..=3).find(|&id| id != leader).expect("a follower");
    c.node_mut(follower).sigstop();
    let last = write_range(&c, 20, 35, "c");
    c.node_mut(follower).sigcont();
    c.wait_applied(follower, last, LONG);
    assert_range(&c, 20, 35, "c");
}

#[test]
fn full_cluster_restart_from_disk() {
    let mut c = Cluster::start(Options::default());
    let last = write_range(&c, 0, 25, "a");
    for id in 1..=3 {
        c.wait_applied(id, last, LONG);
    }
    for id in 1..=3 {
        assert!(
            c.node_mut(id).terminate(),
            "n{id} did not exit cleanly on SIGTERM"
        );
    }
    for id in 1..=3 {
        c.node_mut(id).start();
    }
    c.wait_leader(LONG);
    assert_range(&c, 0, 25, "a");
    write_range(&c, 25, 35, "b");
    assert_range(&c, 25, 35, "b");
    // Overwrites after the restart win over the old values.
    write_range(&c, 0, 5, "c");
    assert_range(&c, 0, 5, "c");
}

#[test]
fn wrong_cookie_is_refused() {
    let c = Cluster::start(Options::default());
    let last = write_range(&c, 0, 5, "a");

    // An intruder with a different cookie dials every member (it lists them as peers) and is
    // dialled by nobody. It must never be let in, nor disturb the quorum.
    let mut intruder = Cluster::configure(
        Options {
            nodes: 1,
            ..Options::default()
        },
        "a-different-cookie-entirely",
    );
    {
        let n = intruder.node_mut(1);
        n.id = 4;
        n.peers = c.nodes.iter().map(|m| m.cluster_addr.to_string()).collect();
        n.extra_args = vec![
            "--voters".into(),
            "1,2,3,4".into(),
            "--tick-ms".into(),
            "10".into(),
        ];
        n.start();
    }
    let (leader, term) = c.wait_leader(LONG);
    // Give the intruder time to try (several dial attempts), while writes keep committing.
    let probe_until = std::time::Instant::now() + Duration::from_secs(3);
    let mut i = 5;
    while std::time::Instant::now() < probe_until {
        c.put(&format!("k{i}"), "b");
        i += 1;
        for m in &c.nodes {
            let s = m.status().expect("status");
            let peers = s["peers_up"].as_array().cloned().unwrap_or_default();
            assert!(
                !peers.iter().any(|p| p == "n4"),
                "n{} lists the intruder as up: {peers:?}",
                m.id
            );
        }
    }
    let s = intruder.node(1).status().expect("intruder status");
    assert_eq!(
        s["peers_up"].as_array().map(Vec::len),
        Some(0),
        "the intruder connected to someone: {s}"
    );
    // Same leader, same term: the intruder's elections (if any) reached nobody.
    assert_eq!(c.wait_leader(LONG), (leader, term));
    assert!(c.leader_commit() > last);
    assert_range(&c, 0, 5, "a");
}
