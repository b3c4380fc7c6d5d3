//! Semantic engine: a type schema, one annotation per entity (types, typed property values, proof
//! blobs), validation with precise errors, and queries by type including subtypes.
//!
//! Keyspaces: `semantic.schema` (type IRI → CBOR [`TypeDef`]), `semantic.ann` (`id` → CBOR
//! [`Annotation`]), `semantic.bytype` (`type IRI 0 id` → empty: the entities annotated with each
//! type directly), plus `semantic.hash`/`semantic.digest`. The schema is also held in memory (with
//! compiled patterns) and loaded at open.
//!
//! An annotation is validated when written (and when imported). Redefining a type does not
//! revalidate annotations already stored; [`SemanticStore::revalidate`] checks one on demand.

mod merkle;
mod proof;
mod schema;
mod validate;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use fjall::{Database, Keyspace};
use serde::{Deserialize, Serialize};

pub use merkle::{MerkleProof, MerkleTree, leaf_hash, node_hash};
pub use proof::{Commitment, ProofBlob, ProofKind, Verified, verify_blob};
pub use schema::{PropertyDef, TypeDef, validate_iri};
// Defined below the error type, which carries it; public here as before.
pub use crate::violation::Violation;

use crate::EntityId;
use crate::codec::{from_cbor_exact, to_cbor};
use crate::durability::Durability;
use crate::error::{Result, StoreError, clip};
use crate::hash::{BucketDigest, ContentHash};
use crate::id::validate_name;
use crate::index::{ItemIndex, check_recorded};
use crate::keyspace;
use crate::limits::Limits;
use crate::modality::{ExportedItem, Modality, ModalityKind};
use crate::value::Value;
use schema::Schema;

/// One entity's semantic annotation (its item: hashed, exported, imported).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Annotation {
    /// Type IRIs the entity is an instance of.
    pub types: BTreeSet<String>,
    /// Property values.
    pub properties: BTreeMap<String, Value>,
    /// Proof blobs; each must verify.
    pub proofs: Vec<ProofBlob>,
}

/// The semantic engine. Writes take `&mut self`; reads take `&self`.
pub struct SemanticStore {
    db: Database,
    schema_ks: Keyspace,
    ann: Keyspace,
    by_type: Keyspace,
    index: ItemIndex,
    limits: Limits,
    durability: Durability,
    schema: Schema,
}

fn type_key(iri: &str, id: &EntityId) -> Vec<u8> {
    let mut k = Vec::with_capacity(iri.len() + 1 + id.as_bytes().len());
    k.extend_from_slice(iri.as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

impl SemanticStore {
    /// Opens the semantic keyspaces and loads the schema.
    ///
    /// Loading the schema never fails on what the schema says: a stored schema that breaks the
    /// rules [`SemanticStore::define_type`] enforces (written by an older version, or a record
    /// damaged on disk) is loaded as well as it can be, each problem is logged as a warning and
    /// listed by [`SemanticStore::schema_problems`], and redefining the broken types repairs it.
    /// Refusing to open instead would make the store unusable until its files were edited by hand.
    ///
    /// # Errors
    /// Storage errors.
    pub fn open(db: &Database, limits: &Limits) -> Result<Self> {
        let schema_ks = keyspace::open(db, "semantic.schema")?;
        let mut stored = Vec::new();
        for g in schema_ks.iter() {
            let (k, v) = g.into_inner()?;
            let key = String::from_utf8_lossy(&k).into_owned();
            stored.push((key, from_cbor_exact::<TypeDef>("stored type", &v)));
        }
        let (schema, problems) = Schema::load(stored);
        for p in &problems {
            tracing::warn!(problem = %p, "stored semantic schema has a problem; loaded anyway");
        }
        Ok(Self {
            db: db.clone(),
            schema_ks,
            ann: keyspace::open(db, "semantic.ann")?,
            by_type: keyspace::open(db, "semantic.bytype")?,
            index: ItemIndex::open(db, "semantic")?,
            limits: limits.clone(),
            durability: Durability::EachWrite,
            schema,
        })
    }

    /// Defines a type or replaces its definition.
    ///
    /// The schema that would result is checked as a whole: the type itself, and every subtype
    /// that inherits from it — a redefinition that would leave a subtype requiring a property no
    /// longer declared anywhere in its ancestry is refused. To change a supertype and its subtypes
    /// together, use [`SemanticStore::define_types`].
    ///
    /// # Errors
    /// Invalid IRI or property name, unknown supertype ([`StoreError::NotFound`]), a cycle, a bad
    /// pattern or range, a required property nobody declares, a subtype the change would break
    /// ([`StoreError::InvalidInput`]). Nothing is written on error.
    pub fn define_type(&mut self, def: TypeDef) -> Result<()> {
        self.define_types(vec![def])
    }

    /// Defines or replaces several types at once, in one durable batch: only the resulting schema
    /// is checked (as in [`SemanticStore::define_type`]), so a supertype and the subtypes that
    /// depend on it can change together, in any order.
    ///
    /// # Errors
    /// As [`SemanticStore::define_type`], for any of the definitions. Nothing is written on error.
    pub fn define_types(&mut self, defs: Vec<TypeDef>) -> Result<()> {
        let next = self.schema.with(&defs)?;
        let mut b = self.durability.batch(&self.db);
        for def in &defs {
            b.insert(&self.schema_ks, def.iri.as_bytes(), to_cbor(def)?);
        }
        b.commit()?;
        self.schema = next;
        Ok(())
    }

    /// Problems of the schema in memory: types whose supertypes are missing, cyclic types, required
    /// properties no ancestor declares, patterns that do not compile (and, as loaded at open,
    /// stored definitions that did not decode). Empty for every schema built with
    /// [`SemanticStore::define_type`]; a schema stored by an older version, or damaged, may have
    /// some.
    #[must_use]
    pub fn schema_problems(&self) -> Vec<String> {
        self.schema.problems()
    }

    /// A type's definition.
    #[must_use]
    pub fn get_type(&self, iri: &str) -> Option<&TypeDef> {
        self.schema.types.get(iri)
    }

    /// All types, by IRI.
    pub fn types(&self) -> impl Iterator<Item = &TypeDef> {
        self.schema.types.values()
    }

    /// `iri` and all its transitive subtypes.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown type.
    pub fn subtypes(&self, iri: &str) -> Result<BTreeSet<String>> {
        self.known(iri)?;
        Ok(self.schema.descendants(iri))
    }

    /// All transitive supertypes of `iri` (not itself).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown type.
    pub fn supertypes(&self, iri: &str) -> Result<BTreeSet<String>> {
        self.known(iri)?;
        Ok(self.schema.ancestors(iri))
    }

    fn known(&self, iri: &str) -> Result<()> {
        if self.schema.types.contains_key(iri) {
            Ok(())
        } else {
            Err(StoreError::NotFound {
                what: "semantic type",
                name: clip(iri),
            })
        }
    }

    /// Checks an annotation without storing it: every violation, in a stable order.
    ///
    /// # Errors
    /// Malformed input that is not a schema question (bad property names, non-finite floats,
    /// oversized annotation).
    pub fn validate(&self, a: &Annotation) -> Result<Vec<Violation>> {
        self.check_shape(a)?;
        Ok(validate::validate(&self.schema, a))
    }

    fn check_shape(&self, a: &Annotation) -> Result<usize> {
        for t in &a.types {
            validate_iri(t)?;
        }
        for (k, v) in &a.properties {
            validate_name("property name", k)?;
            v.check(k)?;
        }
        let size = to_cbor(a)?.len();
        if size > self.limits.max_annotation_bytes {
            return Err(StoreError::LimitExceeded {
                what: "encoded annotation",
                limit: self.limits.max_annotation_bytes as u64,
                actual: size as u64,
            });
        }
        Ok(size)
    }

    /// Validates an annotation and returns the export that [`Modality::import_item`] would then
    /// store, with its content hash. Writes nothing.
    ///
    /// # Errors
    /// As [`SemanticStore::annotate`].
    pub fn prepare_item(&self, id: &EntityId, a: Annotation) -> Result<ExportedItem> {
        self.check_valid(id, &a)?;
        ExportedItem::new(ModalityKind::Semantic, id, &a)
    }

    fn check_valid(&self, id: &EntityId, a: &Annotation) -> Result<()> {
        let violations = self.validate(a)?;
        if !violations.is_empty() {
            return Err(StoreError::Validation {
                id: id.to_string(),
                violations,
            });
        }
        Ok(())
    }

    /// Validates and stores (replaces) the entity's annotation. Returns its content hash.
    ///
    /// # Errors
    /// [`StoreError::Validation`] listing every violation; shape errors as in
    /// [`SemanticStore::validate`]; storage errors. Nothing is written on error.
    pub fn annotate(&mut self, id: &EntityId, a: Annotation) -> Result<ContentHash> {
        self.check_valid(id, &a)?;
        let old = self.get(id)?;
        let bytes = to_cbor(&a)?;
        let hash = ContentHash::of(ModalityKind::Semantic.hash_domain(), &bytes);
        let mut b = self.durability.batch(&self.db);
        if let Some(o) = &old {
            for t in o.types.difference(&a.types) {
                b.remove(&self.by_type, type_key(t, id));
            }
        }
        for t in &a.types {
            if old.as_ref().is_none_or(|o| !o.types.contains(t)) {
                b.insert(&self.by_type, type_key(t, id), Vec::<u8>::new());
            }
        }
        b.insert(&self.ann, id.as_bytes(), bytes);
        let mut txn = self.index.txn();
        txn.set(id, Some(hash));
        txn.write(&mut b)?;
        b.commit()?;
        Ok(hash)
    }

    /// The entity's annotation.
    ///
    /// # Errors
    /// Storage errors.
    pub fn get(&self, id: &EntityId) -> Result<Option<Annotation>> {
        match self.ann.get(id.as_bytes())? {
            Some(v) => Ok(Some(from_cbor_exact("stored annotation", &v)?)),
            None => Ok(None),
        }
    }

    /// Checks a stored annotation against the current schema.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; storage errors.
    pub fn revalidate(&self, id: &EntityId) -> Result<Vec<Violation>> {
        let a = self.get(id)?.ok_or_else(|| StoreError::NotFound {
            what: "annotation",
            name: id.to_string(),
        })?;
        Ok(validate::validate(&self.schema, &a))
    }

    /// Deletes the entity's annotation; true if there was one.
    ///
    /// # Errors
    /// Storage errors.
    pub fn delete(&mut self, id: &EntityId) -> Result<bool> {
        let Some(old) = self.get(id)? else {
            return Ok(false);
        };
        let mut b = self.durability.batch(&self.db);
        for t in &old.types {
            b.remove(&self.by_type, type_key(t, id));
        }
        b.remove(&self.ann, id.as_bytes());
        let mut txn = self.index.txn();
        txn.set(id, None);
        txn.write(&mut b)?;
        b.commit()?;
        Ok(true)
    }

    /// Entities annotated with `iri` or (if `include_subtypes`) any of its subtypes, sorted by id.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown type; storage errors.
    pub fn entities_of_type(&self, iri: &str, include_subtypes: bool) -> Result<Vec<EntityId>> {
        self.known(iri)?;
        let types = if include_subtypes {
            self.schema.descendants(iri)
        } else {
            BTreeSet::from([iri.to_owned()])
        };
        let mut out = BTreeSet::new();
        for t in types {
            let mut p = t.into_bytes();
            p.push(0);
            for g in self.by_type.prefix(&p) {
                let k = g.key()?;
                out.insert(crate::id::entity_id_from_key(
                    k.get(p.len()..).unwrap_or_default(),
                )?);
            }
        }
        Ok(out.into_iter().collect())
    }
}

impl Modality for SemanticStore {
    fn kind(&self) -> ModalityKind {
        ModalityKind::Semantic
    }

    fn set_durability(&mut self, durability: Durability) {
        self.durability = durability;
    }

    fn durability(&self) -> Durability {
        self.durability
    }

    fn item_hash(&self, id: &EntityId) -> Result<Option<ContentHash>> {
        self.index.get(id)
    }

    fn verify_item(&self, id: &EntityId) -> Result<Option<ContentHash>> {
        let actual = self
            .ann
            .get(id.as_bytes())?
            .map(|v| ContentHash::of(ModalityKind::Semantic.hash_domain(), &v));
        check_recorded("semantic item", id, self.index.get(id)?, actual)
    }

    fn bucket_digests(&self, buckets: Range<u16>) -> Result<Vec<(u16, BucketDigest)>> {
        self.index.digests(buckets)
    }

    fn bucket_items(&self, bucket: u16) -> Result<Vec<(EntityId, ContentHash)>> {
        self.index.bucket_items(bucket)
    }

    fn export_item(&self, id: &EntityId) -> Result<Option<ExportedItem>> {
        match self.get(id)? {
            Some(a) => Ok(Some(ExportedItem::new(ModalityKind::Semantic, id, &a)?)),
            None => Ok(None),
        }
    }

    fn import_item(&mut self, exported: &ExportedItem) -> Result<ContentHash> {
        let a: Annotation = exported.open(ModalityKind::Semantic)?;
        self.annotate(&exported.id, a)
    }

    fn remove_item(&mut self, id: &EntityId) -> Result<bool> {
        self.delete(id)
    }
}

#[cfg(test)]
mod tests;
