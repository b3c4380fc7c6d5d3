//! Kill a child -> its replacement is running (its `pre_start` done), one_for_one, one permanent
//! worker. Measured like `supervision/bench/otp_restart.erl` measures OTP: the time from just
//! before the kill to the instant the replacement's `pre_start` stamps at its end.
//!
//! - short history: a fresh supervisor every 100 restarts;
//! - long history: 50,000 restarts inside the intensity window first (intensity 10,000,000 in
//!   an hour), then measure while the window keeps filling.
//!
//! Criterion reports its statistics; a fixed-count pass then prints median and p99 from raw
//! samples (short and long blocks alternating, so both see the same machine load), the
//! long/short ratio, and two floors: a bare ractor actor that respawns its child with no
//! bookkeeping, and the spawn of a linked child alone. The pass runs three ways: the driver as a
//! task in a 2-worker runtime, the driver outside it (`block_on`), and a current-thread runtime.
//!
//! Run: `cargo bench -p verisim-supervision --bench restart`, or
//! `supervision/bench/compare.sh` for both sides at once.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::runtime::Runtime;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use verisim_supervision::{
    ChildSpec, RestartIntensity, Shutdown, Strategy, SupervisorHandle, SupervisorSpec,
};

const BATCH: usize = 100;
const PREFILL: usize = 50_000;
const SHORT_SAMPLES: usize = 20_000;
const LONG_SAMPLES: usize = 20_000;
const HOUR: Duration = Duration::from_secs(3600);

#[derive(Clone, Copy)]
struct Stamp;

struct StampMsg;
impl ractor::Message for StampMsg {}

impl Actor for Stamp {
    type Msg = StampMsg;
    type State = ();
    type Arguments = UnboundedSender<(ActorCell, Instant)>;

    async fn pre_start(
        &self,
        myself: ActorRef<StampMsg>,
        tx: UnboundedSender<(ActorCell, Instant)>,
    ) -> Result<(), ActorProcessingErr> {
        let _ = tx.send((myself.get_cell(), Instant::now()));
        Ok(())
    }
}

struct Rig {
    sup: SupervisorHandle,
    rx: UnboundedReceiver<(ActorCell, Instant)>,
    current: ActorCell,
    restarts: usize,
}

impl Rig {
    async fn start(intensity: u32) -> Rig {
        let (tx, mut rx) = unbounded_channel();
        let child = ChildSpec::for_actor("worker", Stamp, tx).shutdown(Shutdown::BrutalKill);
        let spec = SupervisorSpec::new("bench", Strategy::OneForOne)
            .intensity(intensity, HOUR)
            .child(child);
        let (sup, _join) = SupervisorHandle::start(spec)
            .await
            .expect("supervisor starts");
        let (current, _) = rx.recv().await.expect("first start");
        Rig {
            sup,
            rx,
            current,
            restarts: 0,
        }
    }

    async fn restart_once(&mut self) -> Duration {
        let t0 = Instant::now();
        self.current.kill();
        let (next, t1) = self.rx.recv().await.expect("replacement starts");
        self.current = next;
        self.restarts += 1;
        t1.saturating_duration_since(t0)
    }

    async fn stop(self) {
        self.sup.stop().await;
    }
}

/// The floor: a bare ractor actor that respawns its child in `handle_supervisor_evt`, with no
/// bookkeeping at all. The difference to `Rig` is what this crate adds.
struct Floor;

impl Actor for Floor {
    type Msg = StampMsg;
    type State = UnboundedSender<(ActorCell, Instant)>;
    type Arguments = UnboundedSender<(ActorCell, Instant)>;

    async fn pre_start(
        &self,
        myself: ActorRef<StampMsg>,
        tx: UnboundedSender<(ActorCell, Instant)>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Actor::spawn_linked(None, Stamp, tx.clone(), myself.get_cell()).await?;
        Ok(tx)
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<StampMsg>,
        event: SupervisionEvent,
        tx: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorTerminated(..) | SupervisionEvent::ActorFailed(..) = event {
            Actor::spawn_linked(None, Stamp, tx.clone(), myself.get_cell()).await?;
        }
        Ok(())
    }
}

async fn floor_samples(n: usize) -> Vec<Duration> {
    let (tx, mut rx) = unbounded_channel();
    let (floor, _join) = Actor::spawn(None, Floor, tx).await.expect("floor starts");
    let (mut current, _) = rx.recv().await.expect("first start");
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        current.kill();
        let (next, t1) = rx.recv().await.expect("replacement starts");
        current = next;
        samples.push(t1.saturating_duration_since(t0));
    }
    floor.stop(None);
    samples
}

/// A parent that ignores its children's exits.
struct Quiet;

impl Actor for Quiet {
    type Msg = StampMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<StampMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<StampMsg>,
        _: SupervisionEvent,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

/// Only the spawn of a linked child up to the end of its `pre_start` (no kill, no event).
async fn spawn_samples(n: usize) -> Vec<Duration> {
    let (tx, mut rx) = unbounded_channel();
    let (parent, _join) = Actor::spawn(None, Quiet, ()).await.expect("parent starts");
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        let (child, _) = Actor::spawn_linked(None, Stamp, tx.clone(), parent.get_cell())
            .await
            .expect("child starts");
        let (_, t1) = rx.recv().await.expect("stamp");
        samples.push(t1.saturating_duration_since(t0));
        child.kill_and_wait(None).await.expect("child stops");
    }
    parent.stop(None);
    samples
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Run the driver as a task inside the runtime, as a failure would arise in a real system
/// (and as the Erlang driver is a process on the BEAM's schedulers).
fn run_inside<F>(rt: &Runtime, f: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    rt.block_on(async { tokio::spawn(f).await.expect("bench task") })
}

async fn short_batch(rig: Option<Rig>, iters: u64) -> (Option<Rig>, Duration) {
    let mut rig = rig;
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let mut current = match rig.take() {
            Some(r) if r.restarts < BATCH => r,
            Some(old) => {
                old.stop().await;
                Rig::start(1_000_000).await
            }
            None => Rig::start(1_000_000).await,
        };
        total += black_box(current.restart_once().await);
        rig = Some(current);
    }
    (rig, total)
}

async fn long_batch(mut rig: Rig, iters: u64) -> (Rig, Duration) {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        total += black_box(rig.restart_once().await);
    }
    (rig, total)
}

fn criterion_benches(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("restart");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    let mut short: Option<Rig> = None;
    group.bench_function("short_history", |b| {
        b.iter_custom(|iters| {
            let (rig, total) = run_inside(&rt, short_batch(short.take(), iters));
            short = rig;
            total
        })
    });
    if let Some(rig) = short.take() {
        rt.block_on(rig.stop());
    }

    let mut long = Some(run_inside(&rt, async {
        let mut rig = Rig::start(10_000_000).await;
        for _ in 0..PREFILL {
            rig.restart_once().await;
        }
        rig
    }));
    group.bench_function("long_history_50k", |b| {
        b.iter_custom(|iters| {
            let Some(rig) = long.take() else {
                return Duration::ZERO;
            };
            let (rig, total) = run_inside(&rt, long_batch(rig, iters));
            long = Some(rig);
            total
        })
    });
    if let Some(rig) = long.take() {
        println!(
            "long-history supervisor holds {} restarts in its window",
            rig.restarts
        );
        rt.block_on(rig.stop());
    }
    group.finish();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let n = sorted.len();
    let rank = ((p * n as f64).round() as usize).clamp(1, n);
    sorted[rank - 1]
}

fn report(label: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let med = percentile(&samples, 0.5);
    let p99 = percentile(&samples, 0.99);
    println!(
        "ours  {label:<14} n={:<6} median {:>8.2} us   p99 {:>8.2} us",
        samples.len(),
        med.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
    med
}

/// The same fixed-count procedure as the Erlang module, for median and p99.
async fn percentile_pass() {
    report("floor_ractor", floor_samples(SHORT_SAMPLES).await);
    report("spawn_only", spawn_samples(SHORT_SAMPLES).await);
    // Short and long blocks alternate, so both see the same load on a shared machine.
    let mut long_rig = Rig::start(10_000_000).await;
    for _ in 0..PREFILL {
        long_rig.restart_once().await;
    }
    let rounds = SHORT_SAMPLES / BATCH;
    let per_round = LONG_SAMPLES / rounds;
    let mut short = Vec::with_capacity(SHORT_SAMPLES);
    let mut long = Vec::with_capacity(LONG_SAMPLES);
    for _ in 0..rounds {
        let mut rig = Rig::start(1_000_000).await;
        for _ in 0..BATCH {
            short.push(rig.restart_once().await);
        }
        rig.stop().await;
        for _ in 0..per_round {
            long.push(long_rig.restart_once().await);
        }
    }
    long_rig.stop().await;
    let short_med = report("short_history", short);
    let long_med = report("long_history", long);
    println!(
        "ours  long/short median ratio {:.2}",
        long_med.as_secs_f64() / short_med.as_secs_f64()
    );
}

/// The bookkeeping alone: one `record` with a short history and with 50,000 restarts in the
/// window (OTP walks its whole list here; the ring compares one instant).
fn intensity_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("intensity_record");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (label, history) in [("short_history", 10usize), ("history_50k", 50_000)] {
        // The ring holds exactly `history` instants, all inside the window, so every record
        // compares against a full history (and memory stays fixed however long criterion runs).
        let mut ring = RestartIntensity::new(history as u32, HOUR);
        let t0 = Instant::now();
        for i in 0..history {
            ring.record(t0 + Duration::from_nanos(i as u64));
        }
        let mut now = t0 + Duration::from_millis(1);
        group.bench_function(label, |b| {
            b.iter(|| {
                now += Duration::from_nanos(1);
                black_box(ring.record(black_box(now)))
            })
        });
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    intensity_benches(c);
    criterion_benches(c);
    let multi = runtime();
    println!("-- tokio multi-thread runtime (2 workers), driver task inside the runtime");
    run_inside(&multi, percentile_pass());
    println!(
        "-- tokio multi-thread runtime (2 workers), driver outside (block_on on the main thread)"
    );
    multi.block_on(percentile_pass());
    println!("-- tokio current-thread runtime");
    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    single.block_on(percentile_pass());
}

criterion_group!(restart, benches);
criterion_main!(restart);
