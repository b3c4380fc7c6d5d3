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
