//! The closed-loop load generator: N threads, each with its own keep-alive connection, each
//! sending one request, waiting for the answer, and sending the next, for a fixed duration.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::children::interrupted;
use super::cpu::{CpuCost, CpuSample};
use super::http::Http;
use super::stats::Summary;

/// Requests before this long after the start are not counted (connections opening, caches).
pub const WARMUP: Duration = Duration::from_secs(1);

/// What one concurrency level measured.
#[derive(Debug, Clone, Serialize)]
pub struct LevelResult {
    pub proposers: usize,
    pub seconds: f64,
    pub commits: usize,
    pub errors: usize,
    pub commits_per_s: f64,
    pub latency: Option<Summary>,
    pub first_error: Option<String>,
    /// CPU seconds per 1,000 commits over the measured window (`None` when `/proc` could not be
    /// read or nothing committed).
    pub cpu: Option<CpuCost>,
}

/// Runs `proposers` threads for `duration` (after [`WARMUP`]); thread `p`'s `i`-th request is
/// `op(&http, p, i)`, and counts when it returns `Ok`. `servers` are the process ids whose CPU
/// time is the system under test's.
pub fn run_level<F>(proposers: usize, duration: Duration, servers: &[u32], op: F) -> LevelResult
where
    F: Fn(&Http, usize, u64) -> Result<(), String> + Send + Sync + 'static,
{
    run_level_with(
        proposers,
        duration,
        servers,
        |_| Ok(Http::new(Duration::from_secs(10))),
        move |http: &mut Http, p, i| op(http, p, i),
    )
}

/// [`run_level`] with a per-thread client of the caller's kind: thread `p` starts with
/// `init(p)` (a failure counts as that thread's only error) and calls `op(&mut client, p, i)`.
pub fn run_level_with<C, I, F>(
    proposers: usize,
    duration: Duration,
    servers: &[u32],
    init: I,
    op: F,
) -> LevelResult
where
    C: 'static,
    I: Fn(usize) -> Result<C, String> + Send + Sync + 'static,
    F: Fn(&mut C, usize, u64) -> Result<(), String> + Send + Sync + 'static,
{
    let op = Arc::new(op);
    let init = Arc::new(init);
    let window = Window::open(duration);
    let threads: Vec<_> = (0..proposers)
        .map(|p| {
            let op = op.clone();
            let init = init.clone();
            let window = window.clone();
            std::thread::spawn(move || {
                let mut tally = Tally::default();
                let mut client = match init(p) {
                    Ok(c) => c,
                    Err(e) => {
                        tally.errors = 1;
                        tally.first_error = Some(e);
                        return tally;
                    }
                };
                let mut i = 0u64;
                while window.running() {
                    let t0 = Instant::now();
                    let r = op(&mut client, p, i);
                    window.record(&mut tally, t0, r);
                    i += 1;
                }
                tally
            })
        })
        .collect();
    let measured = window.measure(servers);
    let tallies = threads.into_iter().filter_map(|t| t.join().ok());
    measured.result(proposers, tallies)
}

/// The measured window of one level, shared by its workers: [`WARMUP`], then `duration`, then
/// a stop every worker sees.
#[derive(Clone)]
pub struct Window {
    measure_from: Instant,
    duration: Duration,
    stop: Arc<AtomicBool>,
}

/// What one worker counted inside the window.
#[derive(Default)]
pub struct Tally {
    samples: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
}

/// A window that has ended: its length and the CPU it cost.
pub struct Measured {
    seconds: f64,
    cpu: Option<(CpuSample, CpuSample)>,
}

impl Window {
    /// Opens a window starting now (the warm-up first).
    pub fn open(duration: Duration) -> Self {
        Self {
            measure_from: Instant::now() + WARMUP,
            duration,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether workers should go on sending.
    pub fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed) && !interrupted()
    }

    /// Counts a request sent at `t0` that answered `r` just now, if it lies inside the window.
    pub fn record(&self, tally: &mut Tally, t0: Instant, r: Result<(), String>) {
        let took = t0.elapsed();
        if t0 < self.measure_from || self.stop.load(Ordering::Relaxed) {
            return;
        }
        match r {
            Ok(()) => tally.samples.push(took),
            Err(e) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(e);
            }
        }
    }

    /// Blocks through the warm-up and the window, reading the CPU counters of the machine and of
    /// `servers` at both ends, then tells every worker to stop.
    pub fn measure(&self, servers: &[u32]) -> Measured {
        let from = sleep_until(self.measure_from).then(|| CpuSample::now(servers).ok());
        let finished = sleep_until(self.measure_from + self.duration);
        let to = CpuSample::now(servers).ok();
        self.stop.store(true, Ordering::Relaxed);
        Measured {
            seconds: self.measure_from.elapsed().as_secs_f64(),
            cpu: match (from.flatten(), to) {
                (Some(from), Some(to)) if finished => Some((from, to)),
                _ => None,
            },
        }
    }
}

impl Measured {
    /// The level's result from its workers' tallies.
    pub fn result(self, proposers: usize, tallies: impl IntoIterator<Item = Tally>) -> LevelResult {
        let mut all = Vec::new();
        let mut errors = 0;
        let mut first_error = None;
        for t in tallies {
            all.extend(t.samples);
            errors += t.errors;
            if first_error.is_none() {
                first_error = t.first_error;
            }
        }
        let commits = all.len();
        LevelResult {
            proposers,
            seconds: self.seconds,
            commits,
            errors,
            commits_per_s: commits as f64 / self.seconds,
            latency: Summary::of(&mut all),
            first_error,
            cpu: self
                .cpu
                .and_then(|(from, to)| from.cost_until(&to, self.seconds, commits)),
        }
    }
}

/// Sleeps in short steps until `t`; `false` when interrupted (Ctrl-C) first.
/// The runtime of an async load generator (HTTP/2 multiplexing, etcd gRPC, the preload's fill):
/// two workers, as many as the machine's cores, which the client shares with the system under test
/// as the threaded load generators do.
pub fn client_runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

fn sleep_until(t: Instant) -> bool {
    while Instant::now() < t {
        if interrupted() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5).min(t - Instant::now()));
    }
    true
}
