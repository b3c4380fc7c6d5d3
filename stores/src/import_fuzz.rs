//! No-panic fuzzing of `import_item` for all four engines.
//!
//! An export whose hash does not match is refused before its payload is even decoded, so arbitrary
//! bytes alone only ever test the hash check. Here every payload gets a **valid hash** for the
//! engine it is sent to, so each import runs the whole path: strict CBOR decoding, the canonical-form
//! check, and the engine's own validation, then (if accepted) the write. Payloads come from three
//! generators, each a third of the cases:
//! * random CBOR trees whose map keys and strings are drawn mostly from the items' own field and
//!   variant names (so some of them decode into an item and reach validation);
//! * items built with the right structure but arbitrary content (NaN floats, bad names, unsorted or
//!   duplicate edges, wrong byte lengths, shapes that do not match the data, unknown types, proofs
//!   that do not verify), encoded canonically;
//! * valid exports with one to four random byte mutations (flips, truncation, insertion).
//!
//! Every payload is imported into all four engines (with that engine's hash). Checked: no panic;
//! an accepted import returns the export's hash and exports back exactly; a refused one leaves the
//! entity's item hash unchanged and is a client error (never a storage or corruption error); at the
//! end every bucket digest and item hash is consistent. Every valid seed is also imported once as
//! it is, and the test requires both accepted and refused imports for every engine, so it cannot
//! silently degrade into testing only the decoder. Seed printed; `FUZZ_SEED` replays, `FUZZ_CASES` sets the count.

use std::collections::{BTreeMap, BTreeSet};

use ciborium::value::Value as Cbor;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::codec::{Bytes, to_cbor};
use crate::durability::Durability;
use crate::graph::{GraphItem, OutEdge};
use crate::limits::Limits;
use crate::semantic::{Annotation, ProofBlob, ProofKind, PropertyDef, TypeDef};
use crate::tensor::{DType, TensorItem};
use crate::testutil::{check_digests, id, temp_db};
use crate::value::{Datatype, Value};
use crate::vector::{CollectionDef, Metric, VectorItem};
use crate::{
    ContentHash, EntityId, ExportedItem, GraphStore, Modality, ModalityKind, SemanticStore,
    TensorStore, VectorStore,
};

const KINDS: [ModalityKind; 4] = [
    ModalityKind::Graph,
    ModalityKind::Vector,
    ModalityKind::Tensor,
    ModalityKind::Semantic,
];
const PERSON: &str = "https://schema.org/Person";
const THING: &str = "https://schema.org/Thing";

/// Field names, variant names and names known to the engines' setup: random maps built from these
/// sometimes decode into an item.
const VOCAB: &[&str] = &[
    "properties",
    "edges",
    "predicate",
    "target",
    "vectors",
    "dtype",
    "shape",
    "data",
    "types",
    "proofs",
    "claim",
    "kind",
    "nonce",
    "commitment",
    "Bool",
    "Int",
    "Float",
    "Text",
    "Iri",
    "Bytes",
    "F32",
    "F64",
    "I32",
    "I64",
    "U8",
    "HashCommitment",
    "MerkleInclusion",
    "c",
    "d",
    "name",
    "age",
    "knows",
    "e1",
    PERSON,
    THING,
    "",
    "bad name!",
];

fn pick(rng: &mut ChaCha8Rng) -> String {
    if rng.random_bool(0.85) {
        (*VOCAB.choose(rng).unwrap_or(&"x")).to_owned()
    } else {
        let n = rng.random_range(0..6);
        (0..n).map(|_| rng.random_range(' '..='~')).collect()
    }
}

fn random_bytes(rng: &mut ChaCha8Rng) -> Vec<u8> {
    // Lengths that fit the engines' setup (3- and 2-d f32 vectors, small tensors) half the time.
    let len = if rng.random_bool(0.5) {
        *[0usize, 1, 4, 8, 12, 16, 24].choose(rng).unwrap_or(&0)
    } else {
        rng.random_range(0..40)
    };
    (0..len).map(|_| rng.random()).collect()
}

fn random_f64(rng: &mut ChaCha8Rng) -> f64 {
    *[
        0.0,
        -0.0,
        1.5,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        1e300,
        f64::from_bits(rng.random()),
    ]
    .choose(rng)
    .unwrap_or(&0.0)
}

fn random_cbor(rng: &mut ChaCha8Rng, depth: u32) -> Cbor {
    match rng.random_range(0..if depth == 0 { 7 } else { 10 }) {
        0 => Cbor::Integer(rng.random_range(-3i64..40).into()),
        1 => Cbor::Integer(rng.random::<u64>().into()),
        2 => Cbor::Float(random_f64(rng)),
        3 | 4 => Cbor::Text(pick(rng)),
        5 => Cbor::Bytes(random_bytes(rng)),
        6 => {
            if rng.random_bool(0.5) {
                Cbor::Bool(rng.random())
            } else {
                Cbor::Null
            }
        }
        7 => Cbor::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_cbor(rng, depth - 1))
                .collect(),
        ),
        _ => Cbor::Map(
            (0..rng.random_range(0..4))
                .map(|_| (Cbor::Text(pick(rng)), random_cbor(rng, depth - 1)))
                .collect(),
        ),
    }
}

fn random_value(rng: &mut ChaCha8Rng) -> Value {
    match rng.random_range(0..6) {
        0 => Value::Bool(rng.random()),
        1 => Value::Int(rng.random_range(-5..200)),
        2 => Value::Float(random_f64(rng)),
        3 => Value::Text(pick(rng)),
        4 => Value::Iri(pick(rng)),
        _ => Value::Bytes(Bytes(random_bytes(rng))),
    }
}

fn random_props(rng: &mut ChaCha8Rng) -> BTreeMap<String, Value> {
    (0..rng.random_range(0..3))
        .map(|_| (pick(rng), random_value(rng)))
        .collect()
}

/// An item of `kind` with the right structure and arbitrary content, canonically encoded.
fn structured(rng: &mut ChaCha8Rng, kind: ModalityKind) -> Vec<u8> {
    let bytes = match kind {
        ModalityKind::Graph => to_cbor(&GraphItem {
            properties: random_props(rng),
            edges: (0..rng.random_range(0..4))
                .map(|_| OutEdge {
                    predicate: pick(rng),
                    target: id(["a", "b", "e1"].choose(rng).unwrap_or(&"a")),
                    properties: random_props(rng),
                })
                .collect(),
        }),
        ModalityKind::Vector => to_cbor(&VectorItem {
            vectors: (0..rng.random_range(0..3))
                .map(|_| {
                    let name = if rng.random_bool(0.8) {
                        ["c", "d"].choose(rng).unwrap_or(&"c").to_string()
                    } else {
                        pick(rng)
                    };
                    // Small floats of the right length most of the time: random bit patterns are
                    // nearly always refused (huge norms, NaN), which would leave the write path
                    // of an accepted import untested.
                    let bytes = if rng.random_bool(0.6) {
                        let dim = if name == "d" { 2 } else { 3 };
                        (0..dim)
                            .flat_map(|_| rng.random_range(-2.0f32..2.0).to_le_bytes())
                            .collect()
                    } else {
                        random_bytes(rng)
                    };
                    (name, Bytes(bytes))
                })
                .collect(),
        }),
        ModalityKind::Tensor => {
            let dtype = *[
                DType::F32,
                DType::F64,
                DType::I32,
                DType::I64,
                DType::U8,
                DType::Bool,
            ]
            .choose(rng)
            .unwrap_or(&DType::U8);
            let shape: Vec<u64> = (0..rng.random_range(0..4))
                .map(|_| {
                    if rng.random_bool(0.05) {
                        rng.random()
                    } else {
                        rng.random_range(0..4)
                    }
                })
                .collect();
            let n = shape.iter().try_fold(1u64, |a, s| a.checked_mul(*s));
            let data = match n {
                Some(n) if n < 64 && rng.random_bool(0.6) => {
                    // The right length; bool bytes 0/1 most of the time.
                    #[allow(clippy::cast_possible_truncation)]
                    let len = n as usize * dtype.size();
                    (0..len)
                        .map(|_| {
                            if dtype == DType::Bool && rng.random_bool(0.9) {
                                rng.random_range(0..2)
                            } else {
                                rng.random()
                            }
                        })
                        .collect()
                }
                _ => random_bytes(rng),
            };
            to_cbor(&TensorItem {
                dtype,
                shape,
                data: Bytes(data),
            })
        }
        // A Person with a name and an age (sometimes out of range, sometimes without the name).
        ModalityKind::Semantic if rng.random_bool(0.5) => {
            let mut properties =
                BTreeMap::from([("age".to_owned(), Value::Int(rng.random_range(-5..200)))]);
            if rng.random_bool(0.8) {
                properties.insert("name".into(), Value::Text(pick(rng)));
            }
            to_cbor(&Annotation {
                types: BTreeSet::from([PERSON.to_owned()]),
                properties,
                proofs: Vec::new(),
            })
        }
        ModalityKind::Semantic => to_cbor(&Annotation {
            types: (0..rng.random_range(0..3)).map(|_| pick(rng)).collect(),
            properties: random_props(rng),
            proofs: (0..rng.random_range(0..2))
                .map(|_| ProofBlob {
                    claim: pick(rng),
                    kind: if rng.random() {
                        ProofKind::HashCommitment
                    } else {
                        ProofKind::MerkleInclusion
                    },
                    data: Bytes(random_bytes(rng)),
                })
                .collect(),
        }),
    };
    bytes.unwrap_or_default()
}

fn mutate(rng: &mut ChaCha8Rng, mut b: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.random_range(1..=4) {
        if b.is_empty() {
            b.push(rng.random());
            continue;
        }
        let i = rng.random_range(0..b.len());
        match rng.random_range(0..4) {
            0 => b[i] ^= 1 << rng.random_range(0..8),
            1 => b[i] = rng.random(),
            2 => b.truncate(i),
            _ => b.insert(i, rng.random()),
        }
    }
    b
}

struct Engines {
    graph: GraphStore,
    vector: VectorStore,
    tensor: TensorStore,
    semantic: SemanticStore,
}

impl Engines {
    fn get(&mut self, kind: ModalityKind) -> &mut dyn Modality {
        match kind {
            ModalityKind::Graph => &mut self.graph,
            ModalityKind::Vector => &mut self.vector,
            ModalityKind::Tensor => &mut self.tensor,
            ModalityKind::Semantic => &mut self.semantic,
        }
    }
}

/// Valid exports of every engine, the seeds of the mutation generator.
fn valid_exports(e: &Engines) -> Vec<Vec<u8>> {
    let x = id("x");
    let mut out = Vec::new();
    let props = BTreeMap::from([
        ("age".to_owned(), Value::Int(30)),
        ("name".to_owned(), Value::Text("Ada".into())),
    ]);
    let edges = vec![OutEdge {
        predicate: "knows".into(),
        target: id("e1"),
        properties: BTreeMap::from([("w".to_owned(), Value::Float(0.5))]),
    }];
    out.push(e.graph.prepare_item(&x, props.clone(), edges).unwrap());
    out.push(
        e.vector
            .prepare_item(
                &x,
                BTreeMap::from([
                    ("c".to_owned(), vec![1.0, 2.0, 3.0]),
                    ("d".to_owned(), vec![-1.0, 0.5]),
                ]),
            )
            .unwrap(),
    );
    for (dtype, shape, data) in [
        (DType::F32, vec![2, 2], vec![0u8; 16]),
        (DType::I64, vec![2], vec![1u8; 16]),
        (DType::Bool, vec![3], vec![0, 1, 1]),
    ] {
        out.push(
            e.tensor
                .prepare_encoded(
                    &x,
                    TensorItem {
                        dtype,
                        shape,
                        data: Bytes(data),
                    },
                )
                .unwrap(),
        );
    }
    let mut a = Annotation {
        types: BTreeSet::from([PERSON.to_owned()]),
        properties: props,
        proofs: Vec::new(),
    };
    a.proofs.push(ProofBlob::commit("claim", b"salt").unwrap());
    out.push(e.semantic.prepare_item(&x, a).unwrap());
    out.into_iter().map(|x| x.payload.0).collect()
}

#[test]
fn imports_of_arbitrary_payloads_with_valid_hashes_never_panic() {
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let cases: usize = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    println!("FUZZ_SEED={seed} FUZZ_CASES={cases}");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);

    let (_d, db) = temp_db();
    let limits = Limits {
        tensor_chunk_bytes: 16,
        ..Limits::default()
    };
    let mut e = Engines {
        graph: GraphStore::open(&db, &limits).unwrap(),
        vector: VectorStore::open(&db, &limits).unwrap(),
        tensor: TensorStore::open(&db, &limits).unwrap(),
        semantic: SemanticStore::open(&db, &limits).unwrap(),
    };
    for k in KINDS {
        // Fuzzing is about what is accepted, not fsync latency.
        e.get(k).set_durability(Durability::Deferred);
    }
    e.vector
        .create_collection(
            "c",
            CollectionDef {
                dim: 3,
                metric: Metric::Cosine,
            },
        )
        .unwrap();
    e.vector
        .create_collection(
            "d",
            CollectionDef {
                dim: 2,
                metric: Metric::L2,
            },
        )
        .unwrap();
    let text = PropertyDef {
        datatype: Datatype::Text,
        pattern: None,
        min: None,
        max: None,
    };
    let thing = TypeDef {
        iri: THING.into(),
        label: "Thing".into(),
        supertypes: BTreeSet::new(),
        required: BTreeSet::from(["name".to_owned()]),
        properties: BTreeMap::from([("name".to_owned(), text)]),
    };
    let person = TypeDef {
        iri: PERSON.into(),
        label: "Person".into(),
        supertypes: BTreeSet::from([THING.to_owned()]),
        required: BTreeSet::new(),
        properties: BTreeMap::from([(
            "age".to_owned(),
            PropertyDef {
                datatype: Datatype::Int,
                pattern: None,
                min: Some(0.0),
                max: Some(150.0),
            },
        )]),
    };
    e.semantic.define_types(vec![thing, person]).unwrap();
    let seeds = valid_exports(&e);

    let ids: Vec<EntityId> = (0..6).map(|i| id(&format!("f{i}"))).collect();
    let mut accepted = BTreeMap::<ModalityKind, usize>::new();
    let mut refused = BTreeMap::<ModalityKind, usize>::new();
    for case in 0..cases {
        let payload = match case % 3 {
            0 => {
                let mut b = Vec::new();
                ciborium::into_writer(&random_cbor(&mut rng, 3), &mut b).unwrap();
                b
            }
            1 => {
                let kind = *KINDS.choose(&mut rng).unwrap();
                structured(&mut rng, kind)
            }
            // Every seed once as it is: each engine accepts at least its own valid export.
            _ if case / 3 < seeds.len() => seeds[case / 3].clone(),
            _ => {
                let s = seeds.choose(&mut rng).unwrap().clone();
                // A few unmutated seeds keep the accepted path (replacing an item) busy.
                if rng.random_bool(0.1) {
                    s
                } else {
                    mutate(&mut rng, s)
                }
            }
        };
        let target = ids.choose(&mut rng).unwrap().clone();
        for kind in KINDS {
            let item = ExportedItem {
                modality: kind,
                id: target.clone(),
                hash: ContentHash::of(kind.hash_domain(), &payload),
                payload: Bytes(payload.clone()),
            };
            let engine = e.get(kind);
            let before = engine.item_hash(&target).unwrap();
            match engine.import_item(&item) {
                Ok(h) => {
                    assert_eq!(h, item.hash, "case {case} {kind:?} (FUZZ_SEED={seed})");
                    assert_eq!(
                        engine.export_item(&target).unwrap().as_ref(),
                        Some(&item),
                        "case {case} {kind:?}: an accepted import must export back exactly \
                         (FUZZ_SEED={seed})"
                    );
                    *accepted.entry(kind).or_default() += 1;
                }
                Err(err) => {
                    assert!(
                        err.is_client_error(),
                        "case {case} {kind:?}: {err} is not a client error (FUZZ_SEED={seed})"
                    );
                    assert_eq!(
                        engine.item_hash(&target).unwrap(),
                        before,
                        "case {case} {kind:?}: a refused import changed the item (FUZZ_SEED={seed})"
                    );
                    *refused.entry(kind).or_default() += 1;
                }
            }
        }
    }
    println!("accepted {accepted:?}\nrefused {refused:?}");
    for kind in KINDS {
        assert!(
            accepted.get(&kind).copied().unwrap_or(0) > 0
                && refused.get(&kind).copied().unwrap_or(0) > 0,
            "{kind:?}: accepted {accepted:?}, refused {refused:?} (FUZZ_SEED={seed})"
        );
        check_digests(e.get(kind));
    }
}
