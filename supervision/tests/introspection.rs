//! Introspection: the whole tree as a serde value, and a tree walk bounded by the handle's
//! timeout.

mod common;

use std::time::Duration;

use common::*;
use verisim_supervision::{
    ChildKind, ChildSpec, ChildState, Shutdown, Strategy, SupervisorError, SupervisorHandle,
    SupervisorSpec, TreeNode,
};

/// The node tree from the product brief.
fn node_tree(probe: &Probe) -> SupervisorSpec {
    let registry = SupervisorSpec::new("registry", Strategy::OneForAll)
        .intensity(3, MINUTE)
        .child(worker("log_store", probe))
        .child(worker("consensus", probe))
        .child(worker("snapshotter", probe));
    let mut stores = SupervisorSpec::new("stores", Strategy::OneForOne).intensity(10, MINUTE);
    for s in ["graph", "vector", "tensor", "semantic"] {
        stores = stores.child(worker(s, probe));
    }
    SupervisorSpec::new("node", Strategy::RestForOne)
        .intensity(10, MINUTE)
        .child(worker("cluster", probe))
        .child(ChildSpec::supervisor("registry", registry))
        .child(ChildSpec::supervisor("stores", stores))
        .child(worker("drift", probe))
        .child(worker("proxy", probe))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_tree_is_a_serde_value() {
    let probe = Probe::default();
    let (node, _join) = SupervisorHandle::start(node_tree(&probe)).await.unwrap();
    let stores = node.child_supervisor("stores").await.unwrap();
    end_child(&stores, "vector", How::Panic("index corrupt".into())).await;

    let tree = node.tree().await.unwrap();
    let json = serde_json::to_value(&tree).unwrap();
    println!("{}", serde_json::to_string_pretty(&json).unwrap());
    assert_eq!(json["name"], "node");
    assert_eq!(json["strategy"], "rest_for_one");
    let kids = json["children"].as_array().unwrap();
    let names: Vec<&str> = kids.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(names, ["cluster", "registry", "stores", "drift", "proxy"]);
    assert_eq!(kids[1]["kind"], "supervisor");
    assert_eq!(kids[1]["subtree"]["strategy"], "one_for_all");
    assert_eq!(kids[1]["subtree"]["children"].as_array().unwrap().len(), 3);
    let vector = &kids[2]["subtree"]["children"][1];
    assert_eq!(vector["id"], "vector");
    assert_eq!(vector["state"], "running");
    assert_eq!(vector["restart_count"], 1);
    assert!(
        vector["last_failure"]
            .as_str()
            .unwrap()
            .contains("index corrupt")
    );
    assert!(kids[0].get("subtree").is_none());

    let back: TreeNode = serde_json::from_value(json).unwrap();
    assert_eq!(back.children.len(), 5);
    assert_eq!(back.children[2].info.kind, ChildKind::Supervisor);
    node.stop().await;
    live_settles(&probe, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_with_a_timeout_fails_in_time_when_a_nested_supervisor_is_busy() {
    let probe = Probe::default();
    let sub = SupervisorSpec::new("sub", Strategy::OneForOne)
        .child(worker("stuck", &probe).shutdown(Shutdown::Infinity));
    let top = SupervisorSpec::new("top", Strategy::OneForOne)
        .child(worker("a", &probe))
        .child(ChildSpec::supervisor("sub", sub));
    let (top, _join) = SupervisorHandle::start(top).await.unwrap();
    let sub = top.child_supervisor("sub").await.unwrap();
    let stuck = cell(&sub, "stuck").await;

    // Make `sub` busy: its terminate_child waits, with no time limit, for a child whose
    // handler is blocked for an hour.
    stuck
        .send_message(WorkerMsg::Block(Duration::from_secs(3600)))
        .unwrap();
    wait_until("stuck is blocked", || async {
        probe.log().contains(&"block:stuck".to_string())
    })
    .await;
    let terminate = tokio::spawn({
        let sub = sub.clone();
        async move { sub.terminate_child("stuck").await }
    });
    wait_until("sub is busy", || async {
        sub.clone()
            .with_timeout(Duration::from_millis(50))
            .info()
            .await
            .is_err()
    })
    .await;

    // `top` answers at once; the walk must not wait for `sub` longer than the timeout.
    let impatient = top.clone().with_timeout(Duration::from_millis(200));
    let err = tokio::time::timeout(DEADLINE, impatient.tree())
        .await
        .expect("tree() returns within the deadline")
        .expect_err("a nested supervisor that does not answer fails the walk");
    match &err {
        SupervisorError::Unavailable(why) => {
            assert!(why.contains("`sub`") && why.contains("timed out"), "{why}")
        }
        other => panic!("unexpected error {other:?}"),
    }

    // Unblock: the kill ends the shutdown `sub` waits for, and the walk works again.
    stuck.kill();
    tokio::time::timeout(DEADLINE, terminate)
        .await
        .expect("terminate_child returns once stuck is gone")
        .unwrap()
        .unwrap();
    let tree = top
        .clone()
        .with_timeout(DEADLINE)
        .tree()
        .await
        .expect("sub answers again");
    let sub_tree = tree.children[1].subtree.as_ref().expect("sub's subtree");
    assert_eq!(sub_tree.children[0].info.state, ChildState::Stopped);
    top.stop().await;
    live_settles(&probe, 0).await;
}
