//! Intensity and escalation, ordered start and shutdown, start failures, dynamic children,
//! operator actions, backoff, introspection, and a failure storm.

mod common;

use std::time::Duration;

use common::*;
use verisim_supervision::{
    Backoff, ChildKind, ChildSpec, ChildState, GAVE_UP_REASON, Restart, Shutdown, Strategy,
    SupervisorError, SupervisorHandle, SupervisorSpec, TreeNode,
};

const MINUTE: Duration = Duration::from_secs(60);

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
    live_settles(&probe, 0).await;
}

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
async fn backoff_holds_a_child_in_restarting_until_the_delay_or_an_operator_restart() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new("sup", Strategy::OneForOne)
        .intensity(10, MINUTE)
        .backoff(Backoff {
            initial: Duration::from_secs(600),
            max: Duration::from_secs(600),
            reset_after: MINUTE,
        })
        .child(worker("w", &probe));
    let (sup, _join) = SupervisorHandle::start(spec).await.unwrap();
    end_child(&sup, "w", How::Panic("flaky".into())).await;
    let w = child(&sup, "w").await;
    assert_eq!((w.state, w.restart_count), (ChildState::Restarting, 0));
    live_settles(&probe, 0).await;

    sup.restart_child("w").await.unwrap();
    assert_eq!(child(&sup, "w").await.state, ChildState::Running);
    live_settles(&probe, 1).await;
    sup.stop().await;
    live_settles(&probe, 0).await;
}

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

/// A tiny seeded generator, so a failing storm can be replayed from the printed seed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_concurrent_failures_neither_deadlocks_nor_leaks() {
    let seed: u64 = std::env::var("STORM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    println!("storm seed: {seed} (rerun with STORM_SEED={seed})");

    let probe = Probe::default();
    let mut sub = SupervisorSpec::new("sub", Strategy::OneForOne).intensity(1_000_000, MINUTE);
    for i in 0..4 {
        sub = sub.child(worker(&format!("s{i}"), &probe));
    }
    let mut top = SupervisorSpec::new("top", Strategy::RestForOne).intensity(1_000_000, MINUTE);
    for i in 0..4 {
        top = top.child(worker(&format!("w{i}"), &probe));
    }
    top = top.child(ChildSpec::supervisor("sub", sub));
    let (top, _join) = SupervisorHandle::start(top).await.unwrap();
    let top = top.with_timeout(DEADLINE);
    quiet_expected_panics();

    let mut tasks = Vec::new();
    for t in 0..4u64 {
        let top = top.clone();
        let mut rng = XorShift(seed.wrapping_add(t.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1);
        tasks.push(tokio::spawn(async move {
            for _ in 0..60 {
                let r = rng.next();
                // Pick a supervisor, then one of its children.
                let sup = if r.is_multiple_of(3) {
                    match top.child_supervisor("sub").await {
                        Ok(s) => s,
                        Err(_) => continue,
                    }
                } else {
                    top.clone()
                };
                let Ok(children) = sup.which_children().await else {
                    continue;
                };
                let Some(victim) = children.get((r >> 8) as usize % children.len()) else {
                    continue;
                };
                let Some(cell) = victim.cell.clone() else {
                    continue;
                };
                match (r >> 16) % 4 {
                    0 => cell.kill(),
                    1 => drop(cell.send_message(WorkerMsg::Panic("storm".into()))),
                    2 => drop(cell.send_message(WorkerMsg::Fail("storm".into()))),
                    // The `sub` supervisor does not understand worker messages: kill it then.
                    _ if victim.id == "sub" => cell.kill(),
                    _ => drop(cell.send_message(WorkerMsg::Stop(None))),
                }
                if r.is_multiple_of(5) {
                    tokio::task::yield_now().await;
                }
            }
        }));
    }
    for task in tasks {
        tokio::time::timeout(DEADLINE, task)
            .await
            .expect("no deadlock")
            .unwrap();
    }

    wait_until("the tree settles", || async {
        let Ok(sub) = top.child_supervisor("sub").await else {
            return false;
        };
        all_running(&top).await && all_running(&sub).await && probe.live() == 8
    })
    .await;
    // ractor's own view agrees: exactly the expected children are linked.
    assert_eq!(top.cell().get_children().len(), 5);
    assert_eq!(
        top.child_supervisor("sub")
            .await
            .unwrap()
            .cell()
            .get_children()
            .len(),
        4
    );
    assert!(top.is_alive());
    top.stop().await;
    wait_until("everything stopped", || async { probe.live() == 0 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_restarts_the_child_once_the_delay_has_passed() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new("sup", Strategy::RestForOne)
        .intensity(10, MINUTE)
        .backoff(Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(40),
            reset_after: MINUTE,
        })
        .child(worker("a", &probe))
        .child(worker("b", &probe));
    let (sup, _join) = SupervisorHandle::start(spec).await.unwrap();
    for round in 1..=3u64 {
        end_child(&sup, "a", How::Kill).await;
        wait_until("a and b run again after the delay", || async {
            let children = sup.which_children().await.unwrap();
            children
                .iter()
                .all(|c| c.state == ChildState::Running && c.restart_count == round)
        })
        .await;
    }
    live_settles(&probe, 2).await;
    sup.stop().await;
    live_settles(&probe, 0).await;
}
