//! The drift checker's admin routes: `POST /admin/drift/check` runs one check-and-repair pass on
//! this node and answers when it is done; `GET /admin/drift` reports the last pass and the totals.

use std::time::Duration;

use axum::Json;
use axum::extract::{RawQuery, State};
use ractor::rpc::CallResult;

use verisim_client::wire::ErrorCode;

use super::{AdminState, ApiError};
use crate::drift::{DRIFT_ACTOR_NAME, DriftMsg, DriftStatus, PassReport};

/// How long a pass asked for may take (a wiped replica is refilled at `[drift] repair_rate`).
const CHECK_TIMEOUT: Duration = Duration::from_secs(3600);

/// `POST /admin/drift/check[?repair=false]`: one full pass (with `repair=false` a dry run that
/// compares and reports only); `503` while the checker restarts or without a read barrier (the
/// registry view could be stale, so nothing is compared).
pub(super) async fn check(
    State(_st): State<AdminState>,
    RawQuery(query): RawQuery,
) -> Result<Json<PassReport>, ApiError> {
    let repair = !query.is_some_and(|q| q.split('&').any(|kv| kv == "repair=false"));
    let Some(cell) = ractor::registry::where_is(DRIFT_ACTOR_NAME) else {
        return Err(ApiError::new(
            ErrorCode::NoQuorum,
            "the drift checker is restarting",
        ));
    };
    let actor: ractor::ActorRef<DriftMsg> = cell.into();
    match actor
        .call(
            |reply| DriftMsg::Check { repair, reply },
            Some(CHECK_TIMEOUT),
        )
        .await
    {
        Ok(CallResult::Success(Ok(report))) => Ok(Json(report)),
        Ok(CallResult::Success(Err(e))) => Err(ApiError::new(ErrorCode::DriftCheckFailed, e)),
        _ => Err(ApiError::new(
            ErrorCode::NoQuorum,
            "the drift checker did not answer",
        )),
    }
}

/// `GET /admin/drift`: the last pass, the last failure, the totals since the node started.
pub(super) async fn status(State(st): State<AdminState>) -> Json<DriftStatus> {
    Json(st.drift.status())
}
