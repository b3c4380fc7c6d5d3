//! The write queue of one store actor incarnation: a thread that applies the actor's writes to its
//! engine in mailbox order, many per lock.
//!
//! The actor's handler decodes a write and queues it here without waiting, so its mailbox keeps
//! moving. The thread takes everything queued and applies it in order under the incarnation gate
//! (taking the engine lock for each write, so reads get in between), then hands each answer to
//! the node's [`GroupSync`]: the answers of a whole batch wait for one fsync. Without a `GroupSync` every write fsynced on its own and is answered
//! at once.
//!
//! When the queue is empty after a batch, the thread runs the engine's background work
//! ([`super::Engine::background`]: the vector store links pending vectors into its HNSW graph) one
//! short slice at a time, checking the queue before each slice, so writes are not held up by it.
//!
//! A panicking engine call stops the actor with the panic message (an abnormal exit its supervisor
//! restarts, on a freshly opened engine); the writes queued behind it are dropped unanswered, which
//! their callers see as a failed call.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use ractor::ActorCell;
use tracing::error;

use super::group_sync::{Ack, GroupSync};

/// A write, run on the engine; it returns whether it wrote anything and how to answer once that
/// is durable.
pub type Job<E> = Box<dyn FnOnce(&mut E) -> (bool, Ack) + Send>;

/// One slice of the engine's background work; returns whether work is left.
pub type Background<E> = fn(&mut E) -> bool;

/// The sending side, owned by the actor's state; dropping it lets the thread finish what is queued
/// and exit.
pub struct Writer<E> {
    queue: Sender<Job<E>>,
}

impl<E: Send + Sync + 'static> Writer<E> {
    /// Starts the thread for one incarnation.
    ///
    /// # Errors
    /// The OS refused to start a thread.
    pub fn start(
        name: &str,
        engine: Arc<RwLock<E>>,
        gate: Arc<Mutex<()>>,
        sync: Option<Arc<GroupSync>>,
        actor: ActorCell,
        background: Background<E>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = channel::<Job<E>>();
        std::thread::Builder::new()
            .name(format!("verisim-{name}-writer"))
            .spawn(move || run(&rx, &engine, &gate, sync.as_deref(), &actor, background))?;
        Ok(Self { queue: tx })
    }

    /// Queues a write; `false` if the thread is gone (after an engine panic).
    pub fn push(&self, job: Job<E>) -> bool {
        self.queue.send(job).is_ok()
    }
}

fn run<E>(
    rx: &Receiver<Job<E>>,
    engine: &RwLock<E>,
    gate: &Mutex<()>,
    sync: Option<&GroupSync>,
    actor: &ActorCell,
    background: Background<E>,
) {
    let mut next = None;
    loop {
        let first = match next.take() {
            Some(job) => job,
            None => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let jobs: Vec<Job<E>> = std::iter::once(first).chain(rx.try_iter()).collect();
        let mut answers = Vec::with_capacity(jobs.len());
        let mut panicked = None;
        {
            let _gate = gate.lock().unwrap_or_else(PoisonError::into_inner);
            for job in jobs {
                // The engine lock is taken per write, not per batch, so reads (a registration's
                // prepare, exports) get in between the writes of a long batch.
                let Ok(mut e) = engine.write() else {
                    panicked = Some("the engine lock is poisoned".to_owned());
                    break;
                };
                match catch_unwind(AssertUnwindSafe(|| job(&mut e))) {
                    Ok(answer) => answers.push(answer),
                    Err(payload) => {
                        panicked = Some(panic_message(payload.as_ref()));
                        break;
                    }
                }
            }
        }
        for (wrote, ack) in answers {
            match sync {
                Some(s) if wrote => s.after_write(ack),
                _ => ack(Ok(())),
            }
        }
        if let Some(why) = panicked {
            stop(actor, &why);
            return;
        }
        // Background work while nothing is queued; a write arriving meanwhile waits one slice.
        loop {
            match rx.try_recv() {
                Ok(job) => {
                    next = Some(job);
                    break;
                }
                Err(TryRecvError::Disconnected) => return,
                Err(TryRecvError::Empty) => {}
            }
            let _gate = gate.lock().unwrap_or_else(PoisonError::into_inner);
            let Ok(mut e) = engine.write() else {
                stop(actor, "the engine lock is poisoned");
                return;
            };
            match catch_unwind(AssertUnwindSafe(|| background(&mut e))) {
                Ok(true) => {}
                Ok(false) => break,
                Err(payload) => {
                    stop(actor, &panic_message(payload.as_ref()));
                    return;
                }
            }
        }
    }
}

fn stop(actor: &ActorCell, why: &str) {
    error!(actor = ?actor.get_name(), error = %why, "store engine panicked; the actor restarts");
    actor.stop(Some(format!("store engine panicked: {why}")));
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};

    use super::*;

    struct Nothing;
    impl ractor::Message for Nothing {}

    /// Stands in for a store actor.
    struct Idle;
    impl Actor for Idle {
        type Msg = Nothing;
        type State = ();
        type Arguments = ();
        async fn pre_start(&self, _: ActorRef<Nothing>, (): ()) -> Result<(), ActorProcessingErr> {
            Ok(())
        }
    }

    /// Records how its children stopped.
    struct Parent(tokio::sync::mpsc::UnboundedSender<Option<String>>);
    impl Actor for Parent {
        type Msg = Nothing;
        type State = ();
        type Arguments = ();
        async fn pre_start(&self, _: ActorRef<Nothing>, (): ()) -> Result<(), ActorProcessingErr> {
            Ok(())
        }
        async fn handle_supervisor_evt(
            &self,
            _: ActorRef<Nothing>,
            evt: SupervisionEvent,
            (): &mut (),
        ) -> Result<(), ActorProcessingErr> {
            if let SupervisionEvent::ActorTerminated(_, _, reason) = evt {
                let _ = self.0.send(reason);
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn writes_run_in_order_and_a_panic_stops_the_actor_with_its_message() {
        let (exits, mut exited) = tokio::sync::mpsc::unbounded_channel();
        let (parent, _) = Actor::spawn(None, Parent(exits), ()).await.unwrap();
        let (actor, _) = Actor::spawn_linked(None, Idle, (), parent.get_cell())
            .await
            .unwrap();
        let engine = Arc::new(RwLock::new(Vec::<u32>::new()));
        let writer = Writer::start(
            "test",
            engine.clone(),
            Arc::new(Mutex::new(())),
            None,
            actor.get_cell(),
            |_| false,
        )
        .unwrap();
        let (tx, rx) = channel();
        for i in 0..5u32 {
            let tx = tx.clone();
            assert!(writer.push(Box::new(move |e: &mut Vec<u32>| {
                assert!(i != 3, "engine bug at {i}");
                e.push(i);
                let ack: Ack = Box::new(move |r| {
                    let _ = tx.send((i, r));
                });
                (true, ack)
            })));
        }
        let reason = tokio::time::timeout(Duration::from_secs(10), exited.recv())
            .await
            .expect("the actor stops")
            .flatten()
            .expect("with a reason");
        assert!(reason.contains("engine bug at 3"), "{reason}");
        // The writes before the panic were applied in order and answered; the rest were dropped.
        let answered: Vec<u32> = rx.try_iter().map(|(i, r)| r.map(|()| i).unwrap()).collect();
        assert_eq!(answered, vec![0, 1, 2]);
        assert_eq!(*engine.read().unwrap(), vec![0, 1, 2]);
        drop(writer);
        parent.stop(None);
    }

    /// Stands in for an engine with deferred work: `pending` slices left, each logged.
    #[derive(Default)]
    struct Deferred {
        pending: u32,
        log: Vec<&'static str>,
    }

    #[tokio::test]
    async fn background_work_runs_in_slices_between_writes() {
        let (actor, _) = Actor::spawn(None, Idle, ()).await.unwrap();
        let engine = Arc::new(RwLock::new(Deferred::default()));
        let writer = Writer::start(
            "test",
            engine.clone(),
            Arc::new(Mutex::new(())),
            None,
            actor.get_cell(),
            |e: &mut Deferred| {
                e.pending -= 1;
                e.log.push("slice");
                e.pending > 0
            },
        )
        .unwrap();
        let (tx, rx) = channel();
        assert!(writer.push(Box::new(move |e: &mut Deferred| {
            e.pending = 3;
            e.log.push("write");
            let ack: Ack = Box::new(move |r| {
                let _ = tx.send(r);
            });
            (true, ack)
        })));
        rx.recv_timeout(Duration::from_secs(10))
            .expect("answered")
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while engine.read().unwrap().pending > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "background work did not run"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            engine.read().unwrap().log,
            ["write", "slice", "slice", "slice"]
        );
        drop(writer);
        actor.stop(None);
    }
}
