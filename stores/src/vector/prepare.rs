//! Preparing a vector item without writing it: the proxy needs the content hash before it proposes a
//! registration to the quorum, and writes only after the commit (see `docs/stores.md`, "Prepare").

use std::collections::BTreeMap;

use super::{VectorItem, VectorStore, from_le, to_le};
use crate::EntityId;
use crate::codec::Bytes;
use crate::error::{Result, StoreError};
use crate::modality::{ExportedItem, ModalityKind};

impl VectorStore {
    /// Everything `import_item` checks about an item, without writing; returns the decoded vectors.
    pub(super) fn check_item(&self, item: &VectorItem) -> Result<Vec<(String, Vec<f32>)>> {
        if item.vectors.is_empty() {
            return Err(StoreError::InvalidInput(
                "a vector item has no vectors".into(),
            ));
        }
        let mut decoded = Vec::new();
        for (name, bytes) in &item.vectors {
            let def = self.coll(name)?.def;
            if bytes.0.len() != def.dim as usize * 4 {
                return Err(StoreError::InvalidInput(format!(
                    "vector for {name} has {} bytes, the collection needs {}",
                    bytes.0.len(),
                    def.dim * 4
                )));
            }
            let v = from_le(&bytes.0, def.dim as usize)?;
            Self::check_vector(def, &v)?;
            decoded.push((name.clone(), v));
        }
        Ok(decoded)
    }

    /// Validates an entity's vector item — one vector per collection — and returns the export that
    /// [`crate::Modality::import_item`] would then store, with its content hash. Writes nothing. The item
    /// replaces the entity's vectors in every collection (collections it does not name lose them).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown collection; [`StoreError::InvalidInput`] for no
    /// vectors, a wrong dimension, NaN or infinity, a zero vector in a cosine collection.
    pub fn prepare_item(
        &self,
        id: &EntityId,
        vectors: BTreeMap<String, Vec<f32>>,
    ) -> Result<ExportedItem> {
        let item = VectorItem {
            vectors: vectors
                .into_iter()
                .map(|(name, v)| (name, Bytes(to_le(&v))))
                .collect(),
        };
        self.check_item(&item)?;
        ExportedItem::new(ModalityKind::Vector, id, &item)
    }
}
