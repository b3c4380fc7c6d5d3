//! The pending tail: searched exactly until indexed, same answers before and after indexing,
//! replacements and deletions of pending vectors, filters over both parts, restarts, the bound.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::tests::{def, random_vectors, store};
use super::*;
use crate::codec::to_cbor;
use crate::testutil::{check_digests, id};

fn ids(prefix: &str, n: usize) -> Vec<EntityId> {
    (0..n).map(|i| id(&format!("{prefix}{i}"))).collect()
}

fn put_all(s: &mut VectorStore, ids: &[EntityId], vs: &[Vec<f32>]) {
    s.upsert_many("c", ids.iter().cloned().zip(vs.iter().cloned()).collect())
        .unwrap();
}

/// Every search the tests compare: exact, and ANN with a beam covering the whole collection.
fn answers(
    s: &VectorStore,
    queries: &[Vec<f32>],
    filter: Option<&BTreeSet<EntityId>>,
) -> Vec<Vec<Hit>> {
    let mut out = Vec::new();
    for q in queries {
        out.push(s.search("c", q, 10, SearchMode::Exact, filter).unwrap());
        out.push(
            s.search("c", q, 10, SearchMode::Ann { ef: Some(2000) }, filter)
                .unwrap(),
        );
    }
    out
}

#[test]
fn pending_vectors_are_searched_exactly_and_answers_do_not_change_when_indexed() {
    let seed = 51;
    println!("seed {seed}");
    let (_d, _db, mut s) = store();
    s.create_collection("c", def(8, Metric::L2)).unwrap();
    let old = ids("g", 1000);
    put_all(&mut s, &old, &random_vectors(seed, 1000, 8));
    assert_eq!(s.index_stats("c").unwrap().pending, 1000);
    assert_eq!(s.index_pending(usize::MAX), 1000);
    let new = ids("t", 300);
    let nv = random_vectors(seed + 1, 300, 8);
    for (e, v) in new.iter().zip(&nv) {
        s.upsert("c", e, v).unwrap();
    }
    let st = s.index_stats("c").unwrap();
    assert_eq!((st.live, st.pending), (1300, 300), "{st:?}");
    // Each pending vector is its own nearest neighbour, at a small default ef too.
    for (e, v) in new.iter().zip(&nv) {
        let hit = &s
            .search("c", v, 1, SearchMode::Ann { ef: Some(16) }, None)
            .unwrap()[0];
        assert_eq!(&hit.id, e);
        assert!(hit.distance.abs() < 1e-6);
    }
    let queries = random_vectors(seed + 2, 40, 8);
    let before = answers(&s, &queries, None);
    // ANN with ef above the collection size is exact: the merge adds nothing wrong.
    for pair in before.chunks(2) {
        assert_eq!(pair[0], pair[1]);
    }
    assert_eq!(s.index_pending(100), 100);
    assert_eq!(s.index_stats("c").unwrap().pending, 200);
    assert_eq!(answers(&s, &queries, None), before);
    assert_eq!(s.index_pending(usize::MAX), 200);
    assert_eq!(s.index_pending(usize::MAX), 0);
    assert_eq!(s.pending(), 0);
    assert_eq!(answers(&s, &queries, None), before);
    check_digests(&s);
}

#[test]
fn a_pending_vector_can_be_replaced_and_deleted() {
    let (_d, _db, mut s) = store();
    s.create_collection("c", def(3, Metric::L2)).unwrap();
    let (a, b) = (id("a"), id("b"));
    let h1 = s.upsert("c", &a, &[1.0, 0.0, 0.0]).unwrap();
    let h2 = s.upsert("c", &a, &[0.0, 5.0, 0.0]).unwrap();
    assert_ne!(h1, h2);
    assert_eq!(s.item_hash(&a).unwrap(), Some(h2));
    let st = s.index_stats("c").unwrap();
    // Replaced while pending: no tombstone, one pending vector.
    assert_eq!((st.live, st.pending, st.tombstones), (1, 1, 0));
    for mode in [SearchMode::Exact, SearchMode::Ann { ef: None }] {
        let hits = s.search("c", &[1.0, 0.0, 0.0], 5, mode, None).unwrap();
        assert_eq!(hits.len(), 1);
        assert!((hits[0].distance - 26f32.sqrt()).abs() < 1e-5, "{hits:?}");
    }
    // An indexed vector that is replaced leaves a tombstone and becomes pending.
    s.upsert("c", &b, &[0.0, 0.0, 1.0]).unwrap();
    s.index_pending(usize::MAX);
    s.upsert("c", &b, &[0.0, 0.0, 9.0]).unwrap();
    let st = s.index_stats("c").unwrap();
    assert_eq!((st.live, st.pending, st.tombstones), (2, 1, 1));
    let hits = s
        .search("c", &[0.0, 0.0, 9.0], 1, SearchMode::Ann { ef: None }, None)
        .unwrap();
    assert_eq!(hits[0].id, b);
    assert!(hits[0].distance.abs() < 1e-6);
    // Deleting pending vectors leaves nothing behind.
    assert!(s.delete("c", &a).unwrap());
    assert!(s.delete("c", &b).unwrap());
    let st = s.index_stats("c").unwrap();
    assert_eq!((st.live, st.pending), (0, 0));
    for mode in [SearchMode::Exact, SearchMode::Ann { ef: None }] {
        assert!(
            s.search("c", &[0.0, 0.0, 9.0], 5, mode, None)
                .unwrap()
                .is_empty()
        );
    }
    assert_eq!(s.index_pending(10), 0);
    // remove_item and import_item go through the tail too.
    let h = s.upsert("c", &a, &[2.0, 2.0, 2.0]).unwrap();
    let ex = s.export_item(&a).unwrap().unwrap();
    assert!(s.remove_item(&a).unwrap());
    assert_eq!(s.index_stats("c").unwrap().pending, 0);
    assert_eq!(s.import_item(&ex).unwrap(), h);
    assert_eq!(s.index_stats("c").unwrap().pending, 1);
    assert_eq!(
        s.search("c", &[2.0, 2.0, 2.0], 1, SearchMode::Ann { ef: None }, None)
            .unwrap()[0]
            .id,
        a
    );
    let changed = s.drop_collection("c").unwrap();
    assert_eq!(changed, vec![(a, None)]);
    check_digests(&s);
}

#[test]
fn filters_cover_the_graph_and_the_tail() {
    let seed = 53;
    println!("seed {seed}");
    let (_d, _db, mut s) = store();
    s.create_collection("c", def(8, Metric::L2)).unwrap();
    let old = ids("g", 5000);
    put_all(&mut s, &old, &random_vectors(seed, 5000, 8));
    s.index_pending(usize::MAX);
    let new = ids("t", 400);
    let nv = random_vectors(seed + 1, 400, 8);
    put_all(&mut s, &new, &nv);
    assert_eq!(s.index_stats("c").unwrap().pending, 400);
    // Even ids of both parts: a small filter (exact path) and a large one (graph with a predicate).
    let small: BTreeSet<EntityId> = old[..1000].iter().chain(&new).step_by(2).cloned().collect();
    let large: BTreeSet<EntityId> = old.iter().chain(&new).step_by(2).cloned().collect();
    assert!(small.len() <= FILTER_EXACT_MAX && large.len() > FILTER_EXACT_MAX);
    let queries = random_vectors(seed + 2, 30, 8);
    for f in [&small, &large] {
        for (i, (e, v)) in new.iter().zip(&nv).enumerate() {
            let hits = s
                .search("c", v, 3, SearchMode::Ann { ef: None }, Some(f))
                .unwrap();
            assert!(hits.iter().all(|h| f.contains(&h.id)));
            // A pending vector is found when the filter allows it, and never when it does not.
            assert_eq!(hits[0].id == *e, i % 2 == 0, "{i}: {hits:?}");
        }
        let before = answers(&s, &queries, Some(f));
        for a in &before {
            assert!(a.iter().all(|h| f.contains(&h.id)));
        }
        for pair in before.chunks(2) {
            assert_eq!(pair[0], pair[1]);
        }
    }
    // Indexing changes nothing that an exhaustive ANN search or an exact one returns.
    let before: Vec<_> = [&small, &large]
        .iter()
        .map(|f| answers(&s, &queries, Some(f)))
        .collect();
    s.index_pending(usize::MAX);
    let after: Vec<_> = [&small, &large]
        .iter()
        .map(|f| answers(&s, &queries, Some(f)))
        .collect();
    assert_eq!(before, after);
}

#[test]
fn a_pending_tail_survives_a_checkpoint_and_a_crash() {
    let seed = 55;
    println!("seed {seed}");
    let (dir, db, mut s) = store();
    s.create_collection("c", def(8, Metric::Cosine)).unwrap();
    let old = ids("g", 2000);
    put_all(&mut s, &old, &random_vectors(seed, 2000, 8));
    s.index_pending(usize::MAX);
    let new = ids("t", 300);
    let nv = random_vectors(seed + 1, 300, 8);
    put_all(&mut s, &new, &nv);
    // A pending vector replaced and one deleted, an indexed one deleted.
    s.upsert("c", &new[0], &random_vectors(seed + 9, 1, 8)[0])
        .unwrap();
    s.delete("c", &new[1]).unwrap();
    s.delete("c", &old[0]).unwrap();
    let st = s.index_stats("c").unwrap();
    assert_eq!((st.live, st.pending), (2298, 299), "{st:?}");
    let queries = random_vectors(seed + 2, 40, 8);
    let q_ann = |s: &VectorStore| -> Vec<Vec<Hit>> {
        queries
            .iter()
            .map(|q| {
                s.search("c", q, 10, SearchMode::Ann { ef: Some(32) }, None)
                    .unwrap()
            })
            .collect()
    };
    let exact = |s: &VectorStore| -> Vec<Vec<Hit>> {
        queries
            .iter()
            .map(|q| s.search("c", q, 10, SearchMode::Exact, None).unwrap())
            .collect()
    };
    let (ann0, exact0) = (q_ann(&s), exact(&s));

    // With a checkpoint: the same graph and the same tail, so the same answers.
    s.checkpoint().unwrap();
    drop(s);
    let mut s = VectorStore::open(&db, &Limits::default()).unwrap();
    let st2 = s.index_stats("c").unwrap();
    assert!(st2.from_checkpoint);
    assert_eq!((st2.live, st2.pending), (st.live, st.pending));
    assert_eq!(q_ann(&s), ann0);
    assert_eq!(exact(&s), exact0);

    // Writes after the checkpoint, then a crash (no checkpoint): the log replay puts them back.
    let more = random_vectors(seed + 3, 50, 8);
    let extra = ids("x", 50);
    put_all(&mut s, &extra, &more);
    s.delete("c", &new[2]).unwrap();
    let (live, exact1) = (s.index_stats("c").unwrap().live, exact(&s));
    drop(s);
    drop(db);
    let db = crate::db::open_db(dir.path(), &crate::StoreConfig::default()).unwrap();
    let s = VectorStore::open(&db, &Limits::default()).unwrap();
    let st3 = s.index_stats("c").unwrap();
    assert!(st3.from_checkpoint);
    assert_eq!((st3.live, st3.pending), (live, 299 + 50 - 1));
    assert_eq!(exact(&s), exact1);
    for (e, v) in extra.iter().zip(&more).chain(new[3..].iter().zip(&nv[3..])) {
        let hit = &s
            .search("c", v, 1, SearchMode::Ann { ef: None }, None)
            .unwrap()[0];
        assert_eq!(&hit.id, e);
    }
    check_digests(&s);
}

#[test]
fn a_full_tail_is_indexed_by_the_write_itself() {
    let (_d, _db, mut s) = store();
    s.create_collection("c", def(2, Metric::L2)).unwrap();
    let vs: Vec<Vec<f32>> = (0..TAIL_LIMIT + 10)
        .map(|i| {
            #[allow(clippy::cast_precision_loss)]
            let x = i as f32;
            vec![x, 1.0]
        })
        .collect();
    let all = ids("v", vs.len());
    put_all(&mut s, &all, &vs);
    let st = s.index_stats("c").unwrap();
    assert_eq!((st.live, st.pending), (TAIL_LIMIT + 10, TAIL_LIMIT));
    // The oldest (a batch is applied in id order) were indexed.
    let mut order = all.clone();
    order.sort();
    let c = &s.collections["c"];
    assert!(order[..10].iter().all(|e| c.slot_of.contains_key(e)));
    assert!(order[10..].iter().all(|e| c.tail.contains(e)));

    s.set_tail_limit(16);
    assert_eq!(s.index_stats("c").unwrap().pending, 16);
    s.upsert("c", &id("one"), &[0.5, 0.5]).unwrap();
    assert_eq!(s.index_stats("c").unwrap().pending, 16);
    // Limit 0: every write is indexed synchronously, as before the tail.
    s.set_tail_limit(0);
    assert_eq!(s.pending(), 0);
    s.upsert("c", &id("two"), &[0.25, 0.5]).unwrap();
    assert_eq!(s.pending(), 0);
    assert_eq!(
        s.search("c", &[0.25, 0.5], 1, SearchMode::Ann { ef: None }, None)
            .unwrap()[0]
            .id,
        id("two")
    );
}

/// The graph depends on the order of indexing only: indexing in slices builds, bit for bit, the
/// graph synchronous insertion builds.
#[test]
fn indexing_in_slices_builds_the_synchronous_graph() {
    let seed = 57;
    let vs = random_vectors(seed, 1500, 8);
    let all = ids("v", vs.len());
    let (_d1, _db1, mut sync) = store();
    let (_d2, _db2, mut lazy) = store();
    sync.set_tail_limit(0);
    for s in [&mut sync, &mut lazy] {
        s.create_collection("c", def(8, Metric::L2)).unwrap();
    }
    for (chunk_i, chunk_v) in all.chunks(100).zip(vs.chunks(100)) {
        put_all(&mut sync, chunk_i, chunk_v);
        put_all(&mut lazy, chunk_i, chunk_v);
        lazy.index_pending(37);
    }
    assert!(lazy.pending() > 0);
    while lazy.index_pending(7) > 0 {}
    let graph = |s: &VectorStore| {
        let c = &s.collections["c"];
        to_cbor(&(&c.id_of, c.ann.snapshot())).unwrap()
    };
    assert_eq!(graph(&sync), graph(&lazy));
}

/// Equal distances, and equal ids except among the ties at the cut-off (integer vectors tie often;
/// which of several equally distant vectors the graph kept before the cut is not specified).
fn same(ann: &[Hit], exact: &[Hit]) -> Result<(), TestCaseError> {
    let d = |h: &[Hit]| h.iter().map(|h| h.distance).collect::<Vec<_>>();
    prop_assert_eq!(d(ann), d(exact));
    let last = exact.last().map_or(f32::INFINITY, |h| h.distance);
    let below = |h: &[Hit]| {
        h.iter()
            .filter(|h| h.distance < last)
            .map(|h| h.id.clone())
            .collect::<Vec<_>>()
    };
    prop_assert_eq!(below(ann), below(exact));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Random upserts, deletes and partial indexing over a small collection: ANN with a beam
    /// larger than the collection answers exactly what exact search answers, filtered or not.
    #[test]
    fn ann_with_a_wide_beam_equals_exact_whatever_is_pending(
        ops in prop::collection::vec((0u8..4, 0usize..30, prop::collection::vec(-10i8..10, 4)), 1..80),
        query in prop::collection::vec(-10i8..10, 4),
        k in 1usize..12,
    ) {
        let (_d, _db, mut s) = store();
        s.create_collection("c", def(4, Metric::L2)).unwrap();
        for (op, who, v) in ops {
            let e = id(&format!("e{who}"));
            match op {
                0 | 1 => {
                    let v: Vec<f32> = v.iter().map(|x| f32::from(*x)).collect();
                    s.upsert("c", &e, &v).unwrap();
                }
                2 => {
                    s.delete("c", &e).unwrap();
                }
                _ => {
                    s.index_pending(who);
                }
            }
        }
        let q: Vec<f32> = query.iter().map(|x| f32::from(*x)).collect();
        let filter: BTreeSet<EntityId> = (0..30).step_by(3).map(|i| id(&format!("e{i}"))).collect();
        for f in [None, Some(&filter)] {
            let exact = s.search("c", &q, k, SearchMode::Exact, f).unwrap();
            let ann = s.search("c", &q, k, SearchMode::Ann { ef: Some(500) }, f).unwrap();
            same(&ann, &exact)?;
            s.index_pending(usize::MAX);
            let ann = s.search("c", &q, k, SearchMode::Ann { ef: Some(500) }, f).unwrap();
            same(&ann, &exact)?;
        }
    }
}
