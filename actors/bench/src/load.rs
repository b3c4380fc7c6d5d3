//! The closed-loop load generator: N threads, each with its own keep-alive connection, each
//! sending one request, waiting for the answer, and sending the next, for a fixed duration.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::children::interrupted;
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
}

/// Runs `proposers` threads for `duration` (after [`WARMUP`]); thread `p`'s `i`-th request is
/// `op(&http, p, i)`, and counts when it returns `Ok`.
pub fn run_level<F>(proposers: usize, duration: Duration, op: F) -> LevelResult
where
    F: Fn(&Http, usize, u64) -> Result<(), String> + Send + Sync + 'static,
{
    run_level_with(
        proposers,
        duration,
        |_| Ok(Http::new(Duration::from_secs(10))),
        move |http: &mut Http, p, i| op(http, p, i),
    )
}

/// [`run_level`] with a per-thread client of the caller's kind: thread `p` starts with
/// `init(p)` (a failure counts as that thread's only error) and calls `op(&mut client, p, i)`.
pub fn run_level_with<C, I, F>(proposers: usize, duration: Duration, init: I, op: F) -> LevelResult
where
    C: 'static,
    I: Fn(usize) -> Result<C, String> + Send + Sync + 'static,
    F: Fn(&mut C, usize, u64) -> Result<(), String> + Send + Sync + 'static,
{
    let op = Arc::new(op);
    let init = Arc::new(init);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let measure_from = start + WARMUP;
    let threads: Vec<_> = (0..proposers)
        .map(|p| {
            let op = op.clone();
            let init = init.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut samples = Vec::new();
                let mut client = match init(p) {
                    Ok(c) => c,
                    Err(e) => return (samples, 1, Some(e)),
                };
                let mut errors = 0usize;
                let mut first_error = None;
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) && !interrupted() {
                    let t0 = Instant::now();
                    let r = op(&mut client, p, i);
                    let took = t0.elapsed();
                    i += 1;
                    if t0 < measure_from || stop.load(Ordering::Relaxed) {
                        continue;
                    }
                    match r {
                        Ok(()) => samples.push(took),
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert(e);
                        }
                    }
                }
                (samples, errors, first_error)
            })
        })
        .collect();
    while Instant::now() < measure_from + duration && !interrupted() {
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let seconds = measure_from.elapsed().as_secs_f64();
    let mut all = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for t in threads {
        if let Ok((s, e, f)) = t.join() {
            all.extend(s);
            errors += e;
            if first_error.is_none() {
                first_error = f;
            }
        }
    }
    let commits = all.len();
    LevelResult {
        proposers,
        seconds,
        commits,
        errors,
        commits_per_s: commits as f64 / seconds,
        latency: Summary::of(&mut all),
        first_error,
    }
}
