//! Group commit for the store actors of one node.
//!
//! The four engines share one fjall database and so one journal. In the node, they write with
//! [`Durability::Deferred`]: a write lands in the journal without an fsync and the actor moves on to
//! its next message; its answer waits here. One syncer thread persists the journal
//! (`PersistMode::SyncData`, one fdatasync) and then releases every answer that was queued before
//! the persist started, so one fsync covers every write, of every modality, that arrived while the
//! previous one was running. Nothing is acknowledged before the fsync that covers it returned.
//!
//! If a persist fails, fjall poisons the database; every waiting answer gets the error, and every
//! later write fails too, so nothing is acknowledged that is not durable.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};

use fjall::Database;
use tracing::error;
use verisim_stores::db::PERSIST_MODE;

pub use verisim_stores::Durability;

/// What to do once the write is durable (`Ok`) or cannot be (`Err` with the reason).
pub type Ack = Box<dyn FnOnce(Result<(), String>) + Send>;

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct SyncStats {
    /// fsyncs of the stores journal.
    pub syncs: AtomicU64,
    /// Writes acknowledged through them.
    pub writes: AtomicU64,
}

/// The node's store group commit: a queue of acknowledgements and the thread that fsyncs for them.
pub struct GroupSync {
    queue: Sender<Ack>,
    stats: Arc<SyncStats>,
}

impl GroupSync {
    /// Starts the syncer thread for `db`. It stops once this value (every sender) is dropped and
    /// the queued acknowledgements are served.
    ///
    /// # Errors
    /// The OS refused to start a thread.
    pub fn start(db: Database) -> std::io::Result<Arc<Self>> {
        let (tx, rx) = channel::<Ack>();
        let stats = Arc::new(SyncStats::default());
        let thread_stats = stats.clone();
        std::thread::Builder::new()
            .name("verisim-store-sync".into())
            .spawn(move || run(&db, &rx, &thread_stats))?;
        Ok(Arc::new(Self { queue: tx, stats }))
    }

    /// Queues `ack` behind the next fsync. Call it only after the write's batch was committed
    /// (deferred), so that the fsync starts after the write is in the journal.
    pub fn after_write(&self, ack: Ack) {
        if let Err(std::sync::mpsc::SendError(ack)) = self.queue.send(ack) {
            ack(Err("the stores syncer has stopped".into()));
        }
    }

    pub fn stats(&self) -> &SyncStats {
        &self.stats
    }
}

fn run(db: &Database, rx: &Receiver<Ack>, stats: &SyncStats) {
    while let Ok(first) = rx.recv() {
        let mut waiting = vec![first];
        waiting.extend(rx.try_iter());
        let result = db.persist(PERSIST_MODE).map_err(|e| {
            error!(error = %e, "fsync of the stores journal failed; nothing more is acknowledged");
            format!("the stores journal could not be made durable: {e}")
        });
        if result.is_ok() {
            stats.syncs.fetch_add(1, Ordering::Relaxed);
            stats
                .writes
                .fetch_add(waiting.len() as u64, Ordering::Relaxed);
        }
        for ack in waiting {
            ack(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ack_is_released_after_a_persist() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::builder(dir.path()).open().unwrap();
        let ks = db
            .keyspace("k", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        let sync = GroupSync::start(db.clone()).unwrap();
        let (tx, rx) = channel();
        for i in 0..1000u32 {
            let mut b = db.batch().durability(None);
            b.insert(&ks, i.to_be_bytes(), b"v");
            b.commit().unwrap();
            let tx = tx.clone();
            sync.after_write(Box::new(move |r| {
                let _ = tx.send((i, r));
            }));
        }
        let mut got: Vec<u32> = (0..1000)
            .map(|_| {
                let (i, r) = rx.recv_timeout(std::time::Duration::from_secs(30)).unwrap();
                r.unwrap();
                i
            })
            .collect();
        got.sort_unstable();
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
        let syncs = sync.stats().syncs.load(Ordering::Relaxed);
        assert_eq!(sync.stats().writes.load(Ordering::Relaxed), 1000);
        // How many share one fsync depends on timing; the benchmark measures it.
        assert!((1..=1000).contains(&syncs), "{syncs} fsyncs");
    }
}
