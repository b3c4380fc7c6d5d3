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
mod client;
mod engine;
mod group_sync;
mod merge;
mod messages;
mod settings;
mod supervision;
mod writer;

pub use actor::{StoreActor, StoreActorArgs};
pub use client::{StoreCallError, StoreDirectory, StoreRef};
pub use engine::Engine;
pub use group_sync::{GroupSync, SyncStats};
pub use merge::merge_top_k;
pub use messages::{Answer, KnnQuery, Query, Refusal, RefusalCode, Removed, Reply, StoreMsg};
pub use settings::{
    CollectionSetting, MetricName, StoreSetup, StoresSettings, StoresSettingsError,
};
pub use supervision::{open_stores_db, stores_subtree};

use verisim_stores::ModalityKind;

/// Process-group scope of the store actors (shared with the consensus endpoints).
pub const SCOPE: &str = "verisim";

/// All four modalities, in the order the subtree starts them.
pub const MODALITIES: [ModalityKind; 4] = [
    ModalityKind::Graph,
    ModalityKind::Vector,
    ModalityKind::Tensor,
    ModalityKind::Semantic,
];

/// `graph`, `vector`, `tensor` or `semantic`.
pub fn modality_name(kind: ModalityKind) -> &'static str {
    match kind {
        ModalityKind::Graph => "graph",
        ModalityKind::Vector => "vector",
        ModalityKind::Tensor => "tensor",
        ModalityKind::Semantic => "semantic",
    }
}

/// The process group of a modality's store actors: `store.<modality>`.
pub fn group_name(kind: ModalityKind) -> String {
    format!("store.{}", modality_name(kind))
}

/// The registered name of a modality's store actor on each node: `verisim.store.<modality>`.
pub fn actor_name(kind: ModalityKind) -> String {
    format!("verisim.store.{}", modality_name(kind))
}

#[cfg(test)]
mod tests;
