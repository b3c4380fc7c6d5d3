//! Storms on a small pool: seeded choices replay, kills without waiting count what they skip,
//! and a kill of a path that does not exist is an error naming it.

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use verisim_faultkit::{FaultError, Storm, kill_and_wait, tree};
use verisim_supervision::{ChildSpec, Strategy, SupervisorHandle, SupervisorSpec};

#[derive(Clone)]
struct Idle;
enum Never {}
impl ractor::Message for Never {}
impl Actor for Idle {
    type Msg = Never;
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<Never>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

async fn pool() -> SupervisorHandle {
    let spec = SupervisorSpec::new("pool", Strategy::OneForOne)
        .intensity(1000, Duration::from_secs(10))
        .child(ChildSpec::for_actor("a", Idle, ()))
        .child(ChildSpec::for_actor("b", Idle, ()))
        .child(ChildSpec::for_actor("c", Idle, ()));
    SupervisorHandle::start(spec).await.unwrap().0
}

const TARGETS: [&str; 3] = ["a", "b", "c"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_seed_strikes_the_same_children() {
    let (p1, p2) = (pool().await, pool().await);
    let r1 = Storm::new(30).seed(99).run(&p1, &TARGETS).await.unwrap();
    let r2 = Storm::new(30).seed(99).run(&p2, &TARGETS).await.unwrap();
    assert_eq!(r1.kills, r2.kills);
    let (t1, t2) = (r1.tree.unwrap(), r2.tree.unwrap());
    assert_eq!(t1.restart_counts(), t2.restart_counts());
    assert_eq!(t1.total_restarts(), 30);
    p1.stop().await;
    p2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_without_waiting_count_every_one_as_a_restart_or_a_skip() {
    let p = pool().await;
    let r = Storm::new(60)
        .wait_each(false)
        .seed(5)
        .run(&p, &TARGETS)
        .await
        .unwrap();
    let inflicted: u32 = r.kills.values().sum();
    assert_eq!(inflicted + r.skipped, 60);
    let t = r.tree.clone().expect("settled");
    t.expect_all_running().unwrap();
    for path in TARGETS {
        let kills = u64::from(r.kills.get(path).copied().unwrap_or(0));
        assert_eq!(t.restart_count(path), Some(kills), "{path}: {r:?}");
    }
    p.stop().await;
}

#[tokio::test]
async fn an_unknown_path_is_an_error_naming_it() {
    let p = pool().await;
    let e = kill_and_wait(&p, "a/deeper", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(
        matches!(e, FaultError::Supervisor(_) | FaultError::NoSuchPath(_)),
        "{e}"
    );
    let e = kill_and_wait(&p, "zzz", Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(
        matches!(e, FaultError::NoSuchPath(ref p) if p == "zzz"),
        "{e}"
    );
    assert_eq!(tree(&p).await.unwrap().total_restarts(), 0);
    p.stop().await;
}
