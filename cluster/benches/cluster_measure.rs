//! Measurements of the cluster layer with real node processes (the probe binary), printed as a
//! table for `docs/cluster.md`. Not a pass/fail test: it measures, nothing more.
//!
//! `cargo bench -p verisim-cluster --bench cluster_measure` (set `TRIALS` to change the trial
//! count, default 10).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::{Probe, WAIT, free_addr};

fn flags(interval_ms: u64, deadline_ms: u64) -> Vec<String> {
    [
        "--heartbeat-interval-ms".to_string(),
        interval_ms.to_string(),
        "--heartbeat-deadline-ms".to_string(),
        deadline_ms.to_string(),
        "--handshake-timeout-ms".to_string(),
        "1000".to_string(),
        "--backoff-min-ms".to_string(),
        "50".to_string(),
        "--backoff-max-ms".to_string(),
        "2000".to_string(),
    ]
    .to_vec()
}

fn stats(name: &str, mut xs: Vec<Duration>) {
    xs.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let n = xs.len();
    println!(
        "| {name} | {n} | {:.1} | {:.1} | {:.1} |",
        ms(xs[0]),
        ms(xs[n / 2]),
        ms(xs[n - 1])
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let trials: usize = std::env::var("TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let cookie = "cookie-of-the-measurements";
    println!("| measurement | trials | min ms | p50 ms | max ms |");
    println!("|---|---|---|---|---|");

    for (interval, deadline) in [(200, 1000), (50, 250)] {
        let (a1, a2) = (free_addr(), free_addr());
        let f = flags(interval, deadline);
        let mut n1 = Probe::start("n1", a1, cookie, &[a2], &f);
        let mut n2 = Probe::start("n2", a2, cookie, &[a1], &f);
        n1.expect_up("n2");
        n1.until_ok("ECHO n2 8", "ECHO_OK n2 8", "ECHO_ERR");
        n2.until_ok("ECHO n1 8", "ECHO_OK n1 8", "ECHO_ERR");
        let (mut detect, mut resume) = (Vec::new(), Vec::new());
        for _ in 0..trials {
            n1.clear_pending();
            n2.signal("STOP");
            let t = Instant::now();
            n1.expect(|l| l.starts_with("DOWN n2 heartbeat-deadline"), WAIT);
            detect.push(t.elapsed());
            // Only an Up after this Down counts (a replaced connection may have announced one).
            n1.clear_pending();
            n2.signal("CONT");
            let t = Instant::now();
            n1.expect_up("n2");
            resume.push(t.elapsed());
            n1.until_ok("ECHO n2 8", "ECHO_OK n2 8", "ECHO_ERR");
            n2.until_ok("ECHO n1 8", "ECHO_OK n1 8", "ECHO_ERR");
        }
        stats(
            &format!("SIGSTOP → DOWN (interval {interval} ms, deadline {deadline} ms)"),
            detect,
        );
        stats(
            &format!("SIGCONT → UP (interval {interval} ms, deadline {deadline} ms)"),
            resume,
        );
    }

    let (a1, a2) = (free_addr(), free_addr());
    let f = flags(200, 1000);
    let mut n1 = Probe::start("n1", a1, cookie, &[a2], &f);
    let mut n2 = Probe::start("n2", a2, cookie, &[a1], &f);
    n1.expect_up("n2");
    let (mut down, mut up) = (Vec::new(), Vec::new());
    for _ in 0..trials {
        n1.until_ok("ECHO n2 8", "ECHO_OK n2 8", "ECHO_ERR");
        n1.clear_pending();
        let t = Instant::now();
        n2.kill9();
        n1.expect_down("n2");
        down.push(t.elapsed());
        n1.clear_pending();
        let t = Instant::now();
        n2 = Probe::start("n2", a2, cookie, &[a1], &f);
        n1.expect_up("n2");
        up.push(t.elapsed());
    }
    stats("kill -9 → DOWN (connection reset)", down);
    stats("restart (process start included) → UP", up);

    n1.until_ok("ECHO n2 8", "ECHO_OK n2 8", "ECHO_ERR");
    println!();
    for bytes in [16, 4096, 65536] {
        let line = n1.until_ok(
            &format!("BENCH_ECHO n2 2000 {bytes}"),
            "BENCH_ECHO n2",
            "ECHO_ERR",
        );
        println!("CBOR call round trip, {bytes} B payload: {line}");
    }
}
