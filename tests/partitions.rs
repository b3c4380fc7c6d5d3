//! Partitions through the harness's fault-injecting TCP relays (portable: no root, no Docker).

mod support;

use std::time::Duration;

use support::{Cluster, Options, WriteOutcome, wait_for};

const LONG: Duration = Duration::from_secs(30);

#[test]
fn a_cut_off_leader_cannot_commit_and_the_majority_moves_on() {
    let c = Cluster::start(Options {
        relay: true,
        ..Options::default()
    });
    for i in 0..10 {
        c.put(&format!("k{i}"), "a");
    }
    let (old, old_term) = c.wait_leader(LONG);
    c.isolate(old);

    // The majority elects a new leader and takes writes (through its own members).
    let (new, new_term) = wait_for("a new leader on the majority side", LONG, || {
        c.leader_among(|id| id != old)
            .filter(|&(id, t)| id != old && t > old_term)
    });
    let others: Vec<u64> = (1..=3).filter(|&id| id != old).collect();
    for i in 0..10 {
        let key = format!("m{i}");
        wait_for(&format!("write {key} on the majority"), LONG, || {
            others
                .iter()
                .find_map(|&via| match c.try_put(via, &key, "b") {
                    WriteOutcome::Ok { .. } => Some(()),
                    _ => None,
                })
        });
    }

    // The old leader, alone, cannot commit anything.
    let stranded = c.try_put(old, "stranded", "x");
    assert!(
        !matches!(stranded, WriteOutcome::Ok { .. }),
        "the isolated n{old} acknowledged a write: {stranded:?}"
    );

    // Heal: one leader, the old one follows it and catches up; the stranded proposal never
    // reached a majority, so it is gone.
    c.heal();
    let leader = wait_for("one leader after healing", LONG, || {
        let (l, t) = c.leader()?;
        (t >= new_term).then_some(l)
    });
    assert_ne!(new, old);
    let commit_index = c
        .node(leader)
        .consensus()
        .and_then(|s| s["commit_index"].as_u64())
        .unwrap_or(0);
    c.wait_applied(old, commit_index, LONG);
    wait_for(&format!("n{old} to follow"), LONG, || {
        let s = c.node(old).consensus()?;
        (s["role"] == "Follower" || s["role"] == "Leader").then_some(())
    });
    for i in 0..10 {
        assert_eq!(c.get(&format!("k{i}")).as_deref(), Some("a"));
        assert_eq!(c.get(&format!("m{i}")).as_deref(), Some("b"));
    }
    assert_eq!(
        c.get("stranded"),
        None,
        "an uncommitted write of the cut-off leader survived"
    );
    // Writes work everywhere again, the old leader included (forwarded).
    wait_for(&format!("a write through n{old}"), LONG, || {
        matches!(c.try_put(old, "after", "z"), WriteOutcome::Ok { .. }).then_some(())
    });
    assert_eq!(c.get("after").as_deref(), Some("z"));
}

/// Lost messages rather than a partition: the relays read ractor_cluster's frames and drop a
/// fifth of the actor messages between the nodes, both ways (seeded, `VERISIM_SEED`). Writes
/// still get acknowledged (each retried as a new operation), and once the links are clean again
/// every acknowledged write reads back on the leader and on every node.
#[test]
fn writes_commit_while_a_fifth_of_the_messages_between_nodes_are_lost() {
    let c = Cluster::start(Options {
        relay: true,
        relay_frames: true,
        ..Options::default()
    });
    c.put("before", "a");
    c.drop_messages(0.2);
    for i in 0..10 {
        c.put(&format!("lossy{i}"), "b");
    }
    assert!(c.messages_dropped() > 0, "nothing was dropped");
    c.drop_messages(0.0);
    let commit = c.leader_commit();
    for id in 1..=3 {
        c.wait_applied(id, commit, LONG);
    }
    assert_eq!(c.get("before").as_deref(), Some("a"));
    for i in 0..10 {
        assert_eq!(c.get(&format!("lossy{i}")).as_deref(), Some("b"));
    }
}
