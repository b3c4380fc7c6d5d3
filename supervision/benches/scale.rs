//! Scale: a restart storm and a 10,000-child dynamic supervisor. Measured like
//! `supervision/bench/otp_scale.erl` measures OTP, in the same `compare.sh` run.
//!
//! - storm: a fresh supervisor with N permanent `BrutalKill` workers; one task kills every
//!   worker at once, then waits until all N replacements have run `pre_start` (each stamps the
//!   time at its end). Time = last stamp - the instant before the first kill. `one_for_one` with
//!   N = 100 and N = 1,000, `one_for_all` with N = 1,000. A fresh supervisor per storm, as on
//!   the OTP side (where it keeps the restart history to this storm's).
//! - dynamic: 10,000 children started one by one (each call returns once the child's
//!   `pre_start` has run), then `which_children` and `count_children` at 10,000, then
//!   `SupervisorHandle::stop`. Two flavours, as on the OTP side: `start_from_template` (template
//!   children, stopped together like a `simple_one_for_one`'s or a `DynamicSupervisor`'s) and
//!   `start_child` with a spec per child (stopped one at a time in reverse start order, like a
//!   `one_for_one`'s). Children are `Temporary`, `Shutdown::Timeout(5 s)`: a graceful stop, as
//!   on the OTP side (`shutdown => 5000`).
//! - slow stop: 1,000 children whose stop takes 1 ms (`post_stop` sleeps; on the OTP side the
//!   worker traps exits and sleeps 1 ms before exiting), then the time to stop the supervisor.
//!   Same two flavours: this is where stopping together differs from one at a time.
//!
//! Raw samples, median and p99, the driver a task inside a 2-worker tokio runtime.
//! Run: `cargo bench -p verisim-supervision --bench scale`, or `supervision/bench/compare.sh`;
//! `SCALE_ONLY=storm_one_for_all` (or `storm_one_for_one`, `dyn`) runs one part, for a profiler.

use std::time::{Duration, Instant};

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef};
use tokio::runtime::Runtime;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use verisim_supervision::{
    ChildSpec, Restart, Shutdown, Strategy, SupervisorHandle, SupervisorSpec,
};

const DYN: usize = 10_000;
const DYN_ROUNDS: usize = 5;
const QUERY_SAMPLES: usize = 20;
const HOUR: Duration = Duration::from_secs(3600);

#[derive(Clone, Copy)]
struct Stamp;

struct NoMsg;
impl ractor::Message for NoMsg {}

impl Actor for Stamp {
    type Msg = NoMsg;
    type State = ();
    type Arguments = UnboundedSender<(ActorCell, Instant)>;

    async fn pre_start(
        &self,
        myself: ActorRef<NoMsg>,
        tx: UnboundedSender<(ActorCell, Instant)>,
    ) -> Result<(), ActorProcessingErr> {
        let _ = tx.send((myself.get_cell(), Instant::now()));
        Ok(())
    }
}

#[derive(Clone, Copy)]
struct SlowStop;

impl Actor for SlowStop {
    type Msg = NoMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<NoMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn post_stop(&self, _: ActorRef<NoMsg>, _: &mut ()) -> Result<(), ActorProcessingErr> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok(())
    }
}

const SLOW: usize = 1_000;

/// Start `SLOW` children that take 1 ms to stop, then time the supervisor's stop.
async fn slow_round(template: bool) -> Duration {
    let child = |n: u64| {
        ChildSpec::for_actor(format!("s{n}"), SlowStop, ())
            .restart(Restart::Temporary)
            .shutdown(Shutdown::Timeout(Duration::from_secs(5)))
    };
    let spec = SupervisorSpec::new("slow", Strategy::OneForOne).template(child);
    let (sup, _join) = SupervisorHandle::start(spec)
        .await
        .expect("supervisor starts");
    for i in 1..=SLOW {
        if template {
            sup.start_from_template().await.expect("child starts");
        } else {
            sup.start_child(child(i as u64))
                .await
                .expect("child starts");
        }
    }
    let t = Instant::now();
    sup.stop().await;
    t.elapsed()
}

#[derive(Clone, Copy)]
struct Idle;

impl Actor for Idle {
    type Msg = NoMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<NoMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

/// Wait for `n` stamps; returns the cells and the latest stamp.
async fn stamps(
    rx: &mut UnboundedReceiver<(ActorCell, Instant)>,
    n: usize,
) -> (Vec<ActorCell>, Option<Instant>) {
    let mut cells = Vec::with_capacity(n);
    let mut last = None;
    for _ in 0..n {
        let (cell, t) = rx.recv().await.expect("stamp");
        cells.push(cell);
        last = last.max(Some(t));
    }
    (cells, last)
}

async fn storm_once(strategy: Strategy, n: usize) -> Duration {
    let (tx, mut rx) = unbounded_channel();
    let mut spec = SupervisorSpec::new("storm", strategy).intensity(1_000_000, HOUR);
    for i in 0..n {
        spec = spec.child(
            ChildSpec::for_actor(format!("w{i}"), Stamp, tx.clone()).shutdown(Shutdown::BrutalKill),
        );
    }
    let (sup, _join) = SupervisorHandle::start(spec)
        .await
        .expect("supervisor starts");
    let (cells, _) = stamps(&mut rx, n).await;
    let t0 = Instant::now();
    for cell in &cells {
        cell.kill();
    }
    let (_, last) = stamps(&mut rx, n).await;
    let took = last.expect("n > 0").saturating_duration_since(t0);
    sup.stop().await;
    took
}

async fn storm(strategy: Strategy, n: usize, rounds: usize) -> Vec<Duration> {
    let _ = storm_once(strategy, n).await; // warm-up
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        samples.push(storm_once(strategy, n).await);
    }
    samples
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let n = sorted.len();
    let rank = ((p * n as f64).round() as usize).clamp(1, n);
    sorted[rank - 1]
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    percentile(&samples, 0.5)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn report_storm(label: &str, n: usize, mut samples: Vec<Duration>) {
    samples.sort();
    let med = percentile(&samples, 0.5);
    let p99 = percentile(&samples, 0.99);
    println!(
        "ours  {label:<22} n={:<5} median {:>10.1} us   p99 {:>10.1} us   per restart {:>7.2} us",
        samples.len(),
        us(med),
        us(p99),
        us(med) / n as f64
    );
}

struct DynRound {
    start: Duration,
    first_block: Duration,
    last_block: Duration,
    which: Duration,
    count: Duration,
    stop: Duration,
}

fn dyn_child(n: u64) -> ChildSpec {
    ChildSpec::for_actor(format!("w{n}"), Idle, ())
        .restart(Restart::Temporary)
        .shutdown(Shutdown::Timeout(Duration::from_secs(5)))
}

/// `true`: children from the template; `false`: `start_child` with a spec per child.
async fn dyn_round(template: bool) -> DynRound {
    let spec = SupervisorSpec::new("dyn", Strategy::OneForOne).template(dyn_child);
    let (sup, _join) = SupervisorHandle::start(spec)
        .await
        .expect("supervisor starts");
    let block = DYN / 10;
    let t0 = Instant::now();
    let mut marks = vec![t0];
    for i in 1..=DYN {
        if template {
            sup.start_from_template().await.expect("child starts");
        } else {
            sup.start_child(dyn_child(i as u64))
                .await
                .expect("child starts");
        }
        if i % block == 0 {
            marks.push(Instant::now());
        }
    }
    let t1 = Instant::now();
    assert_eq!(
        sup.count_children().await.expect("counts").active,
        DYN,
        "all children run"
    );
    let mut which = Vec::with_capacity(QUERY_SAMPLES);
    for _ in 0..QUERY_SAMPLES {
        let t = Instant::now();
        let children = sup.which_children().await.expect("which_children");
        which.push(t.elapsed());
        assert_eq!(children.len(), DYN);
    }
    let mut count = Vec::with_capacity(QUERY_SAMPLES);
    for _ in 0..QUERY_SAMPLES {
        let t = Instant::now();
        let _ = sup.count_children().await.expect("count_children");
        count.push(t.elapsed());
    }
    let t2 = Instant::now();
    sup.stop().await;
    let stop = t2.elapsed();
    let k = marks.len();
    DynRound {
        start: t1 - t0,
        first_block: marks[1] - marks[0],
        last_block: marks[k - 1] - marks[k - 2],
        which: median(which),
        count: median(count),
        stop,
    }
}

fn report_dyn(label: &str, rounds: &[DynRound]) {
    let med = |f: fn(&DynRound) -> Duration| median(rounds.iter().map(f).collect());
    let start = med(|r| r.start);
    let first = med(|r| r.first_block);
    let last = med(|r| r.last_block);
    let stop = med(|r| r.stop);
    let block = (DYN / 10) as f64;
    println!(
        "ours  dyn10k {label:<15} start {:>8.1} ms ({:>6.2} us/child; first 1k {:>6.2}, last 1k {:>6.2} us/child)   stop {:>8.1} ms ({:>6.2} us/child)   which_children {:>8.1} us   count_children {:>8.1} us",
        start.as_secs_f64() * 1e3,
        us(start) / DYN as f64,
        us(first) / block,
        us(last) / block,
        stop.as_secs_f64() * 1e3,
        us(stop) / DYN as f64,
        us(med(|r| r.which)),
        us(med(|r| r.count)),
    );
}

/// `SCALE_ONLY=storm_one_for_one|storm_one_for_all|dyn` runs one part (for a profiler).
fn part(name: &str) -> bool {
    std::env::var("SCALE_ONLY").map_or(true, |only| name.starts_with(&only))
}

async fn pass() {
    if part("storm_one_for_one") {
        report_storm(
            "storm one_for_one 100",
            100,
            storm(Strategy::OneForOne, 100, 1000).await,
        );
        report_storm(
            "storm one_for_one 1000",
            1000,
            storm(Strategy::OneForOne, 1000, 200).await,
        );
    }
    if part("storm_one_for_all") {
        report_storm(
            "storm one_for_all 1000",
            1000,
            storm(Strategy::OneForAll, 1000, 200).await,
        );
    }
    if !part("dyn") {
        return;
    }
    let _ = dyn_round(true).await; // warm-up
    for (template, label) in [(true, "template"), (false, "start_child")] {
        let mut rounds = Vec::with_capacity(DYN_ROUNDS);
        for _ in 0..DYN_ROUNDS {
            rounds.push(dyn_round(template).await);
        }
        report_dyn(label, &rounds);
    }
    for (template, label) in [(true, "template"), (false, "start_child")] {
        let mut rounds = Vec::with_capacity(DYN_ROUNDS);
        for _ in 0..DYN_ROUNDS {
            rounds.push(slow_round(template).await);
        }
        println!(
            "ours  slow1k {label:<15} stop {:>8.1} ms",
            median(rounds).as_secs_f64() * 1e3
        );
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and then one quick
    // storm is enough to keep this file compiling and running.
    let rt = runtime();
    if !std::env::args().any(|a| a == "--bench") {
        rt.block_on(async {
            tokio::spawn(storm_once(Strategy::OneForOne, 10))
                .await
                .expect("smoke")
        });
        return;
    }
    println!("-- scale: tokio multi-thread runtime (2 workers), driver task inside the runtime");
    rt.block_on(async { tokio::spawn(pass()).await.expect("bench task") });
}
