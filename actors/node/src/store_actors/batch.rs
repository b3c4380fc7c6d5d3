//! Store imports batched per destination node (issue 15).
//!
//! A registration's four items go to each replica node. Sent one import per item and store, that
//! is four sealed messages (and four answers) per replica per registration. Here the caller's side
//! ([`StoreDirectory::import_entity`]) queues an entity's items for their node; one task per
//! destination node takes everything queued there and sends it as **one** sealed
//! [`StoreMsg::ImportNode`](super::StoreMsg::ImportNode), with at most [`IN_FLIGHT`] such batches
//! on their way at a time, so under load the writes that arrive meanwhile share the next message
//! and under no load a write leaves at once.
//!
//! On the receiving node, the store actor that gets the batch checks its seal and decodes it (once,
//! for every item in it) and hands each modality's items, typed, to that store of its node
//! ([`import_here`], through the path each store actor registers, [`ImportSink`]): one job of the
//! store's writer thread, answered after one group fsync. Every item keeps its own fence, checks and answer:
//! a refused item refuses nothing else, and an entity counts as imported on a node only when all
//! of its items are.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Semaphore, mpsc, oneshot};
use verisim_stores::{ExportedItem, ModalityKind};

use super::MODALITIES;
use super::client::{STORE_TIMEOUT, StoreCallError, StoreDirectory, StoreRef};
use super::fence::Fence;
use super::import_queue::Pending;
use super::messages::{Imported, Reply, StoreRefusal, StoreRefusalCode};

/// Payload bytes of an entity above which its items are not batched but sent one import each (as
/// before batching): keeps every batch far below the 8 MiB message limit.
pub const BATCH_BYTES: usize = 1 << 20;

/// Batches to one node on their way at once; writes queued meanwhile wait for the next.
pub const IN_FLIGHT: usize = 2;

/// Items with their fences, as an `ImportNode` carries them.
type Batch = Vec<(ExportedItem, Fence)>;

fn payload_bytes(items: &[ExportedItem]) -> usize {
    items.iter().map(|i| i.payload.0.len()).sum()
}

impl StoreDirectory {
    /// Imports one entity's items (of any modalities) into `node`'s stores, fenced by the registry
    /// entry that produced them, batched with the other writes to that node. `Ok` once every item
    /// is durable there or the store holds something newer (a newer version or removal).
    ///
    /// # Errors
    /// The first item's refusal, or why the batch could not be delivered.
    pub async fn import_entity(
        &self,
        node: &str,
        items: Arc<[ExportedItem]>,
        fence: Fence,
    ) -> Result<(), StoreCallError> {
        if payload_bytes(&items) > BATCH_BYTES {
            return self.import_one_by_one(node, &items, fence).await;
        }
        let (done, answer) = oneshot::channel();
        let pending = Pending { items, fence, done };
        if self.queue_to(node).send(pending).is_err() {
            return Err(unreachable(node));
        }
        answer.await.unwrap_or_else(|_| Err(unreachable(node)))
    }

    /// Each item in a call of its own, concurrently (the four stores' writes share a group fsync).
    async fn import_one_by_one(
        &self,
        node: &str,
        items: &[ExportedItem],
        fence: Fence,
    ) -> Result<(), StoreCallError> {
        let imports = items
            .iter()
            .map(|item| self.import(node, item, fence, STORE_TIMEOUT));
        futures::future::join_all(imports)
            .await
            .into_iter()
            .find_map(Result::err)
            .map_or(Ok(()), Err)
    }

    /// The queue of `node`'s batches, started on first use (again if its task is gone).
    fn queue_to(&self, node: &str) -> mpsc::UnboundedSender<Pending> {
        let mut queues = self
            .batcher
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(q) = queues.get(node).filter(|q| !q.is_closed()) {
            return q.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        // The task gets a directory of its own, without this batcher: no cycle keeps it alive.
        tokio::spawn(send_batches(self.without_batcher(), node.to_owned(), rx));
        queues.insert(node.to_owned(), tx.clone());
        tx
    }
}

/// Takes what is queued for `node` as one batch whenever fewer than [`IN_FLIGHT`] are on their way.
async fn send_batches(dir: StoreDirectory, node: String, mut rx: mpsc::UnboundedReceiver<Pending>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut bytes = payload_bytes(&first.items);
        let mut batch = vec![first];
        while bytes < BATCH_BYTES {
            match rx.try_recv() {
                Ok(p) => {
                    bytes += payload_bytes(&p.items);
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let (dir, node) = (dir.clone(), node.clone());
        tokio::spawn(async move {
            send_batch(&dir, &node, batch).await;
            drop(slot);
        });
    }
}

/// Sends one batch to `node` and answers each entity of it from its items' answers.
async fn send_batch(dir: &StoreDirectory, node: &str, batch: Vec<Pending>) {
    let flat: Vec<(&ExportedItem, Fence)> = batch
        .iter()
        .flat_map(|p| p.items.iter().map(move |i| (i, p.fence)))
        .collect();
    let total = flat.len();
    let answers = match receiver_on(dir, node) {
        Ok(store) => store.import_node(&flat, STORE_TIMEOUT).await,
        Err(e) => Err(e),
    };
    drop(flat);
    match answers {
        Ok(answers) if answers.len() == total => {
            let mut answers = answers.into_iter();
            for p in batch {
                let result = p
                    .items
                    .iter()
                    .zip(answers.by_ref())
                    .find_map(|(item, answer)| answer.err().map(|r| (item.modality, r)))
                    .map_or(Ok(()), |(kind, refusal)| {
                        Err(StoreCallError::Refused {
                            node: node.to_owned(),
                            kind,
                            refusal,
                        })
                    });
                let _ = p.done.send(result);
            }
        }
        Ok(answers) => {
            let e = StoreCallError::UnexpectedAnswer {
                node: node.to_owned(),
                kind: ModalityKind::Graph,
                asked: "batched import",
                got: format!("{} answers for {total} items", answers.len()),
            };
            for p in batch {
                let _ = p.done.send(Err(e.clone()));
            }
        }
        Err(e) => {
            for p in batch {
                let _ = p.done.send(Err(e.clone()));
            }
        }
    }
}

/// The store actor on `node` that takes its batches: the first of the four that is reachable.
fn receiver_on(dir: &StoreDirectory, node: &str) -> Result<StoreRef, StoreCallError> {
    MODALITIES
        .into_iter()
        .find_map(|kind| dir.on(node, kind).ok())
        .ok_or_else(|| unreachable(node))
}

fn unreachable(node: &str) -> StoreCallError {
    StoreCallError::Unreachable {
        node: node.to_owned(),
        kind: ModalityKind::Graph,
    }
}

/// A store's typed import path on its own node (`actor::import_sink`): takes a batch of its
/// modality's items for its writer thread and returns where their answers will come, or `None`
/// when that store incarnation has stopped.
pub(super) type ImportSink = dyn Fn(Vec<(ExportedItem, Fence)>) -> Option<oneshot::Receiver<Reply<Vec<Reply<Imported>>>>>
    + Send
    + Sync;

/// This process's stores' import paths, by modality (the node's one store of each; a restarted
/// actor replaces its predecessor's).
static SINKS: Mutex<BTreeMap<ModalityKind, Arc<ImportSink>>> = Mutex::new(BTreeMap::new());

pub(super) fn register_sink(kind: ModalityKind, sink: Arc<ImportSink>) {
    SINKS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(kind, sink);
}

fn sink(kind: ModalityKind) -> Option<Arc<ImportSink>> {
    SINKS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&kind)
        .cloned()
}

/// The receiving side of a batch (its seal checked and decoded once): each modality's items go to
/// this node's store of that modality as one write of its writer thread, the four concurrently,
/// with no further encoding. One answer per item, in order; a store that has stopped or does not
/// answer in time refuses its own items only.
pub(super) async fn import_here(items: Vec<(ExportedItem, Fence)>) -> Vec<Reply<Imported>> {
    let total = items.len();
    let mut groups: BTreeMap<ModalityKind, (Vec<usize>, Batch)> = BTreeMap::new();
    for (at, item) in items.into_iter().enumerate() {
        let group = groups.entry(item.0.modality).or_default();
        group.0.push(at);
        group.1.push(item);
    }
    let calls = groups.into_iter().map(|(kind, (at, items))| async move {
        let answers = match sink(kind).and_then(|s| s(items)) {
            Some(rx) => match tokio::time::timeout(STORE_TIMEOUT, rx).await {
                Ok(Ok(answers)) => answers,
                Ok(Err(_)) => Err(unavailable(&format!(
                    "the {kind:?} store stopped before answering"
                ))),
                Err(_) => Err(unavailable(&format!(
                    "the {kind:?} store did not answer within {STORE_TIMEOUT:?}"
                ))),
            },
            None => Err(unavailable(&format!("no {kind:?} store is running"))),
        };
        (at, answers)
    });
    let mut out: Vec<Option<Reply<Imported>>> = (0..total).map(|_| None).collect();
    for (at, answers) in futures::future::join_all(calls).await {
        match answers {
            Ok(answers) if answers.len() == at.len() => {
                for (i, answer) in at.into_iter().zip(answers) {
                    out[i] = Some(answer);
                }
            }
            Ok(answers) => {
                let why = format!("{} answers for {} items", answers.len(), at.len());
                for i in at {
                    out[i] = Some(Err(unavailable(&why)));
                }
            }
            Err(refusal) => {
                for i in at {
                    out[i] = Some(Err(refusal.clone()));
                }
            }
        }
    }
    out.into_iter()
        .map(|a| a.unwrap_or_else(|| Err(unavailable("no answer for the item"))))
        .collect()
}

fn unavailable(why: &str) -> StoreRefusal {
    StoreRefusal::new(StoreRefusalCode::Unavailable, false, why)
}
