//! Partitions of real node containers: each node runs in a `FROM scratch` container on a private
//! bridge network, and a node is cut off with `docker network disconnect` (its peers see packets
//! vanish, not connections refused). Skipped, loudly, where no Docker daemon answers.
//! See docs/testing.md.

mod support;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::docker::image::docker_or_skip;
use support::docker::{DockerCluster, DockerRecorder};
use support::{WriteOutcome, wait_for};
use verisim_lincheck::Outcome;

const LONG: Duration = Duration::from_secs(30);
const CLIENTS: u64 = 4;
const KEYS: usize = 3;

/// Lets the clients run for `d` (the test thread only watches the clock).
fn run_for(d: Duration) {
    let t = Instant::now();
    while t.elapsed() < d {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn docker_cut_off_leader_commits_nothing_and_the_history_is_linearizable() {
    if !docker_or_skip("docker_cut_off_leader_commits_nothing_and_the_history_is_linearizable") {
        return;
    }
    let seed = support::test_seed();
    let c = DockerCluster::start(3);
    let all = [1, 2, 3];
    let mut expected: BTreeMap<String, Option<String>> = BTreeMap::new();
    for i in 0..10 {
        let key = format!("k{i}");
        c.put_via(&all, &key, "a", LONG);
        expected.insert(key, Some("a".into()));
    }
    let (old, old_term) = c.wait_leader(LONG);
    let majority: Vec<u64> = all.into_iter().filter(|&id| id != old).collect();

    let recorder = DockerRecorder::new();
    let stop = AtomicBool::new(false);
    // The nodes clients write through; reads go to whoever they believe leads.
    let reachable: Mutex<Vec<u64>> = Mutex::new(all.to_vec());
    let new_term = std::thread::scope(|s| {
        let workers: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let (c, recorder, stop, reachable) = (&c, &recorder, &stop, &reachable);
                s.spawn(move || {
                    let mut rng = StdRng::seed_from_u64(
                        seed ^ (client + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    );
                    let (mut acked, mut n, mut leader_guess) = (0u64, 0u64, 1u64);
                    while !stop.load(Ordering::SeqCst) {
                        let key = format!("key{}", rng.random_range(0..KEYS));
                        let nodes = reachable.lock().expect("nodes").clone();
                        if rng.random_bool(0.5) {
                            let via = nodes[rng.random_range(0..nodes.len())];
                            let value = format!("c{client}-{n}");
                            n += 1;
                            if let WriteOutcome::Ok { .. } =
                                recorder.put(c, client, via, &key, &value)
                            {
                                acked += 1;
                            }
                        } else {
                            if !nodes.contains(&leader_guess) {
                                leader_guess = nodes[0];
                            }
                            if recorder.get(c, client, leader_guess, &key).is_err() {
                                if let Some((l, _)) = c.leader_among(|id| nodes.contains(&id)) {
                                    leader_guess = l;
                                }
                                std::thread::sleep(Duration::from_millis(10));
                            }
                        }
                    }
                    acked
                })
            })
            .collect();

        run_for(Duration::from_secs(2));
        // Clients keep sending to every node, the cut-off one included, for a while: their
        // writes through it must not be acknowledged, their reads through it must be refused.
        c.cut(old);
        eprintln!("cut n{old} (leader at term {old_term}) off the cluster network");
        let (new, new_term) = wait_for("a new leader on the majority side", LONG, || {
            c.leader_among(|id| id != old)
                .filter(|&(_, t)| t > old_term)
        });
        eprintln!("n{new} leads at term {new_term}");
        for i in 0..10 {
            let key = format!("m{i}");
            c.put_via(&majority, &key, "b", LONG);
            expected.insert(key, Some("b".into()));
        }
        let stranded = c.try_put(old, "stranded", "x");
        assert!(
            !matches!(stranded, WriteOutcome::Ok { .. }),
            "the cut-off n{old} acknowledged a write: {stranded:?}"
        );
        expected.insert("stranded".into(), None);
        let old_commit = c
            .node(old)
            .consensus()
            .and_then(|s| s["commit_index"].as_u64());
        run_for(Duration::from_secs(2));
        stop.store(true, Ordering::SeqCst);
        let acked: u64 = workers
            .into_iter()
            .map(|w| w.join().expect("client thread"))
            .sum();
        assert!(
            acked >= 20,
            "too few acknowledged writes ({acked}) for a meaningful check"
        );
        // Nothing the cut-off node learned while alone moved its commit index.
        let later = c
            .node(old)
            .consensus()
            .and_then(|s| s["commit_index"].as_u64());
        assert_eq!(
            old_commit, later,
            "the cut-off n{old} advanced its commit index"
        );
        new_term
    });

    c.reconnect(old);
    eprintln!("reconnected n{old}");
    let leader = wait_for("one leader after reconnecting", LONG, || {
        let (l, t) = c.leader()?;
        (t >= new_term).then_some(l)
    });
    let commit = c
        .node(leader)
        .consensus()
        .and_then(|s| s["commit_index"].as_u64())
        .unwrap_or(0);
    c.wait_applied(old, commit, LONG);
    // Writes through the old leader work again (forwarded to the new one).
    c.put_via(&[old], "after", "z", LONG);
    expected.insert("after".into(), Some("z".into()));
    c.assert_readable_everywhere(&expected);

    let history = recorder.history.into_inner().expect("history");
    let unknown = history
        .operations
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Unknown))
        .count();
    eprintln!(
        "{} operations, {unknown} with unknown outcome",
        history.len()
    );
    support::assert_linearizable(&history, seed);
}

#[test]
fn docker_cut_off_follower_rejoins_and_catches_up() {
    if !docker_or_skip("docker_cut_off_follower_rejoins_and_catches_up") {
        return;
    }
    let c = DockerCluster::start(3);
    let all = [1, 2, 3];
    let mut expected: BTreeMap<String, Option<String>> = BTreeMap::new();
    for i in 0..10 {
        let key = format!("k{i}");
        c.put_via(&all, &key, "a", LONG);
        expected.insert(key, Some("a".into()));
    }
    let (leader, term) = c.wait_leader(LONG);
    let follower = all
        .into_iter()
        .find(|&id| id != leader)
        .expect("a follower");
    let majority: Vec<u64> = all.into_iter().filter(|&id| id != follower).collect();
    let before = c
        .node(follower)
        .consensus()
        .and_then(|s| s["applied_index"].as_u64())
        .expect("the follower's status");

    c.cut(follower);
    eprintln!("cut follower n{follower} off the cluster network (n{leader} leads at term {term})");
    let mut last = 0;
    for i in 0..50 {
        let key = format!("m{i}");
        let (index, _) = c.put_via(&majority, &key, "b", LONG);
        last = last.max(index);
        expected.insert(key, Some("b".into()));
    }
    // The follower, alone, learned none of it (its admin interface still answers).
    let during = c
        .node(follower)
        .consensus()
        .and_then(|s| s["applied_index"].as_u64())
        .expect("the cut-off follower's status");
    assert!(
        during < last,
        "the cut-off n{follower} applied {during} (was {before}), the majority committed {last}"
    );

    c.reconnect(follower);
    eprintln!("reconnected n{follower}");
    c.wait_applied(follower, last, LONG);
    c.assert_readable_everywhere(&expected);
}

/// The image carries the test build's own binary and the libraries `ldd` names (no second,
/// static build); the kernel's vDSO has no file to copy.
#[test]
fn the_image_gets_every_library_ldd_names_and_not_the_vdso() {
    let listing = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x7f)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f)\n\t/lib64/ld-linux-x86-64.so.2 (0x7f)\n";
    assert_eq!(
        support::docker::image::shared_libraries(listing),
        [
            "/lib/x86_64-linux-gnu/libgcc_s.so.1",
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/ld-linux-x86-64.so.2"
        ]
    );
}
