//! Concurrent clients against a real 3-node cluster while the leader is killed once; the recorded
//! history is checked with `verisim_lincheck`'s key-value register model.

mod support;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::{Cluster, Options, Recorder, WriteOutcome};

const CLIENTS: u64 = 4;
const KEYS: usize = 3;

#[test]
fn concurrent_clients_across_a_leader_kill_are_linearizable() {
    let seed = support::test_seed();

    let mut c = Cluster::start(Options::default());
    let recorder = Recorder::new();
    let live: Mutex<Vec<u64>> = Mutex::new(vec![1, 2, 3]);
    let stop = AtomicBool::new(false);
    let (old, old_term) = c.wait_leader(Duration::from_secs(30));

    let acked = std::thread::scope(|s| {
        let workers: Vec<_> = (0..CLIENTS)
            .map(|client| {
                let (c, recorder, live, stop) = (&c, &recorder, &live, &stop);
                s.spawn(move || {
                    let mut rng = StdRng::seed_from_u64(
                        seed ^ (client + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    );
                    let mut leader_guess = 1;
                    let mut acked = 0u64;
                    let mut n = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        let key = format!("key{}", rng.random_range(0..KEYS));
                        let nodes = live.lock().expect("live").clone();
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
                                // Not the leader (or no quorum yet): look for the leader.
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

        // Let the clients run, kill -9 the leader, let them run across the failover.
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(50));
        }
        live.lock().expect("live").retain(|&id| id != old);
        kill(c.node(old).pid(), Signal::SIGKILL).expect("kill -9 the leader");
        let (new, _) = c.wait_new_leader(old, old_term, Duration::from_secs(30));
        eprintln!("killed n{old}; n{new} leads");
        let t1 = Instant::now();
        while t1.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, Ordering::SeqCst);
        workers
            .into_iter()
            .map(|w| w.join().expect("client thread"))
            .sum::<u64>()
    });
    c.node_mut(old).kill9();

    let history = recorder.history.into_inner().expect("history");
    let ops = history.len();
    let unknown = history
        .operations
        .iter()
        .filter(|o| matches!(o.outcome, verisim_lincheck::Outcome::Unknown))
        .count();
    eprintln!("{ops} operations, {acked} acknowledged writes, {unknown} with unknown outcome");
    assert!(
        acked >= 20,
        "too few acknowledged writes ({acked}) for a meaningful check"
    );
    support::assert_linearizable(&history, seed);
    // The check is not vacuous: the same history plus one read of a value nobody wrote, after
    // everything else returned, is refused.
    support::assert_a_forged_read_is_refused(&history, "key0", c.now());
}
