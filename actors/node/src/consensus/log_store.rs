//! The Raft log and hard state on fjall.
//!
//! Keyspaces: `raft.log` maps a big-endian index to an entry, so order on disk is log order;
//! `raft.meta` holds the hard state, the snapshot the log starts after, and the first index still
//! present. Each value is an 8-byte BLAKE3 prefix followed by CBOR, checked on every read.
//!
//! Durability: everything one `Ready` asks to persist goes into one `WriteBatch` committed with
//! `PersistMode::SyncData`, so one fsync covers every entry the consensus actor gathered since its last
//! step (group commit). Nothing is acknowledged before that commit returns.
//!
//! fjall has no range delete, so compaction records the new first index (durably, at once) and a
//! background thread removes the dead prefix with batched point removes: the consensus actor never
//! waits for them (a million removes take long enough to miss elections). Entries below the first
//! index are ignored when the log is read back; whatever a crash or a stop left behind is purged
//! again after the next open.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use verisim_raft::{Entry, HardState, Index, PersistedState, SnapshotMeta};
use verisim_vocab::cbor::CborError;

const KEY_HARD_STATE: &[u8] = b"hard_state";
const KEY_SNAPSHOT: &[u8] = b"snapshot";
const KEY_FIRST_INDEX: &[u8] = b"first_index";
/// Set while the node rebuilds a log it lost (its snapshot was corrupt): the last index it had.
/// Absent in logs written before it existed, which reads as "not recovering".
const KEY_RECOVERY_HORIZON: &[u8] = b"recovery_horizon";
/// Point removes per batch when purging a log prefix (the purger checks for a stop between batches).
const PURGE_BATCH: usize = 1024;

/// Why the log store failed. Any of these stops the consensus member: it cannot vote or acknowledge
/// without its log.
#[derive(Debug, thiserror::Error)]
pub enum LogStoreError {
    #[error("fjall: {0}")]
    Fjall(#[from] fjall::Error),
    #[error("corrupt log record {key}: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("log is not contiguous: expected index {expected}, found {found}")]
    Gap { expected: Index, found: Index },
    #[error("starting the log purger thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Size of the persisted log, for the snapshotter's trigger and for status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LogStats {
    /// First index present (or `last + 1` when empty).
    pub first_index: Index,
    pub last_index: Index,
    pub entries: u64,
    /// Bytes of the stored values.
    pub bytes: u64,
    /// Entries and bytes above the snapshot the log starts after: what the snapshotter watches
    /// (the trailing window kept below the snapshot index does not count).
    pub entries_since_snapshot: u64,
    pub bytes_since_snapshot: u64,
}

/// A node's persisted Raft log.
pub struct LogStore {
    db: Database,
    log: Keyspace,
    meta: Keyspace,
    first: Index,
    last: Index,
    /// Stored value sizes from `first` to `last`, to keep `bytes` exact across truncation and purging.
    sizes: std::collections::VecDeque<u32>,
    bytes: u64,
    /// Index of the snapshot the log starts after.
    snapshot_index: Index,
    purger: Purger,
}

enum PurgeMsg {
    /// Remove every entry below this index.
    Below(Index),
    /// Answer once everything asked before is done (tests).
    #[cfg_attr(not(test), allow(dead_code))]
    Flush(Sender<()>),
}

/// The background thread that removes dead log prefixes. Dropping it stops the thread between two
/// batches and waits for it, so the database is closed when the log store is.
struct Purger {
    tx: Option<Sender<PurgeMsg>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Purger {
    fn start(db: Database, log: Keyspace) -> Result<Self, LogStoreError> {
        let (tx, rx) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("verisim-log-purge".into())
            .spawn(move || purge_loop(&db, &log, &rx, &flag))
            .map_err(LogStoreError::Thread)?;
        Ok(Self {
            tx: Some(tx),
            stop,
            thread: Some(thread),
        })
    }

    fn send(&self, msg: PurgeMsg) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(msg);
        }
    }
}

impl Drop for Purger {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn purge_loop(db: &Database, log: &Keyspace, rx: &Receiver<PurgeMsg>, stop: &AtomicBool) {
    let stopped = || stop.load(Ordering::Relaxed);
    while let Ok(msg) = rx.recv() {
        let below = match msg {
            PurgeMsg::Below(i) => i,
            PurgeMsg::Flush(done) => {
                let _ = done.send(());
                continue;
            }
        };
        // Each batch starts after the last key the one before removed. Starting from the front
        // every time made each batch read past every earlier batch's tombstones, so a purge was
        // quadratic: a 300k-entry prefix took 13.3 s, 0.20 s now (docs/benchmarks.md).
        let mut after: Bound<Vec<u8>> = Bound::Unbounded;
        loop {
            if stopped() {
                return;
            }
            let keys: Result<Vec<_>, _> = log
                .range((after.clone(), Bound::Excluded(index_key(below).to_vec())))
                .take(PURGE_BATCH)
                .map(|g| g.key())
                .collect();
            let keys = match keys {
                Ok(k) if k.is_empty() => break,
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!(error = %e, "log purge failed; retried after the next open");
                    break;
                }
            };
            if let Some(last) = keys.last() {
                after = Bound::Excluded(last.to_vec());
            }
            // Purged entries are already dead (first_index says so): no fsync for their removal.
            let mut batch = db.batch();
            for k in keys {
                batch.remove(log, k);
            }
            if let Err(e) = batch.commit() {
                tracing::warn!(error = %e, "log purge failed; retried after the next open");
                break;
            }
        }
    }
}

fn seal<T: Serialize>(value: &T) -> Vec<u8> {
    let mut body = Vec::with_capacity(64);
    // Encoding our own in-memory types into a Vec cannot fail.
    if let Err(e) = ciborium::into_writer(value, &mut body) {
        panic!("CBOR encoding of a Raft record failed: {e}");
    }
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&blake3::hash(&body).as_bytes()[..8]);
    out.extend_from_slice(&body);
    out
}

fn unseal<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, LogStoreError> {
    let corrupt = |reason: String| LogStoreError::Corrupt {
        key: key.to_owned(),
        reason,
    };
    if bytes.len() < 8 {
        return Err(corrupt(format!("{} bytes", bytes.len())));
    }
    let (sum, body) = bytes.split_at(8);
    if &blake3::hash(body).as_bytes()[..8] != sum {
        return Err(corrupt("checksum mismatch".into()));
    }
    verisim_vocab::cbor::decode_exact(body).map_err(|e| match e {
        CborError::TrailingBytes(n) => corrupt(format!("{n} trailing bytes")),
        other => corrupt(other.to_string()),
    })
}

fn index_key(i: Index) -> [u8; 8] {
    i.to_be_bytes()
}

impl LogStore {
    /// Opens (or creates) the log in `dir` and reads back what a restarting node needs. A new store
    /// returns `PersistedState::default()`; the caller bootstraps membership itself.
    pub fn open(dir: &Path) -> Result<(Self, PersistedState), LogStoreError> {
        let db = Database::builder(dir).open()?;
        let log = db.keyspace("raft.log", KeyspaceCreateOptions::default)?;
        let meta = db.keyspace("raft.meta", KeyspaceCreateOptions::default)?;
        let purger = Purger::start(db.clone(), log.clone())?;
        let mut store = LogStore {
            db,
            log,
            meta,
            first: 1,
            last: 0,
            sizes: Default::default(),
            bytes: 0,
            snapshot_index: 0,
            purger,
        };
        let persisted = store.read_back()?;
        store.purge_below(store.first);
        Ok((store, persisted))
    }

    /// Reads back what is on disk, as [`LogStore::open`] does: for a consensus member that throws
    /// its in-memory state away (a refused snapshot transfer) and rebuilds it from what it persisted.
    pub fn read_back(&mut self) -> Result<PersistedState, LogStoreError> {
        let hard_state: HardState = match self.meta.get(KEY_HARD_STATE)? {
            Some(v) => unseal("hard_state", &v)?,
            None => HardState::default(),
        };
        let snapshot: SnapshotMeta = match self.meta.get(KEY_SNAPSHOT)? {
            Some(v) => unseal("snapshot", &v)?,
            None => SnapshotMeta::default(),
        };
        let first: Index = match self.meta.get(KEY_FIRST_INDEX)? {
            Some(v) => unseal("first_index", &v)?,
            None => 1,
        };
        self.first = first;
        self.sizes.clear();
        self.bytes = 0;
        self.snapshot_index = snapshot.index;
        let mut entries = Vec::new();
        for item in self.log.range(index_key(first)..) {
            let (k, v) = item.into_inner()?;
            let at = <[u8; 8]>::try_from(k.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| LogStoreError::Corrupt {
                    key: format!("{k:?}"),
                    reason: "log key is not 8 bytes".into(),
                })?;
            let expected = first + entries.len() as u64;
            if at != expected {
                return Err(LogStoreError::Gap {
                    expected,
                    found: at,
                });
            }
            let entry: Entry = unseal(&format!("log/{at}"), &v)?;
            if entry.index != at {
                return Err(LogStoreError::Corrupt {
                    key: format!("log/{at}"),
                    reason: format!("holds entry {}", entry.index),
                });
            }
            self.push_size(v.len());
            entries.push(entry);
        }
        self.last = first + entries.len() as u64 - 1;
        Ok(PersistedState {
            hard_state,
            snapshot,
            entries,
        })
    }

    fn push_size(&mut self, len: usize) {
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        self.sizes.push_back(len);
        self.bytes += u64::from(len);
    }

    /// Persists what a `Ready` hands out: entries (replacing any persisted suffix from the first new
    /// index on) and the hard state, in one batch, behind one fsync when `sync` (the core's
    /// `must_sync`). Without it (only the commit index moved) the batch is buffered: a crash may
    /// lose it, which only costs the restarted node a commit index it learns again; the next
    /// synced batch, written after it in the same journal, makes it durable too.
    pub fn append(
        &mut self,
        entries: &[Entry],
        hard_state: Option<&HardState>,
        sync: bool,
    ) -> Result<(), LogStoreError> {
        if entries.is_empty() && hard_state.is_none() {
            return Ok(());
        }
        // Entries are always synced, whatever the caller says.
        let durability = (sync || !entries.is_empty()).then_some(PersistMode::SyncData);
        let mut batch = self.db.batch().durability(durability);
        let mut new_last = self.last;
        let mut truncated = 0usize;
        if let Some(first_new) = entries.first().map(|e| e.index) {
            if first_new < self.first {
                return Err(LogStoreError::Gap {
                    expected: self.first,
                    found: first_new,
                });
            }
            if first_new > self.last + 1 {
                return Err(LogStoreError::Gap {
                    expected: self.last + 1,
                    found: first_new,
                });
            }
            for i in first_new..=self.last {
                batch.remove(&self.log, index_key(i));
                truncated += 1;
            }
            new_last = first_new - 1;
        }
        let mut sealed = Vec::with_capacity(entries.len());
        for e in entries {
            debug_assert_eq!(e.index, new_last + 1, "entries handed out contiguous");
            let v = seal(e);
            sealed.push(v.len());
            batch.insert(&self.log, index_key(e.index), v);
            new_last = e.index;
        }
        if let Some(hs) = hard_state {
            batch.insert(&self.meta, KEY_HARD_STATE, seal(hs));
        }
        batch.commit()?;
        for _ in 0..truncated {
            if let Some(n) = self.sizes.pop_back() {
                self.bytes -= u64::from(n);
            }
        }
        for n in sealed {
            self.push_size(n);
        }
        self.last = new_last;
        Ok(())
    }

    /// Records, durably, the snapshot the log now starts after: at bootstrap (index 0, the initial
    /// voters) and whenever a snapshot is taken. Entries stay until [`LogStore::compact`].
    pub fn record_snapshot(&mut self, snapshot: &SnapshotMeta) -> Result<(), LogStoreError> {
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncData));
        batch.insert(&self.meta, KEY_SNAPSHOT, seal(snapshot));
        batch.commit()?;
        self.snapshot_index = snapshot.index;
        Ok(())
    }

    /// Deletes every entry up to `compact_to` (inclusive; at most the recorded snapshot's index, so a
    /// trailing window may remain).
    pub fn compact(&mut self, compact_to: Index) -> Result<(), LogStoreError> {
        debug_assert!(
            compact_to <= self.snapshot_index,
            "compaction past the snapshot"
        );
        let new_first = (compact_to + 1).max(self.first);
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncData));
        batch.insert(&self.meta, KEY_FIRST_INDEX, seal(&new_first));
        batch.commit()?;
        self.drop_sizes_below(new_first);
        self.first = new_first;
        if self.last < new_first {
            self.last = new_first - 1;
        }
        self.purge_below(new_first);
        Ok(())
    }

    /// Replaces the whole log with an installed snapshot: every entry goes, the log restarts at
    /// `snapshot.index + 1`.
    pub fn install_snapshot(&mut self, snapshot: &SnapshotMeta) -> Result<(), LogStoreError> {
        // Entries after the snapshot would be read back as the log: they go in this batch. The
        // ones before it are dead by the new first index and go in the background.
        let from = self.first.max(snapshot.index + 1);
        self.replace_with(snapshot, from, None)
    }

    /// Replaces the whole log with `snapshot`, as [`LogStore::install_snapshot`] does, for a node
    /// whose own latest snapshot was corrupt, and records in the same batch the last index it had
    /// (`horizon`): until it holds the log up to there again it must not vote (see
    /// docs/consensus.md, "A corrupt snapshot of one's own").
    pub fn reset_for_recovery(
        &mut self,
        snapshot: &SnapshotMeta,
        horizon: Index,
    ) -> Result<(), LogStoreError> {
        // Entries from before the reset must never be read back as this log, at any index.
        let from = self.first;
        self.replace_with(snapshot, from, Some(horizon))
    }

    /// One durable batch: `snapshot` becomes the log's start, entries `from..=last` are removed
    /// (the rest, below the new first index, are purged in the background), and `horizon`, if
    /// given, is recorded with it.
    fn replace_with(
        &mut self,
        snapshot: &SnapshotMeta,
        from: Index,
        horizon: Option<Index>,
    ) -> Result<(), LogStoreError> {
        let new_first = snapshot.index + 1;
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncData));
        batch.insert(&self.meta, KEY_SNAPSHOT, seal(snapshot));
        batch.insert(&self.meta, KEY_FIRST_INDEX, seal(&new_first));
        if let Some(horizon) = horizon {
            batch.insert(&self.meta, KEY_RECOVERY_HORIZON, seal(&horizon));
        }
        for i in from..=self.last {
            batch.remove(&self.log, index_key(i));
        }
        batch.commit()?;
        self.sizes.clear();
        self.bytes = 0;
        self.snapshot_index = snapshot.index;
        self.first = new_first;
        self.last = snapshot.index;
        self.purge_below(new_first);
        Ok(())
    }

    /// The horizon [`LogStore::reset_for_recovery`] recorded, while it stands.
    pub fn recovery_horizon(&self) -> Result<Option<Index>, LogStoreError> {
        match self.meta.get(KEY_RECOVERY_HORIZON)? {
            Some(v) => Ok(Some(unseal("recovery_horizon", &v)?)),
            None => Ok(None),
        }
    }

    /// The node holds its log up to the horizon again.
    pub fn clear_recovery_horizon(&mut self) -> Result<(), LogStoreError> {
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncData));
        batch.remove(&self.meta, KEY_RECOVERY_HORIZON);
        batch.commit()?;
        Ok(())
    }

    fn drop_sizes_below(&mut self, new_first: Index) {
        let drop = new_first
            .saturating_sub(self.first)
            .min(self.sizes.len() as u64);
        for _ in 0..drop {
            if let Some(n) = self.sizes.pop_front() {
                self.bytes -= u64::from(n);
            }
        }
    }

    /// Has the purger remove every entry below `first` (dead: compacted, or left by a crash in
    /// the middle of a purge).
    fn purge_below(&self, first: Index) {
        self.purger.send(PurgeMsg::Below(first));
    }

    /// Waits until the purges asked for so far are done.
    #[cfg(test)]
    fn purged(&self) {
        let (tx, rx) = channel();
        self.purger.send(PurgeMsg::Flush(tx));
        let _ = rx.recv();
    }

    pub fn stats(&self) -> LogStats {
        let below = (self.snapshot_index + 1).saturating_sub(self.first) as usize;
        let since = self.sizes.iter().skip(below);
        LogStats {
            first_index: self.first,
            last_index: self.last,
            entries: self.sizes.len() as u64,
            bytes: self.bytes,
            entries_since_snapshot: self.last.saturating_sub(self.snapshot_index),
            bytes_since_snapshot: since.map(|&n| u64::from(n)).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use verisim_raft::{Membership, Payload};

    use super::*;

    fn entry(index: Index, term: u64) -> Entry {
        Entry {
            term,
            index,
            payload: Payload::Normal(vec![index as u8; 100]),
        }
    }

    fn entries(r: std::ops::RangeInclusive<Index>, term: u64) -> Vec<Entry> {
        r.map(|i| entry(i, term)).collect()
    }

    #[test]
    fn append_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let hs = HardState {
            term: 3,
            vote: Some(2),
            commit: 4,
        };
        {
            let (mut s, p) = LogStore::open(dir.path()).unwrap();
            assert_eq!(p, PersistedState::default());
            s.append(&entries(1..=5, 1), Some(&hs), true).unwrap();
            assert_eq!(s.stats().entries, 5);
        }
        let (s, p) = LogStore::open(dir.path()).unwrap();
        assert_eq!(p.hard_state, hs);
        assert_eq!(p.entries, entries(1..=5, 1));
        assert_eq!(s.stats().last_index, 5);
        let sealed: u64 = p.entries.iter().map(|e| seal(e).len() as u64).sum();
        assert_eq!(s.stats().bytes, sealed);
    }

    #[test]
    fn a_conflicting_suffix_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = LogStore::open(dir.path()).unwrap();
        s.append(&entries(1..=6, 1), None, true).unwrap();
        s.append(&entries(4..=4, 2), None, true).unwrap();
        let stats = s.stats();
        assert_eq!(
            (stats.first_index, stats.last_index, stats.entries),
            (1, 4, 4)
        );
        drop(s);
        let (_, p) = LogStore::open(dir.path()).unwrap();
        let mut want = entries(1..=3, 1);
        want.push(entry(4, 2));
        assert_eq!(p.entries, want);
    }

    #[test]
    fn compaction_keeps_the_tail_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let snap = SnapshotMeta {
            index: 80,
            term: 1,
            membership: Membership::with_voters([1, 2, 3]),
            id: 9,
            size: 123,
        };
        {
            let (mut s, _) = LogStore::open(dir.path()).unwrap();
            s.append(&entries(1..=100, 1), None, true).unwrap();
            let before = s.stats().bytes;
            s.record_snapshot(&snap).unwrap();
            assert_eq!(
                s.stats().entries_since_snapshot,
                20,
                "recorded before any entry goes"
            );
            s.compact(70).unwrap();
            let st = s.stats();
            assert_eq!((st.first_index, st.last_index, st.entries), (71, 100, 30));
            assert_eq!(st.entries_since_snapshot, 20);
            assert_eq!(
                st.bytes_since_snapshot * 30,
                st.bytes * 20,
                "equal-sized entries"
            );
            assert!(
                st.bytes * 3 < before,
                "bytes accounted: {} of {before}",
                st.bytes
            );
        }
        let (s, p) = LogStore::open(dir.path()).unwrap();
        assert_eq!(p.snapshot, snap);
        assert_eq!(p.entries, entries(71..=100, 1));
        s.purged();
        assert_eq!(
            s.log.range(..index_key(71)).count(),
            0,
            "prefix purged on disk"
        );
    }

    /// A prefix of many purge batches goes entirely, in batches that each resume after the one
    /// before, and nothing from the first index on is touched.
    #[test]
    fn a_prefix_of_many_batches_is_purged_and_the_tail_kept() {
        let dir = tempfile::tempdir().unwrap();
        let n = 5 * PURGE_BATCH as u64 + 17;
        let (mut s, _) = LogStore::open(dir.path()).unwrap();
        s.append(&entries(1..=n + 10, 1), None, true).unwrap();
        let snap = SnapshotMeta {
            index: n,
            term: 1,
            membership: Membership::with_voters([1, 2, 3]),
            id: 9,
            size: 1,
        };
        s.record_snapshot(&snap).unwrap();
        s.compact(n).unwrap();
        s.purged();
        assert_eq!(s.log.range(..index_key(n + 1)).count(), 0, "prefix purged");
        assert_eq!(s.log.range(index_key(n + 1)..).count(), 10, "tail kept");
        drop(s);
        let (_, p) = LogStore::open(dir.path()).unwrap();
        assert_eq!(p.entries, entries(n + 1..=n + 10, 1));
    }

    #[test]
    fn a_recovery_reset_drops_every_entry_and_keeps_its_horizon_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let base = SnapshotMeta {
            index: 3,
            term: 1,
            ..SnapshotMeta::default()
        };
        {
            let (mut s, _) = LogStore::open(dir.path()).unwrap();
            assert_eq!(s.recovery_horizon().unwrap(), None);
            let hs = HardState {
                term: 4,
                vote: Some(2),
                commit: 7,
            };
            s.append(&entries(1..=10, 1), Some(&hs), true).unwrap();
            s.reset_for_recovery(&base, 10).unwrap();
        }
        let (mut s, p) = LogStore::open(dir.path()).unwrap();
        assert_eq!(p.snapshot, base);
        assert!(p.entries.is_empty(), "{:?}", p.entries);
        assert_eq!(p.hard_state.term, 4, "term and vote survive the reset");
        assert_eq!(p.hard_state.vote, Some(2));
        assert_eq!(s.recovery_horizon().unwrap(), Some(10));
        s.clear_recovery_horizon().unwrap();
        drop(s);
        let (s, _) = LogStore::open(dir.path()).unwrap();
        assert_eq!(s.recovery_horizon().unwrap(), None);
    }

    #[test]
    fn installing_a_snapshot_drops_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let snap = SnapshotMeta {
            index: 500,
            term: 4,
            ..SnapshotMeta::default()
        };
        {
            let (mut s, _) = LogStore::open(dir.path()).unwrap();
            s.append(&entries(1..=10, 1), None, true).unwrap();
            s.install_snapshot(&snap).unwrap();
            s.append(&entries(501..=502, 4), None, true).unwrap();
        }
        let (s, p) = LogStore::open(dir.path()).unwrap();
        assert_eq!(p.snapshot, snap);
        assert_eq!(p.entries, entries(501..=502, 4));
        assert_eq!(s.stats().first_index, 501);
    }

    #[test]
    fn the_bootstrap_configuration_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let boot = PersistedState::bootstrap([1, 2, 3]);
        {
            let (mut s, _) = LogStore::open(dir.path()).unwrap();
            s.record_snapshot(&boot.snapshot).unwrap();
            s.append(&entries(1..=2, 1), None, true).unwrap();
        }
        let (_, p) = LogStore::open(dir.path()).unwrap();
        assert_eq!(p.snapshot.membership, Membership::with_voters([1, 2, 3]));
        assert_eq!(p.entries.len(), 2);
    }

    #[test]
    fn gaps_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = LogStore::open(dir.path()).unwrap();
        s.append(&entries(1..=3, 1), None, true).unwrap();
        assert!(matches!(
            s.append(&entries(5..=6, 1), None, true),
            Err(LogStoreError::Gap {
                expected: 4,
                found: 5
            })
        ));
    }

    #[test]
    fn corrupt_records_are_detected() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut s, _) = LogStore::open(dir.path()).unwrap();
            s.append(&entries(1..=3, 1), None, true).unwrap();
            let mut bad = seal(&entry(2, 1));
            let last = bad.len() - 1;
            bad[last] ^= 0xff;
            s.log.insert(index_key(2), bad).unwrap();
        }
        assert!(matches!(
            LogStore::open(dir.path()),
            Err(LogStoreError::Corrupt { .. })
        ));
    }
}
