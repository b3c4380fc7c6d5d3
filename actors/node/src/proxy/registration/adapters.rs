//! The ports (`proxy::ports`) on the node's real parts: the registry through [`ProxyState`] (its
//! replica and `RegistryClient`), the stores through [`StoreDirectory`] (the store actors, local
//! or across the cluster). The service's unit tests implement them with fakes (`tests.rs`).

use std::future::Future;
use std::sync::Arc;

use verisim_stores::{ContentHash, EntityId, ExportedItem, ItemInput, ModalityKind};

use crate::consensus::Applied;
use crate::proxy::ProxyState;
use crate::proxy::error::ApiError;
use crate::proxy::ports::{RegistryPort, StorePort};
use crate::proxy::staging;
use crate::registry::{Command, EntityMeta, NodeName};
use crate::store_actors::{Fence, Imported, StoreCallError, StoreDirectory};

use crate::store_actors::STORE_TIMEOUT;

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

    fn members(&self) -> Vec<String> {
        let replica = self.replica.read();
        replica
            .membership
            .voters
            .iter()
            .chain(replica.membership.learners.iter())
            .map(|&n| crate::consensus::endpoint::node_name(n))
            .collect()
    }

    fn local_node(&self) -> String {
        crate::consensus::endpoint::node_name(self.id)
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
    ) -> Result<Imported, StoreCallError> {
        StoreDirectory::import(self, node, item, fence, STORE_TIMEOUT).await
    }

    async fn import_entity(
        &self,
        node: &str,
        items: Arc<[ExportedItem]>,
        fence: Fence,
    ) -> Result<(), StoreCallError> {
        StoreDirectory::import_entity(self, node, items, fence).await
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

    async fn export(
        &self,
        node: &str,
        kind: ModalityKind,
        id: &EntityId,
    ) -> Result<Option<ExportedItem>, StoreCallError> {
        StoreDirectory::export(self, node, kind, id, STORE_TIMEOUT).await
    }

    async fn item_hash(
        &self,
        node: &str,
        kind: ModalityKind,
        id: &EntityId,
    ) -> Result<Option<ContentHash>, StoreCallError> {
        self.on(node, kind)?.item_hash(id, STORE_TIMEOUT).await
    }

    async fn staged(
        &self,
        node: &str,
        kind: ModalityKind,
        id: &EntityId,
        hash: ContentHash,
    ) -> Result<Option<ExportedItem>, StoreCallError> {
        self.on(node, kind)?.staged(id, hash, STORE_TIMEOUT).await
    }
}
