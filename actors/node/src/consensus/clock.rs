//! Cluster time: a wall-clock reading no single node's clock decides.
//!
//! Every node samples its peers' wall clocks over the cluster transport (an RPC to the peer's
//! endpoint answered with its wall clock), NTP-style: the peer's reading is taken to be from the
//! middle of the round trip, so `offset = peer − (sent + rtt / 2)`. A node's cluster time is the
//! median of its own clock and the estimated current clocks of the voters it heard from recently.
//! With three voters, one clock two days off is outvoted on every node, its own included.
//!
//! The median is only trusted when it covers a majority of the voters (the same nodes that must
//! agree for anything to commit). Otherwise the node falls back to its own clock for its local
//! checks, and stamps proposals with no more than the registry clock, so a node that has not heard
//! from enough peers (just started, cut off) never advances the registry clock by itself. The
//! registry additionally bounds the clock's step per entry (`RegistryConfig::max_clock_step_ms`).
//!
//! Even counts take the lower median: with two readings one may be wrong, and a clock taken too
//! early only keeps windows and remembered request ids a little longer, where one too late would
//! expire them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::rpc::CallResult;
use tracing::debug;
use verisim_cluster::Sealed;
use verisim_raft::NodeId;

use super::actor::wall_clock_ms;
use super::endpoint::{ClusterTransport, EndpointMsg, kind, open_answer};
use super::replica::SharedReplica;

/// How often a node samples its peers' clocks.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(1000);
/// A peer's sample older than this is left out of the median.
pub const SAMPLE_MAX_AGE: Duration = Duration::from_secs(10);
/// A sample whose round trip took longer than this is too imprecise to use.
pub const MAX_RTT: Duration = Duration::from_millis(1000);

/// The lower median of `values` (the middle one; of the two middle ones, the smaller); `None` when
/// empty.
pub fn lower_median(values: &mut [u64]) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    Some(values[(values.len() - 1) / 2])
}

/// The offset of a peer's clock from ours, from one exchange: we read `sent_ms` on our wall clock,
/// the peer answered `peer_ms`, and the round trip took `rtt` (measured on the monotonic clock, so
/// a wall-clock step during the exchange does not distort it).
pub fn offset_ms(sent_ms: u64, peer_ms: u64, rtt: Duration) -> i64 {
    let midpoint = i128::from(sent_ms) + (rtt.as_millis() / 2) as i128;
    (i128::from(peer_ms) - midpoint).clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// A reading of cluster time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterNow {
    /// Milliseconds since the Unix epoch.
    pub ms: u64,
    /// The reading is the median over a majority of the voters; `false`: too few peers heard
    /// from, and `ms` is this node's own clock.
    pub agreed: bool,
}

/// The median of `own_ms` and `peer_ms` (estimated current clocks of the voters heard from
/// recently), agreed when those readings come from a majority of `electorate` nodes.
pub fn median_now(own_ms: u64, peer_ms: &[u64], electorate: usize) -> ClusterNow {
    let mut readings = Vec::with_capacity(peer_ms.len() + 1);
    readings.push(own_ms);
    readings.extend_from_slice(peer_ms);
    let agreed = readings.len() > electorate / 2;
    if !agreed {
        return ClusterNow {
            ms: own_ms,
            agreed: false,
        };
    }
    ClusterNow {
        ms: lower_median(&mut readings).unwrap_or(own_ms),
        agreed: true,
    }
}

/// The time a proposal is stamped with. An agreed cluster time is used as is. Without agreement
/// the node's own clock is used, but never beyond the registry clock (`registry_ms`, which only
/// agreed stamps advance). `None`: not agreed and the registry has no clock yet (a new cluster),
/// when the first stamp would set it unchecked: the proposer must wait for agreement.
pub fn proposal_stamp(now: ClusterNow, registry_ms: u64) -> Option<u64> {
    if now.agreed {
        Some(now.ms)
    } else if registry_ms == 0 {
        None
    } else {
        Some(now.ms.min(registry_ms))
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    offset_ms: i64,
    taken: Instant,
}

/// This node's view of its peers' clocks; cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct ClusterClock {
    me: NodeId,
    replica: SharedReplica,
    samples: Arc<Mutex<BTreeMap<NodeId, Sample>>>,
}

impl ClusterClock {
    /// A clock for node `me`, whose voters are read from `replica`'s membership.
    pub fn new(me: NodeId, replica: SharedReplica) -> Self {
        Self {
            me,
            replica,
            samples: Arc::default(),
        }
    }

    /// Records one exchange with `peer` (see [`offset_ms`]).
    pub fn record(&self, peer: NodeId, sent_ms: u64, peer_ms: u64, rtt: Duration) {
        if rtt > MAX_RTT || peer == self.me {
            return;
        }
        let sample = Sample {
            offset_ms: offset_ms(sent_ms, peer_ms, rtt),
            taken: Instant::now(),
        };
        self.samples
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(peer, sample);
    }

    /// The cluster time now.
    pub fn now(&self) -> ClusterNow {
        let voters: BTreeSet<NodeId> = self.replica.read().membership.voters.clone();
        self.now_among(&voters, wall_clock_ms())
    }

    /// The cluster time when this node's clock reads `own_ms`, over `voters` (this node counts
    /// whether it votes or not; a learner's clock is one more reading, never a majority alone).
    fn now_among(&self, voters: &BTreeSet<NodeId>, own_ms: u64) -> ClusterNow {
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        let peers: Vec<u64> = voters
            .iter()
            .filter(|&&v| v != self.me)
            .filter_map(|v| samples.get(v))
            .filter(|s| s.taken.elapsed() <= SAMPLE_MAX_AGE)
            .map(|s| own_ms.saturating_add_signed(s.offset_ms))
            .collect();
        if voters.is_empty() {
            // No membership applied yet (a joining node): the electorate is unknown.
            return ClusterNow {
                ms: own_ms,
                agreed: false,
            };
        }
        let electorate = voters.len() + usize::from(!voters.contains(&self.me));
        median_now(own_ms, &peers, electorate)
    }

    /// Cluster time in milliseconds, for checks of request timestamps and window expiry.
    pub fn now_ms(&self) -> u64 {
        self.now().ms
    }

    /// The time to stamp a proposal with (see [`proposal_stamp`]); `None` until this node may.
    pub fn stamp(&self) -> Option<u64> {
        let registry_ms = self.replica.read().state.clock_ms();
        proposal_stamp(self.now(), registry_ms)
    }
}

/// Samples every connected peer's clock every [`SAMPLE_INTERVAL`], forever (the caller aborts the
/// task when the node stops).
pub async fn sample_peers(clock: ClusterClock, transport: Arc<ClusterTransport>) {
    let mut interval = tokio::time::interval(SAMPLE_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        for (peer, endpoint) in transport.peers(clock.me) {
            let clock = clock.clone();
            let keyring = transport.keyring().clone();
            // One task per peer, so a peer that does not answer delays no other sample.
            tokio::spawn(async move {
                let Ok(ask) = Sealed::seal(kind::TIME, &(), &keyring, peer) else {
                    return;
                };
                let sent_ms = wall_clock_ms();
                let started = Instant::now();
                let answer = endpoint
                    .call(|r| EndpointMsg::Time(ask, r), Some(MAX_RTT))
                    .await;
                let rtt = started.elapsed();
                match answer {
                    Ok(CallResult::Success(wire)) => {
                        match open_answer(&keyring, kind::TIME_REPLY, peer, &wire) {
                            Ok(peer_ms) => clock.record(peer, sent_ms, peer_ms, rtt),
                            Err(e) => debug!(peer, error = %e, "malformed clock reading"),
                        }
                    }
                    _ => debug!(peer, "clock reading not answered"),
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    const DAY_MS: u64 = 24 * 60 * 60 * 1000;

    use crate::testing::test_seed as seed;

    #[test]
    fn lower_median_takes_the_middle_or_the_smaller_middle() {
        assert_eq!(lower_median(&mut []), None);
        assert_eq!(lower_median(&mut [7]), Some(7));
        assert_eq!(lower_median(&mut [9, 1]), Some(1));
        assert_eq!(lower_median(&mut [5, 1, 9]), Some(5));
        assert_eq!(lower_median(&mut [4, 1, 9, 3]), Some(3));
    }

    /// The attack of issue 11: one of three clocks two days ahead. Every node's cluster time,
    /// the fast node's included, stays with the honest clocks.
    #[test]
    fn one_clock_two_days_ahead_is_outvoted_on_every_node() {
        let t = 1_800_000_000_000;
        let clocks = [t, t + 3, t + 2 * DAY_MS];
        for (i, &own) in clocks.iter().enumerate() {
            let peers: Vec<u64> = clocks
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, &c)| c)
                .collect();
            let now = median_now(own, &peers, 3);
            assert!(now.agreed);
            assert!(now.ms <= t + 3, "node {i} reads {}", now.ms);
        }
        // Only the fast node and one honest peer heard: the lower median is the honest one.
        let now = median_now(t + 2 * DAY_MS, &[t], 3);
        assert_eq!(
            now,
            ClusterNow {
                ms: t,
                agreed: true
            }
        );
    }

    #[test]
    fn too_few_readings_fall_back_to_the_own_clock_and_do_not_stamp_ahead() {
        let t = 1_800_000_000_000;
        let alone = median_now(t + 2 * DAY_MS, &[], 3);
        assert_eq!(
            alone,
            ClusterNow {
                ms: t + 2 * DAY_MS,
                agreed: false
            }
        );
        // Not agreed: a proposal never carries more than the registry clock...
        assert_eq!(proposal_stamp(alone, t), Some(t));
        // ...nor does a clock behind it move anything.
        assert_eq!(
            proposal_stamp(
                ClusterNow {
                    ms: t - 5,
                    agreed: false
                },
                t
            ),
            Some(t - 5)
        );
        // A new cluster has no registry clock yet: the first stamp waits for agreement.
        assert_eq!(proposal_stamp(alone, 0), None);
        let agreed = ClusterNow {
            ms: t,
            agreed: true,
        };
        assert_eq!(proposal_stamp(agreed, 0), Some(t));
        assert_eq!(proposal_stamp(agreed, t + DAY_MS), Some(t));
        // One voter (a single-node cluster) is a majority of itself.
        assert_eq!(
            median_now(t, &[], 1),
            ClusterNow {
                ms: t,
                agreed: true
            }
        );
    }

    /// Property: with a majority of honest readings (within `skew` of the true time), the median
    /// is within `skew` of the true time whatever the others say, for any count and order.
    #[test]
    fn an_honest_majority_bounds_the_median() {
        let seed = seed();
        let mut rng = StdRng::seed_from_u64(seed);
        for round in 0..10_000 {
            let t: u64 = rng.random_range(DAY_MS * 365..DAY_MS * 365 * 100);
            let skew: u64 = rng.random_range(0..1000);
            let n: usize = rng.random_range(1..=9);
            let bad = rng.random_range(0..=(n - 1) / 2);
            let mut readings: Vec<u64> = (0..n)
                .map(|i| {
                    if i < bad {
                        rng.random_range(0..u64::MAX / 2)
                    } else {
                        rng.random_range(t - skew..=t + skew)
                    }
                })
                .collect();
            // Shuffled so the own reading is any of them.
            for i in (1..readings.len()).rev() {
                readings.swap(i, rng.random_range(0..=i));
            }
            let now = median_now(readings[0], &readings[1..], n);
            assert!(now.agreed, "seed {seed} round {round}");
            assert!(
                now.ms.abs_diff(t) <= skew,
                "seed {seed} round {round}: {readings:?} gave {} for {t}±{skew}",
                now.ms
            );
        }
    }

    #[test]
    fn offset_takes_the_middle_of_the_round_trip() {
        assert_eq!(offset_ms(1000, 1050, Duration::from_millis(100)), 0);
        assert_eq!(
            offset_ms(1000, 1000 + 2 * DAY_MS, Duration::ZERO),
            (2 * DAY_MS) as i64
        );
        assert_eq!(offset_ms(1000, 0, Duration::from_millis(10)), -1005);
    }

    #[test]
    fn the_clock_leaves_out_non_voters_and_stale_or_slow_samples() {
        let replica = SharedReplica::default();
        let clock = ClusterClock::new(1, replica);
        let voters: BTreeSet<NodeId> = [1, 2, 3].into();
        let t = 1_800_000_000_000;
        assert!(!clock.now_among(&voters, t).agreed);
        // No membership known yet: never agreed, even alone.
        assert!(!clock.now_among(&BTreeSet::new(), t).agreed);
        assert!(clock.now_among(&[1].into(), t).agreed);
        // A sample from a node that is not a voter does not count.
        clock.record(9, t, t, Duration::ZERO);
        assert!(!clock.now_among(&voters, t).agreed);
        // A round trip too slow to be precise is not recorded.
        clock.record(2, t, t, MAX_RTT + Duration::from_millis(1));
        assert!(!clock.now_among(&voters, t).agreed);
        // Node 2's clock two days ahead, node 3's honest: the median is honest.
        clock.record(2, t, t + 2 * DAY_MS, Duration::ZERO);
        clock.record(3, t, t + 1, Duration::ZERO);
        assert_eq!(
            clock.now_among(&voters, t),
            ClusterNow {
                ms: t + 1,
                agreed: true
            }
        );
        // A stale sample is left out.
        clock.samples.lock().unwrap().get_mut(&3).unwrap().taken -=
            SAMPLE_MAX_AGE + Duration::from_secs(1);
        assert_eq!(
            clock.now_among(&voters, t),
            ClusterNow {
                ms: t,
                agreed: true
            }
        );
    }
}
