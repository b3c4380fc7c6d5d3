//! Vector engine: named collections with a fixed dimension and metric; upsert, delete, get; exact
//! search; HNSW approximate search; an optional filter by an id set.
//!
//! Keyspaces: `vector.coll` (collection name → CBOR [`CollectionDef`]), `vector.data`
//! (`collection 0 id` → the vector as little-endian `f32`s), plus `vector.hash`/`vector.digest`.
//! fjall is the source of truth. Each collection also lives in memory: the prepared vectors and
//! an HNSW graph, rebuilt from fjall when the store opens (measured in `docs/stores.md`). A durable
//! write puts the vector in the collection's pending tail ([`tail`]); [`VectorStore::index_pending`]
//! links tail vectors into the graph later (the store actor calls it between writes). Both search
//! modes run on the in-memory copy; ANN search scans the tail exactly and merges it in.
//!
//! An entity's **item** is the map collection → vector over all collections it is in.

mod checkpoint;
mod hnsw;
mod metric;
mod tail;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

use fjall::{Database, Keyspace};
use serde::{Deserialize, Serialize};

pub use checkpoint::CHECKPOINT_EVERY;
pub use hnsw::HnswParams;
pub use metric::Metric;
pub use tail::TAIL_LIMIT;

use crate::EntityId;
use crate::codec::{Bytes, from_cbor_exact, to_cbor};
use crate::durability::Durability;
use crate::error::{Result, StoreError, clip, corrupt};
use crate::hash::{BucketDigest, ContentHash};
use crate::id::validate_name;
use crate::index::{ItemIndex, check_recorded};
use crate::keyspace;
use crate::limits::Limits;
use crate::modality::{ExportedItem, Modality, ModalityKind};
use hnsw::Hnsw;
use tail::Tail;

/// A collection's fixed shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionDef {
    /// Vector dimension (1..=`Limits::max_vector_dim`).
    pub dim: u32,
    /// Distance metric.
    pub metric: Metric,
}

/// One search result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    /// The entity.
    pub id: EntityId,
    /// Its distance to the query (see [`Metric`]; smaller is closer).
    pub distance: f32,
}

/// How to search.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SearchMode {
    /// Brute force over every vector: exact, O(n).
    Exact,
    /// HNSW with beam width `ef` (`None`: the collection's default, 64). Larger is slower and more
    /// accurate.
    Ann {
        /// Beam width.
        ef: Option<usize>,
    },
}

/// In-memory index statistics of one collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexStats {
    /// Live vectors (in the graph or pending).
    pub live: usize,
    /// Live vectors in the pending tail, not yet linked into the graph.
    pub pending: usize,
    /// Deleted slots still in the HNSW graph (compacted once they outnumber the live ones).
    pub tombstones: usize,
    /// Approximate heap bytes of vectors and links.
    pub heap_bytes: usize,
    /// True if this open restored the graph from a checkpoint (false: rebuilt from fjall).
    pub from_checkpoint: bool,
}

/// One entity's vector item: what is hashed, exported and imported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VectorItem {
    /// Collection name → vector as little-endian `f32` bytes.
    pub vectors: BTreeMap<String, Bytes>,
}

/// Filters at most this large are answered by exact search over the filter's ids: cheaper and
/// exact, where HNSW would have to wade through many excluded nodes.
const FILTER_EXACT_MAX: usize = 2048;
/// Largest squared norm of a stored or query vector: a quarter of `f32::MAX`, so that no distance
/// between two accepted vectors overflows (see `VectorStore::check_vector`).
pub const MAX_SQUARED_NORM: f32 = f32::MAX / 4.0;
/// Tombstones tolerated before an HNSW graph is rebuilt (and only once they outnumber live slots).
const COMPACT_MIN_TOMBSTONES: usize = 1024;

struct Collection {
    def: CollectionDef,
    from_checkpoint: bool,
    ann: Hnsw,
    /// Ids in the graph; an id is either here or in `tail`, never in both.
    slot_of: HashMap<EntityId, u32>,
    id_of: Vec<Option<EntityId>>,
    tail: Tail,
}

impl Collection {
    fn new(def: CollectionDef, params: HnswParams) -> Self {
        Self {
            def,
            from_checkpoint: false,
            ann: Hnsw::new(def.dim as usize, def.metric, params),
            slot_of: HashMap::new(),
            id_of: Vec::new(),
            tail: Tail::default(),
        }
    }

    /// Live vectors, in the graph or pending.
    fn live(&self) -> usize {
        self.slot_of.len() + self.tail.len()
    }

    fn ids(&self) -> impl Iterator<Item = &EntityId> {
        self.slot_of.keys().chain(self.tail.ids())
    }

    /// Sets a vector: it goes to the tail; an older version in the graph becomes a tombstone. If
    /// the tail then holds more than `limit`, the oldest pending vectors are indexed now.
    fn put(&mut self, id: &EntityId, v: &[f32], limit: usize) {
        self.unlink(id);
        self.tail.push(id, self.def.metric.prepare(v));
        self.bound_tail(limit);
    }

    /// Tombstones the id's graph slot, if it has one.
    fn unlink(&mut self, id: &EntityId) {
        if let Some(old) = self.slot_of.remove(id) {
            self.ann.delete(old);
            self.id_of[old as usize] = None;
        }
    }

    fn remove(&mut self, id: &EntityId, params: HnswParams) {
        self.unlink(id);
        self.tail.remove(id);
        self.maybe_compact(params);
    }

    /// Links the oldest pending vector into the graph; false if none is pending.
    fn index_one(&mut self) -> bool {
        let Some((id, v)) = self.tail.pop() else {
            return false;
        };
        let slot = self.ann.insert(&v);
        debug_assert_eq!(slot as usize, self.id_of.len());
        self.id_of.push(Some(id.clone()));
        self.slot_of.insert(id, slot);
        true
    }

    fn bound_tail(&mut self, limit: usize) {
        while self.tail.len() > limit && self.index_one() {}
    }

    fn maybe_compact(&mut self, params: HnswParams) {
        let dead = self.ann.deleted_count();
        if dead < COMPACT_MIN_TOMBSTONES || dead <= self.slot_of.len() {
            return;
        }
        let mut fresh = Self::new(self.def, params);
        for (slot, id) in self.id_of.iter().enumerate() {
            if let Some(id) = id {
                #[allow(clippy::cast_possible_truncation)]
                let v = self.ann.vector(slot as u32).to_vec();
                // Already prepared: unit length stays unit length.
                let s = fresh.ann.insert(&v);
                fresh.id_of.push(Some(id.clone()));
                fresh.slot_of.insert(id.clone(), s);
            }
        }
        // The tail is not part of the graph: it stays pending.
        fresh.tail = std::mem::take(&mut self.tail);
        *self = fresh;
    }

    /// The `k` nearest pending vectors (allowed by `filter`), exactly, closest first, ties by id.
    fn tail_top<'a>(
        &'a self,
        q: &[f32],
        k: usize,
        filter: Option<&'a BTreeSet<EntityId>>,
    ) -> Vec<(f32, &'a EntityId)> {
        let d = |v: &[f32]| self.def.metric.raw(q, v);
        let mut all: Vec<(f32, &EntityId)> = match filter {
            // Walk whichever side is smaller.
            Some(f) if f.len() < self.tail.len() => f
                .iter()
                .filter_map(|id| self.tail.get(id).map(|v| (d(v), id)))
                .collect(),
            Some(f) => self
                .tail
                .iter()
                .filter(|(id, _)| f.contains(*id))
                .map(|(id, v)| (d(v), id))
                .collect(),
            None => self.tail.iter().map(|(id, v)| (d(v), id)).collect(),
        };
        let by =
            |a: &(f32, &EntityId), b: &(f32, &EntityId)| a.0.total_cmp(&b.0).then(a.1.cmp(b.1));
        if all.len() > k && k > 0 {
            all.select_nth_unstable_by(k - 1, by);
        }
        all.truncate(k);
        all.sort_by(by);
        all
    }

    fn exact(&self, q: &[f32], k: usize, filter: Option<&BTreeSet<EntityId>>) -> Vec<(f32, u32)> {
        let mut all: Vec<(f32, u32)> = match filter {
            Some(f) => f
                .iter()
                .filter_map(|id| self.slot_of.get(id))
                .map(|&s| (self.def.metric.raw(q, self.ann.vector(s)), s))
                .collect(),
            // Slot order walks the vectors sequentially in memory.
            None => (0u32..)
                .zip(&self.id_of)
                .filter(|(_, id)| id.is_some())
                .map(|(s, _)| (self.def.metric.raw(q, self.ann.vector(s)), s))
                .collect(),
        };
        let by = |a: &(f32, u32), b: &(f32, u32)| {
            a.0.total_cmp(&b.0)
                .then_with(|| self.id_of[a.1 as usize].cmp(&self.id_of[b.1 as usize]))
        };
        if all.len() > k && k > 0 {
            all.select_nth_unstable_by(k - 1, by);
        }
        all.truncate(k);
        all.sort_by(by);
        all
    }
}

/// The vector engine. Writes take `&mut self`; reads take `&self`.
pub struct VectorStore {
    db: Database,
    colls: Keyspace,
    data: Keyspace,
    ckpt: Keyspace,
    log: Keyspace,
    next_seq: u64,
    log_len: u64,
    index: ItemIndex,
    limits: Limits,
    durability: Durability,
    params: HnswParams,
    tail_limit: usize,
    collections: BTreeMap<String, Collection>,
}

fn data_key(coll: &str, id: &EntityId) -> Vec<u8> {
    let mut k = Vec::with_capacity(coll.len() + 1 + id.as_bytes().len());
    k.extend_from_slice(coll.as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

fn to_le(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn from_le(b: &[u8], dim: usize) -> Result<Vec<f32>> {
    if b.len() != dim * 4 {
        return Err(corrupt(
            "stored vector",
            format!("{} bytes for dimension {dim}", b.len()),
        ));
    }
    Ok(b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

impl VectorStore {
    /// Opens the vector keyspaces and rebuilds every collection's HNSW index from fjall, with the
    /// default [`HnswParams`].
    ///
    /// # Errors
    /// Storage errors, corrupt stored records.
    pub fn open(db: &Database, limits: &Limits) -> Result<Self> {
        Self::open_with(db, limits, HnswParams::default())
    }

    /// As [`VectorStore::open`], with explicit HNSW parameters.
    ///
    /// # Errors
    /// Storage errors, corrupt stored records.
    pub fn open_with(db: &Database, limits: &Limits, params: HnswParams) -> Result<Self> {
        let colls = keyspace::open(db, "vector.coll")?;
        let data = keyspace::open(db, "vector.data")?;
        let ckpt = keyspace::open(db, "vector.ckpt")?;
        let log = keyspace::open(db, "vector.log")?;
        let (logged, next_seq) = checkpoint::read_log(&log)?;
        let mut collections = BTreeMap::new();
        for g in colls.iter() {
            let (k, v) = g.into_inner()?;
            let name = String::from_utf8(k.to_vec())
                .map_err(|_| corrupt("stored collection name", "not UTF-8"))?;
            let def: CollectionDef = from_cbor_exact("stored collection", &v)?;
            let started = std::time::Instant::now();
            match checkpoint::restore(&ckpt, &data, &name, def, params, &logged) {
                Ok(Some(mut c)) => {
                    c.from_checkpoint = true;
                    tracing::info!(collection = %name, vectors = c.live(),
                        pending = c.tail.len(), replayed = logged.len(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "restored HNSW index from its checkpoint");
                    collections.insert(name, c);
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(collection = %name, error = %e,
                        "vector index checkpoint unusable; rebuilding from fjall");
                }
            }
            let mut c = Collection::new(def, params);
            let mut p = name.as_bytes().to_vec();
            p.push(0);
            for g in data.prefix(&p) {
                let (k, v) = g.into_inner()?;
                let id = crate::id::entity_id_from_key(k.get(p.len()..).unwrap_or_default())?;
                c.put(&id, &from_le(&v, def.dim as usize)?, TAIL_LIMIT);
            }
            tracing::info!(collection = %name, vectors = c.live(), pending = c.tail.len(),
                elapsed_ms = started.elapsed().as_millis() as u64, "rebuilt HNSW index");
            collections.insert(name, c);
        }
        Ok(Self {
            db: db.clone(),
            colls,
            data,
            ckpt,
            log,
            next_seq,
            log_len: logged.len() as u64,
            index: ItemIndex::open(db, "vector")?,
            limits: limits.clone(),
            durability: Durability::EachWrite,
            params,
            tail_limit: TAIL_LIMIT,
            collections,
        })
    }

    /// Creates a collection; a no-op if it exists with the same definition.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] if it exists with another definition; invalid name or dimension;
    /// [`StoreError::LimitExceeded`].
    pub fn create_collection(&mut self, name: &str, def: CollectionDef) -> Result<()> {
        validate_name("collection name", name)?;
        if let Some(c) = self.collections.get(name) {
            if c.def == def {
                return Ok(());
            }
            return Err(StoreError::Conflict {
                what: "vector collection",
                name: name.into(),
            });
        }
        if def.dim == 0 {
            return Err(StoreError::InvalidInput(
                "dimension must be at least 1".into(),
            ));
        }
        if def.dim as usize > self.limits.max_vector_dim {
            return Err(StoreError::LimitExceeded {
                what: "vector dimension",
                limit: self.limits.max_vector_dim as u64,
                actual: u64::from(def.dim),
            });
        }
        if self.collections.len() >= self.limits.max_collections {
            return Err(StoreError::LimitExceeded {
                what: "number of collections",
                limit: self.limits.max_collections as u64,
                actual: self.collections.len() as u64 + 1,
            });
        }
        let mut b = self.durability.batch(&self.db);
        b.insert(&self.colls, name.as_bytes(), to_cbor(&def)?);
        b.commit()?;
        self.collections
            .insert(name.into(), Collection::new(def, self.params));
        Ok(())
    }

    /// Drops a collection and all its vectors in one durable batch. Returns every entity whose item
    /// changed, with its new hash.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; storage errors.
    pub fn drop_collection(&mut self, name: &str) -> Result<Vec<(EntityId, Option<ContentHash>)>> {
        let ids: Vec<EntityId> = self.coll(name)?.ids().cloned().collect();
        let mut b = self.durability.batch(&self.db);
        let mut txn = self.index.txn();
        let mut changed = Vec::new();
        for id in ids {
            let mut item = self.load_item(&id)?;
            item.vectors.remove(name);
            let h = Self::hash_of(&item)?;
            b.remove(&self.data, data_key(name, &id));
            txn.set(&id, h);
            changed.push((id, h));
        }
        txn.write(&mut b)?;
        b.remove(&self.colls, name.as_bytes());
        checkpoint::remove(&self.ckpt, name, &mut b)?;
        b.commit()?;
        self.collections.remove(name);
        changed.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(changed)
    }

    /// Collections with their definitions and sizes.
    #[must_use]
    pub fn collections(&self) -> Vec<(String, CollectionDef, usize)> {
        self.collections
            .iter()
            .map(|(n, c)| (n.clone(), c.def, c.live()))
            .collect()
    }

    /// Index statistics of a collection.
    ///
    /// # Errors
    /// [`StoreError::NotFound`].
    pub fn index_stats(&self, name: &str) -> Result<IndexStats> {
        let c = self.coll(name)?;
        Ok(IndexStats {
            live: c.live(),
            pending: c.tail.len(),
            tombstones: c.ann.deleted_count(),
            heap_bytes: c.ann.heap_bytes() + c.slot_of.len() * 64 + c.tail.heap_bytes(),
            from_checkpoint: c.from_checkpoint,
        })
    }

    /// Links up to `max` pending vectors into their collections' HNSW graphs (oldest first,
    /// collections in name order); returns how many. Writes leave vectors pending so that they are
    /// acknowledged without paying for graph insertion; searches are exact over the pending ones, so
    /// calling this changes what an ANN search may miss, never what it may return wrongly. The store
    /// actor calls it in small slices between writes.
    pub fn index_pending(&mut self, max: usize) -> usize {
        let mut done = 0;
        for c in self.collections.values_mut() {
            while done < max && c.index_one() {
                done += 1;
            }
        }
        done
    }

    /// Pending vectors over all collections.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.collections.values().map(|c| c.tail.len()).sum()
    }

    /// Bounds each collection's pending tail (default [`TAIL_LIMIT`]); beyond it a write indexes the
    /// oldest pending vectors itself. `0` indexes every write synchronously, as before the tail
    /// existed (the fallback for a caller that never runs [`VectorStore::index_pending`]).
    pub fn set_tail_limit(&mut self, limit: usize) {
        self.tail_limit = limit;
        for c in self.collections.values_mut() {
            c.bound_tail(limit);
        }
    }

    fn coll(&self, name: &str) -> Result<&Collection> {
        self.collections
            .get(name)
            .ok_or_else(|| StoreError::NotFound {
                what: "vector collection",
                name: clip(name),
            })
    }

    fn check_vector(def: CollectionDef, v: &[f32]) -> Result<()> {
        if v.len() != def.dim as usize {
            return Err(StoreError::InvalidInput(format!(
                "vector has dimension {}, the collection needs {}",
                v.len(),
                def.dim
            )));
        }
        if let Some(i) = v.iter().position(|x| !x.is_finite()) {
            return Err(StoreError::InvalidInput(format!(
                "vector element {i} is not finite ({})",
                v[i]
            )));
        }
        // Finite elements can still overflow: with elements near 1e20 the squared norm is infinite,
        // a cosine vector then normalises to zeros or NaN, and L2/dot distances become infinite or
        // NaN. The bound also keeps every distance between two accepted vectors finite:
        // |a·b| ≤ |a||b| and |a−b|² ≤ 4·max(|a|², |b|²).
        // In f64: exact enough for any f32 input, and a tiny vector (1e-23) does not underflow to a
        // "zero vector" as its f32 squared norm would.
        let sq = metric::squared_norm_f64(v);
        if sq > f64::from(MAX_SQUARED_NORM) {
            return Err(StoreError::InvalidInput(format!(
                "vector's squared norm {sq} is above {MAX_SQUARED_NORM:e} (f32::MAX / 4): \
                 its distances would overflow"
            )));
        }
        if def.metric == Metric::Cosine && sq == 0.0 {
            return Err(StoreError::InvalidInput(
                "a zero vector has no direction (cosine collection)".into(),
            ));
        }
        Ok(())
    }

    fn load_item(&self, id: &EntityId) -> Result<VectorItem> {
        let mut vectors = BTreeMap::new();
        for name in self.collections.keys() {
            if let Some(v) = self.data.get(data_key(name, id))? {
                vectors.insert(name.clone(), Bytes(v.to_vec()));
            }
        }
        Ok(VectorItem { vectors })
    }

    fn hash_of(item: &VectorItem) -> Result<Option<ContentHash>> {
        if item.vectors.is_empty() {
            return Ok(None);
        }
        Ok(Some(ContentHash::of(
            ModalityKind::Vector.hash_domain(),
            &to_cbor(item)?,
        )))
    }

    /// Inserts or replaces one vector. Returns the entity's new item hash.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] (collection), [`StoreError::InvalidInput`] (wrong dimension, NaN or
    /// infinity, zero vector in a cosine collection); storage errors.
    pub fn upsert(&mut self, coll: &str, id: &EntityId, v: &[f32]) -> Result<ContentHash> {
        let mut r = self.upsert_many(coll, vec![(id.clone(), v.to_vec())])?;
        Ok(r.pop().map(|(_, h)| h).unwrap_or_default())
    }

    /// Inserts or replaces many vectors behind one fsync (the last one wins for a repeated id).
    /// Returns each entity's new item hash, ordered by id. All or nothing.
    ///
    /// # Errors
    /// As [`VectorStore::upsert`], for any of the vectors.
    pub fn upsert_many(
        &mut self,
        coll: &str,
        items: Vec<(EntityId, Vec<f32>)>,
    ) -> Result<Vec<(EntityId, ContentHash)>> {
        let def = self.coll(coll)?.def;
        let mut by_id = BTreeMap::new();
        for (id, v) in items {
            Self::check_vector(def, &v)?;
            by_id.insert(id, v);
        }
        let mut b = self.durability.batch(&self.db);
        let mut txn = self.index.txn();
        let mut out = Vec::with_capacity(by_id.len());
        for (id, v) in &by_id {
            let bytes = to_le(v);
            let mut item = self.load_item(id)?;
            item.vectors.insert(coll.to_owned(), Bytes(bytes.clone()));
            let h = Self::hash_of(&item)?.unwrap_or_default();
            b.insert(&self.data, data_key(coll, id), bytes);
            txn.set(id, Some(h));
            out.push((id.clone(), h));
        }
        txn.write(&mut b)?;
        let seq = self.log_writes(&mut b, by_id.keys().map(|id| (coll, id)))?;
        b.commit()?;
        if let Some(c) = self.collections.get_mut(coll) {
            for (id, v) in &by_id {
                c.put(id, v, self.tail_limit);
            }
            c.maybe_compact(self.params);
        }
        self.logged(seq);
        Ok(out)
    }

    /// The stored vector, as given to `upsert`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] (collection); storage errors.
    pub fn get(&self, coll: &str, id: &EntityId) -> Result<Option<Vec<f32>>> {
        let def = self.coll(coll)?.def;
        match self.data.get(data_key(coll, id))? {
            Some(b) => Ok(Some(from_le(&b, def.dim as usize)?)),
            None => Ok(None),
        }
    }

    /// Deletes one vector; true if it was there. The entity's new item hash is
    /// [`Modality::item_hash`].
    ///
    /// # Errors
    /// [`StoreError::NotFound`] (collection); storage errors.
    pub fn delete(&mut self, coll: &str, id: &EntityId) -> Result<bool> {
        self.coll(coll)?;
        let mut item = self.load_item(id)?;
        if item.vectors.remove(coll).is_none() {
            return Ok(false);
        }
        let mut b = self.durability.batch(&self.db);
        b.remove(&self.data, data_key(coll, id));
        let mut txn = self.index.txn();
        txn.set(id, Self::hash_of(&item)?);
        txn.write(&mut b)?;
        let seq = self.log_writes(&mut b, [(coll, id)])?;
        b.commit()?;
        if let Some(c) = self.collections.get_mut(coll) {
            c.remove(id, self.params);
        }
        self.logged(seq);
        Ok(true)
    }

    /// The `k` nearest vectors to `query`, closest first (ties by id), optionally only among
    /// `filter`'s ids. A filter of at most 2048 ids is always answered exactly (and then `ef` is
    /// not used, nor checked).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] (collection); a bad query vector; `k` above `Limits::max_k`;
    /// an HNSW `ef` (given, or the default) above `Limits::max_ef`.
    pub fn search(
        &self,
        coll: &str,
        query: &[f32],
        k: usize,
        mode: SearchMode,
        filter: Option<&BTreeSet<EntityId>>,
    ) -> Result<Vec<Hit>> {
        let c = self.coll(coll)?;
        Self::check_vector(c.def, query)?;
        if k > self.limits.max_k {
            return Err(StoreError::LimitExceeded {
                what: "k",
                limit: self.limits.max_k as u64,
                actual: k as u64,
            });
        }
        let q = c.def.metric.prepare(query);
        let small_filter = filter.is_some_and(|f| f.len() <= FILTER_EXACT_MAX);
        let raw = match mode {
            SearchMode::Ann { ef } if !small_filter => {
                let ef = ef.unwrap_or(self.params.ef_search);
                if ef > self.limits.max_ef {
                    return Err(StoreError::LimitExceeded {
                        what: "ef",
                        limit: self.limits.max_ef as u64,
                        actual: ef as u64,
                    });
                }
                match filter {
                    Some(f) => {
                        // Map the filter to slots once: the search then tests a bit per candidate
                        // instead of looking an id up in the set.
                        let mut allowed = vec![false; c.id_of.len()];
                        for s in f.iter().filter_map(|id| c.slot_of.get(id)) {
                            allowed[*s as usize] = true;
                        }
                        let pred = |s: u32| allowed[s as usize];
                        c.ann.search(&q, k, ef, Some(&pred))
                    }
                    None => c.ann.search(&q, k, ef, None),
                }
            }
            _ => c.exact(&q, k, filter),
        };
        let mut top: Vec<(f32, &EntityId)> = raw
            .into_iter()
            .filter_map(|(d, s)| c.id_of[s as usize].as_ref().map(|id| (d, id)))
            .collect();
        if !c.tail.is_empty() {
            // Pending vectors are not in the graph: scan them exactly and merge, so a search finds
            // them at least as surely as the graph would.
            top.extend(c.tail_top(&q, k, filter));
        }
        // Ties by id in every mode (the graph orders its own by slot).
        top.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
        top.truncate(k);
        Ok(top
            .into_iter()
            .map(|(d, id)| Hit {
                id: id.clone(),
                distance: c.def.metric.report(d),
            })
            .collect())
    }
}

impl Modality for VectorStore {
    fn kind(&self) -> ModalityKind {
        ModalityKind::Vector
    }

    fn set_durability(&mut self, durability: Durability) {
        self.durability = durability;
    }

    fn durability(&self) -> Durability {
        self.durability
    }

    fn item_hash(&self, id: &EntityId) -> Result<Option<ContentHash>> {
        self.index.get(id)
    }

    fn verify_item(&self, id: &EntityId) -> Result<Option<ContentHash>> {
        let actual = Self::hash_of(&self.load_item(id)?)?;
        check_recorded("vector item", id, self.index.get(id)?, actual)
    }

    fn bucket_digests(&self, buckets: Range<u16>) -> Result<Vec<(u16, BucketDigest)>> {
        self.index.digests(buckets)
    }

    fn bucket_items(&self, bucket: u16) -> Result<Vec<(EntityId, ContentHash)>> {
        self.index.bucket_items(bucket)
    }

    fn export_item(&self, id: &EntityId) -> Result<Option<ExportedItem>> {
        let item = self.load_item(id)?;
        if item.vectors.is_empty() {
            return Ok(None);
        }
        Ok(Some(ExportedItem::new(ModalityKind::Vector, id, &item)?))
    }

    fn import_item(&mut self, exported: &ExportedItem) -> Result<ContentHash> {
        let item: VectorItem = exported.open(ModalityKind::Vector)?;
        let id = &exported.id;
        let decoded = self.check_item(&item)?;
        let old = self.load_item(id)?;
        let mut b = self.durability.batch(&self.db);
        for name in old
            .vectors
            .keys()
            .filter(|n| !item.vectors.contains_key(*n))
        {
            b.remove(&self.data, data_key(name, id));
        }
        for (name, bytes) in &item.vectors {
            b.insert(&self.data, data_key(name, id), bytes.0.clone());
        }
        // `open` checked that the payload is the canonical encoding of `item` and hashes to
        // `exported.hash`: that is `hash_of(&item)`, without encoding and hashing it again.
        let h = exported.hash;
        let mut txn = self.index.txn();
        txn.set(id, Some(h));
        txn.write(&mut b)?;
        let touched: BTreeSet<&String> = old.vectors.keys().chain(item.vectors.keys()).collect();
        let seq = self.log_writes(&mut b, touched.into_iter().map(|n| (n.as_str(), id)))?;
        b.commit()?;
        for name in old
            .vectors
            .keys()
            .filter(|n| !item.vectors.contains_key(*n))
        {
            if let Some(c) = self.collections.get_mut(name) {
                c.remove(id, self.params);
            }
        }
        for (name, v) in decoded {
            if let Some(c) = self.collections.get_mut(&name) {
                c.put(id, &v, self.tail_limit);
            }
        }
        self.logged(seq);
        Ok(h)
    }

    fn remove_item(&mut self, id: &EntityId) -> Result<bool> {
        let old = self.load_item(id)?;
        if old.vectors.is_empty() {
            return Ok(false);
        }
        let mut b = self.durability.batch(&self.db);
        for name in old.vectors.keys() {
            b.remove(&self.data, data_key(name, id));
        }
        let mut txn = self.index.txn();
        txn.set(id, None);
        txn.write(&mut b)?;
        let seq = self.log_writes(&mut b, old.vectors.keys().map(|n| (n.as_str(), id)))?;
        b.commit()?;
        for name in old.vectors.keys() {
            if let Some(c) = self.collections.get_mut(name) {
                c.remove(id, self.params);
            }
        }
        self.logged(seq);
        Ok(true)
    }
}

mod prepare;

#[cfg(test)]
mod tail_tests;
#[cfg(test)]
mod tests;
