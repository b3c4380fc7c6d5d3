//! The registry state machine: the "tiny core" of metadata the Raft log replicates, its commands,
//! and the snapshot files that hold it on disk ([`snapshot`]).
//!
//! A crate of its own so that the state machine is seen to need no async runtime, actors or storage
//! engine (`scripts/check-layers` holds it to that): the consensus actor in `verisim` applies its
//! commands, the Snapshotter writes its snapshots.
//!
//! It holds entities (id → version, per-modality content hash and size, placement), client identity keys,
//! trust windows, the request ids already applied (so retries are idempotent) and node addresses. Payloads
//! live in the stores, never here. Apply is deterministic: no clock (time comes from the proposals), no
//! randomness, ordered maps only, so two replicas that applied the same log have equal
//! [`RegistryState::digest`]s and identical snapshots.
//!
//! Secrets never enter the log or snapshots: a client's identity key is public, and a trust window's HMAC
//! key is agreed by X25519: the log holds only the client's public key for the window, from which each
//! node derives the key with the cluster's secret (see `proxy::auth`).

mod command;
mod ids;
mod items;
mod state;

pub use command::{
    Access, Command, DecodeError, ItemMeta, NodeInfo, Origin, PlacementMove, Proposal, PublicKey,
    decode_exact, encode,
};
pub use ids::{ClientId, IdError, NodeName, RequestId, WindowId};
pub use items::Items;
pub use state::{
    AppliedRequest, ClientRecord, DEFAULT_MAX_CLOCK_STEP_MS, EntityMeta, FORMAT_CBOR,
    FORMAT_COMPACT, MAX_REPLICAS, MODALITIES, Outcome, Refusal, RegistryConfig, RegistryState,
    SnapshotBodyError, WindowRecord, step_clock,
};
pub use verisim_vocab::{ContentHash, EntityId, Modality as ModalityKind};

#[cfg(any(test, feature = "test-util"))]
pub mod fixture;
pub mod placement;
pub mod snapshot;

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
