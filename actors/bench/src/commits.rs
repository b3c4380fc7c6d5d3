//! `verisim-bench commits`: commits/s and latency of a 3-node cluster at several numbers of
//! concurrent proposers, and of a 3-member etcd under the same load when etcd is installed.
//!
//! Every proposer sends to the leader (for every system; `--via follower` sends verisim's to a
//! follower, which forwards them to the leader in batches): a verisim proposal is
//! `PUT /admin/nodes/b<p>` (a `SetNode` registry command, answered once applied), either over
//! HTTP/2 (a task per proposer, the proposers sharing `--connections` connections, many requests
//! in flight on each: verisim at its best) or over the proposer's own HTTP/1.1 keep-alive
//! connection; an etcd one is a put of key `b<p>`, either
//! `POST /v3/kv/put` through the JSON gateway (a connection per proposer, as verisim) or through
//! etcd's gRPC API (`etcd_grpc`, many puts in flight per connection: etcd at its best). Each level
//! also reports the CPU seconds it cost per 1,000 commits (`cpu`).

use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::args::EtcdMode;
use super::cluster::VerisimCluster;
use super::etcd::{self, EtcdCluster};
use super::http::Http;
use super::load::{LevelResult, run_level};
use super::multiplex::Target;
use super::stages::{Scrape, Stages};
use std::collections::BTreeMap;

#[derive(Debug, Clone, clap::Args)]
pub struct CommitsArgs {
    /// Concurrency levels (closed-loop proposers), comma-separated.
    #[arg(long, default_value = "1,16,64,256", value_parser = super::args::parse_levels)]
    pub proposers: std::vec::Vec<usize>,
    /// Measured time per level (after a 1 s warm-up).
    #[arg(long, default_value = "10s", value_parser = super::args::parse_duration)]
    pub duration: Duration,
    /// `auto` (etcd on the PATH), `off`, or the path of an etcd binary.
    #[arg(long, default_value = "auto", value_parser = super::args::parse_etcd)]
    pub etcd: EtcdMode,
    /// etcd's APIs to drive: `gateway` (HTTP/1.1 JSON, one connection per proposer, as verisim)
    /// and `grpc` (its native API, many requests in flight per connection; needs the bench built
    /// with `--features etcd-grpc`).
    #[arg(long, value_delimiter = ',', default_value = "gateway,grpc")]
    pub etcd_api: Vec<EtcdApi>,
    /// How to drive verisim: `http2` (a task per proposer, many requests in flight on each of
    /// `--connections` connections) and `http1` (a thread and a keep-alive connection per
    /// proposer). The first one listed is the reference of the ratio column.
    #[arg(long, value_delimiter = ',', default_value = "http2,http1")]
    pub verisim_api: Vec<VerisimApi>,
    /// Connections the multiplexed proposers share (verisim HTTP/2, etcd gRPC; at most one per
    /// proposer).
    #[arg(long, alias = "grpc-connections", default_value_t = 4)]
    pub connections: usize,
    /// Which verisim node the proposers send to: `leader`, or `follower` (a follower forwards
    /// each proposal to the leader, batched with the others queued meanwhile). etcd is always
    /// driven at its leader.
    #[arg(long, default_value = "leader")]
    pub via: Via,
}

/// The verisim node the proposers reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    Leader,
    Follower,
}

/// How verisim's proposers reach the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum VerisimApi {
    Http2,
    Http1,
}

/// One of etcd's client APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum EtcdApi {
    Gateway,
    Grpc,
}

/// One system under one way of driving it, at every level.
#[derive(Debug, Serialize)]
pub struct SystemRun {
    /// `verisim`, `etcd gateway` or `etcd gRPC`.
    pub system: String,
    pub levels: Vec<LevelResult>,
    /// Where verisim's commits spent their time, per level (empty for etcd).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<Stages>,
}

#[derive(Debug, Serialize)]
pub struct CommitsReport {
    pub runs: Vec<SystemRun>,
    pub etcd_version: Option<String>,
    /// Why a comparison is missing, said loudly above the table.
    pub skipped: Vec<String>,
}

pub fn run(args: &CommitsArgs) -> Result<CommitsReport, String> {
    let mut runs = Vec::new();
    {
        let c = VerisimCluster::start(3, &[])?;
        let (leader, term) = c.wait_leader(Duration::from_secs(30))?;
        let target = match args.via {
            Via::Leader => leader,
            Via::Follower => c
                .nodes
                .iter()
                .map(|n| n.id)
                .find(|&id| id != leader)
                .ok_or("no follower to propose through")?,
        };
        let via = match args.via {
            Via::Leader => String::new(),
            Via::Follower => format!(" via follower n{target}"),
        };
        eprintln!("verisim: 3 nodes up, n{leader} leads at term {term}; proposing to n{target}");
        let servers = c.pids();
        let http = Http::new(Duration::from_secs(5));
        let scrape_all = || -> Result<BTreeMap<u64, Scrape>, String> {
            c.nodes
                .iter()
                .map(|n| Ok((n.id, Scrape::read(&http, &n.url("")?)?)))
                .collect()
        };
        for api in &args.verisim_api {
            let (mut levels, mut stages) = (Vec::new(), Vec::new());
            // One level at a time, each between two readings of the nodes' histograms.
            for &n in &args.proposers {
                let before = scrape_all()?;
                let mut r = match api {
                    VerisimApi::Http2 => {
                        verisim_http2(args, &[n], &c.node(target).url("")?, &servers)?
                    }
                    VerisimApi::Http1 => {
                        verisim_http1(args, &[n], &c.node(target).url("/admin/nodes/")?, &servers)
                    }
                };
                let after = scrape_all()?;
                if let Some(r) = r.pop() {
                    stages.push(Stages::between(
                        n,
                        r.commits_per_s,
                        &before,
                        &after,
                        target,
                        leader,
                    ));
                    levels.push(r);
                }
            }
            let api = match api {
                VerisimApi::Http2 => "HTTP/2",
                VerisimApi::Http1 => "HTTP/1.1",
            };
            runs.push(SystemRun {
                system: format!("verisim {api}{via}"),
                levels,
                stages,
            });
        }
        if let Some(l) = c.leader().filter(|&(l, _)| l != leader) {
            eprintln!("warning: leadership moved to n{} during the run", l.0);
        }
    }
    let mut skipped = Vec::new();
    let mut etcd_version = None;
    match args.etcd.binary() {
        Err(why) => skipped.push(format!("ETCD COMPARISON SKIPPED: {why}")),
        Ok(bin) => {
            let e = EtcdCluster::start(&bin, 3)?;
            let leader = e.wait_leader(Duration::from_secs(30))?;
            eprintln!(
                "{}: 3 members up; proposing to the leader {leader}",
                e.version
            );
            etcd_version = Some(e.version.clone());
            let servers = e.pids();
            if args.etcd_api.contains(&EtcdApi::Gateway) {
                let mut levels = Vec::new();
                for &n in &args.proposers {
                    let leader = leader.clone();
                    let r = run_level(n, args.duration, &servers, move |http, p, i| {
                        etcd::put(http, &leader, &format!("b{p}"), &format!("127.0.0.1:{i}"))
                    });
                    eprintln!(
                        "etcd gateway {n:>4} proposers: {:.0} puts/s",
                        r.commits_per_s
                    );
                    levels.push(r);
                }
                runs.push(SystemRun {
                    system: "etcd gateway".into(),
                    levels,
                    stages: Vec::new(),
                });
            }
            if args.etcd_api.contains(&EtcdApi::Grpc) {
                match grpc_levels(args, &leader, &servers) {
                    Ok(levels) => runs.push(SystemRun {
                        system: "etcd gRPC".into(),
                        levels,
                        stages: Vec::new(),
                    }),
                    Err(why) => skipped.push(format!("ETCD gRPC COMPARISON SKIPPED: {why}")),
                }
            }
        }
    }
    for s in &skipped {
        eprintln!("!!! {s}");
    }
    Ok(CommitsReport {
        runs,
        etcd_version,
        skipped,
    })
}

/// What a proposer's `i`-th proposal sets node `b<p>`'s addresses to.
fn proposal(i: u64) -> serde_json::Value {
    json!({"cluster_addr": format!("127.0.0.1:{i}"), "http_addr": "127.0.0.1:1"})
}

/// verisim at its best: the proposers are tasks sharing `--connections` HTTP/2 connections.
fn verisim_http2(
    args: &CommitsArgs,
    proposers: &[usize],
    leader: &str,
    servers: &[u32],
) -> Result<Vec<LevelResult>, String> {
    let target = Target {
        nodes: vec![leader.to_string()],
        connections: args.connections,
        session: None,
    };
    let levels = super::multiplex::run_levels(
        &target,
        proposers,
        args.duration,
        servers,
        |client, p, i| async move {
            client
                .admin::<_, serde_json::Value>(
                    "PUT",
                    &format!("/admin/nodes/b{p}"),
                    Some(&proposal(i)),
                )
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        },
    )?;
    for r in &levels {
        eprintln!(
            "verisim HTTP/2   {:>4} proposers: {:.0} commits/s",
            r.proposers, r.commits_per_s
        );
    }
    Ok(levels)
}

/// Each proposer a thread with its own HTTP/1.1 keep-alive connection.
fn verisim_http1(
    args: &CommitsArgs,
    proposers: &[usize],
    url: &str,
    servers: &[u32],
) -> Vec<LevelResult> {
    let mut levels = Vec::new();
    for &n in proposers {
        let url = url.to_string();
        let r = run_level(n, args.duration, servers, move |http, p, i| {
            let r = http.put_json(&format!("{url}b{p}"), &proposal(i))?;
            if r.ok() {
                Ok(())
            } else {
                Err(format!("{} {}", r.status, r.body))
            }
        });
        eprintln!(
            "verisim HTTP/1.1 {n:>4} proposers: {:.0} commits/s",
            r.commits_per_s
        );
        levels.push(r);
    }
    levels
}

#[cfg(feature = "etcd-grpc")]
fn grpc_levels(
    args: &CommitsArgs,
    leader: &str,
    servers: &[u32],
) -> Result<Vec<LevelResult>, String> {
    let levels = super::etcd_grpc::run_levels(
        leader,
        &args.proposers,
        args.duration,
        args.connections,
        servers,
    )?;
    for r in &levels {
        eprintln!(
            "etcd gRPC    {:>4} proposers: {:.0} puts/s",
            r.proposers, r.commits_per_s
        );
    }
    Ok(levels)
}

#[cfg(not(feature = "etcd-grpc"))]
fn grpc_levels(_: &CommitsArgs, _: &str, _: &[u32]) -> Result<Vec<LevelResult>, String> {
    Err(
        "this verisim-bench was built without the `etcd-grpc` feature (`cargo build --release \
         -p verisim-bench --features etcd-grpc`, which needs protoc: apt-get install \
         protobuf-compiler)"
            .into(),
    )
}

impl CommitsReport {
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        for why in &self.skipped {
            s.push_str(&format!("**{why}.**\n\n"));
        }
        if let Some(v) = &self.etcd_version {
            s.push_str(&format!("etcd: {v}\n\n"));
        }
        s.push_str(
            "| proposers | system | commits/s | p50 | p99 | errors | CPU s / 1k commits (machine) | \
             CPU s / 1k commits (servers) | busy cores | verisim ÷ this |\n",
        );
        s.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
        let Some(verisim) = self.runs.first() else {
            return s;
        };
        for (i, v) in verisim.levels.iter().enumerate() {
            for run in &self.runs {
                let Some(r) = run.levels.get(i) else {
                    continue;
                };
                let lat = match &r.latency {
                    Some(l) => format!("{:.2} ms | {:.2} ms", l.p50_ms, l.p99_ms),
                    None => "– | –".into(),
                };
                let (machine, servers) = super::cpu::columns(r.cpu.as_ref());
                let busy = r.cpu.map_or("–".into(), |c| format!("{:.2}", c.busy_cores));
                let ratio = if r.commits_per_s > 0.0 {
                    format!("{:.2}×", v.commits_per_s / r.commits_per_s)
                } else {
                    "–".into()
                };
                s.push_str(&format!(
                    "| {} | {} | {:.0} | {lat} | {} | {machine} | {servers} | {busy} | {ratio} |\n",
                    r.proposers, run.system, r.commits_per_s, r.errors
                ));
            }
        }
        if self.runs.iter().any(|r| !r.stages.is_empty()) {
            s.push_str(
                "\nWhere verisim's commits spend their time (ms, means over each level, from the \
                 nodes' histograms; the client's round trip is proposers ÷ commits/s):\n\n",
            );
            s.push_str(Stages::HEADER);
            for run in &self.runs {
                for st in &run.stages {
                    s.push_str(&st.row(&run.system));
                }
            }
        }
        for run in &self.runs {
            for r in &run.levels {
                if let Some(e) = &r.first_error {
                    s.push_str(&format!(
                        "\nfirst error of {} at {} proposers: {e}\n",
                        run.system, r.proposers
                    ));
                }
            }
        }
        s
    }
}
