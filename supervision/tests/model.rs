//! Random child exits against a small model of OTP's rules, on a two-level tree: a `top`
//! supervisor with workers and one child supervisor `sub` that has workers of its own. After
//! every exit the whole tree as `tree()` reports it (ids, states, restart counts, which child
//! supervisors run) and whether `top` is alive must match the model. Exits that make `sub` give
//! up check escalation: `sub` exits with a `shutdown` reason, and its restart type in `top`
//! decides what happens next, counting against `top`'s own intensity. Both supervisors have a
//! random `auto_shutdown` and random significant children (where valid), so OTP 24's automatic
//! shutdown, and its escalation as a normal exit of `sub`, is checked against the model too.
//! `top` also gets up to three children from its template (`start_from_template`, after the
//! static ones), which follow the same rules; when `top` is finally stopped, the order in which
//! its workers stop must be the model's: reverse start order, where template children started
//! next to each other stop together (OTP's `terminate_dynamic_children`) and `sub`'s workers stop
//! in reverse order at `sub`'s place.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use verisim_supervision::{
    AutoShutdown, ChildSpec, ChildState, Restart, Strategy as Otp, SupervisorHandle,
    SupervisorSpec, TreeNode,
};

/// Exits driven, and supervisors that gave up, over all cases (printed, so a run shows its reach).
static EXITS: AtomicUsize = AtomicUsize::new(0);
static TOP_GAVE_UP: AtomicUsize = AtomicUsize::new(0);
static SUB_GAVE_UP: AtomicUsize = AtomicUsize::new(0);
static SUB_ENDED: AtomicUsize = AtomicUsize::new(0);
static TOP_AUTO_SHUTDOWN: AtomicUsize = AtomicUsize::new(0);
static STOPS_CHECKED: AtomicUsize = AtomicUsize::new(0);
static SUB_AUTO_SHUTDOWN: AtomicUsize = AtomicUsize::new(0);

/// The child supervisor's id in `top`.
const SUB: &str = "sub";

#[derive(Clone, Copy, Debug)]
enum Exit {
    Normal,
    Panic,
    Fail,
    Kill,
}

impl Exit {
    fn abnormal(self) -> bool {
        !matches!(self, Exit::Normal)
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Row {
    id: String,
    state: ChildState,
    restarts: u64,
}

/// What a supervisor did about one child's exit.
enum Outcome {
    /// Not restarted: left stopped or failed, or removed if temporary.
    Left,
    /// These children were (re)started.
    Restarted(Vec<String>),
    /// One restart too many: it stopped every child and exits.
    GaveUp,
    /// Significant children ended: it stopped every child and exits with `shutdown`.
    AutoShutdown,
}

/// One supervisor: OTP's supervisor reduced to what these events touch. The period is an hour,
/// so every restart of a case falls inside it.
#[derive(Clone, Debug)]
struct Level {
    strategy: Otp,
    intensity: u32,
    auto_shutdown: AutoShutdown,
    restarts: u32,
    /// Per child: restart type and whether it is significant.
    types: Vec<(String, Restart, bool)>,
    rows: Vec<Row>,
}

impl Level {
    fn new(strategy: Otp, intensity: u32, auto_shutdown: AutoShutdown) -> Self {
        Self {
            strategy,
            intensity,
            auto_shutdown,
            restarts: 0,
            types: Vec::new(),
            rows: Vec::new(),
        }
    }

    fn add(&mut self, id: &str, restart: Restart, significant: bool) {
        self.types.push((id.to_string(), restart, significant));
        self.rows.push(Row {
            id: id.to_string(),
            state: ChildState::Running,
            restarts: 0,
        });
    }

    fn restart_type(&self, id: &str) -> Restart {
        self.types
            .iter()
            .find(|(i, _, _)| i == id)
            .map(|(_, r, _)| *r)
            .unwrap_or(Restart::Permanent)
    }

    fn significant(&self, id: &str) -> bool {
        self.types.iter().any(|(i, _, s)| i == id && *s)
    }

    /// `id` exited; `gave_up_child` when it is a child supervisor that exceeded its intensity
    /// (a normal `shutdown` exit, but shown as `failed` if it is not restarted).
    fn exit(&mut self, id: &str, abnormal: bool, gave_up_child: bool) -> Outcome {
        let Some(i) = self.rows.iter().position(|r| r.id == id) else {
            return Outcome::Left;
        };
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
                self.rows[i].state = if abnormal || gave_up_child {
                    ChildState::Failed
                } else {
                    ChildState::Stopped
                };
            }
            // OTP 24's do_auto_shutdown/2, written out from its documentation.
            let others_running = self
                .rows
                .iter()
                .any(|r| r.state == ChildState::Running && self.significant(&r.id));
            let shut = self.significant(id)
                && match self.auto_shutdown {
                    AutoShutdown::Never => false,
                    AutoShutdown::AnySignificant => true,
                    AutoShutdown::AllSignificant => !others_running,
                };
            if shut {
                self.rows.clear();
                return Outcome::AutoShutdown;
            }
            return Outcome::Left;
        }
        self.restarts += 1;
        if self.restarts > self.intensity {
            self.rows.clear();
            return Outcome::GaveUp;
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
                .any(|(i, r, _)| i == id && *r == Restart::Temporary)
        };
        self.rows
            .retain(|r| r.id == id || !in_range.contains(&r.id) || !is_temp(&r.id));
        let mut started = Vec::new();
        for row in self.rows.iter_mut().filter(|r| in_range.contains(&r.id)) {
            row.state = ChildState::Running;
            row.restarts += 1;
            started.push(row.id.clone());
        }
        Outcome::Restarted(started)
    }

    fn running(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.state == ChildState::Running)
    }
}

/// The tree as `tree()` shows it: per child its id, state, restart count and, for a running
/// child supervisor, its own children.
#[derive(Clone, Debug, PartialEq)]
struct View(Vec<(String, ChildState, u64, Option<View>)>);

impl View {
    fn of(tree: &TreeNode) -> Self {
        Self(
            tree.children
                .iter()
                .map(|c| {
                    (
                        c.info.id.clone(),
                        c.info.state,
                        c.info.restart_count,
                        c.subtree.as_deref().map(View::of),
                    )
                })
                .collect(),
        )
    }
}

struct Model {
    top: Level,
    alive: bool,
    /// `top` ended by `auto_shutdown` (rather than by giving up).
    top_shut_down: bool,
    /// `sub` as configured: every start of it begins from here (a new actor, a new history).
    sub_fresh: Level,
    /// The running `sub`.
    sub: Option<Level>,
    /// `top`'s children started from its template.
    dynamic: HashSet<String>,
}

/// Where an exit is aimed.
#[derive(Clone, Debug)]
enum Target {
    TopWorker(String),
    Sub,
    SubWorker(String),
}

impl Model {
    fn view(&self) -> View {
        View(
            self.top
                .rows
                .iter()
                .map(|r| {
                    let subtree = (r.id == SUB && r.state == ChildState::Running)
                        .then_some(self.sub.as_ref())
                        .flatten()
                        .map(|sub| {
                            View(
                                sub.rows
                                    .iter()
                                    .map(|s| (s.id.clone(), s.state, s.restarts, None))
                                    .collect(),
                            )
                        });
                    (r.id.clone(), r.state, r.restarts, subtree)
                })
                .collect(),
        )
    }

    /// Every child an exit can be aimed at now, in a fixed order.
    fn targets(&self) -> Vec<Target> {
        let mut targets = Vec::new();
        for row in self.top.running() {
            if row.id == SUB {
                targets.push(Target::Sub);
                if let Some(sub) = &self.sub {
                    for s in sub.running() {
                        targets.push(Target::SubWorker(s.id.clone()));
                    }
                }
            } else {
                targets.push(Target::TopWorker(row.id.clone()));
            }
        }
        targets
    }

    /// The order in which stopping `top` stops the running workers: steps in reverse start
    /// order, each one worker, or the running template children started next to each other
    /// (in any order among themselves); at `sub`'s place, its running workers in reverse order.
    fn stop_steps(&self) -> Vec<Vec<String>> {
        let rows = &self.top.rows;
        let is_dyn = |r: &Row| self.dynamic.contains(&r.id);
        let mut steps = Vec::new();
        let mut end = rows.len();
        while end > 0 {
            if is_dyn(&rows[end - 1]) {
                let start = rows[..end]
                    .iter()
                    .rposition(|r| !is_dyn(r))
                    .map_or(0, |p| p + 1);
                let group: Vec<String> = rows[start..end]
                    .iter()
                    .filter(|r| r.state == ChildState::Running)
                    .map(|r| r.id.clone())
                    .collect();
                if !group.is_empty() {
                    steps.push(group);
                }
                end = start;
                continue;
            }
            let row = &rows[end - 1];
            if row.state == ChildState::Running {
                if row.id == SUB {
                    if let Some(sub) = &self.sub {
                        let running: Vec<&Row> = sub.running().collect();
                        for s in running.into_iter().rev() {
                            steps.push(vec![s.id.clone()]);
                        }
                    }
                } else {
                    steps.push(vec![row.id.clone()]);
                }
            }
            end -= 1;
        }
        steps
    }

    fn live_workers(&self) -> usize {
        let top = self.top.running().filter(|r| r.id != SUB).count();
        top + self.sub.as_ref().map_or(0, |s| s.running().count())
    }

    fn top_exit(&mut self, id: &str, abnormal: bool, gave_up_child: bool) {
        if id == SUB {
            self.sub = None;
        }
        match self.top.exit(id, abnormal, gave_up_child) {
            outcome @ (Outcome::GaveUp | Outcome::AutoShutdown) => {
                self.top_shut_down = matches!(outcome, Outcome::AutoShutdown);
                self.alive = false;
                self.sub = None;
            }
            Outcome::Restarted(started) => {
                if started.iter().any(|s| s == SUB) {
                    // A restart that starts `sub` stops it first if it runs: a new actor.
                    self.sub = Some(self.sub_fresh.clone());
                } else if !self.top.rows.iter().any(|r| r.id == SUB) {
                    // A temporary `sub` in the restart's range was stopped and removed.
                    self.sub = None;
                }
            }
            Outcome::Left => {}
        }
    }

    /// Returns whether `sub` gave up (`Some(true)`) or shut itself down (`Some(false)`).
    fn apply(&mut self, target: &Target, exit: Exit) -> Option<bool> {
        match target {
            Target::TopWorker(id) => self.top_exit(id, exit.abnormal(), false),
            // Only a stop (normal) or a kill can be aimed at a supervisor from outside.
            Target::Sub => self.top_exit(SUB, exit.abnormal(), false),
            Target::SubWorker(id) => {
                let sub = self.sub.as_mut()?;
                match sub.exit(id, exit.abnormal(), false) {
                    Outcome::GaveUp => {
                        // Escalation: `sub` exits with `shutdown: reached_max_restart_intensity`.
                        self.top_exit(SUB, false, true);
                        return Some(true);
                    }
                    Outcome::AutoShutdown => {
                        // A plain `shutdown`: a normal exit, not a failure.
                        self.top_exit(SUB, false, false);
                        return Some(false);
                    }
                    Outcome::Left | Outcome::Restarted(_) => {}
                }
            }
        }
        None
    }
}

#[derive(Clone, Debug)]
struct Case {
    top_strategy: Otp,
    top_intensity: u32,
    top_auto: AutoShutdown,
    /// Restart type, and significant if that is valid there.
    top_types: Vec<(Restart, bool)>,
    sub_at: usize,
    sub_restart: (Restart, bool),
    sub_strategy: Otp,
    sub_intensity: u32,
    sub_auto: AutoShutdown,
    sub_types: Vec<(Restart, bool)>,
    /// `top`'s children from its template, in the order they are started.
    dyn_types: Vec<(Restart, bool)>,
    events: Vec<(usize, Exit)>,
}

/// A random significant flag only where OTP accepts it (the refusals are tested on their own).
fn significant(auto: AutoShutdown, (restart, wanted): (Restart, bool)) -> bool {
    wanted && restart != Restart::Permanent && auto != AutoShutdown::Never
}

fn cases() -> impl Strategy<Value = Case> {
    let strategy = || {
        prop_oneof![
            Just(Otp::OneForOne),
            Just(Otp::OneForAll),
            Just(Otp::RestForOne)
        ]
    };
    let restart = || {
        (
            prop_oneof![
                Just(Restart::Permanent),
                Just(Restart::Transient),
                Just(Restart::Temporary)
            ],
            any::<bool>(),
        )
    };
    // Mostly `never`, so most cases still run long enough to reach escalation.
    let auto = || {
        prop_oneof![
            2 => Just(AutoShutdown::Never),
            1 => Just(AutoShutdown::AnySignificant),
            1 => Just(AutoShutdown::AllSignificant)
        ]
    };
    let exit = prop_oneof![
        Just(Exit::Normal),
        Just(Exit::Panic),
        Just(Exit::Fail),
        Just(Exit::Kill)
    ];
    (
        (
            strategy(),
            0u32..8,
            auto(),
            proptest::collection::vec(restart(), 0..4),
            any::<usize>(),
            restart(),
        ),
        (
            strategy(),
            0u32..4,
            auto(),
            proptest::collection::vec(restart(), 1..4),
        ),
        proptest::collection::vec((any::<usize>(), exit), 0..16),
        proptest::collection::vec(restart(), 0..4),
    )
        .prop_map(
            |(
                (top_strategy, top_intensity, top_auto, top_types, sub_at, sub_restart),
                (sub_strategy, sub_intensity, sub_auto, sub_types),
                events,
                dyn_types,
            )| Case {
                top_strategy,
                top_intensity,
                top_auto,
                top_types,
                sub_at,
                sub_restart,
                sub_strategy,
                sub_intensity,
                sub_auto,
                sub_types,
                dyn_types,
                events,
            },
        )
}

/// Both specs and the model of the same tree.
fn build(case: &Case, probe: &Probe) -> (SupervisorSpec, Model) {
    let hour = Duration::from_secs(3600);
    let mut sub_spec = SupervisorSpec::new(SUB, case.sub_strategy)
        .intensity(case.sub_intensity, hour)
        .auto_shutdown(case.sub_auto);
    let mut sub = Level::new(case.sub_strategy, case.sub_intensity, case.sub_auto);
    for (i, &(restart, wanted)) in case.sub_types.iter().enumerate() {
        let id = format!("s{i}");
        let sig = significant(case.sub_auto, (restart, wanted));
        sub_spec = sub_spec.child(worker(&id, probe).restart(restart).significant(sig));
        sub.add(&id, restart, sig);
    }
    let mut top_spec = SupervisorSpec::new("top", case.top_strategy)
        .intensity(case.top_intensity, hour)
        .auto_shutdown(case.top_auto);
    let mut top = Level::new(case.top_strategy, case.top_intensity, case.top_auto);
    let sub_at = case.sub_at % (case.top_types.len() + 1);
    for i in 0..=case.top_types.len() {
        if i == sub_at {
            let (restart, _) = case.sub_restart;
            let sig = significant(case.top_auto, case.sub_restart);
            top_spec = top_spec.child(
                ChildSpec::supervisor(SUB, sub_spec.clone())
                    .restart(restart)
                    .significant(sig),
            );
            top.add(SUB, restart, sig);
        }
        if let Some(&(restart, wanted)) = case.top_types.get(i) {
            let id = format!("c{i}");
            let sig = significant(case.top_auto, (restart, wanted));
            top_spec = top_spec.child(worker(&id, probe).restart(restart).significant(sig));
            top.add(&id, restart, sig);
        }
    }
    // Template children come after the static ones, started by `run_case`; their restart
    // types are the case's, by start number.
    let dyn_types: Vec<(Restart, bool)> = case
        .dyn_types
        .iter()
        .map(|&(restart, wanted)| (restart, significant(case.top_auto, (restart, wanted))))
        .collect();
    let mut dynamic = HashSet::new();
    for (k, &(restart, sig)) in dyn_types.iter().enumerate() {
        let id = format!("d{}", k + 1);
        top.add(&id, restart, sig);
        dynamic.insert(id);
    }
    let template_probe = probe.clone();
    let top_spec = top_spec.template(move |n| {
        let (restart, sig) = usize::try_from(n)
            .ok()
            .and_then(|n| dyn_types.get(n - 1).copied())
            .unwrap_or((Restart::Temporary, false));
        worker(&format!("d{n}"), &template_probe)
            .restart(restart)
            .significant(sig)
    });
    let model = Model {
        top,
        alive: true,
        top_shut_down: false,
        sub_fresh: sub.clone(),
        sub: Some(sub),
        dynamic,
    };
    (top_spec, model)
}

fn how(exit: Exit) -> How {
    match exit {
        Exit::Normal => How::Stop(None),
        Exit::Panic => How::Panic("model panic".into()),
        Exit::Fail => How::Fail("model error".into()),
        Exit::Kill => How::Kill,
    }
}

fn fail(what: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(what.to_string())
}

/// Drive one exit in the real tree and wait until `top` has reacted to it (and `sub`, if the
/// exit was one of its workers'), so the next `tree()` sees the outcome.
async fn drive(top: &SupervisorHandle, target: &Target, exit: Exit) -> Result<(), TestCaseError> {
    match target {
        Target::TopWorker(id) => end_child(top, id, how(exit)).await,
        Target::Sub => {
            let sub = cell(top, SUB).await;
            if exit.abnormal() {
                sub.kill();
            } else {
                sub.stop(None);
            }
            sub.wait(Some(DEADLINE))
                .await
                .map_err(|_| fail("sub did not exit"))?;
            let _ = top.which_children().await;
        }
        Target::SubWorker(id) => {
            let sub = top.child_supervisor(SUB).await.map_err(fail)?;
            let c = cell(&sub, id).await;
            end(&c, how(exit)).await;
            // An answer means `sub` handled the exit and goes on; no answer means it gave up
            // and stops: wait for that, so `top` has its exit event queued before we ask it.
            if sub.which_children().await.is_err() {
                sub.cell()
                    .wait(Some(DEADLINE))
                    .await
                    .map_err(|_| fail("sub did not exit after giving up"))?;
            }
            let _ = top.which_children().await;
        }
    }
    Ok(())
}

/// Whether exactly `n` workers are alive within a few seconds. (A worker's state, which holds
/// the count, is dropped a moment after its exit is reported.) A failed case is shrunk by
/// running it many times, so this waits less than [`DEADLINE`].
async fn settles(probe: &Probe, n: usize) -> bool {
    let start = std::time::Instant::now();
    while probe.live() != n {
        if start.elapsed() > Duration::from_secs(5) {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

async fn run_case(case: Case) -> Result<(), TestCaseError> {
    let probe = Probe::default();
    let (spec, mut model) = build(&case, &probe);
    let (top, join) = SupervisorHandle::start(spec).await.map_err(fail)?;
    let top = top.with_timeout(DEADLINE);
    for _ in 0..case.dyn_types.len() {
        top.start_from_template().await.map_err(fail)?;
    }
    prop_assert_eq!(View::of(&top.tree().await.map_err(fail)?), model.view());

    for (pick, exit) in case.events {
        let targets = model.targets();
        if targets.is_empty() {
            break;
        }
        let target = targets[pick % targets.len()].clone();
        drive(&top, &target, exit).await?;
        if matches!(target, Target::Sub) {
            SUB_ENDED.fetch_add(1, Ordering::Relaxed);
        }
        match model.apply(&target, exit) {
            Some(true) => SUB_GAVE_UP.fetch_add(1, Ordering::Relaxed),
            Some(false) => SUB_AUTO_SHUTDOWN.fetch_add(1, Ordering::Relaxed),
            None => 0,
        };
        EXITS.fetch_add(1, Ordering::Relaxed);

        if model.alive {
            let got = top.tree().await.map(|t| View::of(&t));
            prop_assert_eq!(
                got.as_ref().ok(),
                Some(&model.view()),
                "after {:?} of {:?}: {:?}",
                exit,
                target,
                got
            );
            let want = model.live_workers();
            prop_assert!(
                settles(&probe, want).await,
                "after {:?} of {:?}: {} live workers, the model has {}",
                exit,
                target,
                probe.live(),
                want
            );
        } else {
            let stopped = tokio::time::timeout(DEADLINE, join).await;
            prop_assert!(stopped.is_ok(), "top should have given up or shut down");
            prop_assert!(!top.is_alive());
            if model.top_shut_down {
                TOP_AUTO_SHUTDOWN.fetch_add(1, Ordering::Relaxed);
            } else {
                TOP_GAVE_UP.fetch_add(1, Ordering::Relaxed);
            }
            live_settles(&probe, 0).await;
            return Ok(());
        }
    }
    let steps = model.stop_steps();
    probe.clear_log();
    top.stop().await;
    let log: Vec<String> = probe
        .log()
        .into_iter()
        .filter_map(|e| e.strip_prefix("stop:").map(str::to_string))
        .collect();
    let mut at = 0;
    for step in &steps {
        let mut got = log.get(at..at + step.len()).unwrap_or_default().to_vec();
        got.sort();
        let mut want = step.clone();
        want.sort();
        prop_assert_eq!(got, want, "stop order {:?}, model's steps {:?}", log, steps);
        at += step.len();
    }
    prop_assert_eq!(
        at,
        log.len(),
        "stop order {:?}, model's steps {:?}",
        log,
        steps
    );
    STOPS_CHECKED.fetch_add(1, Ordering::Relaxed);
    live_settles(&probe, 0).await;
    Ok(())
}

#[test]
fn a_two_level_tree_follows_the_otp_model() {
    let seed = seed("MODEL_SEED");
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
        panic!("seed {seed} (rerun with MODEL_SEED={seed}): {e}");
    }
    println!(
        "{} exits driven ({} of sub itself); sub gave up {} times, top {} times; \
         auto_shutdown: sub {} times, top {} times; stop order checked {} times",
        EXITS.load(Ordering::Relaxed),
        SUB_ENDED.load(Ordering::Relaxed),
        SUB_GAVE_UP.load(Ordering::Relaxed),
        TOP_GAVE_UP.load(Ordering::Relaxed),
        SUB_AUTO_SHUTDOWN.load(Ordering::Relaxed),
        TOP_AUTO_SHUTDOWN.load(Ordering::Relaxed),
        STOPS_CHECKED.load(Ordering::Relaxed)
    );
}
