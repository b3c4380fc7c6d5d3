//! etcd at its best for `verisim-bench commits`: puts through its native gRPC API with the
//! `etcd-client` crate (tonic, HTTP/2), many requests in flight on each connection. Built with the
//! `etcd-grpc` feature (its build needs `protoc`, Debian's `protobuf-compiler`); without it the
//! commits bench says so and compares against the JSON gateway only.

use std::time::Duration;

use etcd_client::{Client, KvClient};

use super::load::LevelResult;

/// Closed-loop puts at each of `levels`: `proposers` tasks on a tokio runtime, spread over
/// `connections` gRPC connections to `endpoint` (the leader's client URL), each task sending its
/// next put when the last one answered. `servers` are etcd's process ids, for the CPU columns.
pub fn run_levels(
    endpoint: &str,
    levels: &[usize],
    duration: Duration,
    connections: usize,
    servers: &[u32],
) -> Result<Vec<LevelResult>, String> {
    let rt = super::load::client_runtime()?;
    rt.block_on(async {
        let mut out = Vec::new();
        for &proposers in levels {
            out.push(run_level(endpoint, proposers, duration, connections, servers).await?);
        }
        Ok(out)
    })
}

async fn run_level(
    endpoint: &str,
    proposers: usize,
    duration: Duration,
    connections: usize,
    servers: &[u32],
) -> Result<LevelResult, String> {
    let mut kvs: Vec<KvClient> = Vec::new();
    for _ in 0..connections.clamp(1, proposers) {
        let client = Client::connect([endpoint], None)
            .await
            .map_err(|e| format!("etcd gRPC connect to {endpoint}: {e}"))?;
        kvs.push(client.kv_client());
    }
    super::multiplex::run_tasks(&kvs, proposers, duration, servers, |kv, p, i| {
        let mut kv = kv.clone();
        async move {
            kv.put(format!("b{p}"), format!("127.0.0.1:{i}"), None)
                .await
                .map(|_| ())
                .map_err(|e| format!("etcd gRPC put: {e}"))
        }
    })
    .await
}
