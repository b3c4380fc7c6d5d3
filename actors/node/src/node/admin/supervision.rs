//! Operator actions on the node's supervision tree, by a child's path (`registry`,
//! `stores/vector`): restart, terminate (OTP's `terminate_child`: stopped, kept in the tree,
//! restartable), delete (OTP's `delete_child`: a stopped child is removed from the tree).

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::json;
use verisim_client::wire::ErrorCode;
use verisim_supervision::{SupervisorError, SupervisorHandle};

use super::{AdminState, ApiError};

/// How long an action may take: a stop honours each child's shutdown timeout, and a restart's
/// start follows it.
const ACTION_TIMEOUT: Duration = Duration::from_secs(120);

fn unknown_path(path: &str) -> ApiError {
    ApiError::new(
        ErrorCode::UnknownPath,
        format!("no child at `{path}` in the supervision tree"),
    )
}

/// The supervisor holding the child at `path`, and the child's id.
async fn parent_of<'p>(
    st: &AdminState,
    path: &'p str,
) -> Result<(SupervisorHandle, &'p str), ApiError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let Some((last, parents)) = segments.split_last() else {
        return Err(unknown_path(path));
    };
    let mut sup = st.tree.clone().with_timeout(ACTION_TIMEOUT);
    for seg in parents {
        sup = sup.child_supervisor(seg).await.map_err(|e| match e {
            SupervisorError::NoSuchChild(_) => unknown_path(path),
            other => ApiError::new(ErrorCode::NotRunning, other.to_string()),
        })?;
    }
    Ok((sup, last))
}

fn failed(path: &str, code: ErrorCode, e: SupervisorError) -> ApiError {
    match e {
        SupervisorError::NoSuchChild(_) => unknown_path(path),
        SupervisorError::ChildRunning(_) => ApiError::new(
            ErrorCode::ChildRunning,
            format!("`{path}` is running: terminate it first"),
        ),
        e => ApiError::new(code, e.to_string()),
    }
}

/// `POST /admin/restart/{path}`: stops the child if it runs, then starts it; a subtree whose
/// supervisor gave up is started again.
pub(super) async fn restart(
    State(st): State<AdminState>,
    Path(path): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (sup, last) = parent_of(&st, &path).await?;
    tracing::warn!(%path, "restart through the admin API");
    let cell = sup
        .restart_child(last)
        .await
        .map_err(|e| failed(&path, ErrorCode::RestartFailed, e))?;
    Ok(Json(
        json!({"restarted": path, "actor_id": cell.get_id().to_string()}),
    ))
}

/// `POST /admin/terminate/{path}`: stops the child (its own children first) and keeps it in the
/// tree as terminated until it is restarted or deleted. Its supervisor does not restart it.
pub(super) async fn terminate(
    State(st): State<AdminState>,
    Path(path): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (sup, last) = parent_of(&st, &path).await?;
    tracing::warn!(%path, "terminate through the admin API");
    sup.terminate_child(last)
        .await
        .map_err(|e| failed(&path, ErrorCode::TerminateFailed, e))?;
    Ok(Json(json!({"terminated": path})))
}

/// `DELETE /admin/children/{path}`: removes a terminated child from the tree (`409
/// child_running` while it runs). It cannot be restarted afterwards, only by restarting its
/// parent (which starts its children from their specs again).
pub(super) async fn delete(
    State(st): State<AdminState>,
    Path(path): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (sup, last) = parent_of(&st, &path).await?;
    tracing::warn!(%path, "delete through the admin API");
    sup.delete_child(last)
        .await
        .map_err(|e| failed(&path, ErrorCode::DeleteFailed, e))?;
    Ok(Json(json!({"deleted": path})))
}
