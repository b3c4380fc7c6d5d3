//! The wire form of every store message and reply, and the scatter-gather merge.
//!
//! A remote call across two cluster nodes cannot run in one test process: ractor's registry and
//! process groups are process-global (one OS process is one node, see `cluster/src/lib.rs`), so two
//! nodes' `verisim.store.*` names would collide. What crosses the wire is checked here instead:
//! every argument and reply encodes to CBOR and decodes to the same value through ractor_cluster's
//! `BytesConvertable` path, and every `StoreMsg` variant serializes for a remote actor.

use std::collections::BTreeSet;
use std::fmt::Debug;

use proptest::prelude::*;
use ractor::{BytesConvertable, Message};
use serde::Serialize;
use serde::de::DeserializeOwned;
use verisim_cluster::{Cbor, Keyring, Sealed};
use verisim_stores::graph::Direction;
use verisim_stores::tensor::ReduceOp;
use verisim_stores::vector::{Hit, Metric};
use verisim_stores::{
    BucketDigest, ContentHash, ExportedItem, GraphStore, Limits, StoreError, VectorStore,
};

use super::super::{
    Answer, KnnQuery, Query, Removed, Reply, StoreMsg, StoreRefusal, StoreRefusalCode, merge_top_k,
};
use super::{id, inputs, person};

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(v: &T) {
    let wire = Cbor::encode(v).unwrap();
    let back: Cbor<T> = Cbor::from_bytes(wire.into_bytes());
    assert_eq!(&back.decode().unwrap(), v);
}

fn queries() -> Vec<Query> {
    let dir = Direction::Both;
    vec![
        Query::VectorKnn(KnnQuery {
            collection: "default".into(),
            vector: vec![0.5, -0.0, 1e-30, 3.0],
            k: 5,
            exact: true,
            ef: Some(99),
            filter: Some(BTreeSet::from([id("a")])),
        }),
        Query::VectorGet {
            collection: "c".into(),
            id: id("a"),
        },
        Query::VectorCollections,
        Query::GraphNeighbours {
            id: id("a"),
            direction: dir,
            predicate: Some("p".into()),
        },
        Query::GraphEdges {
            id: id("a"),
            direction: Direction::In,
            predicate: None,
        },
        Query::GraphTraverse {
            start: id("a"),
            max_hops: 3,
            direction: dir,
            predicate: None,
        },
        Query::GraphShortestPath {
            from: id("a"),
            to: id("b"),
            max_hops: 4,
            direction: Direction::Out,
            predicate: None,
        },
        Query::TensorGet { id: id("a") },
        Query::TensorSlice {
            id: id("a"),
            ranges: vec![(0, 1), (2, 4)],
        },
        Query::TensorReduce {
            id: id("a"),
            op: ReduceOp::Mean,
            axis: 1,
        },
        Query::SemanticGet { id: id("a") },
        Query::SemanticValidate {
            annotation: Default::default(),
        },
        Query::SemanticEntitiesOfType {
            iri: "ex:Person".into(),
            include_subtypes: true,
        },
    ]
}

#[test]
fn every_argument_and_reply_crosses_the_wire_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let db = verisim_stores::db::open_db(dir.path(), &Default::default()).unwrap();
    let g = GraphStore::open(&db, &Limits::default()).unwrap();
    let setup = super::setup();
    let mut s = verisim_stores::SemanticStore::open(&db, &setup.limits).unwrap();
    s.define_type(person()).unwrap();
    for input in inputs("a", 1.0) {
        round_trip(&input);
    }
    let item: ExportedItem = match inputs("a", 1.0).swap_remove(0) {
        verisim_stores::ItemInput::Graph { id, graph } => {
            g.prepare_item(&id, graph.properties, graph.edges).unwrap()
        }
        _ => unreachable!(),
    };
    round_trip::<Reply<ExportedItem>>(&Ok(item.clone()));
    round_trip::<Reply<ContentHash>>(&Ok(item.hash));
    round_trip::<Reply<Option<ExportedItem>>>(&Ok(None));
    round_trip(&id("a"));
    round_trip(&(3u16, 4096u16));
    round_trip(&7u16);
    let mut digest = BucketDigest::default();
    digest.toggle(&id("a"), &item.hash);
    round_trip::<Reply<Vec<(u16, BucketDigest)>>>(&Ok(vec![(1, digest)]));
    round_trip::<Reply<Vec<_>>>(&Ok(vec![(id("a"), item.hash)]));
    round_trip::<Reply<Removed>>(&Ok(Removed {
        existed: true,
        changed: vec![(id("a"), None), (id("b"), Some(item.hash))],
        superseded: false,
    }));
    let fence = crate::store_actors::Fence {
        index: 7,
        version: 2,
    };
    round_trip(&(item.clone(), fence));
    round_trip(&vec![(item.clone(), fence), (item.clone(), fence)]);
    // A caller encodes its items borrowed (`StoreRef::call_as`): the same bytes as owned.
    let owned = vec![(item.clone(), fence)];
    let borrowed: &[(&ExportedItem, crate::store_actors::Fence)] = &[(&item, fence)];
    assert_eq!(
        Cbor::encode(&owned).unwrap().into_bytes(),
        Cbor::encode(&borrowed).unwrap().into_bytes()
    );
    assert_eq!(
        Cbor::encode(&(item.clone(), fence)).unwrap().into_bytes(),
        Cbor::encode(&(&item, fence)).unwrap().into_bytes()
    );
    round_trip::<Reply<Vec<Reply<crate::store_actors::Imported>>>>(&Ok(vec![
        Ok(crate::store_actors::Imported::Stored(item.hash)),
        Err(StoreRefusal::new(StoreRefusalCode::Unavailable, false, "x")),
    ]));
    round_trip(&(id("a"), 9u64));
    round_trip::<Reply<crate::store_actors::Imported>>(&Ok(
        crate::store_actors::Imported::Superseded {
            held: crate::store_actors::FenceRecord {
                fence,
                tombstone: true,
                at_ms: 5,
            },
        },
    ));
    for q in queries() {
        round_trip(&q);
    }
    let answers = vec![
        Answer::Hits(vec![Hit {
            id: id("a"),
            distance: 0.25,
        }]),
        Answer::Vector(Some(vec![1.0, f32::MIN_POSITIVE])),
        Answer::Collections(vec![(
            "c".into(),
            verisim_stores::vector::CollectionDef {
                dim: 3,
                metric: Metric::Dot,
            },
            9,
        )]),
        Answer::Ids(vec![id("a")]),
        Answer::Edges(g.out_edges(&id("a"), None).unwrap()),
        Answer::Reached(vec![(id("a"), 0)]),
        Answer::Path(None),
        Answer::Annotation(None),
        Answer::Violations(
            s.validate(&verisim_stores::semantic::Annotation {
                types: BTreeSet::from(["ex:Person".to_owned(), "ex:Nope".to_owned()]),
                ..Default::default()
            })
            .unwrap(),
        ),
    ];
    for a in answers {
        round_trip::<Reply<Answer>>(&Ok(a));
    }
    // Refusals keep their code, class and violations.
    let e = s
        .prepare_item(
            &id("a"),
            verisim_stores::semantic::Annotation {
                types: BTreeSet::from(["ex:Person".to_owned()]),
                ..Default::default()
            },
        )
        .unwrap_err();
    let r = StoreRefusal::from(e);
    assert_eq!(
        (r.code, r.client_error, r.violations.len()),
        (StoreRefusalCode::Validation, true, 1)
    );
    round_trip::<Reply<Answer>>(&Err(r));
    let storage = StoreRefusal::from(StoreError::Storage(fjall::Error::Locked));
    assert!(!storage.client_error);
    round_trip::<Reply<ContentHash>>(&Err(storage));
}

#[tokio::test]
async fn every_store_message_serializes_for_a_remote_actor() {
    let msgs: Vec<StoreMsg> = {
        let item = ExportedItem::from_bytes(
            &ExportedItem {
                modality: verisim_stores::ModalityKind::Graph,
                id: id("a"),
                hash: ContentHash::default(),
                payload: verisim_stores::codec::Bytes(vec![1]),
            }
            .to_bytes()
            .unwrap(),
        )
        .unwrap();
        let (p1, _r1) = ractor::concurrency::oneshot();
        let (p2, _r2) = ractor::concurrency::oneshot();
        let (p3, _r3) = ractor::concurrency::oneshot();
        let (p4, _r4) = ractor::concurrency::oneshot();
        let (p5, _r5) = ractor::concurrency::oneshot();
        let (p6, _r6) = ractor::concurrency::oneshot();
        let (p7, _r7) = ractor::concurrency::oneshot();
        let (p8, _r8) = ractor::concurrency::oneshot();
        let (p9, _r9) = ractor::concurrency::oneshot();
        let batch = vec![(
            item.clone(),
            crate::store_actors::Fence {
                index: 1,
                version: 1,
            },
        )];
        vec![
            StoreMsg::Prepare(sealed(&inputs("a", 1.0)[1]), p1.into()),
            StoreMsg::Import(
                sealed(&(
                    item.clone(),
                    crate::store_actors::Fence {
                        index: 1,
                        version: 1,
                    },
                )),
                p2.into(),
            ),
            StoreMsg::Export(sealed(&id("a")), p3.into()),
            StoreMsg::Remove(sealed(&(id("a"), 2u64)), p4.into()),
            StoreMsg::ItemHash(sealed(&id("a")), p5.into()),
            StoreMsg::BucketDigests(sealed(&(0u16, 9u16)), p6.into()),
            StoreMsg::BucketItems(sealed(&3u16), p7.into()),
            StoreMsg::Query(sealed(&queries()[0]), p8.into()),
            StoreMsg::ImportNode(sealed(&batch), p9.into()),
        ]
    };
    for m in msgs {
        let kind = std::mem::discriminant(&m);
        let wire = m.serialize().unwrap();
        let back = StoreMsg::deserialize(wire).unwrap();
        assert_eq!(std::mem::discriminant(&back), kind);
    }
}

/// `v` sealed by node 1 for itself, without an identity.
fn sealed<T: Serialize>(v: &T) -> Sealed<T> {
    Sealed::seal("test", v, &Keyring::open(1), 1).expect("encodes")
}

fn hits(seed: u64, n: usize) -> Vec<Hit> {
    // Small id and distance alphabets, so lists share ids and tie on distances.
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            #[allow(clippy::cast_precision_loss)]
            Hit {
                id: id(&format!("e{}", x % 23)),
                distance: ((x >> 8) % 11) as f32 / 4.0,
            }
        })
        .collect()
}

proptest! {
    #[test]
    fn merge_top_k_equals_a_brute_force_sort(
        seeds in prop::collection::vec(any::<u64>(), 0..5),
        lens in prop::collection::vec(0usize..30, 5),
        k in 0usize..40,
    ) {
        // Each list is one store's answer: distinct ids, sorted, truncated to k.
        let lists: Vec<Vec<Hit>> = seeds
            .iter()
            .zip(&lens)
            .map(|(s, n)| {
                let mut l = hits(*s, *n);
                l.sort_by(|a, b| a.distance.total_cmp(&b.distance).then_with(|| a.id.cmp(&b.id)));
                let mut seen = BTreeSet::new();
                l.retain(|h| seen.insert(h.id.clone()));
                l.truncate(k);
                l
            })
            .collect();
        let mut brute: Vec<Hit> = lists.iter().flatten().cloned().collect();
        brute.sort_by(|a, b| a.distance.total_cmp(&b.distance).then_with(|| a.id.cmp(&b.id)));
        let mut out: Vec<Hit> = Vec::new();
        for h in brute {
            if !out.iter().any(|o| o.id == h.id) {
                out.push(h);
            }
        }
        out.truncate(k);
        prop_assert_eq!(merge_top_k(lists, k), out);
    }
}

/// Entities spread over three stores (each on two of them), exact top-k per store, merged: equal to
/// the exact top-k of one store holding everything.
#[test]
fn knn_merged_from_several_stores_equals_the_global_top_k() {
    let seed: u64 = 0x5eed_0001;
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut stores: Vec<VectorStore> = dirs
        .iter()
        .map(|d| {
            let db = verisim_stores::db::open_db(d.path(), &Default::default()).unwrap();
            let mut v = VectorStore::open(&db, &Limits::default()).unwrap();
            let def = verisim_stores::vector::CollectionDef {
                dim: 8,
                metric: Metric::Cosine,
            };
            v.create_collection("c", def).unwrap();
            v
        })
        .collect();
    let mut x = seed;
    let mut next = move || {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        #[allow(clippy::cast_precision_loss)]
        let f = (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
        f
    };
    let mut by_store: Vec<Vec<(verisim_stores::EntityId, Vec<f32>)>> = vec![Vec::new(); 4];
    for i in 0..300usize {
        let v: Vec<f32> = (0..8).map(|_| next()).collect();
        let e = id(&format!("e{i}"));
        by_store[3].push((e.clone(), v.clone()));
        by_store[i % 3].push((e.clone(), v.clone()));
        by_store[(i + 1) % 3].push((e, v));
    }
    for (s, items) in stores.iter_mut().zip(by_store) {
        s.upsert_many("c", items).unwrap();
    }
    for _ in 0..20 {
        let q: Vec<f32> = (0..8).map(|_| next()).collect();
        for k in [1, 5, 17] {
            let exact = verisim_stores::vector::SearchMode::Exact;
            let lists = stores[..3]
                .iter()
                .map(|s| s.search("c", &q, k, exact, None).unwrap())
                .collect();
            let global = stores[3].search("c", &q, k, exact, None).unwrap();
            assert_eq!(merge_top_k(lists, k), global, "seed {seed:#x}, k {k}");
        }
    }
}
