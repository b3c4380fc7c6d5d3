//! `GET /admin/backup`: a consistent backup of the registry and every payload it names, streamed
//! (see `crate::backup`). The registry is fixed at a read barrier before the answer starts, so a
//! node without a quorum answers `503 no_quorum` rather than an old state; a failure while
//! streaming ends the body with an ABORT frame that the CLI reports.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::{AdminState, ApiError, TIMEOUT};

/// The media type of a backup file.
pub const CONTENT_TYPE: &str = "application/vnd.verisim.backup";

pub(super) async fn backup(State(st): State<AdminState>) -> Result<Response, ApiError> {
    st.proxy
        .registry
        .read_barrier(TIMEOUT)
        .await
        .map_err(ApiError::from_consensus_admin)?;
    let fixed = crate::backup::stream::fix(&st.replica);
    let index = fixed.index;
    let rx = crate::backup::stream::stream(st.id, st.proxy.stores.clone(), fixed);
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }));
    let mut r = body.into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    r.headers_mut()
        .insert("x-verisim-backup-index", HeaderValue::from(index));
    Ok(r)
}
