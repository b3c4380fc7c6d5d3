//! Whole-system tests of the node's supervision (a consensus actor, or the cluster layer, killed
//! inside a running node is restarted by its supervisor) and of `--join` (a new node catches up
//! through InstallSnapshot and is promoted to voter).

mod support;

use std::time::Duration;

use support::{Cluster, Options, restart_count, wait_for};

const LONG: Duration = Duration::from_secs(30);

fn consensus_restarts(c: &Cluster, id: u64) -> Option<u64> {
    let r = c.node(id).get("/admin/tree").ok()?;
    restart_count(&r.body, "consensus")
}

#[test]
fn a_killed_consensus_actor_is_restarted_and_its_node_rejoins() {
    let c = Cluster::start(Options::default());
    for i in 0..10 {
        c.put(&format!("k{i}"), "a");
    }
    // Once on a follower, once on the leader.
    for round in 0..2 {
        let (leader, _) = c.wait_leader(LONG);
        let victim = if round == 0 {
            (1..=3).find(|&id| id != leader).expect("a follower")
        } else {
            leader
        };
        let before = consensus_restarts(&c, victim).unwrap_or_else(|| {
            panic!(
                "no consensus child with a restart_count in n{victim}'s tree: {:?}",
                c.node(victim).get("/admin/tree")
            )
        });
        let r = c
            .node(victim)
            .post("/admin/kill/verisim.consensus", None)
            .expect("kill request");
        assert!(r.ok(), "kill refused: {r:?}");
        wait_for(
            &format!("n{victim}'s consensus actor to be restarted"),
            LONG,
            || (consensus_restarts(&c, victim)? > before).then_some(()),
        );
        // The cluster keeps committing, and the restarted member follows it.
        for i in 0..10 {
            c.put(&format!("r{round}-{i}"), "b");
        }
        let commit = c.leader_commit();
        c.wait_applied(victim, commit, LONG);
        let tree = c.node(victim).get("/admin/tree").expect("tree");
        assert!(
            restart_count(&tree.body, "consensus").is_some_and(|n| n >= 1),
            "{tree:?}"
        );
    }
    for i in 0..10 {
        assert_eq!(c.get(&format!("k{i}")).as_deref(), Some("a"));
        assert_eq!(c.get(&format!("r1-{i}")).as_deref(), Some("b"));
    }
}

/// The cluster layer is a subtree of the node: its NodeServer or connector killed inside a running
/// node is restarted with its sibling (one_for_all), every connection is redialled, and the node
/// follows the log again.
#[test]
fn a_killed_cluster_layer_is_restarted_and_its_node_reconnects() {
    let c = Cluster::start(Options::default());
    c.put("before", "a");
    let (leader, _) = c.wait_leader(LONG);
    let follower = (1..=3).find(|&id| id != leader).expect("a follower");
    for (victim, actor, child) in [
        (follower, "verisim.cluster.server", "server"),
        (leader, "verisim.cluster.connector", "connector"),
    ] {
        // (child restarts, restarts of the whole `cluster` subtree). The `cluster` supervisor
        // restarts both its children (one_for_all) and does not give up: a restarted server
        // waits for the port its predecessor still holds instead of failing its bind, so the
        // node's `rest_for_one` never has to restart the subtree (and the registry after it).
        let restarts = |id: u64| {
            let r = c.node(id).get("/admin/tree").ok()?;
            Some((
                restart_count(&r.body, child)?,
                restart_count(&r.body, "cluster")?,
            ))
        };
        let before = restarts(victim).unwrap_or_else(|| {
            panic!(
                "no {child} and cluster children with a restart_count in n{victim}'s tree: {:?}",
                c.node(victim).get("/admin/tree")
            )
        });
        let r = c
            .node(victim)
            .post(&format!("/admin/kill/{actor}"), None)
            .expect("kill request");
        assert!(r.ok(), "kill refused: {r:?}");
        let after = wait_for(
            &format!("n{victim}'s {child} to be restarted"),
            LONG,
            || {
                let now = restarts(victim)?;
                (now.0 > before.0 || now.1 > before.1).then_some(now)
            },
        );
        assert_eq!(
            after,
            (before.0 + 1, before.1),
            "n{victim}: the {child} is restarted once and the cluster subtree not at all"
        );
        c.put(&format!("after-{child}"), "b");
        let commit = c.leader_commit();
        c.wait_applied(victim, commit, LONG);
    }
    assert_eq!(c.get("before").as_deref(), Some("a"));
    assert_eq!(c.get("after-connector").as_deref(), Some("b"));
}

#[test]
fn a_node_joining_after_three_snapshots_catches_up_by_snapshot_and_becomes_a_voter() {
    let mut c = Cluster::start(Options {
        snapshot_entries: Some(50),
        config: Some("[raft]\nlog_keep_after_snapshot = 10\n[snapshot]\ncheck_ms = 50\n".into()),
        ..Options::default()
    });
    // Write until every node has taken >= 3 snapshots and the log no longer starts at 1.
    let mut i = 0usize;
    loop {
        c.put(&format!("k{}", i % 120), &format!("v{i}"));
        i += 1;
        if i.is_multiple_of(20) && i >= 150 {
            let (leader, _) = c.wait_leader(LONG);
            let s = c.node(leader).consensus().expect("status");
            if s["snapshot_index"].as_u64() >= Some(150)
                && s["log"]["first_index"].as_u64() > Some(100)
            {
                break;
            }
        }
        assert!(i < 3_000, "no snapshots taken");
    }
    let (leader, _) = c.wait_leader(LONG);
    c.add_joiner(4, leader).start();

    // Promoted once caught up.
    c.wait_voter(4, LONG);
    let commit = c.leader_commit();
    c.wait_applied(4, commit, LONG);
    let s = c.node(4).consensus().expect("n4 status");
    assert!(
        s["snapshot_index"].as_u64() > Some(0),
        "n4 caught up without installing a snapshot: {s}"
    );
    let peers = c.node(4).status().expect("n4 status")["peers_up"].clone();
    assert_eq!(peers.as_array().map(Vec::len), Some(3), "n4 peers: {peers}");

    // Equal data: n4 leads and serves every key as the old leader did.
    let expected: Vec<Option<String>> = (0..120).map(|k| c.get(&format!("k{k}"))).collect();
    c.transfer_to(4);
    for (k, want) in expected.iter().enumerate() {
        assert_eq!(
            c.try_get(4, &format!("k{k}")).as_ref(),
            Ok(want),
            "k{k} on n4"
        );
    }
    // A 4-voter cluster keeps working with one voter down (quorum 3).
    c.node_mut(1).kill9();
    c.put("after-join", "x");
    assert_eq!(c.get("after-join").as_deref(), Some("x"));
}
