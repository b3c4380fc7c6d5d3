//! Whole-system tests of the proxy's per-modality query routes on real node processes, through
//! `verisim-client`: k-NN over every node, graph neighbours, tensor slice and reduce, semantic
//! validation and by-type lookups, an unknown entity and an unsigned query.

mod support;

use std::collections::BTreeSet;

use support::entities::{self, via};
use support::{Cluster, Options};
use verisim_client::http::Client;
use verisim_client::wire::{
    EntityId, ErrorCode, GraphNeighboursRequest, GraphPathRequest, GraphTraverseRequest, ReduceOp,
    RegisterRequest, SemanticByTypeRequest, SemanticValidateRequest, TensorData, TensorPayload,
    TensorReduceRequest, TensorSliceRequest, Traversed, VectorSearchRequest, Violation,
};

/// A 3-node cluster loading the entity tests' schema, with client `alice` registered and a window
/// open.
fn entity_cluster() -> (Cluster, Client) {
    let (c, client, _) = entities::entity_cluster_with(Options::default(), 31);
    (c, client)
}

/// A hexad with a 128-d vector, edges to `targets`, a 3×4 tensor and three annotated properties.
fn hexad(id: &str, seed: u64, targets: &[String]) -> RegisterRequest {
    entities::hexad_with(id, seed, targets, |noise| {
        let data = (0..12).map(|_| f64::from(noise.next_f32())).collect();
        TensorPayload::from_typed(vec![3, 4], &TensorData::F64(data))
    })
}

fn f64s(t: &TensorPayload) -> Vec<f64> {
    match t.typed().expect("typed tensor") {
        TensorData::F64(v) => v,
        other => panic!("expected f64 data, got {other:?}"),
    }
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
}

#[test]
fn every_query_route_answers_from_the_registered_entities() {
    let (c, client) = entity_cluster();
    let ids: Vec<String> = (0..6).map(|i| format!("q-{i}")).collect();
    let mut registered = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        // Each entity links to the next two (wrapping), so neighbours are registered entities.
        let targets = vec![
            ids[(i + 1) % ids.len()].clone(),
            ids[(i + 2) % ids.len()].clone(),
        ];
        let req = hexad(id, 100 + i as u64, &targets);
        // Register through different nodes.
        via(&c, 1 + (i as u64 % 3), &client)
            .register(&req)
            .unwrap_or_else(|e| panic!("register {id}: {e}"));
        registered.push((req, targets));
    }

    for node in 1..=3u64 {
        let q = via(&c, node, &client);
        for (req, targets) in &registered {
            let id = req.id.as_str();
            // k-NN: the registered vector is its own nearest neighbour, k distinct hits.
            let found = q
                .search_vector(&VectorSearchRequest {
                    collection: "default".into(),
                    vector: req.vector.values.clone(),
                    k: 4,
                    exact: true,
                    ef: None,
                })
                .unwrap_or_else(|e| panic!("search {id} via n{node}: {e}"));
            assert_eq!(found.hits.len(), 4, "{found:?}");
            assert_eq!(found.hits[0].id, req.id, "{found:?}");
            assert!(found.hits[0].distance.abs() < 1e-4, "{found:?}");
            let distinct: BTreeSet<_> = found.hits.iter().map(|h| h.id.clone()).collect();
            assert_eq!(distinct.len(), 4, "duplicate hits: {found:?}");
            assert!(
                found
                    .hits
                    .windows(2)
                    .all(|w| w[0].distance <= w[1].distance),
                "{found:?}"
            );

            // Graph neighbours: the registered edges' targets, sorted.
            let n = q
                .graph_neighbours(&GraphNeighboursRequest {
                    id: req.id.clone(),
                    direction: Default::default(),
                    predicate: None,
                })
                .unwrap_or_else(|e| panic!("neighbours of {id} via n{node}: {e}"));
            let expected: Vec<EntityId> = targets
                .iter()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .map(|t| EntityId::new(t.clone()).unwrap())
                .collect();
            assert_eq!(n.ids, expected);

            // Tensor slice [1,3) × [1,3) and the sum along axis 1, computed here.
            let data = f64s(&req.tensor);
            let slice = q
                .tensor_slice(&TensorSliceRequest {
                    id: req.id.clone(),
                    ranges: vec![[1, 3], [1, 3]],
                })
                .unwrap_or_else(|e| panic!("slice {id}: {e}"));
            assert_eq!(slice.shape, vec![2, 2]);
            let want: Vec<f64> = [(1, 1), (1, 2), (2, 1), (2, 2)]
                .iter()
                .map(|(r, col)| data[r * 4 + col])
                .collect();
            assert!(close(&f64s(&slice), &want), "{slice:?} != {want:?}");
            let sum = q
                .tensor_reduce(&TensorReduceRequest {
                    id: req.id.clone(),
                    op: ReduceOp::Sum,
                    axis: 1,
                })
                .unwrap_or_else(|e| panic!("reduce {id}: {e}"));
            assert_eq!(sum.shape, vec![3]);
            let want: Vec<f64> = (0..3)
                .map(|r| data[r * 4..r * 4 + 4].iter().sum())
                .collect();
            assert!(close(&f64s(&sum), &want), "{sum:?} != {want:?}");
        }

        // Traversal and path over the ring q-i → q-(i+1), q-(i+2) (3 nodes: every node holds all).
        let t = q
            .graph_traverse(&GraphTraverseRequest {
                start: EntityId::new("q-0").unwrap(),
                max_hops: 1,
                direction: Default::default(),
                predicate: None,
            })
            .expect("traverse");
        let depth = |i: &str, d: u32| Traversed {
            id: EntityId::new(i).unwrap(),
            depth: d,
        };
        assert_eq!(t.visited[0], depth("q-0", 0));
        let mut rest = t.visited[1..].to_vec();
        rest.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(rest, vec![depth("q-1", 1), depth("q-2", 1)]);
        let p = q
            .graph_path(&GraphPathRequest {
                from: EntityId::new("q-0").unwrap(),
                to: EntityId::new("q-3").unwrap(),
                max_hops: 4,
                direction: Default::default(),
                predicate: None,
            })
            .expect("path")
            .path
            .expect("a path q-0 → q-3");
        assert_eq!(p.len(), 3, "{p:?}");
        let index = |e: &EntityId| ids.iter().position(|i| i == e.as_str()).unwrap();
        assert!(
            p.windows(2).all(|w| {
                let step = (index(&w[1]) + ids.len() - index(&w[0])) % ids.len();
                step == 1 || step == 2
            }),
            "{p:?}"
        );

        // By type: every registered entity.
        let by_type = q
            .semantic_by_type(&SemanticByTypeRequest {
                type_iri: "ex:Thing".into(),
                include_subtypes: true,
            })
            .expect("by type");
        let want: Vec<EntityId> = ids
            .iter()
            .map(|i| EntityId::new(i.clone()).unwrap())
            .collect();
        assert_eq!(by_type.ids, want);
    }

    // Validation is a dry run: a good annotation is valid, one without the required name is not.
    let good = client
        .semantic_validate(&SemanticValidateRequest {
            annotation: registered[0].0.semantic.clone(),
        })
        .expect("validate");
    assert!(good.valid && good.violations.is_empty(), "{good:?}");
    let mut bad = registered[0].0.semantic.clone();
    bad.properties.remove("ex:name");
    let bad = client
        .semantic_validate(&SemanticValidateRequest { annotation: bad })
        .expect("validate");
    assert!(!bad.valid);
    assert_eq!(
        bad.violations,
        vec![Violation::MissingRequired {
            type_iri: "ex:Thing".into(),
            property: "ex:name".into()
        }]
    );
}

#[test]
fn unknown_entities_are_404_and_unsigned_queries_401() {
    let (c, client) = entity_cluster();
    let ghost = EntityId::new("no-such-entity").unwrap();
    let e = client
        .graph_neighbours(&GraphNeighboursRequest {
            id: ghost.clone(),
            direction: Default::default(),
            predicate: None,
        })
        .expect_err("neighbours of an unknown entity");
    assert_eq!(e.code(), Some(ErrorCode::NotFound), "{e}");
    let e = client
        .tensor_slice(&TensorSliceRequest {
            id: ghost,
            ranges: vec![[0, 1]],
        })
        .expect_err("slice of an unknown entity");
    assert_eq!(e.code(), Some(ErrorCode::NotFound), "{e}");

    for path in [
        "/v1/search/vector",
        "/v1/graph/neighbours",
        "/v1/tensor/slice",
        "/v1/semantic/by-type",
    ] {
        let r = c
            .node(2)
            .post(path, Some(serde_json::json!({"id": "q-0"})))
            .expect("request");
        assert_eq!(r.status, 401, "{path}: {r:?}");
    }
}
