//! Exponential restart backoff: the delays double up to the cap, a long-lived incarnation ends
//! the streak, and operator actions end a pending wait.

mod common;

use std::time::{Duration, Instant};

use common::*;
use verisim_supervision::{Backoff, ChildState, Strategy, SupervisorHandle, SupervisorSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_holds_a_child_in_restarting_until_an_operator_restart_ends_the_wait() {
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
    assert_eq!(w.restart_delay_ms, Some(600_000));
    live_settles(&probe, 0).await;

    sup.restart_child("w").await.unwrap();
    let w = child(&sup, "w").await;
    assert_eq!((w.state, w.restart_delay_ms), (ChildState::Running, None));
    live_settles(&probe, 1).await;
    sup.stop().await;
    live_settles(&probe, 0).await;
}

/// Kill the child, then read the delay its supervisor reports in the first call after the
/// exit: the wait has only just begun, so the child is still `restarting`.
async fn kill_and_read_delay(sup: &SupervisorHandle, id: &str) -> Option<u64> {
    let c = child(sup, id).await;
    assert_eq!(c.state, ChildState::Running, "{id} runs before the kill");
    end_child(sup, id, How::Kill).await;
    let c = child(sup, id).await;
    assert_eq!(c.state, ChildState::Restarting, "{id} waits");
    c.restart_delay_ms
}

async fn wait_running(sup: &SupervisorHandle, restarts: u64) {
    wait_until("every child runs again after the delay", || async {
        sup.which_children()
            .await
            .unwrap()
            .iter()
            .all(|c| c.state == ChildState::Running && c.restart_count == restarts)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backoff_delays_double_up_to_the_cap_and_hold_the_restarted_siblings_too() {
    let probe = Probe::default();
    let spec = SupervisorSpec::new("sup", Strategy::RestForOne)
        .intensity(10, MINUTE)
        .backoff(Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(400),
            reset_after: MINUTE,
        })
        .child(worker("a", &probe))
        .child(worker("b", &probe));
    let (sup, _join) = SupervisorHandle::start(spec).await.unwrap();
    for (round, expected_ms) in (1u64..).zip([100u64, 200, 400, 400]) {
        let killed = Instant::now();
        assert_eq!(
            kill_and_read_delay(&sup, "a").await,
            Some(expected_ms),
            "round {round}"
        );
        // rest_for_one: b was stopped with a and waits the same delay.
        let b = child(&sup, "b").await;
        assert_eq!(
            (b.state, b.restart_delay_ms),
            (ChildState::Restarting, Some(expected_ms)),
            "round {round}"
        );
        wait_running(&sup, round).await;
        // A lower bound, so no timing luck: the timer never fires early however loaded the
        // machine is, and without the backoff the restart takes microseconds.
        let waited = killed.elapsed();
        assert!(
            waited >= Duration::from_millis(expected_ms),
            "round {round}: running again after {waited:?}, before the {expected_ms} ms delay"
        );
        assert!(
            sup.which_children()
                .await
                .unwrap()
                .iter()
                .all(|c| c.restart_delay_ms.is_none())
        );
    }
    live_settles(&probe, 2).await;
    sup.stop().await;
    live_settles(&probe, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incarnation_that_lives_reset_after_ends_the_backoff_streak() {
    let probe = Probe::default();
    let reset_after = Duration::from_secs(1);
    let spec = SupervisorSpec::new("sup", Strategy::OneForOne)
        .intensity(10, MINUTE)
        .backoff(Backoff {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(10),
            reset_after,
        })
        .child(worker("w", &probe));
    let (sup, _join) = SupervisorHandle::start(spec).await.unwrap();

    assert_eq!(kill_and_read_delay(&sup, "w").await, Some(50));
    wait_running(&sup, 1).await;
    // Killed at once: this incarnation lived far less than reset_after, the streak goes on.
    assert_eq!(kill_and_read_delay(&sup, "w").await, Some(100));
    wait_running(&sup, 2).await;
    // The incarnation started before we saw it running, so it has lived at least this long.
    let seen_running = Instant::now();
    wait_until("w has lived reset_after", || async {
        seen_running.elapsed() >= reset_after
    })
    .await;
    assert_eq!(
        kill_and_read_delay(&sup, "w").await,
        Some(50),
        "a new streak starts at the initial delay"
    );
    wait_running(&sup, 3).await;
    sup.stop().await;
    live_settles(&probe, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_child_cancels_a_pending_backoff_wait() {
    let probe = Probe::default();
    let delay = Duration::from_millis(100);
    let spec = SupervisorSpec::new("sup", Strategy::OneForOne)
        .intensity(10, MINUTE)
        .backoff(Backoff {
            initial: delay,
            max: delay,
            reset_after: MINUTE,
        })
        .child(worker("w", &probe))
        .child(worker("sentinel", &probe));
    let (sup, _join) = SupervisorHandle::start(spec).await.unwrap();

    assert_eq!(kill_and_read_delay(&sup, "w").await, Some(100));
    // w's wait began before this instant.
    let waiting_since = Instant::now();
    sup.terminate_child("w").await.unwrap();
    let w = child(&sup, "w").await;
    assert_eq!((w.state, w.restart_delay_ms), (ChildState::Stopped, None));

    // Let w's timer run out, then start a wait of the same length on the sentinel: its timer
    // fires at least `delay` after w's, so once the sentinel runs again the supervisor has
    // handled w's (stale) timer message too.
    wait_until("w's delay has passed", || async {
        waiting_since.elapsed() >= 2 * delay
    })
    .await;
    assert_eq!(kill_and_read_delay(&sup, "sentinel").await, Some(100));
    wait_until("the sentinel runs again", || async {
        child(&sup, "sentinel").await.state == ChildState::Running
    })
    .await;

    let w = child(&sup, "w").await;
    assert_eq!(
        (w.state, w.restart_count, w.actor_id),
        (ChildState::Stopped, 0, None),
        "the cancelled wait did not restart w"
    );
    live_settles(&probe, 1).await;
    sup.stop().await;
    live_settles(&probe, 0).await;
}
