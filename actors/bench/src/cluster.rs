//! A cluster of child `verisim node` processes on loopback (the `verisim` binary next to this one,
//! or `$VERISIM_BIN`), each with a data directory in one sandbox; every child is the process
//! kit's [`NodeProcess`], killed and reaped when the cluster is dropped, also on error.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use verisim_faultkit::{NodeProcess, ProcessSpec, Sandbox};

use super::children::{self, reserve_port, wait_for};
use super::http::Http;

const READY_TIMEOUT: Duration = Duration::from_secs(60);
const COOKIE: &str = "cookie-of-the-bench-cluster";

pub struct VNode {
    pub id: u64,
    pub cluster_addr: SocketAddr,
    pub data_dir: PathBuf,
    /// Started, killed and restarted on its data directory; not running until
    /// [`VerisimCluster::start_node`].
    process: NodeProcess,
    pub http: Option<SocketAddr>,
}

impl VNode {
    pub fn pid(&self) -> Option<u32> {
        children::pid(&self.process)
    }
    pub fn url(&self, path: &str) -> Result<String, String> {
        let http = self
            .http
            .ok_or_else(|| format!("n{} is not running", self.id))?;
        Ok(format!("http://{http}{path}"))
    }
    pub fn is_running(&self) -> bool {
        self.process.is_running()
    }
}

/// Below this share of one core, summed over the nodes, [`VerisimCluster::wait_idle`] counts
/// them idle.
const IDLE_CORES: f64 = 0.10;

pub struct VerisimCluster {
    pub nodes: Vec<VNode>,
    exe: PathBuf,
    admin: Http,
    // Last: removed after the processes are gone.
    dir: Sandbox,
}

impl VerisimCluster {
    /// Starts `n` voters, each with `args` added to its command line (e.g. `--tick-ms 10`), and
    /// waits for a leader.
    pub fn start(n: u64, args: &[String]) -> Result<Self, String> {
        let exe = verisim_binary()?;
        let mut dir = Sandbox::new("verisim-bench-").map_err(|e| e.to_string())?;
        let reserved = (0..n)
            .map(|_| reserve_port())
            .collect::<Result<Vec<_>, _>>()?;
        let addrs: Vec<SocketAddr> = reserved
            .iter()
            .map(|l| l.local_addr().map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        drop(reserved);
        let voters = (1..=n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let args = with_load_limits(args, dir.path())?;
        if std::env::var_os("VERISIM_BENCH_KEEP").is_some() {
            // For reading the nodes' logs afterwards.
            dir.keep(true);
            eprintln!("keeping {}", dir.path().display());
        }
        // Every node seals its cluster messages, as in production: the numbers include the seal.
        let ids: Vec<u64> = (1..=n).collect();
        verisim::cli::identity::issue_cluster(dir.path(), &ids)?;
        let mut c = Self {
            nodes: Vec::new(),
            exe,
            admin: Http::new(Duration::from_secs(5)),
            dir,
        };
        for id in 1..=n {
            let peers: Vec<String> = addrs
                .iter()
                .enumerate()
                .filter(|(i, _)| *i as u64 + 1 != id)
                .map(|(_, a)| a.to_string())
                .collect();
            let mut node_args = vec!["--voters".to_string(), voters.clone()];
            if !peers.is_empty() {
                node_args.extend(["--peer".to_string(), peers.join(",")]);
            }
            node_args.extend(args.iter().cloned());
            c.push_node(id, addrs[(id - 1) as usize], node_args);
        }
        for i in 0..c.nodes.len() {
            c.start_node(i as u64 + 1)?;
        }
        c.wait_leader(Duration::from_secs(60))?;
        Ok(c)
    }

    /// Adds node `id` (not started): `verisim node` on its data directory and cluster address,
    /// HTTP on a port of its choosing (printed on its READY line), stderr into `n<id>.log`.
    fn push_node(&mut self, id: u64, cluster_addr: SocketAddr, args: Vec<String>) {
        let data_dir = self.dir.join(&format!("n{id}"));
        let spec = ProcessSpec::new(format!("n{id}"), &self.exe)
            .arg("node")
            .arg("--id")
            .arg(id.to_string())
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--cluster-listen")
            .arg(cluster_addr.to_string())
            .arg("--http-listen")
            .arg("127.0.0.1:0")
            .args(args)
            .arg("--identity-file")
            .arg(verisim::cli::identity::identity_path(self.dir.path(), id))
            .env("VERISIM_COOKIE", COOKIE)
            .env(
                "VERISIM_LOG",
                std::env::var("VERISIM_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .log(self.dir.join(&format!("n{id}.log")));
        self.nodes.push(VNode {
            id,
            cluster_addr,
            data_dir,
            process: NodeProcess::new(spec),
            http: None,
        });
    }

    /// The process ids of the running nodes (for their CPU time).
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(VNode::pid).collect()
    }

    /// The nodes' base URLs, in id order.
    pub fn urls(&self) -> Result<Vec<String>, String> {
        self.nodes.iter().map(|n| n.url("")).collect()
    }

    /// Waits until the nodes together used less than [`IDLE_CORES`] of a core over two
    /// consecutive seconds (see [`Self::wait_quiet`]). What a fill leaves running (a log purge
    /// after its snapshot, compactions, vectors still to link into an HNSW graph) would otherwise
    /// share the CPU with what is measured next.
    pub fn wait_idle(&self) -> Result<f64, String> {
        self.wait_quiet("the nodes", IDLE_CORES, super::cpu::process_cpu_ms)
    }

    /// Waits until the CPU time `sample` reads from each node's process (in ms), summed, grows by
    /// less than `below_cores` of a core over two consecutive seconds, and returns the seconds
    /// waited until that quiet spell began. Sampled every half second; gives up after 15 minutes
    /// with a warning naming `what`.
    pub fn wait_quiet(
        &self,
        what: &str,
        below_cores: f64,
        sample: impl Fn(u32) -> Result<u64, String>,
    ) -> Result<f64, String> {
        let started = Instant::now();
        let pids = self.pids();
        let total = || -> Result<u64, String> { pids.iter().map(|&p| sample(p)).sum() };
        let mut last = (started, total()?);
        let mut quiet_since: Option<Instant> = None;
        loop {
            std::thread::sleep(Duration::from_millis(500));
            if children::interrupted() {
                return Err(format!("interrupted while waiting for {what} to go idle"));
            }
            let now = (Instant::now(), total()?);
            let cores = (now.1 - last.1) as f64 / 1000.0 / (now.0 - last.0).as_secs_f64();
            if cores >= below_cores {
                quiet_since = None;
            } else {
                // The spell began where the first quiet interval did.
                let since = *quiet_since.get_or_insert(last.0);
                if since.elapsed() >= Duration::from_secs(2) {
                    return Ok((since - started).as_secs_f64());
                }
            }
            last = now;
            if started.elapsed() > Duration::from_secs(900) {
                eprintln!("warning: {what} are still busy after 15 minutes; measuring anyway");
                return Ok(started.elapsed().as_secs_f64());
            }
        }
    }

    pub fn node(&self, id: u64) -> &VNode {
        &self.nodes[(id - 1) as usize]
    }

    /// Starts (or restarts, on its data directory) node `id` and waits for its READY line.
    pub fn start_node(&mut self, id: u64) -> Result<(), String> {
        let n = &mut self.nodes[(id - 1) as usize];
        children::start(&mut n.process)?;
        let http = children::wait_line(&mut n.process, "READY ", READY_TIMEOUT).and_then(|line| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix("http="))
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| format!("bad READY line from n{id}: {line}"))
        });
        match http {
            Ok(http) => {
                n.http = Some(http);
                Ok(())
            }
            Err(e) => {
                // Not left half-started: a caller that goes on sees it down.
                n.process.kill9();
                Err(e)
            }
        }
    }

    /// Replaces the config file every node was started with by `toml` (with [`LOAD_LIMITS`], as
    /// at [`start`](Self::start)); the nodes read it when they restart.
    pub fn rewrite_config(&self, toml: &str) -> Result<(), String> {
        write_config(self.dir.path(), toml.to_owned()).map(|_| ())
    }

    /// Stops every node (SIGTERM, SIGKILL after `stop_timeout`), starts each again on its data
    /// directory and waits for a leader.
    pub fn restart_all(&mut self, stop_timeout: Duration) -> Result<(), String> {
        for n in &mut self.nodes {
            if n.process.is_running()
                && let Err(e) = n.process.terminate(stop_timeout)
            {
                eprintln!("n{}: {e}", n.id);
            }
            n.http = None;
        }
        for i in 0..self.nodes.len() {
            self.start_node(i as u64 + 1)?;
        }
        self.wait_leader(Duration::from_secs(60)).map(|_| ())
    }

    /// `kill -9` node `id` and reap it.
    pub fn kill9(&mut self, id: u64) {
        let n = &mut self.nodes[(id - 1) as usize];
        n.process.kill9();
        n.http = None;
    }

    /// Adds node `id` (dense after the others) joining through node `via`, with extra `args`,
    /// and starts it.
    pub fn start_joiner(&mut self, via: u64, args: &[String]) -> Result<u64, String> {
        let id = self.nodes.len() as u64 + 1;
        let port = reserve_port()?;
        let addr = port.local_addr().map_err(|e| e.to_string())?;
        drop(port);
        let peers: Vec<String> = self
            .nodes
            .iter()
            .map(|n| n.cluster_addr.to_string())
            .collect();
        let mut node_args = vec![
            "--join".to_string(),
            self.node(via).cluster_addr.to_string(),
            "--peer".into(),
            peers.join(","),
        ];
        node_args.extend(args.iter().cloned());
        verisim::cli::identity::issue_one(self.dir.path(), id)?;
        self.push_node(id, addr, node_args);
        self.start_node(id)?;
        Ok(id)
    }

    /// `GET /admin/status`'s `consensus` object of node `id`.
    pub fn consensus(&self, id: u64) -> Option<Value> {
        let r = self
            .admin
            .get(&self.node(id).url("/admin/status").ok()?)
            .ok()?;
        r.ok().then(|| r.body["consensus"].clone())
    }

    /// A running node reporting itself leader, at the highest term seen: `(id, term)`.
    pub fn leader(&self) -> Option<(u64, u64)> {
        let mut best: Option<(u64, u64)> = None;
        for n in self.nodes.iter().filter(|n| n.is_running()) {
            if let Some(c) = self.consensus(n.id)
                && c["role"] == "Leader"
            {
                let term = c["term"].as_u64().unwrap_or(0);
                if best.is_none_or(|(_, t)| term > t) {
                    best = Some((n.id, term));
                }
            }
        }
        best
    }

    pub fn wait_leader(&self, timeout: Duration) -> Result<(u64, u64), String> {
        wait_for("a leader", timeout, || self.leader())
    }

    /// Waits until node `id` has applied `index`.
    pub fn wait_applied(&self, id: u64, index: u64, timeout: Duration) -> Result<(), String> {
        wait_for(&format!("n{id} to apply index {index}"), timeout, || {
            let c = self.consensus(id)?;
            (c["applied_index"].as_u64()? >= index).then_some(())
        })
    }

    /// The tail of every node's log, for an error message.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                let log = n.process.spec().log.as_deref().unwrap_or(Path::new("-"));
                format!(
                    "===== n{} ({}) =====\n{}\n",
                    n.id,
                    log.display(),
                    n.process.log_tail(2000)
                )
            })
            .collect()
    }
}

/// The `verisim` binary to start: `$VERISIM_BIN`, else the one next to this tool (cargo builds both
/// into the same directory).
/// HTTP limits for a load generator: every bench client connects from 127.0.0.1, so the default
/// per-address cap (`[http] max_connections_per_ip = 64`, meant for a node facing a network)
/// would close connections at accept from 64 proposers on. Every bench node gets these.
const LOAD_LIMITS: &str = "\n[http]\nmax_connections = 8192\nmax_connections_per_ip = 8192\n";

/// `args` with a `--config` that holds [`LOAD_LIMITS`]: the caller's config file (if any) copied
/// into `dir` with the limits appended, unless it sets `[http]` itself.
fn with_load_limits(args: &[String], dir: &Path) -> Result<Vec<String>, String> {
    let mut out = Vec::with_capacity(args.len() + 2);
    let mut given = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--config" {
            given = Some(it.next().ok_or("--config without a path")?.clone());
        } else {
            out.push(a.clone());
        }
    }
    let toml = match &given {
        Some(path) => std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?,
        None => String::new(),
    };
    let path = write_config(dir, toml)?;
    out.extend(["--config".to_string(), path.display().to_string()]);
    Ok(out)
}

/// Writes `toml` with [`LOAD_LIMITS`] appended (unless it sets `[http]` itself) as the nodes'
/// config file in `dir`, and returns its path.
fn write_config(dir: &Path, mut toml: String) -> Result<PathBuf, String> {
    if !toml.lines().any(|l| l.trim() == "[http]") {
        toml.push_str(LOAD_LIMITS);
    }
    let path = dir.join("bench-node.toml");
    std::fs::write(&path, toml).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

pub fn verisim_binary() -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("VERISIM_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let me = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let bin = me.with_file_name(format!("verisim{}", std::env::consts::EXE_SUFFIX));
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "{} not found: build it (cargo build --release -p verisim -p verisim-bench) or set VERISIM_BIN",
            bin.display()
        ))
    }
}
