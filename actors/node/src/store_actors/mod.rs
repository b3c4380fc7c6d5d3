//! The modality store actors: one actor per modality (graph, vector, tensor, semantic) on every node,
//! each owning its `verisim-stores` engine, supervised `one_for_one` in the node's `stores` subtree.
//!
//! * Names: each actor registers as `verisim.store.<modality>` ([`actor_name`]) and joins the
//!   process group `store.<modality>` ([`group_name`]) in scope `verisim`, so any node finds the
//!   store of any connected node by node name ([`StoreDirectory`]).
//! * Messages ([`StoreMsg`]) are RPCs whose arguments and replies are CBOR ([`verisim_cluster::Cbor`]),
//!   so the same message works locally and across ractor_cluster.
//! * The four engines share one fjall `Database` per node, opened once outside the actors (fjall
//!   locks its directory); each actor opens its engine from that handle in `pre_start`, so a
//!   restarted actor reopens cleanly (vector ANN indexes are restored from fjall).
//!
//! See `docs/stores.md`, "Store actors".

mod actor;
mod batch;
mod call_error;
mod client;
mod engine;
pub mod fence;
mod group_sync;
mod import_queue;
mod merge;
mod messages;
mod settings;
pub mod staging;
mod supervision;
mod writer;

pub use actor::{StoreActor, StoreActorArgs};
pub use batch::{BATCH_BYTES, IN_FLIGHT};
pub use client::{STORE_TIMEOUT, StoreCallError, StoreDirectory, StoreRef};
pub use engine::Engine;
pub use fence::{Fence, FenceRecord};
pub use group_sync::{GroupSync, SyncStats};
pub use merge::merge_top_k;
pub use messages::{
    Answer, Imported, KnnQuery, Query, Removed, Reply, StoreMsg, StoreRefusal, StoreRefusalCode,
};
pub use settings::{
    CollectionSetting, MetricName, StoreSetup, StoresSettings, StoresSettingsError,
};
pub use supervision::{open_stores_db, stores_subtree};

use verisim_stores::ModalityKind;

/// Process-group scope of the store actors (shared with the consensus endpoints).
pub const SCOPE: &str = "verisim";

/// All four modalities, in the order the subtree starts them (the one list, `verisim-vocab`'s).
pub const MODALITIES: [ModalityKind; 4] = ModalityKind::ALL;

/// The process group of a modality's store actors: `store.<modality>`.
pub fn group_name(kind: ModalityKind) -> String {
    format!("store.{}", kind.name())
}

/// The registered name of a modality's store actor on each node: `verisim.store.<modality>`.
pub fn actor_name(kind: ModalityKind) -> String {
    format!("verisim.store.{}", kind.name())
}

/// This node's running store actor of `kind`.
///
/// The name alone is not enough: ractor 0.16 unregisters a name whenever *any* actor carrying it
/// stops, and ractor_cluster's proxies of remote actors carry the remote actor's name without ever
/// registering it. So when a peer's store of the same modality restarts, or a peer disconnects,
/// this node's own `verisim.store.<modality>` registration disappears. The process group
/// `store.<modality>`, which tracks actors by id, is the reliable record; the name serves the
/// stores that do not join it (tests running several stores of one modality in one process).
pub fn local_store(kind: ModalityKind) -> Option<ractor::ActorCell> {
    ractor::pg::get_scoped_local_members(&SCOPE.to_owned(), &group_name(kind))
        .into_iter()
        .next()
        .or_else(|| ractor::registry::where_is(actor_name(kind)).filter(|c| c.get_id().is_local()))
}

/// The modality of a store actor's name (`verisim.store.<modality>`).
pub fn kind_of_actor_name(name: &str) -> Option<ModalityKind> {
    MODALITIES
        .into_iter()
        .find(|&k| name.strip_prefix("verisim.store.") == Some(k.name()))
}

#[cfg(test)]
mod tests;
