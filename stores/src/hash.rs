//! Content hashes and bucket digests.
//!
//! * An item's **content hash** is BLAKE3 (in derive-key mode, one context string per engine, so the
//!   same bytes in two engines never collide) over the item's canonical CBOR encoding. The registry
//!   records it; the drift checker compares it.
//! * The id space is split into [`BUCKETS`] buckets by the first bits of BLAKE3(id). A bucket's
//!   **digest** is the XOR of `entry(id, content hash)` over the items in it, kept up to date in fjall
//!   in the same write batch as the item, so reading a digest costs one point read. XOR makes the
//!   update incremental (remove the old entry, add the new) and order-independent; mixing the id into
//!   the entry means two equal items under different ids do not cancel out.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Number of buckets the id space is divided into.
pub const BUCKETS: u16 = 4096;

/// A 32-byte BLAKE3 content hash (defined once, in `verisim-vocab`).
pub use verisim_vocab::ContentHash;

/// The bucket an id falls in: the top 12 bits of BLAKE3(id).
#[must_use]
pub fn bucket_of(id: &crate::EntityId) -> u16 {
    let h = blake3::hash(id.as_bytes());
    let b = h.as_bytes();
    u16::from_be_bytes([b[0], b[1]]) >> 4
}

/// XOR digest of one bucket; all zeros for an empty bucket.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BucketDigest(pub [u8; 32]);

impl BucketDigest {
    /// Folds one item in or out (XOR is its own inverse).
    pub fn toggle(&mut self, id: &crate::EntityId, hash: &ContentHash) {
        let mut h = blake3::Hasher::new_derive_key("verisim stores bucket entry v1");
        h.update(&(id.as_bytes().len() as u64).to_be_bytes());
        h.update(id.as_bytes());
        h.update(&hash.0);
        let e = h.finalize();
        for (d, x) in self.0.iter_mut().zip(e.as_bytes()) {
            *d ^= x;
        }
    }

    /// True for the digest of an empty bucket.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0 == [0; 32]
    }
}

impl Serialize for BucketDigest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for BucketDigest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let b = crate::codec::Bytes::deserialize(d)?;
        let arr: [u8; 32] =
            b.0.as_slice()
                .try_into()
                .map_err(|_| serde::de::Error::invalid_length(b.0.len(), &"32 bytes"))?;
        Ok(Self(arr))
    }
}

impl fmt::Debug for BucketDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "BucketDigest({})",
            &blake3::Hash::from_bytes(self.0).to_hex()[..16]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EntityId;

    #[test]
    fn digest_is_order_independent_and_reversible() {
        let ids: Vec<EntityId> = (0..5)
            .map(|i| EntityId::new(format!("e{i}")).unwrap())
            .collect();
        let hs: Vec<ContentHash> = (0..5u8).map(|i| ContentHash::of("t", &[i])).collect();
        let mut a = BucketDigest::default();
        let mut b = BucketDigest::default();
        for i in 0..5 {
            a.toggle(&ids[i], &hs[i]);
            b.toggle(&ids[4 - i], &hs[4 - i]);
        }
        assert_eq!(a, b);
        for i in 0..5 {
            a.toggle(&ids[i], &hs[i]);
        }
        assert!(a.is_empty());
    }

    #[test]
    fn equal_items_under_two_ids_do_not_cancel() {
        let h = ContentHash::of("t", b"same");
        let mut d = BucketDigest::default();
        d.toggle(&EntityId::new("a").unwrap(), &h);
        d.toggle(&EntityId::new("b").unwrap(), &h);
        assert!(!d.is_empty());
    }

    #[test]
    fn buckets_are_in_range_and_hex_round_trips() {
        for i in 0..1000 {
            assert!(bucket_of(&EntityId::new(format!("id{i}")).unwrap()) < BUCKETS);
        }
        let h = ContentHash::of("t", b"x");
        assert_eq!(ContentHash::from_hex(&h.to_hex()).unwrap(), h);
    }
}
