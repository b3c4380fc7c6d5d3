//! What a joining node's CPU does with a snapshot body once it has arrived: decode it into the
//! registry (`RegistryState::read_snapshot_body`, format 2), and what the leader's encoder costs
//! before the hash and the disk. The registry is the one `verisim-bench join` fills: N entities
//! applied as `PutEntity` commands (four modality hashes, a 3-node placement, one client), their
//! request ids remembered.
//!
//! `cargo bench -p verisim-registry --features test-util --bench snapshot_body` (200,000 entities; set
//! `VERISIM_BENCH_ENTITIES=200000,1000000` for more sizes)

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use verisim_registry::{FORMAT_COMPACT, RegistryState, fixture};

fn sizes() -> Vec<u64> {
    std::env::var("VERISIM_BENCH_ENTITIES")
        .ok()
        .map(|s| s.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![200_000])
}

fn snapshot_body(c: &mut Criterion) {
    let mut group = c.benchmark_group("snapshot_body");
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(10));
    for n in sizes() {
        let state = fixture::registry(n).expect("the bench registry");
        let mut body = Vec::new();
        state.write_snapshot_body(&mut body).expect("encode");
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::new("decode", n), &body, |b, body| {
            // A joining node keeps what it decodes: dropping it is not part of the install.
            b.iter_with_large_drop(|| {
                RegistryState::read_snapshot_body(FORMAT_COMPACT, &mut body.as_slice())
                    .expect("decode")
            });
        });
        group.bench_with_input(BenchmarkId::new("encode", n), &state, |b, state| {
            b.iter(|| {
                state
                    .write_snapshot_body(&mut std::io::sink())
                    .expect("encode");
            });
        });
        let decoded = RegistryState::read_snapshot_body(FORMAT_COMPACT, &mut body.as_slice())
            .expect("decode");
        assert!(black_box(decoded) == state, "the decoded state differs");
    }
    group.finish();
}

criterion_group!(benches, snapshot_body);
criterion_main!(benches);
