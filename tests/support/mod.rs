//! Harness for the whole-system tests: real `verisim node` processes on loopback.
//!
//! A [`Cluster`] owns a temporary directory (one data directory and one log file per node), the
//! node processes and, optionally, a fault-injecting TCP [`Relay`] between every pair of nodes.
//! The generic parts (processes and their signals, relays, ports, waits, seeds) come from the
//! fault-injection kit, `verisim-faultkit` (supervision/faultkit); what is VeriSim's (its command
//! line, admin API, cluster configuration, histories) is here.
//! Dropping it (also while unwinding from a failed assertion) kills and reaps every child; when
//! the test is panicking the tail of every node's log is printed first so the failure can be
//! read from the test output alone. Every wait has a deadline; nothing sleeps blindly.

#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod browser;
pub mod dev;
pub mod docker;
pub mod entities;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::unistd::Pid;
use serde_json::{Value, json};
use verisim_faultkit::{Mode as RelayMode, NodeProcess, ProcessSpec, Relay, Tree};
use verisim_lincheck::{CheckOptions, KvHistory, KvInput, KvModel, KvOutput, Operation, check};

pub use verisim_faultkit::tail;

/// How long a node may take to print its READY line.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of one admin HTTP request (a SIGSTOPped node never answers).
const HTTP_TIMEOUT: Duration = Duration::from_secs(3);

/// Reserves a free loopback port for a node's cluster listener (below the ephemeral range, see
/// `verisim_faultkit::reserve_port`): the listener is returned and must be dropped just before
/// the node binds the port. The cluster port must be known before start because every peer
/// needs it on its command line.
pub fn reserve_port() -> TcpListener {
    verisim_faultkit::reserve_port().unwrap_or_else(|e| panic!("{e}"))
}

/// `VERISIM_SEED`, or a random seed; printed so that a failure can be replayed.
pub fn test_seed() -> u64 {
    verisim_faultkit::seed_from_env("VERISIM_SEED")
}

/// Polls `f` (every 20 ms: most conditions cost HTTP requests to the nodes) until it returns
/// `Some`, or panics with `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, f: impl FnMut() -> Option<T>) -> T {
    verisim_faultkit::wait_until_every(what, timeout, Duration::from_millis(20), f)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Options of a test cluster.
#[derive(Clone, Debug)]
pub struct Options {
    pub nodes: u64,
    pub tick_ms: u64,
    pub snapshot_entries: Option<u64>,
    /// Route every node-to-node connection through a fault-injecting relay.
    pub relay: bool,
    /// With [`relay`](Self::relay): relays that read ractor_cluster's frames (the nodes' links
    /// are plain TCP unless `[cluster] tls` is configured), so a test can drop whole actor
    /// messages between nodes ([`Cluster::drop_messages`]); seeded from `VERISIM_SEED`.
    pub relay_frames: bool,
    /// Extra TOML configuration (e.g. `[raft] log_keep_after_snapshot = 10`), given to every node
    /// with `--config` (flags still override it). `{dir}` in it stands for the cluster's directory,
    /// where [`files`](Self::files) are.
    pub config: Option<String>,
    /// Files written into the cluster's directory before any node starts, as (name, contents):
    /// e.g. a schema file the config names as `{dir}/schema.json`. They live as long as the
    /// cluster, so a restarted node reads them again.
    pub files: Vec<(String, String)>,
    /// Extra environment variables of one node's process, as (node id, name, value): e.g.
    /// libfaketime's `LD_PRELOAD` and `FAKETIME` to run one node with a wrong clock.
    pub node_env: Vec<(u64, String, String)>,
    /// The admin token every node requires (`--admin-token`); the harness's own admin calls
    /// send it.
    pub admin_token: Option<String>,
    /// Give every node an identity from one authority (`--identity-file`), so every cluster
    /// message is sealed and checked, as in production (on unless a test says otherwise).
    pub identities: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            nodes: 3,
            tick_ms: 10,
            snapshot_entries: None,
            relay: false,
            relay_frames: false,
            config: None,
            files: Vec::new(),
            node_env: Vec::new(),
            admin_token: None,
            identities: true,
        }
    }
}

/// The answer of an admin HTTP request: status code, headers (names in lower case) and JSON (or
/// `Value::String` for text).
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Reply {
    pub fn ok(&self) -> bool {
        self.status == 200
    }
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn code(&self) -> Option<&str> {
        self.body.get("code").and_then(Value::as_str)
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(HTTP_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into()
}

fn to_reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<Reply, String> {
    let mut resp = r.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (k.as_str().to_string(), v)
        })
        .collect();
    let text = resp
        .body_mut()
        .read_to_string()
        .map_err(|e| e.to_string())?;
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// One node of a test cluster.
pub struct Node {
    pub id: u64,
    /// The cluster address this node listens on (fixed across restarts).
    pub cluster_addr: SocketAddr,
    /// Cluster addresses this node dials (real ones, or its relays).
    pub peers: Vec<String>,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    pub cookie: String,
    pub extra_args: Vec<String>,
    /// Extra environment variables of the process (see [`Options::node_env`]).
    pub extra_env: Vec<(String, String)>,
    /// The `verisim node` process (the kit's: killed when dropped).
    process: NodeProcess,
    /// The admin HTTP address of the running process.
    pub http: Option<SocketAddr>,
    agent: ureq::Agent,
    /// Sent as `Authorization: Bearer` by every request helper unless the caller gives its own
    /// `authorization` header.
    pub admin_token: Option<String>,
}

impl Node {
    pub fn is_running(&self) -> bool {
        self.process.is_running()
    }
    /// Running and not SIGSTOPped: it can answer HTTP.
    pub fn is_live(&self) -> bool {
        self.process.is_running() && !self.process.is_paused()
    }
    pub fn pid(&self) -> Pid {
        self.process.pid().expect("node is running")
    }

    fn url(&self, path: &str) -> Result<String, String> {
        let http = self
            .http
            .ok_or_else(|| format!("n{} is not running", self.id))?;
        Ok(format!("http://{http}{path}"))
    }

    fn bearer(&self) -> Option<String> {
        self.admin_token.as_ref().map(|t| format!("Bearer {t}"))
    }

    pub fn get(&self, path: &str) -> Result<Reply, String> {
        let mut req = self.agent.get(&self.url(path)?);
        if let Some(b) = self.bearer() {
            req = req.header("authorization", b);
        }
        to_reply(req.call())
    }
    pub fn post(&self, path: &str, body: Option<Value>) -> Result<Reply, String> {
        let mut req = self.agent.post(&self.url(path)?);
        if let Some(b) = self.bearer() {
            req = req.header("authorization", b);
        }
        to_reply(match body {
            Some(b) => req.send_json(&b),
            None => req.send_empty(),
        })
    }
    /// Any request with extra headers and a raw body (e.g. a signed request built by hand).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Reply, String> {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path)?);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(b) = self.bearer()
            && !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            req = req.header("authorization", b);
        }
        // The default content type, unless the caller sends one (signed, or an attack's).
        if !body.is_empty()
            && !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(body.to_vec()).map_err(|e| e.to_string())?;
        to_reply(self.agent.run(req))
    }
    /// A DELETE with extra headers (e.g. a signed request built by hand).
    pub fn delete_with_headers(
        &self,
        path: &str,
        headers: &[(&str, String)],
    ) -> Result<Reply, String> {
        let mut req = self.agent.delete(&self.url(path)?);
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        if let Some(b) = self.bearer()
            && !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        {
            req = req.header("authorization", b);
        }
        to_reply(req.call())
    }
    pub fn put(&self, path: &str, body: &Value) -> Result<Reply, String> {
        let mut req = self.agent.put(&self.url(path)?);
        if let Some(b) = self.bearer() {
            req = req.header("authorization", b);
        }
        to_reply(req.send_json(body))
    }

    /// `GET /admin/status`'s `consensus` object.
    pub fn status(&self) -> Result<Value, String> {
        let r = self.get("/admin/status")?;
        if !r.ok() {
            return Err(format!("status {}: {}", r.status, r.body));
        }
        Ok(r.body)
    }
    pub fn consensus(&self) -> Option<Value> {
        self.status().ok().map(|s| s["consensus"].clone())
    }

    /// Starts the process and waits for its READY line.
    pub fn start(&mut self) {
        assert!(!self.is_running(), "n{} is already running", self.id);
        let mut spec = ProcessSpec::new(format!("n{}", self.id), env!("CARGO_BIN_EXE_verisim"))
            .arg("node")
            .args(["--id", &self.id.to_string()])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--cluster-listen", &self.cluster_addr.to_string()])
            .args(["--http-listen", "127.0.0.1:0"])
            .log(&self.log_path);
        if !self.peers.is_empty() {
            spec = spec.args(["--peer", &self.peers.join(",")]);
        }
        // The node's own environment last: a test may set its log filter (or the cookie).
        spec = spec
            .args(&self.extra_args)
            .env("VERISIM_COOKIE", &self.cookie)
            .env(
                "VERISIM_LOG",
                std::env::var("VERISIM_LOG").unwrap_or("info".into()),
            );
        for (k, v) in &self.extra_env {
            spec = spec.env(k, v);
        }
        *self.process.spec_mut() = spec;
        self.process
            .start()
            .unwrap_or_else(|e| panic!("spawn verisim node n{}: {e}", self.id));
        let ready = self
            .process
            .wait_line("its READY line", READY_TIMEOUT, |line| {
                let rest = line.strip_prefix("READY ")?;
                Some(
                    rest.split_whitespace()
                        .find_map(|w| w.strip_prefix("http="))
                        .and_then(|a| a.parse::<SocketAddr>().ok())
                        .ok_or_else(|| line.to_string()),
                )
            });
        match ready {
            Ok(Ok(http)) => self.http = Some(http),
            Ok(Err(line)) => {
                self.kill9();
                panic!("bad READY line: {line}");
            }
            Err(e) => {
                self.kill9();
                panic!("n{}: {e}; log:\n{}", self.id, tail(&self.log_path, 4000));
            }
        }
    }

    /// `kill -9` and reap.
    pub fn kill9(&mut self) {
        self.process.kill9();
        self.http = None;
    }

    /// SIGTERM and wait (up to 20 s, then SIGKILL) for a clean exit; returns whether it was clean.
    pub fn terminate(&mut self) -> bool {
        if !self.is_running() {
            return true;
        }
        let clean = matches!(
            self.process.terminate(Duration::from_secs(20)),
            Ok(status) if status.success()
        );
        self.http = None;
        clean
    }

    pub fn sigstop(&mut self) {
        self.process
            .sigstop()
            .unwrap_or_else(|e| panic!("n{}: {e}", self.id));
    }
    pub fn sigcont(&mut self) {
        self.process
            .sigcont()
            .unwrap_or_else(|e| panic!("n{}: {e}", self.id));
    }
}

/// A node's process before its first start.
fn idle_process(id: u64) -> NodeProcess {
    NodeProcess::new(ProcessSpec::new(
        format!("n{id}"),
        env!("CARGO_BIN_EXE_verisim"),
    ))
}

/// `toml` with every `{dir}` replaced by `dir`, quoted for a TOML basic string (so
/// `schema_file = "{dir}/schema.json"` names a file of [`Options::files`]).
fn expand_dir(toml: &str, dir: &Path) -> String {
    let quoted = format!("{:?}", dir.display().to_string());
    toml.replace("{dir}", &quoted[1..quoted.len() - 1])
}

/// Result of one recorded write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Committed: `{"index","term"}`.
    Ok { index: u64, term: u64 },
    /// The system said it did not take effect.
    Failed(String),
    /// The client never learned (timeout, connection lost, not_committed).
    Unknown(String),
}

/// A test cluster: nodes, their directories, relays, and a shared history clock.
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub relays: BTreeMap<(u64, u64), Relay>,
    pub opts: Options,
    pub started: Instant,
    /// The node that last acknowledged a write: tried first by the next one (a cut-off node
    /// would make every write wait for its timeout).
    preferred: std::sync::atomic::AtomicU64,
    // Last, so it is removed after the processes are gone.
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// Creates and starts a cluster of `opts.nodes` voters, waiting until a leader is elected.
    pub fn start(opts: Options) -> Self {
        let c = Self::new(opts);
        c.wait_leader(Duration::from_secs(30));
        c
    }

    /// Creates and starts the nodes (without waiting for a leader).
    pub fn new(opts: Options) -> Self {
        let mut c = Self::configure(opts, "cookie-of-the-test-cluster");
        for i in 0..c.nodes.len() {
            c.nodes[i].start();
        }
        if !c.relays.is_empty() {
            // Relays forward to the real ports, known before start; nothing more to do.
        }
        c
    }

    /// Creates the nodes' configuration without starting them.
    pub fn configure(opts: Options, cookie: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("verisim-systest-")
            .tempdir()
            .expect("temp dir");
        let ids: Vec<u64> = (1..=opts.nodes).collect();
        // Held until every port of this cluster is chosen, so no two coincide.
        let reserved: BTreeMap<u64, TcpListener> =
            ids.iter().map(|&id| (id, reserve_port())).collect();
        let addrs: BTreeMap<u64, SocketAddr> = reserved
            .iter()
            .map(|(&id, l)| (id, l.local_addr().expect("reserved addr")))
            .collect();
        let mut relays = BTreeMap::new();
        let seed = opts.relay_frames.then(test_seed);
        if opts.relay {
            for &from in &ids {
                for &to in &ids {
                    if from != to {
                        let mut relay = Relay::builder(addrs[&to]);
                        if let Some(seed) = seed {
                            // One seed per relay, derived from the test's, so a run replays.
                            relay = relay
                                .mode(RelayMode::RactorCluster)
                                .seed(seed ^ (from << 32 | to));
                        }
                        let relay = relay.start().unwrap_or_else(|e| panic!("{e}"));
                        relays.insert((from, to), relay);
                    }
                }
            }
        }
        let voters = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        drop(reserved);
        for (name, contents) in &opts.files {
            std::fs::write(dir.path().join(name), contents).expect("write a cluster file");
        }
        if opts.identities {
            verisim::cli::identity::issue_cluster(dir.path(), &ids).expect("issue node identities");
        }
        let nodes = ids
            .iter()
            .map(|&id| {
                let peers = ids
                    .iter()
                    .filter(|&&p| p != id)
                    .map(|p| match relays.get(&(id, *p)) {
                        Some(r) => r.addr().to_string(),
                        None => addrs[p].to_string(),
                    })
                    .collect();
                let mut extra_args = vec![
                    "--voters".to_string(),
                    voters.clone(),
                    "--tick-ms".into(),
                    opts.tick_ms.to_string(),
                ];
                if let Some(toml) = &opts.config {
                    let path = dir.path().join(format!("n{id}.toml"));
                    std::fs::write(&path, expand_dir(toml, dir.path())).expect("write node config");
                    extra_args.push("--config".into());
                    extra_args.push(path.display().to_string());
                }
                if let Some(k) = opts.snapshot_entries {
                    extra_args.push("--snapshot-entries".into());
                    extra_args.push(k.to_string());
                }
                if let Some(t) = &opts.admin_token {
                    extra_args.push("--admin-token".into());
                    extra_args.push(t.clone());
                }
                if opts.identities {
                    let path = verisim::cli::identity::identity_path(dir.path(), id);
                    extra_args.push("--identity-file".into());
                    extra_args.push(path.display().to_string());
                }
                Node {
                    id,
                    cluster_addr: addrs[&id],
                    peers,
                    data_dir: dir.path().join(format!("n{id}")),
                    log_path: dir.path().join(format!("n{id}.log")),
                    cookie: cookie.to_string(),
                    extra_args,
                    extra_env: opts
                        .node_env
                        .iter()
                        .filter(|(n, _, _)| *n == id)
                        .map(|(_, k, v)| (k.clone(), v.clone()))
                        .collect(),
                    process: idle_process(id),
                    http: None,
                    agent: agent(),
                    admin_token: opts.admin_token.clone(),
                }
            })
            .collect();
        Self {
            nodes,
            relays,
            opts,
            started: Instant::now(),
            preferred: std::sync::atomic::AtomicU64::new(1),
            dir,
        }
    }

    pub fn node(&self, id: u64) -> &Node {
        &self.nodes[(id - 1) as usize]
    }
    pub fn node_mut(&mut self, id: u64) -> &mut Node {
        &mut self.nodes[(id - 1) as usize]
    }

    /// Nanoseconds since the cluster was created: the clock of recorded histories.
    pub fn now(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// The leader as seen by the live nodes: `(id, term)` of a node reporting itself Leader at the
    /// highest term seen, if some node does.
    pub fn leader(&self) -> Option<(u64, u64)> {
        self.leader_among(|_| true)
    }

    pub fn leader_among(&self, include: impl Fn(u64) -> bool) -> Option<(u64, u64)> {
        let mut best: Option<(u64, u64)> = None;
        for n in self.nodes.iter().filter(|n| n.is_live() && include(n.id)) {
            if let Some(c) = n.consensus()
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

    /// Waits for a leader among the live nodes.
    pub fn wait_leader(&self, timeout: Duration) -> (u64, u64) {
        wait_for("a leader", timeout, || self.leader())
    }

    /// Waits for a leader other than `old` at a term above `old_term`.
    pub fn wait_new_leader(&self, old: u64, old_term: u64, timeout: Duration) -> (u64, u64) {
        wait_for(
            &format!("a leader other than n{old} at a term above {old_term}"),
            timeout,
            || self.leader().filter(|&(id, t)| id != old && t > old_term),
        )
    }

    /// One write attempt at node `via`: `PUT /admin/nodes/{key}` with `value` as cluster_addr.
    pub fn try_put(&self, via: u64, key: &str, value: &str) -> WriteOutcome {
        let body = json!({"cluster_addr": value, "http_addr": format!("http-{value}")});
        match self.node(via).put(&format!("/admin/nodes/{key}"), &body) {
            Ok(r) if r.ok() => WriteOutcome::Ok {
                index: r.body["index"].as_u64().unwrap_or(0),
                term: r.body["term"].as_u64().unwrap_or(0),
            },
            // Refused before proposing: bad input, or no leader to propose to.
            Ok(r) if r.status == 400 || r.status == 409 => {
                WriteOutcome::Failed(format!("{} {}", r.status, r.body))
            }
            // `no_quorum` may come after a forwarded proposal was appended by a leader that then
            // vanished, and `not_committed` says the same: the outcome is unknown.
            Ok(r) => WriteOutcome::Unknown(format!("{} {}", r.status, r.body)),
            Err(e) => WriteOutcome::Unknown(e),
        }
    }

    /// Writes `key = value` through any live node, retrying (each attempt is a new operation)
    /// until one is acknowledged or `timeout` passes. Returns the acknowledgement.
    pub fn put_retry(&self, key: &str, value: &str, timeout: Duration) -> Option<(u64, u64)> {
        use std::sync::atomic::Ordering::Relaxed;
        let deadline = Instant::now() + timeout;
        let mut attempt = 0usize;
        loop {
            let preferred = self.preferred.load(Relaxed);
            let mut live: Vec<u64> = self
                .nodes
                .iter()
                .filter(|n| n.is_live())
                .map(|n| n.id)
                .collect();
            if let Some(pos) = live.iter().position(|&id| id == preferred) {
                live.rotate_left(pos);
            }
            let via = live[attempt % live.len()];
            attempt += 1;
            if let WriteOutcome::Ok { index, term } = self.try_put(via, key, value) {
                self.preferred.store(via, Relaxed);
                return Some((index, term));
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Like [`put_retry`](Self::put_retry), panicking if no attempt succeeds.
    pub fn put(&self, key: &str, value: &str) -> (u64, u64) {
        self.put_retry(key, value, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("write {key}={value} was never acknowledged"))
    }

    /// One linearizable read at node `via`: `Ok(Some(value))`, `Ok(None)` if absent, `Err` when
    /// refused (not the leader, no quorum, timeout).
    pub fn try_get(&self, via: u64, key: &str) -> Result<Option<String>, String> {
        let r = self.node(via).get(&format!("/admin/nodes/{key}"))?;
        match r.status {
            200 => Ok(r.body["cluster_addr"].as_str().map(str::to_string)),
            404 if r.code() == Some("unknown_node") => Ok(None),
            _ => Err(format!("{} {}", r.status, r.body)),
        }
    }

    /// A linearizable read from the current leader, retrying across leader changes.
    pub fn get(&self, key: &str) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some((leader, _)) = self.leader()
                && let Ok(v) = self.try_get(leader, key)
            {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "no leader answered a read of {key}"
            );
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Waits until node `id`'s applied index reaches `index`.
    pub fn wait_applied(&self, id: u64, index: u64, timeout: Duration) {
        wait_for(&format!("n{id} applied index >= {index}"), timeout, || {
            let c = self.node(id).consensus()?;
            (c["applied_index"].as_u64()? >= index).then_some(())
        });
    }

    /// The leader's commit index.
    pub fn leader_commit(&self) -> u64 {
        let (leader, _) = self.wait_leader(Duration::from_secs(20));
        self.node(leader)
            .consensus()
            .and_then(|c| c["commit_index"].as_u64())
            .unwrap_or(0)
    }

    /// Adds node `id` (not started) that joins through `via`'s cluster address as a learner; it
    /// dials every existing member (they learn of it through its connections).
    pub fn add_joiner(&mut self, id: u64, via: u64) -> &mut Node {
        assert!(
            self.relays.is_empty(),
            "joiners are not wired through relays"
        );
        let port = reserve_port();
        let cluster_addr = port.local_addr().expect("reserved addr");
        drop(port);
        let peers = self
            .nodes
            .iter()
            .map(|n| n.cluster_addr.to_string())
            .collect();
        let mut extra_args = vec![
            "--join".to_string(),
            self.node(via).cluster_addr.to_string(),
            "--tick-ms".into(),
            self.opts.tick_ms.to_string(),
        ];
        if let Some(toml) = &self.opts.config {
            let path = self.dir.path().join(format!("n{id}.toml"));
            std::fs::write(&path, expand_dir(toml, self.dir.path())).expect("write node config");
            extra_args.push("--config".into());
            extra_args.push(path.display().to_string());
        }
        if let Some(k) = self.opts.snapshot_entries {
            extra_args.push("--snapshot-entries".into());
            extra_args.push(k.to_string());
        }
        if let Some(t) = &self.opts.admin_token {
            extra_args.push("--admin-token".into());
            extra_args.push(t.clone());
        }
        if self.opts.identities {
            let path = verisim::cli::identity::issue_one(self.dir.path(), id)
                .expect("issue the joiner's identity");
            extra_args.push("--identity-file".into());
            extra_args.push(path.display().to_string());
        }
        let cookie = self.nodes[0].cookie.clone();
        self.nodes.push(Node {
            id,
            cluster_addr,
            peers,
            data_dir: self.dir.path().join(format!("n{id}")),
            log_path: self.dir.path().join(format!("n{id}.log")),
            cookie,
            extra_args,
            extra_env: Vec::new(),
            process: idle_process(id),
            http: None,
            agent: agent(),
            admin_token: self.opts.admin_token.clone(),
        });
        assert_eq!(self.nodes.len() as u64, id, "node ids are dense from 1");
        self.nodes.last_mut().expect("just pushed")
    }

    /// Waits until the leader lists node `id` among the voters (a joiner is promoted once it
    /// caught up).
    pub fn wait_voter(&self, id: u64, timeout: Duration) {
        wait_for(&format!("n{id} to be promoted to voter"), timeout, || {
            let (l, _) = self.leader()?;
            let s = self.node(l).consensus()?;
            s["membership"]["voters"]
                .as_array()?
                .iter()
                .any(|v| *v == id)
                .then_some(())
        });
    }

    /// `verisim <args> --json --node <n's URL>`, as an operator runs it, without an admin token:
    /// n`n`'s answer (the command must succeed and answer for that one node).
    pub fn operator(&self, n: u64, args: &[&str]) -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_verisim"))
            .args(args)
            .args(["--json", "--node"])
            .arg(format!(
                "http://{}",
                self.node(n).http.expect("running node")
            ))
            .env_remove("VERISIM_ADMIN_TOKEN")
            .env_remove("VERISIM_ADMIN_TOKEN_FILE")
            .output()
            .expect("run verisim");
        assert!(
            out.status.success(),
            "verisim {args:?} on n{n}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        let answers: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON answer");
        assert_eq!(answers.len(), 1, "{answers:?}");
        answers[0]["answer"].clone()
    }

    /// Makes `id` the leader (leadership transfer, retried until it holds).
    pub fn transfer_to(&self, id: u64) {
        wait_for(
            &format!("n{id} to take over leadership"),
            Duration::from_secs(30),
            || {
                let (l, _) = self.leader()?;
                if l == id {
                    return Some(());
                }
                let _ = self.node(l).post(&format!("/admin/transfer/{id}"), None);
                std::thread::sleep(Duration::from_millis(100));
                None
            },
        );
    }

    /// Cuts node `id` off: every relay to or from it closes its connections and refuses new ones.
    pub fn isolate(&self, id: u64) {
        assert!(!self.relays.is_empty(), "isolate needs Options::relay");
        for ((a, b), r) in &self.relays {
            if *a == id || *b == id {
                r.cut();
            }
        }
    }
    /// Drops actor messages between the nodes with `probability` on every relay, both ways
    /// (needs [`Options::relay_frames`]); `0.0` stops dropping.
    pub fn drop_messages(&self, probability: f64) {
        assert!(
            !self.relays.is_empty(),
            "drop_messages needs Options::relay"
        );
        for r in self.relays.values() {
            if probability == 0.0 {
                r.stop_dropping();
            } else {
                r.drop_messages(probability)
                    .unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }

    /// Actor messages the relays dropped so far.
    pub fn messages_dropped(&self) -> u64 {
        self.relays
            .values()
            .map(|r| r.stats().messages_dropped())
            .sum()
    }

    /// Undoes every cut.
    pub fn heal(&self) {
        for r in self.relays.values() {
            r.heal();
        }
    }

    /// Prints the tail of every node's log to stderr.
    pub fn dump_logs(&self) {
        for n in &self.nodes {
            eprintln!(
                "===== n{} log ({}) =====\n{}",
                n.id,
                n.log_path.display(),
                tail(&n.log_path, 6000)
            );
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill9();
        }
        if std::thread::panicking() {
            self.dump_logs();
        }
    }
}

/// Records a concurrent client history on the cluster's clock.
pub struct Recorder {
    pub history: std::sync::Mutex<KvHistory>,
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            history: std::sync::Mutex::new(KvHistory::new()),
        }
    }

    /// A recorded write by `client` through node `via`.
    pub fn put(&self, c: &Cluster, client: u64, via: u64, key: &str, value: &str) -> WriteOutcome {
        let input = KvInput::put(key.to_string(), value.to_string());
        let id = self
            .history
            .lock()
            .expect("history")
            .invoke(client, input, c.now());
        let out = c.try_put(via, key, value);
        let at = c.now();
        let mut h = self.history.lock().expect("history");
        match &out {
            WriteOutcome::Ok { .. } => h.complete(id, KvOutput::Ok, at).expect("complete"),
            WriteOutcome::Failed(_) => h.fail(id, at).expect("fail"),
            WriteOutcome::Unknown(_) => {} // stays unknown
        }
        out
    }

    /// A recorded linearizable read by `client` at node `via` (refusals are recorded as failed:
    /// a read has no effect).
    pub fn get(
        &self,
        c: &Cluster,
        client: u64,
        via: u64,
        key: &str,
    ) -> Result<Option<String>, String> {
        let id = self.history.lock().expect("history").invoke(
            client,
            KvInput::get(key.to_string()),
            c.now(),
        );
        let out = c.try_get(via, key);
        let at = c.now();
        let mut h = self.history.lock().expect("history");
        match &out {
            Ok(v) => h
                .complete(id, KvOutput::Value(v.clone()), at)
                .expect("complete"),
            Err(_) => h.fail(id, at).expect("fail"),
        }
        out
    }
}

/// Checks `history` with `verisim_lincheck`'s key-value model (60 s limit), panicking with the
/// verdict, the seed and the whole history when it is not linearizable.
pub fn assert_linearizable(history: &KvHistory, seed: u64) {
    let report = check(
        &KvModel::new(),
        history,
        &CheckOptions::default().with_time_limit(Some(Duration::from_secs(60))),
    )
    .expect("a well-formed history");
    assert!(
        report.verdict.is_linearizable(),
        "seed {seed}: {}\nhistory: {:?}",
        report.verdict,
        history.operations
    );
}

/// The check is not vacuous: `history` plus one read of `key` at `end` (after everything else
/// returned) answering a value nobody wrote is refused.
pub fn assert_a_forged_read_is_refused(history: &KvHistory, key: &str, end: u64) {
    let mut tampered = history.clone();
    tampered.push(Operation::returned(
        99,
        KvInput::get(key.to_string()),
        end,
        KvOutput::Value(Some("never-written".to_string())),
        end + 1,
    ));
    let report =
        check(&KvModel::new(), &tampered, &CheckOptions::default()).expect("a well-formed history");
    assert!(report.verdict.is_violation(), "{}", report.verdict);
}

/// The restart count of the supervision-tree child with this `id` (e.g. `"consensus"`, the last
/// segment of its path) in a `GET /admin/tree` answer, read with the kit's [`Tree`].
pub fn restart_count(tree: &Value, id: &str) -> Option<u64> {
    let tree = Tree::from_json(tree.clone()).ok()?;
    tree.children()
        .into_iter()
        .find(|(path, _)| path.rsplit('/').next() == Some(id))
        .map(|(_, child)| child.restart_count)
}
