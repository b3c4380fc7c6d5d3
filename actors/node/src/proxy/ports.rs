//! What the registration service (`proxy::registration`) and the staged-copy repair
//! (`proxy::staging`) need of the registry and of the stores, as two narrow traits. The node's real
//! parts implement them (`registration::adapters`: [`ProxyState`](super::ProxyState) and
//! [`StoreDirectory`](crate::store_actors::StoreDirectory)); the service's unit tests implement
//! them with fakes.

use std::future::Future;
use std::sync::Arc;

use verisim_stores::{ContentHash, EntityId, ExportedItem, ItemInput, ModalityKind};

use super::error::ApiError;
use crate::consensus::Applied;
use crate::registry::{Command, EntityMeta, NodeName};
use crate::store_actors::{Fence, Imported, StoreCallError};

/// The registry as the service sees it: this node's replica to read, the quorum to commit to.
pub trait RegistryPort: Clone + Send + Sync + 'static {
    /// The entity as this node's replica has applied it.
    fn entity(&self, id: &EntityId) -> Option<EntityMeta>;
    /// The current voters, by node name: where new entities are placed.
    fn voters(&self) -> Vec<NodeName>;
    /// Every member (voters and learners), by node name: where staged copies may be.
    fn members(&self) -> Vec<String>;
    /// This node's name: asked first when reading.
    fn local_node(&self) -> String;
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
/// to import into, read from and remove from.
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
    ) -> impl Future<Output = Result<Imported, StoreCallError>> + Send;
    /// Imports one entity's items into `node`'s stores, fenced by the registry entry that produced
    /// them; `Ok` once all of them are durable there (or superseded by something newer). The node's
    /// stores batch it with other writes to the same node (`store_actors::batch`); by default, one
    /// [`StorePort::import`] per item, concurrently.
    fn import_entity(
        &self,
        node: &str,
        items: Arc<[ExportedItem]>,
        fence: Fence,
    ) -> impl Future<Output = Result<(), StoreCallError>> + Send {
        async move {
            let imports = items.iter().map(|item| self.import(node, item, fence));
            futures::future::join_all(imports)
                .await
                .into_iter()
                .find_map(Result::err)
                .map_or(Ok(()), Err)
        }
    }
    /// Removes `id`'s item of modality `kind` from `node`'s store, fenced by the removing entry.
    fn remove(
        &self,
        node: &str,
        kind: ModalityKind,
        id: &EntityId,
        index: u64,
    ) -> impl Future<Output = Result<(), StoreCallError>> + Send;
    /// `id`'s item of modality `kind` as `node`'s store holds it (verified against its hash by
    /// the store), if it holds one.
    fn export(
        &self,
        node: &str,
        kind: ModalityKind,
        id: &EntityId,
    ) -> impl Future<Output = Result<Option<ExportedItem>, StoreCallError>> + Send;
    /// The hash of `id`'s item of modality `kind` on `node`, if it holds one.
    fn item_hash(
        &self,
        node: &str,
        kind: ModalityKind,
        id: &EntityId,
    ) -> impl Future<Output = Result<Option<ContentHash>, StoreCallError>> + Send;
    /// The copy of `id`'s item with `hash` staged on `node`, if that node staged one.
    fn staged(
        &self,
        node: &str,
        kind: ModalityKind,
        id: &EntityId,
        hash: ContentHash,
    ) -> impl Future<Output = Result<Option<ExportedItem>, StoreCallError>> + Send;
}
