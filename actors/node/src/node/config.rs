//! A node's configuration: a TOML file, overridden by command-line flags (which clap also reads from
//! `VERISIM_*` environment variables). The cookie comes from the file, `VERISIM_COOKIE`, or a cookie file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use verisim_cluster::{ClusterConfig, CookieSource, TlsConfig};
use verisim_raft::NodeId;

use crate::consensus::SnapshotPolicy;
use crate::consensus::endpoint::node_name;
use crate::store_actors::StoresSettings;

/// Everything a `verisim node` process needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Raft node id, unique in the cluster, never reused. The cluster node name is `n<id>`.
    pub id: NodeId,
    /// Where everything this node keeps lives (see `docs/operations.md` for the layout).
    pub data_dir: PathBuf,
    /// ractor_cluster listen address.
    pub cluster_listen: SocketAddr,
    /// The cluster address other nodes reach this one at (`host:port`, or `host` with the listen
    /// port), when it is not `cluster_listen`: a wildcard listen address, NAT, a container
    /// network, a forwarded port. Like etcd's `--initial-advertise-peer-urls`.
    pub cluster_advertise: Option<String>,
    /// Admin HTTP listen address.
    pub http_listen: SocketAddr,
    /// Cluster addresses of the other nodes, dialled and redialled: `host:port`, or
    /// `ID=host:port` when the node's id is known (then never redialled while that node is
    /// connected, whatever address it announces).
    pub peers: Vec<String>,
    /// Voters of a new cluster (all nodes started with the same list). Empty when joining.
    pub voters: Vec<NodeId>,
    /// Cluster address of a member to join through (as a learner, promoted once caught up).
    pub join: Option<String>,
    pub cookie: CookieSource,
    pub tls: Option<TlsConfig>,
    /// This node's identity file (`verisim identity issue`): with it, every cluster message this
    /// node sends is sealed with its credential, and only messages sealed by a node of the same
    /// authority, proving the id they claim, are accepted (docs/security.md, "Node identities").
    pub identity_file: Option<PathBuf>,
    pub raft: RaftSettings,
    pub snapshot: SnapshotSettings,
    pub heartbeat_interval_ms: u64,
    pub heartbeat_deadline_ms: u64,
    /// `[stores]`: limits, vector collections, semantic schema file (identical on every node).
    pub stores: StoresSettings,
    /// `[admin]`: the bearer token that guards `/admin/*`, and the raw-proposals switch.
    pub admin: AdminSettings,
    /// `[proxy]`: how long a client request may wait for the registry.
    pub proxy: ProxySettings,
    /// `[http]`: the HTTP server's deadlines and connection caps.
    pub http: HttpSettings,
    /// `[drift]`: how often the drift checker runs, and how fast it repairs.
    pub drift: crate::drift::DriftSettings,
    /// `[placement]`: the replication factor, and how fast the rebalancer moves entities.
    pub placement: crate::rebalance::PlacementSettings,
}

/// `[http]`: what one client (or many) may hold of the HTTP server before it is cut off: every
/// deadline bounds how long a connection can be held without sending, every cap how many.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// A connection must deliver a whole request head (request line and headers) within this,
    /// counted from when the server starts waiting for it; otherwise it is closed.
    pub header_read_timeout_ms: u64,
    /// A request's whole body must arrive within this, counted from its head: otherwise the
    /// request is answered `408 request_timeout` and the connection closed.
    pub body_timeout_ms: u64,
    /// A connection with no request in progress and no byte moving for this long is closed.
    pub idle_timeout_ms: u64,
    /// Connections this node holds open at once; the next one is closed as soon as accepted.
    pub max_connections: usize,
    /// Connections one peer IP address holds open at once; the next one is closed likewise.
    pub max_connections_per_ip: usize,
    /// HTTP/2 requests one connection may have in progress at once (its `MAX_CONCURRENT_STREAMS`);
    /// a client keeps at most this many in flight on one connection.
    pub max_streams_per_connection: u32,
    /// `[http.tls]`: serve HTTPS (and only HTTPS) with this certificate; none: plain HTTP.
    pub tls: Option<HttpTls>,
    /// The `host:port` other nodes and tools reach this node's HTTP API at, recorded in the
    /// registry (`GET /admin/members`); none: the address it listens on.
    pub advertise: Option<String>,
}

/// `[http.tls]`: the node's certificate chain and private key, PEM files. Clients check the chain
/// against their certificate authority (`VERISIM_CA_FILE` for the CLI); docs/operations.md walks
/// through making them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTls {
    pub cert_chain: PathBuf,
    pub private_key: PathBuf,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            idle_timeout_ms: 60_000,
            max_connections: 1024,
            max_connections_per_ip: 64,
            max_streams_per_connection: 128,
            tls: None,
            advertise: None,
        }
    }
}

impl HttpSettings {
    fn validate(&self) -> Result<(), String> {
        let timeouts = [
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("body_timeout_ms", self.body_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
        ];
        if let Some((name, _)) = timeouts.iter().find(|(_, v)| *v == 0) {
            return Err(format!("http: {name} must be positive"));
        }
        if self.max_connections == 0 || self.max_connections_per_ip == 0 {
            return Err("http: max_connections and max_connections_per_ip must be positive".into());
        }
        if self.max_streams_per_connection == 0 {
            return Err("http: max_streams_per_connection must be positive".into());
        }
        if self.max_connections_per_ip > self.max_connections {
            return Err(format!(
                "http: max_connections_per_ip ({}) exceeds max_connections ({})",
                self.max_connections_per_ip, self.max_connections
            ));
        }
        Ok(())
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
}

/// `[proxy]`: the public API's waits on the registry quorum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxySettings {
    /// How long a write (and a read's read barrier) may wait for a leader, its commit and this
    /// node's apply before it is answered `503 no_quorum`. Lower it to fail fast without a quorum;
    /// keep it well above an election (election_ticks × tick_ms, doubled).
    pub commit_timeout_ms: u64,
    /// Origins whose browser pages may call the public API (CORS, `proxy::cors`): exact
    /// (`https://app.example.com`) or any port of a host (`http://localhost:*`). None by default.
    pub cors_origins: Vec<String>,
}

impl Default for ProxySettings {
    fn default() -> Self {
        Self {
            commit_timeout_ms: 10_000,
            cors_origins: Vec::new(),
        }
    }
}

impl ProxySettings {
    pub fn commit_timeout(&self) -> Duration {
        Duration::from_millis(self.commit_timeout_ms)
    }
}

/// `[admin]`: the token every `/admin/*` route wants. Without one the admin routes are open, which
/// a node accepts only on a loopback `http_listen`, or when told `insecure_open`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminSettings {
    /// The token itself (prefer `token_file` or `VERISIM_ADMIN_TOKEN`: configs get copied around).
    pub token: Option<String>,
    /// A file holding the token (surrounding whitespace ignored).
    pub token_file: Option<PathBuf>,
    /// Serve `POST /admin/proposals` (raw registry proposals, bypassing the proxy's checks): an
    /// operator and benchmark tool, off by default.
    pub raw_proposals: bool,
    /// Serve the admin routes without a token on a non-loopback `http_listen` (whoever reaches the
    /// port can then enroll and revoke clients): only for networks nobody else reaches.
    pub insecure_open: bool,
}

impl AdminSettings {
    /// The configured token, if any: `token`, else `token_file`'s content. An empty one is refused.
    pub fn load_token(&self) -> Result<Option<String>, NodeConfigError> {
        let token = match (&self.token, &self.token_file) {
            (Some(t), _) => t.trim().to_owned(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|source| NodeConfigError::Read {
                    path: path.clone(),
                    source,
                })?
                .trim()
                .to_owned(),
            (None, None) => return Ok(None),
        };
        if token.is_empty() {
            return Err(NodeConfigError::Invalid("admin: the token is empty".into()));
        }
        Ok(Some(token))
    }
}

/// Raft timing and batching.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftSettings {
    pub tick_ms: u64,
    /// Election timeout drawn from [election_ticks, 2 × election_ticks) ticks.
    pub election_ticks: u32,
    pub heartbeat_ticks: u32,
    pub max_inflight: usize,
    pub max_entries_per_append: usize,
    /// Entries kept below a snapshot's index so a briefly slow follower catches up from the log.
    pub log_keep_after_snapshot: u64,
    /// Bytes per InstallSnapshot chunk, 1 to [`MAX_SNAPSHOT_CHUNK_BYTES`].
    pub snapshot_chunk_bytes: u64,
    /// InstallSnapshot chunks a leader keeps in flight to one follower, 1 to
    /// [`MAX_SNAPSHOT_CHUNKS_IN_FLIGHT`]: the transfer streams rather than waiting a round trip
    /// per chunk. The leader holds up to this many chunks in memory per transfer.
    pub snapshot_chunks_in_flight: usize,
}

/// The most snapshot chunks in flight per transfer (memory: this many chunks per follower).
pub const MAX_SNAPSHOT_CHUNKS_IN_FLIGHT: usize = 16;

/// The largest snapshot chunk: a chunk travels in one cluster message, whose encoding (the chunk
/// plus the snapshot's metadata) must stay under the cluster codec's 8 MiB message limit.
pub const MAX_SNAPSHOT_CHUNK_BYTES: u64 = 7 << 20;

impl Default for RaftSettings {
    fn default() -> Self {
        Self {
            tick_ms: 10,
            election_ticks: 15,
            heartbeat_ticks: 3,
            max_inflight: 64,
            max_entries_per_append: 1024,
            log_keep_after_snapshot: 1024,
            snapshot_chunk_bytes: 4 << 20,
            snapshot_chunks_in_flight: 4,
        }
    }
}

/// The Snapshotter's triggers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnapshotSettings {
    pub max_entries: u64,
    pub max_bytes: u64,
    /// Snapshot at least this often (seconds) when anything changed; 0 turns the age trigger off.
    pub max_age_s: u64,
    pub age_jitter_s: u64,
    pub check_ms: u64,
    /// `max_entries` and `max_bytes` fire only once the log since the last snapshot holds this
    /// percentage of that snapshot's size (0: they fire alone).
    pub min_log_percent: u64,
    /// Snapshots kept on disk.
    pub keep: usize,
}

impl Default for SnapshotSettings {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_bytes: 10 * 1024 * 1024,
            max_age_s: 0,
            age_jitter_s: 30,
            check_ms: 250,
            min_log_percent: 50,
            keep: 2,
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            id: 0,
            data_dir: PathBuf::from("verisim-data"),
            cluster_listen: SocketAddr::from(([127, 0, 0, 1], 7100)),
            cluster_advertise: None,
            http_listen: SocketAddr::from(([127, 0, 0, 1], 8100)),
            peers: Vec::new(),
            voters: Vec::new(),
            join: None,
            cookie: CookieSource::Env("VERISIM_COOKIE".into()),
            tls: None,
            identity_file: None,
            raft: RaftSettings::default(),
            snapshot: SnapshotSettings::default(),
            heartbeat_interval_ms: 200,
            heartbeat_deadline_ms: 1_000,
            stores: StoresSettings::default(),
            admin: AdminSettings::default(),
            proxy: ProxySettings::default(),
            http: HttpSettings::default(),
            drift: crate::drift::DriftSettings::default(),
            placement: crate::rebalance::PlacementSettings::default(),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NodeConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("{0}")]
    Invalid(String),
}

impl NodeConfig {
    pub fn from_file(path: &Path) -> Result<Self, NodeConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| NodeConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| NodeConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    pub fn validate(&self) -> Result<(), NodeConfigError> {
        let bad = |m: String| Err(NodeConfigError::Invalid(m));
        if self.id == 0 {
            return bad("`id` must be set to a positive integer".into());
        }
        if self.voters.is_empty() && self.join.is_none() {
            return bad("give `voters` (a new cluster) or `join` (an existing one)".into());
        }
        if !self.voters.is_empty() && !self.voters.contains(&self.id) {
            return bad(format!(
                "`voters` {:?} must include this node's id {}",
                self.voters, self.id
            ));
        }
        if self.raft.tick_ms == 0 || self.raft.election_ticks <= self.raft.heartbeat_ticks {
            return bad("raft: tick_ms > 0 and election_ticks > heartbeat_ticks".into());
        }
        if !(1..=MAX_SNAPSHOT_CHUNK_BYTES).contains(&self.raft.snapshot_chunk_bytes) {
            return bad(format!(
                "raft: snapshot_chunk_bytes must be 1 to {MAX_SNAPSHOT_CHUNK_BYTES} (a chunk is one \
                 cluster message, at most 8 MiB)"
            ));
        }
        if !(1..=MAX_SNAPSHOT_CHUNKS_IN_FLIGHT).contains(&self.raft.snapshot_chunks_in_flight) {
            return bad(format!(
                "raft: snapshot_chunks_in_flight must be 1 to {MAX_SNAPSHOT_CHUNKS_IN_FLIGHT}"
            ));
        }
        if self.proxy.commit_timeout_ms == 0 {
            return bad("proxy: commit_timeout_ms must be positive".into());
        }
        crate::proxy::cors::CorsOrigins::parse(&self.proxy.cors_origins)
            .map_err(|e| NodeConfigError::Invalid(format!("proxy: {e}")))?;
        self.placement
            .validate()
            .map_err(NodeConfigError::Invalid)?;
        // Seeds and the advertise address, checked now rather than when the cluster layer starts.
        self.cluster_config()
            .validate()
            .map_err(|e| NodeConfigError::Invalid(e.to_string()))?;
        let has_token = self.admin.token.is_some() || self.admin.token_file.is_some();
        if !self.http_listen.ip().is_loopback() && !has_token && !self.admin.insecure_open {
            return bad(format!(
                "http_listen {} is not a loopback address and no admin token is set: anyone \
                 reaching it could enroll or revoke clients. Set `[admin] token_file` (or \
                 --admin-token-file / VERISIM_ADMIN_TOKEN), or, on a network nobody else \
                 reaches, `[admin] insecure_open = true` (--admin-insecure-open)",
                self.http_listen
            ));
        }
        self.http.validate().map_err(NodeConfigError::Invalid)?;
        Ok(())
    }

    /// The modality stores' fjall database.
    pub fn stores_dir(&self) -> PathBuf {
        self.data_dir.join("stores")
    }

    pub fn raft_dir(&self) -> PathBuf {
        self.data_dir.join("raft")
    }

    pub fn cluster_config(&self) -> ClusterConfig {
        let mut seeds: Vec<String> = self.peers.iter().map(|p| seed_of_peer(p)).collect();
        if let Some(j) = &self.join
            && !seeds.contains(j)
        {
            seeds.push(j.clone());
        }
        ClusterConfig {
            node_name: node_name(self.id),
            listen: self.cluster_listen,
            advertise: self.cluster_advertise.clone(),
            cookie: self.cookie.clone(),
            tls: self.tls.clone(),
            seeds,
            heartbeat_interval_ms: self.heartbeat_interval_ms,
            heartbeat_deadline_ms: self.heartbeat_deadline_ms,
            ..ClusterConfig::default()
        }
    }

    pub fn raft_config(&self) -> verisim_raft::Config {
        let mut c = verisim_raft::Config::new(self.id, rand::random());
        c.election_ticks = self.raft.election_ticks;
        c.heartbeat_ticks = self.raft.heartbeat_ticks;
        c.max_inflight = self.raft.max_inflight;
        c.max_entries_per_append = self.raft.max_entries_per_append;
        c.log_keep_after_snapshot = self.raft.log_keep_after_snapshot;
        c.snapshot_chunk_size = self.raft.snapshot_chunk_bytes;
        c.snapshot_chunks_in_flight = self.raft.snapshot_chunks_in_flight;
        c
    }

    pub fn snapshot_policy(&self) -> SnapshotPolicy {
        let s = &self.snapshot;
        SnapshotPolicy {
            max_entries: s.max_entries,
            max_bytes: s.max_bytes,
            max_age: (s.max_age_s > 0).then(|| Duration::from_secs(s.max_age_s)),
            age_jitter: Duration::from_secs(s.age_jitter_s),
            check_every: Duration::from_millis(s.check_ms.max(1)),
            min_log_percent: s.min_log_percent,
        }
    }
}

/// `ID=host:port` names the node `n<ID>` for the cluster layer; anything else passes as it is.
fn seed_of_peer(peer: &str) -> String {
    match peer.split_once('=') {
        Some((id, addr)) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
            format!("n{id}={addr}")
        }
        _ => peer.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_documented_example() {
        let text = r#"
            id = 2
            data_dir = "/var/lib/verisim/n2"
            cluster_listen = "127.0.0.1:7102"
            http_listen = "127.0.0.1:8102"
            peers = ["127.0.0.1:7101", "127.0.0.1:7103"]
            voters = [1, 2, 3]
            cookie = { file = "/etc/verisim/cookie" }
            [raft]
            tick_ms = 10
            [snapshot]
            max_entries = 5000
        "#;
        let c: NodeConfig = toml::from_str(text).unwrap();
        c.validate().unwrap();
        assert_eq!(c.snapshot.max_entries, 5000);
        assert_eq!(c.snapshot.max_bytes, 10 * 1024 * 1024);
        assert_eq!(c.cluster_config().node_name, "n2");
        assert_eq!(c.cookie, CookieSource::File("/etc/verisim/cookie".into()));
        assert!(!c.admin.raw_proposals, "raw proposals are off by default");
        assert_eq!(c.proxy.commit_timeout(), Duration::from_secs(10));
        let fast: NodeConfig = toml::from_str("[proxy]\ncommit_timeout_ms = 1500").unwrap();
        assert_eq!(fast.proxy.commit_timeout(), Duration::from_millis(1500));
        let zero = NodeConfig {
            id: 1,
            voters: vec![1],
            proxy: ProxySettings {
                commit_timeout_ms: 0,
                ..ProxySettings::default()
            },
            ..NodeConfig::default()
        };
        assert!(zero.validate().is_err());
        // CORS: none by default; origins parse, a wildcard or a path is refused at start.
        assert!(c.proxy.cors_origins.is_empty());
        let cors: NodeConfig = toml::from_str(
            "id = 1\nvoters = [1]\n[proxy]\ncors_origins = [\"https://app.example.com\", \"http://localhost:*\"]",
        )
        .unwrap();
        cors.validate().unwrap();
        for bad in ["*", "https://app.example.com/path"] {
            let mut c = cors.clone();
            c.proxy.cors_origins = vec![bad.into()];
            assert!(c.validate().is_err(), "{bad} must be refused");
        }
        let on: NodeConfig = toml::from_str("[admin]\nraw_proposals = true").unwrap();
        assert!(on.admin.raw_proposals);
    }

    #[test]
    fn peers_with_ids_become_named_seeds_and_the_advertise_address_is_checked() {
        let text = r#"
            id = 1
            voters = [1, 2, 3]
            cluster_listen = "0.0.0.0:7100"
            cluster_advertise = "node1.internal:7100"
            peers = ["2=node2.internal:7100", "n3=node3.internal:7100", "10.0.0.4:7100"]
        "#;
        let c: NodeConfig = toml::from_str(text).unwrap();
        c.validate().unwrap();
        let cluster = c.cluster_config();
        assert_eq!(
            cluster.seeds,
            [
                "n2=node2.internal:7100",
                "n3=node3.internal:7100",
                "10.0.0.4:7100"
            ]
        );
        assert_eq!(
            cluster.advertised(7100).unwrap(),
            ("node1.internal".to_string(), 7100)
        );
        for bad in [
            "peers = [\"node2.internal\"]",
            "cluster_advertise = \"node1:port\"",
        ] {
            let c: NodeConfig = toml::from_str(&format!("id = 1\nvoters = [1]\n{bad}")).unwrap();
            assert!(c.validate().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn the_stores_section_has_a_default_collection_and_parses_limits_and_collections() {
        let c: NodeConfig = toml::from_str("id = 1\nvoters = [1]").unwrap();
        let setup = c.stores.resolve().unwrap();
        assert_eq!(setup.collections.len(), 1);
        assert_eq!(setup.collections[0].0, "default");
        assert_eq!(setup.collections[0].1.dim, 128);
        let text = r#"
            id = 1
            voters = [1]
            [stores]
            cache_bytes = 1048576
            [stores.limits]
            max_k = 50
            [[stores.collections]]
            name = "text"
            dimension = 384
            metric = "dot"
        "#;
        let c: NodeConfig = toml::from_str(text).unwrap();
        assert_eq!(c.stores.limits.max_k, 50);
        assert_eq!(c.stores.limits.max_hops, 16);
        let setup = c.stores.resolve().unwrap();
        assert_eq!(setup.collections[0].0, "text");
        assert!(toml::from_str::<NodeConfig>("id = 1\n[stores.limits]\nmax_kk = 1").is_err());
    }

    #[test]
    fn the_http_section_has_bounded_defaults_and_refuses_zero_or_inverted_limits() {
        let d: NodeConfig = toml::from_str("id = 1\nvoters = [1]").unwrap();
        d.validate().unwrap();
        assert_eq!(d.http.header_read_timeout(), Duration::from_secs(10));
        assert_eq!(d.http.body_timeout(), Duration::from_secs(30));
        assert_eq!(d.http.idle_timeout(), Duration::from_secs(60));
        assert_eq!(d.http.max_connections, 1024);
        assert_eq!(d.http.max_connections_per_ip, 64);
        let text = "id = 1\nvoters = [1]\n[http]\nheader_read_timeout_ms = 500\nmax_connections = 8\nmax_connections_per_ip = 2";
        let c: NodeConfig = toml::from_str(text).unwrap();
        c.validate().unwrap();
        assert_eq!(c.http.header_read_timeout(), Duration::from_millis(500));
        assert_eq!(c.http.max_connections_per_ip, 2);
        assert_eq!(
            c.http.body_timeout_ms, 30_000,
            "unset keys keep their default"
        );
        for bad in [
            "body_timeout_ms = 0",
            "idle_timeout_ms = 0",
            "header_read_timeout_ms = 0",
            "max_connections = 0",
            "max_connections_per_ip = 0",
            "max_connections = 4\nmax_connections_per_ip = 5",
        ] {
            let c: NodeConfig =
                toml::from_str(&format!("id = 1\nvoters = [1]\n[http]\n{bad}")).unwrap();
            let err = c.validate().expect_err(bad).to_string();
            assert!(err.starts_with("http: "), "{bad}: {err}");
        }
        assert!(toml::from_str::<NodeConfig>("id = 1\n[http]\nheader_timeout_ms = 1").is_err());
    }

    #[test]
    fn unknown_keys_and_missing_ids_are_refused() {
        assert!(toml::from_str::<NodeConfig>("id = 1\nvoterz = [1]").is_err());
        let c = NodeConfig {
            voters: vec![1],
            ..NodeConfig::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn snapshot_chunks_fit_one_cluster_message() {
        let with = |bytes| {
            let mut c = NodeConfig {
                id: 1,
                voters: vec![1],
                ..NodeConfig::default()
            };
            c.raft.snapshot_chunk_bytes = bytes;
            c.validate()
        };
        assert_eq!(RaftSettings::default().snapshot_chunk_bytes, 4 << 20);
        for ok in [1, 4 << 20, MAX_SNAPSHOT_CHUNK_BYTES] {
            with(ok).unwrap();
        }
        for bad in [0, MAX_SNAPSHOT_CHUNK_BYTES + 1, 16 << 20] {
            assert!(with(bad).is_err(), "{bad}");
        }
        let window = |n| {
            let mut c = NodeConfig {
                id: 1,
                voters: vec![1],
                ..NodeConfig::default()
            };
            c.raft.snapshot_chunks_in_flight = n;
            c.validate()
        };
        assert_eq!(RaftSettings::default().snapshot_chunks_in_flight, 4);
        window(1).unwrap();
        window(MAX_SNAPSHOT_CHUNKS_IN_FLIGHT).unwrap();
        for bad in [0, MAX_SNAPSHOT_CHUNKS_IN_FLIGHT + 1] {
            assert!(window(bad).is_err(), "{bad}");
        }
        assert!(
            MAX_SNAPSHOT_CHUNK_BYTES + (64 << 10)
                < verisim_cluster::DEFAULT_MAX_MESSAGE_BYTES as u64
        );
    }

    #[test]
    fn a_node_open_to_the_network_without_an_admin_token_is_refused_unless_told_so() {
        let base = || NodeConfig {
            id: 1,
            voters: vec![1],
            ..NodeConfig::default()
        };
        // Loopback without a token: the harness and `verisim dev`'s default, allowed.
        base().validate().unwrap();
        let v6 = NodeConfig {
            http_listen: "[::1]:8100".parse().unwrap(),
            ..base()
        };
        v6.validate().unwrap();
        for addr in ["0.0.0.0:8100", "10.1.2.3:8100", "[::]:8100"] {
            let open = NodeConfig {
                http_listen: addr.parse().unwrap(),
                ..base()
            };
            let err = open.validate().unwrap_err().to_string();
            assert!(
                err.contains("no admin token") && err.contains("insecure_open"),
                "{addr}: {err}"
            );
            let with_file = NodeConfig {
                admin: AdminSettings {
                    token_file: Some("/etc/verisim/admin-token".into()),
                    ..AdminSettings::default()
                },
                ..open.clone()
            };
            with_file.validate().unwrap();
            let with_token = NodeConfig {
                admin: AdminSettings {
                    token: Some("t".into()),
                    ..AdminSettings::default()
                },
                ..open.clone()
            };
            with_token.validate().unwrap();
        }
        let told: NodeConfig = toml::from_str(
            "id = 1\nvoters = [1]\nhttp_listen = \"0.0.0.0:8100\"\n[admin]\ninsecure_open = true",
        )
        .unwrap();
        told.validate().unwrap();
    }

    #[test]
    fn the_admin_token_comes_from_the_config_or_a_file_and_is_never_empty() {
        let c: NodeConfig = toml::from_str("id = 1\n[admin]\ntoken = \" t0k \"").unwrap();
        assert_eq!(c.admin.load_token().unwrap().as_deref(), Some("t0k"));
        assert_eq!(NodeConfig::default().admin.load_token().unwrap(), None);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-file\n").unwrap();
        let from_file = AdminSettings {
            token: None,
            token_file: Some(file.clone()),
            ..AdminSettings::default()
        };
        assert_eq!(
            from_file.load_token().unwrap().as_deref(),
            Some("from-file")
        );
        std::fs::write(&file, "  \n").unwrap();
        assert!(from_file.load_token().is_err());
        let missing = AdminSettings {
            token: None,
            token_file: Some(dir.path().join("absent")),
            ..AdminSettings::default()
        };
        assert!(missing.load_token().is_err());
    }
}
