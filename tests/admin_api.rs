//! Whole-system tests of the operator side of the admin API: restarting supervision subtrees by
//! path on a running node, `/readyz`, `/metrics` and the admin bearer token.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::{Cluster, Node, Options, restart_count, wait_for};

const LONG: Duration = Duration::from_secs(30);

fn restarts(node: &Node, child: &str) -> u64 {
    let r = node.get("/admin/tree").expect("tree request");
    restart_count(&r.body, child).unwrap_or_else(|| panic!("no `{child}` in the tree: {r:?}"))
}

fn wait_ready(node: &Node) {
    wait_for(&format!("n{} to be ready", node.id), LONG, || {
        node.get("/readyz").ok().filter(|r| r.ok()).map(|_| ())
    });
}

/// Parses the OpenMetrics text format line by line: every sample is `name{labels} value` (or
/// `name value`) with a finite number; `# HELP`, `# TYPE` and `# UNIT` are the only other lines,
/// and `# EOF` the last.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    assert!(text.ends_with("# EOF\n"), "no # EOF at the end: {text}");
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if ["# HELP ", "# TYPE ", "# UNIT "]
            .iter()
            .any(|p| line.starts_with(p))
            || line == "# EOF"
        {
            continue;
        }
        let (key, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample line: {line:?}"));
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a number in {line:?}"));
        assert!(v.is_finite(), "{line}");
        let (name, labels) = match key.split_once('{') {
            Some((n, rest)) => (n, Some(rest)),
            None => (key, None),
        };
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad metric name in {line:?}"
        );
        if let Some(l) = labels {
            assert!(
                l.ends_with('}') && l.contains("=\""),
                "bad labels in {line:?}"
            );
        }
        out.insert(key.to_owned(), v);
    }
    out
}

#[test]
fn restarting_stores_and_registry_by_path_keeps_the_node_committing() {
    let c = Cluster::start(Options::default());
    for i in 0..5 {
        c.put(&format!("before{i}"), "a");
    }
    let (leader, _) = c.wait_leader(LONG);
    let n = c.node(leader);
    wait_ready(n);

    // Unknown paths: a stable code, nothing restarted.
    for bad in ["/admin/restart/nosuch", "/admin/restart/stores/nosuch"] {
        let r = n.post(bad, None).expect("restart request");
        assert_eq!(r.status, 404, "{bad}: {r:?}");
        assert_eq!(r.code(), Some("unknown_path"), "{bad}: {r:?}");
    }

    for path in ["stores", "registry"] {
        let before = restarts(n, path);
        let r = n
            .post(&format!("/admin/restart/{path}"), None)
            .expect("restart request");
        assert!(r.ok(), "restart {path} refused: {r:?}");
        assert_eq!(r.body["restarted"], path, "{r:?}");
        assert!(
            restarts(n, path) > before,
            "{path}'s restart count did not grow"
        );
        wait_ready(n);
        // The node keeps committing, through itself.
        let key = format!("after-{path}");
        wait_for(&format!("a write through n{leader}"), LONG, || {
            match c.try_put(leader, &key, "b") {
                support::WriteOutcome::Ok { .. } => Some(()),
                _ => None,
            }
        });
        assert_eq!(c.get(&key).as_deref(), Some("b"));
    }
    assert_eq!(c.get("before4").as_deref(), Some("a"));

    // A nested child by its path.
    let r = n.post("/admin/restart/registry/snapshotter", None).unwrap();
    assert!(r.ok(), "restart registry/snapshotter refused: {r:?}");

    // /metrics parses and carries sane Raft values.
    let status = n.status().expect("status");
    let r = n.get("/metrics").expect("metrics request");
    assert!(r.ok(), "{r:?}");
    let text = r.body.as_str().expect("a text body");
    let m = parse_metrics(text);
    let commit = m["verisim_raft_commit_index"];
    let applied = m["verisim_raft_applied_index"];
    assert!(m["verisim_consensus_up"] == 1.0, "{text}");
    assert!(m["verisim_raft_term"] >= 1.0, "{text}");
    assert!(commit >= 7.0, "7 writes committed: {text}");
    assert!(applied <= commit && applied >= 1.0, "{text}");
    assert!(m["verisim_raft_snapshot_index"] <= applied, "{text}");
    assert!(m["verisim_raft_log_fsyncs_total"] >= 1.0, "{text}");
    assert!(m["verisim_raft_log_entries"] >= 1.0, "{text}");
    let roles: f64 = m
        .iter()
        .filter(|(k, _)| k.starts_with("verisim_raft_role{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(roles, 1.0, "exactly one role: {text}");
    assert!(
        m[r#"verisim_supervision_restarts_total{child="stores"}"#] >= 1.0,
        "{text}"
    );
    assert!(
        m[r#"verisim_http_requests_total{route="/admin/status",code="200"}"#] >= 1.0,
        "{text}"
    );
    assert!(
        m[r#"verisim_http_request_duration_seconds_count{route="/admin/status"}"#] >= 1.0,
        "{text}"
    );
    // Histograms observed where the work happens, and the process's own series.
    assert!(m["verisim_raft_log_fsync_seconds_count"] >= 1.0, "{text}");
    assert!(m["verisim_raft_apply_seconds_count"] >= 1.0, "{text}");
    assert!(m["process_resident_memory_bytes"] > 0.0, "{text}");
    assert!(m["process_open_fds"] >= 3.0, "{text}");
    assert!(
        r.headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("application/openmetrics-text")),
        "{:?}",
        r.headers
    );
    assert!(status["consensus"]["term"].as_u64().unwrap() >= 1);

    // The leader of the writes above sent each append to both followers from one encoding of it
    // (`consensus::wire`): across the nodes, fewer bodies were encoded than messages sent.
    let (mut sent, mut encoded) = (0.0, 0.0);
    for node in &c.nodes {
        let r = node.get("/metrics").expect("metrics request");
        let m = parse_metrics(r.body.as_str().expect("a text body"));
        sent += m["verisim_raft_messages_sent_total"];
        encoded += m["verisim_raft_bodies_encoded_total"];
    }
    assert!(
        sent > 0.0 && encoded < sent,
        "{encoded} bodies encoded for {sent} messages"
    );
}

#[test]
fn an_admin_token_guards_admin_routes_but_not_health_ready_or_metrics() {
    let opts = Options {
        nodes: 1,
        config: Some("[admin]\ntoken = \"s3cret-admin-token\"\n".into()),
        ..Options::default()
    };
    let c = Cluster::new(opts);
    let n = c.node(1);
    assert!(n.get("/healthz").unwrap().ok());
    wait_ready(n);
    assert!(n.get("/metrics").unwrap().ok());

    let none = n.get("/admin/status").unwrap();
    assert_eq!(
        (none.status, none.code()),
        (401, Some("missing_auth")),
        "{none:?}"
    );
    let wrong = n
        .request(
            "GET",
            "/admin/status",
            &[("authorization", "Bearer s3cret-admin-tokeX".into())],
            b"",
        )
        .unwrap();
    assert_eq!(
        (wrong.status, wrong.code()),
        (403, Some("forbidden")),
        "{wrong:?}"
    );
    let right = n
        .request(
            "GET",
            "/admin/status",
            &[("authorization", "Bearer s3cret-admin-token".into())],
            b"",
        )
        .unwrap();
    assert!(right.ok(), "{right:?}");
    assert_eq!(right.body["consensus"]["id"], 1);
    let restart = n.post("/admin/restart/stores", None).unwrap();
    assert_eq!(restart.status, 401, "{restart:?}");
}
