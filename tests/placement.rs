//! Whole-system tests of placement and re-replication (docs/drift.md, "Placement"): real node
//! processes; a fourth node joins a 3-node cluster with a replication factor of 3, then one of the
//! first three is removed and killed. The leader's rebalancer moves entities through the quorum,
//! copies before it drops, and every entity ends on exactly 3 live replicas, while reads and
//! conditional updates go on.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::entities::{entity_cluster_with, hexad, via};
use support::{Cluster, Options, test_seed, wait_for};
use verisim_client::http::Client;
use verisim_client::wire::EntityId;

const LONG: Duration = Duration::from_secs(60);

/// Entities read during the moves (never written after registration).
const READ: u64 = 30;
/// Entities updated during the moves.
const WRITTEN: u64 = 6;

fn admin_get(c: &Cluster, n: u64, path: &str) -> Value {
    let r = c
        .node(n)
        .get(path)
        .unwrap_or_else(|e| panic!("GET {path} on n{n}: {e}"));
    assert!(r.ok(), "GET {path} on n{n}: {r:?}");
    r.body
}

/// A dry-run drift check on n`n` (compares its stores with the registry, writes nothing).
fn dry_run(c: &Cluster, n: u64) -> Value {
    c.operator(n, &["drift", "check", "--dry-run"])
}

/// Waits until every node of `live` has applied the leader's commit index, sees exactly `live`
/// as the voters, and no misplaced entity.
fn wait_rebalanced(c: &Cluster, live: &[u64], what: &str) {
    let voters: Vec<Value> = live.iter().map(|n| json!(format!("n{n}"))).collect();
    wait_for(what, LONG, || {
        let commit = c.leader_commit();
        live.iter()
            .all(|&n| {
                c.node(n).get("/admin/placement").is_ok_and(|r| {
                    let p = &r.body;
                    p["applied_index"].as_u64() >= Some(commit)
                        && p["voters"].as_array() == Some(&voters)
                        && p["misplaced"] == 0
                })
            })
            .then_some(())
    });
}

/// Every entity is placed on exactly 3 of `live` (read on the leader) and every node of `live`
/// holds exactly the items the registry places on it: a dry-run drift check finds nothing missing,
/// stale or orphaned. Answers how many entities each node holds.
fn assert_exactly_three_live_replicas(c: &Cluster, live: &[u64], ids: &[String]) -> Vec<u64> {
    let (leader, _) = c.wait_leader(LONG);
    let mut held = vec![0u64; live.len()];
    for id in ids {
        let e = admin_get(c, leader, &format!("/admin/entities/{id}"));
        let placement: Vec<String> = e["placement"]
            .as_array()
            .unwrap_or_else(|| panic!("{id}: {e}"))
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(placement.len(), 3, "{id}: {e}");
        for node in &placement {
            let pos = live
                .iter()
                .position(|n| *node == format!("n{n}"))
                .unwrap_or_else(|| panic!("{id} placed on {node}, not a live voter: {e}"));
            held[pos] += 1;
        }
    }
    let commit = c.leader_commit();
    for (k, &n) in live.iter().enumerate() {
        c.wait_applied(n, commit, LONG);
        // A dry run repairs nothing: waiting only lets the last writes' background distribution
        // (write quorum is a majority) land.
        let deadline = Instant::now() + LONG;
        let r = loop {
            let r = dry_run(c, n);
            if r["drifted"] == 0 {
                break r;
            }
            assert!(
                Instant::now() < deadline,
                "n{n} holds something else than placed on it: {r}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(r["items_checked"], 4 * held[k], "n{n}: {r}");
    }
    assert_eq!(held.iter().sum::<u64>(), 3 * ids.len() as u64);
    held
}

/// Reads every entity of `ids` in turn through `client` until `stop`; answers the reads done and
/// every failure (an error, or an answer not verified, or not version 1).
fn reader(
    client: Client,
    ids: Vec<String>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<(u64, Vec<String>)> {
    std::thread::spawn(move || {
        let (mut reads, mut failures) = (0u64, Vec::new());
        while !stop.load(Ordering::Relaxed) {
            for id in &ids {
                match client.get(&EntityId::new(id).unwrap(), false) {
                    Ok(v) if v.all_verified() && v.version == 1 => {}
                    Ok(v) => failures.push(format!("{id}: {v:?}")),
                    Err(e) => failures.push(format!("{id}: {e}")),
                }
                reads += 1;
            }
        }
        (reads, failures)
    })
}

/// Updates each entity of `ids` (at `versions`) in turn, conditionally, until `stop`; answers the
/// last version acknowledged per entity and every failure.
fn writer(
    client: Client,
    ids: Vec<String>,
    mut versions: Vec<u64>,
    seed: u64,
    stop: Arc<AtomicBool>,
) -> JoinHandle<(Vec<u64>, Vec<String>)> {
    std::thread::spawn(move || {
        let mut failures = Vec::new();
        let mut round = 0u64;
        while !stop.load(Ordering::Relaxed) {
            round += 1;
            for (k, id) in ids.iter().enumerate() {
                let (_, update) =
                    hexad(id, seed.wrapping_add(round * 100 + k as u64)).into_update();
                match client.update(&EntityId::new(id).unwrap(), &update, versions[k]) {
                    Ok(w) => versions[k] = w.version,
                    Err(e) => failures.push(format!("{id} at v{}: {e}", versions[k])),
                }
            }
        }
        (versions, failures)
    })
}

/// The writer's versions, once it stopped; no update may have failed.
fn finished(write: JoinHandle<(Vec<u64>, Vec<String>)>, seed: u64) -> Vec<u64> {
    let (versions, failures) = write.join().expect("writer");
    assert!(
        failures.is_empty(),
        "{} updates failed (seed {seed}): {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        versions.iter().all(|&v| v > 1),
        "the writer wrote nothing: {versions:?}"
    );
    versions
}

#[test]
fn a_joining_node_takes_its_share_and_a_removed_one_is_replaced_while_reads_and_writes_go_on() {
    let seed = test_seed() % 1_000_000;
    let (mut c, client, _) = entity_cluster_with(Options::default(), 21);
    let read_ids: Vec<String> = (0..READ).map(|i| format!("e{i}")).collect();
    let written_ids: Vec<String> = (0..WRITTEN).map(|i| format!("w{i}")).collect();
    for (i, id) in read_ids.iter().chain(&written_ids).enumerate() {
        client
            .register(&hexad(id, seed.wrapping_add(i as u64)))
            .expect("register");
    }
    let all: Vec<String> = read_ids.iter().chain(&written_ids).cloned().collect();
    assert_exactly_three_live_replicas(&c, &[1, 2, 3], &all);

    // n1 leads and n2 will be the one removed: readers and the writer go through n1 and n3.
    c.transfer_to(1);
    let stop = Arc::new(AtomicBool::new(false));
    let readers = [1, 3].map(|n| reader(via(&c, n, &client), read_ids.clone(), stop.clone()));
    let stop_writes = Arc::new(AtomicBool::new(false));
    let versions = vec![1; written_ids.len()];
    let write = writer(
        via(&c, 3, &client),
        written_ids.clone(),
        versions,
        seed,
        stop_writes.clone(),
    );

    // A fourth node joins: promoted once caught up, then the rebalancer moves about three
    // quarters of the entities (those that rank n4 among their top 3) onto it.
    c.add_joiner(4, 1).start();
    c.wait_voter(4, LONG);
    wait_rebalanced(&c, &[1, 2, 3, 4], "the entities to settle after n4 joined");
    stop_writes.store(true, Ordering::Relaxed);
    let versions = finished(write, seed);
    let held = assert_exactly_three_live_replicas(&c, &[1, 2, 3, 4], &all);
    assert!(held[3] > 0, "n4 took no share: {held:?}");
    assert!(held.iter().all(|&h| h < all.len() as u64), "{held:?}");
    // Copied by the rebalancer (on whichever node led), and dropped from the old replicas by it
    // too: no drift pass ran.
    let total = |field: &str| -> u64 {
        (1..=4)
            .map(|n| {
                admin_get(&c, n, "/admin/placement")["totals"][field]
                    .as_u64()
                    .unwrap_or(0)
            })
            .sum()
    };
    assert!(total("items_copied") > 0 && total("items_dropped") > 0);

    // n2 is removed from the voters, then killed: every entity it held gets a new third replica.
    let stop_writes = Arc::new(AtomicBool::new(false));
    let write = writer(
        via(&c, 3, &client),
        written_ids.clone(),
        versions,
        seed.wrapping_add(1_000),
        stop_writes.clone(),
    );
    wait_for("the leader to remove n2", LONG, || {
        let (l, _) = c.leader()?;
        let r = c
            .node(l)
            .post("/admin/members", Some(json!({"remove": 2})))
            .ok()?;
        r.ok().then_some(())
    });
    wait_for("n2 to leave the voters", LONG, || {
        let (l, _) = c.leader()?;
        let s = c.node(l).consensus()?;
        let voters = s["membership"]["voters"].as_array()?.clone();
        (!voters.iter().any(|v| v == 2)).then_some(())
    });
    c.node_mut(2).kill9();
    wait_rebalanced(
        &c,
        &[1, 3, 4],
        "the entities to settle after n2 was removed",
    );
    stop_writes.store(true, Ordering::Relaxed);
    let versions = finished(write, seed);
    let held = assert_exactly_three_live_replicas(&c, &[1, 3, 4], &all);
    assert_eq!(held, vec![all.len() as u64; 3]);

    stop.store(true, Ordering::Relaxed);
    for (k, r) in readers.into_iter().enumerate() {
        let (reads, failures) = r.join().expect("reader");
        assert!(
            failures.is_empty(),
            "reader {k}: {} of {reads} reads failed (seed {seed}): {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
        assert!(reads >= READ, "reader {k} read only {reads}");
    }
    // What the writer was told is what every replica serves, verified.
    for (k, id) in written_ids.iter().enumerate() {
        for n in [1, 3, 4] {
            let v = via(&c, n, &client)
                .get(&EntityId::new(id).unwrap(), false)
                .unwrap_or_else(|e| panic!("{id} via n{n}: {e}"));
            assert!(v.all_verified(), "{id} via n{n}: {v:?}");
            assert_eq!(v.version, versions[k], "{id} via n{n}");
        }
    }
    for n in [1, 3, 4] {
        let s = c.operator(n, &["placement", "status"]);
        assert_eq!(s["misplaced"], 0, "n{n}: {s}");
        assert_eq!(s["entities"], all.len() as u64, "n{n}: {s}");
    }
}
