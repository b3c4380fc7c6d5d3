//! The store actor: one per modality per node, owning its engine.
//!
//! Engine calls block (fjall I/O, fsync), so they never run on the actor's task. Reads run
//! concurrently under a read lock on tokio's blocking pool and answer from there. Writes (import,
//! remove) go, in mailbox order, to the incarnation's writer thread ([`super::writer`]), which
//! applies everything queued in order (the engine lock taken per write); with a [`GroupSync`] (as in the node) they are
//! committed to the journal without an fsync and answered after the node's next group fsync, which
//! covers every write queued meanwhile from all four stores. A `gate` shared by all incarnations
//! of the actor is held by every write batch and by `pre_start`, so writes still finishing for a
//! killed incarnation complete before its successor opens the engine.

use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use fjall::Database;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{info, warn};
use verisim_cluster::{Keyring, Opened, SealError, Sealed};
use verisim_stores::ExportedItem;

use super::batch::ImportSink;
use super::engine::Engine;
use super::fence::{Admit, Fence, Fences};
use super::group_sync::{Ack, Durability, GroupSync};
use super::messages::{Imported, Removed, Reply, StoreMsg, StoreRefusal, StoreRefusalCode, kind};
use super::settings::StoreSetup;
use super::staging::Staging;
use super::writer::{Job, Writer};
use super::{SCOPE, group_name};

/// The actor; `E` is its engine.
pub struct StoreActor<E>(PhantomData<fn() -> E>);

impl<E> StoreActor<E> {
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

impl<E> Default for StoreActor<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> Clone for StoreActor<E> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

/// What a store actor starts from (cloned for every incarnation).
#[derive(Clone)]
pub struct StoreActorArgs {
    /// The node's stores database, shared by the four engines.
    pub db: Database,
    pub setup: Arc<StoreSetup>,
    /// Shared by every incarnation of this actor (see the module docs).
    pub gate: Arc<Mutex<()>>,
    /// Join the process group `store.<modality>` (off for tests that run several stores of one
    /// modality in one process).
    pub join_group: bool,
    /// Group commit of writes (`None`: every write fsyncs on its own before it is answered).
    pub group_sync: Option<Arc<GroupSync>>,
    /// Checks who sent each request and seals the answers (see `verisim_cluster::seal`).
    pub keyring: Arc<Keyring>,
}

impl StoreActorArgs {
    pub fn new(db: Database, setup: Arc<StoreSetup>, keyring: Arc<Keyring>) -> Self {
        Self {
            db,
            setup,
            gate: Arc::new(Mutex::new(())),
            join_group: true,
            group_sync: None,
            keyring,
        }
    }

    /// Writes wait for `sync`'s group fsync instead of fsyncing one by one.
    pub fn with_group_sync(mut self, sync: Arc<GroupSync>) -> Self {
        self.group_sync = Some(sync);
        self
    }
}

pub struct StoreState<E> {
    engine: Arc<RwLock<E>>,
    staging: Staging,
    fences: Fences,
    gate: Arc<Mutex<()>>,
    /// The only strong reference: the thread stops once the state is dropped.
    writer: Arc<Writer<E>>,
    keyring: Arc<Keyring>,
}

fn internal(what: impl std::fmt::Display) -> StoreRefusal {
    StoreRefusal::new(StoreRefusalCode::Internal, false, what.to_string())
}

/// Where the answer to one request goes: the node that sealed it, through the request's port.
struct Answer<T> {
    keyring: Arc<Keyring>,
    to: u64,
    port: RpcReplyPort<Sealed<Reply<T>>>,
}

impl<T: Serialize> Answer<T> {
    /// Seals and sends a reply; a reply too large for the wire becomes a refusal saying so.
    fn send(self, reply: Reply<T>) {
        let seal = |r: &Reply<T>| Sealed::seal(kind::REPLY, r, &self.keyring, self.to);
        let wire = seal(&reply).or_else(|e| {
            Sealed::seal(
                kind::REPLY,
                &Err::<T, _>(StoreRefusal::new(
                    StoreRefusalCode::BadMessage,
                    true,
                    format!("the answer cannot be sent: {e}"),
                )),
                &self.keyring,
                self.to,
            )
        });
        match wire {
            Ok(w) => {
                let _ = self.port.send(w);
            }
            Err(e) => warn!(error = %e, "store reply not encodable"),
        }
    }
}

/// Opens a request: its argument (or why it does not decode) and where to answer. `None` when the
/// seal does not prove its sender: counted, logged, and left unanswered.
fn open<A: DeserializeOwned, T>(
    keyring: &Arc<Keyring>,
    kind: &'static str,
    wire: &Sealed<A>,
    port: RpcReplyPort<Sealed<Reply<T>>>,
) -> Option<(Result<A, StoreRefusal>, Answer<T>)> {
    let answer = |to| Answer {
        keyring: keyring.clone(),
        to,
        port,
    };
    match wire.open(kind, keyring) {
        Ok(Opened { from, value }) => Some((Ok(value), answer(from))),
        // Sealed by a node, but not what the request takes: answered, so its caller learns why.
        Err(SealError::Malformed(e)) if wire.claimed_sender().is_some() => {
            let refusal = StoreRefusal::new(StoreRefusalCode::BadMessage, true, e);
            Some((
                Err(refusal),
                answer(wire.claimed_sender().unwrap_or_default()),
            ))
        }
        Err(e) => {
            crate::telemetry::message_refused(kind, e.code(), &e.to_string());
            None
        }
    }
}

impl<E: Engine> StoreState<E> {
    /// Runs a read on the blocking pool and answers from there.
    fn read<A, T>(
        &self,
        kind: &'static str,
        arg: Sealed<A>,
        port: RpcReplyPort<Sealed<Reply<T>>>,
        f: fn(&E, A) -> Reply<T>,
    ) where
        A: DeserializeOwned + Send + 'static,
        T: Serialize + Send + 'static,
    {
        let engine = self.engine.clone();
        let keyring = self.keyring.clone();
        tokio::task::spawn_blocking(move || {
            let Some((arg, answer)) = open(&keyring, kind, &arg, port) else {
                return;
            };
            let reply = arg.and_then(|a| match engine.read() {
                Ok(e) => f(&e, a),
                Err(_) => Err(internal("the engine is poisoned; the actor restarts")),
            });
            answer.send(reply);
        });
    }

    /// Runs a blocking call that needs no engine on the blocking pool and answers from there.
    fn blocking<A, T>(
        &self,
        kind: &'static str,
        arg: Sealed<A>,
        port: RpcReplyPort<Sealed<Reply<T>>>,
        f: impl FnOnce(A) -> Reply<T> + Send + 'static,
    ) where
        A: DeserializeOwned + Send + 'static,
        T: Serialize + Send + 'static,
    {
        let keyring = self.keyring.clone();
        tokio::task::spawn_blocking(move || {
            if let Some((arg, answer)) = open(&keyring, kind, &arg, port) {
                answer.send(arg.and_then(f));
            }
        });
    }

    /// Queues a write for this incarnation's writer thread (see [`super::writer`]) and returns at
    /// once; with `durable`, the answer is sent once the write is durable (else at once). Writes
    /// run in mailbox order.
    fn write_with<A, T>(
        &self,
        kind: &'static str,
        arg: Sealed<A>,
        port: RpcReplyPort<Sealed<Reply<T>>>,
        durable: bool,
        f: impl FnOnce(&mut E, A) -> Reply<T> + Send + 'static,
    ) where
        A: DeserializeOwned + Send + 'static,
        T: Serialize + Send + 'static,
    {
        let Some((arg, answer)) = open(&self.keyring, kind, &arg, port) else {
            return;
        };
        let a = match arg {
            Ok(a) => a,
            Err(r) => {
                answer.send(Err(r));
                return;
            }
        };
        let job: Job<E> = Box::new(move |engine: &mut E| {
            let reply = f(engine, a);
            // A refusal wrote nothing: it needs no fsync.
            let wrote = durable && reply.is_ok();
            let ack: Ack = Box::new(move |durable| match durable {
                Ok(()) => answer.send(reply),
                Err(why) => answer.send(Err(internal(why))),
            });
            (wrote, ack)
        });
        if !self.writer.push(job) {
            warn!(modality = ?E::KIND, "write dropped: the writer stopped after an engine panic");
        }
    }
}

/// One fenced import: refused when the item is of another modality (before its fence is
/// touched), skipped when the store holds something newer, else the fence and then the item.
fn import_one<E: Engine>(
    e: &mut E,
    fences: &Fences,
    item: &ExportedItem,
    fence: Fence,
) -> Reply<Imported> {
    if item.modality != E::KIND {
        return Err(StoreRefusal::new(
            StoreRefusalCode::WrongModality,
            true,
            format!(
                "a {:?} item was sent to the {:?} store",
                item.modality,
                E::KIND
            ),
        ));
    }
    if let Admit::Superseded { held } = fences.admit_import(&item.id, fence)? {
        return Ok(Imported::Superseded { held });
    }
    // The fence first: a crash in between leaves it ahead of the item, and the same import is
    // admitted again.
    fences.record(&item.id, fence, false)?;
    Ok(Imported::Stored(e.import_item(item)?))
}

/// This incarnation's typed import path for batches that a store actor of this node received
/// (`super::batch`): the items go to the writer thread as one job, answered after the group fsync.
/// It holds the writer weakly, so a stopped incarnation's path answers `None`.
fn import_sink<E: Engine>(writer: &Arc<Writer<E>>, fences: &Fences) -> Arc<ImportSink> {
    let (writer, fences) = (Arc::downgrade(writer), fences.clone());
    Arc::new(move |items: Vec<(ExportedItem, Fence)>| {
        let writer = writer.upgrade()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let fences = fences.clone();
        let job: Job<E> = Box::new(move |e: &mut E| {
            // Each item is admitted, fenced and imported on its own: a refused one costs the
            // others nothing.
            let replies: Vec<Reply<Imported>> = items
                .iter()
                .map(|(item, fence)| import_one(e, &fences, item, *fence))
                .collect();
            let wrote = replies.iter().any(Result::is_ok);
            let ack: Ack = Box::new(move |durable| {
                let _ = tx.send(match durable {
                    Ok(()) => Ok(replies),
                    Err(why) => Err(internal(why)),
                });
            });
            (wrote, ack)
        });
        writer.push(job).then_some(rx)
    })
}

impl<E: Engine> Actor for StoreActor<E> {
    type Msg = StoreMsg;
    type State = StoreState<E>;
    type Arguments = StoreActorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<StoreMsg>,
        args: StoreActorArgs,
    ) -> Result<StoreState<E>, ActorProcessingErr> {
        let started = std::time::Instant::now();
        let gate = args.gate.clone();
        let (db, setup) = (args.db.clone(), args.setup.clone());
        let durability = if args.group_sync.is_some() {
            Durability::Deferred
        } else {
            Durability::EachWrite
        };
        let (engine, staging, fences) = tokio::task::spawn_blocking(move || {
            let _g = gate.lock().unwrap_or_else(PoisonError::into_inner);
            let mut engine = E::open(&db, &setup)?;
            engine.set_durability(durability);
            let staging = Staging::open(&db, E::KIND, durability)?;
            let fences = Fences::open(&db, E::KIND, durability)?;
            Ok::<_, verisim_stores::StoreError>((engine, staging, fences))
        })
        .await??;
        if args.join_group {
            ractor::pg::join_scoped(SCOPE.into(), group_name(E::KIND), vec![myself.get_cell()]);
        }
        info!(modality = ?E::KIND, elapsed_ms = started.elapsed().as_millis() as u64,
            "store actor started");
        let engine = Arc::new(RwLock::new(engine));
        let writer = Arc::new(Writer::start(
            E::KIND.name(),
            engine.clone(),
            args.gate.clone(),
            args.group_sync,
            myself.get_cell(),
            E::background,
        )?);
        if args.join_group {
            super::batch::register_sink(E::KIND, import_sink(&writer, &fences));
        }
        Ok(StoreState {
            engine,
            staging,
            fences,
            gate: args.gate,
            writer,
            keyring: args.keyring,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<StoreMsg>,
        st: &mut StoreState<E>,
    ) -> Result<(), ActorProcessingErr> {
        let (engine, gate) = (st.engine.clone(), st.gate.clone());
        let stopped = tokio::task::spawn_blocking(move || {
            let _g = gate.lock().unwrap_or_else(PoisonError::into_inner);
            match engine.write() {
                Ok(mut e) => e.on_stop().map_err(|e| e.to_string()),
                Err(_) => Err("the engine is poisoned".to_owned()),
            }
        })
        .await;
        if let Ok(Err(e)) | Err(e) = stopped.map_err(|e| e.to_string()) {
            warn!(modality = ?E::KIND, error = %e, "store shutdown step failed");
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<StoreMsg>,
        msg: StoreMsg,
        st: &mut StoreState<E>,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            StoreMsg::Prepare(w, port) => {
                st.read(kind::PREPARE, w, port, |e, input| Ok(e.prepare(input)?))
            }
            StoreMsg::Import(w, port) => {
                let fences = st.fences.clone();
                st.write_with(kind::IMPORT, w, port, true, move |e, (item, fence)| {
                    import_one(e, &fences, &item, fence)
                });
            }
            StoreMsg::ImportNode(w, port) => {
                // The seal is checked and the batch decoded here, once; the items then go, typed,
                // to this node's stores' writers (`super::batch`).
                let Some((items, answer)) = open(&st.keyring, kind::IMPORT_NODE, &w, port) else {
                    return Ok(());
                };
                tokio::spawn(async move {
                    let reply = match items {
                        Ok(items) => Ok(super::batch::import_here(items).await),
                        Err(r) => Err(r),
                    };
                    answer.send(reply);
                });
            }
            StoreMsg::Export(w, port) => {
                st.read(kind::EXPORT, w, port, |e, id| Ok(e.export_item(&id)?))
            }
            StoreMsg::Remove(w, port) => {
                let fences = st.fences.clone();
                st.write_with(kind::REMOVE, w, port, true, move |e, (id, index)| {
                    if let Admit::Superseded { .. } = fences.admit_removal(&id, index)? {
                        return Ok(Removed {
                            existed: false,
                            changed: Vec::new(),
                            superseded: true,
                        });
                    }
                    let version = 0;
                    fences.record(&id, Fence { index, version }, true)?;
                    Ok(e.remove(&id)?)
                });
            }
            StoreMsg::PurgeTombstones(w, port) => {
                let fences = st.fences.clone();
                st.write_with(kind::PURGE_TOMBSTONES, w, port, false, move |_, before| {
                    Ok(fences.purge_tombstones(before)?)
                });
            }
            StoreMsg::ItemHash(w, port) => {
                st.read(kind::ITEM_HASH, w, port, |e, id| Ok(e.item_hash(&id)?))
            }
            StoreMsg::BucketDigests(w, port) => {
                st.read(kind::BUCKET_DIGESTS, w, port, |e, (a, b)| {
                    Ok(e.bucket_digests(a..b)?)
                });
            }
            StoreMsg::BucketItems(w, port) => {
                st.read(kind::BUCKET_ITEMS, w, port, |e, b| Ok(e.bucket_items(b)?))
            }
            StoreMsg::Query(w, port) => st.read(kind::QUERY, w, port, |e, q| match e.query(q)? {
                Some(a) => Ok(a),
                None => Err(StoreRefusal::new(
                    StoreRefusalCode::WrongModality,
                    true,
                    format!("the {:?} store does not answer this query", E::KIND),
                )),
            }),
            StoreMsg::Stage(w, port) => {
                let staging = st.staging.clone();
                st.write_with(kind::STAGE, w, port, true, move |_, item| {
                    Ok(staging.stage(item)?)
                });
            }
            StoreMsg::Staged(w, port) => {
                let staging = st.staging.clone();
                st.blocking(kind::STAGED, w, port, move |(id, hash)| {
                    Ok(staging.get(&id, &hash)?)
                });
            }
            StoreMsg::Unstage(w, port) => {
                let staging = st.staging.clone();
                // A lost removal leaves a record the sweep removes again: no fsync.
                st.write_with(kind::UNSTAGE, w, port, false, move |_, items| {
                    Ok(staging.remove(&items)?)
                });
            }
            StoreMsg::StagedList(w, port) => {
                let staging = st.staging.clone();
                st.blocking(kind::STAGED_LIST, w, port, move |after| {
                    Ok(staging.list(after)?)
                });
            }
        }
        Ok(())
    }
}
