//! The registry as this node has applied it, shared with its readers.
//!
//! The consensus actor is the only writer (it applies committed entries). The proxy reads it for
//! trust-window lookups and the snapshotter clones it to write a snapshot, both without a round trip
//! through the actor's mailbox.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use verisim_raft::{Index, Membership, Term};

use crate::registry::RegistryState;

/// Applied registry state and the log position it reflects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replica {
    pub state: RegistryState,
    /// Index and term of the last entry applied (of any kind: commands, no-ops, configuration).
    pub applied_index: Index,
    pub applied_term: Term,
    /// The membership as of `applied_index`.
    pub membership: Membership,
}

/// A replica shared between the consensus actor (writer) and readers.
#[derive(Debug, Clone, Default)]
pub struct SharedReplica(Arc<RwLock<Replica>>, Arc<tokio::sync::Notify>);

impl SharedReplica {
    pub fn new(replica: Replica) -> Self {
        Self(Arc::new(RwLock::new(replica)), Arc::default())
    }

    /// Waits until the replica has applied `index` or `deadline` passes; `false` on the deadline.
    pub async fn applied(&self, index: Index, deadline: tokio::time::Instant) -> bool {
        loop {
            // Registered before the check, so an apply between the check and the wait wakes it.
            let notified = self.1.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.read().applied_index >= index {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.read().applied_index >= index;
            }
        }
    }

    /// Wakes every [`SharedReplica::applied`] waiter (the consensus actor, after applying).
    pub(crate) fn notify_applied(&self) {
        self.1.notify_waiters();
    }

    /// Read access. A writer that panicked mid-apply is followed by a supervisor restart that rebuilds
    /// the replica from disk, so a poisoned lock is still safe to read for the moment in between.
    pub fn read(&self) -> RwLockReadGuard<'_, Replica> {
        self.0.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, Replica> {
        self.0.write().unwrap_or_else(|p| p.into_inner())
    }
}
