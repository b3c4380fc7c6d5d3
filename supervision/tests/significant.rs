//! Significant children and `auto_shutdown` (OTP 24): which exits shut the supervisor down,
//! which do not, and which specs are refused before anything starts.

mod common;

use common::*;
use verisim_supervision::{
    AutoShutdown, ChildState, Restart, SpecError, Strategy, SupervisorError, SupervisorHandle,
    SupervisorSpec,
};

fn spec(mode: AutoShutdown, probe: &Probe) -> SupervisorSpec {
    SupervisorSpec::new("job", Strategy::OneForOne)
        .intensity(10, MINUTE)
        .auto_shutdown(mode)
        .child(worker("logger", probe))
        .child(
            worker("a", probe)
                .restart(Restart::Transient)
                .significant(true),
        )
        .child(
            worker("b", probe)
                .restart(Restart::Temporary)
                .significant(true),
        )
}

/// Wait until the supervisor has exited and every worker with it.
async fn ended(join: ractor::concurrency::JoinHandle<()>, probe: &Probe) {
    tokio::time::timeout(DEADLINE, join)
        .await
        .expect("the supervisor shuts itself down")
        .expect("the supervisor task ends cleanly");
    live_settles(probe, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_significant_shuts_down_when_a_transient_significant_child_exits_normally() {
    let probe = Probe::default();
    let (sup, join) = SupervisorHandle::start(spec(AutoShutdown::AnySignificant, &probe))
        .await
        .unwrap();
    // Introspection shows the flags.
    let info = sup.info().await.unwrap();
    assert_eq!(info.auto_shutdown, AutoShutdown::AnySignificant);
    let flags: Vec<bool> = info.children.iter().map(|c| c.significant).collect();
    assert_eq!(flags, [false, true, true]);
    let json = serde_json::to_value(&info).unwrap();
    assert_eq!(json["auto_shutdown"], "any_significant");
    assert_eq!(json["children"][1]["significant"], true);
    assert!(
        json["children"][0].get("significant").is_none(),
        "omitted when false, so existing JSON is unchanged"
    );
    end_child(&sup, "a", How::Stop(None)).await;
    ended(join, &probe).await;
    assert!(!sup.is_alive());
    // Its children were stopped in reverse order: `b`, then `logger`.
    let stops: Vec<String> = probe
        .log()
        .into_iter()
        .filter(|e| e.starts_with("stop:"))
        .collect();
    assert_eq!(stops, strings(&["stop:a", "stop:b", "stop:logger"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abnormal_exit_of_a_transient_significant_child_restarts_it_instead() {
    let probe = Probe::default();
    let (sup, _join) = SupervisorHandle::start(spec(AutoShutdown::AnySignificant, &probe))
        .await
        .unwrap();
    end_child(&sup, "a", How::Panic("boom".into())).await;
    let a = child(&sup, "a").await;
    assert_eq!((a.state, a.restart_count), (ChildState::Running, 1));
    assert!(sup.is_alive());
    // A temporary significant child ends it whichever way it exits.
    end_child(&sup, "b", How::Kill).await;
    sup.cell().wait(Some(DEADLINE)).await.unwrap();
    live_settles(&probe, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_significant_waits_for_the_last_significant_child() {
    let probe = Probe::default();
    let (sup, join) = SupervisorHandle::start(spec(AutoShutdown::AllSignificant, &probe))
        .await
        .unwrap();
    end_child(&sup, "b", How::Fail("done".into())).await;
    assert!(sup.is_alive(), "`a` is still running");
    assert_eq!(sup.count_children().await.unwrap().specs, 2, "`b` removed");
    // A non-significant child changes nothing.
    end_child(&sup, "logger", How::Stop(None)).await;
    assert_eq!(child(&sup, "logger").await.restart_count, 1);
    end_child(&sup, "a", How::Stop(Some("shutdown: finished".into()))).await;
    ended(join, &probe).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_the_supervisor_stops_itself_do_not_trigger_it() {
    let probe = Probe::default();
    let (sup, _join) = SupervisorHandle::start(spec(AutoShutdown::AnySignificant, &probe))
        .await
        .unwrap();
    sup.terminate_child("a").await.unwrap();
    sup.terminate_child("b").await.unwrap();
    assert!(sup.is_alive());
    assert_eq!(child(&sup, "a").await.state, ChildState::Stopped);

    // A sibling restart under one_for_all stops (and removes) a temporary significant child.
    let (all, _join) = SupervisorHandle::start(
        SupervisorSpec::new("all", Strategy::OneForAll)
            .intensity(10, MINUTE)
            .auto_shutdown(AutoShutdown::AnySignificant)
            .child(worker("w", &probe))
            .child(
                worker("t", &probe)
                    .restart(Restart::Temporary)
                    .significant(true),
            ),
    )
    .await
    .unwrap();
    end_child(&all, "w", How::Kill).await;
    assert!(all.is_alive());
    assert_eq!(all.count_children().await.unwrap().specs, 1);
    sup.stop().await;
    all.stop().await;
    live_settles(&probe, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_supervisor_that_shuts_itself_down_exits_normally_for_its_parent() {
    let probe = Probe::default();
    let job = SupervisorSpec::new("job", Strategy::OneForOne)
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(
            worker("step", &probe)
                .restart(Restart::Transient)
                .significant(true),
        );
    let (top, _join) = SupervisorHandle::start(
        SupervisorSpec::new("top", Strategy::OneForOne)
            .intensity(10, MINUTE)
            .child(worker("keep", &probe))
            .child(
                verisim_supervision::ChildSpec::supervisor("job", job).restart(Restart::Transient),
            ),
    )
    .await
    .unwrap();
    let job = top.child_supervisor("job").await.unwrap();
    end_child(&job, "step", How::Stop(None)).await;
    job.cell().wait(Some(DEADLINE)).await.unwrap();
    let _ = top.which_children().await;
    let info = child(&top, "job").await;
    assert_eq!(info.state, ChildState::Stopped, "a normal exit: not failed");
    assert_eq!(info.restart_count, 0, "transient and normal: not restarted");
    assert!(top.is_alive());
    top.stop().await;
    live_settles(&probe, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_significant_children_are_refused_before_anything_starts() {
    let probe = Probe::default();
    let permanent = SupervisorSpec::new("bad", Strategy::OneForOne)
        .auto_shutdown(AutoShutdown::AnySignificant)
        .child(worker("first", &probe))
        .child(worker("p", &probe).significant(true));
    assert_eq!(
        permanent.check(),
        Err(SupervisorError::InvalidChildSpec(
            SpecError::SignificantPermanent("p".into())
        ))
    );
    assert_eq!(
        SupervisorHandle::start(permanent).await.unwrap_err(),
        SupervisorError::InvalidChildSpec(SpecError::SignificantPermanent("p".into()))
    );
    assert!(probe.log().is_empty(), "nothing started: {:?}", probe.log());

    let never = SupervisorSpec::new("bad", Strategy::OneForOne).child(
        worker("t", &probe)
            .restart(Restart::Temporary)
            .significant(true),
    );
    assert_eq!(
        SupervisorHandle::start(never).await.unwrap_err(),
        SupervisorError::InvalidChildSpec(SpecError::SignificantWithoutAutoShutdown("t".into()))
    );

    // At run time too: `start_child` refuses it and adds nothing.
    let (sup, _join) = SupervisorHandle::start(SupervisorSpec::new("ok", Strategy::OneForOne))
        .await
        .unwrap();
    let err = sup
        .start_child(
            worker("t", &probe)
                .restart(Restart::Transient)
                .significant(true),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SupervisorError::InvalidChildSpec(SpecError::SignificantWithoutAutoShutdown("t".into()))
    );
    assert_eq!(sup.count_children().await.unwrap().specs, 0);
    sup.stop().await;
    assert_eq!(probe.live(), 0);
}
