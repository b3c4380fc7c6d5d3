//! `GET /metrics`: the Prometheus text exposition format (version 0.0.4), written by hand: the
//! values are read on each scrape from the consensus actor, the supervision tree and the registry
//! replica, and only the HTTP counters are kept here.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use verisim_raft::Role;
use verisim_supervision::TreeNode;

use crate::consensus::actor::ConsensusStatus;

/// Latency histogram upper bounds, seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Default, Clone)]
struct Series {
    count: u64,
    sum_s: f64,
    /// Non-cumulative counts per bucket; the last slot is +Inf.
    buckets: [u64; BUCKETS.len() + 1],
}

/// HTTP requests by (route, status), with their latency, and the server's connection counters.
#[derive(Default, Clone)]
pub struct HttpMetrics {
    inner: Arc<Mutex<BTreeMap<(String, u16), Series>>>,
    pub connections: ConnectionMetrics,
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

/// The HTTP server's connection counters (the server in `node::http_server` updates them).
#[derive(Default, Clone)]
pub struct ConnectionMetrics {
    inner: Arc<ConnectionCounters>,
}

#[derive(Default)]
struct ConnectionCounters {
    open: AtomicU64,
    accepted: AtomicU64,
    refused_node: AtomicU64,
    refused_peer: AtomicU64,
    closed_header: AtomicU64,
    closed_body: AtomicU64,
    closed_idle: AtomicU64,
}

impl ConnectionMetrics {
    pub fn opened(&self) {
        self.inner.open.fetch_add(1, Ordering::Relaxed);
        self.inner.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn closed(&self) {
        self.inner.open.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn refused(&self, why: Refused) {
        let c = match why {
            Refused::NodeCap => &self.inner.refused_node,
            Refused::PeerCap => &self.inner.refused_peer,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn deadline(&self, which: Deadline) {
        self.closed_counter(which).fetch_add(1, Ordering::Relaxed);
    }

    /// Connections (for `Body`: requests) closed by `which` so far.
    pub fn closed_by(&self, which: Deadline) -> u64 {
        self.closed_counter(which).load(Ordering::Relaxed)
    }

    fn closed_counter(&self, which: Deadline) -> &AtomicU64 {
        match which {
            Deadline::Header => &self.inner.closed_header,
            Deadline::Body => &self.inner.closed_body,
            Deadline::Idle => &self.inner.closed_idle,
        }
    }

    /// Connections open now.
    pub fn open(&self) -> u64 {
        self.inner.open.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String) {
        let c = &*self.inner;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        gauge(
            out,
            "verisim_http_connections_open",
            "HTTP connections open now.",
            get(&c.open),
        );
        counter(
            out,
            "verisim_http_connections_accepted_total",
            "HTTP connections accepted (within the caps).",
            get(&c.accepted),
        );
        let name = "verisim_http_connections_refused_total";
        header(
            out,
            name,
            "counter",
            "HTTP connections closed at accept by a connection cap.",
        );
        for (cap, n) in [("node", &c.refused_node), ("peer_ip", &c.refused_peer)] {
            let _ = writeln!(out, "{name}{} {}", labels(&[("cap", cap)]), get(n));
        }
        let name = "verisim_http_connections_deadline_closed_total";
        header(
            out,
            name,
            "counter",
            "HTTP connections closed because a deadline passed.",
        );
        for (which, n) in [
            ("header", &c.closed_header),
            ("body", &c.closed_body),
            ("idle", &c.closed_idle),
        ] {
            let _ = writeln!(out, "{name}{} {}", labels(&[("deadline", which)]), get(n));
        }
    }
}

impl HttpMetrics {
    pub fn observe(&self, route: &str, status: u16, took: Duration) {
        let secs = took.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        // A poisoned lock only means another request panicked mid-update: the counts stay usable.
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let s = map.entry((route.to_owned(), status)).or_default();
        s.count += 1;
        s.sum_s += secs;
        s.buckets[slot] += 1;
    }

    fn render(&self, out: &mut String) {
        self.connections.render(out);
        let map = self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone();
        header(
            out,
            "verisim_http_requests_total",
            "counter",
            "HTTP requests by route and status code.",
        );
        for ((route, code), s) in &map {
            let l = labels(&[("route", route), ("code", &code.to_string())]);
            let _ = writeln!(out, "verisim_http_requests_total{l} {}", s.count);
        }
        header(
            out,
            "verisim_http_request_duration_seconds",
            "histogram",
            "HTTP request latency by route.",
        );
        let mut by_route: BTreeMap<&str, Series> = BTreeMap::new();
        for ((route, _), s) in &map {
            let r = by_route.entry(route).or_default();
            r.count += s.count;
            r.sum_s += s.sum_s;
            for (a, b) in r.buckets.iter_mut().zip(s.buckets) {
                *a += b;
            }
        }
        let name = "verisim_http_request_duration_seconds";
        for (route, s) in by_route {
            let mut cumulative = 0;
            for (i, n) in s.buckets.iter().enumerate() {
                cumulative += n;
                let le = BUCKETS.get(i).map_or("+Inf".to_owned(), |b| b.to_string());
                let l = labels(&[("route", route), ("le", &le)]);
                let _ = writeln!(out, "{name}_bucket{l} {cumulative}");
            }
            let l = labels(&[("route", route)]);
            let _ = writeln!(out, "{name}_sum{l} {}", s.sum_s);
            let _ = writeln!(out, "{name}_count{l} {}", s.count);
        }
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

/// Everything one scrape shows besides the HTTP counters.
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
}

pub fn render(s: &Snapshot<'_>, http: &HttpMetrics) -> String {
    let mut out = String::new();
    gauge(
        &mut out,
        "verisim_consensus_up",
        "1 when the consensus actor answered this scrape.",
        u64::from(s.consensus.is_some()),
    );
    if let Some(c) = s.consensus {
        gauge(&mut out, "verisim_raft_term", "Current Raft term.", c.term);
        gauge(
            &mut out,
            "verisim_raft_commit_index",
            "Highest committed log index known.",
            c.commit_index,
        );
        gauge(
            &mut out,
            "verisim_raft_applied_index",
            "Highest log index applied to the registry.",
            c.applied_index,
        );
        gauge(
            &mut out,
            "verisim_raft_snapshot_index",
            "Index of the latest snapshot.",
            c.snapshot_index,
        );
        gauge(
            &mut out,
            "verisim_raft_log_entries",
            "Entries in the Raft log.",
            c.log.entries,
        );
        gauge(
            &mut out,
            "verisim_raft_log_bytes",
            "Bytes of the Raft log's entries.",
            c.log.bytes,
        );
        header(
            &mut out,
            "verisim_raft_log_fsyncs_total",
            "counter",
            "fsyncs of the Raft log.",
        );
        let _ = writeln!(out, "verisim_raft_log_fsyncs_total {}", c.log_syncs);
        header(
            &mut out,
            "verisim_raft_snapshot_transfers_refused_total",
            "counter",
            "Snapshots received from a leader that failed their checks and were asked for again.",
        );
        let _ = writeln!(
            out,
            "verisim_raft_snapshot_transfers_refused_total {}",
            c.snapshot_transfers_refused
        );
        header(
            &mut out,
            "verisim_raft_recovering",
            "gauge",
            "1 while this node rebuilds a log lost with a corrupt snapshot (it does not vote).",
        );
        let _ = writeln!(
            out,
            "verisim_raft_recovering {}",
            u64::from(c.recovery_horizon.is_some())
        );
        header(
            &mut out,
            "verisim_raft_role",
            "gauge",
            "1 for this node's current Raft role.",
        );
        for (role, name) in [
            (Role::Follower, "follower"),
            (Role::PreCandidate, "pre_candidate"),
            (Role::Candidate, "candidate"),
            (Role::Leader, "leader"),
        ] {
            let l = labels(&[("role", name)]);
            let v = u64::from(c.role == role);
            let _ = writeln!(out, "verisim_raft_role{l} {v}");
        }
        gauge(
            &mut out,
            "verisim_raft_leader_known",
            "1 when this node knows a leader.",
            u64::from(c.leader.is_some()),
        );
    }
    gauge(
        &mut out,
        "verisim_cluster_peers_up",
        "Cluster peers currently connected.",
        s.peers_up as u64,
    );
    gauge(
        &mut out,
        "verisim_registry_entities",
        "Entities in this node's registry replica.",
        s.entities as u64,
    );
    gauge(
        &mut out,
        "verisim_registry_clients",
        "Client identities in this node's registry replica (revoked ones included).",
        s.clients as u64,
    );
    gauge(
        &mut out,
        "verisim_registry_windows",
        "Trust windows in this node's registry replica (expired ones until pruned).",
        s.windows as u64,
    );
    counter(
        &mut out,
        "verisim_store_syncs_total",
        "Group fsyncs of the stores journal.",
        s.store_syncs,
    );
    counter(
        &mut out,
        "verisim_store_synced_writes_total",
        "Store writes acknowledged after those fsyncs.",
        s.store_synced_writes,
    );
    counter(
        &mut out,
        "verisim_proxy_catch_up_barriers_total",
        "Read barriers started to look up a client or window id unknown to this replica, before \
         the request is authenticated (single-flight, at most one per 50 ms).",
        s.catch_up_barriers,
    );
    let d = &s.drift.totals;
    for (name, help, v) in [
        (
            "verisim_drift_passes_total",
            "Drift check passes completed.",
            d.passes,
        ),
        (
            "verisim_drift_failed_passes_total",
            "Drift check passes that could not compare (no read barrier, a local store down).",
            d.failed_passes,
        ),
        (
            "verisim_drift_items_checked_total",
            "Items placed on this node covered by drift check passes.",
            d.items_checked,
        ),
        (
            "verisim_drift_drifted_total",
            "Items found missing, stale or orphaned.",
            d.drifted,
        ),
        (
            "verisim_drift_repaired_total",
            "Missing or stale items written back from a verified copy.",
            d.repaired,
        ),
        (
            "verisim_drift_orphans_removed_total",
            "Orphaned items removed.",
            d.orphans_removed,
        ),
        (
            "verisim_drift_unrepaired_total",
            "Drifted items a pass could not repair (left to the next one).",
            d.unrepaired,
        ),
        (
            "verisim_drift_bytes_fetched_total",
            "Payload bytes fetched from other nodes to repair.",
            d.bytes_fetched,
        ),
        (
            "verisim_drift_tombstones_purged_total",
            "Tombstones of removed items purged.",
            d.tombstones_purged,
        ),
    ] {
        counter(&mut out, name, help, v);
    }
    if let Some(last) = &s.drift.last {
        gauge(
            &mut out,
            "verisim_drift_last_pass_drifted",
            "Items the last drift check pass found drifted.",
            last.drifted,
        );
        gauge(
            &mut out,
            "verisim_drift_last_pass_duration_ms",
            "Wall time of the last drift check pass, milliseconds.",
            last.duration_ms,
        );
        gauge(
            &mut out,
            "verisim_drift_last_pass_applied_index",
            "The registry index the last drift check pass compared against.",
            last.applied_index,
        );
    }
    let r = &s.rebalance;
    for (name, help, v) in [
        (
            "verisim_placement_rounds_total",
            "Rebalancing rounds this node ran as leader.",
            r.rounds,
        ),
        (
            "verisim_placement_failed_rounds_total",
            "Rebalancing rounds that could not finish (left to the next one).",
            r.failed_rounds,
        ),
        (
            "verisim_placement_widened_total",
            "Entity placements widened to their new replicas.",
            r.widened,
        ),
        (
            "verisim_placement_items_copied_total",
            "Items copied to a new replica of their entity.",
            r.items_copied,
        ),
        (
            "verisim_placement_bytes_copied_total",
            "Payload bytes fetched from other nodes for those copies.",
            r.bytes_copied,
        ),
        (
            "verisim_placement_narrowed_total",
            "Entity placements narrowed to the desired replicas once those held them.",
            r.narrowed,
        ),
        (
            "verisim_placement_items_dropped_total",
            "Items removed from replicas a narrowing dropped.",
            r.items_dropped,
        ),
    ] {
        counter(&mut out, name, help, v);
    }
    if let Some(tree) = s.tree {
        header(
            &mut out,
            "verisim_supervision_restarts_total",
            "counter",
            "Restarts of each supervision-tree child, by its path.",
        );
        let mut rows = Vec::new();
        walk(tree, "", &mut rows);
        for (path, n) in rows {
            let l = labels(&[("child", &path)]);
            let _ = writeln!(out, "verisim_supervision_restarts_total{l} {n}");
        }
    }
    http.render(&mut out);
    out
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

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, v: u64) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {v}");
}

fn counter(out: &mut String, name: &str, help: &str, v: u64) {
    header(out, name, "counter", help);
    let _ = writeln!(out, "{name} {v}");
}

/// `{a="x",b="y"}` with the format's escapes (backslash, quote, newline).
fn labels(pairs: &[(&str, &str)]) -> String {
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", body.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every sample line is `name{labels} value` or `name value` with a finite number.
    pub(crate) fn parse(text: &str) -> BTreeMap<String, f64> {
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
            out.insert(key.to_owned(), v);
        }
        out
    }

    #[test]
    fn http_series_render_as_counters_and_cumulative_histograms() {
        let m = HttpMetrics::default();
        m.observe("/admin/nodes/{name}", 200, Duration::from_millis(3));
        m.observe("/admin/nodes/{name}", 200, Duration::from_millis(30));
        m.observe("/admin/nodes/{name}", 404, Duration::from_secs(20));
        let text = render(
            &Snapshot {
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
            },
            &m,
        );
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
        assert_eq!(s[&format!("{h}_bucket{{{r},le=\"0.001\"}}")], 0.0);
        assert_eq!(s[&format!("{h}_bucket{{{r},le=\"0.005\"}}")], 1.0);
        assert_eq!(s[&format!("{h}_bucket{{{r},le=\"0.05\"}}")], 2.0);
        assert_eq!(s[&format!("{h}_bucket{{{r},le=\"10\"}}")], 2.0);
        assert_eq!(s[&format!("{h}_bucket{{{r},le=\"+Inf\"}}")], 3.0);
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
        let mut out = String::new();
        m.render(&mut out);
        let s = parse(&out);
        assert_eq!(s["verisim_http_connections_open"], 1.0);
        assert_eq!(s["verisim_http_connections_accepted_total"], 2.0);
        let refused = "verisim_http_connections_refused_total";
        assert_eq!(s[&format!("{refused}{{cap=\"node\"}}")], 1.0);
        assert_eq!(s[&format!("{refused}{{cap=\"peer_ip\"}}")], 2.0);
        let closed = "verisim_http_connections_deadline_closed_total";
        assert_eq!(s[&format!("{closed}{{deadline=\"header\"}}")], 1.0);
        assert_eq!(s[&format!("{closed}{{deadline=\"body\"}}")], 0.0);
        assert_eq!(s[&format!("{closed}{{deadline=\"idle\"}}")], 2.0);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(labels(&[("a", "x\"y\\z\n")]), "{a=\"x\\\"y\\\\z\\n\"}");
    }
}
