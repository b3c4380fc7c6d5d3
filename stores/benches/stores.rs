//! Per-engine throughput: durable writes (one fsync per call, and batched), point reads, queries.
//! `cargo bench -p verisim-stores --bench stores` (numbers in docs/stores.md).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use verisim_stores::graph::{Direction, Edge, Properties};
use verisim_stores::semantic::{Annotation, MerkleTree, ProofBlob, TypeDef, verify_blob};
use verisim_stores::tensor::{ReduceOp, Tensor, TensorData};
use verisim_stores::vector::{CollectionDef, Metric, SearchMode};
use verisim_stores::{Durability, EntityId, Modality, StoreConfig, Stores, Value};

fn id(i: u64) -> EntityId {
    EntityId::new(format!("e{i}")).unwrap()
}

fn open() -> (tempfile::TempDir, Stores) {
    let dir = tempfile::tempdir().unwrap();
    let s = Stores::open(dir.path(), &StoreConfig::default()).unwrap();
    (dir, s)
}

fn graph(c: &mut Criterion) {
    let (_d, mut s) = open();
    let mut g = c.benchmark_group("graph");
    let mut n = 0u64;
    g.bench_function("put_node (1 fsync each)", |b| {
        b.iter(|| {
            n += 1;
            s.graph.put_node(&id(n), Properties::new()).unwrap()
        });
    });
    // A random graph of 10,000 nodes, out-degree 8, built in batches.
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for i in 0..10_000 {
        s.graph
            .put_node(&id(1_000_000 + i), Properties::new())
            .unwrap_or_default();
    }
    g.throughput(Throughput::Elements(1000));
    g.bench_function("add_edges (1000 per fsync)", |b| {
        b.iter_batched(
            || {
                (0..1000)
                    .map(|_| Edge {
                        source: id(1_000_000 + rng.random_range(0..10_000)),
                        predicate: "p".into(),
                        target: id(1_000_000 + rng.random_range(0..10_000)),
                        properties: Properties::new(),
                    })
                    .collect::<Vec<_>>()
            },
            |e| s.graph.add_edges(e).unwrap(),
            BatchSize::SmallInput,
        );
    });
    g.throughput(Throughput::Elements(1));
    let mut q = 0u64;
    g.bench_function("out neighbours", |b| {
        b.iter(|| {
            q = (q + 7919) % 10_000;
            s.graph
                .neighbours(&id(1_000_000 + q), Direction::Out, None)
                .unwrap()
        });
    });
    g.bench_function("traverse 2 hops", |b| {
        b.iter(|| {
            q = (q + 7919) % 10_000;
            s.graph
                .traverse(&id(1_000_000 + q), 2, Direction::Out, None)
                .unwrap()
        });
    });
    g.bench_function("shortest path (≤ 6 hops)", |b| {
        b.iter(|| {
            q = (q + 7919) % 10_000;
            s.graph
                .shortest_path(
                    &id(1_000_000 + q),
                    &id(1_000_000 + (q * 31) % 10_000),
                    6,
                    Direction::Out,
                    None,
                )
                .unwrap()
        });
    });
    g.finish();
}

fn vector(c: &mut Criterion) {
    let (_d, mut s) = open();
    let dim = 128;
    s.vector
        .create_collection(
            "c",
            CollectionDef {
                dim,
                metric: Metric::L2,
            },
        )
        .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut v = move || {
        (0..dim)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect::<Vec<_>>()
    };
    for b in 0..10 {
        let items = (0..1000).map(|i| (id(b * 1000 + i), v())).collect();
        s.vector.upsert_many("c", items).unwrap();
    }
    s.vector.index_pending(usize::MAX);
    let mut g = c.benchmark_group("vector (10k x 128, L2)");
    let mut n = 100_000u64;
    // Writes index synchronously (tail limit 0: what every write paid before the pending tail) or
    // leave the vector pending; then the tail is indexed outside the timed part, as the store
    // actor's writer does between writes.
    for (name, limit) in [
        ("indexed synchronously", 0),
        ("indexing deferred", usize::MAX),
    ] {
        s.vector.set_tail_limit(limit);
        g.throughput(Throughput::Elements(1));
        // Group commit is as the store actors run it: the engine does not fsync, the node does.
        for (durability, how) in [
            (Durability::EachWrite, "1 fsync each"),
            (Durability::Deferred, "group commit, no own fsync"),
        ] {
            s.vector.set_durability(durability);
            g.bench_function(format!("upsert ({how}, {name})"), |b| {
                b.iter_custom(|iters| {
                    let mut took = Duration::ZERO;
                    for _ in 0..iters {
                        let x = v();
                        n += 1;
                        let t = Instant::now();
                        s.vector.upsert("c", &id(n), &x).unwrap();
                        took += t.elapsed();
                        s.vector.index_pending(usize::MAX);
                    }
                    took
                });
            });
        }
        s.vector.set_durability(Durability::EachWrite);
        g.throughput(Throughput::Elements(1000));
        g.bench_function(format!("upsert_many (1000 per fsync, {name})"), |b| {
            b.iter_custom(|iters| {
                let mut took = Duration::ZERO;
                for _ in 0..iters {
                    let items = (0..1000)
                        .map(|_| {
                            n += 1;
                            (id(n), v())
                        })
                        .collect::<Vec<_>>();
                    let t = Instant::now();
                    s.vector.upsert_many("c", items).unwrap();
                    took += t.elapsed();
                    s.vector.index_pending(usize::MAX);
                }
                took
            });
        });
    }
    s.vector.set_tail_limit(verisim_stores::vector::TAIL_LIMIT);
    g.throughput(Throughput::Elements(1));
    let mut q = 0u64;
    g.bench_function("get", |b| {
        b.iter(|| {
            q = (q + 7919) % 10_000;
            s.vector.get("c", &id(q)).unwrap()
        });
    });
    g.bench_function("search exact k=10", |b| {
        b.iter_batched(
            &mut v,
            |x| {
                s.vector
                    .search("c", &x, 10, SearchMode::Exact, None)
                    .unwrap()
            },
            BatchSize::SmallInput,
        );
    });
    g.bench_function("search HNSW k=10 ef=64", |b| {
        b.iter_batched(
            &mut v,
            |x| {
                s.vector
                    .search("c", &x, 10, SearchMode::Ann { ef: Some(64) }, None)
                    .unwrap()
            },
            BatchSize::SmallInput,
        );
    });
    let filter: BTreeSet<EntityId> = (0..10_000).step_by(2).map(id).collect();
    g.bench_function("search HNSW k=10 ef=64, filter of 5000 ids", |b| {
        b.iter_batched(
            &mut v,
            |x| {
                s.vector
                    .search("c", &x, 10, SearchMode::Ann { ef: Some(64) }, Some(&filter))
                    .unwrap()
            },
            BatchSize::SmallInput,
        );
    });
    g.finish();
}

fn tensor(c: &mut Criterion) {
    let (_d, mut s) = open();
    let t = Tensor {
        shape: vec![256, 256],
        data: TensorData::F32((0..=65_535u16).map(f32::from).collect()),
    };
    let mut g = c.benchmark_group("tensor (256 x 256 f32 = 256 KiB, 64 KiB chunks)");
    g.throughput(Throughput::Bytes(256 * 1024));
    let mut n = 0u64;
    g.bench_function("put (1 fsync each)", |b| {
        b.iter(|| {
            n += 1;
            s.tensor.put(&id(n % 100), &t).unwrap()
        });
    });
    g.bench_function("get", |b| b.iter(|| s.tensor.get(&id(1)).unwrap()));
    g.throughput(Throughput::Elements(1));
    g.bench_function("slice 16 x 16 (one chunk)", |b| {
        b.iter(|| s.tensor.slice(&id(1), &[100..116, 10..26]).unwrap());
    });
    g.bench_function("reduce sum axis 0", |b| {
        b.iter(|| s.tensor.reduce(&id(1), ReduceOp::Sum, 0).unwrap());
    });
    g.finish();
}

fn semantic(c: &mut Criterion) {
    let (_d, mut s) = open();
    let mut prev = None;
    for i in 0..10 {
        let iri = format!("urn:t:{i}");
        s.semantic
            .define_type(TypeDef {
                iri: iri.clone(),
                label: iri.clone(),
                supertypes: prev.iter().cloned().collect(),
                required: BTreeSet::new(),
                properties: BTreeMap::from([(
                    "name".into(),
                    verisim_stores::semantic::PropertyDef {
                        datatype: verisim_stores::Datatype::Text,
                        pattern: Some("[a-z0-9]+".into()),
                        min: None,
                        max: None,
                    },
                )]),
            })
            .unwrap();
        prev = Some(iri);
    }
    let ann = |i: u64| Annotation {
        types: BTreeSet::from([format!("urn:t:{}", i % 10)]),
        properties: BTreeMap::from([("name".into(), Value::Text(format!("n{i}")))]),
        proofs: vec![ProofBlob::commit(format!("claim {i}"), b"nonce").unwrap()],
    };
    let mut g = c.benchmark_group("semantic");
    let mut n = 0u64;
    g.bench_function("annotate (validate + 1 fsync)", |b| {
        b.iter(|| {
            n += 1;
            s.semantic.annotate(&id(n % 10_000), ann(n)).unwrap()
        });
    });
    g.bench_function("get", |b| b.iter(|| s.semantic.get(&id(1)).unwrap()));
    let count = s.semantic.entities_of_type("urn:t:5", true).unwrap().len();
    g.bench_function(
        format!("entities_of_type with subtypes ({count} entities)"),
        |b| {
            b.iter(|| s.semantic.entities_of_type("urn:t:5", true).unwrap());
        },
    );
    let leaves: Vec<String> = (0..1024).map(|i| format!("claim {i}")).collect();
    let tree = MerkleTree::new(&leaves).unwrap();
    let blob = ProofBlob::merkle("claim 77", &tree.proof(77).unwrap())
        .unwrap()
        .to_cbor()
        .unwrap();
    g.bench_function("verify Merkle proof blob (1024 leaves)", |b| {
        b.iter(|| verify_blob(&blob).unwrap())
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = graph, vector, tensor, semantic
}
criterion_main!(benches);
