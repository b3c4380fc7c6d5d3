//! Harness for the Docker partition tests: `verisim node` containers on private bridge networks,
//! partitioned with `docker network disconnect`.
//!
//! The image is `FROM scratch` with the test build's own `verisim` binary and the shared libraries
//! it loads (no registry, no base image, no second build): tagged with their hash, reused when the
//! tag exists, built under a file lock so parallel test processes build it once. Older tags of the
//! image are removed, so one cached image at most outlives a run (all of this in [`image`]).
//!
//! Each container is attached to two `--internal` networks with fixed subnets unique to the run:
//! the *cluster* network carries node-to-node traffic and is the one that gets cut; the *admin*
//! network carries the test's HTTP requests and is never cut, so a cut-off node can still be
//! asked to commit (and be seen failing to). The image has no NSS configuration and no resolver
//! files: everything is addressed by IP. Dropping a [`DockerCluster`] (also while
//! unwinding) removes its containers and networks, printing their logs first on a panic.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use verisim_lincheck::{KvHistory, KvInput, KvOutput};

use super::{Reply, WriteOutcome, agent, to_reply, wait_for};

pub mod image;

use image::{DOCKER_TIMEOUT, LABEL, docker, run_full};

/// How long a node container may take to answer `/healthz`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const CLUSTER_PORT: u16 = 7000;
const HTTP_PORT: u16 = 8080;
const COOKIE: &str = "cookie-of-the-docker-test-cluster";

/// A run id unique on this host: names every container and network of a cluster.
fn run_id() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{:x}{:x}{}",
        std::process::id(),
        nanos,
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// A bridge network with a fixed `/24` subnet: `prefix` is its first three octets.
struct Network {
    name: String,
    prefix: String,
}

impl Network {
    /// Creates `name` on a random `10.x.y.0/24` that no other network on the host uses.
    fn create(name: String) -> Result<Self, String> {
        use rand::Rng;
        let mut rng = rand::rng();
        let mut last = String::new();
        for _ in 0..32 {
            let prefix = format!(
                "10.{}.{}",
                rng.random_range(100..=254u8),
                rng.random_range(0..=255u8)
            );
            match docker(&[
                "network",
                "create",
                "--driver",
                "bridge",
                // Nothing leaves it: no default route, so a node cut from the cluster network
                // cannot reach its peers through the admin one.
                "--internal",
                "--label",
                &format!("{LABEL}=1"),
                "--subnet",
                &format!("{prefix}.0/24"),
                &name,
            ]) {
                Ok(_) => return Ok(Self { name, prefix }),
                // Another network (another run, a VPN) holds that subnet: draw again.
                Err(e) if e.contains("overlap") => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(format!("no free 10.x.y.0/24 subnet: {last}"))
    }

    fn ip(&self, host: u64) -> String {
        format!("{}.{}", self.prefix, 10 + host)
    }
}

/// One node container.
pub struct DockerNode {
    pub id: u64,
    pub name: String,
    /// Its address on the cluster network (the one that gets cut).
    pub cluster_ip: String,
    /// Its address on the admin network (where the test's HTTP requests go).
    pub admin_ip: String,
    agent: ureq::Agent,
}

impl DockerNode {
    fn url(&self, path: &str) -> String {
        format!("http://{}:{HTTP_PORT}{path}", self.admin_ip)
    }
    pub fn get(&self, path: &str) -> Result<Reply, String> {
        to_reply(self.agent.get(&self.url(path)).call())
    }
    pub fn post(&self, path: &str) -> Result<Reply, String> {
        to_reply(self.agent.post(&self.url(path)).send_empty())
    }
    pub fn put(&self, path: &str, body: &serde_json::Value) -> Result<Reply, String> {
        to_reply(self.agent.put(&self.url(path)).send_json(body))
    }
    /// `GET /admin/status`'s `consensus` object.
    pub fn consensus(&self) -> Option<serde_json::Value> {
        let r = self.get("/admin/status").ok()?;
        r.ok().then(|| r.body["consensus"].clone())
    }
}

/// Three (or more) node containers on a private network, removed on drop.
pub struct DockerCluster {
    pub nodes: Vec<DockerNode>,
    cluster_net: Option<Network>,
    admin_net: Option<Network>,
    started: Instant,
    /// The node that last acknowledged a write: tried first by the next one.
    preferred: AtomicU64,
}

impl DockerCluster {
    /// Builds the image if needed, creates the networks, starts `n` voters and waits for a
    /// leader.
    pub fn start(n: u64) -> Self {
        let image = image::image().unwrap_or_else(|e| panic!("image: {e}"));
        let run = run_id();
        let mut c = Self {
            nodes: Vec::new(),
            cluster_net: None,
            admin_net: None,
            started: Instant::now(),
            preferred: AtomicU64::new(1),
        };
        // Each piece is stored as soon as it exists, so a failure below still cleans it up.
        c.cluster_net = Some(
            Network::create(format!("verisim-{run}-cluster")).unwrap_or_else(|e| panic!("{e}")),
        );
        c.admin_net =
            Some(Network::create(format!("verisim-{run}-admin")).unwrap_or_else(|e| panic!("{e}")));
        let (cnet, anet) = (c.cluster_net(), c.admin_net());
        let ids: Vec<u64> = (1..=n).collect();
        let voters = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        let specs: Vec<(u64, String, String, String)> = ids
            .iter()
            .map(|&id| {
                let name = format!("verisim-{run}-n{id}");
                (id, name, cnet.ip(id), anet.ip(id))
            })
            .collect();
        let (cnet_name, anet_name) = (cnet.name.clone(), anet.name.clone());
        for (id, name, cluster_ip, admin_ip) in specs {
            let peers = ids
                .iter()
                .filter(|&&p| p != id)
                .map(|&p| format!("{}:{CLUSTER_PORT}", c.cluster_net().ip(p)))
                .collect::<Vec<_>>()
                .join(",");
            c.nodes.push(DockerNode {
                id,
                name: name.clone(),
                cluster_ip: cluster_ip.clone(),
                admin_ip: admin_ip.clone(),
                agent: agent(),
            });
            docker(&[
                "run",
                "--detach",
                "--name",
                &name,
                "--label",
                &format!("{LABEL}=1"),
                "--network",
                &cnet_name,
                "--ip",
                &cluster_ip,
                "--env",
                &format!("VERISIM_COOKIE={COOKIE}"),
                "--env",
                &format!(
                    "VERISIM_LOG={}",
                    std::env::var("VERISIM_LOG").unwrap_or("info".into())
                ),
                &image,
                "node",
                "--id",
                &id.to_string(),
                "--data-dir",
                "/data",
                "--cluster-listen",
                &format!("{cluster_ip}:{CLUSTER_PORT}"),
                // Every interface: the admin network is attached after start.
                "--http-listen",
                &format!("0.0.0.0:{HTTP_PORT}"),
                "--peer",
                &peers,
                "--voters",
                &voters,
                "--tick-ms",
                "10",
                // The admin network is the test's own; no one else reaches it.
                "--admin-insecure-open",
            ])
            .unwrap_or_else(|e| panic!("start n{id}: {e}"));
            docker(&["network", "connect", "--ip", &admin_ip, &anet_name, &name])
                .unwrap_or_else(|e| panic!("attach n{id} to the admin network: {e}"));
        }
        for node in &c.nodes {
            wait_for(
                &format!("{} to answer /healthz at {}", node.name, node.admin_ip),
                READY_TIMEOUT,
                || node.get("/healthz").ok().filter(Reply::ok),
            );
        }
        c.wait_leader(Duration::from_secs(30));
        c
    }

    fn cluster_net(&self) -> &Network {
        self.cluster_net.as_ref().expect("cluster network")
    }
    fn admin_net(&self) -> &Network {
        self.admin_net.as_ref().expect("admin network")
    }

    pub fn node(&self, id: u64) -> &DockerNode {
        &self.nodes[(id - 1) as usize]
    }

    /// Nanoseconds since the cluster started: the clock of recorded histories.
    pub fn now(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// `docker network disconnect`: node `id` loses its cluster interface (and every connection
    /// over it); its admin interface stays.
    pub fn cut(&self, id: u64) {
        let (net, name) = (self.cluster_net().name.clone(), self.node(id).name.clone());
        docker(&["network", "disconnect", &net, &name])
            .unwrap_or_else(|e| panic!("cut n{id}: {e}"));
    }

    /// `docker network connect` with the node's old address (its peers know it by that).
    pub fn reconnect(&self, id: u64) {
        let n = self.node(id);
        let (net, name, ip) = (
            self.cluster_net().name.clone(),
            n.name.clone(),
            n.cluster_ip.clone(),
        );
        docker(&["network", "connect", "--ip", &ip, &net, &name])
            .unwrap_or_else(|e| panic!("reconnect n{id}: {e}"));
    }

    /// `(id, term)` of the node reporting itself Leader at the highest term, among `include`.
    pub fn leader_among(&self, include: impl Fn(u64) -> bool) -> Option<(u64, u64)> {
        let mut best: Option<(u64, u64)> = None;
        for n in self.nodes.iter().filter(|n| include(n.id)) {
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

    pub fn leader(&self) -> Option<(u64, u64)> {
        self.leader_among(|_| true)
    }

    pub fn wait_leader(&self, timeout: Duration) -> (u64, u64) {
        wait_for("a leader", timeout, || self.leader())
    }

    /// One write attempt at node `via` (same request and classification as the loopback
    /// harness's `Cluster::try_put`).
    pub fn try_put(&self, via: u64, key: &str, value: &str) -> WriteOutcome {
        let body = json!({"cluster_addr": value, "http_addr": format!("http-{value}")});
        match self.node(via).put(&format!("/admin/nodes/{key}"), &body) {
            Ok(r) if r.ok() => WriteOutcome::Ok {
                index: r.body["index"].as_u64().unwrap_or(0),
                term: r.body["term"].as_u64().unwrap_or(0),
            },
            Ok(r) if r.status == 400 || r.status == 409 => {
                WriteOutcome::Failed(format!("{} {}", r.status, r.body))
            }
            Ok(r) => WriteOutcome::Unknown(format!("{} {}", r.status, r.body)),
            Err(e) => WriteOutcome::Unknown(e),
        }
    }

    /// Writes through the nodes in `via` (the preferred one first), retrying until one write is
    /// acknowledged; panics after `timeout`.
    pub fn put_via(&self, via: &[u64], key: &str, value: &str, timeout: Duration) -> (u64, u64) {
        let mut order = via.to_vec();
        if let Some(pos) = order
            .iter()
            .position(|&id| id == self.preferred.load(Ordering::Relaxed))
        {
            order.rotate_left(pos);
        }
        let mut attempt = 0usize;
        wait_for(
            &format!("write {key}={value} through {via:?}"),
            timeout,
            || {
                let node = order[attempt % order.len()];
                attempt += 1;
                match self.try_put(node, key, value) {
                    WriteOutcome::Ok { index, term } => {
                        self.preferred.store(node, Ordering::Relaxed);
                        Some((index, term))
                    }
                    _ => None,
                }
            },
        )
    }

    /// One linearizable read at node `via`: `Err` when refused (not the leader, no quorum).
    pub fn try_get(&self, via: u64, key: &str) -> Result<Option<String>, String> {
        let r = self.node(via).get(&format!("/admin/nodes/{key}"))?;
        match r.status {
            200 => Ok(r.body["cluster_addr"].as_str().map(str::to_string)),
            404 if r.code() == Some("unknown_node") => Ok(None),
            _ => Err(format!("{} {}", r.status, r.body)),
        }
    }

    /// Waits until node `id` has applied `index`.
    pub fn wait_applied(&self, id: u64, index: u64, timeout: Duration) {
        wait_for(&format!("n{id} applied index >= {index}"), timeout, || {
            let c = self.node(id).consensus()?;
            (c["applied_index"].as_u64()? >= index).then_some(())
        });
    }

    /// Makes `id` the leader by leadership transfer, retried until it holds.
    pub fn transfer_to(&self, id: u64, timeout: Duration) {
        wait_for(&format!("n{id} to take over leadership"), timeout, || {
            let (l, _) = self.leader()?;
            if l == id {
                return Some(());
            }
            let _ = self.node(l).post(&format!("/admin/transfer/{id}"));
            // Give the transfer an election's time before asking again.
            std::thread::sleep(Duration::from_millis(200));
            None
        });
    }

    /// Every node in turn becomes the leader and serves a linearizable read of every key in
    /// `expected` (value `None`: absent). Reads are served by the leader only, so this is how a
    /// test shows that each node holds the data.
    pub fn assert_readable_everywhere(&self, expected: &BTreeMap<String, Option<String>>) {
        for n in &self.nodes {
            self.transfer_to(n.id, Duration::from_secs(30));
            for (key, want) in expected {
                let got = wait_for(
                    &format!("n{} to read {key}", n.id),
                    Duration::from_secs(20),
                    || self.try_get(n.id, key).ok(),
                );
                assert_eq!(&got, want, "n{} read {key}", n.id);
            }
        }
    }

    /// Prints the tail of every container's log to stderr.
    pub fn dump_logs(&self) {
        for n in &self.nodes {
            // The node logs to stderr; `docker logs` replays the container's streams as they were.
            let log = run_full(
                Command::new("docker").args(["logs", "--tail", "60", &n.name]),
                DOCKER_TIMEOUT,
            );
            let text = match log {
                Ok((out, err)) => format!("{out}{err}"),
                Err(e) => e,
            };
            eprintln!("===== n{} ({}) log =====\n{text}", n.id, n.name);
        }
    }
}

impl Drop for DockerCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        let names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
        if !names.is_empty() {
            let mut args = vec!["rm", "--force", "--volumes"];
            args.extend(names);
            if let Err(e) = docker(&args) {
                eprintln!("cleanup: {e}");
            }
        }
        for net in [self.cluster_net.take(), self.admin_net.take()]
            .into_iter()
            .flatten()
        {
            if let Err(e) = docker(&["network", "rm", &net.name]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}

/// Records a concurrent client history against a [`DockerCluster`] (the same recording as the
/// loopback harness's `Recorder`).
pub struct DockerRecorder {
    pub history: std::sync::Mutex<KvHistory>,
}

impl DockerRecorder {
    pub fn new() -> Self {
        Self {
            history: std::sync::Mutex::new(KvHistory::new()),
        }
    }

    /// A recorded write by `client` through node `via`; unknown outcomes stay open.
    pub fn put(
        &self,
        c: &DockerCluster,
        client: u64,
        via: u64,
        key: &str,
        value: &str,
    ) -> WriteOutcome {
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
            WriteOutcome::Unknown(_) => {}
        }
        out
    }

    /// A recorded linearizable read; refusals are recorded as failed (a read has no effect).
    pub fn get(
        &self,
        c: &DockerCluster,
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
