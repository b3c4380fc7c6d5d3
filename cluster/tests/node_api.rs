//! In-process checks of `start_node` (one node per test process: nextest runs each test in its
//! own process, and each test here starts at most one node).

use std::time::Duration;

use verisim_cluster::{ClusterConfig, ClusterError, CookieSource, PeerEvent, start_node};

fn config(name: &str) -> ClusterConfig {
    ClusterConfig::new(
        name,
        "127.0.0.1:0".parse().unwrap(),
        CookieSource::Value("cookie-of-the-node-api-tests".into()),
    )
}

#[tokio::test]
async fn bad_configurations_fail_with_typed_errors() {
    let mut c = config("a@b");
    assert!(matches!(
        start_node(c.clone()).await,
        Err(ClusterError::Config(_))
    ));
    c.node_name = "n1".into();
    c.cookie = CookieSource::Value(String::new());
    assert!(matches!(
        start_node(c.clone()).await,
        Err(ClusterError::Config(_))
    ));
    c.cookie = CookieSource::Value("weak".into());
    assert!(matches!(
        start_node(c.clone()).await,
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
    let err = start_node(c).await.unwrap_err();
    assert!(err.to_string().contains("/nonexistent/cert.pem"), "{err}");
}

#[tokio::test]
async fn a_taken_port_is_an_error_not_a_panic() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut c = config("n1");
    c.listen = taken.local_addr().unwrap();
    assert!(matches!(
        start_node(c).await,
        Err(ClusterError::Spawn { .. })
    ));
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
    let node = start_node(c).await.unwrap();
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
    node.shutdown().await;
}
