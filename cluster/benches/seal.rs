//! What sealing costs a cluster message (`verisim_cluster::seal`): encode and seal, then open and
//! decode, for a message body of 100 B (a heartbeat), 4 KiB (an append of a few entries) and
//! 256 KiB (a large append or a snapshot chunk's share), unsealed (no identities), sealed with a
//! MAC (peers that know each other) and on first contact (an Ed25519 signature).
//!
//! `cargo bench -p verisim-cluster --bench seal`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use verisim_cluster::{Authority, Keyring, Sealed};

fn round_trip(c: &mut Criterion) {
    let authority = Authority::generate();
    let ring = |id| Keyring::with_identity(authority.issue(id)).expect("keyring");
    let mut group = c.benchmark_group("seal_and_open");
    for size in [100usize, 4 << 10, 256 << 10] {
        let body = serde_bytes::ByteBuf::from(vec![7u8; size]);
        group.throughput(Throughput::Bytes(size as u64));

        let (a, b) = (Keyring::open(1), Keyring::open(2));
        group.bench_with_input(BenchmarkId::new("unsealed", size), &body, |bench, body| {
            bench.iter(|| {
                let m = Sealed::seal("raft", body, &a, 2).expect("seal");
                m.open("raft", &b).expect("open")
            });
        });

        // Both know each other: every message is MACed.
        let (a, b) = (ring(1), ring(2));
        let hello = Sealed::seal("raft", &(), &a, 2).expect("seal");
        hello.open("raft", &b).expect("open");
        Sealed::seal("raft", &(), &b, 1)
            .expect("seal")
            .open("raft", &a)
            .expect("open");
        group.bench_with_input(BenchmarkId::new("mac", size), &body, |bench, body| {
            bench.iter(|| {
                let m = Sealed::seal("raft", body, &a, 2).expect("seal");
                m.open("raft", &b).expect("open")
            });
        });

        // First contact: the sender does not know the receiver yet and signs (the receiver has
        // the sender's credential cached after the first message, as in a real exchange).
        let (a, b) = (ring(3), ring(4));
        group.bench_with_input(
            BenchmarkId::new("first_contact", size),
            &body,
            |bench, body| {
                bench.iter(|| {
                    let m = Sealed::seal("raft", body, &a, 4).expect("seal");
                    m.open("raft", &b).expect("open")
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
