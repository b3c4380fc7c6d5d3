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

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use verisim_client::http::{Client, RetryPolicy};

use super::cluster::VerisimCluster;
use super::fill::{QUIET_SNAPSHOTS, snapshot_every_node};
use super::load::{LevelResult, run_level_with};
use super::register_fill::entity;
use verisim::cli::dev::DEV_SCHEMA;

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
    /// Entities already registered, comma-separated (`0,100k,1M`): for each, a fresh cluster
    /// filled with that many entities (`--preload-into` says how), then the `--clients` levels.
    #[arg(long, value_parser = super::args::parse_counts)]
    pub preload: Option<std::vec::Vec<u64>>,
    /// `registry`: the preloaded entities are committed to the registry only, through `POST
    /// /admin/proposals` (fast; the stores hold none of them), snapshotted and restarted with the
    /// normal snapshot policy, periodic drift passes off. `stores`: they are registered for real
    /// (signed registrations, every node's stores hold them; at the registration rate), then the
    /// nodes are left to go idle; the default config throughout.
    #[arg(long, value_enum, default_value_t = PreloadInto::Registry)]
    pub preload_into: PreloadInto,
}

/// Where `--preload`'s entities are put before the measured load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PreloadInto {
    Registry,
    Stores,
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
    /// One cluster's run: one without `--preload`, one per preload level with it.
    pub runs: Vec<RegisterRun>,
}

#[derive(Debug, Serialize)]
pub struct RegisterRun {
    pub preload: Option<Preload>,
    pub levels: Vec<RegisterLevel>,
    /// Store fsyncs and the writes they covered, summed over the nodes, for the whole run.
    pub store_syncs: u64,
    pub store_writes: u64,
}

/// How a `--preload` run's cluster was prepared.
#[derive(Debug, Serialize)]
pub struct Preload {
    pub into: PreloadInto,
    /// Entities registered before the load (with `into: registry`, in the registry only).
    pub entities: u64,
    pub fill_s: f64,
    /// How the cluster was brought to rest after the fill.
    pub after: AfterFill,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AfterFill {
    /// `--preload-into registry`.
    Restarted {
        /// The leader's `POST /admin/snapshot` after the fill.
        snapshot_s: f64,
        /// Every node stopped and started again (loading its snapshot).
        restart_s: f64,
        /// Until the leader's rebalancer had run its first round.
        settle_s: f64,
        /// Then until every node's log purger was idle ([`wait_purged`]).
        purge_s: f64,
    },
    /// `--preload-into stores`: until the nodes went idle ([`VerisimCluster::wait_idle`]).
    Idle { idle_s: f64 },
}

#[derive(Debug, Serialize)]
pub struct RegisterLevel {
    #[serde(flatten)]
    pub result: LevelResult,
    /// Registry snapshots the nodes wrote during the level (warm-up included), all nodes together.
    pub snapshots: u64,
}

pub fn run(args: &RegisterArgs) -> Result<RegisterReport, String> {
    if args.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    let config = tempfile::Builder::new()
        .prefix("verisim-bench-config-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let schema = config.path().join("schema.json");
    std::fs::write(&schema, DEV_SCHEMA).map_err(|e| format!("writing the schema: {e}"))?;
    let stores = format!(
        "[stores]\nschema_file = {:?}\n",
        schema.display().to_string()
    );
    let toml = config.path().join("node.toml");
    let runs = match &args.preload {
        None => {
            std::fs::write(&toml, &stores).map_err(|e| format!("writing the node config: {e}"))?;
            let c = VerisimCluster::start(
                args.nodes,
                &["--config".into(), toml.display().to_string()],
            )?;
            vec![measure(&c, args, None)?]
        }
        Some(levels) => levels
            .iter()
            .map(|&entities| match args.preload_into {
                PreloadInto::Registry => preloaded(args, &stores, &toml, entities),
                PreloadInto::Stores => registered(args, &stores, &toml, entities),
            })
            .collect::<Result<_, _>>()?,
    };
    Ok(RegisterReport {
        nodes: args.nodes,
        via: args.via,
        api: args.api,
        runs,
    })
}

/// Periodic drift passes off during `--preload` runs: the filled entities are in the registry only,
/// so a pass would try to repair all of them, a cost of the fill rather than of having them.
const NO_DRIFT: &str = "[drift]\ninterval_s = 0\n";

/// A fresh cluster, filled with `entities` registry entities ([`super::fill`]) with automatic
/// snapshots off, a snapshot on every node, every node restarted with the config of the run (the
/// default snapshot policy), then [`measure`]. Every level goes through the same steps, 0 too.
fn preloaded(
    args: &RegisterArgs,
    stores: &str,
    toml: &Path,
    entities: u64,
) -> Result<RegisterRun, String> {
    std::fs::write(
        toml,
        format!(
            "{stores}{NO_DRIFT}{QUIET_SNAPSHOTS}[raft]\nelection_ticks = {FILL_ELECTION_TICKS}\n"
        ),
    )
    .map_err(|e| format!("writing the node config: {e}"))?;
    let mut c = VerisimCluster::start(
        args.nodes,
        &[
            "--config".into(),
            toml.display().to_string(),
            "--admin-raw-proposals".into(),
        ],
    )?;
    let r = preload_and_measure(&mut c, args, stores, entities);
    r.map_err(|e| format!("{e}\n{}", c.logs()))
}

/// A fresh cluster with the default config, `entities` registered for real
/// ([`super::register_fill`]), left to go idle, then [`measure`].
fn registered(
    args: &RegisterArgs,
    stores: &str,
    toml: &Path,
    entities: u64,
) -> Result<RegisterRun, String> {
    std::fs::write(toml, stores).map_err(|e| format!("writing the node config: {e}"))?;
    let c = VerisimCluster::start(args.nodes, &["--config".into(), toml.display().to_string()])?;
    let run = || -> Result<RegisterRun, String> {
        c.wait_leader(Duration::from_secs(30))?;
        eprintln!("preload: registering {entities} entities");
        let fill_s = super::register_fill::fill(&c, entities)?;
        let idle_s = c.wait_idle()?;
        eprintln!(
            "preload: {entities} registered in {fill_s:.1} s, nodes idle {idle_s:.1} s later"
        );
        let mut run = measure(&c, args, Some(entities))?;
        run.preload = Some(Preload {
            into: PreloadInto::Stores,
            entities,
            fill_s,
            after: AfterFill::Idle { idle_s },
        });
        Ok(run)
    };
    run().map_err(|e| format!("{e}\n{}", c.logs()))
}

/// Election timeout of the nodes during a fill (as `join --election-ticks`' default): a
/// CPU-starved fill on a small machine should not keep the cluster in elections.
const FILL_ELECTION_TICKS: u32 = 50;

fn preload_and_measure(
    c: &mut VerisimCluster,
    args: &RegisterArgs,
    stores: &str,
    entities: u64,
) -> Result<RegisterRun, String> {
    let (leader, _) = c.wait_leader(Duration::from_secs(30))?;
    eprintln!("preload: filling {entities} entities through n{leader}");
    let fill_s = if entities > 0 {
        super::fill::fill(c, leader, entities, super::fill::DEFAULT_BATCH)?
    } else {
        0.0
    };
    let (leader, _) = c.wait_leader(Duration::from_secs(30))?;
    let snapshot = snapshot_every_node(c, leader)?;
    c.rewrite_config(&format!("{stores}{NO_DRIFT}"))?;
    let started = Instant::now();
    c.restart_all(Duration::from_secs(60))?;
    let restart_s = started.elapsed().as_secs_f64();
    let settle_s = settle(c)?;
    let purge_s = wait_purged(c)?;
    eprintln!(
        "preload: {entities} entities in {fill_s:.1} s, leader snapshot {:.2} s, restart {restart_s:.1} s, settled after {settle_s:.1} s, log purged after {purge_s:.1} s more",
        snapshot.seconds
    );
    let mut run = measure(c, args, Some(entities))?;
    run.preload = Some(Preload {
        into: PreloadInto::Registry,
        entities,
        fill_s,
        after: AfterFill::Restarted {
            snapshot_s: snapshot.seconds,
            restart_s,
            settle_s,
            purge_s,
        },
    });
    Ok(run)
}

/// After the restart: waits until the leader's rebalancer has looked at the (new) voters once (a
/// scan of every entity, a one-off of the restart) and checks the fill's placement is the one the
/// nodes would give (nothing misplaced, so nothing moves during the run). Returns the seconds
/// waited.
fn settle(c: &VerisimCluster) -> Result<f64, String> {
    let started = Instant::now();
    let http = super::http::Http::new(Duration::from_secs(60));
    loop {
        let (leader, _) = c.wait_leader(Duration::from_secs(30))?;
        // Not polled fast: the view counts misplaced entities, a scan of every entity (off the
        // replica's lock, but a second of CPU at 1M).
        let r = http.get(&c.node(leader).url("/admin/placement")?)?;
        if r.ok() && !r.body["last"].is_null() {
            let misplaced = r.body["misplaced"].as_u64().unwrap_or(u64::MAX);
            if misplaced != 0 {
                return Err(format!(
                    "{misplaced} entities misplaced after the fill: {}",
                    r.body
                ));
            }
            return Ok(started.elapsed().as_secs_f64());
        }
        if started.elapsed() > Duration::from_secs(300) || super::children::interrupted() {
            return Err(format!(
                "the leader's rebalancer has not run a round: {}",
                r.body
            ));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The thread that removes a compacted log prefix (`verisim-log-purge`, cut to 15 bytes).
const PURGER_THREAD: &str = "verisim-log-pur";

/// Waits until no node's log purger has used CPU for two seconds, and returns the seconds waited.
///
/// The snapshots after the fill compact the whole filled log (1M entries at 1M), and each node's
/// purger then removes that prefix in the background, which a restart resumes. That is a one-off
/// of filling with snapshots off, not a cost of holding the entities: measured during it, it took
/// most of the machine (docs/benchmarks.md, 2026-12-07 sixth session). Gives up after 15 minutes
/// with a warning.
fn wait_purged(c: &VerisimCluster) -> Result<f64, String> {
    // Any CPU time at all counts as busy: the purgers are idle when their counters stand still.
    c.wait_quiet("the log purgers", f64::MIN_POSITIVE, |p| {
        super::cpu::threads_cpu_ms(p, PURGER_THREAD)
    })
}

/// The registration load on a started cluster: the bench client registered, a window opened,
/// then every `--clients` level.
fn measure(
    c: &VerisimCluster,
    args: &RegisterArgs,
    preload: Option<u64>,
) -> Result<RegisterRun, String> {
    let (leader, term) = c.wait_leader(Duration::from_secs(30))?;
    let urls = c.urls()?;
    eprintln!(
        "verisim: {} nodes up, n{leader} leads at term {term}",
        args.nodes
    );

    let session = super::register_fill::open_session(&urls, "bench", 7, Duration::from_secs(3600))?;
    let once = RetryPolicy {
        max_attempts: 1,
        request_timeout: Duration::from_secs(10),
        ..RetryPolicy::default()
    };

    let servers = c.pids();
    let mut levels = Vec::new();
    let tag = preload.map_or(String::new(), |n| format!(" ({n} preloaded)"));
    for &n in &args.clients {
        let snapshots_before = metric_sums(c, &[SNAPSHOTS])[0];
        let r = if args.api == ClientApi::Http2 {
            let target = super::multiplex::Target {
                nodes: match args.via {
                    Via::All => urls.clone(),
                    Via::Leader => vec![urls[(leader - 1) as usize].clone()],
                },
                connections: args.connections,
                session: Some(session.clone()),
            };
            let mut r = super::multiplex::run_levels(
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
            r.pop().ok_or("no result for the level")?
        } else {
            let urls = urls.clone();
            let session = session.clone();
            let once = once.clone();
            let via = args.via;
            run_level_with(
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
            )
        };
        let snapshots = metric_sums(c, &[SNAPSHOTS])[0].saturating_sub(snapshots_before);
        eprintln!(
            "register {n:>4} clients{tag} ({:?}): {:.0} registrations/s, {snapshots} snapshots",
            args.api, r.commits_per_s
        );
        levels.push(RegisterLevel {
            result: r,
            snapshots,
        });
    }
    if let Some(l) = c.leader().filter(|&(l, _)| l != leader) {
        eprintln!("warning: leadership moved to n{} during the run", l.0);
    }
    let sums = metric_sums(
        c,
        &[
            "verisim_store_syncs_total",
            "verisim_store_synced_writes_total",
        ],
    );
    Ok(RegisterRun {
        preload: None,
        levels,
        store_syncs: sums[0],
        store_writes: sums[1],
    })
}

/// Registry snapshots written, summed over the nodes.
const SNAPSHOTS: &str = "verisim_snapshots_total";

/// The values of the counters `names`, each summed over the nodes' `/metrics` (a node that does not
/// answer counts 0).
fn metric_sums(c: &VerisimCluster, names: &[&str]) -> Vec<u64> {
    let http = super::http::Http::new(Duration::from_secs(5));
    let mut totals = vec![0; names.len()];
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
            if let Some(i) = names.iter().position(|&w| w == name) {
                totals[i] += v.parse::<f64>().unwrap_or(0.0) as u64;
            }
        }
    }
    totals
}

impl RegisterReport {
    pub fn markdown(&self) -> String {
        let preloaded = self.runs.iter().any(|r| r.preload.is_some());
        let mut s = format!(
            "{} nodes, clients via {:?}, {:?}\n\n",
            self.nodes, self.via, self.api
        );
        if preloaded {
            s.push_str("| preloaded entities ");
        }
        s.push_str(
            "| clients | registrations/s | p50 | p99 | errors | CPU s / 1k (machine) | CPU s / 1k (nodes) | snapshots | first error |\n",
        );
        if preloaded {
            s.push_str("|---");
        }
        s.push_str("|---|---|---|---|---|---|---|---|---|\n");
        for run in &self.runs {
            for level in &run.levels {
                let l = &level.result;
                if let Some(p) = &run.preload {
                    s.push_str(&format!("| {} ", p.entities));
                }
                let (p50, p99) = l.latency.as_ref().map_or(("–".into(), "–".into()), |s| {
                    (format!("{:.2} ms", s.p50_ms), format!("{:.2} ms", s.p99_ms))
                });
                let (machine, nodes) = super::cpu::columns(l.cpu.as_ref());
                s.push_str(&format!(
                    "| {} | {:.0} | {p50} | {p99} | {} | {machine} | {nodes} | {} | {} |\n",
                    l.proposers,
                    l.commits_per_s,
                    l.errors,
                    level.snapshots,
                    l.first_error.as_deref().unwrap_or("")
                ));
            }
        }
        s.push('\n');
        for run in &self.runs {
            if let Some(p) = &run.preload {
                s.push_str(&match p.after {
                    AfterFill::Restarted {
                        snapshot_s,
                        restart_s,
                        settle_s,
                        purge_s,
                    } => format!(
                        "{} preloaded (registry only): fill {:.1} s, leader snapshot {snapshot_s:.2} s, restart {restart_s:.1} s, settled in {settle_s:.1} s, log purged {purge_s:.1} s later; ",
                        p.entities, p.fill_s
                    ),
                    AfterFill::Idle { idle_s } => format!(
                        "{} preloaded (registered, in the stores): fill {:.1} s ({:.0}/s), nodes idle {idle_s:.1} s later; ",
                        p.entities,
                        p.fill_s,
                        p.entities as f64 / p.fill_s.max(1e-9)
                    ),
                });
            }
            s.push_str(&format!(
                "store fsyncs {} for {} writes ({:.1} writes per fsync)\n",
                run.store_syncs,
                run.store_writes,
                run.store_writes as f64 / run.store_syncs.max(1) as f64
            ));
        }
        s
    }
}
