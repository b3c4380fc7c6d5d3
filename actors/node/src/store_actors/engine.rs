//! What a store actor needs from its engine: open (and apply the configured collections or
//! schema), prepare, remove, per-modality queries. One implementation per `verisim-stores` engine.

use fjall::Database;
use verisim_stores::graph::Direction;
use verisim_stores::tensor::TensorItem;
use verisim_stores::vector::SearchMode;
use verisim_stores::{
    EntityId, ExportedItem, GraphStore, ItemInput, Modality, ModalityKind, SemanticStore,
    StoreError, TensorStore, VectorStore,
};

use super::messages::{Answer, Query, Removed};
use super::settings::StoreSetup;

/// An engine a store actor can own.
pub trait Engine: Modality + Send + Sync + Sized + 'static {
    /// Which modality.
    const KIND: ModalityKind;

    /// Opens the engine on the node's shared database and applies the configuration
    /// (idempotently: vector collections, semantic types).
    ///
    /// # Errors
    /// Storage errors; a configured collection that exists with another definition.
    fn open(db: &Database, setup: &StoreSetup) -> Result<Self, StoreError>;

    /// Validates an input and returns the item `import_item` would store.
    ///
    /// # Errors
    /// The engine's validation errors; an input for another modality.
    fn prepare(&self, input: ItemInput) -> Result<ExportedItem, StoreError>;

    /// Removes the entity's item, reporting every hash that changed.
    ///
    /// # Errors
    /// Storage errors.
    fn remove(&mut self, id: &EntityId) -> Result<Removed, StoreError> {
        let existed = self.remove_item(id)?;
        let changed = if existed {
            vec![(id.clone(), None)]
        } else {
            Vec::new()
        };
        Ok(Removed {
            existed,
            changed,
            superseded: false,
        })
    }

    /// Answers a query of this modality; `Ok(None)` for another modality's query.
    ///
    /// # Errors
    /// The engine's errors.
    fn query(&self, q: Query) -> Result<Option<Answer>, StoreError>;

    /// Deferred work, run by the writer thread between writes while no write is queued, one short
    /// slice per call (a write waits for at most one slice); returns whether work is left.
    fn background(&mut self) -> bool {
        false
    }

    /// Called when the actor stops gracefully.
    ///
    /// # Errors
    /// Storage errors.
    fn on_stop(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

fn wrong(input: &ItemInput, kind: ModalityKind) -> StoreError {
    StoreError::InvalidInput(format!(
        "a {:?} item was sent to the {kind:?} store",
        input.modality()
    ))
}

impl Engine for GraphStore {
    const KIND: ModalityKind = ModalityKind::Graph;

    fn open(db: &Database, setup: &StoreSetup) -> Result<Self, StoreError> {
        GraphStore::open(db, &setup.limits)
    }

    fn prepare(&self, input: ItemInput) -> Result<ExportedItem, StoreError> {
        match input {
            ItemInput::Graph { id, graph } => self.prepare_item(&id, graph.properties, graph.edges),
            other => Err(wrong(&other, Self::KIND)),
        }
    }

    fn query(&self, q: Query) -> Result<Option<Answer>, StoreError> {
        Ok(Some(match q {
            Query::GraphNeighbours {
                id,
                direction,
                predicate,
            } => Answer::Ids(self.neighbours(&id, direction, predicate.as_deref())?),
            Query::GraphEdges {
                id,
                direction,
                predicate,
            } => {
                let p = predicate.as_deref();
                let mut edges = Vec::new();
                if matches!(direction, Direction::Out | Direction::Both) {
                    edges.extend(self.out_edges(&id, p)?);
                }
                if matches!(direction, Direction::In | Direction::Both) {
                    edges.extend(self.in_edges(&id, p)?);
                }
                Answer::Edges(edges)
            }
            Query::GraphTraverse {
                start,
                max_hops,
                direction,
                predicate,
            } => {
                Answer::Reached(self.traverse(&start, max_hops, direction, predicate.as_deref())?)
            }
            Query::GraphShortestPath {
                from,
                to,
                max_hops,
                direction,
                predicate,
            } => Answer::Path(self.shortest_path(
                &from,
                &to,
                max_hops,
                direction,
                predicate.as_deref(),
            )?),
            _ => return Ok(None),
        }))
    }
}

impl Engine for VectorStore {
    const KIND: ModalityKind = ModalityKind::Vector;

    fn open(db: &Database, setup: &StoreSetup) -> Result<Self, StoreError> {
        let mut v = VectorStore::open(db, &setup.limits)?;
        for (name, def) in &setup.collections {
            v.create_collection(name, *def)?;
        }
        Ok(v)
    }

    fn prepare(&self, input: ItemInput) -> Result<ExportedItem, StoreError> {
        match input {
            ItemInput::Vector { id, vectors } => self.prepare_item(&id, vectors),
            other => Err(wrong(&other, Self::KIND)),
        }
    }

    fn query(&self, q: Query) -> Result<Option<Answer>, StoreError> {
        Ok(Some(match q {
            Query::VectorKnn(k) => {
                let mode = if k.exact {
                    SearchMode::Exact
                } else {
                    SearchMode::Ann {
                        ef: k.ef.map(|e| e as usize),
                    }
                };
                Answer::Hits(self.search(
                    &k.collection,
                    &k.vector,
                    k.k as usize,
                    mode,
                    k.filter.as_ref(),
                )?)
            }
            Query::VectorGet { collection, id } => Answer::Vector(self.get(&collection, &id)?),
            Query::VectorCollections => Answer::Collections(
                self.collections()
                    .into_iter()
                    .map(|(n, d, len)| (n, d, len as u64))
                    .collect(),
            ),
            _ => return Ok(None),
        }))
    }

    fn background(&mut self) -> bool {
        // Writes leave vectors pending (searched exactly) to be acknowledged without paying for the
        // HNSW insertion; they are linked into the graph here.
        self.index_pending(INDEX_SLICE);
        self.pending() > 0
    }

    fn on_stop(&mut self) -> Result<(), StoreError> {
        // The next start restores the HNSW graphs instead of rebuilding them.
        self.checkpoint()
    }
}

/// Pending vectors indexed per background slice: ≈ 16 × 0.4 ms of CPU at 128-d, the most a write
/// waits behind indexing.
const INDEX_SLICE: usize = 16;

impl Engine for TensorStore {
    const KIND: ModalityKind = ModalityKind::Tensor;

    fn open(db: &Database, setup: &StoreSetup) -> Result<Self, StoreError> {
        TensorStore::open(db, &setup.limits)
    }

    fn prepare(&self, input: ItemInput) -> Result<ExportedItem, StoreError> {
        match input {
            ItemInput::Tensor { id, tensor } => self.prepare_encoded(&id, tensor),
            other => Err(wrong(&other, Self::KIND)),
        }
    }

    fn query(&self, q: Query) -> Result<Option<Answer>, StoreError> {
        Ok(Some(match q {
            Query::TensorGet { id } => {
                Answer::Tensor(self.get(&id)?.as_ref().map(TensorItem::from))
            }
            Query::TensorSlice { id, ranges } => {
                let ranges: Vec<_> = ranges.into_iter().map(|(a, b)| a..b).collect();
                Answer::Tensor(Some(TensorItem::from(&self.slice(&id, &ranges)?)))
            }
            Query::TensorReduce { id, op, axis } => Answer::Tensor(Some(TensorItem::from(
                &self.reduce(&id, op, axis as usize)?,
            ))),
            _ => return Ok(None),
        }))
    }
}

impl Engine for SemanticStore {
    const KIND: ModalityKind = ModalityKind::Semantic;

    fn open(db: &Database, setup: &StoreSetup) -> Result<Self, StoreError> {
        let mut s = SemanticStore::open(db, &setup.limits)?;
        // Changed types are defined together, in one batch checked as a whole: a configuration
        // that changes a supertype and the subtypes relying on it is one consistent step, which
        // one type at a time might refuse halfway. Unchanged types are not rewritten.
        let changed: Vec<_> = setup
            .types
            .iter()
            .filter(|def| s.get_type(&def.iri) != Some(*def))
            .cloned()
            .collect();
        if !changed.is_empty() {
            s.define_types(changed)?;
        }
        for problem in s.schema_problems() {
            tracing::warn!(%problem, "semantic schema");
        }
        Ok(s)
    }

    fn prepare(&self, input: ItemInput) -> Result<ExportedItem, StoreError> {
        match input {
            ItemInput::Semantic { id, annotation } => self.prepare_item(&id, annotation),
            other => Err(wrong(&other, Self::KIND)),
        }
    }

    fn query(&self, q: Query) -> Result<Option<Answer>, StoreError> {
        Ok(Some(match q {
            Query::SemanticGet { id } => Answer::Annotation(self.get(&id)?),
            Query::SemanticValidate { annotation } => {
                Answer::Violations(self.validate(&annotation)?)
            }
            Query::SemanticEntitiesOfType {
                iri,
                include_subtypes,
            } => Answer::Ids(self.entities_of_type(&iri, include_subtypes)?),
            _ => return Ok(None),
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use verisim_stores::semantic::TypeDef;
    use verisim_stores::{StoreConfig, db::open_db};

    use super::*;
    use crate::store_actors::tests::text_property;

    fn thing_and_person(thing_declares_name: bool) -> Vec<TypeDef> {
        let name = || BTreeMap::from([("name".to_owned(), text_property())]);
        let thing = TypeDef {
            iri: "ex:Thing".into(),
            label: "Thing".into(),
            supertypes: BTreeSet::new(),
            required: BTreeSet::new(),
            properties: if thing_declares_name {
                name()
            } else {
                BTreeMap::new()
            },
        };
        let person = TypeDef {
            iri: "ex:Person".into(),
            label: "Person".into(),
            supertypes: BTreeSet::from(["ex:Thing".to_owned()]),
            required: BTreeSet::from(["name".to_owned()]),
            properties: if thing_declares_name {
                BTreeMap::new()
            } else {
                name()
            },
        };
        vec![thing, person]
    }

    /// A configuration that moves a property from a supertype down to the subtype requiring it is
    /// one consistent change: the store opens with it (one type at a time, the supertype's new
    /// definition alone would leave the subtype requiring an undeclared property, and be refused).
    #[test]
    fn a_schema_change_spanning_a_supertype_and_its_subtype_is_applied_at_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = StoreConfig::default();
        let setup = |types| StoreSetup {
            limits: config.limits.clone(),
            collections: Vec::new(),
            types,
        };
        {
            let db = open_db(dir.path(), &config).expect("open db");
            let s = <SemanticStore as Engine>::open(&db, &setup(thing_and_person(true)))
                .expect("first schema");
            assert!(
                s.get_type("ex:Thing")
                    .is_some_and(|t| !t.properties.is_empty())
            );
        }
        let db = open_db(dir.path(), &config).expect("reopen db");
        let s = <SemanticStore as Engine>::open(&db, &setup(thing_and_person(false)))
            .expect("the changed schema is applied as a whole");
        assert!(
            s.get_type("ex:Thing")
                .is_some_and(|t| t.properties.is_empty())
        );
        assert!(
            s.get_type("ex:Person")
                .is_some_and(|t| t.properties.contains_key("name"))
        );
        assert!(s.schema_problems().is_empty(), "{:?}", s.schema_problems());
    }
}
