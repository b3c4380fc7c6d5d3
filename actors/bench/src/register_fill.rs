//! The registrations `register`, `drift` and the preload send ([`entity`]), and filling a cluster
//! with N entities the way users do: signed registrations, so that every node's
//! four stores hold them (HNSW graph, graph, tensor and semantic items), not only the registry
//! (`register --preload N --preload-into stores`; the registry-only fill is [`super::fill`]).
//!
//! The fill is a closed loop of [`FILL_WORKERS`] tasks over HTTP/2 (one connection per node),
//! each taking the next entity number until N are registered. A refused registration is retried
//! (at most [`ATTEMPTS`] times for one entity): the fill must end with all N in the stores.
//! Afterwards [`VerisimCluster::wait_idle`] waits out what the nodes still do because of the fill (linking the
//! vectors left in the stores' pending tails into their HNSW graphs, compactions), so that the
//! measured load pays for holding the entities and not for having just received them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use verisim::cli::dev::example_entity;
use verisim_client::auth::IdentityKey;
use verisim_client::http::{Client, ClientError, MultiplexClient, Session};
use verisim_client::wire::{ClientId, ErrorCode, RegisterRequest, TensorData, TensorPayload};

use super::cluster::VerisimCluster;

/// Registrations in flight during the fill (the rate flattens from 64 clients on: docs/benchmarks.md).
const FILL_WORKERS: usize = 128;

/// Attempts at one entity before the fill gives up.
const ATTEMPTS: u32 = 5;

/// A registration of entity `id`; `seed` varies its vector and tensor.
pub fn entity(id: &str, seed: u64) -> Result<RegisterRequest, String> {
    let mut r = example_entity(id)?;
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        #[allow(clippy::cast_precision_loss)]
        let v = (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        v
    };
    r.vector.values = (0..128).map(|_| next()).collect();
    r.tensor = TensorPayload::from_typed(
        vec![4, 4],
        &TensorData::F32((0..16).map(|_| next()).collect()),
    );
    Ok(r)
}

/// Enrolls client `name` (its key derived from `seed`) and opens a trust window of `window` for it.
pub fn open_session(
    urls: &[String],
    name: &str,
    seed: u8,
    window: Duration,
) -> Result<Session, String> {
    let admin = Client::new(urls).map_err(|e| e.to_string())?;
    let identity = IdentityKey::from_seed(&[seed; 32]);
    let me = ClientId::new(name).map_err(|e| e.to_string())?;
    admin
        .register_client(&me, &identity.public())
        .map_err(|e| format!("registering the client {name}: {e}"))?;
    admin
        .open_window(&identity, &me, window)
        .map_err(|e| format!("opening a window for {name}: {e}"))
}

/// Registers entities `p0` … `p{entities-1}` through every node of `c`. Returns the seconds it
/// took.
pub fn fill(c: &VerisimCluster, entities: u64) -> Result<f64, String> {
    let urls = c.urls()?;
    let session = open_session(&urls, "bench-preload", 11, Duration::from_secs(3600))?;
    let started = Instant::now();
    let rt = super::load::client_runtime()?;
    rt.block_on(async {
        let mut clients = Vec::new();
        for url in &urls {
            let client = MultiplexClient::connect(url)
                .await
                .map_err(|e| format!("HTTP/2 connection to {url}: {e}"))?;
            clients.push(client.with_session(session.clone()));
        }
        let next = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicU64::new(0));
        let tasks: Vec<_> = (0..FILL_WORKERS)
            .map(|w| {
                let client = clients[w % clients.len()].clone();
                let (next, done) = (next.clone(), done.clone());
                tokio::spawn(async move { register_until(&client, entities, &next, &done).await })
            })
            .collect();
        let progress = {
            let done = done.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    let n = done.load(Ordering::Relaxed);
                    let s = started.elapsed().as_secs_f64();
                    eprintln!(
                        "preload: {n} of {entities} registered in {s:.0} s ({:.0}/s)",
                        n as f64 / s
                    );
                }
            })
        };
        let mut failed = None;
        for t in tasks {
            let r = t.await.map_err(|e| format!("a fill task: {e}"))?;
            if let Err(e) = r {
                // Stop the others: the fill cannot finish.
                next.store(entities, Ordering::Relaxed);
                failed.get_or_insert(e);
            }
        }
        progress.abort();
        failed.map_or(Ok(()), Err)
    })?;
    Ok(started.elapsed().as_secs_f64())
}

async fn register_until(
    client: &MultiplexClient,
    entities: u64,
    next: &AtomicU64,
    done: &AtomicU64,
) -> Result<(), String> {
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= entities {
            return Ok(());
        }
        let req = entity(&format!("p{i}"), i)?;
        let mut attempt = 1;
        loop {
            match client.register(&req).await {
                Ok(_) => break,
                // An earlier attempt that answered late may have registered it.
                Err(ClientError::Api {
                    code: Some(ErrorCode::AlreadyExists),
                    ..
                }) => break,
                Err(e) if attempt >= ATTEMPTS => {
                    return Err(format!("registering p{i}, {attempt} attempts: {e}"));
                }
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        done.fetch_add(1, Ordering::Relaxed);
    }
}
