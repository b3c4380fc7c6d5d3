//! Fenced store writes: every item a store holds carries the registry log index (and entity
//! version) of the entry that produced it, and a removal leaves a tombstone with the index of the
//! delete. A store applies an import only if it is at least as new as what it holds, and a removal
//! only if it is newer, so store writes for one entity can never overtake each other: a slow import
//! of version v cannot overwrite v+1, and a delete's cleanup cannot remove a re-registration that
//! committed after it.
//!
//! Stored in the node's stores database, one keyspace per modality (`fence.<modality>`), keyed by
//! entity id; the value is a fixed 25-byte record (index, version, tombstone flag, time) followed by
//! the first 8 bytes of its BLAKE3 hash, checked when read. The fence is written *before* the item
//! (in the same journal, so a crash keeps a prefix): a crash in between leaves a fence newer than
//! the item, and the same import (same index) is admitted again, so it repairs itself. Items written
//! before fencing existed have no record and count as index 0.
//!
//! Tombstones are kept until the drift checker purges those older than a horizon (by then no import
//! of an older version can still be in flight: every one is bounded by a store call timeout and
//! checks the registry first).

use std::time::{SystemTime, UNIX_EPOCH};

use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use serde::{Deserialize, Serialize};
use verisim_stores::db::PERSIST_MODE;
use verisim_stores::{Durability, EntityId, ModalityKind, StoreError};

/// The registry entry that produced an item: its log index and the entity's version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Fence {
    pub index: u64,
    pub version: u64,
}

/// What a store holds for an entity id, besides the item itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceRecord {
    pub fence: Fence,
    /// The item was removed by the entry at `fence.index`.
    pub tombstone: bool,
    /// This node's wall clock when written (tombstone purging only).
    pub at_ms: u64,
}

/// Whether a write is admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// The store holds something newer (or the same removal): the write is skipped.
    Superseded {
        held: FenceRecord,
    },
}

const RECORD_LEN: usize = 8 + 8 + 1 + 8;
const CHECK_LEN: usize = 8;

fn malformed(reason: impl std::fmt::Display) -> StoreError {
    StoreError::Malformed {
        what: "fence record",
        reason: reason.to_string(),
    }
}

fn encode(r: &FenceRecord) -> Vec<u8> {
    let mut v = Vec::with_capacity(RECORD_LEN + CHECK_LEN);
    v.extend_from_slice(&r.fence.index.to_be_bytes());
    v.extend_from_slice(&r.fence.version.to_be_bytes());
    v.push(u8::from(r.tombstone));
    v.extend_from_slice(&r.at_ms.to_be_bytes());
    let check = blake3::hash(&v);
    v.extend_from_slice(&check.as_bytes()[..CHECK_LEN]);
    v
}

fn decode(v: &[u8]) -> Result<FenceRecord, StoreError> {
    if v.len() != RECORD_LEN + CHECK_LEN {
        return Err(malformed(format!("{} bytes", v.len())));
    }
    let (body, check) = v.split_at(RECORD_LEN);
    if &blake3::hash(body).as_bytes()[..CHECK_LEN] != check {
        return Err(malformed("checksum mismatch"));
    }
    let u = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&body[at..at + 8]);
        u64::from_be_bytes(b)
    };
    let tombstone = match body[16] {
        0 => false,
        1 => true,
        other => return Err(malformed(format!("tombstone flag {other}"))),
    };
    Ok(FenceRecord {
        fence: Fence {
            index: u(0),
            version: u(8),
        },
        tombstone,
        at_ms: u(17),
    })
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One modality's fences.
#[derive(Clone)]
pub struct Fences {
    db: Database,
    ks: Keyspace,
    /// Tombstones by age (`at_ms BE ‖ id` → empty), so that purging reads only what it purges.
    tombs: Keyspace,
    durability: Durability,
}

fn tomb_key(at_ms: u64, id: &EntityId) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + id.as_str().len());
    k.extend_from_slice(&at_ms.to_be_bytes());
    k.extend_from_slice(id.as_str().as_bytes());
    k
}

impl Fences {
    /// Opens (or creates) the keyspace of `kind`.
    ///
    /// # Errors
    /// fjall's.
    pub fn open(
        db: &Database,
        kind: ModalityKind,
        durability: Durability,
    ) -> Result<Self, StoreError> {
        let ks = db.keyspace(
            &format!("fence.{}", kind.name()),
            KeyspaceCreateOptions::default,
        )?;
        let tombs = db.keyspace(
            &format!("fence_tombs.{}", kind.name()),
            KeyspaceCreateOptions::default,
        )?;
        Ok(Self {
            db: db.clone(),
            ks,
            tombs,
            durability,
        })
    }

    /// The record of `id`, if any. A record that fails its checksum is reported, never guessed.
    ///
    /// # Errors
    /// A corrupt record; fjall's.
    pub fn get(&self, id: &EntityId) -> Result<Option<FenceRecord>, StoreError> {
        self.ks
            .get(id.as_str().as_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// The record of `id`; a corrupt one counts as none (it is overwritten by the write it then
    /// admits) rather than blocking every write of the entity.
    fn trusted(&self, id: &EntityId) -> Result<Option<FenceRecord>, StoreError> {
        match self.get(id) {
            Err(StoreError::Malformed { reason, .. }) => {
                tracing::warn!(%id, %reason, "a corrupt fence record is ignored");
                Ok(None)
            }
            other => other,
        }
    }

    /// Whether an import produced by `fence` is admitted: nothing held, an item at most as new
    /// (the same index again is admitted: a retry, or a crash between fence and item), or a
    /// tombstone strictly older.
    ///
    /// # Errors
    /// As [`Fences::get`].
    pub fn admit_import(&self, id: &EntityId, fence: Fence) -> Result<Admit, StoreError> {
        Ok(match self.trusted(id)? {
            Some(held) if held.tombstone && held.fence.index >= fence.index => {
                Admit::Superseded { held }
            }
            Some(held) if !held.tombstone && held.fence.index > fence.index => {
                Admit::Superseded { held }
            }
            _ => Admit::Yes,
        })
    }

    /// Whether a removal by the entry at `index` is admitted: only over something strictly older.
    ///
    /// # Errors
    /// As [`Fences::get`].
    pub fn admit_removal(&self, id: &EntityId, index: u64) -> Result<Admit, StoreError> {
        Ok(match self.trusted(id)? {
            Some(held) if held.fence.index >= index => Admit::Superseded { held },
            _ => Admit::Yes,
        })
    }

    /// Records that `id`'s item is now the one produced by `fence` (or, `tombstone`, removed by
    /// it). Durable as the store's own writes: fsynced here with [`Durability::EachWrite`], by the
    /// caller's group fsync with `Deferred`.
    ///
    /// # Errors
    /// fjall's.
    pub fn record(&self, id: &EntityId, fence: Fence, tombstone: bool) -> Result<(), StoreError> {
        let mut batch = match self.durability {
            Durability::EachWrite => self.db.batch().durability(Some(PERSIST_MODE)),
            Durability::Deferred => self.db.batch().durability(None),
        };
        let r = FenceRecord {
            fence,
            tombstone,
            at_ms: now_ms(),
        };
        batch.insert(&self.ks, id.as_str().as_bytes(), encode(&r));
        if tombstone {
            batch.insert(&self.tombs, tomb_key(r.at_ms, id), []);
        }
        batch.commit()?;
        Ok(())
    }

    /// Removes tombstones written before `before_ms` (this node's clock); returns how many. Reads
    /// only the tombstones it purges (they are indexed by age). A record replaced since (the id was
    /// imported again, or removed again later) is left. Not fsynced on its own: a purge lost in a
    /// crash is done again.
    ///
    /// # Errors
    /// fjall's.
    pub fn purge_tombstones(&self, before_ms: u64) -> Result<u64, StoreError> {
        let mut batch = self.db.batch().durability(None);
        let mut purged = 0;
        for guard in self.tombs.range(..before_ms.to_be_bytes().to_vec()) {
            let (k, _) = guard.into_inner()?;
            batch.remove(&self.tombs, k.clone());
            let Some(id) = k
                .get(8..)
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|s| EntityId::new(s).ok())
            else {
                continue;
            };
            let at = k.get(..8).map(|b| {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                u64::from_be_bytes(a)
            });
            // A corrupt record fences nothing reliably: it goes too.
            let current = match self.get(&id) {
                Ok(Some(r)) => r.tombstone && Some(r.at_ms) == at,
                Ok(None) => false,
                Err(_) => true,
            };
            if current {
                batch.remove(&self.ks, id.as_str().as_bytes());
                purged += 1;
            }
        }
        batch.commit()?;
        Ok(purged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fences() -> (tempfile::TempDir, Fences) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::builder(dir.path()).open().unwrap();
        let f = Fences::open(&db, ModalityKind::Graph, Durability::EachWrite).unwrap();
        (dir, f)
    }

    fn id(s: &str) -> EntityId {
        EntityId::new(s).unwrap()
    }

    fn at(index: u64) -> Fence {
        Fence { index, version: 1 }
    }

    #[test]
    fn imports_never_overtake_and_the_same_import_is_admitted_again() {
        let (_d, f) = fences();
        let a = id("a");
        assert_eq!(f.admit_import(&a, at(5)).unwrap(), Admit::Yes);
        f.record(&a, at(5), false).unwrap();
        assert_eq!(f.admit_import(&a, at(5)).unwrap(), Admit::Yes, "a retry");
        assert_eq!(f.admit_import(&a, at(9)).unwrap(), Admit::Yes);
        f.record(&a, at(9), false).unwrap();
        assert!(matches!(
            f.admit_import(&a, at(5)).unwrap(),
            Admit::Superseded { held } if held.fence.index == 9
        ));
    }

    #[test]
    fn a_tombstone_stops_older_imports_and_removals_only_win_over_older_items() {
        let (dir, f) = fences();
        let a = id("a");
        f.record(&a, at(5), false).unwrap();
        assert!(matches!(
            f.admit_removal(&a, 4).unwrap(),
            Admit::Superseded { .. }
        ));
        assert_eq!(f.admit_removal(&a, 7).unwrap(), Admit::Yes);
        f.record(&a, at(7), true).unwrap();
        assert!(matches!(
            f.admit_import(&a, at(5)).unwrap(),
            Admit::Superseded { held } if held.tombstone
        ));
        assert!(matches!(
            f.admit_import(&a, at(7)).unwrap(),
            Admit::Superseded { .. }
        ));
        assert_eq!(
            f.admit_import(&a, at(8)).unwrap(),
            Admit::Yes,
            "re-registered"
        );
        // Reopened: the records are durable.
        drop(f);
        let db = Database::builder(dir.path()).open().unwrap();
        let f = Fences::open(&db, ModalityKind::Graph, Durability::EachWrite).unwrap();
        assert!(f.get(&a).unwrap().unwrap().tombstone);
    }

    #[test]
    fn purging_removes_old_tombstones_only_and_a_corrupt_record_is_never_trusted() {
        let (_d, f) = fences();
        f.record(&id("gone"), at(3), true).unwrap();
        f.record(&id("back"), at(5), true).unwrap();
        f.record(&id("back"), at(6), false).unwrap();
        f.record(&id("live"), at(4), false).unwrap();
        assert_eq!(f.purge_tombstones(0).unwrap(), 0, "none older than 0");
        assert_eq!(f.purge_tombstones(u64::MAX).unwrap(), 1);
        assert_eq!(f.get(&id("gone")).unwrap(), None);
        assert!(f.get(&id("live")).unwrap().is_some());
        assert!(
            !f.get(&id("back")).unwrap().unwrap().tombstone,
            "re-imported since: kept"
        );
        assert_eq!(f.tombs.iter().count(), 0, "the age index is emptied");
        let mut bad = encode(&f.get(&id("live")).unwrap().unwrap());
        bad[3] ^= 1;
        f.ks.insert("live", bad).unwrap();
        assert!(matches!(
            f.get(&id("live")),
            Err(StoreError::Malformed { .. })
        ));
        assert_eq!(f.admit_import(&id("live"), at(1)).unwrap(), Admit::Yes);
    }
}
