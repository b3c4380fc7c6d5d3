//! `verisim-bench register`: signed registrations per second end to end over HTTP on a 3-node
//! cluster (`--nodes` for more), the seed's whole sequence per request: HMAC check against the
//! trust window, prepare on the receiving node's stores, commit through the registry quorum,
//! import on the entity's replicas (three by default: every node of a 3-node cluster), `201
//! Created` once a majority of them hold it durably.
//!
//! Each closed-loop client is a thread with its own `verisim-client` (its own keep-alive
//! connection, one attempt per call: an error is counted, not retried) bound to one node, clients
//! spread over the nodes round robin (`--via all`) or all on the leader (`--via leader`). Every
//! request registers a new entity: a 128-d vector (seeded, different per entity), 10 edges, a 4×4
//! f32 tensor and 3 annotated properties, as `verisim dev`'s example.

use std::time::Duration;

use serde::Serialize;
use verisim_client::auth::IdentityKey;
use verisim_client::http::{Client, RetryPolicy};
use verisim_client::wire::{ClientId, RegisterRequest, TensorData, TensorPayload};

use super::cluster::VerisimCluster;
use super::load::{LevelResult, run_level_with};
use verisim::cli::dev::{DEV_SCHEMA, example_entity};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
pub enum Via {
    /// Clients spread over every node (proposals from followers are forwarded to the leader).
    All,
    /// Every client on the leader.
    Leader,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RegisterArgs {
    /// Concurrency levels (closed-loop clients), comma-separated.
    #[arg(long, default_value = "1,16,64,256", value_parser = super::args::parse_levels)]
    pub clients: std::vec::Vec<usize>,
    /// Measured time per level (after a 1 s warm-up).
    #[arg(long, default_value = "10s", value_parser = super::args::parse_duration)]
    pub duration: Duration,
    /// Which nodes the clients talk to.
    #[arg(long, value_enum, default_value_t = Via::All)]
    pub via: Via,
    /// Nodes in the cluster. Each entity is placed on `[placement] replicas` of them (3 by
    /// default), so with more nodes than copies each node holds only part of the entities.
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// `http1`: each client a thread with its own keep-alive connection and blocking client;
    /// `http2`: each client a task, the clients sharing `--connections` HTTP/2 connections
    /// (`verisim_client::http::MultiplexClient`), many registrations in flight on each.
    #[arg(long, value_enum, default_value_t = ClientApi::Http1)]
    pub api: ClientApi,
    /// HTTP/2 connections the clients share (`--api http2`), spread over the nodes `--via` names.
    #[arg(long, default_value_t = 3)]
    pub connections: usize,
}

/// How the bench's clients reach the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientApi {
    Http1,
    Http2,
}

#[derive(Debug, Serialize)]
pub struct RegisterReport {
    pub nodes: u64,
    pub via: Via,
    pub api: ClientApi,
    pub levels: Vec<LevelResult>,
    /// Store fsyncs and the writes they covered, summed over the nodes, for the whole run.
    pub store_syncs: u64,
    pub store_writes: u64,
}

/// A registration of entity `id`; `seed` varies its vector and tensor.
pub(super) fn entity(id: &str, seed: u64) -> Result<RegisterRequest, String> {
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

pub fn run(args: &RegisterArgs) -> Result<RegisterReport, String> {
    let config = tempfile::Builder::new()
        .prefix("verisim-bench-config-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let schema = config.path().join("schema.json");
    std::fs::write(&schema, DEV_SCHEMA).map_err(|e| format!("writing the schema: {e}"))?;
    let toml = config.path().join("node.toml");
    std::fs::write(
        &toml,
        format!(
            "[stores]\nschema_file = {:?}\n",
            schema.display().to_string()
        ),
    )
    .map_err(|e| format!("writing the node config: {e}"))?;
    if args.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    let c = VerisimCluster::start(args.nodes, &["--config".into(), toml.display().to_string()])?;
    let (leader, term) = c.wait_leader(Duration::from_secs(30))?;
    let urls: Vec<String> = c
        .nodes
        .iter()
        .map(|n| n.url(""))
        .collect::<Result<_, _>>()?;
    eprintln!(
        "verisim: {} nodes up, n{leader} leads at term {term}",
        args.nodes
    );

    let admin = Client::new(&urls).map_err(|e| e.to_string())?;
    let identity = IdentityKey::from_seed(&[7; 32]);
    let me = ClientId::new("bench").map_err(|e| e.to_string())?;
    admin
        .register_client(&me, &identity.public())
        .map_err(|e| format!("registering the bench client: {e}"))?;
    let session = admin
        .open_window(&identity, &me, Duration::from_secs(3600))
        .map_err(|e| format!("opening a window: {e}"))?;
    let once = RetryPolicy {
        max_attempts: 1,
        request_timeout: Duration::from_secs(10),
        ..RetryPolicy::default()
    };

    let servers = c.pids();
    let mut levels = Vec::new();
    if args.api == ClientApi::Http2 {
        let target = super::multiplex::Target {
            nodes: match args.via {
                Via::All => urls.clone(),
                Via::Leader => vec![urls[(leader - 1) as usize].clone()],
            },
            connections: args.connections,
            session: Some(session.clone()),
        };
        for &n in &args.clients {
            let r = super::multiplex::run_levels(
                &target,
                &[n],
                args.duration,
                &servers,
                // A level's entity ids carry its concurrency, as the HTTP/1.1 clients' do.
                move |client, p, i| {
                    let id = format!("b{n}-{p}-{i}");
                    let req = entity(&id, (n as u64) << 40 | (p as u64) << 24 | i);
                    async move {
                        let req = req?;
                        client
                            .register(&req)
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    }
                },
            )?;
            for r in r {
                eprintln!(
                    "register {:>4} clients (HTTP/2): {:.0} registrations/s",
                    r.proposers, r.commits_per_s
                );
                levels.push(r);
            }
        }
    } else {
        for &n in &args.clients {
            let urls = urls.clone();
            let session = session.clone();
            let once = once.clone();
            let via = args.via;
            let r = run_level_with(
                n,
                args.duration,
                &servers,
                move |p| {
                    let url = match via {
                        Via::All => &urls[p % urls.len()],
                        Via::Leader => &urls[(leader - 1) as usize],
                    };
                    Ok(Client::new(&[url])
                        .map_err(|e| e.to_string())?
                        .with_policy(once.clone())
                        .with_session(session.clone()))
                },
                move |client: &mut Client, p, i| {
                    let id = format!("b{n}-{p}-{i}");
                    let req = entity(&id, (n as u64) << 40 | (p as u64) << 24 | i)?;
                    client.register(&req).map(|_| ()).map_err(|e| e.to_string())
                },
            );
            eprintln!(
                "register {n:>4} clients: {:.0} registrations/s",
                r.commits_per_s
            );
            levels.push(r);
        }
    }
    if let Some(l) = c.leader().filter(|&(l, _)| l != leader) {
        eprintln!("warning: leadership moved to n{} during the run", l.0);
    }
    let (store_syncs, store_writes) = store_sync_counts(&c);
    Ok(RegisterReport {
        nodes: args.nodes,
        via: args.via,
        api: args.api,
        levels,
        store_syncs,
        store_writes,
    })
}

/// Sums `verisim_store_syncs_total` and `verisim_store_synced_writes_total` over the nodes.
fn store_sync_counts(c: &VerisimCluster) -> (u64, u64) {
    let http = super::http::Http::new(Duration::from_secs(5));
    let mut totals = (0, 0);
    for n in &c.nodes {
        let Ok(reply) = n.url("/metrics").and_then(|u| http.get(&u)) else {
            continue;
        };
        let Some(text) = reply.body.as_str() else {
            continue;
        };
        for line in text.lines() {
            let mut parts = line.split_whitespace();
            let (Some(name), Some(v)) = (parts.next(), parts.next()) else {
                continue;
            };
            let v = v.parse::<f64>().unwrap_or(0.0) as u64;
            match name {
                "verisim_store_syncs_total" => totals.0 += v,
                "verisim_store_synced_writes_total" => totals.1 += v,
                _ => {}
            }
        }
    }
    totals
}

impl RegisterReport {
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "{} nodes, clients via {:?}, {:?}\n\n",
            self.nodes, self.via, self.api
        );
        s.push_str(
            "| clients | registrations/s | p50 | p99 | errors | CPU s / 1k (machine) | CPU s / 1k (nodes) | first error |\n|---|---|---|---|---|---|---|---|\n",
        );
        for l in &self.levels {
            let (p50, p99) = l.latency.as_ref().map_or(("–".into(), "–".into()), |s| {
                (format!("{:.2} ms", s.p50_ms), format!("{:.2} ms", s.p99_ms))
            });
            let (machine, nodes) = super::cpu::columns(l.cpu.as_ref());
            s.push_str(&format!(
                "| {} | {:.0} | {p50} | {p99} | {} | {machine} | {nodes} | {} |\n",
                l.proposers,
                l.commits_per_s,
                l.errors,
                l.first_error.as_deref().unwrap_or("")
            ));
        }
        s.push_str(&format!(
            "\nclients via {:?}; store fsyncs {} for {} writes ({:.1} writes per fsync)\n",
            self.via,
            self.store_syncs,
            self.store_writes,
            self.store_writes as f64 / self.store_syncs.max(1) as f64
        ));
        s
    }
}
