//! Tensor engine: one n-dimensional array per entity (shape, dtype, data), stored in chunks so a
//! large tensor is never one huge value; get, slice (a range per axis), reduce along an axis.
//!
//! Keyspaces: `tensor.meta` (`id` → CBOR [`TensorMeta`]: dtype, shape, chunk shape, content hash)
//! and `tensor.chunk` (`id 0 chunk-index (u64 BE)` → the chunk's elements, row-major,
//! little-endian), plus `tensor.hash`/`tensor.digest`. Chunks form a regular grid; the chunk shape
//! is chosen at write time (about `Limits::tensor_chunk_bytes` per chunk, by halving the largest
//! axis) and chunks at the edges are clipped. A slice reads only the chunks it intersects
//! ([`TensorStore::chunk_reads`] counts them).
//!
//! Shapes: rank 0 (a scalar) to `Limits::max_tensor_rank`; every extent at least 1.
//! The content hash is BLAKE3 over the canonical CBOR of [`TensorItem`] (dtype, shape, row-major
//! little-endian data), independent of the chunk layout.

mod dtype;
mod layout;
mod reduce;

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

use fjall::{Database, Keyspace};
use serde::{Deserialize, Serialize};

pub use dtype::{DType, Tensor, TensorData};
pub use reduce::ReduceOp;

use crate::EntityId;
use crate::codec::{Bytes, from_cbor_exact, to_cbor};
use crate::durability::Durability;
use crate::error::{Result, StoreError, corrupt};
use crate::hash::{BucketDigest, ContentHash};
use crate::index::{ItemIndex, check_recorded};
use crate::keyspace;
use crate::limits::Limits;
use crate::modality::{ExportedItem, Modality, ModalityKind};

/// One entity's tensor item as hashed, exported and imported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorItem {
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<u64>,
    /// Row-major little-endian elements.
    pub data: Bytes,
}

/// What is stored about a tensor besides its chunks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorMeta {
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<u64>,
    /// Shape of a (non-edge) chunk.
    pub chunk_shape: Vec<u64>,
    /// Number of chunks.
    pub chunks: u64,
    /// Content hash of the tensor.
    pub hash: ContentHash,
}

/// The tensor engine. Writes take `&mut self`; reads take `&self`.
pub struct TensorStore {
    db: Database,
    meta: Keyspace,
    chunks: Keyspace,
    index: ItemIndex,
    limits: Limits,
    durability: Durability,
    reads: AtomicU64,
}

fn chunk_key(id: &EntityId, i: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(id.as_bytes().len() + 9);
    k.extend_from_slice(id.as_bytes());
    k.push(0);
    k.extend_from_slice(&i.to_be_bytes());
    k
}

fn hash_item(dtype: DType, shape: &[u64], data: &[u8]) -> Result<ContentHash> {
    #[derive(Serialize)]
    struct ItemRef<'a> {
        dtype: DType,
        shape: &'a [u64],
        data: BytesRef<'a>,
    }
    struct BytesRef<'a>(&'a [u8]);
    impl Serialize for BytesRef<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }
    let mut h = blake3::Hasher::new_derive_key(ModalityKind::Tensor.hash_domain());
    ciborium::into_writer(
        &ItemRef {
            dtype,
            shape,
            data: BytesRef(data),
        },
        &mut h,
    )
    .map_err(|e| StoreError::InvalidInput(format!("cannot encode tensor: {e}")))?;
    Ok(ContentHash(*h.finalize().as_bytes()))
}

impl TensorStore {
    /// Opens the tensor keyspaces.
    ///
    /// # Errors
    /// Storage errors.
    pub fn open(db: &Database, limits: &Limits) -> Result<Self> {
        Ok(Self {
            db: db.clone(),
            meta: keyspace::open(db, "tensor.meta")?,
            chunks: keyspace::open(db, "tensor.chunk")?,
            index: ItemIndex::open(db, "tensor")?,
            limits: limits.clone(),
            durability: Durability::EachWrite,
            reads: AtomicU64::new(0),
        })
    }

    /// Chunks read since the store was opened (slices read only the chunks they need).
    #[must_use]
    pub fn chunk_reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    fn check_shape(&self, dtype: DType, shape: &[u64]) -> Result<u64> {
        if shape.len() > self.limits.max_tensor_rank {
            return Err(StoreError::LimitExceeded {
                what: "tensor rank",
                limit: self.limits.max_tensor_rank as u64,
                actual: shape.len() as u64,
            });
        }
        if let Some(i) = shape.iter().position(|d| *d == 0) {
            return Err(StoreError::InvalidInput(format!(
                "axis {i} has extent 0; every extent must be at least 1"
            )));
        }
        let too_many = || StoreError::LimitExceeded {
            what: "tensor elements",
            limit: self.limits.max_tensor_elements,
            actual: u64::MAX,
        };
        let n = shape
            .iter()
            .try_fold(1u64, |a, d| a.checked_mul(*d))
            .ok_or_else(too_many)?;
        if n > self.limits.max_tensor_elements {
            return Err(StoreError::LimitExceeded {
                what: "tensor elements",
                limit: self.limits.max_tensor_elements,
                actual: n,
            });
        }
        let bytes = n.saturating_mul(dtype.size() as u64);
        if bytes > self.limits.max_tensor_bytes {
            return Err(StoreError::LimitExceeded {
                what: "tensor bytes",
                limit: self.limits.max_tensor_bytes,
                actual: bytes,
            });
        }
        Ok(n)
    }

    /// Stores (or replaces) the entity's tensor in one durable batch. Returns its content hash.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] if `data.len()` is not the product of `shape` or an extent is 0;
    /// [`StoreError::LimitExceeded`]; storage errors.
    pub fn put(&mut self, id: &EntityId, tensor: &Tensor) -> Result<ContentHash> {
        let dtype = tensor.data.dtype();
        let n = self.check_shape(dtype, &tensor.shape)?;
        if tensor.data.len() as u64 != n {
            return Err(StoreError::InvalidInput(format!(
                "shape {:?} holds {n} elements but {} were given",
                tensor.shape,
                tensor.data.len()
            )));
        }
        self.put_bytes(id, dtype, &tensor.shape, &tensor.data.to_le_bytes())
    }

    fn put_bytes(
        &mut self,
        id: &EntityId,
        dtype: DType,
        shape: &[u64],
        data: &[u8],
    ) -> Result<ContentHash> {
        let elem = dtype.size();
        let hash = hash_item(dtype, shape, data)?;
        let chunk_shape = layout::chunk_shape(shape, elem, self.limits.tensor_chunk_bytes);
        let grid = layout::grid(shape, &chunk_shape);
        let full: Vec<Range<u64>> = shape.iter().map(|s| 0..*s).collect();
        let old_chunks = self.meta(id)?.map_or(0, |m| m.chunks);
        let mut b = self.durability.batch(&self.db);
        let mut count = 0u64;
        let gr: Vec<Range<u64>> = grid.iter().map(|g| 0..*g).collect();
        layout::for_each_coord(&gr, |c| {
            let bx = layout::chunk_box(c, &chunk_shape, shape);
            let len: u64 = bx.iter().map(|r| r.end - r.start).product();
            let mut buf = vec![0u8; len as usize * elem];
            layout::copy_box(data, &full, &mut buf, &bx, &bx, elem);
            b.insert(&self.chunks, chunk_key(id, layout::linear(c, &grid)), buf);
            count += 1;
        });
        for i in count..old_chunks {
            b.remove(&self.chunks, chunk_key(id, i));
        }
        let meta = TensorMeta {
            dtype,
            shape: shape.to_vec(),
            chunk_shape,
            chunks: count,
            hash,
        };
        b.insert(&self.meta, id.as_bytes(), to_cbor(&meta)?);
        let mut txn = self.index.txn();
        txn.set(id, Some(hash));
        txn.write(&mut b)?;
        b.commit()?;
        Ok(hash)
    }

    /// The tensor's metadata (dtype, shape, chunking, hash), one point read.
    ///
    /// # Errors
    /// Storage errors.
    pub fn meta(&self, id: &EntityId) -> Result<Option<TensorMeta>> {
        let Some(v) = self.meta.get(id.as_bytes())? else {
            return Ok(None);
        };
        let m: TensorMeta = from_cbor_exact("stored tensor meta", &v)?;
        // Stored by us and checksummed by fjall, but a bad layout must never become a panic.
        let grid_ok = m.chunk_shape.len() == m.shape.len()
            && m.chunk_shape
                .iter()
                .zip(&m.shape)
                .all(|(c, s)| *c >= 1 && *s >= 1 && c <= s)
            && layout::grid(&m.shape, &m.chunk_shape)
                .iter()
                .try_fold(1u64, |a, g| a.checked_mul(*g))
                == Some(m.chunks);
        if !grid_ok {
            return Err(corrupt(
                "stored tensor meta",
                format!("inconsistent layout for {id}"),
            ));
        }
        Ok(Some(m))
    }

    fn read_chunk(&self, id: &EntityId, m: &TensorMeta, coord: &[u64]) -> Result<Vec<u8>> {
        let grid = layout::grid(&m.shape, &m.chunk_shape);
        let bx = layout::chunk_box(coord, &m.chunk_shape, &m.shape);
        let want = bx.iter().map(|r| r.end - r.start).product::<u64>() as usize * m.dtype.size();
        self.reads.fetch_add(1, Ordering::Relaxed);
        let v = self
            .chunks
            .get(chunk_key(id, layout::linear(coord, &grid)))?
            .ok_or_else(|| corrupt("stored tensor", format!("chunk {coord:?} of {id} missing")))?;
        if v.len() != want {
            return Err(corrupt(
                "stored tensor",
                format!(
                    "chunk {coord:?} of {id} has {} bytes, expected {want}",
                    v.len()
                ),
            ));
        }
        Ok(v.to_vec())
    }

    /// Reads the box `ranges` (absolute, per axis) as row-major bytes, touching only the chunks
    /// that intersect it.
    fn read_box(&self, id: &EntityId, m: &TensorMeta, ranges: &[Range<u64>]) -> Result<Vec<u8>> {
        let elem = m.dtype.size();
        let n: u64 = ranges.iter().map(|r| r.end - r.start).product();
        let mut out = vec![0u8; n as usize * elem];
        let chunk_ranges: Vec<Range<u64>> = ranges
            .iter()
            .zip(&m.chunk_shape)
            .map(|(r, c)| r.start / c..(r.end - 1) / c + 1)
            .collect();
        let mut err = None;
        layout::for_each_coord(&chunk_ranges, |c| {
            if err.is_some() {
                return;
            }
            match self.read_chunk(id, m, c) {
                Ok(buf) => {
                    let bx = layout::chunk_box(c, &m.chunk_shape, &m.shape);
                    let region = layout::intersect(&bx, ranges);
                    layout::copy_box(&buf, &bx, &mut out, ranges, &region, elem);
                }
                Err(e) => err = Some(e),
            }
        });
        match err {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// The whole tensor.
    ///
    /// # Errors
    /// Storage errors, corrupt chunks.
    pub fn get(&self, id: &EntityId) -> Result<Option<Tensor>> {
        let Some(m) = self.meta(id)? else {
            return Ok(None);
        };
        let full: Vec<Range<u64>> = m.shape.iter().map(|s| 0..*s).collect();
        let bytes = self.read_box(id, &m, &full)?;
        Ok(Some(Tensor {
            data: TensorData::from_le_bytes(m.dtype, &bytes)?,
            shape: m.shape,
        }))
    }

    /// The sub-tensor `ranges[i]` along each axis `i` (half-open, non-empty, within the shape).
    /// Reads only the chunks the box intersects.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::InvalidInput`] for a wrong number of ranges or a range
    /// that is empty or out of bounds; storage errors.
    pub fn slice(&self, id: &EntityId, ranges: &[Range<u64>]) -> Result<Tensor> {
        let m = self.meta(id)?.ok_or_else(|| StoreError::NotFound {
            what: "tensor",
            name: id.to_string(),
        })?;
        if ranges.len() != m.shape.len() {
            return Err(StoreError::InvalidInput(format!(
                "{} ranges for a tensor of rank {}",
                ranges.len(),
                m.shape.len()
            )));
        }
        for (i, (r, s)) in ranges.iter().zip(&m.shape).enumerate() {
            if r.start >= r.end || r.end > *s {
                return Err(StoreError::InvalidInput(format!(
                    "range {}..{} on axis {i} is empty or outside 0..{s}",
                    r.start, r.end
                )));
            }
        }
        let bytes = self.read_box(id, &m, ranges)?;
        Ok(Tensor {
            shape: ranges.iter().map(|r| r.end - r.start).collect(),
            data: TensorData::from_le_bytes(m.dtype, &bytes)?,
        })
    }

    /// Reduces the tensor along `axis` (see [`ReduceOp`] for output dtypes and the NaN policy),
    /// reading one chunk at a time: memory is the output plus one chunk, not the whole tensor.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::InvalidInput`] if `axis >= rank`;
    /// [`StoreError::Overflow`] for an integer sum beyond `i64`; storage errors.
    pub fn reduce(&self, id: &EntityId, op: ReduceOp, axis: usize) -> Result<Tensor> {
        let m = self.meta(id)?.ok_or_else(|| StoreError::NotFound {
            what: "tensor",
            name: id.to_string(),
        })?;
        if axis >= m.shape.len() {
            return Err(StoreError::InvalidInput(format!(
                "axis {axis} out of range for a tensor of rank {}",
                m.shape.len()
            )));
        }
        reduce::reduce(&m, op, axis, |c| self.read_chunk(id, &m, c))
    }

    /// Deletes the tensor; true if there was one.
    ///
    /// # Errors
    /// Storage errors.
    pub fn delete(&mut self, id: &EntityId) -> Result<bool> {
        let Some(m) = self.meta(id)? else {
            return Ok(false);
        };
        let mut b = self.durability.batch(&self.db);
        for i in 0..m.chunks {
            b.remove(&self.chunks, chunk_key(id, i));
        }
        b.remove(&self.meta, id.as_bytes());
        let mut txn = self.index.txn();
        txn.set(id, None);
        txn.write(&mut b)?;
        b.commit()?;
        Ok(true)
    }
}

impl Modality for TensorStore {
    fn kind(&self) -> ModalityKind {
        ModalityKind::Tensor
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
        let actual = match self.get(id)? {
            Some(t) => Some(hash_item(t.data.dtype(), &t.shape, &t.data.to_le_bytes())?),
            None => None,
        };
        check_recorded("tensor item", id, self.index.get(id)?, actual)
    }

    fn bucket_digests(&self, buckets: Range<u16>) -> Result<Vec<(u16, BucketDigest)>> {
        self.index.digests(buckets)
    }

    fn bucket_items(&self, bucket: u16) -> Result<Vec<(EntityId, ContentHash)>> {
        self.index.bucket_items(bucket)
    }

    fn export_item(&self, id: &EntityId) -> Result<Option<ExportedItem>> {
        let Some(t) = self.get(id)? else {
            return Ok(None);
        };
        let item = TensorItem {
            dtype: t.data.dtype(),
            shape: t.shape,
            data: Bytes(t.data.to_le_bytes()),
        };
        Ok(Some(ExportedItem::new(ModalityKind::Tensor, id, &item)?))
    }

    fn import_item(&mut self, exported: &ExportedItem) -> Result<ContentHash> {
        let item: TensorItem = exported.open(ModalityKind::Tensor)?;
        self.check_item(&item)?;
        self.put_bytes(&exported.id, item.dtype, &item.shape, &item.data.0)
    }

    fn remove_item(&mut self, id: &EntityId) -> Result<bool> {
        self.delete(id)
    }
}

mod prepare;

#[cfg(test)]
mod tests;
