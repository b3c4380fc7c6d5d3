//! In-process checks of starting a node: `cluster_subtree` and its tree (one node per test
//! process: nextest runs each test in its own process, and each test here starts at most one
//! node).

use std::time::Duration;

use verisim_cluster::{
    ClusterConfig, ClusterError, ClusterHandle, CookieSource, PeerEvent, cluster_subtree,
};
use verisim_supervision::{SupervisorError, SupervisorHandle};

fn config(name: &str) -> ClusterConfig {
    ClusterConfig::new(
        name,
        "127.0.0.1:0".parse().unwrap(),
        CookieSource::Value("cookie-of-the-node-api-tests".into()),
    )
}

/// Starts the `cluster` subtree as the root of a tree, as the probe does.
async fn start(c: ClusterConfig) -> Result<(SupervisorHandle, ClusterHandle), String> {
    let (spec, handle) = cluster_subtree(c).map_err(|e| e.to_string())?;
    let (tree, _) = SupervisorHandle::start(spec)
        .await
        .map_err(|e| e.to_string())?;
    Ok((tree, handle))
}

#[tokio::test]
async fn bad_configurations_fail_with_typed_errors() {
    let mut c = config("a@b");
    assert!(matches!(
        cluster_subtree(c.clone()),
        Err(ClusterError::Config(_))
    ));
    c.node_name = "n1".into();
    c.cookie = CookieSource::Value(String::new());
    assert!(matches!(
        cluster_subtree(c.clone()),
        Err(ClusterError::Config(_))
    ));
    c.cookie = CookieSource::Value("weak".into());
    assert!(matches!(
        cluster_subtree(c.clone()),
        Err(ClusterError::Config(
            verisim_cluster::ConfigError::WeakCookie(_)
        ))
    ));
    c.cookie = CookieSource::Value("cookie-of-the-node-api-tests".into());
    c.tls = Some(verisim_cluster::TlsConfig {
        cert_chain: "/nonexistent/cert.pem".into(),
        private_key: "/nonexistent/key.pem".into(),
        ca_certs: "/nonexistent/ca.pem".into(),
        server_name: "localhost".into(),
    });
    let err = cluster_subtree(c).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
}

#[tokio::test]
async fn a_taken_port_is_an_error_not_a_panic() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = config("n1");
    c.listen = taken.local_addr().unwrap();
    let (spec, _handle) = cluster_subtree(c).expect("the configuration is fine");
    // The first start does not wait for the port: the server fails to start, and so the tree.
    let err = SupervisorHandle::start(spec).await.map(|_| ()).unwrap_err();
    assert!(
        matches!(&err, SupervisorError::ChildStartFailed { child, .. } if child == "server"),
        "{err}"
    );
}

#[tokio::test]
async fn a_lone_node_starts_reports_dial_failures_and_shuts_down() {
    // A seed nobody listens on: the connector keeps failing and says so, with backoff.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut c = config("n1");
    c.seeds = vec![dead.to_string()];
    let (tree, node) = start(c).await.unwrap();
    assert_ne!(node.listen_addr().port(), 0);
    assert_eq!(node.node_name(), "n1");
    let mut events = node.subscribe().unwrap();
    for _ in 0..2 {
        let ev = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("a dial failure within the deadline")
            .expect("event channel open");
        assert!(
            matches!(&ev, PeerEvent::DialFailed { addr, .. } if *addr == dead.to_string()),
            "{ev:?}"
        );
    }
    assert!(node.up_peers().await.unwrap().is_empty());
    assert!(
        node.members_by_node("verisim.cluster", "heartbeat")
            .contains_key("n1")
    );
    tree.stop().await;
    // Stopped with its tree: the handle finds no connector any more.
    assert!(matches!(node.subscribe(), Err(ClusterError::Stopped)));
}
