//! Whole-system tests of the drift checker and of the data plane it holds to the registry
//! (docs/drift.md): real node processes, their stores wiped or left behind, then one check pass
//! (`POST /admin/drift/check`, `verisim drift check`) on the node concerned.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use support::entities::{entity_cluster, entity_cluster_with, hexad, hexad_with, via};
use support::{Cluster, Options, test_seed, wait_for};
use verisim_client::http::{Client, ClientError};
use verisim_client::wire::{EntityId, TensorData, TensorPayload};

const LONG: Duration = Duration::from_secs(30);

/// One check pass on n`n`, through the CLI as an operator runs it.
fn check(c: &Cluster, n: u64) -> Value {
    drift_cli(c, n, &["check"])
}

/// `verisim drift <args>` on n`n`, as an operator runs it: n`n`'s answer.
fn drift_cli(c: &Cluster, n: u64, args: &[&str]) -> Value {
    let mut all = vec!["drift"];
    all.extend_from_slice(args);
    c.operator(n, &all)
}

fn count(report: &Value, field: &str) -> u64 {
    report[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no {field} in {report}"))
}

/// Reads `id` through n`n`: all four modalities verified.
fn read_verified(c: &Cluster, n: u64, client: &Client, id: &str) -> Result<u64, String> {
    let view = via(c, n, client)
        .get(&EntityId::new(id).unwrap(), false)
        .map_err(|e| format!("{id} via n{n}: {e}"))?;
    if view.all_verified() {
        Ok(view.version)
    } else {
        Err(format!("{id} via n{n}: not verified: {view:?}"))
    }
}

/// Issue 13's first report: `a` has an edge to `b`; deleting `b` left `a` reading
/// `502 drift_detected` from every node (the graph store rewrote `a`'s item, the registry kept the
/// old hash). Now `a` reads back verified, with its edge, and no node finds drift.
#[test]
fn deleting_an_entity_leaves_the_entities_pointing_to_it_readable_from_every_node() {
    let (c, client, _) = entity_cluster();
    let a = hexad_with("a", 1, &["b".to_string()], |noise| {
        TensorPayload::from_typed(vec![2], &TensorData::F32(noise.f32s(2)))
    });
    client.register(&a).expect("register a");
    client.register(&hexad("b", 2)).expect("register b");
    let b = EntityId::new("b").unwrap();
    client.delete(&b, Some(1)).expect("delete b");
    for n in 1..=3 {
        let view = via(&c, n, &client)
            .get(&a.id, false)
            .unwrap_or_else(|e| panic!("a via n{n}: {e}"));
        assert!(view.all_verified(), "a via n{n}: {view:?}");
        let edges = &view.graph.data.as_ref().expect("graph").edges;
        assert_eq!(edges.len(), 1, "a keeps its own edge to b: {edges:?}");
        assert!(matches!(
            via(&c, n, &client).get(&b, false),
            Err(ClientError::Api { status: 404, .. })
        ));
    }
    for n in 1..=3 {
        let r = check(&c, n);
        assert_eq!(count(&r, "drifted"), 0, "n{n}: {r}");
    }
}

/// n3's stores directory is wiped while it is stopped: one pass repairs every item from the other
/// replicas, verified, and a second pass finds nothing. An entity deleted while n3 was down leaves
/// its items on n3 as orphans: the pass removes them.
#[test]
fn a_wiped_replica_is_refilled_by_one_pass_and_orphans_are_removed() {
    const N: u64 = 12;
    let (mut c, client, _) = entity_cluster();
    for i in 0..N {
        client
            .register(&hexad(&format!("e{i}"), i))
            .expect("register");
    }
    client
        .register(&hexad("doomed", 99))
        .expect("register doomed");
    let clean = check(&c, 3);
    assert_eq!(count(&clean, "drifted"), 0, "{clean}");
    assert_eq!(count(&clean, "items_checked"), 4 * (N + 1), "{clean}");

    // Deleted while n3 is down: n3 keeps its items.
    assert!(c.node_mut(3).terminate(), "n3 stops cleanly");
    via(&c, 1, &client)
        .delete(&EntityId::new("doomed").unwrap(), None)
        .expect("delete doomed");
    c.node_mut(3).start();
    let commit = c.leader_commit();
    c.wait_applied(3, commit, LONG);
    let r = check(&c, 3);
    assert_eq!(count(&r, "orphans"), 4, "{r}");
    assert_eq!(count(&r, "orphans_removed"), 4, "{r}");
    assert_eq!(count(&r, "drifted"), 4, "{r}");

    // Wiped while stopped.
    assert!(c.node_mut(3).terminate(), "n3 stops cleanly");
    let stores = c.node(3).data_dir.join("stores");
    std::fs::remove_dir_all(&stores).expect("wipe n3's stores");
    c.node_mut(3).start();
    let commit = c.leader_commit();
    c.wait_applied(3, commit, LONG);
    let r = check(&c, 3);
    assert_eq!(count(&r, "missing"), 4 * N, "{r}");
    assert_eq!(count(&r, "repaired"), 4 * N, "{r}");
    assert_eq!(count(&r, "unrepaired"), 0, "{r}");
    assert!(count(&r, "bytes_fetched") > 0, "{r}");
    assert!(count(&r, "applied_index") >= commit, "{r}");
    let again = check(&c, 3);
    assert_eq!(count(&again, "drifted"), 0, "{again}");
    assert_eq!(count(&again, "items_checked"), 4 * N, "{again}");

    // The totals count since n3's restart (its two passes), as /metrics does.
    let status = drift_cli(&c, 3, &["status"]);
    assert_eq!(status["totals"]["passes"], 2, "{status}");
    assert_eq!(status["totals"]["repaired"], 4 * N, "{status}");
    let metrics = c.node(3).get("/metrics").expect("metrics");
    let text = metrics.body.as_str().expect("metrics text");
    assert!(
        text.contains(&format!("verisim_drift_repaired_total {}", 4 * N)),
        "{text}"
    );
    // Reads through n3 ask its own stores first.
    for i in 0..N {
        let v = read_verified(&c, 3, &client, &format!("e{i}")).unwrap();
        assert_eq!(v, 1);
    }
}

/// Reads racing a load of conditional updates answer the version they started with or a newer
/// one, verified: never `502 drift_detected` (about 0.7% of them did, with no fault at all, when a
/// read fixed its version once and the stores had moved on).
#[test]
fn reads_racing_conditional_updates_never_report_drift() {
    race_reads_with_updates(false);
}

/// The same load while store actors are killed (`POST /admin/kill/verisim.store.<modality>`) on
/// every node in turn: a replica whose store is restarting is unreachable, not drifted, so reads
/// go to another replica (or wait out a `503`), and every answer is still verified.
#[test]
fn reads_racing_updates_and_store_actor_kills_are_verified_and_never_report_drift() {
    race_reads_with_updates(true);
}

/// 120 conditional updates of one entity through n1 while three readers (one per node) read it;
/// with `kills`, a store actor of a random node is killed every few updates (seeded).
fn race_reads_with_updates(kills: bool) {
    // The seed picks the payloads (`ex:count` must stay within the schema's range).
    let seed = test_seed() % 1_000_000;
    let (c, client, _) = entity_cluster();
    let id = "raced";
    client.register(&hexad(id, seed)).expect("register");
    let writing = AtomicBool::new(true);
    let killed = AtomicU64::new(0);
    let eid = EntityId::new(id).unwrap();
    std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let w = via(&c, 1, &client);
            let mut version = 1;
            let mut rng = seed;
            for i in 0..120u64 {
                if kills && i % 6 == 3 {
                    rng = rng
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let node = 1 + (rng >> 33) % 3;
                    let modality =
                        ["graph", "vector", "tensor", "semantic"][((rng >> 40) % 4) as usize];
                    // `404 unknown_actor` while an earlier kill's replacement is starting.
                    wait_for(
                        &format!("a {modality} store actor on n{node} to kill"),
                        LONG,
                        || {
                            c.node(node)
                                .post(&format!("/admin/kill/verisim.store.{modality}"), None)
                                .ok()
                                .filter(|r| r.ok())
                        },
                    );
                    killed.fetch_add(1, Ordering::SeqCst);
                }
                let (_, update) = hexad(id, seed.wrapping_add(i + 1)).into_update();
                version = w
                    .update(&eid, &update, version)
                    .unwrap_or_else(|e| panic!("seed {seed}: update {i}: {e}"))
                    .version;
            }
            writing.store(false, Ordering::SeqCst);
            version
        });
        let readers: Vec<_> = [2u64, 3, 1]
            .into_iter()
            .map(|n| {
                let (c, client, writing, eid) = (&c, &client, &writing, &eid);
                s.spawn(move || {
                    let r = via(c, n, client);
                    let (mut reads, mut last) = (0u64, 0u64);
                    while writing.load(Ordering::SeqCst) {
                        let view = r
                            .get(eid, false)
                            .unwrap_or_else(|e| panic!("seed {seed}: read {reads} via n{n}: {e}"));
                        assert!(view.all_verified(), "seed {seed}: via n{n}: {view:?}");
                        assert!(view.version >= last, "seed {seed}: versions went back");
                        last = view.version;
                        reads += 1;
                    }
                    reads
                })
            })
            .collect();
        let last = writer.join().expect("writer");
        let reads: u64 = readers.into_iter().map(|r| r.join().expect("reader")).sum();
        assert!(
            reads >= 50,
            "seed {seed}: only {reads} reads raced the writes"
        );
        let killed = killed.load(Ordering::SeqCst);
        assert_eq!(killed, if kills { 20 } else { 0 });
        eprintln!("seed {seed}: {reads} reads raced {last} versions and {killed} store kills");
    });
    wait_for("every node to read the last version", LONG, || {
        (1..=3)
            .all(|n| read_verified(&c, n, &client, id) == Ok(121))
            .then_some(())
    });
}

/// One dry-run pass on n`n` (compare and report, repair nothing).
fn dry_run(c: &Cluster, n: u64) -> Value {
    drift_cli(c, n, &["check", "--dry-run"])
}

/// Two writers register and delete one id through two nodes at once. Store writes are fenced by
/// the registry index that produced them, so a delete's cleanup never removes a re-registration
/// that committed after it, and a late import never overwrites a newer one: once the writes
/// stop, every replica holds exactly what the registry committed (a dry-run pass, which repairs
/// nothing, finds no drift on any node), and what reads back is what a 2xx answered. Versions are
/// never reused across deletes.
#[test]
fn concurrent_deletes_and_re_registrations_leave_every_replica_as_committed() {
    let seed = test_seed() % 1_000_000;
    let (c, client, _) = entity_cluster();
    let eid = EntityId::new("contested").unwrap();
    // (version, ex:count) of every registration that got a 2xx.
    let written = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for (t, n) in [(0u64, 1u64), (1, 2)] {
            let (c, client, eid, written) = (&c, &client, &eid, &written);
            s.spawn(move || {
                let w = via(c, n, client);
                for round in 0..40u64 {
                    let count = seed + t * 1000 + round;
                    match w.register(&hexad("contested", count)) {
                        Ok(r) => written.lock().unwrap().push((r.version, count)),
                        Err(ClientError::Api { status: 409, .. }) => {}
                        Err(e) => panic!("seed {seed}: register via n{n}: {e}"),
                    }
                    match w.delete(eid, None) {
                        Ok(_) | Err(ClientError::Api { status: 404, .. }) => {}
                        Err(e) => panic!("seed {seed}: delete via n{n}: {e}"),
                    }
                }
            });
        }
    });
    // A last registration, so that there is something to read back.
    let last = client
        .register(&hexad("contested", seed + 5000))
        .expect("last registration");
    let mut written = written.into_inner().unwrap();
    written.push((last.version, seed + 5000));
    let mut versions: Vec<u64> = written.iter().map(|(v, _)| *v).collect();
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(
        versions.len(),
        written.len(),
        "seed {seed}: a version was reused: {written:?}"
    );
    // The third replica of the last write may still be importing: wait for that, not for repairs.
    for n in 1..=3 {
        wait_for(
            &format!("n{n}'s stores to match the registry"),
            LONG,
            || {
                let r = dry_run(&c, n);
                (count(&r, "drifted") == 0).then_some(())
            },
        );
    }
    for n in 1..=3 {
        let view = via(&c, n, &client).get(&eid, false).expect("read back");
        assert!(view.all_verified(), "seed {seed}: via n{n}: {view:?}");
        assert_eq!(view.version, last.version, "seed {seed}");
        let count = &view.semantic.data.as_ref().expect("semantic").properties["ex:count"];
        assert_eq!(
            count,
            &verisim_client::wire::Value::Int((seed + 5000) as i64),
            "seed {seed}"
        );
    }
}

/// A replica SIGKILLed during a write load and restarted, then another cut off from the cluster
/// (through the relays) and healed: every entity that got a 2xx ends on every replica, verified.
/// The writes' own retries and one repairing pass per node bring the stores there; a dry run on
/// every node then finds no drift, and every entity reads back verified through every node.
#[test]
fn replicas_killed_or_cut_off_during_a_write_load_are_whole_after_a_pass() {
    let seed = test_seed() % 1_000_000;
    let (mut c, client, _) = entity_cluster_with(
        Options {
            relay: true,
            ..Options::default()
        },
        21,
    );
    let acked = AtomicU64::new(0);
    let writing = AtomicBool::new(true);
    let w = via(&c, 1, &client);
    let written = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut ok = Vec::new();
            let mut i = 0u64;
            while writing.load(Ordering::SeqCst) {
                let id = format!("load-{i}");
                // A write the cluster could not take (an election under way) is not acknowledged:
                // only what got a 2xx is checked.
                if w.register(&hexad(&id, seed + i)).is_ok() {
                    ok.push(id);
                    acked.fetch_add(1, Ordering::SeqCst);
                }
                i += 1;
            }
            ok
        });
        let more = |n: u64, what: &str| {
            let target = acked.load(Ordering::SeqCst) + n;
            wait_for(what, LONG, || {
                (acked.load(Ordering::SeqCst) >= target).then_some(())
            });
        };
        more(10, "writes before the faults");
        c.node_mut(3).kill9();
        more(20, "writes with n3 killed");
        c.node_mut(3).start();
        let commit = c.leader_commit();
        c.wait_applied(3, commit, LONG);
        more(10, "writes with n3 back");
        c.isolate(2);
        more(20, "writes with n2 cut off");
        c.heal();
        more(10, "writes after healing");
        writing.store(false, Ordering::SeqCst);
        writer.join().expect("writer")
    });
    let commit = c.leader_commit();
    for n in 1..=3 {
        c.wait_applied(n, commit, LONG);
    }
    for n in 1..=3 {
        let r = check(&c, n);
        assert_eq!(count(&r, "unrepaired"), 0, "seed {seed}: n{n}: {r}");
    }
    for n in 1..=3 {
        let r = dry_run(&c, n);
        assert_eq!(count(&r, "drifted"), 0, "seed {seed}: n{n}: {r}");
        assert!(
            count(&r, "items_checked") >= 4 * written.len() as u64,
            "seed {seed}: n{n}: {r}"
        );
    }
    for id in &written {
        for n in 1..=3 {
            read_verified(&c, n, &client, id).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        }
    }
    eprintln!(
        "seed {seed}: {} acknowledged writes checked on 3 replicas",
        written.len()
    );
}
