//! Reading a request's body within its limits: a size cap (413) and the server's body deadline (408).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::request::Parts;
use verisim_client::wire::ErrorCode;

use super::error::ApiError;

/// Reads a request's body, refusing more than `limit` bytes with 413, and a body that does not
/// arrive within the server's body deadline with 408 `request_timeout`. An oversized body is still
/// read (and dropped) up to [`DRAIN_FACTOR`] times the limit, so the client, still sending, gets
/// the 413 instead of a reset connection; beyond that the connection is closed on it.
pub async fn read_body(req: Request, limit: usize) -> Result<(Parts, Bytes), ApiError> {
    use http_body_util::BodyExt;
    let (parts, mut body) = req.into_parts();
    let mut buf = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            // The server's body deadline (node::http_server) passed: say so, not "bad JSON".
            let code = if BodyDeadlineExceeded::is(&e) {
                ErrorCode::RequestTimeout
            } else {
                ErrorCode::MalformedJson
            };
            ApiError::new(code, format!("reading the body: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
            seen = seen.saturating_add(data.len());
            if seen <= limit {
                buf.extend_from_slice(&data);
            } else if seen > limit.saturating_mul(DRAIN_FACTOR) {
                break;
            }
        }
    }
    if seen > limit {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is larger than {limit} bytes"),
        ));
    }
    Ok((parts, Bytes::from(buf)))
}

/// How much of an oversized body is drained before answering 413 (see [`read_body`]).
const DRAIN_FACTOR: usize = 4;

/// The error a request body yields once its deadline has passed ([`read_body`] answers it with
/// `request_timeout`; the node's `http_server::body_deadline` answers every route so whatever the
/// handler made of it).
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyDeadlineExceeded(pub Duration);

impl BodyDeadlineExceeded {
    /// Whether `e` (or what it wraps) is this error.
    pub fn is(e: &(dyn std::error::Error + 'static)) -> bool {
        let mut cur = Some(e);
        while let Some(e) = cur {
            if e.is::<Self>() {
                return true;
            }
            cur = e.source();
        }
        false
    }
}
