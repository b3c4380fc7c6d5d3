//! The web console at `/console`: one page, a script and a style sheet, embedded in the binary
//! (nothing is fetched from elsewhere). The assets hold no data and are served without the admin
//! token; the page asks for the token in a sign-in form, keeps it in `sessionStorage` (no cookie,
//! so no cross-site request can carry it) and sends it as `Authorization: Bearer` on every call,
//! all to guarded `/admin` routes of the node it was opened from: `GET /admin/overview` every
//! 2 s, `POST /admin/restart/{path}` and `POST /admin/terminate/{path}` after a confirmation.
//! The assets carry a strict Content-Security-Policy (no inline script or style, same origin
//! only, no framing).

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const INDEX_HTML: &str = include_str!("console/index.html");
const APP_JS: &str = include_str!("console/app.js");
const STYLE_CSS: &str = include_str!("console/style.css");

/// The policy every console asset is served with.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// The console's routes (no state; the caller puts them behind the same layers as the rest).
pub fn router() -> Router {
    Router::new()
        .route(
            "/console",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/console/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/console/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/console/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_no_inline_script_or_style_and_names_only_embedded_assets() {
        assert!(INDEX_HTML.contains(r#"<script src="/console/app.js"></script>"#));
        assert!(INDEX_HTML.contains(r#"href="/console/style.css""#));
        for bad in ["<script>", "style=", "onclick", "http://", "https://"] {
            assert!(!INDEX_HTML.contains(bad), "{bad} in index.html");
        }
        for bad in [
            "http://",
            "https://",
            "eval(",
            "innerHTML",
            "document.cookie",
        ] {
            assert!(!APP_JS.contains(bad), "{bad} in app.js");
        }
        assert!(APP_JS.contains("sessionStorage"));
    }

    #[test]
    fn assets_carry_the_policy_and_nosniff() {
        let r = asset("text/javascript; charset=utf-8", APP_JS);
        let h = r.headers();
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CONTENT_SECURITY_POLICY);
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    }
}
