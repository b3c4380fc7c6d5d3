//! `verisim-bench join`: a 3-node cluster holding N registry entities (filled through
//! `POST /admin/proposals`), one snapshot taken on the leader, then a 4th node started with
//! `--join`: the time until it is a voter that has applied the leader's applied index.
//!
//! Automatic snapshots are off during the fill (a snapshot every 10,000 entries of a registry
//! growing to 1M would dominate the fill time); the leader's one snapshot is taken and timed
//! explicitly, and the joiner installs that one. The joiner starts once the three nodes have
//! gone idle after their snapshots (the purge of the compacted log prefix).

use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::children::wait_for;
use super::cluster::VerisimCluster;
use super::cpu::{Faults, process_faults};
use super::fill::{DEFAULT_BATCH, QUIET_SNAPSHOTS, fill, snapshot_every_node};
use super::http::Http;
use super::stages::Scrape;

#[derive(Debug, Clone, clap::Args)]
pub struct JoinArgs {
    #[arg(long, default_value_t = 1_000_000)]
    pub entities: u64,
    /// Proposals per `POST /admin/proposals`.
    #[arg(long, default_value_t = DEFAULT_BATCH)]
    pub batch: u64,
    /// Election timeout of the nodes, in 10 ms ticks (drawn from [n, 2n)). Longer than the default
    /// 15 so a CPU-starved fill on a small machine does not keep the cluster in elections, which
    /// would leave a leader without the snapshot the joiner is meant to install.
    #[arg(long, default_value_t = 50)]
    pub election_ticks: u32,
}

#[derive(Debug, Serialize)]
pub struct JoinReport {
    pub entities: u64,
    pub fill_s: f64,
    pub leader_applied_index: u64,
    pub snapshot_write_s: f64,
    /// The replica clone under its read lock, and the write after it, as the leader's snapshotter
    /// measured them.
    pub snapshot_clone_ms: f64,
    pub snapshot_file_write_ms: f64,
    pub snapshot_bytes: u64,
    /// From the snapshots until the three nodes went idle ([`VerisimCluster::wait_idle`]).
    pub settle_s: f64,
    pub joiner_ready_s: f64,
    pub joiner_voter_s: f64,
    pub joiner_caught_up_s: f64,
    /// Non-zero when the joiner caught up by installing a snapshot.
    pub joiner_snapshot_index: u64,
    /// The joiner's own account of the snapshot it installed (its `/metrics`, summed over every
    /// transfer it received): the chunks from the first written to the last, checking and
    /// decoding the file, moving it into place and into the replica. What "voter" holds beyond
    /// them is starting, being added as a learner, the leader's reads, and the promotion.
    pub joiner_receive_s: f64,
    pub joiner_load_s: f64,
    pub joiner_install_s: f64,
    pub joiner_transfers: u64,
    /// The joiner's minor page faults and system CPU over its life until caught up
    /// (`/proc/<pid>/stat`): most of its memory is first touched by the snapshot's decode, so
    /// their ratio is about what a fault costs it (docs/benchmarks.md, "the joiner's faults").
    pub joiner_faults: Option<Faults>,
}

pub fn run(args: &JoinArgs) -> Result<JoinReport, String> {
    let conf = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = conf.path().join("node.toml");
    std::fs::write(
        &path,
        format!(
            "{QUIET_SNAPSHOTS}[raft]\nelection_ticks = {}\n",
            args.election_ticks
        ),
    )
    .map_err(|e| e.to_string())?;
    let node_args = [
        "--config".to_string(),
        path.display().to_string(),
        "--admin-raw-proposals".into(),
    ];
    let mut c = VerisimCluster::start(3, &node_args)?;
    let r = measure(&mut c, args, &node_args);
    r.map_err(|e| format!("{e}\n{}", c.logs()))
}

/// The largest file under `dir` whose name mentions "snap" (the snapshot just written).
fn largest_snapshot(dir: &Path) -> u64 {
    let mut best = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains("snap")
                && let Ok(m) = e.metadata()
            {
                best = best.max(m.len());
            }
        }
    }
    best
}

fn measure(
    c: &mut VerisimCluster,
    args: &JoinArgs,
    node_args: &[String],
) -> Result<JoinReport, String> {
    let (leader, _) = c.wait_leader(Duration::from_secs(30))?;
    eprintln!("filling {} entities through n{leader}", args.entities);
    let fill_s = fill(c, leader, args.entities, args.batch)?;
    // Every node snapshots (and compacts its log), so whichever leads when n4 joins serves it a
    // snapshot rather than the whole log. The leader's is timed.
    let (leader, _) = c.wait_leader(Duration::from_secs(30))?;
    let taken = snapshot_every_node(c, leader)?;
    let (snapshot_write_s, written) = (taken.seconds, taken.written);
    let snapshot_bytes = largest_snapshot(&c.node(leader).data_dir);
    let ms = |k: &str| written[k].as_f64().unwrap_or(0.0) / 1000.0;
    let (snapshot_clone_ms, snapshot_file_write_ms) = (ms("clone_us"), ms("write_us"));
    let leader_applied_index = c
        .consensus(leader)
        .and_then(|s| s["applied_index"].as_u64())
        .ok_or("no status from the leader")?;
    eprintln!(
        "snapshot at {leader_applied_index}: {:.1} MiB in {snapshot_write_s:.2} s (clone {snapshot_clone_ms:.0} ms); starting n4 with --join",
        snapshot_bytes as f64 / 1048576.0
    );
    if let Some((now, _)) = c.leader().filter(|&(l, _)| l != leader) {
        eprintln!("note: leadership moved to n{now} after the snapshot (it has one too)");
    }
    // Each node's snapshot compacts the whole filled log (the fill ran without snapshots), and its
    // purger then removes that prefix in the background, with fjall compacting after it: seconds
    // of CPU on every node, a one-off of how the cluster was filled, that would otherwise share
    // the machine with the joiner.
    let settle_s = c.wait_idle()?;
    eprintln!("the nodes went idle {settle_s:.1} s after the snapshots (log purge, compactions)");
    let started = Instant::now();
    let id = c.start_joiner(leader, node_args)?;
    let joiner_ready_s = started.elapsed().as_secs_f64();
    let long = Duration::from_secs(900);
    // Whichever node leads now (leadership can move during the join on a loaded machine).
    wait_for("n4 to be a voter", long, || {
        let s = c.consensus(c.leader()?.0)?;
        s["membership"]["voters"]
            .as_array()?
            .iter()
            .any(|v| v.as_u64() == Some(id))
            .then_some(())
    })?;
    let joiner_voter_s = started.elapsed().as_secs_f64();
    wait_for("n4 to apply the leader's applied index", long, || {
        let target = c.consensus(c.leader()?.0)?["applied_index"].as_u64()?;
        (c.consensus(id)?["applied_index"].as_u64()? >= target).then_some(())
    })?;
    let joiner_caught_up_s = started.elapsed().as_secs_f64();
    let joiner_faults = c.node(id).pid().and_then(|p| process_faults(p).ok());
    let metrics = Scrape::read(&Http::new(Duration::from_secs(10)), &c.node(id).url("")?)?;
    let (receive, transfers) = metrics.total("verisim_snapshot_receive_seconds");
    let (load, _) = metrics.total("verisim_snapshot_load_seconds");
    let (install, _) = metrics.total("verisim_snapshot_install_seconds");
    eprintln!(
        "n4 voter after {joiner_voter_s:.2} s: receive {receive:.2} s, check and decode {load:.2} s, install {install:.2} s ({transfers} transfer(s))",
    );
    if let Some(f) = joiner_faults {
        eprintln!(
            "n4: {} minor faults, {:.2} s of system CPU ({:.1} µs per fault)",
            f.minor,
            f.system_ms as f64 / 1000.0,
            f.system_ms as f64 * 1000.0 / f.minor.max(1) as f64
        );
    }
    Ok(JoinReport {
        entities: args.entities,
        fill_s,
        leader_applied_index,
        snapshot_write_s,
        snapshot_clone_ms,
        snapshot_file_write_ms,
        snapshot_bytes,
        settle_s,
        joiner_ready_s,
        joiner_voter_s,
        joiner_caught_up_s: joiner_caught_up_s.max(joiner_voter_s),
        joiner_snapshot_index: c
            .consensus(id)
            .and_then(|s| s["snapshot_index"].as_u64())
            .unwrap_or(0),
        joiner_receive_s: receive,
        joiner_load_s: load,
        joiner_install_s: install,
        joiner_transfers: transfers as u64,
        joiner_faults,
    })
}

impl JoinReport {
    pub fn markdown(&self) -> String {
        format!(
            "| entities | fill (raw proposals) | leader snapshot (clone under lock / write) | snapshot file | nodes idle after | join: READY | join: voter | join: caught up | joiner's snapshot index | joiner: receive / check and decode / install |\n\
             |---|---|---|---|---|---|---|---|---|---|\n\
             | {} | {:.1} s ({:.0} entities/s) | {:.2} s ({:.0} ms / {:.0} ms) | {:.1} MiB | {:.1} s | {:.2} s | {:.2} s | {:.2} s | {} | {:.2} / {:.2} / {:.2} s ({} transfer(s)) |\n",
            self.entities,
            self.fill_s,
            self.entities as f64 / self.fill_s,
            self.snapshot_write_s,
            self.snapshot_clone_ms,
            self.snapshot_file_write_ms,
            self.snapshot_bytes as f64 / 1048576.0,
            self.settle_s,
            self.joiner_ready_s,
            self.joiner_voter_s,
            self.joiner_caught_up_s,
            self.joiner_snapshot_index,
            self.joiner_receive_s,
            self.joiner_load_s,
            self.joiner_install_s,
            self.joiner_transfers,
        )
    }
}
