//! Restart intensity: giving up stops the children in reverse order, escalates to the parent
//! (transient and permanent child supervisors), and counts restarts whose start fails.

mod common;

use common::*;
use verisim_supervision::{
    ChildSpec, ChildState, GAVE_UP_REASON, Restart, Strategy, SupervisorHandle, SupervisorSpec,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intensity_exceeded_escalates_two_levels_up() {
    let probe = Probe::default();
    let leaf = SupervisorSpec::new("leaf", Strategy::OneForOne)
        .intensity(1, MINUTE)
        .child(worker("w", &probe))
        .child(worker("leaf-peer", &probe));
    let mid = SupervisorSpec::new("mid", Strategy::OneForOne)
        .intensity(0, MINUTE)
        .child(worker("mid-peer", &probe))
        .child(ChildSpec::supervisor("leaf", leaf));
    let top = SupervisorSpec::new("top", Strategy::OneForOne)
        .intensity(0, MINUTE)
        .child(worker("top-peer", &probe))
        .child(ChildSpec::supervisor("mid", mid));
    let (top, join) = SupervisorHandle::start(top).await.unwrap();
    let leaf = top
        .child_supervisor("mid")
        .await
        .unwrap()
        .child_supervisor("leaf")
        .await
        .unwrap();
    live_settles(&probe, 4).await;

    // One restart is allowed; the second within the period exceeds leaf's intensity.
    end_child(&leaf, "w", How::Kill).await;
    assert_eq!(child(&leaf, "w").await.restart_count, 1);
    end_child(&leaf, "w", How::Kill).await;

    // leaf gives up -> mid (intensity 0) cannot restart it and gives up -> top gives up.
    tokio::time::timeout(DEADLINE, join)
        .await
        .expect("top exits")
        .unwrap();
    assert!(!top.is_alive());
    wait_until("every worker stopped", || async { probe.live() == 0 }).await;
    // Peers were shut down, not killed: their post_stop ran, leaf's before mid's before top's.
    let log = probe.log();
    let pos = |e: &str| {
        log.iter()
            .position(|x| x == e)
            .unwrap_or_else(|| panic!("{e} in {log:?}"))
    };
    assert!(pos("stop:leaf-peer") < pos("stop:mid-peer"));
    assert!(pos("stop:mid-peer") < pos("stop:top-peer"));
}

fn gives_up_at_once(name: &str, probe: &Probe) -> SupervisorSpec {
    SupervisorSpec::new(name, Strategy::OneForOne)
        .intensity(0, MINUTE)
        .child(worker(&format!("{name}-w"), probe))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_child_supervisor_that_gave_up_stays_down_a_permanent_one_is_restarted() {
    let probe = Probe::default();
    let top = SupervisorSpec::new("top", Strategy::OneForOne)
        .intensity(5, MINUTE)
        .child(
            ChildSpec::supervisor("t", gives_up_at_once("t", &probe)).restart(Restart::Transient),
        )
        .child(ChildSpec::supervisor("p", gives_up_at_once("p", &probe)));
    let (top, _join) = SupervisorHandle::start(top).await.unwrap();

    let t = top.child_supervisor("t").await.unwrap();
    end_child(&t, "t-w", How::Panic("t-w broke".into())).await;
    wait_until("t is marked failed", || async {
        child(&top, "t").await.state == ChildState::Failed
    })
    .await;
    let t_info = child(&top, "t").await;
    assert_eq!(t_info.restart_count, 0);
    assert_eq!(t_info.last_failure.as_deref(), Some(GAVE_UP_REASON));

    let p_before = child(&top, "p").await.actor_id;
    let p = top.child_supervisor("p").await.unwrap();
    end_child(&p, "p-w", How::Panic("p-w broke".into())).await;
    wait_until("p is restarted", || async {
        child(&top, "p").await.restart_count == 1
    })
    .await;
    let p_after = child(&top, "p").await;
    assert_eq!(p_after.state, ChildState::Running);
    assert_ne!(p_after.actor_id, p_before);
    assert!(top.is_alive());
    live_settles(&probe, 1).await;
    top.stop().await;
    live_settles(&probe, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn giving_up_stops_the_remaining_children_in_reverse_order_then_the_supervisor_exits() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new("top", Strategy::OneForOne)
        .intensity(0, MINUTE)
        .child(worker("a", &probe))
        .child(worker("b", &probe))
        .child(worker("c", &probe))
        .child(worker("d", &probe));
    let (sup, join) = SupervisorHandle::start(spec).await.unwrap();
    probe.clear_log();

    // Killed, so `b` itself logs no stop; the others are shut down and their post_stop logs.
    end_child(&sup, "b", How::Kill).await;

    tokio::time::timeout(DEADLINE, join)
        .await
        .expect("the supervisor exits after giving up")
        .unwrap();
    assert!(!sup.is_alive());
    // Children started after `b` stop before the ones started before it: last started first.
    assert_eq!(probe.log(), strings(&["stop:d", "stop:c", "stop:a"]));
    live_settles(&probe, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_whose_start_keeps_failing_is_retried_until_the_intensity_gives_up() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new("top", Strategy::OneForOne)
        .intensity(3, MINUTE)
        .child(worker("w", &probe))
        .child(worker("peer", &probe));
    let (sup, join) = SupervisorHandle::start(spec).await.unwrap();
    probe.refuse("w");
    end_child(&sup, "w", How::Kill).await;
    tokio::time::timeout(DEADLINE, join)
        .await
        .expect("supervisor gives up")
        .unwrap();
    // The exit counts as restart 1 and each retry as one more (OTP's try_again_restart): three
    // refused starts fit in an intensity of 3, the fourth restart gives up before starting.
    assert_eq!(probe.refusals("w"), 3);
    assert!(probe.log().contains(&"stop:peer".to_string()));
    live_settles(&probe, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_whose_start_fails_stays_restarting_and_runs_once_the_start_succeeds() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new("top", Strategy::OneForOne)
        .intensity(1_000_000, MINUTE)
        .child(worker("w", &probe))
        .child(worker("peer", &probe));
    let (sup, _join) = SupervisorHandle::start(spec).await.unwrap();
    let peer_before = child(&sup, "peer").await.actor_id;
    probe.refuse("w");
    end_child(&sup, "w", How::Kill).await;

    wait_until("the start is retried", || async {
        probe.refusals("w") >= 3
    })
    .await;
    let w = child(&sup, "w").await;
    assert_eq!(w.state, ChildState::Restarting);
    assert_eq!(w.actor_id, None);
    assert_eq!(
        w.last_failure.as_deref(),
        Some("start failed: w refuses to start")
    );

    probe.accept("w");
    wait_until("w runs again", || async {
        child(&sup, "w").await.state == ChildState::Running
    })
    .await;
    let w = child(&sup, "w").await;
    assert_eq!(w.restart_count, 1, "refused starts are not restarts");
    let peer = child(&sup, "peer").await;
    assert_eq!((peer.actor_id, peer.restart_count), (peer_before, 0));
    assert!(sup.is_alive());
    live_settles(&probe, 2).await;
    sup.stop().await;
    live_settles(&probe, 0).await;
}
