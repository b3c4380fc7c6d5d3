//! `GET /admin/events[?since=N][&limit=N]`: the node's recent supervisor events
//! ([`crate::node::events`]), oldest first, for the web console and for scripts that poll.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;

use super::AdminState;
use crate::node::events::{CAPACITY, EventsSince};

#[derive(Debug, Deserialize)]
pub(super) struct EventsParams {
    /// Only events with a greater sequence number (default 0: all kept).
    #[serde(default)]
    since: u64,
    /// At most this many, the newest (default and maximum: the ring's capacity).
    limit: Option<usize>,
}

pub(super) async fn list(
    State(st): State<AdminState>,
    Query(p): Query<EventsParams>,
) -> Json<EventsSince> {
    Json(
        st.events
            .since(p.since, p.limit.unwrap_or(CAPACITY).min(CAPACITY)),
    )
}
