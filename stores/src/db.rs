//! Opening the stores: one fjall [`Database`] per node's stores directory, shared by the four
//! engines, each engine in its own keyspaces (named `<engine>.<concern>`; see the `keyspace`
//! module).
//!
//! One database (not four) because fjall's journal is shared by its keyspaces: one directory, one
//! file lock, one journal to fsync, and the OS page cache and fjall block cache are shared.
//! Engines never write to each other's keyspaces, so they can be driven from four actors at once.
//!
//! This is the facade on top: it depends on the engines, never the other way round. What the
//! engines share with it (size limits, write durability, keyspaces) lives in lower modules and is
//! re-exported here under its old paths.

use std::path::Path;

use fjall::Database;

pub use crate::durability::{Durability, PERSIST_MODE};
use crate::error::Result;
pub use crate::limits::Limits;
use crate::{GraphStore, SemanticStore, TensorStore, VectorStore};

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
