//! `verisim-bench failover`: each trial `kill -9`s the leader of a 3-node cluster while proposers
//! keep committing through the other two nodes, and measures the time from the kill to the first
//! acknowledged commit of a later term (so necessarily made by a new leader). The killed node is
//! restarted on its data directory and caught up before the next trial.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::children::{interrupted, wait_for};
use super::cluster::VerisimCluster;
use super::http::Http;
use super::stats::Summary;

/// Background proposers (spread over the two surviving nodes).
const PROPOSERS: usize = 4;
/// A proposer gives up on one request after this long and sends the next.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, clap::Args)]
pub struct FailoverArgs {
    #[arg(long, default_value_t = 50)]
    pub trials: usize,
    /// Raft tick of the nodes in ms (default: the node default).
    #[arg(long)]
    pub tick_ms: Option<u64>,
    /// Election timeout in ticks, drawn from [t, 2t) (default: the node default).
    #[arg(long)]
    pub election_ticks: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct FailoverReport {
    pub config: String,
    pub trials: usize,
    pub failed_trials: usize,
    pub first_failure: Option<String>,
    pub failover: Option<Summary>,
    pub samples_ms: Vec<f64>,
}

/// What the proposers watch for during one trial.
struct Watch {
    killed_at: Instant,
    old_term: u64,
    first_new_commit: Option<Instant>,
}

struct Shared {
    targets: Mutex<Vec<String>>,
    watch: Mutex<Option<Watch>>,
    acks: AtomicU64,
    stop: AtomicBool,
}

fn proposer(shared: Arc<Shared>, p: usize) {
    let http = Http::new(CLIENT_TIMEOUT);
    let mut i = 0u64;
    while !shared.stop.load(Ordering::Relaxed) && !interrupted() {
        let url = {
            let t = shared.targets.lock().map(|t| t.clone()).unwrap_or_default();
            if t.is_empty() {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            t[p % t.len()].clone()
        };
        i += 1;
        let body = json!({"cluster_addr": format!("127.0.0.1:{i}"), "http_addr": "127.0.0.1:1"});
        let Ok(r) = http.put_json(&format!("{url}/admin/nodes/f{p}"), &body) else {
            continue;
        };
        let acked = Instant::now();
        if !r.ok() {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        shared.acks.fetch_add(1, Ordering::Relaxed);
        let term = r.body["term"].as_u64().unwrap_or(0);
        if let Ok(mut w) = shared.watch.lock()
            && let Some(w) = w.as_mut()
            && term > w.old_term
            && w.first_new_commit.is_none_or(|f| acked < f)
        {
            w.first_new_commit = Some(acked);
        }
    }
}

pub fn run(args: &FailoverArgs) -> Result<FailoverReport, String> {
    let mut node_args = Vec::new();
    let mut config = String::from("defaults");
    if let Some(t) = args.tick_ms {
        node_args.extend(["--tick-ms".to_string(), t.to_string()]);
        config = format!("tick_ms={t}");
    }
    let conf_dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    if let Some(e) = args.election_ticks {
        let path = conf_dir.path().join("raft.toml");
        std::fs::write(&path, format!("[raft]\nelection_ticks = {e}\n"))
            .map_err(|e| e.to_string())?;
        node_args.extend(["--config".to_string(), path.display().to_string()]);
        config = format!("{config} election_ticks={e}").replace("defaults ", "");
    }
    let mut c = VerisimCluster::start(3, &node_args)?;
    let shared = Arc::new(Shared {
        targets: Mutex::new(Vec::new()),
        watch: Mutex::new(None),
        acks: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let threads: Vec<_> = (0..PROPOSERS)
        .map(|p| {
            let s = shared.clone();
            std::thread::spawn(move || proposer(s, p))
        })
        .collect();
    let result = trials(&mut c, &shared, args.trials);
    shared.stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let (mut samples, failures) = result.map_err(|e| format!("{e}\n{}", c.logs()))?;
    let samples_ms = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    Ok(FailoverReport {
        config,
        trials: args.trials,
        failed_trials: failures.len(),
        first_failure: failures.into_iter().next(),
        failover: Summary::of(&mut samples),
        samples_ms,
    })
}

type Trials = (Vec<Duration>, Vec<String>);

fn trials(c: &mut VerisimCluster, shared: &Shared, n: usize) -> Result<Trials, String> {
    let mut samples = Vec::new();
    let mut failures = Vec::new();
    for trial in 0..n {
        let (leader, term) = c.wait_leader(Duration::from_secs(30))?;
        let others: Vec<String> = c
            .nodes
            .iter()
            .filter(|n| n.id != leader)
            .map(|n| n.url(""))
            .collect::<Result<_, _>>()?;
        *shared.targets.lock().map_err(|e| e.to_string())? = others;
        // Commits flow through the two followers before the kill.
        let acks = shared.acks.load(Ordering::Relaxed);
        wait_for("commits before the kill", Duration::from_secs(30), || {
            (shared.acks.load(Ordering::Relaxed) >= acks + 2 * PROPOSERS as u64).then_some(())
        })?;
        *shared.watch.lock().map_err(|e| e.to_string())? = Some(Watch {
            killed_at: Instant::now(),
            old_term: term,
            first_new_commit: None,
        });
        c.kill9(leader);
        let took = wait_for("a commit by a new leader", Duration::from_secs(30), || {
            let w = shared.watch.lock().ok()?;
            let w = w.as_ref()?;
            Some(w.first_new_commit? - w.killed_at)
        });
        match took {
            Ok(d) => {
                eprintln!(
                    "trial {:>3}: killed n{leader} (term {term}); first new commit after {:.1} ms",
                    trial + 1,
                    d.as_secs_f64() * 1000.0
                );
                samples.push(d);
            }
            Err(e) => {
                eprintln!("trial {:>3}: {e}", trial + 1);
                failures.push(format!("trial {}: {e}", trial + 1));
            }
        }
        *shared.watch.lock().map_err(|e| e.to_string())? = None;
        c.start_node(leader)?;
        let (now_leader, _) = c.wait_leader(Duration::from_secs(30))?;
        let commit = c
            .consensus(now_leader)
            .and_then(|s| s["commit_index"].as_u64())
            .ok_or("no status from the leader")?;
        c.wait_applied(leader, commit, Duration::from_secs(60))?;
        if interrupted() {
            return Err("interrupted".into());
        }
    }
    Ok((samples, failures))
}

impl FailoverReport {
    pub fn markdown(&self) -> String {
        let mut s = format!(
            "Leader failover (`kill -9` → first commit of a later term), config: {}\n\n",
            self.config
        );
        s.push_str("| trials | failed | p50 | p99 | max |\n|---|---|---|---|---|\n");
        match &self.failover {
            Some(f) => s.push_str(&format!(
                "| {} | {} | {:.0} ms | {:.0} ms | {:.0} ms |\n",
                f.count, self.failed_trials, f.p50_ms, f.p99_ms, f.max_ms
            )),
            None => s.push_str(&format!("| 0 | {} | – | – | – |\n", self.failed_trials)),
        }
        if let Some(f) = &self.first_failure {
            s.push_str(&format!("\nfirst failed trial: {f}\n"));
        }
        s
    }
}
