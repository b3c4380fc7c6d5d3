//! The prepare/import invariant, for every engine: `import_item(&prepare(x)?)? == prepare(x)?.hash`,
//! afterwards `export_item(id) == Some(prepare(x)?)`, and preparing changes no digest.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::*;
use crate::graph::OutEdge;
use crate::limits::Limits;
use crate::semantic::{PropertyDef, TypeDef};
use crate::tensor::{DType, Tensor, TensorData};
use crate::testutil::{check_digests, id, temp_db};
use crate::value::{Datatype, Value};
use crate::vector::{CollectionDef, Metric};
use crate::{
    BUCKETS, ExportedItem, GraphStore, Modality, SemanticStore, StoreError, TensorStore,
    VectorStore,
};

fn digests(m: &dyn Modality) -> Vec<(u16, crate::BucketDigest)> {
    m.bucket_digests(0..BUCKETS).unwrap()
}

/// Every (id, hash) the engine lists, over all buckets.
fn items(m: &dyn Modality) -> Vec<(crate::EntityId, crate::ContentHash)> {
    (0..BUCKETS)
        .flat_map(|b| m.bucket_items(b).unwrap())
        .collect()
}

/// Prepares, checks that nothing changed, imports, and checks the round trip.
fn prepare_then_import<E: Modality>(
    engine: &mut E,
    prepare: impl Fn(&E) -> crate::Result<ExportedItem>,
) -> ExportedItem {
    let before = digests(engine);
    let items_before = items(engine);
    let prepared = prepare(engine).unwrap();
    assert_eq!(digests(engine), before, "preparing changed a digest");
    assert_eq!(
        items(engine),
        items_before,
        "preparing changed an item hash"
    );
    // The point read agrees with the bucket listing: the entity's hash is still the old one (or
    // none), whatever the prepared item's hash is.
    let old = items_before
        .iter()
        .find(|(i, _)| *i == prepared.id)
        .map(|(_, h)| *h);
    assert_eq!(engine.item_hash(&prepared.id).unwrap(), old);
    let again = prepare(engine).unwrap();
    assert_eq!(again, prepared, "preparing is deterministic");
    assert_eq!(engine.import_item(&prepared).unwrap(), prepared.hash);
    assert_eq!(
        engine.export_item(&prepared.id).unwrap(),
        Some(prepared.clone())
    );
    assert_eq!(engine.item_hash(&prepared.id).unwrap(), Some(prepared.hash));
    check_digests(engine);
    prepared
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::Int),
        (-1e9f64..1e9).prop_map(Value::Float),
        "[a-z]{0,8}".prop_map(Value::Text),
        any::<bool>().prop_map(Value::Bool),
    ]
}

fn props() -> impl Strategy<Value = BTreeMap<String, Value>> {
    prop::collection::btree_map("[a-z]{1,6}", value(), 0..4)
}

fn edges() -> impl Strategy<Value = Vec<OutEdge>> {
    prop::collection::btree_map(("[a-c]{1,2}", "[a-z]{1,3}"), props(), 0..6).prop_map(|m| {
        m.into_iter()
            .map(|((predicate, target), properties)| OutEdge {
                predicate,
                target: id(&target),
                properties,
            })
            .rev() // any order is accepted
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn graph_prepare_matches_import(p in props(), e in edges(), p2 in props(), e2 in edges()) {
        let (_d, db) = temp_db();
        let mut g = GraphStore::open(&db, &Limits::default()).unwrap();
        let x = id("x");
        prepare_then_import(&mut g, |g| g.prepare_item(&x, p.clone(), e.clone()));
        // A second registration replaces the first.
        prepare_then_import(&mut g, |g| g.prepare_item(&x, p2.clone(), e2.clone()));
        prop_assert_eq!(g.counts().edges, e2.len() as u64);
    }

    #[test]
    fn vector_prepare_matches_import(
        a in prop::collection::vec(-100f32..100.0, 4),
        b in prop::option::of(prop::collection::vec(0.5f32..100.0, 3)),
        c in prop::collection::vec(-100f32..100.0, 4),
    ) {
        let (_d, db) = temp_db();
        let mut v = VectorStore::open(&db, &Limits::default()).unwrap();
        v.create_collection("a", CollectionDef { dim: 4, metric: Metric::L2 }).unwrap();
        v.create_collection("b", CollectionDef { dim: 3, metric: Metric::Cosine }).unwrap();
        let x = id("x");
        let mut m = BTreeMap::from([("a".to_owned(), a)]);
        if let Some(b) = b {
            m.insert("b".into(), b);
        }
        prepare_then_import(&mut v, |v| v.prepare_item(&x, m.clone()));
        // Replacing drops the collections the new item does not name.
        let m2 = BTreeMap::from([("a".to_owned(), c.clone())]);
        prepare_then_import(&mut v, |v| v.prepare_item(&x, m2.clone()));
        prop_assert_eq!(v.get("b", &x).unwrap(), None);
        prop_assert_eq!(v.get("a", &x).unwrap(), Some(c));
    }

    #[test]
    fn tensor_prepare_matches_import(
        shape in prop::collection::vec(1u64..5, 0..4),
        seed in any::<u64>(),
        kind in 0..3u8,
    ) {
        let (_d, db) = temp_db();
        let mut t = TensorStore::open(&db, &Limits::default()).unwrap();
        let n = shape.iter().product::<u64>() as usize;
        #[allow(clippy::cast_precision_loss)]
        let data = match kind {
            0 => TensorData::F32((0..n).map(|i| (seed.wrapping_add(i as u64) % 97) as f32 - 40.0).collect()),
            1 => TensorData::I64((0..n).map(|i| seed.wrapping_mul(i as u64 + 1) as i64).collect()),
            _ => TensorData::Bool((0..n).map(|i| (seed >> (i % 64)) & 1 == 1).collect()),
        };
        let tensor = Tensor { shape, data };
        let x = id("x");
        let p = prepare_then_import(&mut t, |t| t.prepare_item(&x, &tensor));
        prop_assert_eq!(t.get(&x).unwrap(), Some(tensor.clone()));
        // The wire form prepares to the same item.
        prop_assert_eq!(t.prepare_encoded(&x, TensorItem::from(&tensor)).unwrap(), p);
    }

    #[test]
    fn semantic_prepare_matches_import(age in 0i64..150, name in "[A-Z][a-z]{0,8}") {
        let (_d, db) = temp_db();
        let mut s = SemanticStore::open(&db, &Limits::default()).unwrap();
        s.define_type(person()).unwrap();
        let a = Annotation {
            types: BTreeSet::from(["ex:Person".to_owned()]),
            properties: BTreeMap::from([
                ("age".to_owned(), Value::Int(age)),
                ("name".to_owned(), Value::Text(name)),
            ]),
            proofs: Vec::new(),
        };
        let x = id("x");
        prepare_then_import(&mut s, |s| s.prepare_item(&x, a.clone()));
        prop_assert_eq!(s.get(&x).unwrap(), Some(a));
    }
}

fn person() -> TypeDef {
    let p = |datatype, min, max| PropertyDef {
        datatype,
        pattern: None,
        min,
        max,
    };
    TypeDef {
        iri: "ex:Person".into(),
        label: "Person".into(),
        supertypes: BTreeSet::new(),
        required: BTreeSet::from(["name".to_owned()]),
        properties: BTreeMap::from([
            ("name".to_owned(), p(Datatype::Text, None, None)),
            ("age".to_owned(), p(Datatype::Int, Some(0.0), Some(150.0))),
        ]),
    }
}

#[test]
fn prepare_refuses_bad_input_and_writes_nothing() {
    let (_d, db) = temp_db();
    let lim = Limits::default();
    let g = GraphStore::open(&db, &lim).unwrap();
    let mut v = VectorStore::open(&db, &lim).unwrap();
    let t = TensorStore::open(&db, &lim).unwrap();
    let mut s = SemanticStore::open(&db, &lim).unwrap();
    v.create_collection(
        "c",
        CollectionDef {
            dim: 3,
            metric: Metric::Cosine,
        },
    )
    .unwrap();
    s.define_type(person()).unwrap();
    let x = id("x");
    let edge = |p: &str, t: &str| OutEdge {
        predicate: p.into(),
        target: id(t),
        properties: BTreeMap::new(),
    };
    assert!(matches!(
        g.prepare_item(&x, BTreeMap::new(), vec![edge("k", "y"), edge("k", "y")]),
        Err(StoreError::InvalidInput(_))
    ));
    assert!(matches!(
        g.prepare_item(&x, BTreeMap::new(), vec![edge("bad predicate", "y")]),
        Err(StoreError::InvalidName { .. })
    ));
    let vecs = |name: &str, v: Vec<f32>| BTreeMap::from([(name.to_owned(), v)]);
    for (bad, what) in [
        (vecs("c", vec![1.0, 2.0]), "wrong dimension"),
        (vecs("c", vec![1.0, f32::NAN, 2.0]), "NaN"),
        (vecs("c", vec![f32::INFINITY, 0.0, 2.0]), "infinity"),
        (vecs("c", vec![0.0; 3]), "zero cosine vector"),
        (BTreeMap::new(), "no vectors"),
    ] {
        assert!(
            matches!(v.prepare_item(&x, bad), Err(StoreError::InvalidInput(_))),
            "{what}"
        );
    }
    assert!(matches!(
        v.prepare_item(&x, vecs("nope", vec![1.0; 3])),
        Err(StoreError::NotFound { .. })
    ));
    let mismatch = Tensor {
        shape: vec![2, 2],
        data: TensorData::F32(vec![1.0; 3]),
    };
    assert!(matches!(
        t.prepare_item(&x, &mismatch),
        Err(StoreError::InvalidInput(_))
    ));
    let bad_bool = TensorItem {
        dtype: DType::Bool,
        shape: vec![1],
        data: crate::codec::Bytes(vec![7]),
    };
    assert!(t.prepare_encoded(&x, bad_bool).is_err());
    let huge = Tensor {
        shape: vec![1 << 20, 1 << 20],
        data: TensorData::U8(Vec::new()),
    };
    assert!(matches!(
        t.prepare_item(&x, &huge),
        Err(StoreError::LimitExceeded { .. })
    ));
    let no_name = Annotation {
        types: BTreeSet::from(["ex:Person".to_owned()]),
        ..Annotation::default()
    };
    assert!(matches!(
        s.prepare_item(&x, no_name),
        Err(StoreError::Validation { .. })
    ));
    for m in [&g as &dyn Modality, &v, &t, &s] {
        assert!(
            m.bucket_digests(0..BUCKETS)
                .unwrap()
                .iter()
                .all(|(_, d)| d.is_empty())
        );
    }
}

#[test]
fn a_hexad_splits_into_its_present_items_in_modality_order() {
    let h = HexadInput {
        id: id("h"),
        graph: None,
        vectors: BTreeMap::from([("default".to_owned(), vec![1.0])]),
        tensor: None,
        semantic: Some(Annotation::default()),
    };
    assert_eq!(
        h.modalities(),
        vec![ModalityKind::Vector, ModalityKind::Semantic]
    );
    let items = h.into_items();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i.id() == &id("h")));
    assert_eq!(items[0].modality(), ModalityKind::Vector);
}
