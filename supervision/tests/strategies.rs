//! Strategies and restart types, checked against OTP's `supervisor` rules.

mod common;

use std::time::Duration;

use common::*;
use verisim_supervision::{
    ChildState, Restart, Strategy, SupervisorError, SupervisorHandle, SupervisorSpec,
};

fn three(strategy: Strategy, probe: &Probe) -> SupervisorSpec {
    SupervisorSpec::new("sup", strategy)
        .intensity(10, Duration::from_secs(60))
        .child(worker("a", probe))
        .child(worker("b", probe))
        .child(worker("c", probe))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_for_one_restarts_only_the_failed_child() {
    let probe = Probe::default();
    let (sup, _join) = SupervisorHandle::start(three(Strategy::OneForOne, &probe))
        .await
        .unwrap();
    let before = ids(&sup).await;
    probe.clear_log();

    end_child(&sup, "b", How::Panic("b broke".into())).await;

    let after = ids(&sup).await;
    assert_eq!(after[0], before[0]);
    assert_ne!(after[1], before[1]);
    assert_eq!(after[2], before[2]);
    assert_eq!(probe.log(), strings(&["start:b"]));
    let b = child(&sup, "b").await;
    assert_eq!(b.state, ChildState::Running);
    assert_eq!(b.restart_count, 1);
    assert!(b.last_failure.unwrap().contains("b broke"));
    assert_eq!(child(&sup, "a").await.restart_count, 0);
    sup.stop().await;
    live_settles(&probe, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_for_all_stops_the_others_in_reverse_and_restarts_all_in_order() {
    let probe = Probe::default();
    let (sup, _join) = SupervisorHandle::start(three(Strategy::OneForAll, &probe))
        .await
        .unwrap();
    let before = ids(&sup).await;
    probe.clear_log();

    end_child(&sup, "b", How::Fail("b returned Err".into())).await;

    assert_eq!(
        probe.log(),
        strings(&["stop:c", "stop:a", "start:a", "start:b", "start:c"])
    );
    let after = ids(&sup).await;
    for (x, y) in before.iter().zip(&after) {
        assert_ne!(x, y);
    }
    for c in sup.which_children().await.unwrap() {
        assert_eq!(c.restart_count, 1, "{}", c.id);
        assert_eq!(c.state, ChildState::Running);
    }
    sup.stop().await;
    live_settles(&probe, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_for_one_restarts_the_failed_child_and_those_started_after_it() {
    let probe = Probe::default();
    let (sup, _join) = SupervisorHandle::start(three(Strategy::RestForOne, &probe))
        .await
        .unwrap();
    let before = ids(&sup).await;
    probe.clear_log();

    end_child(&sup, "b", How::Kill).await;

    assert_eq!(probe.log(), strings(&["stop:c", "start:b", "start:c"]));
    let after = ids(&sup).await;
    assert_eq!(after[0], before[0]);
    assert_ne!(after[1], before[1]);
    assert_ne!(after[2], before[2]);
    assert_eq!(
        child(&sup, "b").await.last_failure.as_deref(),
        Some("killed")
    );
    sup.stop().await;
    live_settles(&probe, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_child_restarts_after_normal_and_abnormal_exits() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new("sup", Strategy::OneForOne)
        .intensity(10, Duration::from_secs(60))
        .child(worker("p", &probe).restart(Restart::Permanent));
    let (sup, _join) = SupervisorHandle::start(spec).await.unwrap();

    end_child(&sup, "p", How::Stop(None)).await;
    let p = child(&sup, "p").await;
    assert_eq!((p.state, p.restart_count), (ChildState::Running, 1));
    assert_eq!(p.last_failure, None, "a normal exit is not a failure");

    end_child(&sup, "p", How::Panic("oops".into())).await;
    let p = child(&sup, "p").await;
    assert_eq!((p.state, p.restart_count), (ChildState::Running, 2));
    sup.stop().await;
    live_settles(&probe, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_child_restarts_only_after_an_abnormal_exit() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new("sup", Strategy::OneForOne)
        .intensity(10, Duration::from_secs(60))
        .child(worker("t", &probe).restart(Restart::Transient))
        .child(worker("u", &probe).restart(Restart::Transient));
    let (sup, _join) = SupervisorHandle::start(spec).await.unwrap();

    end_child(&sup, "t", How::Fail("bad".into())).await;
    assert_eq!(child(&sup, "t").await.restart_count, 1);
    // Any stop reason other than normal/shutdown is abnormal, as in OTP.
    end_child(&sup, "t", How::Stop(Some("disk gone".into()))).await;
    let t = child(&sup, "t").await;
    assert_eq!((t.state, t.restart_count), (ChildState::Running, 2));
    assert_eq!(t.last_failure.as_deref(), Some("disk gone"));

    end_child(&sup, "t", How::Stop(None)).await;
    let t = child(&sup, "t").await;
    assert_eq!((t.state, t.restart_count), (ChildState::Stopped, 2));
    assert!(t.actor_id.is_none());

    end_child(&sup, "u", How::Stop(Some("shutdown: done".into()))).await;
    assert_eq!(child(&sup, "u").await.state, ChildState::Stopped);
    live_settles(&probe, 0).await;
    sup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_children_are_never_restarted_and_are_removed() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new("sup", Strategy::OneForOne)
        .intensity(10, Duration::from_secs(60))
        .child(worker("x", &probe).restart(Restart::Temporary))
        .child(worker("y", &probe).restart(Restart::Temporary))
        .child(worker("z", &probe));
    let (sup, _join) = SupervisorHandle::start(spec).await.unwrap();

    end_child(&sup, "x", How::Panic("x broke".into())).await;
    end_child(&sup, "y", How::Stop(None)).await;

    let left: Vec<String> = sup
        .which_children()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(left, strings(&["z"]));
    live_settles(&probe, 1).await;
    sup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_for_all_removes_temporary_siblings_and_starts_stopped_ones() {
    // OTP's restart_multiple_children: temporary siblings are terminated and removed; every
    // other sibling, even one that had stopped, is started again.
    let probe = Probe::default();
    let spec = SupervisorSpec::new("sup", Strategy::OneForAll)
        .intensity(10, Duration::from_secs(60))
        .child(worker("tmp", &probe).restart(Restart::Temporary))
        .child(worker("tr", &probe).restart(Restart::Transient))
        .child(worker("p", &probe));
    let (sup, _join) = SupervisorHandle::start(spec).await.unwrap();
    end_child(&sup, "tr", How::Stop(None)).await;
    assert_eq!(child(&sup, "tr").await.state, ChildState::Stopped);

    end_child(&sup, "p", How::Kill).await;

    let children = sup.which_children().await.unwrap();
    let got: Vec<(String, ChildState, u64)> = children
        .into_iter()
        .map(|c| (c.id, c.state, c.restart_count))
        .collect();
    assert_eq!(
        got,
        vec![
            ("tr".to_string(), ChildState::Running, 1),
            ("p".to_string(), ChildState::Running, 1)
        ]
    );
    sup.stop().await;
    live_settles(&probe, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_handler_is_reported_with_its_message() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new("sup", Strategy::OneForOne)
        .intensity(10, Duration::from_secs(60))
        .child(worker("w", &probe));
    let (sup, _join) = SupervisorHandle::start(spec).await.unwrap();
    end_child(&sup, "w", How::Panic("disk on fire: sector 42".into())).await;
    let w = child(&sup, "w").await;
    assert_eq!(w.state, ChildState::Running);
    assert!(
        w.last_failure
            .as_deref()
            .unwrap_or("")
            .contains("disk on fire: sector 42"),
        "{:?}",
        w.last_failure
    );
    sup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_child_ids_are_refused() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new("sup", Strategy::OneForOne)
        .child(worker("a", &probe))
        .child(worker("a", &probe));
    let err = SupervisorHandle::start(spec).await.unwrap_err();
    assert_eq!(err, SupervisorError::DuplicateChild("a".into()));
    wait_until("the first `a` stopped", || async { probe.live() == 0 }).await;
}
