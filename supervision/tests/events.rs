//! The event sink: a panicking worker is reported failed and restarted, an operator restart and
//! terminate are reported as such, and exceeding the intensity is reported as giving up, by the
//! supervisor that gave up, before its parent reports it failed.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use verisim_supervision::{
    ChildSpec, EventKind, EventSink, Strategy, SupervisorEvent, SupervisorHandle, SupervisorSpec,
};

#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<SupervisorEvent>>>);

impl Events {
    fn sink(&self) -> EventSink {
        let events = self.0.clone();
        Arc::new(move |e: SupervisorEvent| events.lock().expect("events lock").push(e))
    }

    fn all(&self) -> Vec<SupervisorEvent> {
        self.0.lock().expect("events lock").clone()
    }
}

fn ev(supervisor: &str, kind: EventKind) -> SupervisorEvent {
    SupervisorEvent {
        supervisor: supervisor.into(),
        kind,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_worker_is_reported_failed_then_restarted() {
    let (probe, events) = (Probe::default(), Events::default());
    let spec = SupervisorSpec::new("s", Strategy::OneForOne)
        .intensity(5, MINUTE)
        .events(events.sink())
        .child(worker("w", &probe));
    let (sup, _join) = SupervisorHandle::start(spec).await.unwrap();
    assert!(events.all().is_empty(), "a start is not an event");

    end_child(&sup, "w", How::Panic("w broke".into())).await;
    let all = events.all();
    assert_eq!(all.len(), 2, "{all:?}");
    match &all[0].kind {
        EventKind::ChildFailed { child, reason } => {
            assert_eq!(child, "w");
            assert!(
                reason.as_deref().is_some_and(|r| r.contains("w broke")),
                "{reason:?}"
            );
        }
        other => panic!("expected child_failed, got {other:?}"),
    }
    assert_eq!(
        all[1],
        ev(
            "s",
            EventKind::ChildRestarted {
                child: "w".into(),
                restart_count: 1,
                operator: false
            }
        )
    );

    // Operator actions are events too.
    sup.restart_child("w").await.unwrap();
    sup.terminate_child("w").await.unwrap();
    let all = events.all();
    assert_eq!(
        all[2..],
        [
            ev(
                "s",
                EventKind::ChildRestarted {
                    child: "w".into(),
                    restart_count: 2,
                    operator: true
                }
            ),
            ev("s", EventKind::ChildTerminated { child: "w".into() }),
        ]
    );
    sup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exceeding_the_intensity_is_reported_as_giving_up_and_escalates() {
    let (probe, events) = (Probe::default(), Events::default());
    let leaf = SupervisorSpec::new("leaf", Strategy::OneForOne)
        .intensity(1, MINUTE)
        .events(events.sink())
        .child(worker("w", &probe));
    let top = SupervisorSpec::new("top", Strategy::OneForOne)
        .intensity(5, MINUTE)
        .events(events.sink())
        .child(ChildSpec::supervisor("leaf", leaf));
    let (top, _join) = SupervisorHandle::start(top).await.unwrap();
    let leaf = top.child_supervisor("leaf").await.unwrap();

    end_child(&leaf, "w", How::Kill).await;
    end_child(&leaf, "w", How::Kill).await;
    wait_until("top restarts leaf", || async {
        events.all().iter().any(|e| {
            e.supervisor == "top"
                && matches!(&e.kind, EventKind::ChildRestarted { child, .. } if child == "leaf")
        })
    })
    .await;
    let all = events.all();
    let kinds: Vec<(&str, &str)> = all
        .iter()
        .map(|e| {
            let kind = match e.kind {
                EventKind::ChildFailed { .. } => "failed",
                EventKind::ChildRestarted { .. } => "restarted",
                EventKind::GaveUp { .. } => "gave_up",
                _ => "other",
            };
            (e.supervisor.as_str(), kind)
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("leaf", "failed"),
            ("leaf", "restarted"),
            ("leaf", "failed"),
            ("leaf", "gave_up"),
            ("top", "failed"),
            ("top", "restarted"),
        ],
        "{all:?}"
    );
    assert_eq!(
        all[3].kind,
        EventKind::GaveUp {
            intensity: 1,
            period_ms: 60_000
        }
    );
    assert_eq!(all[4].kind.child(), Some("leaf"));
    top.stop().await;
}
