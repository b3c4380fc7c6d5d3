//! Operator actions: terminate, restart and delete a child; restart a subtree whose supervisor
//! gave up without touching anything above it; a restart whose start fails.

mod common;

use common::*;
use verisim_supervision::{
    ChildSpec, ChildState, Restart, Strategy, SupervisorError, SupervisorHandle, SupervisorSpec,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_restarts_a_dead_subtree_without_restarting_anything_above_it() {
    let probe = Probe::default();
    let registry = SupervisorSpec::new("registry", Strategy::OneForAll)
        .intensity(0, MINUTE)
        .child(worker("log", &probe))
        .child(worker("consensus", &probe));
    let node = SupervisorSpec::new("node", Strategy::RestForOne)
        .intensity(10, MINUTE)
        .child(worker("cluster", &probe))
        .child(ChildSpec::supervisor("registry", registry).restart(Restart::Transient))
        .child(worker("proxy", &probe));
    let (node, _join) = SupervisorHandle::start(node).await.unwrap();
    let registry = node.child_supervisor("registry").await.unwrap();
    end_child(
        &registry,
        "consensus",
        How::Fail("term went backwards".into()),
    )
    .await;
    wait_until("registry gave up", || async {
        child(&node, "registry").await.state == ChildState::Failed
    })
    .await;
    let before = ids(&node).await;
    live_settles(&probe, 2).await;
    probe.clear_log();

    node.restart_child("registry").await.unwrap();

    assert_eq!(probe.log(), strings(&["start:log", "start:consensus"]));
    let after = ids(&node).await;
    assert_eq!(after[0], before[0], "cluster untouched");
    assert_eq!(
        after[2], before[2],
        "proxy untouched (no rest_for_one cascade)"
    );
    let registry = child(&node, "registry").await;
    assert_eq!(
        (registry.state, registry.restart_count),
        (ChildState::Running, 1)
    );
    assert!(node.is_alive());
    let again = node.child_supervisor("registry").await.unwrap();
    assert!(all_running(&again).await);
    node.stop().await;
    live_settles(&probe, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_terminate_restart_and_delete() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new("sup", Strategy::OneForOne)
        .child(worker("a", &probe))
        .child(worker("b", &probe));
    let (sup, _join) = SupervisorHandle::start(spec).await.unwrap();

    assert_eq!(
        sup.delete_child("a").await.unwrap_err(),
        SupervisorError::ChildRunning("a".into())
    );
    sup.terminate_child("a").await.unwrap();
    assert_eq!(child(&sup, "a").await.state, ChildState::Stopped);
    sup.restart_child("a").await.unwrap();
    let a = child(&sup, "a").await;
    assert_eq!((a.state, a.restart_count), (ChildState::Running, 1));

    // Restarting a running child stops it first.
    let b_before = child(&sup, "b").await.actor_id;
    sup.restart_child("b").await.unwrap();
    assert_ne!(child(&sup, "b").await.actor_id, b_before);
    live_settles(&probe, 2).await;

    sup.terminate_child("a").await.unwrap();
    sup.delete_child("a").await.unwrap();
    assert_eq!(
        sup.child("a").await.unwrap_err(),
        SupervisorError::NoSuchChild("a".into())
    );
    assert_eq!(
        sup.start_child(worker("b", &probe)).await.unwrap_err(),
        SupervisorError::DuplicateChild("b".into())
    );
    assert_eq!(
        sup.restart_child("nope").await.unwrap_err(),
        SupervisorError::NoSuchChild("nope".into())
    );
    sup.stop().await;
    live_settles(&probe, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_restart_whose_start_fails_leaves_the_child_failed_with_the_reason() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new("sup", Strategy::OneForOne)
        .intensity(10, MINUTE)
        .child(worker("a", &probe))
        .child(worker("b", &probe));
    let (sup, _join) = SupervisorHandle::start(spec).await.unwrap();
    let b_before = child(&sup, "b").await.actor_id;
    probe.refuse("a");

    assert_eq!(
        sup.restart_child("a").await.unwrap_err(),
        SupervisorError::ChildStartFailed {
            child: "a".into(),
            reason: "a refuses to start".into()
        }
    );
    let a = child(&sup, "a").await;
    assert_eq!(a.state, ChildState::Failed);
    assert_eq!(a.actor_id, None);
    assert_eq!(a.restart_count, 0);
    assert_eq!(
        a.last_failure.as_deref(),
        Some("start failed: a refuses to start")
    );
    // Not retried behind the operator's back: a retry would be queued before the reply, so
    // the call above has already seen it.
    assert_eq!(probe.refusals("a"), 1);
    assert_eq!(child(&sup, "b").await.actor_id, b_before, "b untouched");
    assert!(sup.is_alive());
    live_settles(&probe, 1).await;

    probe.accept("a");
    sup.restart_child("a").await.unwrap();
    let a = child(&sup, "a").await;
    assert_eq!((a.state, a.restart_count), (ChildState::Running, 1));
    live_settles(&probe, 2).await;
    sup.stop().await;
    live_settles(&probe, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_childspec_returns_the_spec_by_id_and_it_starts_the_same_child() {
    let probe = Probe::default();
    let (sup, _join) = SupervisorHandle::start(
        SupervisorSpec::new("s", Strategy::OneForOne)
            .child(worker("a", &probe).restart(Restart::Transient)),
    )
    .await
    .unwrap();
    let spec = sup.get_childspec("a").await.unwrap();
    assert_eq!(
        (spec.id.as_str(), spec.restart, spec.significant),
        ("a", Restart::Transient, false)
    );
    assert_eq!(
        sup.get_childspec("nope").await.unwrap_err(),
        SupervisorError::NoSuchChild("nope".into())
    );
    // The copy is a working spec: under a new id it starts another incarnation of the worker.
    let mut copy = spec;
    copy.id = "a2".into();
    sup.start_child(copy).await.unwrap();
    assert_eq!(sup.count_children().await.unwrap().active, 2);
    assert_eq!(probe.log(), strings(&["start:a", "start:a"]));
    sup.stop().await;
    live_settles(&probe, 0).await;
}
