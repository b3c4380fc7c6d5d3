//! CORS for the public API, so that the wasm SDK (client/js) runs in a browser page served from
//! another origin. Off unless origins are configured (`[proxy] cors_origins`, `--cors-origin`;
//! `verisim dev` allows `http://localhost:*` and `http://127.0.0.1:*`).
//!
//! * A preflight (`OPTIONS` with `Access-Control-Request-Method`) from an allowed origin is
//!   answered `204` here, before routing, with the methods, the request headers the signing scheme
//!   uses (docs/api.md) and a max age; from any other origin it is refused `403 forbidden`
//!   without CORS headers, so the browser blocks the request.
//! * Every other answer to an allowed origin carries `Access-Control-Allow-Origin: <origin>` and
//!   exposes the response headers a client acts on (`X-Verisim-Leader`, `Retry-After`).
//!
//! No credentials (cookies) are ever allowed: requests are authenticated by their signature.
//! CORS is a browser's protection of its user, not the server's: a refused origin's requests are
//! still answered to non-browser callers, as before.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use verisim_client::wire::{ErrorBody, ErrorCode, headers};

/// Methods a preflight may ask for (the public API's).
pub const ALLOW_METHODS: &str = "GET, POST, PUT, DELETE";

/// Request headers a browser may send: the covered headers and the five authentication headers.
pub const ALLOW_HEADERS: [&str; 7] = [
    headers::CONTENT_TYPE,
    headers::IF_MATCH,
    headers::CLIENT,
    headers::WINDOW,
    headers::TIMESTAMP,
    headers::REQUEST_ID,
    headers::SIGNATURE,
];

/// Response headers a page may read (the leader hint and the retry delay a client acts on).
pub const EXPOSE_HEADERS: [&str; 3] = [headers::LEADER, headers::RETRY_AFTER, headers::REQUEST_ID];

/// How long a browser may cache a preflight answer, in seconds.
pub const MAX_AGE_S: u32 = 600;

/// One allowed origin: exact (`https://app.example.com`), or any port of a host
/// (`http://localhost:*`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    AnyPort { prefix: String },
}

/// The allowed origins (none: CORS off, no header added, preflights refused).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CorsOrigins(Vec<Pattern>);

/// A configured origin that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "CORS origin {0:?}: expected scheme://host[:port] (http or https, no path) or scheme://host:* for any port"
)]
pub struct BadOrigin(pub String);

/// `verisim dev`'s origins: pages served from this machine, any port.
pub const DEV_ORIGINS: [&str; 2] = ["http://localhost:*", "http://127.0.0.1:*"];

fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'))
}

impl CorsOrigins {
    /// Parses the configured origins.
    ///
    /// # Errors
    /// [`BadOrigin`] for the first one that is not an origin or an any-port pattern.
    pub fn parse<S: AsRef<str>>(origins: &[S]) -> Result<Self, BadOrigin> {
        let mut out = Vec::new();
        for o in origins {
            let o = o.as_ref().trim();
            let bad = || BadOrigin(o.to_string());
            let rest = o
                .strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"))
                .ok_or_else(bad)?;
            if let Some(host) = rest.strip_suffix(":*") {
                if !valid_host(host) {
                    return Err(bad());
                }
                out.push(Pattern::AnyPort {
                    prefix: o[..o.len() - 1].to_ascii_lowercase(),
                });
            } else {
                let (host, port) = match rest.rsplit_once(':') {
                    // `[::1]` has colons but no port.
                    Some((h, p)) if !rest.ends_with(']') => (h, Some(p)),
                    _ => (rest, None),
                };
                if !valid_host(host) || port.is_some_and(|p| p.parse::<u16>().is_err()) {
                    return Err(bad());
                }
                out.push(Pattern::Exact(o.to_ascii_lowercase()));
            }
        }
        Ok(Self(out))
    }

    /// Whether no origin is allowed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a request's `Origin` value is allowed.
    #[must_use]
    pub fn allows(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        self.0.iter().any(|p| match p {
            Pattern::Exact(o) => *o == origin,
            Pattern::AnyPort { prefix } => origin
                .strip_prefix(prefix.as_str())
                .is_some_and(|port| port.parse::<u16>().is_ok()),
        })
    }
}

fn set(resp: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

/// The middleware (`axum::middleware::from_fn_with_state` with the origins).
pub async fn layer(State(origins): State<Arc<CorsOrigins>>, req: Request, next: Next) -> Response {
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let allowed = origin.filter(|o| origins.allows(o));
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        let Some(origin) = allowed else {
            let body = ErrorBody {
                code: ErrorCode::Forbidden,
                message: "this origin is not allowed (CORS): see [proxy] cors_origins".into(),
                details: None,
            };
            let mut resp = (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
            set(&mut resp, header::VARY, "origin");
            return resp;
        };
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::NO_CONTENT;
        set(&mut resp, header::ACCESS_CONTROL_ALLOW_ORIGIN, &origin);
        set(
            &mut resp,
            header::ACCESS_CONTROL_ALLOW_METHODS,
            ALLOW_METHODS,
        );
        set(
            &mut resp,
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            &ALLOW_HEADERS.join(", "),
        );
        set(
            &mut resp,
            header::ACCESS_CONTROL_MAX_AGE,
            &MAX_AGE_S.to_string(),
        );
        set(&mut resp, header::VARY, "origin");
        return resp;
    }
    let mut resp = next.run(req).await;
    if let Some(origin) = allowed {
        set(&mut resp, header::ACCESS_CONTROL_ALLOW_ORIGIN, &origin);
        set(
            &mut resp,
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            &EXPOSE_HEADERS.join(", "),
        );
    }
    if !origins.is_empty() {
        // The answer depends on the Origin header: caches must not serve one origin's to another.
        resp.headers_mut()
            .append(header::VARY, HeaderValue::from_static("origin"));
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A route behind the layer, served on a loopback port.
    async fn serve(origins: &[&str]) -> std::net::SocketAddr {
        let origins = Arc::new(CorsOrigins::parse(origins).unwrap());
        let app = axum::Router::new()
            .route(
                "/v1/entities",
                axum::routing::post(|| async { (StatusCode::CREATED, "{}") }),
            )
            .layer(axum::middleware::from_fn_with_state(origins, layer));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }

    /// One request from a blocking client (on its own thread): status and headers.
    async fn send(
        addr: std::net::SocketAddr,
        method: &'static str,
        origin: &'static str,
    ) -> (u16, axum::http::HeaderMap) {
        tokio::task::spawn_blocking(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .allow_non_standard_methods(true)
                .build()
                .into();
            let mut req = ureq::http::Request::builder()
                .method(method)
                .uri(format!("http://{addr}/v1/entities"))
                .header("origin", origin);
            if method == "OPTIONS" {
                req = req.header("access-control-request-method", "POST").header(
                    "access-control-request-headers",
                    "content-type,x-verisim-signature",
                );
            }
            let resp = agent.run(req.body(Vec::new()).unwrap()).unwrap();
            (resp.status().as_u16(), resp.headers().clone())
        })
        .await
        .unwrap()
    }

    fn header<'a>(h: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
        h.get(name).and_then(|v| v.to_str().ok())
    }

    #[tokio::test]
    async fn a_preflight_from_a_configured_origin_is_allowed_and_others_are_refused() {
        let addr = serve(&["https://app.example.com", "http://localhost:*"]).await;

        let (status, h) = send(addr, "OPTIONS", "https://app.example.com").await;
        assert_eq!(status, 204);
        assert_eq!(
            header(&h, "access-control-allow-origin"),
            Some("https://app.example.com")
        );
        let allowed = header(&h, "access-control-allow-headers").unwrap();
        for name in ALLOW_HEADERS {
            assert!(allowed.contains(name), "{name} missing from {allowed}");
        }
        assert!(
            header(&h, "access-control-allow-methods")
                .unwrap()
                .contains("PUT")
        );
        assert!(header(&h, "access-control-allow-credentials").is_none());

        let (status, h) = send(addr, "OPTIONS", "http://localhost:5173").await;
        assert_eq!(status, 204);
        assert_eq!(
            header(&h, "access-control-allow-origin"),
            Some("http://localhost:5173")
        );

        let (status, h) = send(addr, "OPTIONS", "https://evil.example").await;
        assert_eq!(status, 403);
        assert!(header(&h, "access-control-allow-origin").is_none());

        // The actual request: the allowed origin sees the answer and the leader hint header.
        let (status, h) = send(addr, "POST", "https://app.example.com").await;
        assert_eq!(status, 201);
        assert_eq!(
            header(&h, "access-control-allow-origin"),
            Some("https://app.example.com")
        );
        assert!(
            header(&h, "access-control-expose-headers")
                .unwrap()
                .contains("x-verisim-leader")
        );
        let (status, h) = send(addr, "POST", "https://evil.example").await;
        assert_eq!(status, 201, "a non-browser caller is answered as before");
        assert!(header(&h, "access-control-allow-origin").is_none());
    }

    #[tokio::test]
    async fn without_configured_origins_no_cors_header_is_sent() {
        let addr = serve(&[]).await;
        let (status, h) = send(addr, "OPTIONS", "http://localhost:5173").await;
        assert_eq!(status, 403);
        assert!(header(&h, "access-control-allow-origin").is_none());
        let (status, h) = send(addr, "POST", "http://localhost:5173").await;
        assert_eq!(status, 201);
        assert!(header(&h, "access-control-allow-origin").is_none());
        assert!(header(&h, "vary").is_none());
    }

    #[test]
    fn origins_parse_and_match() {
        let o = CorsOrigins::parse(&["https://app.example.com", "http://localhost:*"]).unwrap();
        assert!(o.allows("https://app.example.com"));
        assert!(o.allows("HTTPS://APP.example.com"));
        assert!(!o.allows("http://app.example.com"));
        assert!(!o.allows("https://app.example.com.evil.net"));
        assert!(o.allows("http://localhost:5173"));
        assert!(!o.allows("http://localhost"));
        assert!(!o.allows("http://localhost:5173.evil.net"));
        assert!(!o.allows("http://localhost.evil.net:80"));
        assert!(!o.allows("null"));
        assert!(
            CorsOrigins::parse(&DEV_ORIGINS)
                .unwrap()
                .allows("http://127.0.0.1:8080")
        );
        assert!(CorsOrigins::parse::<&str>(&[]).unwrap().is_empty());
        for bad in [
            "*",
            "localhost:3000",
            "ftp://x",
            "https://a.com/path",
            "http://x:port",
            "https://",
        ] {
            assert!(CorsOrigins::parse(&[bad]).is_err(), "{bad} must be refused");
        }
    }
}
