//! Chunking of payloads larger than one cluster frame.
//!
//! ractor_cluster refuses inbound frames over its cap (16 MiB by default) by dropping the whole
//! connection, so snapshots and big tensors travel as a sequence of [`Chunk`]s, each well under
//! the cap. The receiver rebuilds the payload with a [`Reassembly`], which accepts chunks in any
//! order, ignores exact duplicates, and refuses chunks of another transfer, with another total,
//! out of bounds, or contradicting bytes already received.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Default chunk payload size: 1 MiB, a sixteenth of the default frame cap.
pub const DEFAULT_CHUNK_BYTES: usize = 1024 * 1024;

/// One piece of a larger payload.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Identifies the transfer; chosen by the sender, unique among its concurrent transfers.
    pub transfer_id: u64,
    /// Byte offset of `data` in the payload.
    pub offset: u64,
    /// Length of the whole payload in bytes.
    pub total: u64,
    /// The bytes at `offset`.
    #[serde(with = "crate::codec::bytes")]
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunk")
            .field("transfer_id", &self.transfer_id)
            .field("offset", &self.offset)
            .field("total", &self.total)
            .field("len", &self.data.len())
            .finish()
    }
}

/// Why a chunk or a transfer was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    /// The chunk size must be positive.
    #[error("chunk size must be positive")]
    ZeroChunkSize,
    /// The announced payload is larger than the receiver accepts.
    #[error("transfer {transfer_id} announces {total} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// The transfer.
        transfer_id: u64,
        /// Announced payload size.
        total: u64,
        /// The receiver's limit.
        limit: u64,
    },
    /// The chunk belongs to another transfer.
    #[error("chunk of transfer {got} offered to transfer {expected}")]
    WrongTransfer {
        /// The transfer being reassembled.
        expected: u64,
        /// The chunk's transfer.
        got: u64,
    },
    /// The chunk announces another payload size than the transfer.
    #[error("transfer {transfer_id}: chunk announces {got} bytes, transfer has {expected}")]
    TotalMismatch {
        /// The transfer.
        transfer_id: u64,
        /// The transfer's size.
        expected: u64,
        /// The chunk's claim.
        got: u64,
    },
    /// The chunk reaches past the end of the payload.
    #[error("transfer {transfer_id}: chunk at {offset}+{len} exceeds total {total}")]
    OutOfBounds {
        /// The transfer.
        transfer_id: u64,
        /// The chunk's offset.
        offset: u64,
        /// The chunk's length.
        len: u64,
        /// The payload size.
        total: u64,
    },
    /// The chunk overlaps bytes already received and disagrees with them.
    #[error("transfer {transfer_id}: chunk at {offset} contradicts bytes already received")]
    Conflict {
        /// The transfer.
        transfer_id: u64,
        /// The chunk's offset.
        offset: u64,
    },
    /// `finish` was called before every byte arrived.
    #[error("transfer {transfer_id}: {missing} of {total} bytes still missing")]
    Incomplete {
        /// The transfer.
        transfer_id: u64,
        /// Bytes not yet received.
        missing: u64,
        /// The payload size.
        total: u64,
    },
}

/// Cut `payload` into chunks of at most `chunk_size` bytes, in order. An empty payload gives one
/// empty chunk, so the receiver still learns that the transfer is complete.
pub fn split(
    transfer_id: u64,
    payload: &[u8],
    chunk_size: usize,
) -> Result<impl ExactSizeIterator<Item = Chunk> + '_, ChunkError> {
    if chunk_size == 0 {
        return Err(ChunkError::ZeroChunkSize);
    }
    let total = payload.len() as u64;
    let count = payload.len().div_ceil(chunk_size).max(1);
    Ok((0..count).map(move |i| {
        let start = i * chunk_size;
        let end = (start + chunk_size).min(payload.len());
        Chunk {
            transfer_id,
            offset: start as u64,
            total,
            data: payload[start..end].to_vec(),
        }
    }))
}

/// Where a reassembly stands after a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More bytes are expected.
    Incomplete {
        /// Distinct bytes received so far.
        received: u64,
        /// Payload size.
        total: u64,
    },
    /// Every byte has arrived; call [`Reassembly::finish`].
    Complete,
}

/// Rebuilds one payload from its chunks.
#[derive(Debug)]
pub struct Reassembly {
    transfer_id: u64,
    buf: Vec<u8>,
    /// Disjoint, non-adjacent received ranges: start -> end (exclusive).
    ranges: BTreeMap<u64, u64>,
    received: u64,
}

impl Reassembly {
    /// Start reassembling transfer `transfer_id` of `total` bytes, refusing totals over `limit`.
    /// The buffer is allocated only after the limit check.
    pub fn new(transfer_id: u64, total: u64, limit: u64) -> Result<Self, ChunkError> {
        if total > limit {
            return Err(ChunkError::TooLarge {
                transfer_id,
                total,
                limit,
            });
        }
        let len = usize::try_from(total).map_err(|_| ChunkError::TooLarge {
            transfer_id,
            total,
            limit: usize::MAX as u64,
        })?;
        Ok(Self {
            transfer_id,
            buf: vec![0; len],
            ranges: BTreeMap::new(),
            received: 0,
        })
    }

    /// Start from the first chunk that arrives (whichever it is) and accept it.
    pub fn start(chunk: Chunk, limit: u64) -> Result<(Self, Progress), ChunkError> {
        let mut r = Self::new(chunk.transfer_id, chunk.total, limit)?;
        let p = r.accept(chunk)?;
        Ok((r, p))
    }

    /// The transfer this reassembly belongs to.
    pub fn transfer_id(&self) -> u64 {
        self.transfer_id
    }

    /// Payload size.
    pub fn total(&self) -> u64 {
        self.buf.len() as u64
    }

    /// Current progress.
    pub fn progress(&self) -> Progress {
        if self.received == self.total() {
            Progress::Complete
        } else {
            Progress::Incomplete {
                received: self.received,
                total: self.total(),
            }
        }
    }

    /// The first gap (offset, length) still missing, if any: what to ask the sender to resend.
    pub fn first_gap(&self) -> Option<(u64, u64)> {
        let mut pos = 0;
        for (&start, &end) in &self.ranges {
            if start > pos {
                return Some((pos, start - pos));
            }
            pos = end;
        }
        (pos < self.total()).then(|| (pos, self.total() - pos))
    }

    /// Accept one chunk. Exact duplicates are harmless; a chunk that contradicts received bytes
    /// is an error and changes nothing.
    pub fn accept(&mut self, chunk: Chunk) -> Result<Progress, ChunkError> {
        let transfer_id = self.transfer_id;
        if chunk.transfer_id != transfer_id {
            return Err(ChunkError::WrongTransfer {
                expected: transfer_id,
                got: chunk.transfer_id,
            });
        }
        let total = self.total();
        if chunk.total != total {
            return Err(ChunkError::TotalMismatch {
                transfer_id,
                expected: total,
                got: chunk.total,
            });
        }
        let len = chunk.data.len() as u64;
        let offset = chunk.offset;
        let end =
            offset
                .checked_add(len)
                .filter(|&end| end <= total)
                .ok_or(ChunkError::OutOfBounds {
                    transfer_id,
                    offset,
                    len,
                    total,
                })?;
        if len == 0 {
            return Ok(self.progress());
        }

        // Every overlap with received bytes must agree before anything is written.
        let overlapping: Vec<(u64, u64)> = self
            .ranges
            .range(..end)
            .rev()
            .take_while(|&(_, &e)| e > offset)
            .map(|(&s, &e)| (s, e))
            .collect();
        for &(s, e) in &overlapping {
            let lo = s.max(offset);
            let hi = e.min(end);
            let ours = &self.buf[lo as usize..hi as usize];
            let theirs = &chunk.data[(lo - offset) as usize..(hi - offset) as usize];
            if ours != theirs {
                return Err(ChunkError::Conflict {
                    transfer_id,
                    offset,
                });
            }
        }

        self.buf[offset as usize..end as usize].copy_from_slice(&chunk.data);

        // Merge the new range with the ones it overlaps or touches.
        let mut new_start = offset;
        let mut new_end = end;
        let mut covered = 0;
        for &(s, e) in &overlapping {
            covered += e.min(end) - s.max(offset);
            new_start = new_start.min(s);
            new_end = new_end.max(e);
            self.ranges.remove(&s);
        }
        if let Some((&s, &e)) = self.ranges.range(..new_start).next_back()
            && e == new_start
        {
            self.ranges.remove(&s);
            new_start = s;
        }
        if let Some(&e) = self.ranges.get(&new_end) {
            self.ranges.remove(&new_end);
            new_end = e;
        }
        self.ranges.insert(new_start, new_end);
        self.received += len - covered;
        Ok(self.progress())
    }

    /// The payload, once complete.
    pub fn finish(self) -> Result<Vec<u8>, ChunkError> {
        if self.received != self.total() {
            return Err(ChunkError::Incomplete {
                transfer_id: self.transfer_id,
                missing: self.total() - self.received,
                total: self.total(),
            });
        }
        Ok(self.buf)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::codec;

    fn payload(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn in_order_round_trip() {
        let data = payload(10_000, 3);
        let chunks: Vec<_> = split(9, &data, 1024).unwrap().collect();
        assert_eq!(chunks.len(), 10);
        let mut it = chunks.into_iter();
        let (mut r, _) = Reassembly::start(it.next().unwrap(), 1 << 20).unwrap();
        let mut last = Progress::Complete;
        for c in it {
            last = r.accept(c).unwrap();
        }
        assert_eq!(last, Progress::Complete);
        assert_eq!(r.finish().unwrap(), data);
    }

    #[test]
    fn empty_payload_is_one_empty_chunk() {
        let chunks: Vec<_> = split(1, &[], 8).unwrap().collect();
        assert_eq!(chunks.len(), 1);
        let (r, p) = Reassembly::start(chunks[0].clone(), 0).unwrap();
        assert_eq!(p, Progress::Complete);
        assert_eq!(r.finish().unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn refusals() {
        let data = payload(100, 0);
        let chunks: Vec<_> = split(5, &data, 10).unwrap().collect();
        assert_eq!(split(5, &data, 0).err(), Some(ChunkError::ZeroChunkSize));
        assert!(matches!(
            Reassembly::new(5, 100, 99),
            Err(ChunkError::TooLarge { .. })
        ));
        let mut r = Reassembly::new(5, 100, 100).unwrap();
        let mut other = chunks[0].clone();
        other.transfer_id = 6;
        assert!(matches!(
            r.accept(other),
            Err(ChunkError::WrongTransfer { .. })
        ));
        let mut other = chunks[0].clone();
        other.total = 101;
        assert!(matches!(
            r.accept(other),
            Err(ChunkError::TotalMismatch { .. })
        ));
        let mut other = chunks[9].clone();
        other.offset = 95;
        assert!(matches!(
            r.accept(other),
            Err(ChunkError::OutOfBounds { .. })
        ));
        let mut other = chunks[0].clone();
        other.offset = u64::MAX - 2;
        assert!(matches!(
            r.accept(other),
            Err(ChunkError::OutOfBounds { .. })
        ));
        r.accept(chunks[1].clone()).unwrap();
        let mut liar = chunks[1].clone();
        liar.data[3] ^= 1;
        assert!(matches!(r.accept(liar), Err(ChunkError::Conflict { .. })));
        assert_eq!(r.first_gap(), Some((0, 10)));
        assert!(matches!(
            r.finish(),
            Err(ChunkError::Incomplete { missing: 90, .. })
        ));
    }

    #[test]
    fn chunk_crosses_the_codec_compactly() {
        let data = payload(4096, 1);
        let chunk = split(1, &data, 4096).unwrap().next().unwrap();
        let bytes = codec::encode(&chunk, usize::MAX).unwrap();
        // A byte string, not an array of integers: overhead is a small header.
        assert!(bytes.len() < data.len() + 64, "{} bytes", bytes.len());
        let back: Chunk = codec::decode(&bytes, usize::MAX).unwrap();
        assert_eq!(back, chunk);
    }

    proptest! {
        /// Shuffled, duplicated and re-cut chunks reassemble to the original; a missing chunk
        /// leaves the transfer incomplete with the right gap.
        #[test]
        fn prop_any_order_with_duplicates(
            len in 0usize..5000,
            chunk_size in 1usize..700,
            seed in any::<u8>(),
            order in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
            dups in proptest::collection::vec(any::<prop::sample::Index>(), 0..10),
            drop in proptest::option::of(any::<prop::sample::Index>()),
        ) {
            let data = payload(len, seed);
            let mut chunks: Vec<Chunk> = split(77, &data, chunk_size).unwrap().collect();
            let n = chunks.len();
            for (i, idx) in order.iter().enumerate() {
                chunks.swap(i % n, idx.index(n));
            }
            let dropped = drop.map(|d| chunks.remove(d.index(n)));
            for d in &dups {
                if !chunks.is_empty() {
                    let c = chunks[d.index(chunks.len())].clone();
                    chunks.push(c);
                }
            }
            // A second cut of the same payload at another size overlaps consistently.
            if let Some(extra) = split(77, &data, chunk_size + 13).unwrap().nth(1)
                && dropped.as_ref().is_none_or(|d| extra.offset + extra.data.len() as u64 <= d.offset
                    || extra.offset >= d.offset + d.data.len() as u64)
            {
                chunks.push(extra);
            }

            let mut r = Reassembly::new(77, len as u64, len as u64).unwrap();
            for c in chunks {
                r.accept(c).unwrap();
            }
            match dropped {
                Some(d) if !d.data.is_empty() => {
                    prop_assert_eq!(r.first_gap(), Some((d.offset, d.data.len() as u64)));
                    let missing = d.data.len() as u64;
                    let is_incomplete =
                        matches!(r.finish(), Err(ChunkError::Incomplete { missing: m, .. }) if m == missing);
                    prop_assert!(is_incomplete);
                }
                _ => {
                    prop_assert_eq!(r.progress(), Progress::Complete);
                    prop_assert_eq!(r.finish().unwrap(), data);
                }
            }
        }

        #[test]
        fn prop_chunks_respect_size(len in 0usize..10_000, chunk_size in 1usize..3000) {
            let data = payload(len, 0);
            let chunks: Vec<Chunk> = split(1, &data, chunk_size).unwrap().collect();
            prop_assert_eq!(chunks.len(), len.div_ceil(chunk_size).max(1));
            let mut expect = 0u64;
            for c in &chunks {
                prop_assert!(c.data.len() <= chunk_size);
                prop_assert_eq!(c.offset, expect);
                prop_assert_eq!(c.total, len as u64);
                expect += c.data.len() as u64;
            }
            prop_assert_eq!(expect, len as u64);
        }
    }
}
