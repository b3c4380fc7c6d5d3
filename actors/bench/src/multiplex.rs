//! Closed-loop load over HTTP/2: `workers` tokio tasks sharing a few connections
//! (`verisim_client::http::MultiplexClient`), each task sending its next request when the last one
//! answered, so many requests are in flight on every connection. This is VeriSim driven the way
//! the etcd gRPC comparison drives etcd (`etcd_grpc`): at its best, with the load generator's own
//! cost per request small.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use verisim_client::http::MultiplexClient;

use super::load::{LevelResult, Tally, Window};

/// Where a level's connections go and what they carry.
pub struct Target {
    /// The nodes' URLs; connection `c` goes to `nodes[c % nodes.len()]`.
    pub nodes: Vec<String>,
    /// Connections per level, shared round robin by the workers (at most one per worker).
    pub connections: usize,
    /// A trust window to sign in, for signed calls.
    pub session: Option<verisim_client::http::Session>,
}

/// Runs each of `levels` for `duration` (after the warm-up): worker `p`'s `i`-th request is
/// `op(client, p, i)` on the connection it was given. `servers` are the process ids whose CPU is
/// the system under test's.
pub fn run_levels<F, Fut>(
    target: &Target,
    levels: &[usize],
    duration: Duration,
    servers: &[u32],
    op: F,
) -> Result<Vec<LevelResult>, String>
where
    F: Fn(MultiplexClient, usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let rt = super::load::client_runtime()?;
    let op = Arc::new(op);
    rt.block_on(async {
        let mut out = Vec::new();
        for &workers in levels {
            out.push(run_level(target, workers, duration, servers, op.clone()).await?);
        }
        Ok(out)
    })
}

async fn run_level<F, Fut>(
    target: &Target,
    workers: usize,
    duration: Duration,
    servers: &[u32],
    op: Arc<F>,
) -> Result<LevelResult, String>
where
    F: Fn(MultiplexClient, usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    if target.nodes.is_empty() {
        return Err("no node to connect to".into());
    }
    let mut clients = Vec::new();
    for c in 0..target.connections.clamp(1, workers.max(1)) {
        let node = &target.nodes[c % target.nodes.len()];
        let client = MultiplexClient::connect(node)
            .await
            .map_err(|e| format!("HTTP/2 connection to {node}: {e}"))?;
        clients.push(match &target.session {
            Some(s) => client.with_session(s.clone()),
            None => client,
        });
    }
    run_tasks(&clients, workers, duration, servers, move |client, p, i| {
        op(client.clone(), p, i)
    })
    .await
}

/// The closed loop itself, for any client that many tasks share: `workers` tasks, task `p`
/// holding `clients[p % clients.len()]` and sending its `i`-th request as `op(&client, p, i)`
/// when the last one answered, until the window (after the warm-up) ends. `clients` must not be
/// empty. Also the etcd gRPC load (`etcd_grpc`) runs on it.
pub async fn run_tasks<C, F, Fut>(
    clients: &[C],
    workers: usize,
    duration: Duration,
    servers: &[u32],
    op: F,
) -> Result<LevelResult, String>
where
    C: Clone + Send + Sync + 'static,
    F: Fn(&C, usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    if clients.is_empty() {
        return Err("no client to send with".into());
    }
    let op = Arc::new(op);
    let window = Window::open(duration);
    let tasks: Vec<_> = (0..workers)
        .map(|p| {
            let client = clients[p % clients.len()].clone();
            let window = window.clone();
            let op = op.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut i = 0u64;
                while window.running() {
                    let t0 = Instant::now();
                    let r = op(&client, p, i).await;
                    window.record(&mut tally, t0, r);
                    i += 1;
                }
                tally
            })
        })
        .collect();
    let servers = servers.to_vec();
    let measured = tokio::task::spawn_blocking(move || window.measure(&servers))
        .await
        .map_err(|e| format!("measuring thread: {e}"))?;
    let mut tallies = Vec::new();
    for t in tasks {
        if let Ok(t) = t.await {
            tallies.push(t);
        }
    }
    Ok(measured.result(workers, tallies))
}
