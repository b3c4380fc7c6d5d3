//! Dynamic children: started from a template at run time, with a maximum.

mod common;

use std::time::Duration;

use common::*;
use verisim_supervision::{
    Backoff, ChildState, Restart, Strategy, SupervisorError, SupervisorHandle, SupervisorSpec,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_children_start_and_terminate_at_run_time_with_a_maximum() {
    let probe = Probe::default();
    let p = probe.clone();
    let spec = SupervisorSpec::new("conns", Strategy::OneForOne)
        .intensity(10, MINUTE)
        .max_children(3)
        .template(move |n| worker(&format!("conn-{n}"), &p).restart(Restart::Temporary));
    let (sup, _join) = SupervisorHandle::start(spec).await.unwrap();

    let mut started = Vec::new();
    for _ in 0..3 {
        started.push(sup.start_from_template().await.unwrap().0);
    }
    assert_eq!(started, strings(&["conn-1", "conn-2", "conn-3"]));
    assert_eq!(
        sup.start_from_template().await.unwrap_err(),
        SupervisorError::MaxChildren(3)
    );
    assert_eq!(sup.count_children().await.unwrap().active, 3);

    sup.terminate_child("conn-2").await.unwrap();
    assert_eq!(
        sup.count_children().await.unwrap().specs,
        2,
        "temporary: removed"
    );
    let (id, _) = sup.start_from_template().await.unwrap();
    assert_eq!(
        id, "conn-5",
        "the template counts attempts, the refused one included"
    );
    // A temporary child that exits frees its slot too.
    end_child(&sup, "conn-1", How::Panic("peer reset".into())).await;
    sup.start_child(worker("extra", &probe)).await.unwrap();
    assert_eq!(
        sup.start_child(worker("extra2", &probe)).await.unwrap_err(),
        SupervisorError::MaxChildren(3)
    );
    let counts = sup.count_children().await.unwrap();
    assert_eq!(
        (
            counts.specs,
            counts.active,
            counts.workers,
            counts.supervisors
        ),
        (3, 3, 3, 0)
    );
    sup.stop().await;
    live_settles(&probe, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_children_counts_restarting_children_but_not_stopped_ones() {
    let probe = Probe::default();
    let p = probe.clone();
    // Permanent template children, and a backoff long enough that a killed one stays
    // `restarting` for the whole test.
    let spec = SupervisorSpec::new("pool", Strategy::OneForOne)
        .intensity(10, MINUTE)
        .backoff(Backoff {
            initial: Duration::from_secs(600),
            max: Duration::from_secs(600),
            reset_after: MINUTE,
        })
        .max_children(2)
        .template(move |n| worker(&format!("conn-{n}"), &p));
    let (sup, _join) = SupervisorHandle::start(spec).await.unwrap();
    sup.start_from_template().await.unwrap();
    sup.start_from_template().await.unwrap();

    end_child(&sup, "conn-1", How::Kill).await;
    assert_eq!(child(&sup, "conn-1").await.state, ChildState::Restarting);
    live_settles(&probe, 1).await;
    assert_eq!(
        sup.start_from_template().await.unwrap_err(),
        SupervisorError::MaxChildren(2),
        "a restarting child holds its slot"
    );

    sup.terminate_child("conn-1").await.unwrap();
    assert_eq!(child(&sup, "conn-1").await.state, ChildState::Stopped);
    let (id, _) = sup.start_from_template().await.unwrap();
    assert_eq!(id, "conn-4", "a stopped child does not hold a slot");
    let counts = sup.count_children().await.unwrap();
    assert_eq!((counts.specs, counts.active), (3, 2));
    sup.stop().await;
    live_settles(&probe, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_with_arguments_builds_each_child_from_its_start_arguments() {
    let probe = Probe::default();
    let p = probe.clone();
    // The closure captures what Elixir's `extra_arguments` would prepend; the per-start
    // argument (a peer address here) comes with each call.
    let spec = SupervisorSpec::new("conns", Strategy::OneForOne)
        .intensity(10, MINUTE)
        .max_children(2)
        .template_with(move |n, peer: String| {
            worker(&format!("conn-{n}-{peer}"), &p).restart(Restart::Temporary)
        });
    let (sup, _join) = SupervisorHandle::start(spec).await.unwrap();
    let (a, _) = sup
        .start_from_template_with("10.0.0.7".to_string())
        .await
        .unwrap();
    assert_eq!(a, "conn-1-10.0.0.7");
    assert!(probe.log().contains(&"start:conn-1-10.0.0.7".to_string()));

    // Arguments of another type start nothing and name both types.
    let err = sup.start_from_template_with(7u16).await.unwrap_err();
    assert_eq!(
        err,
        SupervisorError::TemplateArgs {
            expected: "alloc::string::String".into(),
            got: "u16".into()
        }
    );
    assert!(matches!(
        sup.start_from_template().await.unwrap_err(),
        SupervisorError::TemplateArgs { .. }
    ));
    assert_eq!(sup.count_children().await.unwrap().specs, 1);

    let (b, _) = sup
        .start_from_template_with("10.0.0.8".to_string())
        .await
        .unwrap();
    assert_eq!(
        b, "conn-4-10.0.0.8",
        "refused attempts use up their numbers"
    );
    assert_eq!(
        sup.start_from_template_with("10.0.0.9".to_string())
            .await
            .unwrap_err(),
        SupervisorError::MaxChildren(2)
    );
    sup.stop().await;
    live_settles(&probe, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_without_a_template_refuses_template_starts() {
    let (sup, _join) = SupervisorHandle::start(SupervisorSpec::new("plain", Strategy::OneForOne))
        .await
        .unwrap();
    assert_eq!(
        sup.start_from_template().await.unwrap_err(),
        SupervisorError::NoTemplate
    );
    assert_eq!(
        sup.start_from_template_with(1u8).await.unwrap_err(),
        SupervisorError::NoTemplate
    );
    sup.stop().await;
}

/// Children are found through an index (child id → position, actor id → child id), not a
/// scan. Removing children from the middle (a temporary one exiting, `terminate_child`,
/// `delete_child`) moves the later ones up: every call and every restart must still reach the
/// right child afterwards, and ids freed by removal can be used again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_after_a_removed_one_are_still_found_by_id_and_by_exit() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new("index", Strategy::OneForOne).intensity(100, MINUTE);
    let (sup, _join) = SupervisorHandle::start(spec).await.unwrap();
    for name in ["a", "b", "c", "d", "e", "f"] {
        let restart = if matches!(name, "b" | "d") {
            Restart::Temporary
        } else {
            Restart::Permanent
        };
        sup.start_child(worker(name, &probe).restart(restart))
            .await
            .unwrap();
    }
    let names = |children: Vec<verisim_supervision::ChildInfo>| {
        children.into_iter().map(|c| c.id).collect::<Vec<_>>()
    };

    // A temporary child exits: removed, the ones after it move up.
    end_child(&sup, "b", How::Panic("gone".into())).await;
    assert_eq!(
        names(sup.which_children().await.unwrap()),
        strings(&["a", "c", "d", "e", "f"])
    );
    // Exits of the children after it still restart the right child.
    let before = child(&sup, "e").await;
    end_child(&sup, "e", How::Kill).await;
    let after = child(&sup, "e").await;
    assert_eq!(after.restart_count, before.restart_count + 1);
    assert_ne!(after.actor_id, before.actor_id);
    assert_eq!(child(&sup, "f").await.restart_count, 0);

    // terminate_child of a temporary child, delete_child of a stopped one.
    sup.terminate_child("d").await.unwrap();
    sup.terminate_child("c").await.unwrap();
    sup.delete_child("c").await.unwrap();
    assert_eq!(
        names(sup.which_children().await.unwrap()),
        strings(&["a", "e", "f"])
    );
    let f = sup.restart_child("f").await.unwrap();
    assert_eq!(child(&sup, "f").await.cell.unwrap().get_id(), f.get_id());
    end_child(&sup, "f", How::Fail("again".into())).await;
    assert_eq!(child(&sup, "f").await.restart_count, 2);
    assert_eq!(child(&sup, "a").await.restart_count, 0);

    // Freed ids can be used again; taken ones cannot.
    sup.start_child(worker("c", &probe)).await.unwrap();
    assert_eq!(
        sup.start_child(worker("e", &probe)).await.unwrap_err(),
        SupervisorError::DuplicateChild("e".into())
    );
    assert_eq!(
        names(sup.which_children().await.unwrap()),
        strings(&["a", "e", "f", "c"])
    );
    end_child(&sup, "c", How::Kill).await;
    assert_eq!(child(&sup, "c").await.restart_count, 1);
    assert!(all_running(&sup).await);
    sup.stop().await;
    live_settles(&probe, 0).await;
}
