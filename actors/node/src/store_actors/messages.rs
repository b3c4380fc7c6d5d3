//! What the store actors understand and answer. Every argument and reply is sealed CBOR
//! ([`Sealed`]: the sender's node id and, with node identities, its proof), so a message is the same
//! locally and across ractor_cluster, and a store knows which node asked.

use std::collections::BTreeSet;

use ractor::RpcReplyPort;
use ractor_cluster::RactorClusterMessage;
use serde::{Deserialize, Serialize};
use verisim_cluster::Sealed;
use verisim_stores::graph::{Direction, Edge};
use verisim_stores::semantic::{Annotation, Violation};
use verisim_stores::tensor::{ReduceOp, TensorItem};
use verisim_stores::vector::{CollectionDef, Hit};
use verisim_stores::{BucketDigest, ContentHash, EntityId, ExportedItem, ItemInput, StoreError};

use super::fence::{Fence, FenceRecord};
use super::staging::StagedEntry;

/// A store actor's answer: the value, or why the store refused.
pub type Reply<T> = Result<T, StoreRefusal>;

/// Why a store refused a request, as it travels back to the caller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct StoreRefusal {
    /// Which kind of refusal.
    pub code: StoreRefusalCode,
    /// True for the caller's fault (4xx at the proxy), false for the node's (5xx).
    pub client_error: bool,
    /// The `StoreError` message.
    pub message: String,
    /// For [`StoreRefusalCode::Validation`]: every schema violation.
    pub violations: Vec<Violation>,
}

/// A stable code per `StoreError` variant, plus the actor's own refusals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreRefusalCode {
    InvalidId,
    InvalidName,
    InvalidInput,
    LimitExceeded,
    NotFound,
    Conflict,
    Validation,
    ProofInvalid,
    Malformed,
    HashMismatch,
    Overflow,
    Storage,
    /// A request this actor's modality does not serve (a graph query sent to the vector store).
    WrongModality,
    /// The request did not decode, or the reply was too large to encode.
    BadMessage,
    /// The engine failed inside the actor (a panic); the actor restarts.
    Internal,
    /// A batched import's item could not be handed to its store on the receiving node (the store
    /// restarting or not answering in time); see `store_actors::batch`.
    Unavailable,
}

impl StoreRefusal {
    pub(crate) fn new(
        code: StoreRefusalCode,
        client_error: bool,
        message: impl Into<String>,
    ) -> Self {
        Self {
            code,
            client_error,
            message: message.into(),
            violations: Vec::new(),
        }
    }
}

impl From<StoreError> for StoreRefusal {
    fn from(e: StoreError) -> Self {
        let client_error = e.is_client_error();
        let message = e.to_string();
        let (code, violations) = match e {
            StoreError::InvalidId { .. } => (StoreRefusalCode::InvalidId, Vec::new()),
            StoreError::InvalidName { .. } => (StoreRefusalCode::InvalidName, Vec::new()),
            StoreError::InvalidInput(_) => (StoreRefusalCode::InvalidInput, Vec::new()),
            StoreError::LimitExceeded { .. } => (StoreRefusalCode::LimitExceeded, Vec::new()),
            StoreError::NotFound { .. } => (StoreRefusalCode::NotFound, Vec::new()),
            StoreError::Conflict { .. } => (StoreRefusalCode::Conflict, Vec::new()),
            StoreError::Validation { violations, .. } => (StoreRefusalCode::Validation, violations),
            StoreError::ProofInvalid(_) => (StoreRefusalCode::ProofInvalid, Vec::new()),
            StoreError::Malformed { .. } => (StoreRefusalCode::Malformed, Vec::new()),
            StoreError::HashMismatch { .. } => (StoreRefusalCode::HashMismatch, Vec::new()),
            StoreError::Overflow(_) => (StoreRefusalCode::Overflow, Vec::new()),
            StoreError::Storage(_) => (StoreRefusalCode::Storage, Vec::new()),
        };
        Self {
            code,
            client_error,
            message,
            violations,
        }
    }
}

/// What removing an entity's item changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// True if the entity had an item.
    pub existed: bool,
    /// Every entity whose item hash changed, with its new hash (`None`: gone), ordered by id: the
    /// entity itself (removing an item changes no other entity's item).
    pub changed: Vec<(EntityId, Option<ContentHash>)>,
    /// The store holds something at least as new as the removal (see [`super::fence`]): nothing
    /// was removed.
    #[serde(default)]
    pub superseded: bool,
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Imported {
    /// The item is stored (its hash).
    Stored(ContentHash),
    /// The store holds a newer item or a newer removal of the entity (see [`super::fence`]):
    /// nothing was written.
    Superseded { held: FenceRecord },
}

/// A k-nearest-neighbour search in one vector collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnnQuery {
    pub collection: String,
    pub vector: Vec<f32>,
    pub k: u32,
    /// Brute force (exact) instead of HNSW.
    pub exact: bool,
    /// HNSW beam width (`None`: the default, 64).
    pub ef: Option<u32>,
    /// Only these entities.
    pub filter: Option<BTreeSet<EntityId>>,
}

/// Per-modality queries. A query for another modality is refused with
/// [`StoreRefusalCode::WrongModality`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Query {
    /// → [`Answer::Hits`].
    VectorKnn(KnnQuery),
    /// → [`Answer::Vector`].
    VectorGet { collection: String, id: EntityId },
    /// → [`Answer::Collections`].
    VectorCollections,
    /// Distinct neighbours, sorted → [`Answer::Ids`].
    GraphNeighbours {
        id: EntityId,
        direction: Direction,
        predicate: Option<String>,
    },
    /// Outgoing (`Out`) or incoming (`In`) edges; `Both` gives both → [`Answer::Edges`].
    GraphEdges {
        id: EntityId,
        direction: Direction,
        predicate: Option<String>,
    },
    /// BFS up to `max_hops` → [`Answer::Reached`].
    GraphTraverse {
        start: EntityId,
        max_hops: u32,
        direction: Direction,
        predicate: Option<String>,
    },
    /// → [`Answer::Path`].
    GraphShortestPath {
        from: EntityId,
        to: EntityId,
        max_hops: u32,
        direction: Direction,
        predicate: Option<String>,
    },
    /// → [`Answer::Tensor`].
    TensorGet { id: EntityId },
    /// Half-open `(start, end)` per axis → [`Answer::Tensor`].
    TensorSlice {
        id: EntityId,
        ranges: Vec<(u64, u64)>,
    },
    /// → [`Answer::Tensor`].
    TensorReduce {
        id: EntityId,
        op: ReduceOp,
        axis: u32,
    },
    /// → [`Answer::Annotation`].
    SemanticGet { id: EntityId },
    /// Dry run against the schema → [`Answer::Violations`].
    SemanticValidate { annotation: Annotation },
    /// → [`Answer::Ids`].
    SemanticEntitiesOfType { iri: String, include_subtypes: bool },
}

/// Answers to [`Query`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Answer {
    Hits(Vec<Hit>),
    Vector(Option<Vec<f32>>),
    Collections(Vec<(String, CollectionDef, u64)>),
    Ids(Vec<EntityId>),
    Edges(Vec<Edge>),
    Reached(Vec<(EntityId, u32)>),
    Path(Option<Vec<EntityId>>),
    /// `None`: the entity has no tensor (`TensorGet` only).
    Tensor(Option<TensorItem>),
    Annotation(Option<Annotation>),
    Violations(Vec<Violation>),
}

/// The kind a store request is sealed as (one per operation: a request of one kind never opens as
/// another), and the kind of every answer.
pub mod kind {
    pub const PREPARE: &str = "store.prepare";
    pub const IMPORT: &str = "store.import";
    pub const IMPORT_NODE: &str = "store.import_node";
    pub const EXPORT: &str = "store.export";
    pub const REMOVE: &str = "store.remove";
    pub const PURGE_TOMBSTONES: &str = "store.purge_tombstones";
    pub const ITEM_HASH: &str = "store.item_hash";
    pub const BUCKET_DIGESTS: &str = "store.bucket_digests";
    pub const BUCKET_ITEMS: &str = "store.bucket_items";
    pub const QUERY: &str = "store.query";
    pub const STAGE: &str = "store.stage";
    pub const STAGED: &str = "store.staged";
    pub const UNSTAGE: &str = "store.unstage";
    pub const STAGED_LIST: &str = "store.staged_list";
    pub const REPLY: &str = "store.reply";
}

/// The reply port of a store request.
pub type Port<T> = RpcReplyPort<Sealed<Reply<T>>>;

/// The messages of every store actor (the four share one type; each serves its own modality).
// The derive needs the reply port spelled out as `RpcReplyPort<...>`.
#[allow(clippy::type_complexity)]
#[derive(RactorClusterMessage)]
pub enum StoreMsg {
    /// Validate an input and return the item `Import` would store, with its hash. Writes nothing.
    #[rpc]
    Prepare(Sealed<ItemInput>, RpcReplyPort<Sealed<Reply<ExportedItem>>>),
    /// Check the item's hash and store it durably (replacing the entity's item), unless the store
    /// holds something newer than the fence (the registry entry that produced the item).
    #[rpc]
    Import(
        Sealed<(ExportedItem, Fence)>,
        RpcReplyPort<Sealed<Reply<Imported>>>,
    ),
    /// Items of any modality for this node's four stores, in one message (`store_actors::batch`):
    /// the store actor that receives it checks its seal and decodes it once, then hands each
    /// modality's items, typed, to that store's writer thread as one write answered after one group
    /// fsync. One answer per item, in order (a refused item refuses nothing else).
    #[rpc]
    ImportNode(
        Sealed<Vec<(ExportedItem, Fence)>>,
        RpcReplyPort<Sealed<Reply<Vec<Reply<Imported>>>>>,
    ),
    /// The entity's item, if any.
    #[rpc]
    Export(
        Sealed<EntityId>,
        RpcReplyPort<Sealed<Reply<Option<ExportedItem>>>>,
    ),
    /// Remove the entity's item durably, leaving a tombstone, unless the store holds something at
    /// least as new as the registry entry (log index) that removes it.
    #[rpc]
    Remove(
        Sealed<(EntityId, u64)>,
        RpcReplyPort<Sealed<Reply<Removed>>>,
    ),
    /// Purge tombstones written before this time (ms, this node's clock); answers how many.
    #[rpc]
    PurgeTombstones(Sealed<u64>, RpcReplyPort<Sealed<Reply<u64>>>),
    /// The recorded hash of the entity's item.
    #[rpc]
    ItemHash(
        Sealed<EntityId>,
        RpcReplyPort<Sealed<Reply<Option<ContentHash>>>>,
    ),
    /// Digests of the buckets `start..end`.
    #[rpc]
    BucketDigests(
        Sealed<(u16, u16)>,
        RpcReplyPort<Sealed<Reply<Vec<(u16, BucketDigest)>>>>,
    ),
    /// Every (id, hash) in a bucket.
    #[rpc]
    BucketItems(
        Sealed<u16>,
        RpcReplyPort<Sealed<Reply<Vec<(EntityId, ContentHash)>>>>,
    ),
    /// A per-modality query.
    #[rpc]
    Query(Sealed<Query>, RpcReplyPort<Sealed<Reply<Answer>>>),
    /// Keep the item durably in this node's staging (see [`super::staging`]), beside whatever the
    /// store holds for the entity.
    #[rpc]
    Stage(Sealed<ExportedItem>, RpcReplyPort<Sealed<Reply<()>>>),
    /// The staged item of (id, hash), verified.
    #[rpc]
    Staged(
        Sealed<(EntityId, ContentHash)>,
        RpcReplyPort<Sealed<Reply<Option<ExportedItem>>>>,
    ),
    /// Drop these staged items; answers how many were there.
    #[rpc]
    Unstage(
        Sealed<Vec<(EntityId, ContentHash)>>,
        RpcReplyPort<Sealed<Reply<u32>>>,
    ),
    /// A page of the staged items, after the given key.
    #[rpc]
    StagedList(
        Sealed<Option<(ContentHash, EntityId)>>,
        RpcReplyPort<Sealed<Reply<Vec<StagedEntry>>>>,
    ),
}
