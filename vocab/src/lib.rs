//! VeriSim's shared vocabulary: the definitions every layer names the same way, written once.
//!
//! * [`ids`]: entity ids, client ids, request ids, window ids, node names, and their validation;
//! * [`ContentHash`]: the 32-byte BLAKE3 content hash of an item (hex in JSON, a byte string in CBOR);
//! * [`Modality`]: the four modalities and their names;
//! * [`cbor`]: strict CBOR decoding (one item, all bytes consumed, an optional size limit);
//! * [`backoff`]: exponential backoff with jitter.
//!
//! It depends on no async runtime, actor system, storage or OS randomness, so the client's wasm32
//! build uses it as well as the node (`scripts/check-layers` keeps it that way). Callers that jitter
//! pass their own random numbers in.

pub mod backoff;
pub mod cbor;
mod hash;
pub mod ids;
mod modality;

pub use hash::ContentHash;
pub use ids::{ClientId, EntityId, IdError, NodeName, RequestId, WindowId};
pub use modality::Modality;

/// Why a well-formed value is not acceptable (a bad hex string, say). The public API's
/// `verisim_client::wire::InvalidInput`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidInput(pub String);
