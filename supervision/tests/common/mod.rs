//! A test worker that records its starts and stops, counts live incarnations, and fails on
//! request; plus helpers that wait for conditions with a deadline.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef};
use verisim_supervision::{ChildInfo, ChildSpec, ChildState, SupervisorHandle};

/// Marks the panics tests cause on purpose, so the hook below keeps them out of the logs.
pub const EXPECTED: &str = "[expected panic]";

/// Print every panic except the ones tests cause on purpose (hundreds per run otherwise).
pub fn quiet_expected_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let text = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !text.ends_with(EXPECTED) {
                default(info);
            }
        }));
    });
}

/// Shared by all workers of one test.
#[derive(Clone, Default)]
pub struct Probe {
    log: Arc<Mutex<Vec<String>>>,
    live: Arc<AtomicUsize>,
    refuse: Arc<Mutex<HashSet<String>>>,
    refused: Arc<Mutex<HashMap<String, usize>>>,
}

impl Probe {
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
    pub fn clear_log(&self) {
        self.log.lock().unwrap().clear();
    }
    fn push(&self, entry: String) {
        self.log.lock().unwrap().push(entry);
    }
    pub fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }
    /// Make the worker with this name fail in `pre_start` until `accept` is called.
    pub fn refuse(&self, name: &str) {
        self.refuse.lock().unwrap().insert(name.to_string());
    }
    pub fn accept(&self, name: &str) {
        self.refuse.lock().unwrap().remove(name);
    }
    /// Whether this worker must refuse to start; counts the refusal if so.
    fn refuses(&self, name: &str) -> bool {
        let refuses = self.refuse.lock().unwrap().contains(name);
        if refuses {
            *self
                .refused
                .lock()
                .unwrap()
                .entry(name.to_string())
                .or_default() += 1;
        }
        refuses
    }
    /// How many starts of this worker were refused so far.
    pub fn refusals(&self, name: &str) -> usize {
        self.refused.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

#[derive(Clone, Copy)]
pub struct Worker;

#[derive(Clone)]
pub struct WorkerArgs {
    pub name: String,
    pub probe: Probe,
}

pub enum WorkerMsg {
    /// Panic in the handler.
    Panic(String),
    /// Return `Err` from the handler.
    Fail(String),
    /// Stop with this reason (None = normal).
    Stop(Option<String>),
    /// Block the handler for this long (to test shutdown timeouts).
    Block(Duration),
}

impl ractor::Message for WorkerMsg {}

struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub struct WorkerState {
    args: WorkerArgs,
    _live: Live,
}

impl Actor for Worker {
    type Msg = WorkerMsg;
    type State = WorkerState;
    type Arguments = WorkerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: WorkerArgs,
    ) -> Result<WorkerState, ActorProcessingErr> {
        if args.probe.refuses(&args.name) {
            return Err(format!("{} refuses to start", args.name).into());
        }
        args.probe.push(format!("start:{}", args.name));
        args.probe.live.fetch_add(1, Ordering::SeqCst);
        let live = Live(args.probe.live.clone());
        Ok(WorkerState { args, _live: live })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        state.args.probe.push(format!("stop:{}", state.args.name));
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: WorkerMsg,
        state: &mut WorkerState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WorkerMsg::Panic(text) => panic!("{text} {EXPECTED}"),
            WorkerMsg::Fail(text) => return Err(text.into()),
            WorkerMsg::Stop(reason) => myself.stop(reason),
            WorkerMsg::Block(d) => {
                state.args.probe.push(format!("block:{}", state.args.name));
                tokio::time::sleep(d).await
            }
        }
        Ok(())
    }
}

/// A permanent worker child named `name`.
pub fn worker(name: &str, probe: &Probe) -> ChildSpec {
    ChildSpec::for_actor(
        name,
        Worker,
        WorkerArgs {
            name: name.to_string(),
            probe: probe.clone(),
        },
    )
}

pub const DEADLINE: Duration = Duration::from_secs(20);

/// A period long enough that every restart of a test falls inside it.
pub const MINUTE: Duration = Duration::from_secs(60);

/// Poll `cond` until it holds, panicking with `what` after the deadline.
pub async fn wait_until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub async fn child(h: &SupervisorHandle, id: &str) -> ChildInfo {
    h.child(id).await.expect("child is known")
}

pub async fn cell(h: &SupervisorHandle, id: &str) -> ActorCell {
    child(h, id).await.cell.expect("child is running")
}

/// How to end a worker's incarnation.
#[derive(Clone, Debug)]
pub enum How {
    Panic(String),
    Fail(String),
    Stop(Option<String>),
    Kill,
}

/// End this incarnation and wait until it has exited. Its exit event is then already queued at
/// the supervisor, which handles supervision events before calls, so the next call sees the
/// supervisor's reaction.
pub async fn end(cell: &ActorCell, how: How) {
    quiet_expected_panics();
    match how {
        How::Panic(t) => cell.send_message(WorkerMsg::Panic(t)).ok(),
        How::Fail(t) => cell.send_message(WorkerMsg::Fail(t)).ok(),
        How::Stop(r) => cell.send_message(WorkerMsg::Stop(r)).ok(),
        How::Kill => {
            cell.kill();
            Some(())
        }
    };
    cell.wait(Some(DEADLINE)).await.expect("child exits");
}

/// End the child's incarnation, then make one call to the supervisor: it answers only after
/// handling the exit (restarts included), unless it gave up and stopped.
pub async fn end_child(h: &SupervisorHandle, id: &str, how: How) {
    let c = cell(h, id).await;
    end(&c, how).await;
    let _ = h.which_children().await;
}

pub async fn ids(h: &SupervisorHandle) -> Vec<Option<String>> {
    h.which_children()
        .await
        .expect("supervisor answers")
        .into_iter()
        .map(|c| c.actor_id)
        .collect()
}

pub async fn all_running(h: &SupervisorHandle) -> bool {
    match h.which_children().await {
        Ok(children) => children.iter().all(|c| c.state == ChildState::Running),
        Err(_) => false,
    }
}

pub fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Wait until exactly `n` worker incarnations are alive. A worker's state (which holds the
/// count) is dropped a moment after ractor reports the actor stopped, or when its supervisor
/// handles the exit event, so the count is checked with a deadline rather than at once.
pub async fn live_settles(probe: &Probe, n: usize) {
    let what = format!("{n} live workers");
    wait_until(&what, || async { probe.live() == n }).await;
}

/// A seed from the environment variable `var`, or from the clock; printed with the line that
/// replays it, so a failing run can be repeated.
pub fn seed(var: &str) -> u64 {
    let seed = std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        });
    println!("seed: {seed} (rerun with {var}={seed})");
    seed
}

/// A tiny seeded generator, so a failing random run can be replayed from the printed seed.
pub struct XorShift(u64);

impl XorShift {
    /// Any seed works (zero, the one fixed point of xorshift, is avoided).
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}
