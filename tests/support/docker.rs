//! Harness for the Docker partition tests: `verisim node` containers on private bridge networks,
//! partitioned with `docker network disconnect`.
//!
//! The image is `FROM scratch` with a static `verisim` binary (no registry, no base image): the
//! harness builds that binary itself (`cargo build --profile docker --target <host triple>` with
//! `+crt-static`, under a file lock so parallel test processes build it once), then builds an
//! image tagged with the binary's hash, or reuses it when the tag exists. Older tags of the image
//! are removed, so one cached image at most outlives a run.
//!
//! Each container is attached to two `--internal` networks with fixed subnets unique to the run:
//! the *cluster* network carries node-to-node traffic and is the one that gets cut; the *admin*
//! network carries the test's HTTP requests and is never cut, so a cut-off node can still be
//! asked to commit (and be seen failing to). Static glibc cannot resolve host names (no NSS in a
//! scratch image): everything is addressed by IP. Dropping a [`DockerCluster`] (also while
//! unwinding) removes its containers and networks, printing their logs first on a panic.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use verisim_lincheck::{KvHistory, KvInput, KvOutput};

use super::{Reply, WriteOutcome, agent, to_reply, wait_for};

/// How long `docker info` may take before we call the daemon absent.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Ordinary docker commands (run, network connect, rm...).
const DOCKER_TIMEOUT: Duration = Duration::from_secs(60);
/// The static build: cold, it compiles the workspace and its dependencies once more.
const BUILD_TIMEOUT: Duration = Duration::from_secs(1500);
/// How long a node container may take to answer `/healthz`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The image's repository name and the label every image, container and network carries.
const IMAGE_REPO: &str = "verisim-systest";
const LABEL: &str = "verisim.systest";
const CLUSTER_PORT: u16 = 7000;
const HTTP_PORT: u16 = 8080;
const COOKIE: &str = "cookie-of-the-docker-test-cluster";

/// The standard output of a finished command, or why it did not finish well.
fn run(cmd: &mut Command, timeout: Duration) -> Result<String, String> {
    run_full(cmd, timeout).map(|(out, _)| out)
}

/// Standard output and standard error of a finished command, or why it did not finish well.
fn run_full(cmd: &mut Command, timeout: Duration) -> Result<(String, String), String> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: {e}"))?;
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = drain(child.stdout.take().map(|r| Box::new(r) as _));
    let err = drain(child.stderr.take().map(|r| Box::new(r) as _));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what}: no answer within {timeout:?}"));
            }
            Err(e) => return Err(format!("{what}: {e}")),
        }
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    if status.success() {
        Ok((out, err))
    } else {
        Err(format!("{what}: {status}: {}{}", err.trim(), out.trim()))
    }
}

fn docker(args: &[&str]) -> Result<String, String> {
    run(Command::new("docker").args(args), DOCKER_TIMEOUT)
}

/// `Err(reason)` unless a Docker daemon answers within [`PROBE_TIMEOUT`].
pub fn daemon() -> Result<(), String> {
    if !cfg!(target_os = "linux") {
        return Err("the static image is built for Linux only".into());
    }
    run(
        Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]),
        PROBE_TIMEOUT,
    )
    .map(|_| ())
}

/// Whether the test may run; prints a loud SKIPPED line when it may not.
pub fn docker_or_skip(test: &str) -> bool {
    match daemon() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("\n!!!!! SKIPPED: no Docker daemon ({why}); {test} did not run !!!!!\n");
            false
        }
    }
}

/// The directory cargo builds into (the parent of the profile directory that holds the
/// `verisim` binary this test was built with).
fn target_dir() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_verisim"));
    let dir = bin
        .parent()
        .and_then(Path::parent)
        .expect("the verisim binary lives in <target>/[<triple>/]<profile>/");
    // Cargo keeps `.rustc_info.json` at the target directory's root only: `dir` is
    // `<target>/<triple>` when the outer build named a `--target`.
    match dir.parent() {
        Some(up)
            if !dir.join(".rustc_info.json").exists() && up.join(".rustc_info.json").exists() =>
        {
            up.to_path_buf()
        }
        _ => dir.to_path_buf(),
    }
}

/// Builds (or finds up to date) the static binary; `VERISIM_DOCKER_BIN` names a prebuilt one.
fn static_binary(target: &Path) -> Result<PathBuf, String> {
    if let Some(bin) = std::env::var_os("VERISIM_DOCKER_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let triple = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    let cargo = std::env::var("CARGO")
        .ok()
        .or(option_env!("CARGO").map(str::to_string))
        .unwrap_or_else(|| "cargo".into());
    let started = Instant::now();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    run(
        Command::new(cargo)
            .args([
                "build",
                "--locked",
                "--profile",
                "docker",
                "--bin",
                "verisim",
                "--target",
                &triple,
            ])
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--target-dir")
            .arg(target)
            // `--target` keeps build scripts and proc-macros dynamic; only the binary is static.
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .env_remove("CARGO_ENCODED_RUSTFLAGS"),
        BUILD_TIMEOUT,
    )?;
    eprintln!(
        "static verisim for the image: cargo build --profile docker --target {triple} took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(target.join(&triple).join("docker").join("verisim"))
}

/// The tag of an image holding the current static binary, building both if needed.
pub fn image() -> Result<String, String> {
    let target = target_dir();
    // One test process at a time builds; the others wait here and then find everything fresh.
    let lock = File::create(target.join("verisim-docker-image.lock"))
        .map_err(|e| format!("lock file in {}: {e}", target.display()))?;
    lock.lock().map_err(|e| format!("lock: {e}"))?;
    let bin = static_binary(&target)?;
    let bytes = std::fs::read(&bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    let hash = blake3::hash(&bytes).to_hex();
    let tag = format!("{IMAGE_REPO}:{}", &hash[..16]);
    if docker(&["image", "inspect", "--format", "{{.Id}}", &tag]).is_ok() {
        eprintln!("reusing image {tag}");
        return Ok(tag);
    }
    let ctx = tempfile::Builder::new()
        .prefix("verisim-image-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    std::fs::copy(&bin, ctx.path().join("verisim")).map_err(|e| format!("copy binary: {e}"))?;
    let dockerfile = format!(
        "FROM scratch\nLABEL {LABEL}=1\nCOPY verisim /verisim\nENTRYPOINT [\"/verisim\"]\n"
    );
    let mut cmd = Command::new("docker");
    cmd.args(["build", "--quiet", "--tag", &tag, "--file", "-"])
        .arg(ctx.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Without the buildx plugin the modern client refuses BuildKit builds; the legacy builder
    // handles a one-COPY image just as well.
    if docker(&["buildx", "version"]).is_err() {
        cmd.env("DOCKER_BUILDKIT", "0");
    }
    let mut child = cmd.spawn().map_err(|e| format!("docker build: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(dockerfile.as_bytes())
            .map_err(|e| format!("docker build stdin: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("docker build: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "docker build: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    eprintln!("built image {tag}");
    // Older builds of the test image: removed, unless a parallel run still uses one.
    let old = docker(&[
        "image",
        "ls",
        "--filter",
        &format!("label={LABEL}"),
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ])
    .unwrap_or_default();
    for t in old
        .lines()
        .map(str::trim)
        .filter(|t| !t.is_empty() && *t != tag)
    {
        let _ = docker(&["rmi", t]);
    }
    Ok(tag)
}

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
        let image = image().unwrap_or_else(|e| panic!("image: {e}"));
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
