//! Opening the stores: one fjall [`Database`] per node's stores directory, shared by the four
//! engines, each engine in its own keyspaces (named `<engine>.<concern>`).
//!
//! One database (not four) because fjall's journal is shared by its keyspaces: one directory, one
//! file lock, one journal to fsync, and the OS page cache and fjall block cache are shared.
//! Engines never write to each other's keyspaces, so they can be driven from four actors at once.
//!
//! **Durability.** Every acknowledged write is one `WriteBatch` committed with
//! [`PersistMode::SyncData`] (`fdatasync` of the journal): a batch committed with fjall's default
//! (`Buffer`) sits in OS buffers and is lost on power failure, and one committed without any
//! durability can even be lost on a process crash. `SyncData` rather than `SyncAll` because the journal
//! file's size and blocks are what recovery needs; its mtime is not. Throughput comes from batching
//! (the `*_many` methods put many items behind one fsync), never from weaker persistence.

use std::path::Path;

use fjall::{Database, KeyspaceCreateOptions, PersistMode};

use crate::error::Result;
use crate::{GraphStore, SemanticStore, TensorStore, VectorStore};

/// The persistence mode of every acknowledged write.
pub const PERSIST_MODE: PersistMode = PersistMode::SyncData;

/// Configurable size limits. Anything above a limit is refused with
/// [`crate::StoreError::LimitExceeded`] before anything is written. Deserialises with every field
/// optional (missing ones take the default), as the node config's `[stores.limits]` section.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest vector dimension a collection may declare.
    pub max_vector_dim: usize,
    /// Most vector collections.
    pub max_collections: usize,
    /// Largest number of elements in one tensor.
    pub max_tensor_elements: u64,
    /// Largest tensor payload, in bytes.
    pub max_tensor_bytes: u64,
    /// Largest tensor rank (number of axes).
    pub max_tensor_rank: usize,
    /// Target size of one stored tensor chunk, in bytes.
    pub tensor_chunk_bytes: usize,
    /// Largest encoded annotation (types, properties and proofs), in bytes.
    pub max_annotation_bytes: usize,
    /// Largest encoded property map of a graph node or edge, in bytes.
    pub max_properties_bytes: usize,
    /// Most outgoing edges per entity.
    pub max_out_edges: usize,
    /// Most hops of a traversal or shortest-path search.
    pub max_hops: u32,
    /// Most nodes a traversal or shortest-path search may visit.
    pub max_visited: usize,
    /// Largest `k` of a vector search.
    pub max_k: usize,
    /// Largest HNSW beam width `ef` of a vector search (the requested one, or the collection's
    /// default): a search explores about `ef` nodes per result list, so an unbounded `ef` would let
    /// one query scan the whole graph. A larger `ef` is refused, not clamped, so a caller never gets
    /// a lower recall than it asked for without knowing.
    pub max_ef: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_vector_dim: 4096,
            max_collections: 1024,
            max_tensor_elements: 64 * 1024 * 1024,
            max_tensor_bytes: 256 * 1024 * 1024,
            max_tensor_rank: 8,
            tensor_chunk_bytes: 64 * 1024,
            max_annotation_bytes: 1024 * 1024,
            max_properties_bytes: 64 * 1024,
            max_out_edges: 100_000,
            max_hops: 16,
            max_visited: 1_000_000,
            max_k: 10_000,
            max_ef: 10_000,
        }
    }
}

/// How to open the stores.
#[derive(Clone, Debug, Default)]
pub struct StoreConfig {
    /// Size limits.
    pub limits: Limits,
    /// fjall block cache, in bytes (`None`: fjall's default).
    pub cache_bytes: Option<u64>,
}

/// The four engines of one node, sharing one fjall database.
pub struct Stores {
    /// The fjall database (one per directory; opening a second handle in another process fails on
    /// its file lock).
    pub db: Database,
    /// Graph engine.
    pub graph: GraphStore,
    /// Vector engine.
    pub vector: VectorStore,
    /// Tensor engine.
    pub tensor: TensorStore,
    /// Semantic engine.
    pub semantic: SemanticStore,
}

impl Stores {
    /// Opens (or creates) the stores in `dir`. Vector ANN indexes are rebuilt from fjall here.
    ///
    /// # Errors
    /// [`crate::StoreError::Storage`] if fjall cannot open the directory (including: another process
    /// holds it), or a stored record is corrupt.
    pub fn open(dir: impl AsRef<Path>, config: &StoreConfig) -> Result<Self> {
        let db = open_db(dir, config)?;
        Ok(Self {
            graph: GraphStore::open(&db, &config.limits)?,
            vector: VectorStore::open(&db, &config.limits)?,
            tensor: TensorStore::open(&db, &config.limits)?,
            semantic: SemanticStore::open(&db, &config.limits)?,
            db,
        })
    }
}

impl Stores {
    /// Sets the write durability of all four engines.
    pub fn set_durability(&mut self, durability: Durability) {
        use crate::Modality;
        self.graph.set_durability(durability);
        self.vector.set_durability(durability);
        self.tensor.set_durability(durability);
        self.semantic.set_durability(durability);
    }
}

/// Opens the fjall database alone (the engines' `open` take it).
///
/// # Errors
/// [`crate::StoreError::Storage`] from fjall.
pub fn open_db(dir: impl AsRef<Path>, config: &StoreConfig) -> Result<Database> {
    let mut b = Database::builder(dir.as_ref());
    if let Some(c) = config.cache_bytes {
        b = b.cache_size(c);
    }
    Ok(b.open()?)
}

pub(crate) fn keyspace(db: &Database, name: &str) -> Result<fjall::Keyspace> {
    Ok(db.keyspace(name, KeyspaceCreateOptions::default)?)
}

/// A write batch that commits with [`PERSIST_MODE`].
pub(crate) fn durable_batch(db: &Database) -> fjall::OwnedWriteBatch {
    db.batch().durability(Some(PERSIST_MODE))
}

/// How an engine commits the write batches of its data-changing calls.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Each call's batch is fsynced ([`PERSIST_MODE`]) before the call returns: a returned write is
    /// durable. The default.
    #[default]
    EachWrite,
    /// A call's batch goes to the journal without an fsync and returns at once; the write is **not
    /// durable yet**. The caller acknowledges it only after a later
    /// `Database::persist(PERSIST_MODE)` of the same database returned: one fsync of the shared
    /// journal covers every write that returned before it, from any engine (group commit). A
    /// process crash before that persist may lose the write.
    Deferred,
}

impl Durability {
    /// A write batch committed as this mode says.
    pub(crate) fn batch(self, db: &Database) -> fjall::OwnedWriteBatch {
        match self {
            Durability::EachWrite => durable_batch(db),
            Durability::Deferred => db.batch().durability(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_opened_once_and_reopens_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        let s = Stores::open(dir.path(), &StoreConfig::default()).unwrap();
        assert!(matches!(
            Stores::open(dir.path(), &StoreConfig::default()),
            Err(crate::StoreError::Storage(fjall::Error::Locked))
        ));
        drop(s);
        Stores::open(dir.path(), &StoreConfig::default()).unwrap();
    }
}
