use std::collections::BTreeSet;

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::limits::Limits;
use crate::testutil::{check_digests, id, temp_db};

pub(super) fn store() -> (tempfile::TempDir, Database, VectorStore) {
    let (dir, db) = temp_db();
    let v = VectorStore::open(&db, &Limits::default()).unwrap();
    (dir, db, v)
}

pub(super) fn def(dim: u32, metric: Metric) -> CollectionDef {
    CollectionDef { dim, metric }
}

#[test]
fn bad_vectors_are_typed_errors() {
    let (_d, _db, mut s) = store();
    s.create_collection("c", def(3, Metric::Cosine)).unwrap();
    let e = id("e");
    assert!(matches!(
        s.upsert("c", &e, &[1.0, 2.0]),
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        s.upsert("c", &e, &[1.0, f32::NAN, 0.0]),
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        s.upsert("c", &e, &[f32::INFINITY, 0.0, 0.0]),
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        s.upsert("c", &e, &[0.0; 3]),
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        s.upsert("nope", &e, &[1.0; 3]),
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.create_collection("c", def(4, Metric::L2)),
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        s.create_collection("big", def(5000, Metric::L2)),
        Err(StoreError::LimitExceeded { .. })
    ));
    assert!(matches!(
        s.search("c", &[1.0; 3], 20_000, SearchMode::Exact, None),
        Err(StoreError::LimitExceeded { .. })
    ));
    assert!(s.get("c", &e).unwrap().is_none());
    assert_eq!(s.item_hash(&e).unwrap(), None);
}

#[test]
fn upsert_get_delete_and_hash_track_the_item() {
    let (_d, _db, mut s) = store();
    s.create_collection("a", def(2, Metric::L2)).unwrap();
    s.create_collection("b", def(2, Metric::Dot)).unwrap();
    let e = id("e");
    let h1 = s.upsert("a", &e, &[1.0, 2.0]).unwrap();
    let h2 = s.upsert("b", &e, &[1.0, 2.0]).unwrap();
    assert_ne!(h1, h2);
    assert_eq!(s.get("a", &e).unwrap(), Some(vec![1.0, 2.0]));
    assert!(s.delete("b", &e).unwrap());
    assert_eq!(s.item_hash(&e).unwrap(), Some(h1));
    assert!(!s.delete("b", &e).unwrap());
    let changed = s.drop_collection("a").unwrap();
    assert_eq!(changed, vec![(e.clone(), None)]);
    assert_eq!(s.item_hash(&e).unwrap(), None);
    check_digests(&s);
}

#[test]
fn vectors_inserted_after_every_reachable_one_was_deleted_are_still_found_by_ann() {
    // The first entry of a collection is updated (its old vector becomes a tombstone) and then
    // deleted: every vector inserted afterwards must still be reachable from the entry point.
    let (_d, _db, mut s) = store();
    s.create_collection("c", def(3, Metric::L2)).unwrap();
    let first = id("first");
    s.upsert("c", &first, &[1.0, 0.0, 0.0]).unwrap();
    s.upsert("c", &first, &[0.0, 1.0, 0.0]).unwrap();
    assert!(s.delete("c", &first).unwrap());
    for i in 0..20u8 {
        let e = id(&format!("later-{i}"));
        let v = [f32::from(i), 1.0, 2.0];
        s.upsert("c", &e, &v).unwrap();
        let hits = s
            .search("c", &v, 1, SearchMode::Ann { ef: None }, None)
            .unwrap();
        assert_eq!(
            hits.first().map(|h| &h.id),
            Some(&e),
            "entity {i} not found by ANN"
        );
    }
}

#[test]
fn metrics_report_documented_distances() {
    let (_d, _db, mut s) = store();
    for (n, m) in [("c", Metric::Cosine), ("l", Metric::L2), ("d", Metric::Dot)] {
        s.create_collection(n, def(2, m)).unwrap();
        s.upsert(n, &id("x"), &[3.0, 4.0]).unwrap();
    }
    let q = [1.0, 0.0];
    let d = |n| s.search(n, &q, 1, SearchMode::Exact, None).unwrap()[0].distance;
    assert!((d("c") - 0.4).abs() < 1e-6);
    assert!((d("l") - 20f32.sqrt()).abs() < 1e-5);
    assert!((d("d") + 3.0).abs() < 1e-6);
}

fn model_distance(m: Metric, a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    match m {
        Metric::Cosine => {
            let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
            let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
            1.0 - dot / (na * nb)
        }
        Metric::L2 => a
            .iter()
            .zip(b)
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
            .sum::<f64>()
            .sqrt(),
        Metric::Dot => -dot,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Exact search equals brute force over a model map, with deletes and an optional filter.
    #[test]
    fn exact_search_equals_brute_force(
        metric in prop_oneof![Just(Metric::Cosine), Just(Metric::L2), Just(Metric::Dot)],
        vecs in prop::collection::vec(prop::collection::vec(-10i8..10, 4), 1..40),
        deletes in prop::collection::vec(0usize..40, 0..10),
        query in prop::collection::vec(-10i8..10, 4),
        k in 1usize..12,
        use_filter in any::<bool>(),
    ) {
        let (_d, _db, mut s) = store();
        s.create_collection("c", def(4, metric)).unwrap();
        let mut model = BTreeMap::new();
        for (i, v) in vecs.iter().enumerate() {
            let v: Vec<f32> = v.iter().map(|x| f32::from(*x)).collect();
            let r = s.upsert("c", &id(&format!("e{}", i % 25)), &v);
            if metric == Metric::Cosine && v.iter().all(|x| *x == 0.0) {
                prop_assert!(r.is_err());
            } else {
                r.unwrap();
                model.insert(format!("e{}", i % 25), v);
            }
        }
        for d in deletes {
            let name = format!("e{d}");
            prop_assert_eq!(s.delete("c", &id(&name)).unwrap(), model.remove(&name).is_some());
        }
        let q: Vec<f32> = query.iter().map(|x| f32::from(*x)).collect();
        if metric == Metric::Cosine && q.iter().all(|x| *x == 0.0) {
            return Ok(());
        }
        let filter: Option<BTreeSet<EntityId>> = use_filter
            .then(|| (0..25).step_by(2).map(|i| id(&format!("e{i}"))).collect());
        let got = s.search("c", &q, k, SearchMode::Exact, filter.as_ref()).unwrap();
        let mut want: Vec<(f64, String)> = model
            .iter()
            .filter(|(n, _)| filter.as_ref().is_none_or(|f| f.contains(&id(n))))
            .map(|(n, v)| (model_distance(metric, v, &q), n.clone()))
            .collect();
        want.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        want.truncate(k);
        prop_assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            prop_assert!((f64::from(g.distance) - w.0).abs() < 1e-3, "{:?} vs {:?}", g, w);
            let own = model_distance(metric, &model[g.id.as_str()], &q);
            prop_assert!((own - w.0).abs() < 1e-3, "{:?} is not among the nearest", g);
        }
        // ANN with a small filter is exact too.
        if let Some(f) = &filter {
            let ann = s.search("c", &q, k, SearchMode::Ann { ef: None }, Some(f)).unwrap();
            prop_assert_eq!(ann.iter().map(|h| h.distance).collect::<Vec<_>>(),
                got.iter().map(|h| h.distance).collect::<Vec<_>>());
        }
        check_digests(&s);
    }
}

pub(super) fn random_vectors(seed: u64, n: usize, dim: usize) -> Vec<Vec<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| (0..dim).map(|_| rng.random_range(-1.0f32..1.0)).collect())
        .collect()
}

/// Recall of the HNSW index against exact search on a small random set; a quality check, not
/// a timing.
#[test]
fn ann_recall_is_high_and_survives_restart_and_compaction() {
    let seed = 7;
    println!("seed {seed}");
    let (dir, db, mut s) = store();
    s.create_collection("c", def(16, Metric::L2)).unwrap();
    let vs = random_vectors(seed, 3000, 16);
    let ids: Vec<EntityId> = (0..vs.len()).map(|i| id(&format!("v{i}"))).collect();
    for chunk in ids
        .iter()
        .cloned()
        .zip(vs.iter().cloned())
        .collect::<Vec<_>>()
        .chunks(500)
    {
        s.upsert_many("c", chunk.to_vec()).unwrap();
    }
    // Recall of the graph, not of the exactly searched tail.
    assert_eq!(s.index_pending(usize::MAX), 3000);
    let queries = random_vectors(seed + 1, 50, 16);
    let recall = |s: &VectorStore| {
        let mut hit = 0;
        for q in &queries {
            let exact: BTreeSet<EntityId> = s
                .search("c", q, 10, SearchMode::Exact, None)
                .unwrap()
                .into_iter()
                .map(|h| h.id)
                .collect();
            hit += s
                .search("c", q, 10, SearchMode::Ann { ef: Some(64) }, None)
                .unwrap()
                .iter()
                .filter(|h| exact.contains(&h.id))
                .count();
        }
        hit as f64 / (queries.len() * 10) as f64
    };
    let r = recall(&s);
    assert!(r >= 0.9, "recall {r} (seed {seed})");

    // Delete two thirds: tombstones outnumber live slots, so the graph is compacted.
    for e in &ids[..2000] {
        s.delete("c", e).unwrap();
    }
    let st = s.index_stats("c").unwrap();
    assert_eq!(st.live, 1000);
    assert!(st.tombstones < 1024, "{st:?}");
    let r = recall(&s);
    assert!(r >= 0.9, "recall after deletes {r} (seed {seed})");
    let hits = s
        .search("c", &queries[0], 10, SearchMode::Ann { ef: None }, None)
        .unwrap();
    assert!(hits.iter().all(|h| !ids[..2000].contains(&h.id)));

    // Large filter goes through HNSW with a predicate.
    let f: BTreeSet<EntityId> = ids[2000..].iter().step_by(1).cloned().collect();
    let big: BTreeSet<EntityId> = f
        .iter()
        .cloned()
        .chain(ids[..2000].iter().cloned())
        .collect();
    let hits = s
        .search(
            "c",
            &queries[0],
            10,
            SearchMode::Ann { ef: None },
            Some(&big),
        )
        .unwrap();
    assert_eq!(hits.len(), 10);

    drop(s);
    drop(db);
    let db = crate::db::open_db(dir.path(), &crate::StoreConfig::default()).unwrap();
    let mut s = VectorStore::open(&db, &Limits::default()).unwrap();
    assert_eq!(s.index_stats("c").unwrap().live, 1000);
    s.index_pending(usize::MAX);
    let r = recall(&s);
    assert!(r >= 0.9, "recall after restart {r} (seed {seed})");
    check_digests(&s);
}

#[test]
fn export_import_round_trip() {
    let (_d, _db, mut s) = store();
    s.create_collection("c", def(3, Metric::Cosine)).unwrap();
    s.create_collection("d", def(2, Metric::L2)).unwrap();
    let e = id("e");
    s.upsert("c", &e, &[1.0, 2.0, 3.0]).unwrap();
    let h = s.upsert("d", &e, &[-1.0, 0.5]).unwrap();
    let ex =
        ExportedItem::from_bytes(&s.export_item(&e).unwrap().unwrap().to_bytes().unwrap()).unwrap();
    assert_eq!(ex.hash, h);

    let (_d2, _db2, mut t) = store();
    assert!(matches!(
        t.import_item(&ex),
        Err(StoreError::NotFound { .. })
    ));
    t.create_collection("c", def(3, Metric::Cosine)).unwrap();
    t.create_collection("d", def(2, Metric::L2)).unwrap();
    t.upsert("c", &e, &[9.0, 9.0, 9.0]).unwrap();
    assert_eq!(t.import_item(&ex).unwrap(), h);
    assert_eq!(t.verify_item(&e).unwrap(), Some(h));
    assert_eq!(t.get("c", &e).unwrap(), Some(vec![1.0, 2.0, 3.0]));
    let hits = t
        .search("c", &[1.0, 2.0, 3.0], 1, SearchMode::Ann { ef: None }, None)
        .unwrap();
    assert_eq!(hits[0].id, e);
    assert!(hits[0].distance.abs() < 1e-6);
    assert!(t.remove_item(&e).unwrap());
    assert!(
        t.search("c", &[1.0, 2.0, 3.0], 1, SearchMode::Exact, None)
            .unwrap()
            .is_empty()
    );
    check_digests(&t);
}

#[test]
fn checkpoint_restores_the_graph_and_replays_later_writes() {
    let seed = 11;
    println!("seed {seed}");
    let (dir, db, mut s) = store();
    s.create_collection("c", def(16, Metric::L2)).unwrap();
    s.create_collection("d", def(2, Metric::Cosine)).unwrap();
    let vs = random_vectors(seed, 3000, 16);
    let ids: Vec<EntityId> = (0..vs.len()).map(|i| id(&format!("v{i}"))).collect();
    s.upsert_many("c", ids.iter().cloned().zip(vs.iter().cloned()).collect())
        .unwrap();
    s.upsert("d", &ids[0], &[1.0, 1.0]).unwrap();
    s.index_pending(usize::MAX);
    s.checkpoint().unwrap();
    // Writes after the checkpoint: new vectors, replacements, deletions.
    let more = random_vectors(seed + 2, 400, 16);
    let extra: Vec<(EntityId, Vec<f32>)> = (0..200)
        .map(|i| (id(&format!("w{i}")), more[i].clone()))
        .chain((0..100).map(|i| (ids[i].clone(), more[200 + i].clone())))
        .collect();
    s.upsert_many("c", extra).unwrap();
    for e in &ids[1000..1300] {
        s.delete("c", e).unwrap();
    }
    s.drop_collection("d").unwrap();
    let live = s.index_stats("c").unwrap().live;
    assert_eq!(live, 3000 + 200 - 300);
    drop(s);
    drop(db);

    let db = crate::db::open_db(dir.path(), &crate::StoreConfig::default()).unwrap();
    let mut s = VectorStore::open(&db, &Limits::default()).unwrap();
    let st = s.index_stats("c").unwrap();
    assert!(st.from_checkpoint, "{st:?}");
    assert_eq!(st.live, live);
    // The replayed writes are pending again; measure the graph.
    assert_eq!(st.pending, 300);
    s.index_pending(usize::MAX);
    assert!(matches!(
        s.index_stats("d"),
        Err(StoreError::NotFound { .. })
    ));
    let queries = random_vectors(seed + 1, 50, 16);
    let mut hit = 0;
    for q in &queries {
        let exact: BTreeSet<EntityId> = s
            .search("c", q, 10, SearchMode::Exact, None)
            .unwrap()
            .into_iter()
            .map(|h| h.id)
            .collect();
        let ann = s
            .search("c", q, 10, SearchMode::Ann { ef: Some(64) }, None)
            .unwrap();
        assert!(ann.iter().all(|h| !ids[1000..1300].contains(&h.id)));
        hit += ann.iter().filter(|h| exact.contains(&h.id)).count();
    }
    let recall = hit as f64 / 500.0;
    assert!(recall >= 0.9, "recall after restore {recall} (seed {seed})");
    // A replaced vector is found where it now is.
    let h = s
        .search("c", &more[200], 1, SearchMode::Ann { ef: None }, None)
        .unwrap();
    assert_eq!(h[0].id, ids[0]);

    // A damaged checkpoint falls back to a full rebuild, with the same content.
    let mut b = db.batch();
    b.insert(&s.ckpt, b"c\0c\0\0\0\0".to_vec(), b"garbage".to_vec());
    b.commit().unwrap();
    drop(s);
    let s = VectorStore::open(&db, &Limits::default()).unwrap();
    let st = s.index_stats("c").unwrap();
    assert!(!st.from_checkpoint);
    assert_eq!(st.live, live);
}

/// Recall@10 of ANN (`ef`) against exact search over `queries`, with an optional filter; also
/// checks that every ANN hit is live and passes the filter.
fn recall(
    s: &VectorStore,
    coll: &str,
    queries: &[Vec<f32>],
    ef: usize,
    filter: Option<&BTreeSet<EntityId>>,
) -> f64 {
    let mut hit = 0;
    let mut want = 0;
    for q in queries {
        let exact: BTreeSet<EntityId> = s
            .search(coll, q, 10, SearchMode::Exact, filter)
            .unwrap()
            .into_iter()
            .map(|h| h.id)
            .collect();
        let ann = s
            .search(coll, q, 10, SearchMode::Ann { ef: Some(ef) }, filter)
            .unwrap();
        for h in &ann {
            assert!(
                filter.is_none_or(|f| f.contains(&h.id)),
                "{} is not in the filter",
                h.id
            );
            assert!(
                s.get(coll, &h.id).unwrap().is_some(),
                "{} is not live",
                h.id
            );
        }
        assert_eq!(ann.len(), exact.len(), "ANN found fewer results than exist");
        want += exact.len();
        hit += ann.iter().filter(|h| exact.contains(&h.id)).count();
    }
    hit as f64 / want as f64
}

fn fill(s: &mut VectorStore, coll: &str, vs: &[Vec<f32>]) -> Vec<EntityId> {
    let ids: Vec<EntityId> = (0..vs.len()).map(|i| id(&format!("v{i}"))).collect();
    s.upsert_many(coll, ids.iter().cloned().zip(vs.iter().cloned()).collect())
        .unwrap();
    // Recall of the graph, not of the exactly searched tail.
    s.index_pending(usize::MAX);
    ids
}

/// A filter above the exact-search threshold (2048 ids) goes through HNSW with a predicate. The
/// filter leaves out live vectors — among them the nearest ones of many queries — and names ids
/// that are deleted or were never stored.
#[test]
fn large_filters_run_through_hnsw_and_keep_recall() {
    let seed = 21;
    println!("seed {seed}");
    let (_d, _db, mut s) = store();
    s.create_collection("c", def(16, Metric::L2)).unwrap();
    let vs = random_vectors(seed, 7500, 16);
    let ids = fill(&mut s, "c", &vs);
    for e in ids.iter().skip(1).step_by(10) {
        s.delete("c", e).unwrap();
    }
    let queries = random_vectors(seed + 1, 60, 16);
    // Half of the ids (every other one, deleted ones included) plus ids never stored.
    let half: BTreeSet<EntityId> = ids
        .iter()
        .step_by(2)
        .cloned()
        .chain((0..100).map(|i| id(&format!("ghost{i}"))))
        .collect();
    // A third: sparser, so the beam wades through more excluded nodes.
    let third: BTreeSet<EntityId> = ids.iter().step_by(3).cloned().collect();
    assert!(half.len() > FILTER_EXACT_MAX && third.len() > FILTER_EXACT_MAX);
    for (name, f) in [("half", &half), ("third", &third)] {
        // The filter excludes live vectors that are nearer than what it allows, for most queries.
        let excluded_nearest = queries
            .iter()
            .filter(|q| {
                let top = s.search("c", q, 1, SearchMode::Exact, None).unwrap();
                !f.contains(&top[0].id)
            })
            .count();
        assert!(
            excluded_nearest > queries.len() / 3,
            "{name}: {excluded_nearest}"
        );
        let r = recall(&s, "c", &queries, 64, Some(f));
        println!("filter {name}: {} ids, recall@10 {r:.3} at ef 64", f.len());
        assert!(r >= 0.95, "filter {name}: recall {r} (seed {seed})");
    }
}

/// ANN recall holds for the cosine and dot metrics too (their raw distances are `1 − a·b` on
/// normalised vectors and `−a·b`, not a metric in the dot case).
#[test]
fn ann_recall_is_high_for_cosine_and_dot() {
    let seed = 31;
    println!("seed {seed}");
    let (_d, _db, mut s) = store();
    // Clustered data in 16-d: the shape of real embeddings (directions matter for cosine, norms
    // and directions for dot).
    let centres = random_vectors(seed, 20, 16);
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 2);
    let mut around = |n: usize| -> Vec<Vec<f32>> {
        (0..n)
            .map(|i| {
                centres[i % centres.len()]
                    .iter()
                    .map(|c| c + rng.random_range(-0.4f32..0.4))
                    .collect()
            })
            .collect()
    };
    let vs = around(3000);
    let queries = around(50);
    for (coll, metric, min) in [("cos", Metric::Cosine, 0.95), ("dot", Metric::Dot, 0.9)] {
        s.create_collection(coll, def(16, metric)).unwrap();
        fill(&mut s, coll, &vs);
        let r = recall(&s, coll, &queries, 64, None);
        println!("{metric:?}: recall@10 {r:.3} at ef 64");
        assert!(r >= min, "{metric:?}: recall {r} < {min} (seed {seed})");
    }
}

#[test]
fn overflowing_vectors_are_refused() {
    let (_d, _db, mut s) = store();
    for (n, m) in [("c", Metric::Cosine), ("l", Metric::L2), ("d", Metric::Dot)] {
        s.create_collection(n, def(3, m)).unwrap();
        // Finite elements whose squared norm is infinite, or large enough that a distance
        // between two such vectors would overflow.
        for v in [[1e20, 0.0, 0.0], [1e19, 1e19, 1e19], [-2e19, 0.0, 0.0]] {
            assert!(
                matches!(s.upsert(n, &id("e"), &v), Err(StoreError::InvalidInput(_))),
                "{m:?} accepted {v:?}"
            );
            assert!(matches!(
                s.search(n, &v, 1, SearchMode::Exact, None),
                Err(StoreError::InvalidInput(_))
            ));
            assert!(matches!(
                s.prepare_item(&id("e"), BTreeMap::from([(n.to_owned(), v.to_vec())])),
                Err(StoreError::InvalidInput(_))
            ));
        }
        // Large but safe: every distance stays finite.
        let big = [9e18f32, 0.0, 0.0];
        s.upsert(n, &id("a"), &big).unwrap();
        s.upsert(n, &id("b"), &[-9e18, 0.0, 0.0]).unwrap();
        for mode in [SearchMode::Exact, SearchMode::Ann { ef: None }] {
            let hits = s.search(n, &big, 2, mode, None).unwrap();
            assert_eq!(hits.len(), 2);
            assert!(
                hits.iter().all(|h| h.distance.is_finite()),
                "{m:?} {hits:?}"
            );
            assert_eq!(hits[0].id, id("a"), "{m:?}");
        }
    }
    // Tiny vectors still have a direction.
    s.upsert("c", &id("tiny"), &[1e-20, 0.0, 0.0]).unwrap();
    let hit = &s
        .search("c", &[1.0, 0.0, 0.0], 1, SearchMode::Exact, None)
        .unwrap()[0];
    assert!(hit.distance.abs() < 1e-6, "{hit:?}");
}

#[test]
fn ef_is_bounded_by_the_limit() {
    let (_d, db) = temp_db();
    let limits = Limits {
        max_ef: 100,
        ..Limits::default()
    };
    let mut s = VectorStore::open(&db, &limits).unwrap();
    s.create_collection("c", def(4, Metric::L2)).unwrap();
    let vs = random_vectors(5, 3000, 4);
    let ids = fill(&mut s, "c", &vs);
    let q = &vs[0];
    assert!(matches!(
        s.search("c", q, 10, SearchMode::Ann { ef: Some(101) }, None),
        Err(StoreError::LimitExceeded {
            what: "ef",
            limit: 100,
            actual: 101
        })
    ));
    assert!(matches!(
        s.search(
            "c",
            q,
            10,
            SearchMode::Ann {
                ef: Some(usize::MAX)
            },
            None
        ),
        Err(StoreError::LimitExceeded { .. })
    ));
    assert_eq!(
        s.search("c", q, 10, SearchMode::Ann { ef: Some(100) }, None)
            .unwrap()
            .len(),
        10
    );
    // The default ef (64) is under the limit; a small filter is answered exactly, ef unused.
    s.search("c", q, 10, SearchMode::Ann { ef: None }, None)
        .unwrap();
    let small: BTreeSet<EntityId> = ids[..100].iter().cloned().collect();
    s.search("c", q, 10, SearchMode::Ann { ef: Some(1000) }, Some(&small))
        .unwrap();
    let large: BTreeSet<EntityId> = ids[..2100].iter().cloned().collect();
    assert!(matches!(
        s.search("c", q, 10, SearchMode::Ann { ef: Some(1000) }, Some(&large)),
        Err(StoreError::LimitExceeded { .. })
    ));
    // A collection's default ef above the limit is refused too, not silently lowered.
    drop(s);
    let params = HnswParams {
        ef_search: 200,
        ..HnswParams::default()
    };
    let s = VectorStore::open_with(&db, &limits, params).unwrap();
    assert!(matches!(
        s.search("c", q, 10, SearchMode::Ann { ef: None }, None),
        Err(StoreError::LimitExceeded { .. })
    ));
}

#[test]
fn the_collection_count_is_limited() {
    let (_d, db) = temp_db();
    let limits = Limits {
        max_collections: 2,
        ..Limits::default()
    };
    let mut s = VectorStore::open(&db, &limits).unwrap();
    s.create_collection("a", def(2, Metric::L2)).unwrap();
    s.create_collection("b", def(2, Metric::L2)).unwrap();
    assert!(matches!(
        s.create_collection("c", def(2, Metric::L2)),
        Err(StoreError::LimitExceeded {
            limit: 2,
            actual: 3,
            ..
        })
    ));
    // Re-creating an existing one is a no-op, not a new collection.
    s.create_collection("a", def(2, Metric::L2)).unwrap();
    s.drop_collection("b").unwrap();
    s.create_collection("c", def(2, Metric::L2)).unwrap();
    assert_eq!(s.collections().len(), 2);
}
