//! What a joining node's CPU does with a snapshot body once it has arrived: decode it into the
//! registry (`RegistryState::read_snapshot_body`, format 2), and what the leader's encoder costs
//! before the hash and the disk. The registry is the one `verisim-bench join` fills: N entities
//! applied as `PutEntity` commands (four modality hashes, a 3-node placement, one client), their
//! request ids remembered.
//!
//! `cargo bench -p verisim-registry --bench snapshot_body` (200,000 entities; set
//! `VERISIM_BENCH_ENTITIES=200000,1000000` for more sizes)

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use verisim_registry::{
    ClientId, Command, ContentHash, EntityId, FORMAT_COMPACT, ItemMeta, MODALITIES, NodeName,
    Origin, Outcome, Proposal, PublicKey, RegistryConfig, RegistryState, RequestId, WindowId,
};

/// A registry of `n` entities, built as `verisim-bench join` and `snapshot_scale` build theirs.
fn registry(n: u64) -> RegistryState {
    let mut state = RegistryState::new(RegistryConfig::default());
    let client = ClientId::new("bench").expect("client id");
    let window = WindowId::new("w1").expect("window id");
    let setup = [
        Command::EnrollClient {
            client: client.clone(),
            public_key: PublicKey([7; 32]),
        },
        Command::OpenWindow {
            client: client.clone(),
            window: window.clone(),
            expires_at_ms: 23 * 3600 * 1000,
            client_dh: PublicKey([9; 32]),
        },
    ];
    for (i, command) in setup.into_iter().enumerate() {
        let outcome = state.apply(i as u64 + 1, &Proposal { at_ms: 1, command });
        assert!(!matches!(outcome, Outcome::Refused(_)), "{outcome:?}");
    }
    let placement: Vec<NodeName> = ["n1", "n2", "n3"]
        .iter()
        .map(|n| NodeName::new(*n).expect("node name"))
        .collect();
    for i in 0..n {
        let items: BTreeMap<_, _> = MODALITIES
            .iter()
            .map(|&m| {
                let digest = blake3::Hasher::new()
                    .update(&i.to_be_bytes())
                    .update(&[m as u8])
                    .finalize();
                (
                    m,
                    ItemMeta {
                        hash: ContentHash(*digest.as_bytes()),
                        size: 512,
                    },
                )
            })
            .collect();
        let command = Command::PutEntity {
            origin: Origin {
                client: client.clone(),
                window: window.clone(),
                request: RequestId::new(format!("r{i}")).expect("request id"),
                fingerprint: ContentHash([0; 32]),
            },
            id: EntityId::new(format!("entity-{i:08}")).expect("entity id"),
            items,
            placement: placement.clone(),
            expected_version: None,
        };
        // One proposal per millisecond: every request id stays within the retention horizon.
        let outcome = state.apply(
            i + 3,
            &Proposal {
                at_ms: 1 + i,
                command,
            },
        );
        assert!(!matches!(outcome, Outcome::Refused(_)), "{outcome:?}");
    }
    state
}

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
        let state = registry(n);
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
