//! An engine's keyspaces in the shared fjall database, named `<engine>.<concern>` (e.g.
//! `graph.node`, `vector.hash`); an engine opens its own and never writes to another's.

use fjall::{Database, KeyspaceCreateOptions};

use crate::error::Result;

/// Opens (or creates) the keyspace `name`.
pub(crate) fn open(db: &Database, name: &str) -> Result<fjall::Keyspace> {
    Ok(db.keyspace(name, KeyspaceCreateOptions::default)?)
}
