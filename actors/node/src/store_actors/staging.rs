//! Staged payloads: the durable copy of a write's items that the node taking the write keeps from
//! before the registry commit until the items are held by their replicas.
//!
//! The registry commits hashes, not payloads. Without a staged copy, a write whose commit was
//! acknowledged by the quorum but whose answer never reached the proxy (the leader died, the commit
//! timed out and the entry was committed later), or whose proxy was killed between commit and
//! distribution, leaves the registry pointing at content that no store holds: the entity reads as
//! `502 drift_detected` for good. With it, a read (or the staging sweep) finds the committed
//! content on the node that took the write, verifies it against the registry's hash and repairs the
//! replicas from it.
//!
//! Stored in the node's stores database, one keyspace per modality (`staging.<modality>`), keyed by
//! `hash ‖ id`; the value is the CBOR of [`StagedRecord`]. The content hash is the checksum: a
//! record whose payload does not hash to its key is reported as corrupt, never served.

use std::time::{SystemTime, UNIX_EPOCH};

use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use serde::{Deserialize, Serialize};
use verisim_stores::db::PERSIST_MODE;
use verisim_stores::{ContentHash, Durability, EntityId, ExportedItem, ModalityKind, StoreError};

/// Most records one listing returns (the sweep pages through with `after`).
pub const LIST_LIMIT: usize = 1024;

/// One staged item and when it was staged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagedRecord {
    /// Wall-clock milliseconds of this node when it was staged (only compared with this node's
    /// own clock, by the sweep, to leave young records to the write that staged them).
    pub staged_at_ms: u64,
    pub item: ExportedItem,
}

/// An entry of a listing: which item, and when it was staged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedEntry {
    pub id: EntityId,
    pub hash: ContentHash,
    pub staged_at_ms: u64,
}

/// One modality's staging keyspace.
#[derive(Clone)]
pub struct Staging {
    kind: ModalityKind,
    db: Database,
    ks: Keyspace,
    durability: Durability,
}

fn malformed(reason: impl std::fmt::Display) -> StoreError {
    StoreError::Malformed {
        what: "staged record",
        reason: reason.to_string(),
    }
}

fn key(hash: &ContentHash, id: &EntityId) -> Vec<u8> {
    let mut k = Vec::with_capacity(32 + id.as_str().len());
    k.extend_from_slice(&hash.0);
    k.extend_from_slice(id.as_str().as_bytes());
    k
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Staging {
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
            &format!("staging.{}", kind.name()),
            KeyspaceCreateOptions::default,
        )?;
        Ok(Self {
            kind,
            db: db.clone(),
            ks,
            durability,
        })
    }

    /// Stores `item` (checked: this modality, its payload hashing to its hash). With
    /// [`Durability::EachWrite`] it is fsynced before this returns; with `Deferred` the caller
    /// waits for the group fsync.
    ///
    /// # Errors
    /// A wrong modality or hash ([`StoreError::InvalidInput`], [`StoreError::HashMismatch`]);
    /// fjall's.
    pub fn stage(&self, item: ExportedItem) -> Result<(), StoreError> {
        if item.modality != self.kind {
            return Err(StoreError::InvalidInput(format!(
                "a {:?} item was staged in the {:?} store",
                item.modality, self.kind
            )));
        }
        check_hash(&item, &item.hash)?;
        let k = key(&item.hash, &item.id);
        let record = StagedRecord {
            staged_at_ms: now_ms(),
            item,
        };
        let mut value = Vec::new();
        ciborium::into_writer(&record, &mut value).map_err(malformed)?;
        let mut batch = match self.durability {
            Durability::EachWrite => self.db.batch().durability(Some(PERSIST_MODE)),
            Durability::Deferred => self.db.batch().durability(None),
        };
        batch.insert(&self.ks, k, value);
        batch.commit()?;
        Ok(())
    }

    /// The staged item of `id` with content `hash`, verified.
    ///
    /// # Errors
    /// A record that does not decode or whose payload does not match its hash; fjall's.
    pub fn get(
        &self,
        id: &EntityId,
        hash: &ContentHash,
    ) -> Result<Option<ExportedItem>, StoreError> {
        let Some(bytes) = self.ks.get(key(hash, id))? else {
            return Ok(None);
        };
        let record = decode(&bytes)?;
        if record.item.id != *id || record.item.modality != self.kind {
            return Err(malformed(format!(
                "the record under {id}/{} is for another item",
                hash.to_hex()
            )));
        }
        check_hash(&record.item, hash)?;
        Ok(Some(record.item))
    }

    /// Removes the records of these items (missing ones are skipped); returns how many existed.
    /// Not fsynced on its own: a removal lost in a crash leaves a record the sweep removes again.
    ///
    /// # Errors
    /// fjall's.
    pub fn remove(&self, items: &[(EntityId, ContentHash)]) -> Result<u32, StoreError> {
        let mut removed = 0;
        let mut batch = self.db.batch().durability(None);
        for (id, hash) in items {
            let k = key(hash, id);
            if self.ks.contains_key(&k)? {
                removed += 1;
                batch.remove(&self.ks, k);
            }
        }
        batch.commit()?;
        Ok(removed)
    }

    /// Up to [`LIST_LIMIT`] entries whose key follows `after` (all from the start when `None`).
    /// Records that do not decode are listed with their key's hash and id and time 0, so that the
    /// sweep removes them.
    ///
    /// # Errors
    /// fjall's.
    pub fn list(
        &self,
        after: Option<(ContentHash, EntityId)>,
    ) -> Result<Vec<StagedEntry>, StoreError> {
        let start = after.map(|(h, id)| key(&h, &id));
        let iter: Box<dyn Iterator<Item = fjall::Guard>> = match &start {
            Some(s) => Box::new(self.ks.range::<Vec<u8>, _>((
                std::ops::Bound::Excluded(s.clone()),
                std::ops::Bound::Unbounded,
            ))),
            None => Box::new(self.ks.iter()),
        };
        let mut out = Vec::new();
        for guard in iter.take(LIST_LIMIT) {
            let (k, v) = guard.into_inner()?;
            let Some((hash, id)) = split_key(&k) else {
                continue;
            };
            let staged_at_ms = decode(&v).map_or(0, |r| r.staged_at_ms);
            out.push(StagedEntry {
                id,
                hash,
                staged_at_ms,
            });
        }
        Ok(out)
    }
}

fn split_key(k: &[u8]) -> Option<(ContentHash, EntityId)> {
    let (h, id) = k.split_at_checked(32)?;
    let hash = ContentHash(h.try_into().ok()?);
    let id = EntityId::new(std::str::from_utf8(id).ok()?).ok()?;
    Some((hash, id))
}

fn decode(bytes: &[u8]) -> Result<StagedRecord, StoreError> {
    // Strict like every record read back: trailing bytes are malformed.
    verisim_vocab::cbor::decode_exact(bytes).map_err(malformed)
}

fn check_hash(item: &ExportedItem, expected: &ContentHash) -> Result<(), StoreError> {
    let actual = ContentHash::of(item.modality.hash_domain(), &item.payload.0);
    if actual == *expected && item.hash == *expected {
        Ok(())
    } else {
        Err(StoreError::HashMismatch {
            what: "staged item",
            id: item.id.to_string(),
            expected: expected.to_hex(),
            actual: actual.to_hex(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store_actors::Engine;
    use verisim_stores::{GraphInput, GraphStore, ItemInput};

    fn item(db: &Database, id: &str, name: &str) -> ExportedItem {
        let g =
            <GraphStore as Engine>::open(db, &crate::store_actors::StoreSetup::default()).unwrap();
        g.prepare(ItemInput::Graph {
            id: EntityId::new(id).unwrap(),
            graph: GraphInput {
                properties: [("name".to_owned(), verisim_stores::Value::Text(name.into()))]
                    .into_iter()
                    .collect(),
                edges: Vec::new(),
            },
        })
        .unwrap()
    }

    #[test]
    fn a_staged_item_survives_a_reopen_is_verified_listed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = {
            let db = Database::builder(dir.path()).open().unwrap();
            let s = Staging::open(&db, ModalityKind::Graph, Durability::EachWrite).unwrap();
            let a = item(&db, "a", "one");
            let b = item(&db, "b", "two");
            s.stage(a.clone()).unwrap();
            s.stage(b.clone()).unwrap();
            (a, b)
        };
        let db = Database::builder(dir.path()).open().unwrap();
        let s = Staging::open(&db, ModalityKind::Graph, Durability::EachWrite).unwrap();
        assert_eq!(s.get(&a.id, &a.hash).unwrap(), Some(a.clone()));
        assert_eq!(
            s.get(&a.id, &b.hash).unwrap(),
            None,
            "another hash is another item"
        );
        let listed = s.list(None).unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().all(|e| e.staged_at_ms > 0));
        let first = listed[0].clone();
        let rest = s.list(Some((first.hash, first.id.clone()))).unwrap();
        assert_eq!(rest.len(), 1);
        assert_ne!(rest[0], first);
        assert_eq!(
            s.remove(&[(a.id.clone(), a.hash), (b.id.clone(), a.hash)])
                .unwrap(),
            1
        );
        assert_eq!(s.get(&a.id, &a.hash).unwrap(), None);
        assert_eq!(s.list(None).unwrap().len(), 1);
    }

    #[test]
    fn a_wrong_hash_or_modality_is_refused_and_a_corrupt_record_is_never_served() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::builder(dir.path()).open().unwrap();
        let s = Staging::open(&db, ModalityKind::Graph, Durability::EachWrite).unwrap();
        let mut forged = item(&db, "a", "one");
        forged.payload.0.push(0);
        assert!(matches!(
            s.stage(forged),
            Err(StoreError::HashMismatch { .. })
        ));
        let good = item(&db, "a", "one");
        let vector = Staging::open(&db, ModalityKind::Vector, Durability::EachWrite).unwrap();
        assert!(matches!(
            vector.stage(good.clone()),
            Err(StoreError::InvalidInput(_))
        ));
        // A record flipped on disk: its payload no longer hashes to its key.
        s.stage(good.clone()).unwrap();
        let mut record = StagedRecord {
            staged_at_ms: 1,
            item: good.clone(),
        };
        record.item.payload.0[0] ^= 1;
        let mut bytes = Vec::new();
        ciborium::into_writer(&record, &mut bytes).unwrap();
        s.ks.insert(key(&good.hash, &good.id), bytes).unwrap();
        assert!(matches!(
            s.get(&good.id, &good.hash),
            Err(StoreError::HashMismatch { .. })
        ));
        s.ks.insert(key(&good.hash, &good.id), b"not cbor".to_vec())
            .unwrap();
        assert!(s.get(&good.id, &good.hash).is_err());
        assert_eq!(
            s.list(None).unwrap()[0].staged_at_ms,
            0,
            "listed for removal"
        );
    }
}
