//! The admin guard over the route table, on a real loopback listener: the table's routes with
//! stand-in handlers, so the guard is all that stands between a request and "reached".

use std::sync::Arc;

use axum::Router;
use axum::middleware;
use axum::routing::{get, on};

use super::{ADMIN_PREFIX, guard, is_admin_path, routes};

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// Serves the table's routes (and two open ones) behind the guard; answers the base URL.
async fn serve(token: Option<&str>) -> String {
    let mut app = Router::new()
        .route("/healthz", get(|| async { "reached" }))
        .route("/v1/entities/{id}", get(|| async { "reached" }));
    for r in routes() {
        app = app.route(r.path, on(r.verb.filter(), || async { "reached" }));
    }
    let app = app.layer(middleware::from_fn_with_state(
        token.map(Arc::<str>::from),
        guard,
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// `(status, code or body)` of one request.
async fn send(base: &str, method: &str, path: &str, auth: Option<&str>) -> (u16, String) {
    let (base, method, path) = (base.to_owned(), method.to_owned(), path.to_owned());
    let auth = auth.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut req = ureq::http::Request::builder()
            .method(method.as_str())
            .uri(format!("{base}{path}"));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let mut resp = agent.run(req.body(Vec::new()).unwrap()).unwrap();
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        let code = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["code"].as_str().map(str::to_owned))
            .unwrap_or(text);
        (status, code)
    })
    .await
    .unwrap()
}

#[test]
fn every_table_route_is_an_admin_path_listed_once() {
    let table = routes();
    assert!(table.iter().any(|r| r.path == "/admin/clients"));
    assert!(
        table
            .iter()
            .any(|r| r.path == "/admin/backup" && r.verb == super::Verb::Get),
        "the backup stream is an admin route, behind the guard"
    );
    for (i, r) in table.iter().enumerate() {
        assert!(
            r.path.starts_with(ADMIN_PREFIX) && is_admin_path(r.path),
            "{r:?}"
        );
        assert!(!table[..i].contains(r), "{r:?} twice");
        assert!(!r.path_with("x").contains('{'), "{r:?}");
    }
    let restart = table.iter().find(|r| r.path.contains("{*path}")).unwrap();
    assert_eq!(restart.path_with("x"), "/admin/restart/x");
}

#[test]
fn admin_paths_are_the_prefix_and_below_only() {
    for p in [
        "/admin",
        "/admin/",
        "/admin/status",
        "/admin/clients/dev/rotate",
    ] {
        assert!(is_admin_path(p), "{p}");
    }
    for p in [
        "/administrator",
        "/adminx/status",
        "/v1/admin/status",
        "/healthz",
        "/",
    ] {
        assert!(!is_admin_path(p), "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_every_admin_route_wants_it_and_open_routes_stay_open() {
    let base = serve(Some(TOKEN)).await;
    let bearer = format!("Bearer {TOKEN}");
    let wrong = format!("Bearer {}", TOKEN.replace('0', "1"));
    let lower = format!("bearer {TOKEN}");
    for r in routes() {
        let (m, p) = (r.verb.as_str(), r.path_with("x"));
        let cases = [
            (None, 401, "missing_auth"),
            (Some("Basic abc"), 401, "missing_auth"),
            (Some(TOKEN), 401, "missing_auth"),
            (Some(wrong.as_str()), 403, "forbidden"),
            (Some("Bearer "), 401, "missing_auth"),
            (Some(bearer.as_str()), 200, "reached"),
            (Some(lower.as_str()), 200, "reached"),
        ];
        for (auth, status, code) in cases {
            assert_eq!(
                send(&base, m, &p, auth).await,
                (status, code.to_owned()),
                "{m} {p} with {auth:?}"
            );
        }
    }
    // Paths no route serves are guarded too: nothing tells an outsider which admin routes exist.
    for p in ["/admin", "/admin/nosuch", "/admin/clients/x/nosuch"] {
        assert_eq!(
            send(&base, "GET", p, None).await,
            (401, "missing_auth".into()),
            "{p}"
        );
    }
    for p in ["/healthz", "/v1/entities/x"] {
        assert_eq!(
            send(&base, "GET", p, None).await,
            (200, "reached".into()),
            "{p}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_admin_routes_are_open() {
    let base = serve(None).await;
    for r in routes() {
        let (m, p) = (r.verb.as_str(), r.path_with("x"));
        assert_eq!(
            send(&base, m, &p, None).await,
            (200, "reached".into()),
            "{m} {p}"
        );
    }
}
