//! A small supervised ractor application that is not VeriSim, and the kit's tests on it.
//!
//! The application: a `counter` actor registered under a ractor name, and a `pool` of four ping
//! workers under their own supervisor:
//!
//! ```text
//! app    one_for_one
//! ├── counter    worker, registered as "ping_pool.counter.<n>"
//! └── pool       one_for_one, 5 restarts in 10 s
//!     ├── w1 … w4  workers: answer Ping with their name and how many pings they served
//! ```
//!
//! Each worker passes a [`Gate`] at the start of its handler: open in production, closed by a
//! test to pause that worker. The tests (run by `cargo test -p verisim-faultkit --example
//! ping_pool`, and by the workspace's nextest run) kill workers by path and the counter by name
//! and wait for their replacements, check restart counts, run restart storms, and pause a worker.
//!
//! Run the demo: `cargo run -p verisim-faultkit --example ping_pool`

use std::collections::BTreeMap;
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort};
use verisim_faultkit::{FaultError, Gate, kill_and_wait, resolve, tree};
use verisim_supervision::{
    ChildSpec, StartError, Strategy, SupervisorError, SupervisorHandle, SupervisorSpec,
};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Numbers the applications started in this process, so each counter's name is unique
/// (ractor names are process-global, and tests run side by side).
static APPS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A ping worker.
#[derive(Clone)]
pub struct Worker;

/// What a worker answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pong {
    /// The worker's name.
    pub worker: String,
    /// Pings this incarnation served, this one included.
    pub served: u64,
}

/// A worker's messages.
pub enum WorkerMsg {
    /// Answer with a [`Pong`].
    Ping(RpcReplyPort<Pong>),
}

// ractor's `cluster` feature is on in this workspace: local-only messages say so.
impl ractor::Message for WorkerMsg {}

impl Actor for Worker {
    type Msg = WorkerMsg;
    type State = (String, Gate, u64);
    type Arguments = (String, Gate);

    async fn pre_start(
        &self,
        _: ActorRef<WorkerMsg>,
        (name, gate): (String, Gate),
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok((name, gate, 0))
    }

    async fn handle(
        &self,
        _: ActorRef<WorkerMsg>,
        msg: WorkerMsg,
        (name, gate, served): &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // The pause point: free when the gate is open.
        gate.pass().await;
        match msg {
            WorkerMsg::Ping(reply) => {
                *served += 1;
                let _ = reply.send(Pong {
                    worker: name.clone(),
                    served: *served,
                });
            }
        }
        Ok(())
    }
}

/// The counter: adds up what it is sent.
#[derive(Clone)]
pub struct Counter;

/// The counter's messages.
pub enum CounterMsg {
    /// Add to the total.
    Add(u64),
    /// Answer the total.
    Get(RpcReplyPort<u64>),
}

impl ractor::Message for CounterMsg {}

impl Actor for Counter {
    type Msg = CounterMsg;
    type State = u64;
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<CounterMsg>, _: ()) -> Result<u64, ActorProcessingErr> {
        Ok(0)
    }

    async fn handle(
        &self,
        _: ActorRef<CounterMsg>,
        msg: CounterMsg,
        total: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CounterMsg::Add(n) => *total += n,
            CounterMsg::Get(reply) => {
                let _ = reply.send(*total);
            }
        }
        Ok(())
    }
}

/// The running application, with each worker's gate (a test closes one to pause that worker).
pub struct App {
    /// The root supervisor.
    pub root: SupervisorHandle,
    /// Each worker's gate, by worker name.
    pub gates: BTreeMap<String, Gate>,
    /// The counter's ractor name.
    pub counter: String,
}

/// Starts the application with `workers` ping workers.
pub async fn start(workers: usize) -> Result<App, SupervisorError> {
    let mut gates = BTreeMap::new();
    let mut pool =
        SupervisorSpec::new("pool", Strategy::OneForOne).intensity(5, Duration::from_secs(10));
    for i in 1..=workers {
        let name = format!("w{i}");
        let gate = Gate::new();
        gates.insert(name.clone(), gate.clone());
        pool = pool.child(ChildSpec::for_actor(name.clone(), Worker, (name, gate)));
    }
    // The counter is registered under a name, so it is spawned by hand (ractor names are
    // process-global; this one is unique to the application).
    let name = format!(
        "ping_pool.counter.{}",
        APPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let registered = name.clone();
    let counter = ChildSpec::new("counter", move |sup: ActorCell| {
        let name = registered.clone();
        async move {
            let (counter, _) = Actor::spawn_linked(Some(name), Counter, (), sup)
                .await
                .map_err(StartError::from)?;
            Ok(counter.get_cell())
        }
    });
    let app = SupervisorSpec::new("app", Strategy::OneForOne)
        .intensity(10, Duration::from_secs(10))
        .child(counter)
        .child(ChildSpec::supervisor("pool", pool));
    let (root, _join) = SupervisorHandle::start(app).await?;
    Ok(App {
        root: root.with_timeout(Duration::from_secs(5)),
        gates,
        counter: name,
    })
}

/// The worker at `path` (`"pool/w1"`), as it runs now.
pub async fn worker(app: &App, path: &str) -> Result<ActorRef<WorkerMsg>, FaultError> {
    resolve(&app.root, path)
        .await?
        .cell
        .map(ActorRef::from)
        .ok_or_else(|| FaultError::NotRunning(path.to_string()))
}

/// Pings the worker at `path`, waiting up to `timeout` for the answer.
pub async fn ping(app: &App, path: &str, timeout: Duration) -> Result<Pong, Error> {
    let w = worker(app, path).await?;
    match w.call(WorkerMsg::Ping, Some(timeout)).await? {
        ractor::rpc::CallResult::Success(p) => Ok(p),
        other => Err(format!("ping {path}: {other:?}").into()),
    }
}

/// Adds `n` to the counter and answers the total.
pub async fn count(app: &App, n: u64) -> Result<u64, Error> {
    let counter: ActorRef<CounterMsg> = ractor::registry::where_is(app.counter.clone())
        .ok_or("the counter is not registered")?
        .into();
    counter.cast(CounterMsg::Add(n))?;
    match counter
        .call(CounterMsg::Get, Some(Duration::from_secs(5)))
        .await?
    {
        ractor::rpc::CallResult::Success(total) => Ok(total),
        other => Err(format!("counter: {other:?}").into()),
    }
}

/// The demo: start, ping, count, kill a worker by path, show the tree.
pub async fn run() -> Result<(), Error> {
    let app = start(4).await?;
    println!("{} workers, counter `{}`", app.gates.len(), app.counter);
    let pong = ping(&app, "pool/w2", Duration::from_secs(5)).await?;
    println!("total {}", count(&app, pong.served).await?);
    let r = kill_and_wait(&app.root, "pool/w2", Duration::from_secs(5)).await?;
    println!("pool/w2: {} replaced by {}", r.old, r.new);
    let t = tree(&app.root).await?;
    println!("{}  restarts: {:?}", t.shape(), t.restart_counts());
    app.root.stop().await;
    Ok(())
}

#[cfg(not(test))]
#[tokio::main]
async fn main() -> Result<(), Error> {
    run().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use verisim_faultkit::{Fault, Storm, kill_named_and_wait, wait_tree};
    use verisim_supervision::ChildState;

    const WAIT: Duration = Duration::from_secs(10);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_demo_runs() {
        run().await.expect("the ping_pool demo");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_worker_killed_by_path_is_replaced_alone() {
        let app = start(4).await.unwrap();
        let before = ping(&app, "pool/w3", WAIT).await.unwrap();
        assert_eq!(before.served, 1);

        let r = kill_and_wait(&app.root, "pool/w3", WAIT).await.unwrap();
        assert_ne!(r.old, r.new);
        assert_eq!(r.restart_count, Some(1));

        let t = tree(&app.root).await.unwrap();
        t.expect_shape("app(counter pool(w1 w2 w3 w4))").unwrap();
        t.expect_restarts(&[
            ("counter", 0),
            ("pool", 0),
            ("pool/w1", 0),
            ("pool/w2", 0),
            ("pool/w3", 1),
            ("pool/w4", 0),
        ])
        .unwrap();
        t.expect_all_running().unwrap();
        // The new incarnation starts from its initial state.
        assert_eq!(ping(&app, "pool/w3", WAIT).await.unwrap().served, 1);
        app.root.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_counter_killed_by_name_is_registered_again() {
        let app = start(1).await.unwrap();
        assert_eq!(count(&app, 5).await.unwrap(), 5);
        let r = kill_named_and_wait(&app.counter, &Fault::Kill, WAIT)
            .await
            .unwrap();
        // The new incarnation, found by name again, starts from zero.
        assert_eq!(count(&app, 1).await.unwrap(), 1);
        assert_ne!(r.old, r.new);
        let t = tree(&app.root).await.unwrap();
        assert_eq!(t.restart_count("counter"), Some(1));
        assert_eq!(t.actor_id("counter"), Some(r.new.as_str()));
        app.root.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stop_with_a_reason_is_an_abnormal_exit_and_restarts() {
        let app = start(2).await.unwrap();
        let fault = Fault::Stop("disk gone".into());
        let r = verisim_faultkit::fault_and_wait(&app.root, "pool/w1", &fault, WAIT)
            .await
            .unwrap();
        assert_eq!(r.restart_count, Some(1));
        let info = resolve(&app.root, "pool/w1").await.unwrap();
        assert_eq!(
            info.last_failure
                .as_deref()
                .map(|f| f.contains("disk gone")),
            Some(true),
            "{info:?}"
        );
        app.root.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_storm_within_the_intensity_restarts_each_kill_once() {
        let app = start(4).await.unwrap();
        let targets = ["pool/w1", "pool/w2", "pool/w3", "pool/w4"];
        // Five restarts in 10 s are allowed: four kills stay within.
        let report = Storm::new(4).run(&app.root, &targets).await.unwrap();
        let t = report.tree.expect("the storm settled");
        for p in targets {
            let kills = u64::from(report.kills.get(p).copied().unwrap_or(0));
            assert_eq!(t.restart_count(p), Some(kills), "{p}, seed {}", report.seed);
        }
        assert_eq!(t.restart_count("pool"), Some(0), "seed {}", report.seed);
        app.root.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_storm_beyond_the_intensity_escalates_and_the_pool_is_restarted() {
        let app = start(4).await.unwrap();
        let old_pool = resolve(&app.root, "pool").await.unwrap().actor_id;
        // Six kills, each waiting for its restart: the sixth restart within 10 s is one more
        // than the pool's intensity allows, so the pool gives up and `app` restarts it, with
        // fresh workers (the last wait sees the new pool's worker at the same path).
        let report = Storm::new(6)
            .settle(false)
            .run(&app.root, &["pool/w1", "pool/w2", "pool/w3", "pool/w4"])
            .await
            .unwrap();
        let seed = report.seed;
        let t = wait_tree(&app.root, "the pool restarted by app", WAIT, |t| {
            t.restart_count("pool") >= Some(1) && t.all_running()
        })
        .await
        .unwrap_or_else(|e| panic!("{e} (seed {seed})"));
        assert_ne!(resolve(&app.root, "pool").await.unwrap().actor_id, old_pool);
        t.expect_shape("app(counter pool(w1 w2 w3 w4))").unwrap();
        assert_eq!(t.restart_count("counter"), Some(0));
        assert_eq!(t.restart_count("pool"), Some(1), "seed {seed}");
        app.root.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_paused_worker_answers_nothing_until_released() {
        let app = start(2).await.unwrap();
        let gate = app.gates["w1"].clone();
        gate.close();
        let w1 = worker(&app, "pool/w1").await.unwrap();
        let pending = tokio::spawn(async move { w1.call(WorkerMsg::Ping, Some(WAIT)).await });
        gate.wait_held(1, WAIT).await.unwrap();
        // Paused: a call with a short timeout gets no answer; the other worker still answers.
        assert!(
            ping(&app, "pool/w1", Duration::from_millis(100))
                .await
                .is_err()
        );
        assert_eq!(ping(&app, "pool/w2", WAIT).await.unwrap().worker, "w2");
        // The supervisor still sees it running: a pause is not a crash.
        assert_eq!(
            resolve(&app.root, "pool/w1").await.unwrap().state,
            ChildState::Running
        );
        gate.open();
        let first = pending.await.unwrap().unwrap();
        assert!(matches!(
            first,
            ractor::rpc::CallResult::Success(Pong { served: 1, .. })
        ));
        assert_eq!(ping(&app, "pool/w1", WAIT).await.unwrap().worker, "w1");
        app.root.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_paused_worker_can_still_be_killed_and_replaced() {
        let app = start(1).await.unwrap();
        let gate = app.gates["w1"].clone();
        gate.close();
        let w1 = worker(&app, "pool/w1").await.unwrap();
        let _stuck = tokio::spawn(async move { w1.call(WorkerMsg::Ping, Some(WAIT)).await });
        gate.wait_held(1, WAIT).await.unwrap();
        kill_and_wait(&app.root, "pool/w1", WAIT).await.unwrap();
        // The killed handler's wait was dropped with it.
        assert_eq!(gate.held(), 0);
        gate.open();
        assert_eq!(ping(&app, "pool/w1", WAIT).await.unwrap().served, 1);
        app.root.stop().await;
    }
}
