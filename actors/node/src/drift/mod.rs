//! The drift checker: one actor per node, a supervised child of the node's tree (after the stores,
//! so a restart of the stores restarts it too), holding this node's stores to what the registry
//! committed for the entities placed on it. See `pass` for one pass, docs/drift.md for the design.
//!
//! It runs a pass every `[drift] interval_s` (±20% jitter, so the nodes' passes spread out) and on
//! demand (`POST /admin/drift/check`, `verisim drift check`). Passes never overlap: one asked for
//! while another runs waits for it, then runs afresh.

mod pass;
mod report;

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

pub(crate) use pass::Pacer;
pub use report::{DriftStats, DriftStatus, DriftTotals, PassReport};

use crate::proxy::ProxyState;

/// The registered name of the node's drift checker.
pub const DRIFT_ACTOR_NAME: &str = "verisim.drift";

/// `[drift]`: the checker's pace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DriftSettings {
    /// Seconds between periodic passes (each ±20%); 0 turns them off (passes asked for still run).
    pub interval_s: u64,
    /// Repairs (an item fetched and written, or an orphan removed) per second at most, so that a
    /// pass that finds much drift never starves client writes.
    pub repair_rate: u32,
}

impl Default for DriftSettings {
    fn default() -> Self {
        Self {
            interval_s: 300,
            repair_rate: 1_000,
        }
    }
}

pub enum DriftMsg {
    /// Run a pass now and answer with its report.
    Check {
        /// `false`: compare and report only (a dry run); nothing is written.
        repair: bool,
        reply: RpcReplyPort<Result<PassReport, String>>,
    },
    /// The periodic timer.
    Tick,
}

// Local only: the checker is never messaged across nodes.
impl ractor::Message for DriftMsg {}

pub struct DriftArgs {
    pub proxy: ProxyState,
    pub settings: DriftSettings,
    pub stats: Arc<DriftStats>,
}

pub struct DriftState {
    args: DriftArgs,
    pacer: pass::Pacer,
}

pub struct DriftChecker;

impl DriftState {
    async fn pass(&self, repair: bool) -> Result<PassReport, String> {
        let span = tracing::info_span!("drift_pass", node = self.args.proxy.id);
        let result = pass::run(&self.args.proxy, &self.pacer, repair)
            .instrument(span)
            .await;
        self.args.stats.record(&result);
        match &result {
            Ok(r) if r.drifted > 0 => tracing::warn!(?r, "drift check found drift"),
            Ok(r) => tracing::debug!(?r, "drift check: no drift"),
            Err(e) => tracing::info!(error = %e, "drift check could not run"),
        }
        result
    }

    fn schedule(&self, myself: &ActorRef<DriftMsg>) {
        let every = self.args.settings.interval_s;
        if every == 0 {
            return;
        }
        let ms = every.saturating_mul(1000);
        let delay = rand::rng().random_range(ms - ms / 5..=ms + ms / 5);
        myself.send_after(Duration::from_millis(delay), || DriftMsg::Tick);
    }
}

impl Actor for DriftChecker {
    type Msg = DriftMsg;
    type State = DriftState;
    type Arguments = DriftArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<DriftMsg>,
        args: DriftArgs,
    ) -> Result<DriftState, ActorProcessingErr> {
        let st = DriftState {
            pacer: pass::Pacer::new(args.settings.repair_rate),
            args,
        };
        st.schedule(&myself);
        Ok(st)
    }

    async fn handle(
        &self,
        myself: ActorRef<DriftMsg>,
        msg: DriftMsg,
        st: &mut DriftState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            DriftMsg::Check { repair, reply } => {
                let r = st.pass(repair).await;
                let _ = reply.send(r);
            }
            DriftMsg::Tick => {
                let _ = st.pass(true).await;
                st.schedule(&myself);
            }
        }
        Ok(())
    }
}
