//! Filling a cluster's registry with N entities fast, through `POST /admin/proposals` (nodes
//! started with `--admin-raw-proposals`): `join` fills before a 4th node joins, `register
//! --preload` before its registration load.
//!
//! The fill commits `PutEntity` commands straight into the registry (four modality hashes, the
//! placement a registration would get): nothing is prepared or imported, so **the stores hold none
//! of these entities**, only the registry does.
//!
//! Automatic snapshots should be off while filling ([`QUIET_SNAPSHOTS`]): a snapshot every 10,000
//! entries of a registry growing to 1M would dominate the fill time. [`snapshot_every_node`] then
//! takes one on each node, which compacts its log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use verisim::registry::placement::place;
use verisim::registry::{ClientId, Command, NodeName, Proposal, PublicKey, WindowId};
use verisim_registry::fixture;

use super::cluster::VerisimCluster;
use super::http::Http;
use super::raw::{now_ms, propose_all};

/// A `[snapshot]` section that never triggers an automatic snapshot.
pub const QUIET_SNAPSHOTS: &str =
    "[snapshot]\nmax_entries = 1000000000000\nmax_bytes = 1000000000000000\nmax_age_s = 0\n";

/// The client the fill's entities are registered by (not `register`'s own `bench` client, whose
/// key is a real one).
const FILL_CLIENT: &str = "bench-fill";

/// Replicas per filled entity: the nodes' default `[placement] replicas`.
const REPLICAS: usize = 3;

/// Proposals per `POST /admin/proposals`.
pub const DEFAULT_BATCH: u64 = 1000;

/// Entity `i` of a fill (`verisim_registry::fixture`), placed as a registration on `voters` would be.
fn entity(
    i: u64,
    client: &ClientId,
    window: &WindowId,
    voters: &[NodeName],
    at_ms: u64,
) -> Result<Proposal, String> {
    let command = fixture::put_entity(i, client, window, |id| place(id, voters, REPLICAS))
        .map_err(|e| e.to_string())?;
    Ok(Proposal { at_ms, command })
}

/// Commits `entities` entities (see the module doc) through node `leader`, `batch` proposals per
/// request from two threads, a failed batch retried through the other nodes. Returns the seconds
/// it took.
pub fn fill(c: &VerisimCluster, leader: u64, entities: u64, batch: u64) -> Result<f64, String> {
    if batch == 0 {
        return Err("the fill's batch must be at least 1".into());
    }
    let started = Instant::now();
    let base = c.node(leader).url("")?;
    let http = Http::new(Duration::from_secs(120));
    let e = |e: verisim::registry::IdError| e.to_string();
    let client = ClientId::new(FILL_CLIENT).map_err(e)?;
    let window = WindowId::new("w1").map_err(e)?;
    let at_ms = now_ms();
    // Two requests: the proposals of one are concurrent, so their order is not fixed.
    let enroll = Proposal {
        at_ms,
        command: Command::EnrollClient {
            client: client.clone(),
            public_key: PublicKey([7; 32]),
        },
    };
    propose_all(&http, &base, &[enroll])?;
    let open = Proposal {
        at_ms,
        command: Command::OpenWindow {
            client: client.clone(),
            window: window.clone(),
            expires_at_ms: at_ms + 24 * 3600 * 1000,
            client_dh: PublicKey([9; 32]),
        },
    };
    propose_all(&http, &base, &[open])?;
    let voters: Vec<NodeName> = c
        .nodes
        .iter()
        .map(|n| NodeName::new(format!("n{}", n.id)).map_err(e))
        .collect::<Result<_, _>>()?;
    let mut urls = vec![base.clone()];
    for n in c.nodes.iter().filter(|n| n.id != leader) {
        urls.push(n.url("")?);
    }
    // Two posting threads, so one batch is in flight while the next is encoded.
    let next = AtomicU64::new(0);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| -> Result<(), String> {
                    let http = Http::new(Duration::from_secs(120));
                    loop {
                        let from = next.fetch_add(batch, Ordering::Relaxed);
                        if from >= entities || super::children::interrupted() {
                            return Ok(());
                        }
                        let to = (from + batch).min(entities);
                        let at_ms = now_ms();
                        let proposals = (from..to)
                            .map(|i| entity(i, &client, &window, &voters, at_ms))
                            .collect::<Result<Vec<_>, _>>()?;
                        // A leader change under load can time a proposal out: retry the batch
                        // through the next node. Safe: the registry answers a retried request id
                        // with its first outcome.
                        let mut attempt = 0;
                        while let Err(e) =
                            propose_all(&http, &urls[attempt % urls.len()], &proposals)
                        {
                            attempt += 1;
                            if attempt >= 6 {
                                return Err(e);
                            }
                            eprintln!("batch at {from} failed ({e}); retrying");
                            std::thread::sleep(Duration::from_secs(1));
                        }
                        if to % 100_000 < batch {
                            eprintln!("{to} entities written");
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err("a fill thread panicked".into()))
            })
            .collect::<Result<Vec<()>, String>>()
    })?;
    if super::children::interrupted() {
        return Err("interrupted during the fill".into());
    }
    Ok(started.elapsed().as_secs_f64())
}

/// The leader's snapshot, taken by [`snapshot_every_node`].
pub struct LeaderSnapshot {
    /// Wall time of its `POST /admin/snapshot`.
    pub seconds: f64,
    /// The answer's `written` object (the snapshotter's `clone_us`, `write_us`, ...; null when
    /// there was nothing new to snapshot).
    pub written: serde_json::Value,
}

/// `POST /admin/snapshot` on every node, `leader` first and timed: every node compacts its log,
/// so whichever leads next serves a snapshot rather than the whole log, and a restarted node
/// loads the snapshot rather than replaying the fill.
pub fn snapshot_every_node(c: &VerisimCluster, leader: u64) -> Result<LeaderSnapshot, String> {
    let http = Http::new(Duration::from_secs(900));
    let mut order: Vec<u64> = c.nodes.iter().map(|n| n.id).collect();
    order.sort_by_key(|&n| n != leader);
    let mut taken = LeaderSnapshot {
        seconds: 0.0,
        written: serde_json::Value::Null,
    };
    for n in order {
        let started = Instant::now();
        let r = http.post_empty(&c.node(n).url("/admin/snapshot")?)?;
        if !r.ok() {
            return Err(format!(
                "POST /admin/snapshot on n{n}: {} {}",
                r.status, r.body
            ));
        }
        if n == leader {
            taken = LeaderSnapshot {
                seconds: started.elapsed().as_secs_f64(),
                written: r.body["written"].clone(),
            };
        }
    }
    Ok(taken)
}
