//! Preparing a tensor item without writing it: the proxy needs the content hash before it proposes a
//! registration to the quorum, and writes only after the commit (see `docs/stores.md`, "Prepare").

use super::{Tensor, TensorData, TensorItem, TensorStore};
use crate::EntityId;
use crate::codec::Bytes;
use crate::error::{Result, StoreError};
use crate::modality::{ExportedItem, ModalityKind};

impl TensorStore {
    /// Everything `import_item` checks about an item, without writing.
    pub(super) fn check_item(&self, item: &TensorItem) -> Result<()> {
        let n = self.check_shape(item.dtype, &item.shape)?;
        // Validates the element bytes (bool bytes must be 0 or 1).
        let data = TensorData::from_le_bytes(item.dtype, &item.data.0)?;
        if data.len() as u64 != n {
            return Err(StoreError::InvalidInput(format!(
                "shape {:?} holds {n} elements but {} were given",
                item.shape,
                data.len()
            )));
        }
        Ok(())
    }

    /// Validates a tensor and returns the export that [`crate::Modality::import_item`] would then store,
    /// with its content hash. Writes nothing.
    ///
    /// # Errors
    /// As [`TensorStore::put`].
    pub fn prepare_item(&self, id: &EntityId, tensor: &Tensor) -> Result<ExportedItem> {
        self.prepare_encoded(id, TensorItem::from(tensor))
    }

    /// As [`TensorStore::prepare_item`], for a tensor already in its wire form (dtype, shape,
    /// little-endian bytes), as it arrives in a message.
    ///
    /// # Errors
    /// As [`TensorStore::put`]; [`StoreError::Malformed`] or [`StoreError::InvalidInput`] for
    /// element bytes that do not fit the dtype.
    pub fn prepare_encoded(&self, id: &EntityId, item: TensorItem) -> Result<ExportedItem> {
        self.check_item(&item)?;
        ExportedItem::new(ModalityKind::Tensor, id, &item)
    }
}

impl From<&Tensor> for TensorItem {
    fn from(t: &Tensor) -> Self {
        Self {
            dtype: t.data.dtype(),
            shape: t.shape.clone(),
            data: Bytes(t.data.to_le_bytes()),
        }
    }
}

impl TensorItem {
    /// Decodes the elements.
    ///
    /// # Errors
    /// Element bytes that do not fit the dtype, or a count that does not match the shape.
    pub fn to_tensor(&self) -> Result<Tensor> {
        let data = TensorData::from_le_bytes(self.dtype, &self.data.0)?;
        let n = self
            .shape
            .iter()
            .try_fold(1u64, |a, d| a.checked_mul(*d))
            .ok_or_else(|| StoreError::InvalidInput("tensor shape overflows u64".into()))?;
        if data.len() as u64 != n {
            return Err(StoreError::InvalidInput(format!(
                "shape {:?} holds {n} elements but {} were given",
                self.shape,
                data.len()
            )));
        }
        Ok(Tensor {
            shape: self.shape.clone(),
            data,
        })
    }
}
