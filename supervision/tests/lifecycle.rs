//! Ordered start and shutdown, shutdown policies, and start failures that fail the
//! supervisor's own start.

mod common;

use std::time::Duration;

use common::*;
use verisim_supervision::{
    ChildSpec, ChildState, Shutdown, Strategy, SupervisorError, SupervisorHandle, SupervisorSpec,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_start_in_order_and_stop_in_reverse_order() {
    let probe = Probe::default();
    let sub = SupervisorSpec::new("sub", Strategy::OneForOne)
        .child(worker("x", &probe))
        .child(worker("y", &probe));
    let top = SupervisorSpec::new("top", Strategy::OneForOne)
        .child(worker("a", &probe))
        .child(ChildSpec::supervisor("sub", sub))
        .child(worker("b", &probe));
    let (top, join) = SupervisorHandle::start(top).await.unwrap();
    top.stop().await;
    join.await.unwrap();
    assert_eq!(
        probe.log(),
        strings(&[
            "start:a", "start:x", "start:y", "start:b", "stop:b", "stop:y", "stop:x", "stop:a"
        ])
    );
    live_settles(&probe, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_timeout_kills_a_child_that_does_not_stop_and_brutal_kill_skips_post_stop() {
    let probe = Probe::default();
    let top = SupervisorSpec::new("top", Strategy::OneForOne)
        .child(worker("slow", &probe).shutdown(Shutdown::Timeout(Duration::from_millis(50))))
        .child(worker("brute", &probe).shutdown(Shutdown::BrutalKill));
    let (top, _join) = SupervisorHandle::start(top).await.unwrap();
    cell(&top, "slow")
        .await
        .send_message(WorkerMsg::Block(Duration::from_secs(3600)))
        .unwrap();
    // A stop request overtakes queued messages, so wait until the handler is blocked.
    wait_until("slow is blocked", || async {
        probe.log().contains(&"block:slow".to_string())
    })
    .await;
    probe.clear_log();

    top.terminate_child("slow").await.unwrap();
    top.terminate_child("brute").await.unwrap();

    assert_eq!(child(&top, "slow").await.state, ChildState::Stopped);
    assert_eq!(child(&top, "brute").await.state, ChildState::Stopped);
    assert!(
        probe.log().is_empty(),
        "both were killed: {:?}",
        probe.log()
    );
    live_settles(&probe, 0).await;
    top.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_fails_to_start_fails_the_supervisor_start_naming_it() {
    let probe = Probe::default();
    probe.refuse("b");
    let spec = SupervisorSpec::new("top", Strategy::OneForOne)
        .child(worker("a", &probe))
        .child(worker("b", &probe))
        .child(worker("c", &probe));
    let err = SupervisorHandle::start(spec).await.unwrap_err();
    assert_eq!(
        err,
        SupervisorError::ChildStartFailed {
            child: "b".into(),
            reason: "b refuses to start".into()
        }
    );
    assert_eq!(probe.log(), strings(&["start:a", "stop:a"]));
    live_settles(&probe, 0).await;

    // Nested: the error names the path down to the child.
    probe.clear_log();
    probe.refuse("deep");
    let sub = SupervisorSpec::new("sub", Strategy::OneForOne).child(worker("deep", &probe));
    let spec = SupervisorSpec::new("top", Strategy::OneForOne)
        .child(worker("a", &probe))
        .child(ChildSpec::supervisor("sub", sub));
    let err = SupervisorHandle::start(spec).await.unwrap_err().to_string();
    assert!(err.contains("`sub`") && err.contains("`deep`"), "{err}");
    live_settles(&probe, 0).await;
}
