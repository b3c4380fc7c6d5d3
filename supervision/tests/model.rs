//! Random child exits against a small model of OTP's rules: after every exit, the supervisor's
//! children (ids, states, restart counts) and whether it is alive must match the model.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use verisim_supervision::{ChildState, Restart, Strategy as Otp, SupervisorHandle, SupervisorSpec};

/// Exits driven and supervisors that gave up, over all cases (printed, so a run shows its reach).
static EXITS: AtomicUsize = AtomicUsize::new(0);
static GAVE_UP: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone, Copy, Debug)]
enum Exit {
    Normal,
    Panic,
    Fail,
    Kill,
}

#[derive(Clone, Debug, PartialEq)]
struct Row {
    id: String,
    state: ChildState,
    restarts: u64,
}

/// OTP's supervisor, reduced to what these events touch. The period is an hour, so every
/// restart of a case falls inside it.
struct Model {
    strategy: Otp,
    intensity: u32,
    restarts: u32,
    alive: bool,
    types: Vec<(String, Restart)>,
    rows: Vec<Row>,
}

impl Model {
    fn restart_type(&self, id: &str) -> Restart {
        self.types
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, r)| *r)
            .unwrap_or(Restart::Permanent)
    }

    fn exit(&mut self, id: &str, exit: Exit) {
        let Some(i) = self.rows.iter().position(|r| r.id == id) else {
            return;
        };
        let abnormal = !matches!(exit, Exit::Normal);
        let restart = self.restart_type(id);
        let restarted = match restart {
            Restart::Permanent => true,
            Restart::Transient => abnormal,
            Restart::Temporary => false,
        };
        if !restarted {
            if restart == Restart::Temporary {
                self.rows.remove(i);
            } else {
                self.rows[i].state = if abnormal {
                    ChildState::Failed
                } else {
                    ChildState::Stopped
                };
            }
            return;
        }
        self.restarts += 1;
        if self.restarts > self.intensity {
            self.alive = false;
            self.rows.clear();
            return;
        }
        let range = match self.strategy {
            Otp::OneForOne => i..i + 1,
            Otp::OneForAll => 0..self.rows.len(),
            Otp::RestForOne => i..self.rows.len(),
        };
        let in_range: Vec<String> = self.rows[range].iter().map(|r| r.id.clone()).collect();
        let types = self.types.clone();
        let is_temp = |id: &str| {
            types
                .iter()
                .any(|(i, r)| i == id && *r == Restart::Temporary)
        };
        self.rows
            .retain(|r| r.id == id || !in_range.contains(&r.id) || !is_temp(&r.id));
        for row in self.rows.iter_mut().filter(|r| in_range.contains(&r.id)) {
            row.state = ChildState::Running;
            row.restarts += 1;
        }
    }
}

#[derive(Clone, Debug)]
struct Case {
    strategy: Otp,
    intensity: u32,
    types: Vec<Restart>,
    events: Vec<(usize, Exit)>,
}

fn cases() -> impl Strategy<Value = Case> {
    let strategy = prop_oneof![
        Just(Otp::OneForOne),
        Just(Otp::OneForAll),
        Just(Otp::RestForOne)
    ];
    let restart = prop_oneof![
        Just(Restart::Permanent),
        Just(Restart::Transient),
        Just(Restart::Temporary)
    ];
    let exit = prop_oneof![
        Just(Exit::Normal),
        Just(Exit::Panic),
        Just(Exit::Fail),
        Just(Exit::Kill)
    ];
    (
        strategy,
        0u32..8,
        proptest::collection::vec(restart, 1..5),
        proptest::collection::vec((any::<usize>(), exit), 0..12),
    )
        .prop_map(|(strategy, intensity, types, events)| Case {
            strategy,
            intensity,
            types,
            events,
        })
}

async fn rows(sup: &SupervisorHandle) -> Option<Vec<Row>> {
    let children = sup.which_children().await.ok()?;
    Some(
        children
            .into_iter()
            .map(|c| Row {
                id: c.id,
                state: c.state,
                restarts: c.restart_count,
            })
            .collect(),
    )
}

async fn run_case(case: Case) -> Result<(), TestCaseError> {
    let probe = Probe::default();
    let mut spec = SupervisorSpec::new("sup", case.strategy)
        .intensity(case.intensity, Duration::from_secs(3600));
    let mut model = Model {
        strategy: case.strategy,
        intensity: case.intensity,
        restarts: 0,
        alive: true,
        types: Vec::new(),
        rows: Vec::new(),
    };
    for (i, restart) in case.types.iter().enumerate() {
        let id = format!("c{i}");
        spec = spec.child(worker(&id, &probe).restart(*restart));
        model.types.push((id.clone(), *restart));
        model.rows.push(Row {
            id,
            state: ChildState::Running,
            restarts: 0,
        });
    }
    let (sup, join) = SupervisorHandle::start(spec)
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let sup = sup.with_timeout(DEADLINE);

    for (pick, exit) in case.events {
        let running: Vec<String> = model
            .rows
            .iter()
            .filter(|r| r.state == ChildState::Running)
            .map(|r| r.id.clone())
            .collect();
        if !model.alive || running.is_empty() {
            break;
        }
        let id = running[pick % running.len()].clone();
        let how = match exit {
            Exit::Normal => How::Stop(None),
            Exit::Panic => How::Panic("model panic".into()),
            Exit::Fail => How::Fail("model error".into()),
            Exit::Kill => How::Kill,
        };
        end_child(&sup, &id, how).await;
        model.exit(&id, exit);
        EXITS.fetch_add(1, Ordering::Relaxed);

        if model.alive {
            let got = rows(&sup).await;
            prop_assert_eq!(
                got.as_ref(),
                Some(&model.rows),
                "after {:?} of {}",
                exit,
                id
            );
            live_settles(
                &probe,
                model
                    .rows
                    .iter()
                    .filter(|r| r.state == ChildState::Running)
                    .count(),
            )
            .await;
        } else {
            let stopped = tokio::time::timeout(DEADLINE, join).await;
            prop_assert!(stopped.is_ok(), "the supervisor should have given up");
            prop_assert!(!sup.is_alive());
            GAVE_UP.fetch_add(1, Ordering::Relaxed);
            wait_until("children stop with their supervisor", || async {
                probe.live() == 0
            })
            .await;
            return Ok(());
        }
    }
    sup.stop().await;
    wait_until("children stop with their supervisor", || async {
        probe.live() == 0
    })
    .await;
    Ok(())
}

#[test]
fn supervisor_follows_the_otp_model() {
    let seed: u64 = std::env::var("MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        });
    println!("model seed: {seed} (rerun with MODEL_SEED={seed})");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        ..Config::default()
    });
    if let Err(e) = runner.run(&cases(), |case| rt.block_on(run_case(case))) {
        panic!("seed {seed}: {e}");
    }
    println!(
        "{} exits driven, {} supervisors gave up",
        EXITS.load(Ordering::Relaxed),
        GAVE_UP.load(Ordering::Relaxed)
    );
}
