//! Write durability: how an engine commits the write batch of a data-changing call.
//!
//! Every acknowledged write is one `WriteBatch` committed with
//! [`PersistMode::SyncData`] (`fdatasync` of the journal): a batch committed with fjall's default
//! (`Buffer`) sits in OS buffers and is lost on power failure, and one committed without any
//! durability can even be lost on a process crash. `SyncData` rather than `SyncAll` because the journal
//! file's size and blocks are what recovery needs; its mtime is not. Throughput comes from batching
//! (the `*_many` methods put many items behind one fsync), never from weaker persistence.
//!
//! Below the engines and the [`crate::db`] facade, which re-exports [`Durability`] and
//! [`PERSIST_MODE`] under their old paths.

use fjall::{Database, PersistMode};

/// The persistence mode of every acknowledged write.
pub const PERSIST_MODE: PersistMode = PersistMode::SyncData;

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
