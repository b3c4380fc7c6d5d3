//! Checkpoints of the in-memory HNSW graphs, so that a restart loads each graph instead of
//! rebuilding it (rebuilding costs as much as building: tens of seconds of CPU per 100k vectors).
//!
//! * `vector.ckpt`: per collection a header (`name 0 'h'` → CBOR {bytes, chunks, BLAKE3 checksum})
//!   and the CBOR snapshot (slot → id table, [`HnswSnapshot`], and the ids still pending in the
//!   tail, oldest first) cut into 1 MiB chunks (`name 0 'c' u32 BE`).
//! * `vector.log`: every vector write since the last checkpoint (`seq u64 BE` → CBOR (collection,
//!   id)), written in the same batch as the write itself.
//!
//! At open, a collection with a valid checkpoint is restored and the logged writes are replayed
//! against fjall's current data (a logged id with data is re-inserted, one without is removed); the
//! pending ids are reloaded from fjall into the tail before the replay, so a checkpoint never has to
//! wait for the tail to be indexed and loses none of it; a
//! missing or damaged checkpoint falls back to a full rebuild from fjall, which is always correct.
//! [`VectorStore::checkpoint`] writes all checkpoints and empties the log in one durable batch; it
//! runs by itself once the log holds [`CHECKPOINT_EVERY`] writes.

use std::collections::{BTreeSet, HashMap, HashSet};

use fjall::{Keyspace, OwnedWriteBatch};
use serde::{Deserialize, Serialize};

use super::hnsw::{Hnsw, HnswSnapshot};
use super::tail::{TAIL_LIMIT, Tail};
use super::{Collection, CollectionDef, HnswParams, VectorStore, data_key, from_le};
use crate::EntityId;
use crate::codec::{from_cbor_exact, to_cbor};
use crate::durability::durable_batch;
use crate::error::{Result, corrupt};
use crate::hash::ContentHash;

/// Logged writes after which a checkpoint is taken automatically.
pub const CHECKPOINT_EVERY: u64 = 20_000;
const CHUNK: usize = 1 << 20;
const WHAT: &str = "vector index checkpoint";

#[derive(Serialize, Deserialize)]
struct Header {
    bytes: u64,
    chunks: u32,
    checksum: ContentHash,
}

#[derive(Serialize, Deserialize)]
struct CollSnapshot {
    def: CollectionDef,
    id_of: Vec<Option<EntityId>>,
    hnsw: HnswSnapshot,
    /// Pending ids, oldest first (absent in checkpoints written before the tail existed).
    #[serde(default)]
    tail: Vec<EntityId>,
}

fn header_key(coll: &str) -> Vec<u8> {
    let mut k = coll.as_bytes().to_vec();
    k.extend_from_slice(&[0, b'h']);
    k
}

fn chunk_key(coll: &str, i: u32) -> Vec<u8> {
    let mut k = coll.as_bytes().to_vec();
    k.extend_from_slice(&[0, b'c']);
    k.extend_from_slice(&i.to_be_bytes());
    k
}

fn checksum(bytes: &[u8]) -> ContentHash {
    ContentHash::of("verisim stores vector checkpoint v1", bytes)
}

fn header(ckpt: &Keyspace, coll: &str) -> Result<Option<Header>> {
    match ckpt.get(header_key(coll))? {
        Some(h) => Ok(Some(from_cbor_exact(WHAT, &h)?)),
        None => Ok(None),
    }
}

/// Adds the removal of a collection's checkpoint to `b`.
pub(crate) fn remove(ckpt: &Keyspace, coll: &str, b: &mut OwnedWriteBatch) -> Result<()> {
    // A damaged header still must not block dropping the collection.
    let chunks = header(ckpt, coll).ok().flatten().map_or(0, |h| h.chunks);
    for i in 0..chunks {
        b.remove(ckpt, chunk_key(coll, i));
    }
    b.remove(ckpt, header_key(coll));
    Ok(())
}

/// Reads the write log: (collection, id) in write order, and the next free sequence number.
pub(crate) fn read_log(log: &Keyspace) -> Result<(Vec<(String, EntityId)>, u64)> {
    let mut out = Vec::new();
    let mut next = 0;
    for g in log.iter() {
        let (k, v) = g.into_inner()?;
        let seq = u64::from_be_bytes(
            k.as_ref()
                .try_into()
                .map_err(|_| corrupt("vector write log", "key is not 8 bytes"))?,
        );
        next = seq + 1;
        out.push(from_cbor_exact("vector write log", &v)?);
    }
    Ok((out, next))
}

/// Restores a collection from its checkpoint and replays the logged writes; `None` if there is no
/// usable checkpoint (the caller rebuilds from scratch).
pub(crate) fn restore(
    ckpt: &Keyspace,
    data: &Keyspace,
    name: &str,
    def: CollectionDef,
    params: HnswParams,
    log: &[(String, EntityId)],
) -> Result<Option<Collection>> {
    let Some(h) = header(ckpt, name)? else {
        return Ok(None);
    };
    let mut bytes = Vec::with_capacity(usize::try_from(h.bytes).unwrap_or(0));
    for i in 0..h.chunks {
        let c = ckpt
            .get(chunk_key(name, i))?
            .ok_or_else(|| corrupt(WHAT, format!("chunk {i} missing")))?;
        bytes.extend_from_slice(&c);
    }
    if bytes.len() as u64 != h.bytes || checksum(&bytes) != h.checksum {
        return Err(corrupt(WHAT, "checksum or length mismatch"));
    }
    let snap: CollSnapshot = from_cbor_exact(WHAT, &bytes)?;
    drop(bytes);
    if snap.def != def || snap.id_of.len() != snap.hnsw.len() {
        return Err(corrupt(WHAT, "does not match the collection"));
    }
    // A live slot has exactly one id and every id one live slot; a tombstone has none. Anything
    // else would return deleted vectors, or an id twice, from searches.
    let mut ids_seen = HashSet::new();
    for (s, id) in snap.id_of.iter().enumerate() {
        match (snap.hnsw.is_deleted(s), id) {
            (None, _) => return Err(corrupt(WHAT, "slot tables disagree")),
            (Some(true), Some(_)) => return Err(corrupt(WHAT, "a tombstone with an id")),
            (Some(false), Some(id)) if !ids_seen.insert(id) => {
                return Err(corrupt(WHAT, "an id in two live slots"));
            }
            _ => {}
        }
    }
    drop(ids_seen);
    let dim = def.dim as usize;
    let mut missing = BTreeSet::new();
    let ids = &snap.id_of;
    let ann = Hnsw::restore(dim, def.metric, params, snap.hnsw, |s| {
        let Some(id) = &ids[s as usize] else {
            return Err(corrupt(WHAT, "live slot without an id"));
        };
        match data.get(data_key(name, id))? {
            Some(v) => Ok(def.metric.prepare(&from_le(&v, dim)?)),
            None => {
                // Deleted after the checkpoint: the log replay tombstones it; the vector only
                // routes searches until then.
                missing.insert(id.clone());
                Ok(vec![0.0; dim])
            }
        }
    })?;
    let mut slot_of = HashMap::new();
    for (s, id) in snap.id_of.iter().enumerate() {
        if let Some(id) = id {
            #[allow(clippy::cast_possible_truncation)]
            slot_of.insert(id.clone(), s as u32);
        }
    }
    let mut c = Collection {
        def,
        from_checkpoint: true,
        ann,
        slot_of,
        id_of: snap.id_of,
        tail: Tail::default(),
    };
    for id in &snap.tail {
        if c.slot_of.contains_key(id) || c.tail.contains(id) {
            return Err(corrupt(
                WHAT,
                "a pending id that is also in the graph or pending twice",
            ));
        }
        // Without data it was deleted after the checkpoint (and the replay below says so).
        if let Some(v) = data.get(data_key(name, id))? {
            c.put(id, &from_le(&v, dim)?, TAIL_LIMIT);
        }
    }
    for (coll, id) in log.iter().filter(|(c, _)| c == name) {
        debug_assert_eq!(coll, name);
        match data.get(data_key(name, id))? {
            Some(v) => c.put(id, &from_le(&v, dim)?, TAIL_LIMIT),
            None => c.remove(id, params),
        }
    }
    if missing.iter().any(|id| c.slot_of.contains_key(id)) {
        return Err(corrupt(WHAT, "a vector vanished without a logged write"));
    }
    Ok(Some(c))
}

impl VectorStore {
    /// Writes a checkpoint of every collection's HNSW graph and empties the write log, in one
    /// durable batch, so the next open restores the graphs instead of rebuilding them. Runs by
    /// itself every [`CHECKPOINT_EVERY`] vector writes; call it at shutdown too.
    ///
    /// # Errors
    /// Storage errors.
    pub fn checkpoint(&mut self) -> Result<()> {
        let started = std::time::Instant::now();
        let mut b = durable_batch(&self.db);
        let mut total = 0usize;
        for (name, c) in &self.collections {
            let snap = CollSnapshot {
                def: c.def,
                id_of: c.id_of.clone(),
                hnsw: c.ann.snapshot(),
                tail: c.tail.ids().cloned().collect(),
            };
            let bytes = to_cbor(&snap)?;
            total += bytes.len();
            let old = header(&self.ckpt, name)
                .ok()
                .flatten()
                .map_or(0, |h| h.chunks);
            let mut n = 0u32;
            for (i, ch) in (0u32..).zip(bytes.chunks(CHUNK)) {
                b.insert(&self.ckpt, chunk_key(name, i), ch.to_vec());
                n = i + 1;
            }
            for i in n..old {
                b.remove(&self.ckpt, chunk_key(name, i));
            }
            let h = Header {
                bytes: bytes.len() as u64,
                chunks: n,
                checksum: checksum(&bytes),
            };
            b.insert(&self.ckpt, header_key(name), to_cbor(&h)?);
        }
        for g in self.log.iter() {
            b.remove(&self.log, g.key()?);
        }
        b.commit()?;
        self.log_len = 0;
        tracing::info!(
            bytes = total,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "checkpointed vector indexes"
        );
        Ok(())
    }

    /// Adds log entries for writes in `b`; call [`VectorStore::logged`] after the commit.
    pub(crate) fn log_writes<'a>(
        &self,
        b: &mut OwnedWriteBatch,
        writes: impl IntoIterator<Item = (&'a str, &'a EntityId)>,
    ) -> Result<u64> {
        let mut seq = self.next_seq;
        for (coll, id) in writes {
            b.insert(&self.log, seq.to_be_bytes(), to_cbor(&(coll, id))?);
            seq += 1;
        }
        Ok(seq)
    }

    /// Records that a batch with log entries up to `next_seq` committed; checkpoints if due.
    pub(crate) fn logged(&mut self, next_seq: u64) {
        self.log_len += next_seq - self.next_seq;
        self.next_seq = next_seq;
        if self.log_len >= CHECKPOINT_EVERY
            && let Err(e) = self.checkpoint()
        {
            // The write itself is durable; a later checkpoint (or a rebuild at open) covers it.
            tracing::warn!(error = %e, "vector index checkpoint failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::Limits;
    use crate::testutil::{id, temp_db};
    use crate::vector::{Metric, SearchMode};

    /// Rewrites collection `c`'s checkpoint after `f` changed it, with a valid checksum: only the
    /// structural checks stand between a crafted checkpoint and the search code.
    fn rewrite(s: &VectorStore, f: impl FnOnce(&mut CollSnapshot)) {
        let h = header(&s.ckpt, "c").unwrap().unwrap();
        let mut bytes = Vec::new();
        for i in 0..h.chunks {
            bytes.extend_from_slice(&s.ckpt.get(chunk_key("c", i)).unwrap().unwrap());
        }
        let mut snap: CollSnapshot = from_cbor_exact(WHAT, &bytes).unwrap();
        f(&mut snap);
        let bytes = to_cbor(&snap).unwrap();
        let mut b = s.db.batch();
        for i in 0..h.chunks {
            b.remove(&s.ckpt, chunk_key("c", i));
        }
        let mut n = 0;
        for (i, ch) in (0u32..).zip(bytes.chunks(CHUNK)) {
            b.insert(&s.ckpt, chunk_key("c", i), ch.to_vec());
            n = i + 1;
        }
        let h = Header {
            bytes: bytes.len() as u64,
            chunks: n,
            checksum: checksum(&bytes),
        };
        b.insert(&s.ckpt, header_key("c"), to_cbor(&h).unwrap());
        b.commit().unwrap();
    }

    #[test]
    fn crafted_checkpoints_are_refused_and_the_index_rebuilt() {
        let seed = 41;
        println!("seed {seed}");
        let (_d, db) = temp_db();
        let mut s = VectorStore::open(&db, &Limits::default()).unwrap();
        s.create_collection(
            "c",
            CollectionDef {
                dim: 8,
                metric: Metric::L2,
            },
        )
        .unwrap();
        let vs = crate::datasets::DataSet::Uniform.generate(seed, 400, 8);
        let ids: Vec<EntityId> = (0..vs.len()).map(|i| id(&format!("v{i}"))).collect();
        s.upsert_many("c", ids.iter().cloned().zip(vs.iter().cloned()).collect())
            .unwrap();
        s.index_pending(usize::MAX);
        for e in &ids[..20] {
            s.delete("c", e).unwrap();
        }
        s.checkpoint().unwrap();
        let live = s.index_stats("c").unwrap().live;
        let levels = |snap: &CollSnapshot, s: usize| snap.hnsw.links[s].len();

        type Tamper = fn(&mut CollSnapshot, &dyn Fn(&CollSnapshot, usize) -> usize);
        let cases: Vec<(&str, Tamper)> = vec![
            ("max level above the entry point's", |snap, _| {
                snap.hnsw.max_level += 1;
            }),
            ("max level out of range", |snap, _| snap.hnsw.max_level = 99),
            ("entry point below the top level", |snap, lv| {
                let low = (0..snap.hnsw.len()).find(|s| lv(snap, *s) == 1).unwrap();
                snap.hnsw.entry = Some(u32::try_from(low).unwrap());
            }),
            (
                "link to a slot that is not on the link's level",
                |snap, lv| {
                    let n = snap.hnsw.len();
                    let high = (0..n).find(|s| lv(snap, *s) >= 2).unwrap();
                    let low = (0..n).find(|s| lv(snap, *s) == 1).unwrap();
                    snap.hnsw.links[high][1].push(u32::try_from(low).unwrap());
                },
            ),
            ("link to a missing slot", |snap, _| {
                let n = u32::try_from(snap.hnsw.len()).unwrap();
                snap.hnsw.links[0][0].push(n + 5);
            }),
            ("a node above the top level", |snap, _| {
                let top = usize::try_from(snap.hnsw.max_level).unwrap();
                snap.hnsw.links[3] = vec![Vec::new(); top + 2];
            }),
            ("a tombstone with an id", |snap, _| {
                let dead = snap.hnsw.deleted.iter().position(|d| *d).unwrap();
                snap.id_of[dead] = Some(id("ghost"));
            }),
            ("an id in two live slots", |snap, _| {
                let last = snap.id_of.len() - 1;
                snap.id_of[last] = snap.id_of[last - 1].clone();
            }),
            ("a pending id that is also in the graph", |snap, _| {
                let live = snap.id_of.iter().flatten().next().unwrap().clone();
                snap.tail.push(live);
            }),
        ];
        // The rewrite itself keeps a valid checkpoint valid.
        rewrite(&s, |_| {});
        drop(s);
        let mut s = VectorStore::open(&db, &Limits::default()).unwrap();
        assert!(s.index_stats("c").unwrap().from_checkpoint);
        for (i, (what, tamper)) in cases.into_iter().enumerate() {
            // A tombstone in every checkpoint (a rebuild leaves none).
            s.delete("c", &ids[20 + i]).unwrap();
            s.checkpoint().unwrap();
            let live = live - 1 - i;
            rewrite(&s, |snap| tamper(snap, &levels));
            drop(s);
            s = VectorStore::open(&db, &Limits::default()).unwrap();
            // A rebuild leaves the vectors pending; the next checkpoint needs them in the graph.
            s.index_pending(usize::MAX);
            let st = s.index_stats("c").unwrap();
            assert!(
                !st.from_checkpoint,
                "{what}: the crafted checkpoint was used"
            );
            assert_eq!(st.live, live, "{what}");
            let hits = s
                .search("c", &vs[100], 1, SearchMode::Ann { ef: None }, None)
                .unwrap();
            assert_eq!(hits[0].id, ids[100], "{what}");
        }
    }
}
