//! `verisim-bench drift`: what the drift checker costs on a 3-node cluster holding N entities
//! (every entity on every node): a pass that finds nothing, and passes that repair one lost item,
//! 1% lost items and a whole wiped replica. The items are lost on n3 while it is stopped (its graph
//! items removed from its stores database, or the database deleted); then n3 is restarted and one
//! pass is asked of it (`POST /admin/drift/check`). Each row reports the pass's own numbers (wall
//! time, items repaired, bytes fetched) and the CPU time n3's process used during the request
//! (`/proc/<pid>/stat`).

use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use verisim_client::http::{Client, RetryPolicy};
use verisim_stores::{EntityId, GraphStore, Limits, Modality};

use super::cluster::VerisimCluster;
use super::cpu::process_cpu_ms;
use super::http::Http;
use super::register_fill::entity;
use verisim::cli::dev::DEV_SCHEMA;

#[derive(Debug, Clone, clap::Args)]
pub struct DriftArgs {
    /// Entities registered before the passes (each on all 3 nodes, 4 items each).
    #[arg(long, default_value_t = 100_000)]
    pub entities: u64,
    /// Closed-loop clients loading them.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
}

#[derive(Debug, Serialize)]
pub struct DriftRow {
    pub case: String,
    pub lost: u64,
    pub items_checked: u64,
    pub drifted: u64,
    pub repaired: u64,
    pub bytes_fetched: u64,
    pub pass_ms: u64,
    pub cpu_ms: u64,
}

#[derive(Debug, Serialize)]
pub struct DriftReport {
    pub entities: u64,
    pub load_s: f64,
    pub rows: Vec<DriftRow>,
}

fn pass(c: &VerisimCluster, http: &Http, case: &str, lost: u64) -> Result<DriftRow, String> {
    let n3 = c.node(3);
    let pid = n3.pid().ok_or("n3 is not running")?;
    let before = process_cpu_ms(pid)?;
    let reply = http.post_empty(&n3.url("/admin/drift/check")?)?;
    if !reply.ok() {
        return Err(format!("drift check on n3: {reply:?}"));
    }
    let cpu = process_cpu_ms(pid)?.saturating_sub(before);
    let r: &Value = &reply.body;
    let get = |k: &str| r[k].as_u64().unwrap_or(0);
    let row = DriftRow {
        case: case.to_owned(),
        lost,
        items_checked: get("items_checked"),
        drifted: get("drifted"),
        repaired: get("repaired"),
        bytes_fetched: get("bytes_fetched"),
        pass_ms: get("duration_ms"),
        cpu_ms: cpu,
    };
    eprintln!("drift {case}: {row:?}");
    Ok(row)
}

/// Stops n3, applies `lose` to its stores directory, restarts it and waits until it has applied
/// the leader's commit index.
fn with_n3_stopped(
    c: &mut VerisimCluster,
    lose: impl FnOnce(&std::path::Path) -> Result<(), String>,
) -> Result<(), String> {
    c.kill9(3);
    lose(&c.node(3).data_dir.join("stores"))?;
    c.start_node(3)?;
    let commit = c
        .consensus(1)
        .and_then(|s| s["commit_index"].as_u64())
        .unwrap_or(0);
    c.wait_applied(3, commit, Duration::from_secs(120))
}

/// Removes the graph items of `ids` from a stopped node's stores database.
fn remove_graph_items(stores: &std::path::Path, ids: &[EntityId]) -> Result<(), String> {
    let db = verisim_stores::db::open_db(stores, &verisim_stores::StoreConfig::default())
        .map_err(|e| e.to_string())?;
    let mut g = GraphStore::open(&db, &Limits::default()).map_err(|e| e.to_string())?;
    for id in ids {
        g.remove_item(id).map_err(|e| e.to_string())?;
    }
    Ok(())
}

pub fn run(args: &DriftArgs) -> Result<DriftReport, String> {
    let config = tempfile::Builder::new()
        .prefix("verisim-bench-config-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let schema = config.path().join("schema.json");
    std::fs::write(&schema, DEV_SCHEMA).map_err(|e| format!("writing the schema: {e}"))?;
    let toml = config.path().join("node.toml");
    // Periodic passes off: only the measured ones run.
    std::fs::write(
        &toml,
        format!(
            "[stores]\nschema_file = {:?}\n[drift]\ninterval_s = 0\n",
            schema.display().to_string()
        ),
    )
    .map_err(|e| format!("writing the node config: {e}"))?;
    let mut c = VerisimCluster::start(3, &["--config".into(), toml.display().to_string()])?;
    c.wait_leader(Duration::from_secs(30))?;
    let urls = c.urls()?;
    let session =
        super::register_fill::open_session(&urls, "bench", 9, Duration::from_secs(3600 * 4))?;

    let started = Instant::now();
    let clients = args.clients.max(1) as u64;
    let n = args.entities;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|p| {
                let (urls, session) = (&urls, &session);
                s.spawn(move || -> Result<(), String> {
                    let client = Client::new(&[&urls[(p as usize) % urls.len()]])
                        .map_err(|e| e.to_string())?
                        .with_policy(RetryPolicy::default())
                        .with_session(session.clone());
                    let mut i = p;
                    while i < n {
                        let req = entity(&format!("d{i}"), i)?;
                        client
                            .register(&req)
                            .map_err(|e| format!("registering d{i}: {e}"))?;
                        i += clients;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| "a loader panicked".to_string())?)
            .collect::<Result<Vec<()>, String>>()
    })?;
    let load_s = started.elapsed().as_secs_f64();
    eprintln!("drift: {n} entities registered in {load_s:.1} s");

    let http = Http::new(Duration::from_secs(3600));
    let mut rows = Vec::new();
    rows.push(pass(&c, &http, "no drift", 0)?);
    let id = |i: u64| EntityId::new(format!("d{i}")).map_err(|e| e.to_string());
    let one = vec![id(n / 2)?];
    with_n3_stopped(&mut c, |dir| remove_graph_items(dir, &one))?;
    rows.push(pass(&c, &http, "1 lost item", 1)?);
    let percent: Vec<EntityId> = (0..n.div_ceil(100))
        .map(|i| id(i * 100 % n.max(1)))
        .collect::<Result<_, _>>()?;
    let lost = percent.len() as u64;
    with_n3_stopped(&mut c, |dir| remove_graph_items(dir, &percent))?;
    rows.push(pass(&c, &http, "1% lost items", lost)?);
    with_n3_stopped(&mut c, |dir| {
        std::fs::remove_dir_all(dir).map_err(|e| format!("wiping {}: {e}", dir.display()))
    })?;
    rows.push(pass(&c, &http, "wiped replica", 4 * n)?);
    rows.push(pass(&c, &http, "no drift, after", 0)?);
    Ok(DriftReport {
        entities: n,
        load_s,
        rows,
    })
}

impl DriftReport {
    pub fn markdown(&self) -> String {
        let mut s = String::from(
            "| case | items lost | items checked | drifted | repaired | bytes fetched | pass | CPU (n3) |\n|---|---|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} ms | {} ms |\n",
                r.case,
                r.lost,
                r.items_checked,
                r.drifted,
                r.repaired,
                r.bytes_fetched,
                r.pass_ms,
                r.cpu_ms
            ));
        }
        s.push_str(&format!(
            "\n{} entities on 3 nodes (all on each), loaded in {:.1} s\n",
            self.entities, self.load_s
        ));
        s
    }
}
