//! The node's supervisor events: a bounded ring of the last [`CAPACITY`] events of every
//! supervisor in the node's tree (a child failed, was restarted or terminated, a supervisor gave
//! up or shut itself down), fed by the supervision crate's event sinks and read by
//! `GET /admin/events` and the web console.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use verisim_supervision::{EventKind, EventSink, SupervisorEvent};

/// Events kept; older ones are dropped (their sequence numbers tell a reader it missed some).
pub const CAPACITY: usize = 256;

/// One event as the node keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventEntry {
    /// 1, 2, 3, ... in the order the node recorded them (a restart of the process starts again).
    pub seq: u64,
    /// Wall-clock milliseconds since the Unix epoch when it was recorded.
    pub at_ms: u64,
    /// The node's name (`n1`).
    pub node: String,
    /// The path in the tree of what the event is about: the child (`stores/vector`) or, for a
    /// supervisor giving up or shutting down, the supervisor itself (`stores`; `` for the root).
    pub path: String,
    /// The reporting supervisor, its kind and details.
    #[serde(flatten)]
    pub event: SupervisorEvent,
}

/// Events since a sequence number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventsSince {
    /// The events with `seq > since`, oldest first.
    pub events: Vec<EventEntry>,
    /// The sequence number to ask from next time (the last one recorded).
    pub last_seq: u64,
    /// Events after `since` that were already dropped from the ring.
    pub missed: u64,
}

#[derive(Debug, Default)]
struct Ring {
    entries: VecDeque<EventEntry>,
    last_seq: u64,
}

/// The ring, shared by the sinks (writers) and the admin API (reader).
#[derive(Debug)]
pub struct EventLog {
    node: String,
    capacity: usize,
    ring: Mutex<Ring>,
}

impl EventLog {
    /// An empty log of `node`'s events keeping the last `capacity` (at least one).
    pub fn new(node: impl Into<String>, capacity: usize) -> Self {
        Self {
            node: node.into(),
            capacity: capacity.max(1),
            ring: Mutex::new(Ring::default()),
        }
    }

    /// Records one event of the supervisor at `prefix` (its path in the tree, `` for the root).
    pub fn record(&self, prefix: &str, event: SupervisorEvent, at_ms: u64) {
        let path = match event.kind.child() {
            Some(child) if prefix.is_empty() => child.to_owned(),
            Some(child) => format!("{prefix}/{child}"),
            None => prefix.to_owned(),
        };
        if matches!(
            event.kind,
            EventKind::ChildFailed { .. } | EventKind::GaveUp { .. }
        ) {
            tracing::info!(%path, ?event, "supervisor event");
        }
        // A panic while holding the lock cannot leave the ring half-updated: take it anyway.
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        ring.last_seq += 1;
        let seq = ring.last_seq;
        if ring.entries.len() == self.capacity {
            ring.entries.pop_front();
        }
        ring.entries.push_back(EventEntry {
            seq,
            at_ms,
            node: self.node.clone(),
            path,
            event,
        });
    }

    /// The events after `since` (at most `limit`, the newest ones when there are more).
    pub fn since(&self, since: u64, limit: usize) -> EventsSince {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        let first_kept = ring.entries.front().map_or(ring.last_seq + 1, |e| e.seq);
        let newer: Vec<&EventEntry> = ring.entries.iter().filter(|e| e.seq > since).collect();
        let skip = newer.len().saturating_sub(limit);
        EventsSince {
            missed: first_kept.saturating_sub(since.saturating_add(1)) + skip as u64,
            events: newer.into_iter().skip(skip).cloned().collect(),
            last_seq: ring.last_seq,
        }
    }

    /// A sink for the supervisor at `prefix` in the tree (`` for the root, `stores` for the
    /// stores subtree), stamping events with the wall clock.
    pub fn sink(self: &Arc<Self>, prefix: &str) -> EventSink {
        let (log, prefix) = (self.clone(), prefix.to_owned());
        Arc::new(move |event: SupervisorEvent| {
            log.record(&prefix, event, crate::consensus::actor::wall_clock_ms());
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restarted(child: &str) -> SupervisorEvent {
        SupervisorEvent {
            supervisor: "stores".into(),
            kind: EventKind::ChildRestarted {
                child: child.into(),
                restart_count: 1,
                operator: false,
            },
        }
    }

    #[test]
    fn paths_join_the_prefix_and_the_child_and_the_root_has_none() {
        let log = EventLog::new("n1", 8);
        log.record("stores", restarted("vector"), 5);
        log.record("", restarted("drift"), 6);
        log.record(
            "stores",
            SupervisorEvent {
                supervisor: "stores".into(),
                kind: EventKind::GaveUp {
                    intensity: 10,
                    period_ms: 60_000,
                },
            },
            7,
        );
        let all = log.since(0, usize::MAX);
        let paths: Vec<&str> = all.events.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["stores/vector", "drift", "stores"]);
        assert_eq!(all.events[0].node, "n1");
        assert_eq!(all.events[0].at_ms, 5);
        let v = serde_json::to_value(&all.events[0]).unwrap();
        assert_eq!(v["event"], "child_restarted");
        assert_eq!(v["child"], "vector");
        assert_eq!(v["path"], "stores/vector");
        assert_eq!(v["seq"], 1);
    }

    #[test]
    fn the_ring_keeps_the_last_events_and_counts_what_a_reader_missed() {
        let log = EventLog::new("n1", 4);
        assert_eq!(
            log.since(0, 10),
            EventsSince {
                events: vec![],
                last_seq: 0,
                missed: 0
            }
        );
        for i in 0..10 {
            log.record("stores", restarted(&format!("c{i}")), i);
        }
        let all = log.since(0, usize::MAX);
        let seqs: Vec<u64> = all.events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [7, 8, 9, 10]);
        assert_eq!((all.last_seq, all.missed), (10, 6));
        // A reader that kept up misses nothing and gets only what is new.
        let tail = log.since(8, usize::MAX);
        assert_eq!(
            tail.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [9, 10]
        );
        assert_eq!(tail.missed, 0);
        assert!(log.since(10, usize::MAX).events.is_empty());
        // A limit keeps the newest and counts the rest as missed.
        let limited = log.since(6, 1);
        assert_eq!(limited.events[0].seq, 10);
        assert_eq!(limited.missed, 3);
        // A `since` from the future (an older process's numbers) misses nothing and gets nothing.
        assert_eq!(log.since(99, 10).missed, 0);
    }

    #[test]
    fn a_sink_records_through_the_log() {
        let log = Arc::new(EventLog::new("n2", CAPACITY));
        let sink = log.sink("registry");
        sink(restarted("consensus"));
        let all = log.since(0, 10);
        assert_eq!(all.events[0].path, "registry/consensus");
        assert!(all.events[0].at_ms > 0);
    }
}
