//! The node's latency histograms and event counters (`prometheus-client`), observed where the work
//! happens — the consensus actor, the snapshotter, the store actors — and exposed by `GET /metrics`
//! (`node::admin::metrics`).
//!
//! They are process-wide, like the default registry of Prometheus's own client libraries: a
//! `verisim node` process runs one node. Tests that run several nodes in one process see their
//! sums; the whole-system tests, one process per node, see each node's own.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// Latency buckets from 50 µs to ~26 s (×2 each): an fsync on a fast disk and a stalled commit
/// both land in a bucket of their own.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 20))
}

/// Which store actor and which operation ([`Telemetry::store_op`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StoreOp {
    pub store: &'static str,
    pub op: &'static str,
}

/// Why a cluster message was refused, and what kind it was ([`Telemetry::messages_refused`]).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Refused {
    pub kind: &'static str,
    pub reason: &'static str,
}

/// Every histogram and counter observed outside the HTTP layer.
pub struct Telemetry {
    /// A proposal's wait in the consensus actor before the core takes it into a batch.
    pub proposal_queue: Histogram,
    /// From the leader's consensus actor accepting a proposal to its entry applied there.
    pub commit: Histogram,
    /// Applying one batch of committed entries to the registry replica.
    pub apply: Histogram,
    /// One durable write of the Raft log (entries and hard state, fsynced).
    pub log_fsync: Histogram,
    /// Times this node saw the leader change (including to "no leader known").
    pub leader_changes: Counter,
    /// Batches of proposals this node forwarded to a leader, and the proposals they carried (their
    /// ratio is the batching factor).
    pub forwarded_batches: Counter,
    pub forwarded_proposals: Counter,
    /// Raft messages this node sent to peers, and the message bodies it encoded for them: an append
    /// sent to several followers is encoded once (`consensus::wire`), so their gap is the work saved.
    pub raft_messages_sent: Counter,
    pub raft_bodies_encoded: Counter,
    /// Registry snapshots this node wrote.
    pub snapshots: Counter,
    /// Writing one registry snapshot (clone of the replica, encode, fsync, rename).
    pub snapshot_duration: Histogram,
    /// The size of the last snapshot written.
    pub snapshot_bytes: Gauge,
    /// Bytes of snapshots written so far.
    pub snapshot_bytes_written: Counter,
    /// A snapshot received from the leader, stage by stage: its chunks from the first written to
    /// the last, checking and decoding the whole file (off the actor), then moving it into place
    /// and swapping it into the replica.
    pub snapshot_receive: Histogram,
    pub snapshot_load: Histogram,
    pub snapshot_install: Histogram,
    /// One request handled by a store actor, by store and operation.
    pub store_op: Family<StoreOp, Histogram>,
    /// Cluster messages refused on arrival (bad or missing seal, a claimed id that is not the
    /// sender's), by message kind and reason.
    pub messages_refused: Family<Refused, Counter>,
}

/// The process's telemetry.
pub static TELEMETRY: LazyLock<Telemetry> = LazyLock::new(|| Telemetry {
    proposal_queue: latency(),
    commit: latency(),
    apply: latency(),
    log_fsync: latency(),
    leader_changes: Counter::default(),
    forwarded_batches: Counter::default(),
    forwarded_proposals: Counter::default(),
    raft_messages_sent: Counter::default(),
    raft_bodies_encoded: Counter::default(),
    snapshots: Counter::default(),
    snapshot_duration: latency(),
    snapshot_bytes: Gauge::default(),
    snapshot_bytes_written: Counter::default(),
    snapshot_receive: latency(),
    snapshot_load: latency(),
    snapshot_install: latency(),
    store_op: Family::new_with_constructor(latency),
    messages_refused: Family::default(),
});

/// Counts one refused cluster message (`verisim_cluster_messages_refused_total{kind, reason}`) and
/// logs it at debug level (a peer sending many must not flood the log).
pub fn message_refused(kind: &'static str, reason: &'static str, detail: &str) {
    TELEMETRY
        .messages_refused
        .get_or_create(&Refused { kind, reason })
        .inc();
    tracing::debug!(kind, reason, detail, "cluster message refused");
}

/// Seconds, as the histograms take them.
pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Telemetry {
    /// Adds every metric (shared handles: later observations show in the same registry) to `r`.
    pub fn register(&self, r: &mut Registry) {
        r.register_with_unit(
            "verisim_raft_proposal_queue",
            "Wait of a proposal in the consensus actor before the Raft core takes it.",
            Unit::Seconds,
            self.proposal_queue.clone(),
        );
        r.register_with_unit(
            "verisim_raft_commit",
            "From the leader accepting a proposal to its entry applied there.",
            Unit::Seconds,
            self.commit.clone(),
        );
        r.register_with_unit(
            "verisim_raft_apply",
            "Applying one batch of committed entries to the registry replica.",
            Unit::Seconds,
            self.apply.clone(),
        );
        r.register_with_unit(
            "verisim_raft_log_fsync",
            "One durable (fsynced) write of the Raft log.",
            Unit::Seconds,
            self.log_fsync.clone(),
        );
        r.register(
            "verisim_raft_leader_changes",
            "Times this node saw the leader change (to another node or to none known).",
            self.leader_changes.clone(),
        );
        r.register(
            "verisim_raft_forwarded_batches",
            "Batches of proposals this node forwarded to the leader.",
            self.forwarded_batches.clone(),
        );
        r.register(
            "verisim_raft_forwarded_proposals",
            "Proposals this node forwarded to the leader (in batches).",
            self.forwarded_proposals.clone(),
        );
        r.register(
            "verisim_raft_messages_sent",
            "Raft messages this node sent to peers.",
            self.raft_messages_sent.clone(),
        );
        r.register(
            "verisim_raft_bodies_encoded",
            "Raft message bodies this node encoded; an append sent to several followers is encoded once.",
            self.raft_bodies_encoded.clone(),
        );
        r.register(
            "verisim_snapshots",
            "Registry snapshots this node wrote.",
            self.snapshots.clone(),
        );
        r.register_with_unit(
            "verisim_snapshot_duration",
            "Writing one registry snapshot (clone, encode, fsync, rename).",
            Unit::Seconds,
            self.snapshot_duration.clone(),
        );
        r.register_with_unit(
            "verisim_snapshot_last",
            "Size of the last registry snapshot written.",
            Unit::Bytes,
            self.snapshot_bytes.clone(),
        );
        r.register_with_unit(
            "verisim_snapshot_written",
            "Bytes of registry snapshots written.",
            Unit::Bytes,
            self.snapshot_bytes_written.clone(),
        );
        r.register_with_unit(
            "verisim_snapshot_receive",
            "A snapshot from the leader: its first chunk written to its last.",
            Unit::Seconds,
            self.snapshot_receive.clone(),
        );
        r.register_with_unit(
            "verisim_snapshot_load",
            "A snapshot from the leader: checking and decoding the received file.",
            Unit::Seconds,
            self.snapshot_load.clone(),
        );
        r.register_with_unit(
            "verisim_snapshot_install",
            "A snapshot from the leader: moving the checked file into place and into the replica.",
            Unit::Seconds,
            self.snapshot_install.clone(),
        );
        r.register_with_unit(
            "verisim_store_operation",
            "One request handled by a store actor, by store and operation.",
            Unit::Seconds,
            self.store_op.clone(),
        );
        r.register(
            "verisim_cluster_messages_refused",
            "Cluster messages refused on arrival, by kind and reason (a seal missing or not \
             verifying, a sender claiming another node's id).",
            self.messages_refused.clone(),
        );
    }
}

/// The `_count` of histogram `name` (its full exposed name, `_seconds` included) in a scrape of
/// [`TELEMETRY`] now: how many observations the process made, for tests.
#[cfg(test)]
pub fn observations(name: &str) -> f64 {
    let mut registry = Registry::default();
    TELEMETRY.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).expect("encoding to a String");
    let line = format!("{name}_count ");
    text.lines()
        .find_map(|l| l.strip_prefix(&line))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}
