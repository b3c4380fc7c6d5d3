//! The cluster layer as a supervised subtree, in process (one node per test process: nextest runs
//! each test in its own process).

use std::time::{Duration, Instant};

use verisim_cluster::{ClusterConfig, CookieSource, cluster_subtree};
use verisim_supervision::{ChildSpec, ChildState, Strategy, SupervisorHandle, SupervisorSpec};

const DEADLINE: Duration = Duration::from_secs(30);

/// A killed node server is replaced once per kill, in a row, without its subtree giving up: the
/// replacement waits for its predecessor's listening socket instead of failing its bind and
/// burning the subtree's intensity (5 restarts in 10 s) on immediate retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_server_killed_repeatedly_is_replaced_each_time_without_the_subtree_giving_up() {
    let config = ClusterConfig::new(
        "n1",
        "127.0.0.1:0".parse().expect("address"),
        CookieSource::Value("cookie-of-the-supervised-tests".into()),
    );
    let (cluster, handle) = cluster_subtree(config).expect("cluster subtree");
    let listen = handle.listen_addr();
    let top = SupervisorSpec::new("node", Strategy::OneForOne)
        .intensity(100, Duration::from_secs(60))
        .child(ChildSpec::supervisor("cluster", cluster));
    let (top, _join) = SupervisorHandle::start(top).await.expect("tree starts");
    let top = top.with_timeout(DEADLINE);
    let sub = top
        .child_supervisor("cluster")
        .await
        .expect("cluster subtree");

    // Four kills: one under the subtree's intensity of five.
    for round in 1..=4u64 {
        let before = sub.child("server").await.expect("server info");
        let cell = before.cell.expect("the server runs");
        cell.kill();
        let until = Instant::now() + DEADLINE;
        loop {
            let now = sub.child("server").await.expect("server info");
            if now.state == ChildState::Running && now.actor_id != before.actor_id {
                break;
            }
            assert!(
                Instant::now() < until,
                "round {round}: no new server within {DEADLINE:?}: {now:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The replacement listens on the same address.
        let until = Instant::now() + DEADLINE;
        while tokio::net::TcpStream::connect(listen).await.is_err() {
            assert!(
                Instant::now() < until,
                "round {round}: nothing listens on {listen}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let cluster = top.child("cluster").await.expect("cluster info");
        assert_eq!(
            (cluster.state, cluster.restart_count),
            (ChildState::Running, 0),
            "round {round}: the cluster subtree gave up and was restarted: {cluster:?}"
        );
        let server = sub.child("server").await.expect("server info");
        assert_eq!(
            server.restart_count, round,
            "round {round}: one restart per kill, no failed starts: {server:?}"
        );
    }
    top.stop().await;
}
