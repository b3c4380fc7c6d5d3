//! The rebalancer: keeps every entity on the replicas its placement should have, `[placement]
//! replicas` of the current voters by rendezvous hashing, as members join and leave. One actor per
//! node, a supervised child of the node's tree; only the leader's does any work, so moves are
//! planned from one view, and a new leader carries on from the committed state. See `plan` for the
//! steps of a move, `round` for one round, docs/drift.md ("Placement") for the design.
//!
//! It looks every `check_interval_ms` whether the voters changed, and runs a round then, after a
//! round that left work, every `full_interval_s` in any case (registrations that raced a
//! membership change may be placed on the old voters), and on demand (`POST
//! /admin/placement/rebalance`).

mod plan;
mod report;
mod round;

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::{Deserialize, Serialize};
use tracing::Instrument;

pub use report::{RebalanceStats, RebalanceStatus, RebalanceTotals, RoundReport};
pub use round::{count_misplaced, voters};

use crate::drift::Pacer;
use crate::proxy::ProxyState;
use crate::registry::{MAX_REPLICAS, NodeName};

/// The registered name of the node's rebalancer.
pub const REBALANCER_ACTOR_NAME: &str = "verisim.rebalancer";

/// `[placement]`: how many replicas an entity has, and the rebalancer's pace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlacementSettings {
    /// Replicas per entity (fewer while the cluster has fewer voters). Give every node the same
    /// value: registrations are placed by the node that takes them, moves by the leader.
    pub replicas: usize,
    /// How often the leader's rebalancer looks for a change of voters.
    pub check_interval_ms: u64,
    /// Seconds between rounds when nothing changed (0: only on changes and on demand).
    pub full_interval_s: u64,
    /// Items copied per second at most, so that a join never starves client writes.
    pub copy_rate: u32,
    /// Entities moved per committed entry (and per step of a round).
    pub batch: usize,
}

impl Default for PlacementSettings {
    fn default() -> Self {
        Self {
            replicas: 3,
            check_interval_ms: 1_000,
            full_interval_s: 30,
            copy_rate: 1_000,
            batch: 512,
        }
    }
}

impl PlacementSettings {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=MAX_REPLICAS).contains(&self.replicas) {
            return Err(format!("placement: replicas must be 1 to {MAX_REPLICAS}"));
        }
        if self.check_interval_ms == 0 || self.batch == 0 || self.copy_rate == 0 {
            return Err(
                "placement: check_interval_ms, batch and copy_rate must be positive".into(),
            );
        }
        Ok(())
    }
}

/// Why a round asked for did not run to the end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoundError {
    #[error("this node is not the leader: rounds run on the leader")]
    NotLeader,
    #[error("{0}")]
    Failed(String),
}

pub enum RebalanceMsg {
    /// Run a round now (on the leader) and answer with its report.
    Round(RpcReplyPort<Result<RoundReport, RoundError>>),
    /// The periodic look at the voters.
    Tick,
}

// Local only: the rebalancer is never messaged across nodes.
impl ractor::Message for RebalanceMsg {}

pub struct RebalanceArgs {
    pub proxy: ProxyState,
    pub settings: PlacementSettings,
    pub stats: Arc<RebalanceStats>,
}

pub struct RebalanceState {
    args: RebalanceArgs,
    pacer: Pacer,
    /// The voters of the last round, and whether it left work.
    last_voters: Vec<NodeName>,
    pending: bool,
    last_round: Option<Instant>,
    /// What the last round that ended with nothing misplaced vouches for (a round that did not
    /// finish leaves it: it stays true).
    in_place: Option<round::InPlace>,
}

pub struct Rebalancer;

impl RebalanceState {
    async fn round(&mut self) -> Result<RoundReport, RoundError> {
        if !self.args.proxy.registry.leads().await {
            return Err(RoundError::NotLeader);
        }
        let span = tracing::info_span!("rebalance_round", node = self.args.proxy.id);
        let s = &self.args.settings;
        let result = round::run(
            &self.args.proxy,
            &self.pacer,
            s.replicas,
            s.batch,
            self.in_place.as_ref(),
        )
        .instrument(span)
        .await
        .map(|(report, in_place)| {
            self.in_place = in_place;
            report
        });
        self.args.stats.record(&result);
        self.last_round = Some(Instant::now());
        match &result {
            Ok(r) => {
                self.last_voters = r
                    .voters
                    .iter()
                    .filter_map(|v| NodeName::new(v).ok())
                    .collect();
                self.pending = r.misplaced_after > 0;
                if r.misplaced > 0 {
                    tracing::info!(?r, "rebalance round");
                }
            }
            Err(e) => {
                self.pending = true;
                tracing::info!(error = %e, "rebalance round could not finish");
            }
        }
        result.map_err(RoundError::Failed)
    }

    /// Whether the periodic look should run a round.
    fn due(&self) -> bool {
        let full = self.args.settings.full_interval_s;
        self.pending
            || round::voters(&self.args.proxy) != self.last_voters
            || (full > 0
                && self
                    .last_round
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(full)))
    }
}

impl Actor for Rebalancer {
    type Msg = RebalanceMsg;
    type State = RebalanceState;
    type Arguments = RebalanceArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<RebalanceMsg>,
        args: RebalanceArgs,
    ) -> Result<RebalanceState, ActorProcessingErr> {
        myself.send_after(
            Duration::from_millis(args.settings.check_interval_ms),
            || RebalanceMsg::Tick,
        );
        Ok(RebalanceState {
            pacer: Pacer::new(args.settings.copy_rate),
            args,
            last_voters: Vec::new(),
            pending: false,
            last_round: None,
            in_place: None,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<RebalanceMsg>,
        msg: RebalanceMsg,
        st: &mut RebalanceState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RebalanceMsg::Round(reply) => {
                let r = st.round().await;
                let _ = reply.send(r);
            }
            RebalanceMsg::Tick => {
                // A follower's round stops at the leadership check (`RoundError::NotLeader`).
                if st.due() {
                    let _ = st.round().await;
                }
                myself.send_after(
                    Duration::from_millis(st.args.settings.check_interval_ms),
                    || RebalanceMsg::Tick,
                );
            }
        }
        Ok(())
    }
}
