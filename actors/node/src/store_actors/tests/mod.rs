//! In-process tests of the store actors on real fjall in temporary directories. Actor names are
//! process-global, so each test must run in its own process (nextest does; `cargo test` would run
//! them as threads of one process and the registered names would collide).

mod actors;
mod restart;
mod settings;
mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use verisim_stores::semantic::{Annotation, PropertyDef, TypeDef};
use verisim_stores::tensor::{DType, TensorItem};
use verisim_stores::vector::{CollectionDef, Metric};
use verisim_stores::{Datatype, EntityId, GraphInput, ItemInput, Limits, Value};
use verisim_supervision::SupervisorHandle;

use super::{StoreDirectory, StoreSetup, StoresSettings, open_stores_db, stores_subtree};

pub(super) const T: Duration = Duration::from_secs(10);

pub(super) fn id(s: &str) -> EntityId {
    EntityId::new(s).unwrap()
}

/// A text property with no constraints.
pub(crate) fn text_property() -> PropertyDef {
    PropertyDef {
        datatype: Datatype::Text,
        pattern: None,
        min: None,
        max: None,
    }
}

pub(super) fn person() -> TypeDef {
    TypeDef {
        iri: "ex:Person".into(),
        label: "Person".into(),
        supertypes: BTreeSet::new(),
        required: BTreeSet::from(["name".to_owned()]),
        properties: BTreeMap::from([("name".to_owned(), text_property())]),
    }
}

pub(super) fn setup() -> StoreSetup {
    StoreSetup {
        limits: Limits::default(),
        collections: vec![(
            "default".into(),
            CollectionDef {
                dim: 4,
                metric: Metric::L2,
            },
        )],
        types: vec![person()],
    }
}

/// A running `stores` subtree on a fresh directory.
pub(super) struct Node {
    pub tree: SupervisorHandle,
    pub dir: StoreDirectory,
    _tmp: tempfile::TempDir,
}

impl Node {
    pub async fn start() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let db = open_stores_db(tmp.path(), &StoresSettings::default()).unwrap();
        let sync = super::GroupSync::start(db.clone()).unwrap();
        // With a node identity, so every call of these tests is sealed and checked.
        let identity = verisim_cluster::Authority::generate().issue(1);
        let keyring = Arc::new(verisim_cluster::Keyring::with_identity(identity).unwrap());
        let (tree, _join) =
            SupervisorHandle::start(stores_subtree(db, Arc::new(setup()), sync, keyring.clone()))
                .await
                .unwrap();
        Self {
            tree,
            dir: StoreDirectory::local_only("n1", keyring),
            _tmp: tmp,
        }
    }

    pub async fn stop(self) {
        self.tree.stop().await;
    }
}

/// Polls `f` until it returns `Some`, failing after `deadline`.
pub(super) async fn eventually<T>(
    what: &str,
    deadline: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One input per modality for entity `e` (vector `[i, 1, 0, 0]`).
pub(super) fn inputs(e: &str, i: f32) -> Vec<ItemInput> {
    vec![
        ItemInput::Graph {
            id: id(e),
            graph: GraphInput {
                properties: BTreeMap::from([("n".to_owned(), Value::Float(f64::from(i)))]),
                edges: vec![verisim_stores::graph::OutEdge {
                    predicate: "next".into(),
                    target: id(&format!("{e}x")),
                    properties: BTreeMap::new(),
                }],
            },
        },
        ItemInput::Vector {
            id: id(e),
            vectors: BTreeMap::from([("default".to_owned(), vec![i, 1.0, 0.0, 0.0])]),
        },
        ItemInput::Tensor {
            id: id(e),
            tensor: TensorItem {
                dtype: DType::F32,
                shape: vec![2, 2],
                data: verisim_stores::codec::Bytes(
                    [1.0f32, 2.0, 3.0, i]
                        .iter()
                        .flat_map(|x| x.to_le_bytes())
                        .collect(),
                ),
            },
        },
        ItemInput::Semantic {
            id: id(e),
            annotation: Annotation {
                types: BTreeSet::from(["ex:Person".to_owned()]),
                properties: BTreeMap::from([("name".to_owned(), Value::Text(e.to_owned()))]),
                proofs: Vec::new(),
            },
        },
    ]
}
