use std::collections::{BTreeMap, BTreeSet, VecDeque};

use proptest::prelude::*;

use super::*;
use crate::BUCKETS;
use crate::limits::Limits;
use crate::testutil::{check_digests, id, temp_db};

fn store() -> (tempfile::TempDir, Database, GraphStore) {
    let (dir, db) = temp_db();
    let g = GraphStore::open(&db, &Limits::default()).unwrap();
    (dir, db, g)
}

fn edge(s: &str, p: &str, t: &str) -> Edge {
    Edge {
        source: id(s),
        predicate: p.into(),
        target: id(t),
        properties: Properties::new(),
    }
}

#[test]
fn edges_need_a_source_node_and_neighbours_filter_by_predicate() {
    let (_d, _db, mut g) = store();
    assert!(matches!(
        g.add_edge(edge("a", "knows", "b")),
        Err(StoreError::NotFound { .. })
    ));
    g.put_node(&id("a"), Properties::new()).unwrap();
    g.put_node(&id("b"), Properties::new()).unwrap();
    g.add_edge(edge("a", "knows", "b")).unwrap();
    g.add_edge(edge("a", "likes", "c")).unwrap();
    g.add_edge(edge("b", "knows", "a")).unwrap();
    assert_eq!(
        g.neighbours(&id("a"), Direction::Out, None).unwrap(),
        vec![id("b"), id("c")]
    );
    assert_eq!(
        g.neighbours(&id("a"), Direction::Out, Some("likes"))
            .unwrap(),
        vec![id("c")]
    );
    assert_eq!(
        g.neighbours(&id("a"), Direction::In, Some("knows"))
            .unwrap(),
        vec![id("b")]
    );
    assert_eq!(
        g.in_edges(&id("c"), None).unwrap(),
        vec![edge("a", "likes", "c")]
    );
    assert_eq!(g.counts(), GraphCounts { nodes: 2, edges: 3 });
}

#[test]
fn deleting_a_node_removes_its_edges_and_reports_changed_hashes() {
    let (_d, _db, mut g) = store();
    for n in ["a", "b", "c"] {
        g.put_node(&id(n), Properties::new()).unwrap();
    }
    g.add_edges(vec![
        edge("a", "p", "b"),
        edge("b", "p", "c"),
        edge("c", "p", "b"),
    ])
    .unwrap();
    let before_a = g.item_hash(&id("a")).unwrap();
    let out = g.delete_node(&id("b")).unwrap();
    assert!(out.existed);
    let changed: Vec<_> = out
        .changed
        .iter()
        .map(|(i, _)| i.as_str().to_owned())
        .collect();
    assert_eq!(changed, vec!["a", "b", "c"]);
    assert_ne!(g.item_hash(&id("a")).unwrap(), before_a);
    assert_eq!(g.item_hash(&id("b")).unwrap(), None);
    assert_eq!(g.counts(), GraphCounts { nodes: 2, edges: 0 });
    assert!(g.in_edges(&id("b"), None).unwrap().is_empty());
    assert!(
        g.neighbours(&id("a"), Direction::Both, None)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn removing_an_item_leaves_other_items_and_their_edges_untouched() {
    let (_d, _db, mut g) = store();
    for n in ["a", "b", "c"] {
        g.put_node(&id(n), Properties::new()).unwrap();
    }
    g.add_edges(vec![
        edge("a", "p", "b"),
        edge("b", "p", "c"),
        edge("c", "p", "b"),
    ])
    .unwrap();
    let (before_a, before_c) = (
        g.item_hash(&id("a")).unwrap(),
        g.item_hash(&id("c")).unwrap(),
    );
    assert!(g.remove_node(&id("b")).unwrap());
    assert!(
        !g.remove_node(&id("b")).unwrap(),
        "a second removal finds nothing"
    );
    // The registry's hashes of a and c stay true: their items did not change.
    assert_eq!(g.item_hash(&id("a")).unwrap(), before_a);
    assert_eq!(g.item_hash(&id("c")).unwrap(), before_c);
    assert_eq!(g.item_hash(&id("b")).unwrap(), None);
    // b's own edge is gone; the edges pointing to it dangle, as before b was registered.
    assert_eq!(g.counts(), GraphCounts { nodes: 2, edges: 2 });
    assert_eq!(
        g.neighbours(&id("b"), Direction::In, None).unwrap(),
        vec![id("a"), id("c")]
    );
    assert!(g.in_edges(&id("c"), None).unwrap().is_empty());
    check_digests(&g);
    // Registering b again reconnects it without touching a or c.
    g.put_node(&id("b"), Properties::new()).unwrap();
    assert_eq!(g.item_hash(&id("a")).unwrap(), before_a);
    assert_eq!(
        g.neighbours(&id("b"), Direction::In, None).unwrap(),
        vec![id("a"), id("c")]
    );
}

#[test]
fn traversal_and_shortest_path_on_a_chain() {
    let (_d, _db, mut g) = store();
    for i in 0..6 {
        g.put_node(&id(&format!("n{i}")), Properties::new())
            .unwrap();
    }
    g.add_edges(
        (0..5)
            .map(|i| edge(&format!("n{i}"), "next", &format!("n{}", i + 1)))
            .collect(),
    )
    .unwrap();
    let t = g.traverse(&id("n0"), 2, Direction::Out, None).unwrap();
    assert_eq!(t, vec![(id("n0"), 0), (id("n1"), 1), (id("n2"), 2)]);
    let p = g
        .shortest_path(&id("n0"), &id("n5"), 5, Direction::Out, Some("next"))
        .unwrap()
        .unwrap();
    assert_eq!(p.len(), 6);
    assert_eq!(
        g.shortest_path(&id("n0"), &id("n5"), 4, Direction::Out, None)
            .unwrap(),
        None
    );
    assert_eq!(
        g.shortest_path(&id("n5"), &id("n0"), 5, Direction::Out, None)
            .unwrap(),
        None
    );
    assert!(
        g.shortest_path(&id("n5"), &id("n0"), 5, Direction::In, None)
            .unwrap()
            .is_some()
    );
    assert!(matches!(
        g.traverse(&id("n0"), 99, Direction::Out, None),
        Err(StoreError::LimitExceeded { .. })
    ));
}

#[test]
fn bad_input_is_refused_without_writing() {
    let (_d, _db, mut g) = store();
    g.put_node(&id("a"), Properties::new()).unwrap();
    let mut props = Properties::new();
    props.insert("w".into(), Value::Float(f64::NAN));
    assert!(matches!(
        g.put_node(&id("a"), props.clone()),
        Err(StoreError::InvalidInput(_))
    ));
    let mut e = edge("a", "bad predicate", "b");
    assert!(matches!(
        g.add_edge(e.clone()),
        Err(StoreError::InvalidName { .. })
    ));
    e.predicate = "ok".into();
    e.properties = props;
    assert!(g.add_edge(e).is_err());
    assert_eq!(g.counts(), GraphCounts { nodes: 1, edges: 0 });
}

#[test]
fn export_import_round_trips_and_rehashes_identically() {
    let (_d, _db, mut g) = store();
    let mut props = Properties::new();
    props.insert("name".into(), Value::Text("Ada".into()));
    let h = g.put_node(&id("a"), props).unwrap();
    assert_eq!(g.item_hash(&id("a")).unwrap(), Some(h));
    let h = g.add_edge(edge("a", "knows", "b")).unwrap();
    let ex = g.export_item(&id("a")).unwrap().unwrap();
    assert_eq!(ex.hash, h);
    let bytes = ex.to_bytes().unwrap();

    let (_d2, _db2, mut g2) = store();
    let back = ExportedItem::from_bytes(&bytes).unwrap();
    assert_eq!(g2.import_item(&back).unwrap(), h);
    assert_eq!(g2.verify_item(&id("a")).unwrap(), Some(h));
    assert_eq!(
        g2.get_item(&id("a")).unwrap(),
        g.get_item(&id("a")).unwrap()
    );
    assert_eq!(
        g2.bucket_digests(0..BUCKETS).unwrap(),
        g.bucket_digests(0..BUCKETS).unwrap()
    );

    let mut tampered = back.clone();
    tampered.payload.0.push(0);
    assert!(g2.import_item(&tampered).is_err());
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(ExportedItem::from_bytes(&trailing).is_err());
}

#[test]
fn state_survives_reopen() {
    let (dir, db, mut g) = store();
    g.put_node(&id("a"), Properties::new()).unwrap();
    g.add_edge(edge("a", "p", "b")).unwrap();
    let h = g.item_hash(&id("a")).unwrap();
    drop(g);
    drop(db);
    let db = crate::db::open_db(dir.path(), &crate::StoreConfig::default()).unwrap();
    let g = GraphStore::open(&db, &Limits::default()).unwrap();
    assert_eq!(g.counts(), GraphCounts { nodes: 1, edges: 1 });
    assert_eq!(g.item_hash(&id("a")).unwrap(), h);
}

#[derive(Clone, Debug)]
enum Op {
    Node(u8),
    Edge(u8, u8, u8),
    RemoveEdge(u8, u8, u8),
    Delete(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..8u8).prop_map(Op::Node),
        (0..8u8, 0..2u8, 0..8u8).prop_map(|(a, p, b)| Op::Edge(a, p, b)),
        (0..8u8, 0..2u8, 0..8u8).prop_map(|(a, p, b)| Op::RemoveEdge(a, p, b)),
        (0..8u8).prop_map(Op::Delete),
    ]
}

fn model_bfs(
    edges: &BTreeSet<(u8, u8, u8)>,
    start: u8,
    hops: u32,
    dir: Direction,
) -> BTreeMap<u8, u32> {
    let mut dist = BTreeMap::from([(start, 0)]);
    let mut q = VecDeque::from([start]);
    while let Some(n) = q.pop_front() {
        let d = dist[&n];
        if d == hops {
            continue;
        }
        for &(a, _, b) in edges {
            let next = match dir {
                Direction::Out if a == n => Some(b),
                Direction::In if b == n => Some(a),
                Direction::Both if a == n => Some(b),
                Direction::Both if b == n => Some(a),
                _ => None,
            };
            if let Some(m) = next
                && let std::collections::btree_map::Entry::Vacant(v) = dist.entry(m)
            {
                v.insert(d + 1);
                q.push_back(m);
            }
        }
    }
    dist
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn graph_matches_a_model(ops in prop::collection::vec(op(), 1..40)) {
        let (_d, _db, mut g) = store();
        let name = |n: u8| id(&format!("e{n}"));
        let pred = |p: u8| format!("p{p}");
        let mut nodes = BTreeSet::new();
        let mut edges: BTreeSet<(u8, u8, u8)> = BTreeSet::new();
        for op in ops {
            match op {
                Op::Node(n) => {
                    g.put_node(&name(n), Properties::new()).unwrap();
                    nodes.insert(n);
                }
                Op::Edge(a, p, b) => {
                    let r = g.add_edge(edge(name(a).as_str(), &pred(p), name(b).as_str()));
                    if nodes.contains(&a) {
                        r.unwrap();
                        edges.insert((a, p, b));
                    } else {
                        prop_assert!(r.is_err());
                    }
                }
                Op::RemoveEdge(a, p, b) => {
                    let r = g.remove_edge(&name(a), &pred(p), &name(b)).unwrap();
                    prop_assert_eq!(r.is_some(), edges.remove(&(a, p, b)));
                }
                Op::Delete(n) => {
                    let r = g.delete_node(&name(n)).unwrap();
                    prop_assert_eq!(r.existed, nodes.remove(&n));
                    edges.retain(|&(a, _, b)| a != n && b != n);
                }
            }
        }
        prop_assert_eq!(g.counts(), GraphCounts { nodes: nodes.len() as u64, edges: edges.len() as u64 });
        for n in 0..8u8 {
            for dir in [Direction::Out, Direction::In, Direction::Both] {
                let got: BTreeMap<u8, u32> = g
                    .traverse(&name(n), 3, dir, None)
                    .unwrap()
                    .into_iter()
                    .map(|(i, d)| (i.as_str()[1..].parse().unwrap(), d))
                    .collect();
                prop_assert_eq!(&got, &model_bfs(&edges, n, 3, dir));
                for m in 0..8u8 {
                    let p = g.shortest_path(&name(n), &name(m), 3, dir, None).unwrap();
                    prop_assert_eq!(p.as_ref().map(|p| p.len() as u32 - 1), got.get(&m).copied());
                    // A real path: from n to m, every hop an edge of the model in the searched
                    // direction.
                    if let Some(p) = p {
                        let ends: Vec<u8> = p.iter().map(|i| i.as_str()[1..].parse().unwrap()).collect();
                        prop_assert_eq!(ends.first(), Some(&n));
                        prop_assert_eq!(ends.last(), Some(&m));
                        for w in ends.windows(2) {
                            let (a, b) = (w[0], w[1]);
                            let fwd = edges.iter().any(|e| e.0 == a && e.2 == b);
                            let back = edges.iter().any(|e| e.0 == b && e.2 == a);
                            let ok = match dir {
                                Direction::Out => fwd,
                                Direction::In => back,
                                Direction::Both => fwd || back,
                            };
                            prop_assert!(ok, "hop {}->{} of {:?} is not an edge ({:?})", a, b, ends, dir);
                        }
                    }
                }
                // With a predicate filter: only p1 edges count.
                let p1: BTreeSet<(u8, u8, u8)> = edges.iter().filter(|e| e.1 == 1).copied().collect();
                let want = model_bfs(&p1, n, 3, dir);
                for m in 0..8u8 {
                    let p = g.shortest_path(&name(n), &name(m), 3, dir, Some("p1")).unwrap();
                    prop_assert_eq!(p.as_ref().map(|p| p.len() as u32 - 1), want.get(&m).copied());
                    if let Some(p) = p {
                        for w in p.windows(2) {
                            let (a, b) = (&w[0], &w[1]);
                            let fwd = g.out_edges(a, Some("p1")).unwrap().iter().any(|e| &e.target == b);
                            let back = g.in_edges(a, Some("p1")).unwrap().iter().any(|e| &e.source == b);
                            prop_assert!(match dir {
                                Direction::Out => fwd,
                                Direction::In => back,
                                Direction::Both => fwd || back,
                            }, "hop {}->{} is not a p1 edge", a, b);
                        }
                    }
                }
            }
            let want: Vec<EntityId> = edges
                .iter()
                .filter(|e| e.0 == n && e.1 == 1)
                .map(|e| name(e.2))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            prop_assert_eq!(g.neighbours(&name(n), Direction::Out, Some("p1")).unwrap(), want);
        }
        check_digests(&g);
    }
}

fn limited(limits: Limits) -> (tempfile::TempDir, Database, GraphStore) {
    let (dir, db) = temp_db();
    let g = GraphStore::open(&db, &limits).unwrap();
    (dir, db, g)
}

fn text_props(len: usize) -> Properties {
    Properties::from([("k".to_owned(), Value::Text("x".repeat(len)))])
}

#[test]
fn property_maps_are_limited_by_their_encoded_size() {
    let limit = crate::codec::to_cbor(&text_props(40)).unwrap().len();
    let (_d, _db, mut g) = limited(Limits {
        max_properties_bytes: limit,
        ..Limits::default()
    });
    let a = id("a");
    g.put_node(&a, text_props(40)).unwrap();
    assert!(matches!(
        g.put_node(&a, text_props(41)),
        Err(StoreError::LimitExceeded {
            what: "encoded property map",
            ..
        })
    ));
    assert_eq!(g.get_node(&a).unwrap(), Some(text_props(40)));
    let mut e = edge("a", "p", "b");
    e.properties = text_props(40);
    g.add_edge(e.clone()).unwrap();
    e.properties = text_props(41);
    e.target = id("c");
    assert!(matches!(
        g.add_edge(e),
        Err(StoreError::LimitExceeded { .. })
    ));
    assert!(matches!(
        g.prepare_item(&id("z"), text_props(41), Vec::new()),
        Err(StoreError::LimitExceeded { .. })
    ));
    assert_eq!(g.counts(), GraphCounts { nodes: 1, edges: 1 });
}

#[test]
fn out_edges_per_entity_are_limited() {
    let (_d, _db, mut g) = limited(Limits {
        max_out_edges: 3,
        ..Limits::default()
    });
    g.put_node(&id("a"), Properties::new()).unwrap();
    g.put_node(&id("b"), Properties::new()).unwrap();
    for t in ["t1", "t2", "t3"] {
        g.add_edge(edge("a", "p", t)).unwrap();
    }
    assert!(matches!(
        g.add_edge(edge("a", "p", "t4")),
        Err(StoreError::LimitExceeded {
            limit: 3,
            actual: 4,
            ..
        })
    ));
    // Replacing an existing edge does not add one.
    g.add_edge(edge("a", "p", "t1")).unwrap();
    // A batch over the limit writes nothing, not even its valid part.
    assert!(matches!(
        g.add_edges(vec![
            edge("b", "p", "t1"),
            edge("b", "p", "t2"),
            edge("b", "p", "t3"),
            edge("b", "p", "t4"),
        ]),
        Err(StoreError::LimitExceeded { .. })
    ));
    assert_eq!(g.counts(), GraphCounts { nodes: 2, edges: 3 });
    let four: Vec<OutEdge> = (1..=4)
        .map(|i| OutEdge {
            predicate: "p".into(),
            target: id(&format!("t{i}")),
            properties: Properties::new(),
        })
        .collect();
    assert!(matches!(
        g.prepare_item(&id("c"), Properties::new(), four),
        Err(StoreError::LimitExceeded { .. })
    ));
}

#[test]
fn searches_are_limited_by_the_entities_they_visit() {
    let (_d, _db, mut g) = limited(Limits {
        max_visited: 4,
        ..Limits::default()
    });
    // a -> b, c, d (the start plus 3 = 4 visited: allowed); e -> f, g, h, i (5: refused).
    for n in ["a", "e"] {
        g.put_node(&id(n), Properties::new()).unwrap();
    }
    g.add_edges(vec![
        edge("a", "p", "b"),
        edge("a", "p", "c"),
        edge("a", "p", "d"),
    ])
    .unwrap();
    g.add_edges(["f", "g", "h", "i"].map(|t| edge("e", "p", t)).to_vec())
        .unwrap();
    assert_eq!(
        g.traverse(&id("a"), 2, Direction::Out, None).unwrap().len(),
        4
    );
    assert_eq!(
        g.shortest_path(&id("a"), &id("zz"), 2, Direction::Out, None)
            .unwrap(),
        None
    );
    assert!(matches!(
        g.traverse(&id("e"), 2, Direction::Out, None),
        Err(StoreError::LimitExceeded {
            what: "entities visited by a traversal",
            limit: 4,
            actual: 5
        })
    ));
    assert!(matches!(
        g.shortest_path(&id("e"), &id("zz"), 2, Direction::Out, None),
        Err(StoreError::LimitExceeded { limit: 4, .. })
    ));
}
