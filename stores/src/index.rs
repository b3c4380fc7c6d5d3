//! Per-engine bookkeeping of content hashes and bucket digests, written in the same batch as the
//! items they describe, and the check of a recorded hash against a recomputed one.
//!
//! Keyspaces: `<engine>.hash` maps `bucket (u16 BE) ++ id` to the item's 32-byte hash, so listing a
//! bucket is one prefix scan; `<engine>.digest` maps `bucket (u16 BE)` to the bucket's XOR digest.

use std::collections::BTreeMap;
use std::ops::Range;

use fjall::{Database, Keyspace, OwnedWriteBatch};

use crate::EntityId;
use crate::error::{Result, StoreError, corrupt};
use crate::hash::{BUCKETS, BucketDigest, ContentHash, bucket_of};

pub(crate) struct ItemIndex {
    hashes: Keyspace,
    digests: Keyspace,
}

fn hash_key(id: &EntityId) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + id.as_bytes().len());
    k.extend_from_slice(&bucket_of(id).to_be_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

fn to32(what: &'static str, v: &[u8]) -> Result<[u8; 32]> {
    v.try_into()
        .map_err(|_| corrupt(what, format!("expected 32 bytes, found {}", v.len())))
}

impl ItemIndex {
    pub(crate) fn open(db: &Database, engine: &str) -> Result<Self> {
        Ok(Self {
            hashes: crate::keyspace::open(db, &format!("{engine}.hash"))?,
            digests: crate::keyspace::open(db, &format!("{engine}.digest"))?,
        })
    }

    pub(crate) fn get(&self, id: &EntityId) -> Result<Option<ContentHash>> {
        match self.hashes.get(hash_key(id))? {
            Some(v) => Ok(Some(ContentHash(to32("stored item hash", &v)?))),
            None => Ok(None),
        }
    }

    pub(crate) fn digest(&self, bucket: u16) -> Result<BucketDigest> {
        match self.digests.get(bucket.to_be_bytes())? {
            Some(v) => Ok(BucketDigest(to32("stored bucket digest", &v)?)),
            None => Ok(BucketDigest::default()),
        }
    }

    /// Digests of the buckets in `range` (clamped to `0..BUCKETS`), one per bucket, in order.
    pub(crate) fn digests(&self, range: Range<u16>) -> Result<Vec<(u16, BucketDigest)>> {
        let end = range.end.min(BUCKETS);
        let mut out: Vec<(u16, BucketDigest)> = (range.start..end)
            .map(|b| (b, BucketDigest::default()))
            .collect();
        if range.start >= end {
            return Ok(out);
        }
        for g in self
            .digests
            .range(range.start.to_be_bytes()..end.to_be_bytes())
        {
            let (k, v) = g.into_inner()?;
            let b = u16::from_be_bytes(
                k.as_ref()
                    .try_into()
                    .map_err(|_| corrupt("stored digest key", "not 2 bytes"))?,
            );
            if let Some(slot) = out.get_mut(usize::from(b - range.start)) {
                slot.1 = BucketDigest(to32("stored bucket digest", &v)?);
            }
        }
        Ok(out)
    }

    pub(crate) fn bucket_items(&self, bucket: u16) -> Result<Vec<(EntityId, ContentHash)>> {
        let mut out = Vec::new();
        for g in self.hashes.prefix(bucket.to_be_bytes()) {
            let (k, v) = g.into_inner()?;
            let id = crate::id::entity_id_from_key(k.get(2..).unwrap_or_default())?;
            out.push((id, ContentHash(to32("stored item hash", &v)?)));
        }
        Ok(out)
    }

    pub(crate) fn txn(&self) -> IndexTxn<'_> {
        IndexTxn {
            index: self,
            changes: BTreeMap::new(),
        }
    }
}

/// Hash changes collected while an engine builds one write batch; several changes to one bucket are
/// folded into one digest write (a batch must not write a key twice).
pub(crate) struct IndexTxn<'a> {
    index: &'a ItemIndex,
    changes: BTreeMap<EntityId, Option<ContentHash>>,
}

impl IndexTxn<'_> {
    /// Records the item's new hash (`None`: the item is gone).
    pub(crate) fn set(&mut self, id: &EntityId, hash: Option<ContentHash>) {
        self.changes.insert(id.clone(), hash);
    }

    /// Adds the hash and digest writes to `batch`.
    pub(crate) fn write(self, batch: &mut OwnedWriteBatch) -> Result<()> {
        let mut digests: BTreeMap<u16, BucketDigest> = BTreeMap::new();
        for (id, new) in &self.changes {
            let old = self.index.get(id)?;
            if old == *new {
                continue;
            }
            let bucket = bucket_of(id);
            let d = match digests.get_mut(&bucket) {
                Some(d) => d,
                None => digests.entry(bucket).or_insert(self.index.digest(bucket)?),
            };
            if let Some(o) = &old {
                d.toggle(id, o);
            }
            match new {
                Some(n) => {
                    d.toggle(id, n);
                    batch.insert(&self.index.hashes, hash_key(id), n.0.to_vec());
                }
                None => batch.remove(&self.index.hashes, hash_key(id)),
            }
        }
        for (bucket, d) in digests {
            if d.is_empty() {
                batch.remove(&self.index.digests, bucket.to_be_bytes());
            } else {
                batch.insert(&self.index.digests, bucket.to_be_bytes(), d.0.to_vec());
            }
        }
        Ok(())
    }
}

/// Compares a recorded hash with a recomputed one (an engine's check of its stored items against
/// what this index recorded for them).
pub(crate) fn check_recorded(
    what: &'static str,
    id: &EntityId,
    recorded: Option<ContentHash>,
    actual: Option<ContentHash>,
) -> Result<Option<ContentHash>> {
    if recorded != actual {
        let show = |h: Option<ContentHash>| h.map_or_else(|| "none".to_owned(), |h| h.to_hex());
        return Err(StoreError::HashMismatch {
            what,
            id: id.to_string(),
            expected: show(recorded),
            actual: show(actual),
        });
    }
    Ok(actual)
}
