use std::collections::{BTreeMap, BTreeSet, VecDeque};

use proptest::prelude::*;

use super::*;
use crate::BUCKETS;
use crate::db::Limits;
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
