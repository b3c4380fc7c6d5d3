//! Whole-system test of the Snapshotter: the log stays small, and a follower cut off (through the
//! harness's relay) until it is behind the leader's log start catches up by InstallSnapshot.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{Cluster, Options, wait_for};

const LONG: Duration = Duration::from_secs(30);

fn u(v: &Value, path: &[&str]) -> u64 {
    let mut v = v;
    for p in path {
        v = &v[*p];
    }
    v.as_u64()
        .unwrap_or_else(|| panic!("{path:?} missing in {v}"))
}

#[test]
fn snapshots_keep_the_log_small_and_a_cut_off_follower_catches_up_by_snapshot() {
    let c = Cluster::start(Options {
        snapshot_entries: Some(50),
        relay: true,
        // A short trailing window, so a cut-off follower soon falls behind the log start.
        config: Some("[raft]\nlog_keep_after_snapshot = 10\n[snapshot]\ncheck_ms = 50\n".into()),
        ..Options::default()
    });

    // 1. Snapshots advance (>= 3 of them) and the log stays bounded while the registry grows.
    let mut distinct = std::collections::BTreeSet::new();
    let mut i = 0usize;
    while distinct.len() < 3 {
        c.put(&format!("k{i}"), &format!("v{i}-a"));
        i += 1;
        if i.is_multiple_of(10) {
            let (leader, _) = c.wait_leader(LONG);
            let s = c.node(leader).consensus().expect("leader status");
            let entries = u(&s, &["log", "entries"]);
            assert!(
                entries <= 150,
                "log holds {entries} entries with a 50-entry snapshot threshold: {s}"
            );
            if u(&s, &["snapshot_index"]) > 0 {
                distinct.insert(u(&s, &["snapshot_index"]));
            }
        }
        assert!(
            i < 2_000,
            "snapshot_index did not advance through 3 snapshots: {distinct:?}"
        );
    }

    // 2. Cut a follower off and write until the leader has taken >= 3 more snapshots and its log
    //    starts after everything the follower has.
    let (leader, _) = c.wait_leader(LONG);
    let f = (1..=3).find(|&id| id != leader).expect("a follower");
    c.isolate(f);
    let before = c.node(f).consensus().expect("follower status");
    let f_last = u(&before, &["log", "last_index"]);
    let mut i = 0usize;
    let mut seen = std::collections::BTreeSet::new();
    loop {
        c.put(&format!("k{}", i % 250), &format!("v{i}-b"));
        i += 1;
        if i.is_multiple_of(10) {
            let (l, _) = c.wait_leader(LONG);
            assert_ne!(l, f, "the isolated node cannot lead");
            let s = c.node(l).consensus().expect("leader status");
            seen.insert(u(&s, &["snapshot_index"]));
            if seen.len() >= 4 && u(&s, &["log", "first_index"]) > f_last + 1 {
                break;
            }
        }
        assert!(
            i < 5_000,
            "the leader took no snapshots while n{f} was cut off: {seen:?}"
        );
    }
    let writes_end = i;

    // 3. Heal: the follower installs a snapshot (its log is behind the leader's start, so there
    //    is no other way) and catches up.
    c.heal();
    let commit = c.leader_commit();
    c.wait_applied(f, commit, LONG);
    let after = c.node(f).consensus().expect("follower status");
    assert!(
        u(&after, &["snapshot_index"]) > f_last,
        "n{f} caught up without a snapshot beyond its old log end {f_last}: {after}"
    );

    // 4. Equal data: make the follower the leader (reads are served by the leader) and read
    //    every key from it.
    let expected: Vec<Option<String>> = (0..250).map(|k| c.get(&format!("k{k}"))).collect();
    wait_for(&format!("n{f} to take over leadership"), LONG, || {
        let (l, _) = c.leader()?;
        if l == f {
            return Some(());
        }
        let _ = c.node(l).post(&format!("/admin/transfer/{f}"), None);
        std::thread::sleep(Duration::from_millis(100));
        None
    });
    for (k, want) in expected.iter().enumerate() {
        let got = c.try_get(f, &format!("k{k}"));
        assert_eq!(
            got.as_ref(),
            Ok(want),
            "k{k} differs on n{f} (wrote up to {writes_end})"
        );
    }
}

/// Small snapshots, a short trailing window and one snapshot kept: a follower stopped for a while
/// is behind its leader's log start, and its own log never reaches back to an older snapshot.
fn fault_options() -> Options {
    Options {
        snapshot_entries: Some(30),
        config: Some(
            "[raft]\nlog_keep_after_snapshot = 5\n[snapshot]\ncheck_ms = 50\nkeep = 1\n".into(),
        ),
        ..Options::default()
    }
}

fn write_until_snapshot(c: &Cluster, id: u64, prefix: &str) {
    let mut i = 0usize;
    wait_for(&format!("n{id} takes a snapshot"), LONG, || {
        c.put(&format!("{prefix}{}", i % 50), &format!("v{i}"));
        i += 1;
        let s = c.node(id).consensus()?;
        (u(&s, &["snapshot_index"]) > 0).then_some(())
    });
}

/// The fault: a follower's own snapshot file is corrupted on disk while it is stopped. On restart it
/// names the file, where it was moved and the real cause, and catches up from the leader by itself.
#[test]
fn a_follower_whose_snapshot_is_corrupted_on_disk_reports_it_and_catches_up() {
    let mut c = Cluster::start(fault_options());
    let (leader, _) = c.wait_leader(LONG);
    let f = (1..=3).find(|&id| id != leader).expect("a follower");
    write_until_snapshot(&c, f, "a");
    c.node_mut(f).terminate();
    let snaps = c.node(f).data_dir.join("raft").join("snapshots");
    let mut corrupted = Vec::new();
    for p in std::fs::read_dir(&snaps).expect("snapshot dir") {
        let p = p.expect("entry").path();
        if p.extension().is_some_and(|e| e == "vsnap") {
            let mut bytes = std::fs::read(&p).expect("read snapshot");
            bytes[12] ^= 0x40;
            std::fs::write(&p, bytes).expect("corrupt snapshot");
            corrupted.push(p);
        }
    }
    assert!(!corrupted.is_empty(), "n{f} had a snapshot to corrupt");
    c.node_mut(f).start();
    let s = c.node(f).consensus().expect("status after restart");
    let said = s["corrupt_own_snapshot"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for p in &corrupted {
        assert!(
            said.contains(&p.display().to_string()),
            "names the file: {said}"
        );
        assert!(p.with_extension("corrupt").exists(), "quarantined: {p:?}");
    }
    assert!(
        said.contains(".corrupt") && said.contains("checksum"),
        "{said}"
    );
    let log = std::fs::read_to_string(&c.node(f).log_path).expect("node log");
    assert!(
        log.contains("checksum") && !log.contains("No such file"),
        "the log gives the real cause"
    );
    for i in 0..40 {
        c.put(&format!("b{i}"), "after");
    }
    let commit = c.leader_commit();
    c.wait_applied(f, commit, LONG);
    wait_for(&format!("n{f} to vote again"), LONG, || {
        c.node(f).consensus()?["recovery_horizon"]
            .is_null()
            .then_some(())
    });
}

/// The attack/fault: a follower is sent corrupt snapshots (the test-only hook flips a byte in each
/// of the next two it receives). It refuses them, counts and explains it, and catches up by asking
/// again; its consensus actor is never restarted.
#[test]
fn a_follower_sent_corrupt_snapshots_refuses_them_and_catches_up() {
    let mut c = Cluster::start(fault_options());
    let (leader, _) = c.wait_leader(LONG);
    let f = (1..=3).find(|&id| id != leader).expect("a follower");
    c.node_mut(f).terminate();
    std::fs::write(
        c.node(f)
            .data_dir
            .join("raft")
            .join("FAULT_CORRUPT_RECEIVED_SNAPSHOTS"),
        "2",
    )
    .expect("fault hook");
    write_until_snapshot(&c, leader, "a");
    for i in 0..100 {
        c.put(&format!("c{}", i % 50), &format!("v{i}"));
    }
    c.node_mut(f).start();
    let commit = c.leader_commit();
    c.wait_applied(f, commit, LONG);
    let s = c.node(f).consensus().expect("follower status");
    assert_eq!(u(&s, &["snapshot_transfers_refused"]), 2, "{s}");
    assert!(
        s["last_snapshot_refusal"]
            .as_str()
            .is_some_and(|r| r.contains("checksum")),
        "{s}"
    );
    let metrics = c.node(f).get("/metrics").expect("metrics").body;
    assert!(
        metrics
            .as_str()
            .is_some_and(|m| m.contains("verisim_raft_snapshot_transfers_refused_total 2")),
        "{metrics}"
    );
    let tree = c.node(f).get("/admin/tree").expect("tree").body;
    assert_eq!(
        support::restart_count(&tree, "consensus"),
        Some(0),
        "the consensus actor never failed: {tree}"
    );
}
