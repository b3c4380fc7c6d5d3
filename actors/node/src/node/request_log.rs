//! One span per HTTP request, so that every log line of a request names it: `request_id` (the
//! client's signed request id, else an `X-Request-Id` the caller sent, else a random one), method,
//! route, and once known the client and the entity (recorded by the proxy's handlers:
//! `tracing::Span::current().record("entity", ..)`). The id is echoed in the `X-Request-Id`
//! response header, so a caller can find the node's log lines of its request. Requests that fail
//! with 5xx or take over a second are logged at WARN; the rest at DEBUG.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use verisim_client::wire::headers;

/// The response header carrying the request's id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A request slower than this is logged at WARN.
const SLOW: Duration = Duration::from_secs(1);

/// An id a caller sent, if it is short printable ASCII (it goes into logs and a header).
fn usable(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| s.to_owned())
}

pub async fn request_span(req: Request, next: Next) -> Response {
    let h = req.headers();
    let id = h
        .get(headers::REQUEST_ID)
        .or_else(|| h.get(REQUEST_ID_HEADER))
        .and_then(usable)
        .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()));
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_owned();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        route = %route,
        client = tracing::field::Empty,
        entity = tracing::field::Empty,
    );
    let start = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let status = resp.status().as_u16();
    let elapsed = start.elapsed();
    span.in_scope(|| {
        let ms = elapsed.as_millis() as u64;
        if status >= 500 || elapsed > SLOW {
            tracing::warn!(status, ms, "request served");
        } else {
            tracing::debug!(status, ms, "request served");
        }
    });
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_printable_ids_from_callers_are_kept() {
        let v = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(usable(&v("reg-7f3a")), Some("reg-7f3a".into()));
        // Spaces (a forged log field), over 128 bytes, empty, and non-ASCII bytes: made up anew.
        assert_eq!(usable(&v("a b")), None);
        assert_eq!(usable(&v(&"x".repeat(129))), None);
        assert_eq!(usable(&v("")), None);
        assert_eq!(usable(&HeaderValue::from_bytes(b"id\xff").unwrap()), None);
    }
}
