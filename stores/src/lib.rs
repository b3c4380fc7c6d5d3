//! VeriSim's four modality engines on fjall — graph, vector, tensor, semantic — as plain Rust (no
//! actors). See `docs/stores.md` for the API guide, the durability contract and measured numbers.
//!
//! * [`Stores::open`] opens one fjall database per node's stores directory, shared by the engines.
//! * Every entity's item in every engine has a [`ContentHash`] (BLAKE3 over canonical CBOR); the
//!   [`Modality`] trait gives the drift checker per-bucket digests, per-item hashes, export and
//!   import.
//! * Every write is acknowledged only once durable (`PersistMode::SyncData`).

pub mod codec;
pub mod datasets;
mod datatype;
pub mod db;
mod durability;
pub mod error;
pub mod graph;
pub mod hash;
pub mod hexad;
pub mod id;
#[cfg(test)]
mod import_fuzz;
mod index;
mod keyspace;
mod limits;
pub mod modality;
pub mod semantic;
pub mod tensor;
#[cfg(test)]
mod testutil;
pub mod value;
pub mod vector;
mod violation;

pub use db::{StoreConfig, Stores};
pub use durability::Durability;
pub use error::{Result, StoreError};
pub use graph::GraphStore;
pub use hash::{BUCKETS, BucketDigest, ContentHash, bucket_of};
pub use hexad::{GraphInput, HexadInput, ItemInput};
pub use id::EntityId;
pub use limits::Limits;
pub use modality::{ExportedItem, Modality, ModalityKind};
pub use semantic::SemanticStore;
pub use tensor::TensorStore;
pub use value::{Datatype, Value};
pub use vector::VectorStore;

#[cfg(test)]
mod tests {
    /// Store actors own their engine as actor state, which ractor requires to be `Send`.
    #[test]
    fn engines_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<crate::GraphStore>();
        check::<crate::VectorStore>();
        check::<crate::TensorStore>();
        check::<crate::SemanticStore>();
        check::<crate::Stores>();
    }
}
