//! Recall@10 and single-threaded queries/s of the HNSW index against exact search, plus build
//! (durable writes, then indexing the pending tail), checkpoint and restart (restore from the
//! checkpoint) time and memory. The table measures the graph: the tail is indexed before it. One
//! extra row (`ef 64, tail full`) is measured before that, with the last `TAIL_LIMIT` vectors still
//! pending and searched exactly.
//!
//! `cargo run -p verisim-stores --release --example vector_recall -- [n] [dim] [queries] [seed]`
//! (defaults: 100000 128 1000 42). Environment: `DATA` (comma list of data sets, default
//! `latent,clustered,uniform`), `HNSW_M`, `HNSW_EFC`. The seeded data sets are
//! `verisim_stores::datasets` (shared with `stores/bench/ann-compare`, which measures hnsw_rs on the
//! same vectors).

use std::collections::BTreeSet;
use std::time::Instant;

use verisim_stores::datasets::{DataSet, process_status_kib, thread_cpu_ns};
use verisim_stores::vector::{CollectionDef, HnswParams, SearchMode};
use verisim_stores::{EntityId, Limits, StoreConfig, VectorStore};

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n = arg(1, 100_000);
    let dim = arg(2, 128);
    let nq = arg(3, 1000);
    let seed = arg(4, 42) as u64;
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let d = HnswParams::default();
    let params = HnswParams {
        m: env("HNSW_M", d.m),
        ef_construction: env("HNSW_EFC", d.ef_construction),
        ef_search: d.ef_search,
    };
    let sets = std::env::var("DATA").unwrap_or_else(|_| "latent,clustered,uniform".into());
    println!("n={n} dim={dim} queries={nq} seed={seed} params={params:?}");
    println!(
        "| data | metric | ef | recall@10 | queries per CPU-second | queries/s wall | mean CPU µs/query |\n|---|---|---|---|---|---|---|"
    );
    let mut notes = Vec::new();
    for kind in sets.split(',') {
        let ds = DataSet::from_name(kind)
            .ok_or_else(|| format!("unknown data set {kind:?} (latent, clustered, uniform)"))?;
        let metric = ds.metric();
        let dir = tempfile::tempdir()?;
        let cfg = StoreConfig::default();
        let db = verisim_stores::db::open_db(dir.path(), &cfg)?;
        let mut s = VectorStore::open_with(&db, &Limits::default(), params)?;
        #[allow(clippy::cast_possible_truncation)]
        s.create_collection(
            "c",
            CollectionDef {
                dim: dim as u32,
                metric,
            },
        )?;
        let vs = ds.generate(seed, n, dim);
        let qs = ds.generate(seed + 1, nq, dim);
        let rss0 = process_status_kib("VmRSS:");
        let (t, c) = (Instant::now(), thread_cpu_ns());
        for (b, chunk) in vs.chunks(1000).enumerate() {
            let items = chunk
                .iter()
                .enumerate()
                .map(|(i, v)| Ok((EntityId::new(format!("v{}", b * 1000 + i))?, v.clone())))
                .collect::<verisim_stores::Result<Vec<_>>>()?;
            s.upsert_many("c", items)?;
        }
        let writes = t.elapsed();
        let writes_cpu = (thread_cpu_ns() - c) as f64 / 1e9;
        let pending = s.index_stats("c")?.pending;
        let tail_row = {
            let (t, c) = (Instant::now(), thread_cpu_ns());
            for q in &qs {
                s.search("c", q, 10, SearchMode::Ann { ef: Some(64) }, None)?;
            }
            let el = t.elapsed().as_secs_f64();
            let cpu = (thread_cpu_ns() - c) as f64 / 1e9;
            format!(
                "{kind}: ANN ef 64 with {pending} vectors pending (searched exactly): {:.0} queries \
                 per CPU-second, {:.0} queries/s wall, {:.0} mean CPU µs/query",
                nq as f64 / cpu,
                nq as f64 / el,
                cpu * 1e6 / nq as f64
            )
        };
        let (ti, ci) = (Instant::now(), thread_cpu_ns());
        s.index_pending(usize::MAX);
        let index = ti.elapsed();
        let index_cpu = (thread_cpu_ns() - ci) as f64 / 1e9;
        let build = t.elapsed();
        let build_cpu = (thread_cpu_ns() - c) as f64 / 1e9;
        let stats = s.index_stats("c")?;
        let rss1 = process_status_kib("VmRSS:");
        notes.push(tail_row);

        let (t, c) = (Instant::now(), thread_cpu_ns());
        let mut truth = Vec::with_capacity(nq);
        for q in &qs {
            let ids: BTreeSet<EntityId> = s
                .search("c", q, 10, SearchMode::Exact, None)?
                .into_iter()
                .map(|h| h.id)
                .collect();
            truth.push(ids);
        }
        let wall = nq as f64 / t.elapsed().as_secs_f64();
        let cpu = (thread_cpu_ns() - c) as f64 / 1e9;
        println!(
            "| {kind} | {metric:?} | exact | 1.000 | {:.0} | {wall:.0} | {:.0} |",
            nq as f64 / cpu,
            cpu * 1e6 / nq as f64
        );

        for ef in [16, 32, 64, 128, 256] {
            let (t, c) = (Instant::now(), thread_cpu_ns());
            let mut found = 0usize;
            for (q, tr) in qs.iter().zip(&truth) {
                found += s
                    .search("c", q, 10, SearchMode::Ann { ef: Some(ef) }, None)?
                    .iter()
                    .filter(|h| tr.contains(&h.id))
                    .count();
            }
            let el = t.elapsed().as_secs_f64();
            let cpu = (thread_cpu_ns() - c) as f64 / 1e9;
            println!(
                "| {kind} | {metric:?} | {ef} | {:.3} | {:.0} | {:.0} | {:.0} |",
                found as f64 / (nq * 10) as f64,
                nq as f64 / cpu,
                nq as f64 / el,
                cpu * 1e6 / nq as f64
            );
        }
        let (t, c) = (Instant::now(), thread_cpu_ns());
        s.checkpoint()?;
        let ckpt = t.elapsed();
        let ckpt_cpu = (thread_cpu_ns() - c) as f64 / 1e9;
        drop(s);
        let (t, c) = (Instant::now(), thread_cpu_ns());
        let s = VectorStore::open_with(&db, &Limits::default(), params)?;
        let restored = s.index_stats("c")?.from_checkpoint;
        let reopen = t.elapsed();
        let reopen_cpu = (thread_cpu_ns() - c) as f64 / 1e9;
        notes.push(format!(
            "{kind}: durable build of {n} vectors (batches of 1000, one fsync each) {:.1} s wall / \
             {build_cpu:.1} s CPU, of which the writes {:.1} s / {writes_cpu:.1} s (leaving \
             {pending} pending) and indexing the tail {:.1} s / {index_cpu:.1} s; checkpoint {:.1} s wall / {ckpt_cpu:.1} s CPU; \
             reopen (restored from checkpoint: {restored}) {:.1} s wall / {reopen_cpu:.1} s CPU; \
             index heap ≈ {} MiB; RSS grew {} MiB during the build",
            build.as_secs_f64(),
            writes.as_secs_f64(),
            index.as_secs_f64(),
            ckpt.as_secs_f64(),
            reopen.as_secs_f64(),
            stats.heap_bytes >> 20,
            (rss1.saturating_sub(rss0)) >> 10
        ));
        drop(s);
    }
    for n in notes {
        println!("{n}");
    }
    println!("peak RSS {} MiB", process_status_kib("VmHWM:") >> 10);
    Ok(())
}
