//! A storm: concurrent failures of workers and of a nested supervisor, mixed with concurrent
//! operator calls, must neither deadlock nor leak actors.

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use verisim_supervision::{
    ChildKind, ChildSpec, ChildState, Strategy, SupervisorHandle, SupervisorSpec,
};

const FAILURE_TASKS: u64 = 4;
const OPERATOR_TASKS: u64 = 3;
const ROUNDS: usize = 200;

/// Every call of the storm has a deadline: one that does not return in time is a deadlock.
/// (The handles carry no timeout of their own, which would turn a deadlock into an error that
/// the storm ignores.)
async fn bounded<T>(what: &str, call: impl Future<Output = T>) -> T {
    match tokio::time::timeout(DEADLINE, call).await {
        Ok(v) => v,
        Err(_) => panic!("deadlock: {what} did not return within {DEADLINE:?}"),
    }
}

/// `top` two times in three, else the nested `sub` (if it is running just now).
async fn pick_supervisor(top: &SupervisorHandle, r: u64) -> Option<SupervisorHandle> {
    if r.is_multiple_of(3) {
        bounded("child_supervisor", top.child_supervisor("sub"))
            .await
            .ok()
    } else {
        Some(top.clone())
    }
}

/// Operators may have left children stopped: bring them back, as an operator would.
async fn restart_stopped(sup: &SupervisorHandle) {
    let Ok(children) = sup.which_children().await else {
        return;
    };
    for c in children {
        if matches!(c.state, ChildState::Stopped | ChildState::Failed) {
            let _ = sup.restart_child(&c.id).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_concurrent_failures_and_operator_calls_neither_deadlocks_nor_leaks() {
    let seed = seed("STORM_SEED");
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
    quiet_expected_panics();

    let sub_hits = Arc::new(AtomicUsize::new(0));
    let operator_calls = Arc::new(AtomicUsize::new(0));
    // Every incarnation the storm struck: each one exits, but perhaps only after the storm's
    // tasks have ended (a panic request waits in the worker's mailbox; the worker's exit then
    // makes its supervisor restart siblings, `sub` included).
    let victims = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for t in 0..FAILURE_TASKS + OPERATOR_TASKS {
        let top = top.clone();
        let sub_hits = sub_hits.clone();
        let operator_calls = operator_calls.clone();
        let victims = victims.clone();
        let mut rng = XorShift::new(seed.wrapping_add(t.wrapping_mul(0x9E37_79B9_7F4A_7C15)));
        let operator = t >= FAILURE_TASKS;
        tasks.push(tokio::spawn(async move {
            for _ in 0..ROUNDS {
                let r = rng.next();
                let Some(sup) = pick_supervisor(&top, r).await else {
                    continue;
                };
                // A supervisor that was just killed or stopped answers with an error: skip.
                let Ok(children) = bounded("which_children", sup.which_children()).await else {
                    continue;
                };
                let Some(victim) = children.get((r >> 8) as usize % children.len().max(1)) else {
                    continue;
                };
                if operator {
                    // Errors are expected (the target may be gone meanwhile); hanging is not.
                    if (r >> 16).is_multiple_of(2) {
                        let _ = bounded("restart_child", sup.restart_child(&victim.id)).await;
                    } else {
                        let _ = bounded("terminate_child", sup.terminate_child(&victim.id)).await;
                    }
                    operator_calls.fetch_add(1, Ordering::Relaxed);
                } else {
                    let Some(cell) = victim.cell.clone() else {
                        continue;
                    };
                    victims.lock().unwrap().push(cell.clone());
                    // A send fails only when that incarnation has already exited.
                    match (victim.kind, (r >> 16) % 4) {
                        (ChildKind::Supervisor, k) => {
                            sub_hits.fetch_add(1, Ordering::Relaxed);
                            if k < 2 {
                                cell.kill();
                            } else {
                                cell.stop(Some("storm".into()));
                            }
                        }
                        (ChildKind::Worker, 0) => cell.kill(),
                        (ChildKind::Worker, 1) => {
                            drop(cell.send_message(WorkerMsg::Panic("storm".into())))
                        }
                        (ChildKind::Worker, 2) => {
                            drop(cell.send_message(WorkerMsg::Fail("storm".into())))
                        }
                        (ChildKind::Worker, _) => drop(cell.send_message(WorkerMsg::Stop(None))),
                    }
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
    let (sub_hits, operator_calls) = (
        sub_hits.load(Ordering::Relaxed),
        operator_calls.load(Ordering::Relaxed),
    );
    println!("storm: {sub_hits} kills or stops of sub, {operator_calls} operator calls");
    assert!(sub_hits > 0, "the storm reached the nested supervisor");
    assert!(operator_calls > 0, "operator calls ran during the storm");

    // Wait until every struck incarnation has exited. Its exit event is then queued at its
    // supervisor, which handles exit events before calls: from here on each call below sees the
    // supervisor's reaction, and nothing the storm set off is still on its way.
    let victims = std::mem::take(&mut *victims.lock().unwrap());
    for cell in victims {
        cell.wait(Some(DEADLINE))
            .await
            .expect("every incarnation the storm struck exits");
    }

    let top = top.with_timeout(DEADLINE);
    wait_until("the tree settles", || async {
        restart_stopped(&top).await;
        let Ok(sub) = top.child_supervisor("sub").await else {
            return false;
        };
        restart_stopped(&sub).await;
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
