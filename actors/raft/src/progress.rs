//! What a leader knows about each peer's log, and how it paces replication to it.

use std::collections::VecDeque;

use crate::types::{Index, SnapshotMeta};

/// How the leader currently sends to a peer (the etcd/raft-rs progress states).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ProgressState {
    /// The match point is unknown: one `Append` at a time, the next one after a reply or heartbeat.
    Probe { waiting: bool },
    /// The peer follows: appends are pipelined, at most `max_inflight` unacknowledged at once.
    Replicate,
    /// The peer is behind the log start and receives a snapshot, up to
    /// `Config::snapshot_chunks_in_flight` chunks at a time.
    Snapshot(SnapshotTransfer),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SnapshotTransfer {
    pub(crate) meta: SnapshotMeta,
    /// Bytes the follower confirmed it holds.
    pub(crate) acked: u64,
    /// End of the bytes asked for: the chunks in `[acked, next)` are being read or are in flight.
    pub(crate) next: u64,
    /// Ticks since the follower last answered; past the election timeout the chunks from `acked`
    /// are sent again.
    pub(crate) idle_ticks: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct Progress {
    pub(crate) match_index: Index,
    pub(crate) next_index: Index,
    pub(crate) state: ProgressState,
    /// Last index of every `Append` in flight, oldest first (Replicate only).
    pub(crate) inflight: VecDeque<Index>,
    /// Heard from within the current check-quorum period.
    pub(crate) recent_active: bool,
}

impl Progress {
    pub(crate) fn new(next_index: Index) -> Self {
        Progress {
            match_index: 0,
            next_index,
            state: ProgressState::Probe { waiting: false },
            inflight: VecDeque::new(),
            recent_active: true,
        }
    }

    pub(crate) fn become_probe(&mut self) {
        self.state = ProgressState::Probe { waiting: false };
        self.next_index = self.match_index + 1;
        self.inflight.clear();
    }

    pub(crate) fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next_index = self.match_index + 1;
        self.inflight.clear();
    }

    /// Whether another `Append` may be sent now.
    pub(crate) fn can_send(&self, max_inflight: usize) -> bool {
        match &self.state {
            ProgressState::Probe { waiting } => !*waiting,
            ProgressState::Replicate => self.inflight.len() < max_inflight,
            ProgressState::Snapshot(_) => false,
        }
    }

    /// Record an `Append` ending at `last` (or an empty probe at `next - 1`).
    pub(crate) fn sent(&mut self, last: Index, had_entries: bool) {
        match &mut self.state {
            ProgressState::Probe { waiting } => *waiting = true,
            ProgressState::Replicate => {
                if had_entries {
                    self.next_index = last + 1;
                    self.inflight.push_back(last);
                }
            }
            ProgressState::Snapshot(_) => {}
        }
    }

    /// The peer's log matches up to `index`. Returns whether anything advanced.
    pub(crate) fn matched(&mut self, index: Index) -> bool {
        let advanced = index > self.match_index;
        if advanced {
            self.match_index = index;
        }
        if self.next_index < index + 1 {
            self.next_index = index + 1;
        }
        while self.inflight.front().is_some_and(|&last| last <= index) {
            self.inflight.pop_front();
        }
        if let ProgressState::Probe { waiting } = &mut self.state {
            *waiting = false;
        }
        advanced
    }

    /// The peer rejected an `Append` at `rejected`; `probe_hint` is where the leader thinks the logs
    /// may agree. Returns false for a stale rejection.
    ///
    /// A rejection of the very entry the peer acknowledged last (`rejected == match_index`, the
    /// logs agreeing only below it) means the peer lost entries it had acknowledged: a node that
    /// dropped its log to recover from a corrupt snapshot. The leader then forgets what the peer
    /// acknowledged and probes it from the start, or it would probe at `match_index` forever.
    /// Lowering a match index is always safe: the commit index never moves back, and nothing else
    /// counts a match it no longer believes. A stale rejection taken this way costs a few probes.
    pub(crate) fn rejected(&mut self, rejected: Index, probe_hint: Index) -> bool {
        let lost = rejected == self.match_index && probe_hint < self.match_index;
        match self.state {
            ProgressState::Replicate => {
                if rejected <= self.match_index && !lost {
                    return false;
                }
                self.become_probe();
                self.after_rejection(rejected, probe_hint, lost);
                true
            }
            ProgressState::Probe { .. } => {
                // Only the rejection of the probe we sent last counts.
                if self.next_index.saturating_sub(1) != rejected {
                    return false;
                }
                self.after_rejection(rejected, probe_hint, lost);
                self.state = ProgressState::Probe { waiting: false };
                true
            }
            ProgressState::Snapshot(_) => false,
        }
    }

    fn after_rejection(&mut self, rejected: Index, probe_hint: Index, lost: bool) {
        if lost {
            self.match_index = 0;
        }
        self.next_index = (self.match_index + 1).max(probe_hint.saturating_add(1).min(rejected));
    }

    /// A heartbeat reply: a probe may go again, and a full pipeline frees one slot so lost appends
    /// are eventually noticed.
    pub(crate) fn heartbeat_reply(&mut self, max_inflight: usize) {
        match &mut self.state {
            ProgressState::Probe { waiting } => *waiting = false,
            ProgressState::Replicate => {
                if self.inflight.len() >= max_inflight {
                    self.inflight.pop_front();
                }
            }
            ProgressState::Snapshot(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_sends_one_at_a_time_until_answered() {
        let mut p = Progress::new(5);
        assert!(p.can_send(4));
        p.sent(7, true);
        assert!(!p.can_send(4));
        p.heartbeat_reply(4);
        assert!(p.can_send(4));
    }

    #[test]
    fn replicate_pipelines_up_to_the_bound_and_frees_on_ack() {
        let mut p = Progress::new(1);
        p.become_replicate();
        for last in [2, 4, 6] {
            p.sent(last, true);
        }
        assert!(!p.can_send(3));
        assert_eq!(p.next_index, 7);
        assert!(p.matched(4));
        assert_eq!(p.inflight.len(), 1);
        assert!(p.can_send(3));
    }

    #[test]
    fn a_peer_that_lost_what_it_acknowledged_is_probed_from_where_its_log_ends() {
        // Probe: the probe at the match index itself is refused, the peer's log ending at 3.
        let mut p = Progress::new(1);
        p.matched(10);
        p.become_probe();
        assert_eq!(p.next_index, 11);
        assert!(p.rejected(10, 3));
        assert_eq!(p.match_index, 0, "its acknowledgements are forgotten");
        assert_eq!(p.next_index, 4);
        assert!(p.matched(3));
        assert_eq!((p.match_index, p.next_index), (3, 4));
        // Replicate: the same, from a pipeline.
        let mut p = Progress::new(1);
        p.matched(10);
        p.become_replicate();
        assert!(p.rejected(10, 0));
        assert_eq!(p.state, ProgressState::Probe { waiting: false });
        assert_eq!((p.match_index, p.next_index), (0, 1));
        // A rejection at the match index whose hint agrees up to it is not a loss.
        let mut p = Progress::new(1);
        p.matched(10);
        p.become_replicate();
        assert!(!p.rejected(10, 10));
        assert_eq!(p.match_index, 10);
    }

    #[test]
    fn rejection_in_replicate_falls_back_to_probe_and_stale_ones_are_ignored() {
        let mut p = Progress::new(1);
        p.matched(3);
        p.become_replicate();
        p.sent(8, true);
        assert!(!p.rejected(2, 1), "at or below match: stale");
        assert!(p.rejected(6, 4));
        assert_eq!(p.state, ProgressState::Probe { waiting: false });
        assert_eq!(p.next_index, 5);
        // In probe, only the rejection of the last probe counts.
        assert!(!p.rejected(7, 2));
        assert!(p.rejected(4, 3));
        assert_eq!(p.next_index, 4);
    }
}
