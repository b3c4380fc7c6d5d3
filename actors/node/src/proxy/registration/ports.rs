//! What the registration service needs of the registry and of the stores, as two narrow traits,
//! and their implementations on the node's real parts ([`ProxyState`] and [`StoreDirectory`]).
//! The service's unit tests implement them with fakes (`tests.rs`).

use std::future::Future;

use verisim_stores::{EntityId, ExportedItem, ItemInput, ModalityKind};

use crate::consensus::Applied;
use crate::proxy::ProxyState;
use crate::proxy::error::ApiError;
use crate::proxy::staging;
use crate::registry::{Command, EntityMeta, NodeName};
use crate::store_actors::{Fence, StoreCallError, StoreDirectory};

use crate::store_actors::STORE_TIMEOUT;

/// The registry as the service sees it: this node's replica to read, the quorum to commit to.
pub trait RegistryPort: Clone + Send + Sync + 'static {
    /// The entity as this node's replica has applied it.
    fn entity(&self, id: &EntityId) -> Option<EntityMeta>;
    /// The current voters, by node name: where new entities are placed.
    fn voters(&self) -> Vec<NodeName>;
    /// Commits a command through the quorum; returns once this node has applied it.
    fn commit(&self, command: Command) -> impl Future<Output = Result<Applied, ApiError>> + Send;
    /// Waits until this node's replica includes every write acknowledged before the call.
    fn read_barrier(&self) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// Test-only fault hook: whether this write is to commit and then stop, undistributed, as if
    /// the node died right after the commit (`staging::FAULT_SKIP_DISTRIBUTION`).
    fn skip_this_distribution(&self) -> bool {
        false
    }
}

/// The stores as the service sees them: this node's, to prepare and stage, and every replica's,
/// to import into and remove from.
pub trait StorePort: Clone + Send + Sync + 'static {
    /// Validates an input on this node's store and returns the item it would store, hashed.
    fn prepare(
        &self,
        input: ItemInput,
    ) -> impl Future<Output = Result<ExportedItem, StoreCallError>> + Send;
    /// Keeps the items durably in this node's staging (before any hash of them can commit).
    fn stage_local(
        &self,
        items: &[ExportedItem],
    ) -> impl Future<Output = Result<(), ApiError>> + Send;
    /// Drops this node's staged copies in the background.
    fn unstage_local_later(&self, items: &[ExportedItem]);
    /// Imports an item into `node`'s store, fenced by the registry entry that produced it.
    fn import(
        &self,
        node: &str,
        item: &ExportedItem,
        fence: Fence,
    ) -> impl Future<Output = Result<(), StoreCallError>> + Send;
    /// Removes `id`'s item of modality `kind` from `node`'s store, fenced by the removing entry.
    fn remove(
        &self,
        node: &str,
        kind: ModalityKind,
        id: &EntityId,
        index: u64,
    ) -> impl Future<Output = Result<(), StoreCallError>> + Send;
}

impl RegistryPort for ProxyState {
    fn entity(&self, id: &EntityId) -> Option<EntityMeta> {
        self.replica.read().state.entity(id).cloned()
    }

    fn voters(&self) -> Vec<NodeName> {
        self.replica
            .read()
            .membership
            .voters
            .iter()
            .filter_map(|&v| NodeName::new(crate::consensus::endpoint::node_name(v)).ok())
            .collect()
    }

    fn commit(&self, command: Command) -> impl Future<Output = Result<Applied, ApiError>> + Send {
        ProxyState::commit(self, command)
    }

    fn read_barrier(&self) -> impl Future<Output = Result<(), ApiError>> + Send {
        ProxyState::read_barrier(self)
    }

    fn skip_this_distribution(&self) -> bool {
        staging::skip_this_distribution(self)
    }
}

impl StorePort for StoreDirectory {
    async fn prepare(&self, input: ItemInput) -> Result<ExportedItem, StoreCallError> {
        self.prepare_local(&input, STORE_TIMEOUT).await
    }

    async fn stage_local(&self, items: &[ExportedItem]) -> Result<(), ApiError> {
        staging::stage_local(self, items).await
    }

    fn unstage_local_later(&self, items: &[ExportedItem]) {
        staging::unstage_local_later(self, items);
    }

    async fn import(
        &self,
        node: &str,
        item: &ExportedItem,
        fence: Fence,
    ) -> Result<(), StoreCallError> {
        StoreDirectory::import(self, node, item, fence, STORE_TIMEOUT)
            .await
            .map(|_| ())
    }

    async fn remove(
        &self,
        node: &str,
        kind: ModalityKind,
        id: &EntityId,
        index: u64,
    ) -> Result<(), StoreCallError> {
        self.on(node, kind)?
            .remove(id, index, STORE_TIMEOUT)
            .await
            .map(|_| ())
    }
}
