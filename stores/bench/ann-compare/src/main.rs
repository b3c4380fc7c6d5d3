//! hnsw_rs on VeriSim's vector data sets: recall@10 against exact search, queries per CPU-second
//! (single thread), build time and memory — the same measurement as
//! `stores/examples/vector_recall.rs` makes for our own HNSW, on bit-identical data
//! (`verisim_stores::datasets`), with the same M / ef_construction / ef values.
//!
//! `cargo run --release -- [n] [dim] [queries] [seed]` (defaults 100000 128 1000 42), from
//! `stores/bench/ann-compare`; `--features simd` for hnsw_rs's SIMD distances. Environment: `DATA`
//! (default `latent,clustered,uniform`), `HNSW_M` (16), `HNSW_EFC` (100).
//!
//! Differences from our side, which the docs state with the numbers: the build here is in memory
//! (ours goes through fjall with one fsync per 1000 vectors, a small part of its CPU time), and the
//! ground truth is an f64 brute force (`datasets::exact_knn`), where ours is its own exact search.

use std::collections::HashSet;
use std::time::Instant;

use anndists::dist::{DistDot, DistL2, Distance};
use hnsw_rs::hnsw::Hnsw;
use verisim_stores::datasets::{DataSet, exact_knn, process_status_kib, thread_cpu_ns};
use verisim_stores::vector::Metric;

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn env(k: &str, d: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// Unit length, as our cosine collections store vectors; hnsw_rs's `DistDot` (1 − a·b) expects it.
fn normalised(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

struct Setup<'a> {
    kind: &'a str,
    metric: Metric,
    m: usize,
    efc: usize,
    base: &'a [Vec<f32>],
    queries: &'a [Vec<f32>],
    truth: &'a [Vec<usize>],
}

fn run<D: Distance<f32> + Send + Sync>(s: &Setup<'_>, dist: D) -> String {
    // hnsw_rs caps the layer count at 16; ours draws levels 0..=16 with the same 1/ln(M) scale.
    let hnsw: Hnsw<f32, D> = Hnsw::new(s.m, s.base.len(), 16, s.efc, dist);
    let rss0 = process_status_kib("VmRSS:");
    let (t, c) = (Instant::now(), thread_cpu_ns());
    for (i, v) in s.base.iter().enumerate() {
        hnsw.insert_slice((v, i));
    }
    let build = t.elapsed().as_secs_f64();
    let build_cpu = (thread_cpu_ns() - c) as f64 / 1e9;
    let rss1 = process_status_kib("VmRSS:");
    let nq = s.queries.len();
    for ef in [16, 32, 64, 128, 256] {
        let (t, c) = (Instant::now(), thread_cpu_ns());
        let mut found = 0usize;
        for (q, tr) in s.queries.iter().zip(s.truth) {
            let want: HashSet<usize> = tr.iter().copied().collect();
            found += hnsw
                .search(q, 10, ef)
                .iter()
                .filter(|n| want.contains(&n.d_id))
                .count();
        }
        let el = t.elapsed().as_secs_f64();
        let cpu = (thread_cpu_ns() - c) as f64 / 1e9;
        println!(
            "| {} | {:?} | {ef} | {:.3} | {:.0} | {:.0} | {:.0} |",
            s.kind,
            s.metric,
            found as f64 / (nq * 10) as f64,
            nq as f64 / cpu,
            nq as f64 / el,
            cpu * 1e6 / nq as f64
        );
    }
    format!(
        "{}: in-memory serial build of {} vectors {build:.1} s wall / {build_cpu:.1} s CPU; \
         RSS grew {} MiB during the build",
        s.kind,
        s.base.len(),
        rss1.saturating_sub(rss0) >> 10
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n = arg(1, 100_000);
    let dim = arg(2, 128);
    let nq = arg(3, 1000);
    let seed = arg(4, 42) as u64;
    let (m, efc) = (env("HNSW_M", 16), env("HNSW_EFC", 100));
    let sets = std::env::var("DATA").unwrap_or_else(|_| "latent,clustered,uniform".into());
    println!(
        "hnsw_rs 0.3.5 (simd distances: {}) n={n} dim={dim} queries={nq} seed={seed} M={m} \
         ef_construction={efc}",
        cfg!(feature = "simd")
    );
    println!(
        "| data | metric | ef | recall@10 | queries per CPU-second | queries/s wall | mean CPU µs/query |\n|---|---|---|---|---|---|---|"
    );
    let mut notes = Vec::new();
    for kind in sets.split(',') {
        let ds = DataSet::from_name(kind)
            .ok_or_else(|| format!("unknown data set {kind:?} (latent, clustered, uniform)"))?;
        let metric = ds.metric();
        let mut base = ds.generate(seed, n, dim);
        let mut queries = ds.generate(seed + 1, nq, dim);
        let t = Instant::now();
        let truth = exact_knn(&base, &queries, 10, metric);
        eprintln!("{kind}: ground truth in {:.1} s", t.elapsed().as_secs_f64());
        if metric == Metric::Cosine {
            base = base.iter().map(|v| normalised(v)).collect();
            queries = queries.iter().map(|v| normalised(v)).collect();
        }
        let setup = Setup {
            kind,
            metric,
            m,
            efc,
            base: &base,
            queries: &queries,
            truth: &truth,
        };
        notes.push(match metric {
            Metric::Cosine => run(&setup, DistDot),
            Metric::L2 | Metric::Dot => run(&setup, DistL2),
        });
    }
    for n in notes {
        println!("{n}");
    }
    println!("peak RSS {} MiB", process_status_kib("VmHWM:") >> 10);
    Ok(())
}
