//! What sending one append to two followers costs the leader before it reaches ractor_cluster:
//! encode and seal each message on its own (as before `consensus::wire`), against one encoding of
//! the body shared by both, for appends of 1, 16 and 64 entries of 300 B (a registration's command
//! is about that size). Sealing is the MAC of peers that know each other.
//!
//! `cargo bench -p verisim-node --bench append_encoding`

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use verisim_cluster::{Authority, Keyring, Sealed};
use verisim_node::consensus::wire;
use verisim_raft::{Entry, Message, MessageBody, Payload};

fn appends(n: u64) -> Vec<Message> {
    let entries: Vec<Entry> = (0..n)
        .map(|i| Entry {
            term: 3,
            index: 1_000 + i,
            payload: Payload::Normal(vec![i as u8; 300]),
        })
        .collect();
    [2, 3]
        .into_iter()
        .map(|to| Message {
            from: 1,
            to,
            term: 3,
            body: MessageBody::Append {
                prev_index: 999,
                prev_term: 3,
                entries: entries.clone(),
                commit: 998,
            },
        })
        .collect()
}

fn two_followers(c: &mut Criterion) {
    let authority = Authority::generate();
    let ring = |id| Keyring::with_identity(authority.issue(id)).expect("keyring");
    let leader = ring(1);
    // The followers have been heard from: the leader MACs.
    for id in [2, 3] {
        let follower = ring(id);
        Sealed::seal("raft", &(), &follower, 1)
            .expect("seal")
            .open("raft", &leader)
            .expect("open");
    }
    let mut group = c.benchmark_group("append_to_two_followers");
    for n in [1u64, 16, 64] {
        let msgs = appends(n);
        group.throughput(Throughput::Elements(n));
        group.bench_with_input(BenchmarkId::new("each_encoded", n), &msgs, |b, msgs| {
            b.iter(|| {
                msgs.iter()
                    .map(|m| Sealed::seal("raft", m, &leader, m.to).expect("seal"))
                    .collect::<Vec<_>>()
            });
        });
        group.bench_with_input(BenchmarkId::new("body_shared", n), &msgs, |b, msgs| {
            b.iter(|| {
                let (encoded, _) = wire::encode_all(msgs);
                encoded
                    .into_iter()
                    .map(|e| {
                        let bytes = e.bytes.expect("encode");
                        Sealed::<Message>::seal_encoded("raft", bytes, &leader, e.to)
                    })
                    .collect::<Vec<_>>()
            });
        });
    }
    group.finish();
}

criterion_group!(benches, two_followers);
criterion_main!(benches);
