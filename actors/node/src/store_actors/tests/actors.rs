//! Every message, round trip, through the local store actors.

use std::collections::BTreeSet;

use verisim_stores::graph::Direction;
use verisim_stores::tensor::ReduceOp;
use verisim_stores::{BUCKETS, ExportedItem, ItemInput, ModalityKind, bucket_of};

use super::super::{
    Answer, Fence, Imported, KnnQuery, MODALITIES, Query, StoreCallError, StoreRefusalCode,
};
use super::{Node, T, id, inputs};

fn refusal(e: StoreCallError) -> StoreRefusalCode {
    match e {
        StoreCallError::Refused { refusal, .. } => refusal.code,
        other => panic!("expected a refusal, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_round_trips() {
    let node = Node::start().await;
    let d = &node.dir;
    for kind in MODALITIES {
        assert_eq!(d.actors_of(kind).len(), 1, "{kind:?} store in its group");
    }
    for (i, e) in ["a", "b", "c"].iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        for input in inputs(e, i as f32) {
            let kind = input.modality();
            let store = d.on("n1", kind).unwrap();
            let prepared = d.prepare_local(&input, T).await.unwrap();
            assert_eq!(
                store.item_hash(&id(e), T).await.unwrap(),
                None,
                "prepare wrote"
            );
            assert_eq!(
                d.import("n1", &prepared, F, T).await.unwrap(),
                Imported::Stored(prepared.hash)
            );
            assert_eq!(
                d.export("n1", kind, &id(e), T).await.unwrap(),
                Some(prepared.clone())
            );
            assert_eq!(
                store.item_hash(&id(e), T).await.unwrap(),
                Some(prepared.hash)
            );
            let b = bucket_of(&id(e));
            let items = store.bucket_items(b, T).await.unwrap();
            assert!(items.contains(&(id(e), prepared.hash)));
            let digests = store.bucket_digests(b..b + 1, T).await.unwrap();
            assert!(!digests[0].1.is_empty());
        }
    }

    // Vector: k-NN (ANN and exact, with a filter), get, collections.
    let vs = d.on("n1", ModalityKind::Vector).unwrap();
    let mut q = KnnQuery {
        collection: "default".into(),
        vector: vec![0.0, 1.0, 0.0, 0.0],
        k: 2,
        exact: false,
        ef: None,
        filter: None,
    };
    let ids = |h: Vec<verisim_stores::vector::Hit>| h.into_iter().map(|h| h.id).collect::<Vec<_>>();
    assert_eq!(
        ids(d.knn_on("n1", &q, T).await.unwrap()),
        vec![id("a"), id("b")]
    );
    q.exact = true;
    q.filter = Some(BTreeSet::from([id("c"), id("b")]));
    assert_eq!(ids(vs.knn(&q, T).await.unwrap()), vec![id("b"), id("c")]);
    let (merged, failed) = d.knn_all(&q, T).await;
    assert!(failed.is_empty());
    assert_eq!(ids(merged), vec![id("b"), id("c")]);
    let get = Query::VectorGet {
        collection: "default".into(),
        id: id("c"),
    };
    assert_eq!(
        vs.query(&get, T).await.unwrap(),
        Answer::Vector(Some(vec![2.0, 1.0, 0.0, 0.0]))
    );
    match vs.query(&Query::VectorCollections, T).await.unwrap() {
        Answer::Collections(c) => assert_eq!((c[0].0.as_str(), c[0].2), ("default", 3)),
        other => panic!("{other:?}"),
    }

    // Graph: neighbours, edges, traversal, shortest path.
    let gs = d.on("n1", ModalityKind::Graph).unwrap();
    let nb = Query::GraphNeighbours {
        id: id("a"),
        direction: Direction::Out,
        predicate: None,
    };
    assert_eq!(gs.query(&nb, T).await.unwrap(), Answer::Ids(vec![id("ax")]));
    let inc = Query::GraphEdges {
        id: id("ax"),
        direction: Direction::In,
        predicate: Some("next".into()),
    };
    match gs.query(&inc, T).await.unwrap() {
        Answer::Edges(e) => assert_eq!(e.len(), 1),
        other => panic!("{other:?}"),
    }
    let tr = Query::GraphTraverse {
        start: id("a"),
        max_hops: 2,
        direction: Direction::Out,
        predicate: None,
    };
    assert_eq!(
        gs.query(&tr, T).await.unwrap(),
        Answer::Reached(vec![(id("a"), 0), (id("ax"), 1)])
    );
    let sp = Query::GraphShortestPath {
        from: id("ax"),
        to: id("a"),
        max_hops: 3,
        direction: Direction::Both,
        predicate: None,
    };
    assert_eq!(
        gs.query(&sp, T).await.unwrap(),
        Answer::Path(Some(vec![id("ax"), id("a")]))
    );

    // Tensor: get, slice, reduce.
    let ts = d.on("n1", ModalityKind::Tensor).unwrap();
    let tensor = |a: Answer| match a {
        Answer::Tensor(Some(t)) => t.to_tensor().unwrap(),
        other => panic!("{other:?}"),
    };
    let full = tensor(
        ts.query(&Query::TensorGet { id: id("b") }, T)
            .await
            .unwrap(),
    );
    assert_eq!(full.shape, vec![2, 2]);
    let sl = tensor(
        ts.query(
            &Query::TensorSlice {
                id: id("b"),
                ranges: vec![(1, 2), (0, 2)],
            },
            T,
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        sl.data,
        verisim_stores::tensor::TensorData::F32(vec![3.0, 1.0])
    );
    let red = tensor(
        ts.query(
            &Query::TensorReduce {
                id: id("b"),
                op: ReduceOp::Sum,
                axis: 1,
            },
            T,
        )
        .await
        .unwrap(),
    );
    assert_eq!(
        red.data,
        verisim_stores::tensor::TensorData::F64(vec![3.0, 4.0])
    );
    assert_eq!(
        ts.query(&Query::TensorGet { id: id("zz") }, T)
            .await
            .unwrap(),
        Answer::Tensor(None)
    );

    // Semantic: get, validate, entities of a type.
    let ss = d.on("n1", ModalityKind::Semantic).unwrap();
    match ss
        .query(&Query::SemanticGet { id: id("a") }, T)
        .await
        .unwrap()
    {
        Answer::Annotation(Some(a)) => assert!(a.types.contains("ex:Person")),
        other => panic!("{other:?}"),
    }
    let bad = verisim_stores::semantic::Annotation {
        types: BTreeSet::from(["ex:Person".to_owned()]),
        ..Default::default()
    };
    match ss
        .query(
            &Query::SemanticValidate {
                annotation: bad.clone(),
            },
            T,
        )
        .await
        .unwrap()
    {
        Answer::Violations(v) => assert_eq!(v.len(), 1),
        other => panic!("{other:?}"),
    }
    let of = Query::SemanticEntitiesOfType {
        iri: "ex:Person".into(),
        include_subtypes: true,
    };
    assert_eq!(
        ss.query(&of, T).await.unwrap(),
        Answer::Ids(vec![id("a"), id("b"), id("c")])
    );

    // Refusals are typed: wrong modality, schema violations (with the list), unknown collection.
    assert_eq!(
        refusal(ts.query(&nb, T).await.unwrap_err()),
        StoreRefusalCode::WrongModality
    );
    let wrong = ItemInput::Semantic {
        id: id("a"),
        annotation: bad.clone(),
    };
    assert_eq!(
        refusal(gs.prepare(&wrong, T).await.unwrap_err()),
        StoreRefusalCode::InvalidInput
    );
    match ss.prepare(&wrong, T).await.unwrap_err() {
        StoreCallError::Refused { refusal, .. } => {
            assert_eq!(refusal.code, StoreRefusalCode::Validation);
            assert!(refusal.client_error);
            assert_eq!(refusal.violations.len(), 1);
        }
        other => panic!("{other}"),
    }
    q.collection = "nope".into();
    assert_eq!(
        refusal(vs.knn(&q, T).await.unwrap_err()),
        StoreRefusalCode::NotFound
    );

    // Remove: only the entity's own item changes.
    let r = gs.remove(&id("a"), 2, T).await.unwrap();
    assert!(r.existed);
    assert_eq!(r.changed, vec![(id("a"), None)]);
    for kind in [
        ModalityKind::Vector,
        ModalityKind::Tensor,
        ModalityKind::Semantic,
    ] {
        let s = d.on("n1", kind).unwrap();
        assert!(s.remove(&id("a"), 2, T).await.unwrap().existed);
        assert!(!s.remove(&id("a"), 3, T).await.unwrap().existed);
        assert_eq!(s.export(&id("a"), T).await.unwrap(), None);
    }
    let all = gs.bucket_digests(0..BUCKETS, T).await.unwrap();
    assert_eq!(all.len(), usize::from(BUCKETS));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_with_a_wrong_hash_is_refused_and_writes_nothing() {
    let node = Node::start().await;
    let d = &node.dir;
    for input in inputs("e", 1.0) {
        let kind = input.modality();
        let store = d.on("n1", kind).unwrap();
        let mut item = store.prepare(&input, T).await.unwrap();
        item.hash = verisim_stores::ContentHash::of("other", b"x");
        assert_eq!(
            refusal(d.import("n1", &item, F, T).await.unwrap_err()),
            StoreRefusalCode::HashMismatch
        );
        // A payload changed under its hash is refused the same way.
        let mut item = store.prepare(&input, T).await.unwrap();
        if let Some(b) = item.payload.0.last_mut() {
            *b ^= 1;
        }
        assert_eq!(
            refusal(store.import(&item, F, T).await.unwrap_err()),
            StoreRefusalCode::HashMismatch
        );
        assert_eq!(store.export(&id("e"), T).await.unwrap(), None, "{kind:?}");
        let digests = store.bucket_digests(0..BUCKETS, T).await.unwrap();
        assert!(digests.iter().all(|(_, d)| d.is_empty()), "{kind:?} wrote");
    }
    node.stop().await;
}

/// The fence of the registry entry that produced an item, for tests that write one version.
const F: Fence = Fence {
    index: 1,
    version: 1,
};

/// Store writes for one entity never overtake each other: an import older than what the store
/// holds, or a removal older than it, is skipped (`Superseded`); a removal leaves a tombstone that
/// stops older imports, and a newer registration passes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fenced_writes_never_overtake_each_other() {
    let node = Node::start().await;
    let d = &node.dir;
    let at = |index| Fence {
        index,
        version: index,
    };
    for (old, new) in inputs("e", 1.0).into_iter().zip(inputs("e", 2.0)) {
        let kind = old.modality();
        let store = d.on("n1", kind).unwrap();
        let (old, new) = (
            store.prepare(&old, T).await.unwrap(),
            store.prepare(&new, T).await.unwrap(),
        );
        // (The test inputs differ in every modality but the semantic one, whose checks below then
        // hold trivially; the fences are the same code for all four.)
        assert_eq!(
            store.import(&new, at(9), T).await.unwrap(),
            Imported::Stored(new.hash)
        );
        // The slower import of the older version arrives late: skipped.
        assert!(matches!(
            store.import(&old, at(5), T).await.unwrap(),
            Imported::Superseded { held } if held.fence.index == 9 && !held.tombstone
        ));
        assert_eq!(store.item_hash(&id("e"), T).await.unwrap(), Some(new.hash));
        // The same import again (a retry) is admitted.
        assert_eq!(
            store.import(&new, at(9), T).await.unwrap(),
            Imported::Stored(new.hash)
        );
        // A removal older than the item is skipped; a newer one removes and leaves a tombstone.
        assert!(store.remove(&id("e"), 7, T).await.unwrap().superseded);
        assert_eq!(store.item_hash(&id("e"), T).await.unwrap(), Some(new.hash));
        let r = store.remove(&id("e"), 11, T).await.unwrap();
        assert!(r.existed && !r.superseded, "{kind:?}: {r:?}");
        for late in [at(9), at(11)] {
            assert!(matches!(
                store.import(&new, late, T).await.unwrap(),
                Imported::Superseded { held } if held.tombstone
            ));
        }
        assert_eq!(store.item_hash(&id("e"), T).await.unwrap(), None);
        // Registered again by a later entry: admitted.
        assert_eq!(
            store.import(&old, at(12), T).await.unwrap(),
            Imported::Stored(old.hash)
        );
        // Tombstones go only when purged; a live item's fence stays.
        assert_eq!(store.purge_tombstones(u64::MAX, T).await.unwrap(), 0);
        assert!(store.remove(&id("e"), 12, T).await.unwrap().superseded);
    }
    node.stop().await;
}

/// The four items of entity `e`, prepared on the node.
async fn prepared(d: &super::super::StoreDirectory, e: &str, i: f32) -> Vec<ExportedItem> {
    let mut items = Vec::new();
    for input in inputs(e, i) {
        items.push(d.prepare_local(&input, T).await.unwrap());
    }
    items
}

/// A batch for a node (one `ImportNode`) with a refused item in it loses nothing of the others:
/// every other item is stored and answered as stored, in order, and the refused one stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_a_refused_item_loses_nothing_of_the_others() {
    let node = Node::start().await;
    let d = &node.dir;
    let mut items = prepared(d, "a", 1.0).await;
    items.extend(prepared(d, "b", 2.0).await);
    // a's vector under a wrong hash.
    let bad = 1;
    assert_eq!(items[bad].modality, ModalityKind::Vector);
    items[bad].hash = verisim_stores::ContentHash::of("other", b"x");
    let batch: Vec<(&ExportedItem, Fence)> = items.iter().map(|i| (i, F)).collect();
    // Any of the node's store actors takes a batch of every modality.
    let receiver = d.on("n1", ModalityKind::Tensor).unwrap();
    let answers = receiver.import_node(&batch, T).await.unwrap();
    assert_eq!(answers.len(), items.len());
    for (at, (item, answer)) in items.iter().zip(&answers).enumerate() {
        if at == bad {
            let refused = answer.as_ref().unwrap_err();
            assert_eq!(refused.code, StoreRefusalCode::HashMismatch);
        } else {
            assert_eq!(answer, &Ok(Imported::Stored(item.hash)), "item {at}");
            assert_eq!(
                d.export("n1", item.modality, &item.id, T).await.unwrap(),
                Some(item.clone())
            );
        }
    }
    let vs = d.on("n1", ModalityKind::Vector).unwrap();
    assert_eq!(vs.export(&id("a"), T).await.unwrap(), None);
    // An item sent to the store of another modality is refused before any fence is written: the
    // graph store, sent a's vector at index 9, still admits a's graph item at 5.
    let good = prepared(d, "a", 1.0).await.swap_remove(1);
    let at = |index| Fence { index, version: 1 };
    let gs = d.on("n1", ModalityKind::Graph).unwrap();
    assert_eq!(
        refusal(gs.import(&good, at(9), T).await.unwrap_err()),
        StoreRefusalCode::WrongModality
    );
    assert_eq!(
        gs.import(&items[0], at(5), T).await.unwrap(),
        Imported::Stored(items[0].hash)
    );
    assert_eq!(
        vs.import(&good, F, T).await.unwrap(),
        Imported::Stored(good.hash)
    );
    node.stop().await;
}

/// Entities imported concurrently through the batcher (`StoreDirectory::import_entity`) each get
/// their own answer: a refused item fails its entity only, the others are all stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_imports_answer_each_entity_from_its_own_items() {
    let node = Node::start().await;
    let d = &node.dir;
    let mut entities = Vec::new();
    for n in 0..24u8 {
        let mut items = prepared(d, &format!("e{n}"), f32::from(n)).await;
        if n == 7 {
            // A payload changed under its hash.
            if let Some(b) = items[2].payload.0.last_mut() {
                *b ^= 1;
            }
        }
        entities.push(std::sync::Arc::<[ExportedItem]>::from(items));
    }
    let imports = entities
        .iter()
        .map(|items| d.import_entity("n1", items.clone(), F));
    let results = futures::future::join_all(imports).await;
    for (n, (items, result)) in entities.iter().zip(results).enumerate() {
        if n == 7 {
            assert_eq!(refusal(result.unwrap_err()), StoreRefusalCode::HashMismatch);
            let ts = d.on("n1", ModalityKind::Tensor).unwrap();
            assert_eq!(ts.export(&items[2].id, T).await.unwrap(), None);
            continue;
        }
        result.unwrap();
        for item in items.iter() {
            assert_eq!(
                d.export("n1", item.modality, &item.id, T).await.unwrap(),
                Some(item.clone()),
                "entity {n}"
            );
        }
    }
    // A node that is not there: every entity is answered, with the error.
    assert!(matches!(
        d.import_entity("n9", entities[0].clone(), F).await,
        Err(StoreCallError::Unreachable { .. })
    ));
    node.stop().await;
}
