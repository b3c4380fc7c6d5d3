//! What the four engines have in common: per-item hashes, bucket digests, and export/import of one
//! entity's item for repair between replicas.

use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::EntityId;
use crate::codec::{Bytes, from_cbor_exact, to_cbor};
use crate::error::{Result, StoreError};
use crate::hash::{BucketDigest, ContentHash};

/// The four modalities of a hexad: [`verisim_vocab::Modality`], the one list every layer uses
/// (its [`hash_domain`](verisim_vocab::Modality::hash_domain) keys this crate's content hashes).
pub use verisim_vocab::Modality as ModalityKind;

/// One entity's item in one engine, as shipped between replicas. `payload` is the item's canonical
/// CBOR encoding and `hash` is `ContentHash::of(modality.hash_domain(), payload)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportedItem {
    /// Which engine.
    pub modality: ModalityKind,
    /// The entity.
    pub id: EntityId,
    /// The content hash of `payload`.
    pub hash: ContentHash,
    /// Canonical CBOR of the item.
    pub payload: Bytes,
}

impl ExportedItem {
    pub(crate) fn new<T: Serialize>(
        modality: ModalityKind,
        id: &EntityId,
        item: &T,
    ) -> Result<Self> {
        let payload = to_cbor(item)?;
        Ok(Self {
            modality,
            id: id.clone(),
            hash: ContentHash::of(modality.hash_domain(), &payload),
            payload: Bytes(payload),
        })
    }

    /// Encodes as CBOR (what travels between nodes).
    ///
    /// # Errors
    /// Never in practice (see [`to_cbor`]).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        to_cbor(self)
    }

    /// Decodes strictly (trailing bytes are malformed).
    ///
    /// # Errors
    /// [`StoreError::Malformed`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        from_cbor_exact("export", bytes)
    }

    /// Checks modality, hash and canonical form, and decodes the payload.
    pub fn open<T: Serialize + serde::de::DeserializeOwned>(
        &self,
        expected: ModalityKind,
    ) -> Result<T> {
        if self.modality != expected {
            return Err(StoreError::InvalidInput(format!(
                "export is for the {:?} engine, not {expected:?}",
                self.modality
            )));
        }
        let actual = ContentHash::of(expected.hash_domain(), &self.payload.0);
        if actual != self.hash {
            return Err(StoreError::HashMismatch {
                what: "export",
                id: self.id.to_string(),
                expected: self.hash.to_hex(),
                actual: actual.to_hex(),
            });
        }
        let item: T = from_cbor_exact("export", &self.payload.0)?;
        if to_cbor(&item)? != self.payload.0 {
            return Err(StoreError::Malformed {
                what: "export",
                reason: "payload is not in canonical form".into(),
            });
        }
        Ok(item)
    }
}

/// The interface the drift checker and the repairer use, identical for the four engines.
pub trait Modality {
    /// Which engine this is.
    fn kind(&self) -> ModalityKind;

    /// How this engine's writes are committed from now on ([`crate::Durability`]; the default
    /// fsyncs each write).
    fn set_durability(&mut self, durability: crate::durability::Durability);

    /// The current write durability.
    fn durability(&self) -> crate::durability::Durability;

    /// The recorded content hash of the entity's item (`None`: no item). One point read.
    ///
    /// # Errors
    /// Storage errors.
    fn item_hash(&self, id: &EntityId) -> Result<Option<ContentHash>>;

    /// Recomputes the item's hash from the stored data and compares it with the recorded one.
    ///
    /// # Errors
    /// [`StoreError::HashMismatch`] if they differ (the item is corrupt); storage errors.
    fn verify_item(&self, id: &EntityId) -> Result<Option<ContentHash>>;

    /// Digests of the buckets in `buckets` (clamped to `0..BUCKETS`), in order.
    ///
    /// # Errors
    /// Storage errors.
    fn bucket_digests(&self, buckets: Range<u16>) -> Result<Vec<(u16, BucketDigest)>>;

    /// All items in a bucket with their hashes, ordered by id.
    ///
    /// # Errors
    /// Storage errors.
    fn bucket_items(&self, bucket: u16) -> Result<Vec<(EntityId, ContentHash)>>;

    /// Exports the entity's item (`None`: no item).
    ///
    /// # Errors
    /// Storage errors.
    fn export_item(&self, id: &EntityId) -> Result<Option<ExportedItem>>;

    /// Replaces the entity's item with an exported one (after checking its hash); returns the hash,
    /// which equals `item.hash`.
    ///
    /// # Errors
    /// [`StoreError::HashMismatch`], [`StoreError::Malformed`], validation errors of the engine.
    fn import_item(&mut self, item: &ExportedItem) -> Result<ContentHash>;

    /// Removes the entity's item; true if there was one.
    ///
    /// # Errors
    /// Storage errors.
    fn remove_item(&mut self, id: &EntityId) -> Result<bool>;
}
