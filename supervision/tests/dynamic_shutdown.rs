//! How a supervisor that terminates stops children started from its template: together, as
//! OTP's `terminate_dynamic_children` stops a `simple_one_for_one` supervisor's children (and
//! Elixir a `DynamicSupervisor`'s), with the shutdown timeout running for the group; every other
//! child one at a time in reverse start order, as before.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::Barrier;
use verisim_supervision::{
    ChildSpec, Restart, Shutdown, Strategy, SupervisorHandle, SupervisorSpec,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_children_started_together_stop_together_and_the_rest_in_reverse_order() {
    let probe = Probe::default();
    let template_probe = probe.clone();
    let spec = SupervisorSpec::new("top", Strategy::OneForOne)
        .child(worker("a", &probe))
        .child(worker("b", &probe))
        .template(move |n| worker(&format!("t{n}"), &template_probe).restart(Restart::Temporary));
    let (top, join) = SupervisorHandle::start(spec).await.unwrap();
    for _ in 0..3 {
        top.start_from_template().await.unwrap();
    }
    top.start_child(worker("c", &probe)).await.unwrap();
    for _ in 0..2 {
        top.start_from_template().await.unwrap();
    }
    probe.clear_log();
    top.stop().await;
    join.await.unwrap();

    // Steps in reverse start order: {t5, t4}, c, {t3, t2, t1}, b, a; inside a step any order.
    let log = probe.log();
    let steps: [&[&str]; 5] = [
        &["stop:t4", "stop:t5"],
        &["stop:c"],
        &["stop:t1", "stop:t2", "stop:t3"],
        &["stop:b"],
        &["stop:a"],
    ];
    let mut at = 0;
    for step in steps {
        let mut got = log[at..at + step.len()].to_vec();
        got.sort();
        assert_eq!(got, strings(step), "log {log:?}");
        at += step.len();
    }
    assert_eq!(at, log.len(), "log {log:?}");
    live_settles(&probe, 0).await;
}

/// A child whose `post_stop` records that the stop arrived, then waits at a barrier (and
/// records that it passed) or forever; its state's `Drop` records its end, also when it is
/// killed.
#[derive(Clone)]
struct Gate {
    name: String,
    log: Arc<Mutex<Vec<String>>>,
    barrier: Option<Arc<Barrier>>,
}

struct Ends(String, Arc<Mutex<Vec<String>>>);

impl Drop for Ends {
    fn drop(&mut self) {
        self.1.lock().unwrap().push(format!("end:{}", self.0));
    }
}

struct NoMsg;
impl ractor::Message for NoMsg {}

impl Actor for Gate {
    type Msg = NoMsg;
    type State = Ends;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<NoMsg>, _: ()) -> Result<Ends, ActorProcessingErr> {
        Ok(Ends(self.name.clone(), self.log.clone()))
    }

    async fn post_stop(&self, _: ActorRef<NoMsg>, _: &mut Ends) -> Result<(), ActorProcessingErr> {
        self.log
            .lock()
            .unwrap()
            .push(format!("stopping:{}", self.name));
        match &self.barrier {
            Some(barrier) => {
                barrier.wait().await;
                self.log
                    .lock()
                    .unwrap()
                    .push(format!("passed:{}", self.name));
            }
            None => std::future::pending::<()>().await,
        }
        Ok(())
    }
}

fn gates(
    shutdown: Shutdown,
    barrier: Option<Arc<Barrier>>,
) -> (SupervisorSpec, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let for_template = log.clone();
    let spec = SupervisorSpec::new("gates", Strategy::OneForOne).template(move |k| {
        let gate = Gate {
            name: format!("g{k}"),
            log: for_template.clone(),
            barrier: barrier.clone(),
        };
        ChildSpec::for_actor(format!("g{k}"), gate, ())
            .restart(Restart::Temporary)
            .shutdown(shutdown)
    });
    (spec, log)
}

async fn start_gates(spec: SupervisorSpec, n: usize) -> SupervisorHandle {
    let (sup, _join) = SupervisorHandle::start(spec).await.unwrap();
    for _ in 0..n {
        sup.start_from_template().await.unwrap();
    }
    sup
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_template_child_is_asked_to_stop_before_any_has_to_finish() {
    // Each child's `post_stop` can only finish once all of them are in it: stopped one at a
    // time, the first would wait at the barrier until its timeout killed it.
    const N: usize = 5;
    let barrier = Arc::new(Barrier::new(N));
    let (spec, log) = gates(Shutdown::Timeout(Duration::from_secs(3)), Some(barrier));
    let sup = start_gates(spec, N).await;
    sup.stop().await;
    let log = log.lock().unwrap().clone();
    let passed = log.iter().filter(|e| e.starts_with("passed:")).count();
    assert_eq!(passed, N, "log {log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shutdown_timeout_runs_for_the_group_then_all_stragglers_are_killed() {
    // Children that never finish their `post_stop`: every one has been asked to stop before
    // the group's timeout kills the first (one at a time, each would be asked, then killed,
    // before the next is asked).
    const N: usize = 4;
    let (spec, log) = gates(Shutdown::Timeout(Duration::from_millis(1500)), None);
    let sup = start_gates(spec, N).await;
    sup.stop().await;
    let log = log.lock().unwrap().clone();
    let last_stopping = log.iter().rposition(|e| e.starts_with("stopping:"));
    let first_end = log.iter().position(|e| e.starts_with("end:"));
    assert_eq!(log.len(), 2 * N, "log {log:?}");
    assert!(last_stopping < first_end, "log {log:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn brutal_kill_template_children_are_killed_together_without_post_stop() {
    const N: usize = 4;
    let (spec, log) = gates(Shutdown::BrutalKill, None);
    let sup = start_gates(spec, N).await;
    sup.stop().await;
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), N, "log {log:?}");
    assert!(log.iter().all(|e| e.starts_with("end:")), "log {log:?}");
}
