//! The typed client of the store actors, for the proxy and the drift checker: find a modality's
//! store on a node, call it with a deadline, get typed errors.

use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{ActorRef, BytesConvertable};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

use verisim_cluster::{Discovery, Keyring, SealError, Sealed};
use verisim_stores::vector::Hit;
use verisim_stores::{BucketDigest, ContentHash, EntityId, ExportedItem, ItemInput, ModalityKind};

pub use super::call_error::StoreCallError;
use super::fence::Fence;
use super::import_queue::ImportBatcher;
use super::merge::merge_top_k;
use super::messages::{Answer, Imported, KnnQuery, Port, Query, Removed, Reply, StoreMsg, kind};
use super::staging::StagedEntry;
use super::{SCOPE, group_name};
use crate::telemetry::{StoreOp, TELEMETRY};

/// How long a caller waits for one store call (an import, a query, a digest) before calling the
/// outcome unknown: long enough for a store busy with a large import, short enough that a client
/// is answered while its own request deadline still runs.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(10);

/// One store actor, with the node it runs on.
#[derive(Debug, Clone)]
pub struct StoreRef {
    pub node: String,
    pub kind: ModalityKind,
    pub actor: ActorRef<StoreMsg>,
    /// Seals requests and checks answers.
    keyring: Arc<Keyring>,
}

impl StoreRef {
    /// One call, timed into the `verisim_store_operation_seconds{store, op}` histogram (as the
    /// caller sees it: the store's mailbox, the work, and the way there and back).
    async fn call<A: Serialize, T: DeserializeOwned + 'static>(
        &self,
        op: &'static str,
        arg: &A,
        msg: fn(Sealed<A>, Port<T>) -> StoreMsg,
        timeout: Duration,
    ) -> Result<T, StoreCallError> {
        self.call_as(op, arg, msg, timeout).await
    }

    /// [`Self::call`] with the argument given in a form `B` that encodes exactly as the message's
    /// `A` (borrowed where `A` owns: `(&ExportedItem, Fence)` for `(ExportedItem, Fence)`), so a
    /// payload is encoded from where it is instead of being copied first.
    async fn call_as<A, B: Serialize, T: DeserializeOwned + 'static>(
        &self,
        op: &'static str,
        arg: &B,
        msg: fn(Sealed<A>, Port<T>) -> StoreMsg,
        timeout: Duration,
    ) -> Result<T, StoreCallError> {
        let started = std::time::Instant::now();
        let r = self.call_untimed(op, arg, msg, timeout).await;
        let label = StoreOp {
            store: self.kind.name(),
            op: op.strip_prefix("store.").unwrap_or(op),
        };
        TELEMETRY
            .store_op
            .get_or_create(&label)
            .observe(started.elapsed().as_secs_f64());
        r
    }

    async fn call_untimed<A, B: Serialize, T: DeserializeOwned + 'static>(
        &self,
        op: &'static str,
        arg: &B,
        msg: fn(Sealed<A>, Port<T>) -> StoreMsg,
        timeout: Duration,
    ) -> Result<T, StoreCallError> {
        let codec = |error| StoreCallError::Codec {
            node: self.node.clone(),
            kind: self.kind,
            error,
        };
        let unreachable = || StoreCallError::Unreachable {
            node: self.node.clone(),
            kind: self.kind,
        };
        let to = node_id(&self.node).ok_or_else(unreachable)?;
        let wire = Sealed::<A>::from_encoded(
            Sealed::seal(op, arg, &self.keyring, to)
                .map_err(codec)?
                .into_bytes(),
        );
        let opened = |reply: Sealed<Reply<T>>| match reply.open(kind::REPLY, &self.keyring) {
            Ok(o) if o.from == to => Ok(o.value),
            Ok(o) => Err(SealError::WrongNode {
                from: to,
                credential: o.from,
            }),
            Err(e) => Err(e),
        };
        match self.actor.call(|port| msg(wire, port), Some(timeout)).await {
            Ok(CallResult::Success(reply)) => match opened(reply).map_err(|error| {
                crate::telemetry::message_refused(kind::REPLY, error.code(), &error.to_string());
                StoreCallError::Seal {
                    node: self.node.clone(),
                    kind: self.kind,
                    error,
                }
            })? {
                Ok(v) => Ok(v),
                Err(refusal) => Err(StoreCallError::Refused {
                    node: self.node.clone(),
                    kind: self.kind,
                    refusal,
                }),
            },
            Ok(CallResult::Timeout) => Err(StoreCallError::Timeout {
                node: self.node.clone(),
                kind: self.kind,
                timeout,
            }),
            Ok(CallResult::SenderError) | Err(_) => Err(unreachable()),
        }
    }

    /// Validates an input and returns the item an import would store, with its hash.
    pub async fn prepare(
        &self,
        input: &ItemInput,
        t: Duration,
    ) -> Result<ExportedItem, StoreCallError> {
        self.call(kind::PREPARE, input, StoreMsg::Prepare, t).await
    }

    /// Stores an item durably after checking its hash, unless the store holds something newer
    /// than `fence` (the registry entry that produced the item).
    pub async fn import(
        &self,
        item: &ExportedItem,
        fence: Fence,
        t: Duration,
    ) -> Result<Imported, StoreCallError> {
        self.call_as(kind::IMPORT, &(item, fence), StoreMsg::Import, t)
            .await
    }

    /// Items of any modality for this store's node, in one message: the store hands each
    /// modality's items to that store of the node (see [`super::batch`]). One answer per item, in
    /// order.
    pub async fn import_node(
        &self,
        items: &[(&ExportedItem, Fence)],
        t: Duration,
    ) -> Result<Vec<Reply<Imported>>, StoreCallError> {
        self.call_as(kind::IMPORT_NODE, &items, StoreMsg::ImportNode, t)
            .await
    }

    pub async fn export(
        &self,
        id: &EntityId,
        t: Duration,
    ) -> Result<Option<ExportedItem>, StoreCallError> {
        self.call(kind::EXPORT, id, StoreMsg::Export, t).await
    }

    /// Removes `id`'s item, leaving a tombstone at `index` (the registry entry that removes it),
    /// unless the store holds something at least as new.
    pub async fn remove(
        &self,
        id: &EntityId,
        index: u64,
        t: Duration,
    ) -> Result<Removed, StoreCallError> {
        self.call(kind::REMOVE, &(id.clone(), index), StoreMsg::Remove, t)
            .await
    }

    /// Purges tombstones written before `before_ms` (this node's clock); answers how many.
    pub async fn purge_tombstones(
        &self,
        before_ms: u64,
        t: Duration,
    ) -> Result<u64, StoreCallError> {
        self.call(
            kind::PURGE_TOMBSTONES,
            &before_ms,
            StoreMsg::PurgeTombstones,
            t,
        )
        .await
    }

    pub async fn item_hash(
        &self,
        id: &EntityId,
        t: Duration,
    ) -> Result<Option<ContentHash>, StoreCallError> {
        self.call(kind::ITEM_HASH, id, StoreMsg::ItemHash, t).await
    }

    pub async fn bucket_digests(
        &self,
        buckets: std::ops::Range<u16>,
        t: Duration,
    ) -> Result<Vec<(u16, BucketDigest)>, StoreCallError> {
        self.call(
            kind::BUCKET_DIGESTS,
            &(buckets.start, buckets.end),
            StoreMsg::BucketDigests,
            t,
        )
        .await
    }

    pub async fn bucket_items(
        &self,
        bucket: u16,
        t: Duration,
    ) -> Result<Vec<(EntityId, ContentHash)>, StoreCallError> {
        self.call(kind::BUCKET_ITEMS, &bucket, StoreMsg::BucketItems, t)
            .await
    }

    pub async fn query(&self, q: &Query, t: Duration) -> Result<Answer, StoreCallError> {
        self.call(kind::QUERY, q, StoreMsg::Query, t).await
    }

    /// Keeps `item` durably in the node's staging.
    pub async fn stage(&self, item: &ExportedItem, t: Duration) -> Result<(), StoreCallError> {
        self.call(kind::STAGE, item, StoreMsg::Stage, t).await
    }

    /// The staged item of (id, hash), verified by the store.
    pub async fn staged(
        &self,
        id: &EntityId,
        hash: ContentHash,
        t: Duration,
    ) -> Result<Option<ExportedItem>, StoreCallError> {
        self.call(kind::STAGED, &(id.clone(), hash), StoreMsg::Staged, t)
            .await
    }

    /// Drops staged items; returns how many were there.
    pub async fn unstage(
        &self,
        items: &[(EntityId, ContentHash)],
        t: Duration,
    ) -> Result<u32, StoreCallError> {
        self.call(kind::UNSTAGE, &items.to_vec(), StoreMsg::Unstage, t)
            .await
    }

    /// A page of staged items after `after`.
    pub async fn staged_list(
        &self,
        after: Option<(ContentHash, EntityId)>,
        t: Duration,
    ) -> Result<Vec<StagedEntry>, StoreCallError> {
        self.call(kind::STAGED_LIST, &after, StoreMsg::StagedList, t)
            .await
    }

    /// k-NN in one store.
    pub async fn knn(&self, q: &KnnQuery, t: Duration) -> Result<Vec<Hit>, StoreCallError> {
        match self.query(&Query::VectorKnn(q.clone()), t).await? {
            Answer::Hits(h) => Ok(h),
            other => Err(StoreCallError::UnexpectedAnswer {
                node: self.node.clone(),
                kind: self.kind,
                asked: "k-NN",
                got: format!("{other:?}").chars().take(40).collect(),
            }),
        }
    }
}

/// The node id of the cluster node named `n<id>`.
fn node_id(name: &str) -> Option<u64> {
    name.strip_prefix('n')?.parse().ok()
}

/// Finds store actors: on this node through ractor's registry, on others through the process
/// groups (`store.<modality>`, scope `verisim`).
#[derive(Debug, Clone)]
pub struct StoreDirectory {
    local_node: String,
    discovery: Option<Discovery>,
    keyring: Arc<Keyring>,
    /// Batched imports per destination node ([`super::batch`]), shared by the clones.
    pub(super) batcher: Arc<ImportBatcher>,
}

impl StoreDirectory {
    /// Across the cluster (`local_node` is this node's cluster name, e.g. `n1`), sealing requests
    /// with `keyring`.
    pub fn new(local_node: impl Into<String>, discovery: Discovery, keyring: Arc<Keyring>) -> Self {
        Self {
            local_node: local_node.into(),
            discovery: Some(discovery),
            keyring,
            batcher: Arc::default(),
        }
    }

    /// This node only (tests, tools without a cluster).
    pub fn local_only(local_node: impl Into<String>, keyring: Arc<Keyring>) -> Self {
        Self {
            local_node: local_node.into(),
            discovery: None,
            keyring,
            batcher: Arc::default(),
        }
    }

    /// A copy that shares everything but the import batcher (for the batcher's own tasks).
    pub(super) fn without_batcher(&self) -> Self {
        Self {
            local_node: self.local_node.clone(),
            discovery: self.discovery.clone(),
            keyring: self.keyring.clone(),
            batcher: Arc::default(),
        }
    }

    /// This node's cluster name.
    pub fn local_node(&self) -> &str {
        &self.local_node
    }

    /// This node's store of `kind`, if it is running.
    pub fn local(&self, kind: ModalityKind) -> Option<StoreRef> {
        super::local_store(kind).map(|cell| StoreRef {
            node: self.local_node.clone(),
            kind,
            actor: cell.into(),
            keyring: self.keyring.clone(),
        })
    }

    /// The store of `kind` on `node`.
    ///
    /// # Errors
    /// [`StoreCallError::Unreachable`] if none is running there or the node is not connected.
    pub fn on(&self, node: &str, kind: ModalityKind) -> Result<StoreRef, StoreCallError> {
        let found = if node == self.local_node {
            self.local(kind)
        } else {
            self.discovery.as_ref().and_then(|d| {
                d.actor_on::<StoreMsg>(SCOPE, &group_name(kind), node)
                    .map(|actor| StoreRef {
                        node: node.to_owned(),
                        kind,
                        actor,
                        keyring: self.keyring.clone(),
                    })
            })
        };
        found.ok_or_else(|| StoreCallError::Unreachable {
            node: node.to_owned(),
            kind,
        })
    }

    /// Every reachable store of `kind`, one per node, ordered by node name.
    pub fn actors_of(&self, kind: ModalityKind) -> Vec<StoreRef> {
        match &self.discovery {
            Some(d) => d
                .members_by_node(SCOPE, &group_name(kind))
                .into_iter()
                .filter_map(|(node, mut cells)| {
                    (cells.len() == 1)
                        .then(|| cells.pop())
                        .flatten()
                        .map(|c| StoreRef {
                            node,
                            kind,
                            actor: c.into(),
                            keyring: self.keyring.clone(),
                        })
                })
                .collect(),
            None => self.local(kind).into_iter().collect(),
        }
    }

    /// Prepares an input on this node's store of its modality.
    pub async fn prepare_local(
        &self,
        input: &ItemInput,
        t: Duration,
    ) -> Result<ExportedItem, StoreCallError> {
        self.on(&self.local_node.clone(), input.modality())?
            .prepare(input, t)
            .await
    }

    /// Imports an item into `node`'s store of its modality (see [`StoreRef::import`]).
    pub async fn import(
        &self,
        node: &str,
        item: &ExportedItem,
        fence: Fence,
        t: Duration,
    ) -> Result<Imported, StoreCallError> {
        self.on(node, item.modality)?.import(item, fence, t).await
    }

    /// Exports `id`'s item of `kind` from `node`.
    pub async fn export(
        &self,
        node: &str,
        kind: ModalityKind,
        id: &EntityId,
        t: Duration,
    ) -> Result<Option<ExportedItem>, StoreCallError> {
        self.on(node, kind)?.export(id, t).await
    }

    /// k-NN on `node`'s vector store.
    pub async fn knn_on(
        &self,
        node: &str,
        q: &KnnQuery,
        t: Duration,
    ) -> Result<Vec<Hit>, StoreCallError> {
        self.on(node, ModalityKind::Vector)?.knn(q, t).await
    }

    /// Scatter-gather k-NN over every reachable vector store, merged into the global top-k
    /// ([`merge_top_k`]). Stores that fail are listed; the merge covers the ones that answered.
    pub async fn knn_all(&self, q: &KnnQuery, t: Duration) -> (Vec<Hit>, Vec<StoreCallError>) {
        let mut calls = tokio::task::JoinSet::new();
        for store in self.actors_of(ModalityKind::Vector) {
            let q = q.clone();
            calls.spawn(async move { store.knn(&q, t).await });
        }
        let mut lists = Vec::new();
        let mut failed = Vec::new();
        while let Some(r) = calls.join_next().await {
            match r {
                Ok(Ok(h)) => lists.push(h),
                Ok(Err(e)) => failed.push(e),
                // A call task cannot panic short of a bug; it is then a store that did not answer.
                Err(_) => {}
            }
        }
        (merge_top_k(lists, q.k as usize), failed)
    }
}
