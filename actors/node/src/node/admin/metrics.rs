//! `GET /metrics`: OpenMetrics text from `prometheus-client`. Three sources meet in one registry
//! built per scrape: the HTTP layer's counters and latency histogram (kept here), the histograms
//! and counters observed across the node ([`crate::telemetry`]), and the values read on each scrape
//! from the consensus actor, the supervision tree, the registry replica and the process (`/proc`).

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use verisim_raft::Role;
use verisim_supervision::TreeNode;

use super::process::ProcessStats;
use crate::consensus::actor::ConsensusStatus;
use crate::telemetry::TELEMETRY;

/// The OpenMetrics text content type (Prometheus negotiates it).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// HTTP latency histogram upper bounds, seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

fn http_histogram() -> Histogram {
    Histogram::new(BUCKETS)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteCode {
    route: String,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

/// HTTP requests by (route, status), their latency by route, and the server's connection counters.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: Family<RouteCode, Counter>,
    duration: Family<RouteLabel, Histogram, fn() -> Histogram>,
    pub connections: ConnectionMetrics,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(http_histogram),
            connections: ConnectionMetrics::default(),
        }
    }
}

/// Why a connection was refused at accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// `http.max_connections` connections were open.
    NodeCap,
    /// `http.max_connections_per_ip` connections from the same peer IP were open.
    PeerCap,
}

/// Which deadline closed a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deadline {
    /// The request head did not arrive in `http.header_read_timeout_ms`.
    Header,
    /// The body did not arrive in `http.body_timeout_ms`.
    Body,
    /// Nothing moved for `http.idle_timeout_ms` between requests.
    Idle,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CapLabel {
    cap: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeadlineLabel {
    deadline: &'static str,
}

/// The HTTP server's connection counters (the server in `node::http_server` updates them).
#[derive(Default, Clone)]
pub struct ConnectionMetrics {
    open: Gauge,
    accepted: Counter,
    refused: Family<CapLabel, Counter>,
    closed: Family<DeadlineLabel, Counter>,
}

impl ConnectionMetrics {
    pub fn opened(&self) {
        self.open.inc();
        self.accepted.inc();
    }

    pub fn closed(&self) {
        self.open.dec();
    }

    pub fn refused(&self, why: Refused) {
        let cap = match why {
            Refused::NodeCap => "node",
            Refused::PeerCap => "peer_ip",
        };
        self.refused.get_or_create(&CapLabel { cap }).inc();
    }

    pub fn deadline(&self, which: Deadline) {
        self.closed.get_or_create(&deadline_label(which)).inc();
    }

    /// Connections (for `Body`: requests) closed by `which` so far.
    pub fn closed_by(&self, which: Deadline) -> u64 {
        self.closed.get_or_create(&deadline_label(which)).get()
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        u64::try_from(self.open.get()).unwrap_or(0)
    }

    fn register(&self, r: &mut Registry) {
        // Every label value shows, 0 or not, so a dashboard's query has a series from the start.
        for cap in ["node", "peer_ip"] {
            let _ = self.refused.get_or_create(&CapLabel { cap });
        }
        for d in [Deadline::Header, Deadline::Body, Deadline::Idle] {
            let _ = self.closed.get_or_create(&deadline_label(d));
        }
        r.register(
            "verisim_http_connections_open",
            "HTTP connections open now.",
            self.open.clone(),
        );
        r.register(
            "verisim_http_connections_accepted",
            "HTTP connections accepted (within the caps).",
            self.accepted.clone(),
        );
        r.register(
            "verisim_http_connections_refused",
            "HTTP connections closed at accept by a connection cap.",
            self.refused.clone(),
        );
        r.register(
            "verisim_http_connections_deadline_closed",
            "HTTP connections closed because a deadline passed.",
            self.closed.clone(),
        );
    }
}

fn deadline_label(which: Deadline) -> DeadlineLabel {
    DeadlineLabel {
        deadline: match which {
            Deadline::Header => "header",
            Deadline::Body => "body",
            Deadline::Idle => "idle",
        },
    }
}

impl HttpMetrics {
    pub fn observe(&self, route: &str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RouteCode {
                route: route.to_owned(),
                code: status,
            })
            .inc();
        self.duration
            .get_or_create(&RouteLabel {
                route: route.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    fn register(&self, r: &mut Registry) {
        self.connections.register(r);
        r.register(
            "verisim_http_requests",
            "HTTP requests by route and status code.",
            self.requests.clone(),
        );
        r.register_with_unit(
            "verisim_http_request_duration",
            "HTTP request latency by route.",
            Unit::Seconds,
            self.duration.clone(),
        );
    }
}

/// The middleware counting every request by its route template (`/admin/nodes/{name}`, never the
/// concrete path, so that the label set stays bounded).
pub async fn track(State(m): State<HttpMetrics>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let start = Instant::now();
    let resp = next.run(req).await;
    m.observe(&route, resp.status().as_u16(), start.elapsed());
    resp
}

/// Everything one scrape shows besides the HTTP counters and the telemetry histograms.
pub struct Snapshot<'a> {
    pub consensus: Option<&'a ConsensusStatus>,
    pub peers_up: usize,
    pub tree: Option<&'a TreeNode>,
    pub entities: usize,
    pub clients: usize,
    pub windows: usize,
    pub store_syncs: u64,
    pub store_synced_writes: u64,
    /// Read barriers the proxy started before authenticating a request (unknown ids).
    pub catch_up_barriers: u64,
    /// The drift checker's totals and last pass.
    pub drift: crate::drift::DriftStatus,
    /// The rebalancer's totals (rounds run on this node while it led).
    pub rebalance: crate::rebalance::RebalanceTotals,
    /// This process's memory, descriptors and CPU (`None` where `/proc` is not readable).
    pub process: Option<ProcessStats>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabel {
    role: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PeerLabel {
    peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChildLabel {
    child: String,
}

/// A registry of values read at this scrape.
struct Scrape<'r>(&'r mut Registry);

impl Scrape<'_> {
    fn gauge(&mut self, name: &str, help: &str, v: u64) {
        let g: Gauge = Gauge::default();
        g.set(i64::try_from(v).unwrap_or(i64::MAX));
        self.0.register(name, help, g);
    }

    /// A counter read from its owner's total (`name` without the `_total` the format adds).
    fn counter(&mut self, name: &str, help: &str, v: u64) {
        let c: Counter = Counter::default();
        c.inc_by(v);
        self.0.register(name, help, c);
    }
}

/// The whole exposition of one scrape.
pub fn render(s: &Snapshot<'_>, http: &HttpMetrics) -> String {
    let mut registry = Registry::default();
    let mut r = Scrape(&mut registry);
    r.gauge(
        "verisim_consensus_up",
        "1 when the consensus actor answered this scrape.",
        u64::from(s.consensus.is_some()),
    );
    if let Some(c) = s.consensus {
        consensus(&mut r, c);
    }
    r.gauge(
        "verisim_cluster_peers_up",
        "Cluster peers currently connected.",
        s.peers_up as u64,
    );
    r.gauge(
        "verisim_registry_entities",
        "Entities in this node's registry replica.",
        s.entities as u64,
    );
    r.gauge(
        "verisim_registry_clients",
        "Client identities in this node's registry replica (revoked ones included).",
        s.clients as u64,
    );
    r.gauge(
        "verisim_registry_windows",
        "Trust windows in this node's registry replica (expired ones until pruned).",
        s.windows as u64,
    );
    r.counter(
        "verisim_store_syncs",
        "Group fsyncs of the stores journal.",
        s.store_syncs,
    );
    r.counter(
        "verisim_store_synced_writes",
        "Store writes acknowledged after those fsyncs.",
        s.store_synced_writes,
    );
    r.counter(
        "verisim_proxy_catch_up_barriers",
        "Read barriers started to look up a client or window id unknown to this replica, before \
         the request is authenticated (single-flight, at most one per 50 ms).",
        s.catch_up_barriers,
    );
    drift(&mut r, &s.drift);
    placement(&mut r, &s.rebalance);
    if let Some(tree) = s.tree {
        let restarts: Family<ChildLabel, Counter> = Family::default();
        let mut rows = Vec::new();
        walk(tree, "", &mut rows);
        for (child, n) in rows {
            restarts.get_or_create(&ChildLabel { child }).inc_by(n);
        }
        r.0.register(
            "verisim_supervision_restarts",
            "Restarts of each supervision-tree child, by its path.",
            restarts,
        );
    }
    if let Some(p) = &s.process {
        process(&mut r, p);
    }
    TELEMETRY.register(&mut registry);
    http.register(&mut registry);
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &registry);
    out
}

fn consensus(r: &mut Scrape<'_>, c: &ConsensusStatus) {
    r.gauge("verisim_raft_term", "Current Raft term.", c.term);
    r.gauge(
        "verisim_raft_commit_index",
        "Highest committed log index known.",
        c.commit_index,
    );
    r.gauge(
        "verisim_raft_applied_index",
        "Highest log index applied to the registry.",
        c.applied_index,
    );
    r.gauge(
        "verisim_raft_snapshot_index",
        "Index of the latest snapshot.",
        c.snapshot_index,
    );
    r.gauge(
        "verisim_raft_log_entries",
        "Entries in the Raft log.",
        c.log.entries,
    );
    r.gauge(
        "verisim_raft_log_bytes",
        "Bytes of the Raft log's entries.",
        c.log.bytes,
    );
    r.counter(
        "verisim_raft_log_fsyncs",
        "fsyncs of the Raft log.",
        c.log_syncs,
    );
    r.counter(
        "verisim_raft_snapshot_transfers_refused",
        "Snapshots received from a leader that failed their checks and were asked for again.",
        c.snapshot_transfers_refused,
    );
    r.gauge(
        "verisim_raft_recovering",
        "1 while this node rebuilds a log lost with a corrupt snapshot (it does not vote).",
        u64::from(c.recovery_horizon.is_some()),
    );
    let roles: Family<RoleLabel, Gauge> = Family::default();
    for (role, name) in [
        (Role::Follower, "follower"),
        (Role::PreCandidate, "pre_candidate"),
        (Role::Candidate, "candidate"),
        (Role::Leader, "leader"),
    ] {
        roles
            .get_or_create(&RoleLabel { role: name })
            .set(i64::from(c.role == role));
    }
    r.0.register(
        "verisim_raft_role",
        "1 for this node's current Raft role.",
        roles,
    );
    r.gauge(
        "verisim_raft_leader_known",
        "1 when this node knows a leader.",
        u64::from(c.leader.is_some()),
    );
    if !c.peer_match.is_empty() {
        let lag: Family<PeerLabel, Gauge> = Family::default();
        for (peer, matched) in &c.peer_match {
            let behind = c.commit_index.saturating_sub(*matched);
            lag.get_or_create(&PeerLabel {
                peer: format!("n{peer}"),
            })
            .set(i64::try_from(behind).unwrap_or(i64::MAX));
        }
        r.0.register(
            "verisim_raft_peer_lag_entries",
            "On the leader: committed entries each other member is not known to hold yet.",
            lag,
        );
    }
}

fn drift(r: &mut Scrape<'_>, s: &crate::drift::DriftStatus) {
    let d = &s.totals;
    for (name, help, v) in [
        (
            "verisim_drift_passes",
            "Drift check passes completed.",
            d.passes,
        ),
        (
            "verisim_drift_failed_passes",
            "Drift check passes that could not compare (no read barrier, a local store down).",
            d.failed_passes,
        ),
        (
            "verisim_drift_items_checked",
            "Items placed on this node covered by drift check passes.",
            d.items_checked,
        ),
        (
            "verisim_drift_drifted",
            "Items found missing, stale or orphaned.",
            d.drifted,
        ),
        (
            "verisim_drift_repaired",
            "Missing or stale items written back from a verified copy.",
            d.repaired,
        ),
        (
            "verisim_drift_orphans_removed",
            "Orphaned items removed.",
            d.orphans_removed,
        ),
        (
            "verisim_drift_unrepaired",
            "Drifted items a pass could not repair (left to the next one).",
            d.unrepaired,
        ),
        (
            "verisim_drift_bytes_fetched",
            "Payload bytes fetched from other nodes to repair.",
            d.bytes_fetched,
        ),
        (
            "verisim_drift_tombstones_purged",
            "Tombstones of removed items purged.",
            d.tombstones_purged,
        ),
    ] {
        r.counter(name, help, v);
    }
    if let Some(last) = &s.last {
        r.gauge(
            "verisim_drift_last_pass_drifted",
            "Items the last drift check pass found drifted.",
            last.drifted,
        );
        r.gauge(
            "verisim_drift_last_pass_duration_ms",
            "Wall time of the last drift check pass, milliseconds.",
            last.duration_ms,
        );
        r.gauge(
            "verisim_drift_last_pass_applied_index",
            "The registry index the last drift check pass compared against.",
            last.applied_index,
        );
    }
}

fn placement(r: &mut Scrape<'_>, t: &crate::rebalance::RebalanceTotals) {
    for (name, help, v) in [
        (
            "verisim_placement_rounds",
            "Rebalancing rounds this node ran as leader.",
            t.rounds,
        ),
        (
            "verisim_placement_failed_rounds",
            "Rebalancing rounds that could not finish (left to the next one).",
            t.failed_rounds,
        ),
        (
            "verisim_placement_widened",
            "Entity placements widened to their new replicas.",
            t.widened,
        ),
        (
            "verisim_placement_items_copied",
            "Items copied to a new replica of their entity.",
            t.items_copied,
        ),
        (
            "verisim_placement_bytes_copied",
            "Payload bytes fetched from other nodes for those copies.",
            t.bytes_copied,
        ),
        (
            "verisim_placement_narrowed",
            "Entity placements narrowed to the desired replicas once those held them.",
            t.narrowed,
        ),
        (
            "verisim_placement_items_dropped",
            "Items removed from replicas a narrowing dropped.",
            t.items_dropped,
        ),
    ] {
        r.counter(name, help, v);
    }
}

/// The process metrics under the names every Prometheus client library uses.
fn process(r: &mut Scrape<'_>, p: &ProcessStats) {
    r.gauge(
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        p.resident_bytes,
    );
    r.gauge(
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        p.virtual_bytes,
    );
    r.gauge(
        "process_open_fds",
        "Number of open file descriptors.",
        p.open_fds,
    );
    r.gauge(
        "process_max_fds",
        "Maximum number of open file descriptors.",
        p.max_fds,
    );
    r.gauge(
        "process_threads",
        "Number of OS threads in the process.",
        p.threads,
    );
    r.gauge(
        "process_start_time_seconds",
        "Start time of the process since the Unix epoch, seconds.",
        p.start_time_s,
    );
    let cpu: Counter<f64, AtomicU64> = Counter::default();
    cpu.inc_by(p.cpu_seconds);
    r.0.register_with_unit(
        "process_cpu",
        "Total user and system CPU time spent, seconds.",
        Unit::Seconds,
        cpu,
    );
}

/// (path, restart count) of every child below `node`, paths like `stores/vector`.
fn walk(node: &TreeNode, prefix: &str, rows: &mut Vec<(String, u64)>) {
    for child in &node.children {
        let path = format!("{prefix}{}", child.info.id);
        rows.push((path.clone(), child.info.restart_count));
        if let Some(sub) = &child.subtree {
            walk(sub, &format!("{path}/"), rows);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Every sample line is `name{labels} value` or `name value` with a finite number, and the
    /// exposition ends with OpenMetrics' `# EOF`.
    pub(crate) fn parse(text: &str) -> BTreeMap<String, f64> {
        assert!(text.ends_with("# EOF\n"), "{text}");
        let mut out = BTreeMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (key, value) = line.rsplit_once(' ').expect("a sample line");
            let v: f64 = value.parse().expect("a number");
            assert!(v.is_finite(), "{line}");
            let name = key.split('{').next().expect("a name");
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{line}"
            );
            assert!(out.insert(key.to_owned(), v).is_none(), "twice: {line}");
        }
        out
    }

    fn snapshot() -> Snapshot<'static> {
        Snapshot {
            consensus: None,
            peers_up: 2,
            tree: None,
            entities: 7,
            clients: 2,
            windows: 3,
            store_syncs: 5,
            store_synced_writes: 40,
            catch_up_barriers: 4,
            drift: crate::drift::DriftStatus {
                last: Some(crate::drift::PassReport {
                    drifted: 3,
                    duration_ms: 12,
                    ..Default::default()
                }),
                totals: crate::drift::DriftTotals {
                    passes: 2,
                    repaired: 5,
                    bytes_fetched: 1024,
                    ..Default::default()
                },
                ..Default::default()
            },
            rebalance: crate::rebalance::RebalanceTotals {
                rounds: 3,
                items_copied: 8,
                narrowed: 2,
                ..Default::default()
            },
            process: None,
        }
    }

    #[test]
    fn http_series_render_as_counters_and_cumulative_histograms() {
        let m = HttpMetrics::default();
        m.observe("/admin/nodes/{name}", 200, Duration::from_millis(3));
        m.observe("/admin/nodes/{name}", 200, Duration::from_millis(30));
        m.observe("/admin/nodes/{name}", 404, Duration::from_secs(20));
        let text = render(&snapshot(), &m);
        let s = parse(&text);
        assert_eq!(s["verisim_placement_rounds_total"], 3.0);
        assert_eq!(s["verisim_placement_items_copied_total"], 8.0);
        assert_eq!(s["verisim_placement_narrowed_total"], 2.0);
        assert_eq!(s["verisim_proxy_catch_up_barriers_total"], 4.0);
        assert_eq!(s["verisim_drift_passes_total"], 2.0);
        assert_eq!(s["verisim_drift_repaired_total"], 5.0);
        assert_eq!(s["verisim_drift_bytes_fetched_total"], 1024.0);
        assert_eq!(s["verisim_drift_last_pass_drifted"], 3.0);
        assert_eq!(s["verisim_drift_last_pass_duration_ms"], 12.0);
        let r = "route=\"/admin/nodes/{name}\"";
        assert_eq!(
            s[&format!("verisim_http_requests_total{{{r},code=\"200\"}}")],
            2.0
        );
        assert_eq!(
            s[&format!("verisim_http_requests_total{{{r},code=\"404\"}}")],
            1.0
        );
        let h = "verisim_http_request_duration_seconds";
        assert_eq!(s[&format!("{h}_bucket{{le=\"0.001\",{r}}}")], 0.0);
        assert_eq!(s[&format!("{h}_bucket{{le=\"0.005\",{r}}}")], 1.0);
        assert_eq!(s[&format!("{h}_bucket{{le=\"0.05\",{r}}}")], 2.0);
        assert_eq!(s[&format!("{h}_bucket{{le=\"10.0\",{r}}}")], 2.0);
        assert_eq!(s[&format!("{h}_bucket{{le=\"+Inf\",{r}}}")], 3.0);
        assert_eq!(s[&format!("{h}_count{{{r}}}")], 3.0);
        assert_eq!(s["verisim_consensus_up"], 0.0);
        assert_eq!(s["verisim_cluster_peers_up"], 2.0);
        assert_eq!(s["verisim_registry_entities"], 7.0);
        assert_eq!(s["verisim_registry_clients"], 2.0);
        assert_eq!(s["verisim_registry_windows"], 3.0);
        assert_eq!(s["verisim_store_syncs_total"], 5.0);
        assert_eq!(s["verisim_store_synced_writes_total"], 40.0);
        assert!(!s.contains_key("verisim_raft_term"));
        assert_eq!(s["verisim_http_connections_open"], 0.0);
        assert!(!s.contains_key("process_open_fds"));
        // The telemetry histograms are there from the first scrape, empty or not.
        assert!(
            s.contains_key("verisim_raft_commit_seconds_count"),
            "{text}"
        );
        assert!(
            s.contains_key("verisim_raft_log_fsync_seconds_count"),
            "{text}"
        );
        assert!(
            s.contains_key("verisim_raft_leader_changes_total"),
            "{text}"
        );
    }

    #[test]
    fn consensus_status_renders_role_lag_and_log_series() {
        let status = ConsensusStatus {
            id: 1,
            role: Role::Leader,
            term: 4,
            leader: Some(1),
            commit_index: 120,
            applied_index: 119,
            snapshot_index: 100,
            snapshot_term: 3,
            membership: verisim_raft::Membership::with_voters([1, 2, 3]),
            log: Default::default(),
            log_syncs: 9,
            snapshot_transfers_refused: 1,
            last_snapshot_refusal: None,
            recovery_horizon: None,
            corrupt_own_snapshot: None,
            peer_match: [(2, 120), (3, 90)].into_iter().collect(),
        };
        let snap = Snapshot {
            consensus: Some(&status),
            process: ProcessStats::read(),
            ..snapshot()
        };
        let s = parse(&render(&snap, &HttpMetrics::default()));
        assert_eq!(s["verisim_raft_term"], 4.0);
        assert_eq!(s["verisim_raft_commit_index"], 120.0);
        assert_eq!(s["verisim_raft_log_fsyncs_total"], 9.0);
        assert_eq!(s["verisim_raft_role{role=\"leader\"}"], 1.0);
        assert_eq!(s["verisim_raft_role{role=\"follower\"}"], 0.0);
        assert_eq!(s["verisim_raft_peer_lag_entries{peer=\"n2\"}"], 0.0);
        assert_eq!(s["verisim_raft_peer_lag_entries{peer=\"n3\"}"], 30.0);
        assert!(s["process_resident_memory_bytes"] > 0.0);
        assert!(s["process_open_fds"] >= 3.0);
        assert!(s.contains_key("process_cpu_seconds_total"));
    }

    #[test]
    fn telemetry_observations_show_in_the_next_scrape() {
        let before = parse(&render(&snapshot(), &HttpMetrics::default()));
        TELEMETRY.log_fsync.observe(0.0004);
        TELEMETRY
            .store_op
            .get_or_create(&crate::telemetry::StoreOp {
                store: "vector",
                op: "import",
            })
            .observe(0.002);
        let after = parse(&render(&snapshot(), &HttpMetrics::default()));
        let n = "verisim_raft_log_fsync_seconds_count";
        assert!(after[n] >= before[n] + 1.0);
        let op = "verisim_store_operation_seconds_count{store=\"vector\",op=\"import\"}";
        assert!(after[op] >= 1.0);
    }

    /// The Grafana dashboard (docs/grafana/verisim-dashboard.json) queries only series a node
    /// exports: a renamed metric breaks this test, not an operator's dashboard.
    #[test]
    fn every_series_the_dashboard_queries_is_exported() {
        let dashboard = include_str!("../../../../../docs/grafana/verisim-dashboard.json");
        let status = ConsensusStatus {
            id: 1,
            role: Role::Leader,
            term: 1,
            leader: Some(1),
            commit_index: 1,
            applied_index: 1,
            snapshot_index: 0,
            snapshot_term: 0,
            membership: verisim_raft::Membership::with_voters([1, 2]),
            log: Default::default(),
            log_syncs: 0,
            snapshot_transfers_refused: 0,
            last_snapshot_refusal: None,
            recovery_horizon: None,
            corrupt_own_snapshot: None,
            peer_match: [(2, 1)].into_iter().collect(),
        };
        let m = HttpMetrics::default();
        m.observe("/v1/entities", 201, Duration::from_millis(1));
        // A family shows a series only once one is observed.
        TELEMETRY
            .store_op
            .get_or_create(&crate::telemetry::StoreOp {
                store: "graph",
                op: "import",
            })
            .observe(0.001);
        let text = render(
            &Snapshot {
                consensus: Some(&status),
                process: ProcessStats::read(),
                ..snapshot()
            },
            &m,
        );
        let exported: std::collections::BTreeSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split([' ', '{']).next())
            .collect();
        let mut queried = std::collections::BTreeSet::new();
        for word in dashboard.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("verisim_") || word.starts_with("process_") {
                queried.insert(word);
            }
        }
        assert!(queried.len() >= 30, "{queried:?}");
        // Needs a live supervision tree: tests/admin_api.rs checks it on a running node.
        queried.remove("verisim_supervision_restarts_total");
        let missing: Vec<_> = queried.difference(&exported).collect();
        assert!(missing.is_empty(), "queried but not exported: {missing:?}");
    }

    #[test]
    fn connection_counters_render_by_cap_and_by_deadline() {
        let m = HttpMetrics::default();
        let c = &m.connections;
        c.opened();
        c.opened();
        c.closed();
        c.refused(Refused::PeerCap);
        c.refused(Refused::PeerCap);
        c.refused(Refused::NodeCap);
        c.deadline(Deadline::Header);
        c.deadline(Deadline::Idle);
        c.deadline(Deadline::Idle);
        let s = parse(&render(&snapshot(), &m));
        assert_eq!(s["verisim_http_connections_open"], 1.0);
        assert_eq!(s["verisim_http_connections_accepted_total"], 2.0);
        let refused = "verisim_http_connections_refused_total";
        assert_eq!(s[&format!("{refused}{{cap=\"node\"}}")], 1.0);
        assert_eq!(s[&format!("{refused}{{cap=\"peer_ip\"}}")], 2.0);
        let closed = "verisim_http_connections_deadline_closed_total";
        assert_eq!(s[&format!("{closed}{{deadline=\"header\"}}")], 1.0);
        assert_eq!(s[&format!("{closed}{{deadline=\"body\"}}")], 0.0);
        assert_eq!(s[&format!("{closed}{{deadline=\"idle\"}}")], 2.0);
        assert_eq!(c.closed_by(Deadline::Idle), 2);
        assert_eq!(c.open(), 1);
    }

    #[test]
    fn label_values_are_escaped() {
        let m = HttpMetrics::default();
        m.observe("/a\"b\\c", 200, Duration::from_millis(1));
        let text = render(&snapshot(), &m);
        assert!(
            text.contains("verisim_http_requests_total{route=\"/a\\\"b\\\\c\",code=\"200\"} 1"),
            "{text}"
        );
    }
}
