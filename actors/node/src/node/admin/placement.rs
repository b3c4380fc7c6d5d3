//! The rebalancer's admin routes: `GET /admin/placement` says how many entities are placed
//! elsewhere than the current voters and replication factor say, with the last round and the
//! totals; `POST /admin/placement/rebalance` runs a round now (on the leader).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use ractor::rpc::CallResult;
use serde::Serialize;

use verisim_client::wire::ErrorCode;

use super::{AdminState, ApiError};
use crate::rebalance::{
    REBALANCER_ACTOR_NAME, RebalanceMsg, RebalanceStatus, RoundError, RoundReport,
};

/// How long a round asked for may take (copies are paced at `[placement] copy_rate`).
const ROUND_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(Serialize)]
pub(super) struct PlacementView {
    /// This node's `[placement] replicas`.
    replicas: usize,
    /// The voters as this node applied them.
    voters: Vec<String>,
    applied_index: u64,
    entities: u64,
    /// Entities whose placement is not the one `replicas` of `voters` give, as this node applied
    /// the registry (0 once the rebalancer is done).
    misplaced: u64,
    #[serde(flatten)]
    status: RebalanceStatus,
}

/// `GET /admin/placement`.
pub(super) async fn status(State(st): State<AdminState>) -> Result<Json<PlacementView>, ApiError> {
    let voters = crate::rebalance::voters(&st.proxy);
    let replicas = st.placement.replicas;
    let (applied_index, entities, misplaced) =
        crate::rebalance::count_misplaced(&st.proxy, voters.clone(), replicas)
            .await
            .map_err(ApiError::internal)?;
    Ok(Json(PlacementView {
        replicas,
        voters: voters.iter().map(|n| n.as_str().to_owned()).collect(),
        applied_index,
        entities,
        misplaced,
        status: st.rebalance.status(),
    }))
}

/// `POST /admin/placement/rebalance`: one round now; `421 not_leader` on a follower.
pub(super) async fn rebalance(
    State(_st): State<AdminState>,
) -> Result<Json<RoundReport>, ApiError> {
    let Some(cell) = ractor::registry::where_is(REBALANCER_ACTOR_NAME) else {
        return Err(ApiError::new(
            ErrorCode::NoQuorum,
            "the rebalancer is restarting",
        ));
    };
    let actor: ractor::ActorRef<RebalanceMsg> = cell.into();
    match actor.call(RebalanceMsg::Round, Some(ROUND_TIMEOUT)).await {
        Ok(CallResult::Success(Ok(report))) => Ok(Json(report)),
        Ok(CallResult::Success(Err(e @ RoundError::NotLeader))) => {
            Err(ApiError::new(ErrorCode::NotLeader, e.to_string()))
        }
        Ok(CallResult::Success(Err(RoundError::Failed(e)))) => {
            Err(ApiError::new(ErrorCode::RebalanceFailed, e))
        }
        _ => Err(ApiError::new(
            ErrorCode::NoQuorum,
            "the rebalancer did not answer",
        )),
    }
}
