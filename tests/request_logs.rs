//! Whole-system test of structured logs (docs/operations.md, "Logs"): a node started with
//! `VERISIM_LOG_FORMAT=json` writes one JSON object per line; every line logged while serving a
//! request carries that request's id (the client's signed request id, or the caller's
//! `X-Request-Id`), and the id comes back in the `X-Request-Id` response header.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::entities::{entity_cluster_with, hexad, signed_headers};
use support::{Cluster, Options, wait_for};

const LONG: Duration = Duration::from_secs(30);

/// n1's log lines, each parsed as JSON (a line that is not JSON fails the test).
fn json_lines(c: &Cluster) -> Vec<Value> {
    let text = std::fs::read_to_string(&c.node(1).log_path).expect("n1's log");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The `request` span of a log line, if it was logged inside one.
fn request_span(line: &Value) -> Option<&Value> {
    line["spans"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == "request")
}

#[test]
fn every_log_line_of_a_request_names_it_and_the_id_comes_back_in_a_header() {
    let env = |k: &str, v: &str| (1u64, k.to_owned(), v.to_owned());
    let (c, client, _) = entity_cluster_with(
        Options {
            node_env: vec![
                env("VERISIM_LOG_FORMAT", "json"),
                env(
                    "VERISIM_LOG",
                    "info,verisim_node::node::request_log=debug,verisim_node::proxy=debug",
                ),
            ],
            ..Options::default()
        },
        21,
    );
    // An admin call with the caller's id.
    let r = c
        .node(1)
        .request(
            "GET",
            "/admin/status",
            &[("x-request-id", "ops-check-42".into())],
            b"",
        )
        .expect("status");
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.header("x-request-id"), Some("ops-check-42"));
    // Without one, the node makes one up, different each time.
    let a = c.node(1).get("/admin/status").expect("status");
    let b = c.node(1).get("/admin/status").expect("status");
    let (a, b) = (a.header("x-request-id"), b.header("x-request-id"));
    assert!(a.is_some_and(|a| a.len() == 16) && a != b, "{a:?} {b:?}");

    // A signed registration: its request id is the client's signed one.
    let req = hexad("logged-1", 7);
    let body = serde_json::to_vec(&req).expect("body");
    let headers = signed_headers(&client, "POST", "/v1/entities", &body, "reg-logged-1");
    let r = c
        .node(1)
        .request("POST", "/v1/entities", &headers, &body)
        .expect("register");
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.header("x-request-id"), Some("reg-logged-1"));

    let lines = wait_for("the requests' log lines", LONG, || {
        let lines = json_lines(&c);
        let served = |id: &str| {
            lines.iter().any(|l| {
                l["fields"]["message"] == "request served"
                    && request_span(l).is_some_and(|s| s["request_id"] == id)
            })
        };
        (served("ops-check-42") && served("reg-logged-1")).then_some(lines)
    });
    // Every line logged inside the registration's span names it, the client and the entity.
    let inside: Vec<&Value> = lines
        .iter()
        .filter(|l| request_span(l).is_some_and(|s| s["request_id"] == "reg-logged-1"))
        .collect();
    assert!(inside.len() >= 2, "{inside:?}");
    let served = inside
        .iter()
        .find(|l| l["fields"]["message"] == "request served")
        .expect("served line");
    let span = request_span(served).expect("span");
    assert_eq!(span["client"], "alice", "{served}");
    assert_eq!(span["entity"], "logged-1", "{served}");
    assert_eq!(span["route"], "/v1/entities", "{served}");
    assert_eq!(served["fields"]["status"], 201, "{served}");
    assert!(
        inside
            .iter()
            .any(|l| l["fields"]["message"] == "entity written"),
        "the proxy's own line carries the request too: {inside:?}"
    );
}
