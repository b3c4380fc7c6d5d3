//! BLAKE3 Merkle trees with domain-separated hashing: a leaf is `BLAKE3(0x00 ‖ bytes)`, an inner
//! node `BLAKE3(0x01 ‖ left ‖ right)`, so a leaf can never be passed off as an inner node. A level
//! with an odd number of nodes promotes its last node unchanged (it is never paired with itself,
//! which would let two different leaf lists share a root).

use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::hash::ContentHash;

/// Longest inclusion proof accepted (a tree of up to 2^64 leaves).
pub const MAX_PROOF_DEPTH: usize = 64;

/// Hash of a leaf.
#[must_use]
pub fn leaf_hash(bytes: &[u8]) -> ContentHash {
    let mut h = blake3::Hasher::new();
    h.update(&[0]);
    h.update(bytes);
    ContentHash(*h.finalize().as_bytes())
}

/// Hash of an inner node.
#[must_use]
pub fn node_hash(l: &ContentHash, r: &ContentHash) -> ContentHash {
    let mut h = blake3::Hasher::new();
    h.update(&[1]);
    h.update(&l.0);
    h.update(&r.0);
    ContentHash(*h.finalize().as_bytes())
}

/// An inclusion proof: the leaf's position and the sibling hashes from the leaf level up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerkleProof {
    /// Position of the leaf (0-based).
    pub leaf_index: u64,
    /// Number of leaves in the tree.
    pub leaf_count: u64,
    /// Sibling hashes, leaf level first (levels where the node is promoted have none).
    pub siblings: Vec<ContentHash>,
    /// The root the proof leads to.
    pub root: ContentHash,
}

impl MerkleProof {
    /// Recomputes the root from `leaf` and checks it equals `self.root`.
    ///
    /// # Errors
    /// [`StoreError::ProofInvalid`] with the reason.
    pub fn verify(&self, leaf: &[u8]) -> Result<ContentHash> {
        let bad = |r: &str| Err(StoreError::ProofInvalid(r.to_owned()));
        if self.leaf_count == 0 || self.leaf_index >= self.leaf_count {
            return bad("leaf index outside the tree");
        }
        if self.siblings.len() > MAX_PROOF_DEPTH {
            return bad("proof deeper than 64 levels");
        }
        let (mut idx, mut n, mut h) = (self.leaf_index, self.leaf_count, leaf_hash(leaf));
        let mut sib = self.siblings.iter();
        while n > 1 {
            if idx % 2 == 1 {
                let Some(s) = sib.next() else {
                    return bad("too few sibling hashes");
                };
                h = node_hash(s, &h);
            } else if idx + 1 < n {
                let Some(s) = sib.next() else {
                    return bad("too few sibling hashes");
                };
                h = node_hash(&h, s);
            }
            idx /= 2;
            n = n.div_ceil(2);
        }
        if sib.next().is_some() {
            return bad("too many sibling hashes");
        }
        if h != self.root {
            return bad("the path does not lead to the stated root");
        }
        Ok(h)
    }
}

/// A Merkle tree over a list of leaves (to issue proofs).
#[derive(Clone, Debug)]
pub struct MerkleTree {
    levels: Vec<Vec<ContentHash>>,
}

impl MerkleTree {
    /// Builds the tree.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for an empty leaf list.
    pub fn new<B: AsRef<[u8]>>(leaves: &[B]) -> Result<Self> {
        if leaves.is_empty() {
            return Err(StoreError::InvalidInput(
                "a Merkle tree needs a leaf".into(),
            ));
        }
        let mut levels = vec![
            leaves
                .iter()
                .map(|l| leaf_hash(l.as_ref()))
                .collect::<Vec<_>>(),
        ];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let prev = levels.last().map(Vec::as_slice).unwrap_or_default();
            let next = prev
                .chunks(2)
                .map(|p| match p {
                    [l, r] => node_hash(l, r),
                    [x] => *x,
                    _ => unreachable!("chunks(2) yields one or two"),
                })
                .collect();
            levels.push(next);
        }
        Ok(Self { levels })
    }

    /// The root hash.
    #[must_use]
    pub fn root(&self) -> ContentHash {
        self.levels
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or_default()
    }

    /// The inclusion proof of leaf `index`, or `None` if out of range.
    #[must_use]
    pub fn proof(&self, index: usize) -> Option<MerkleProof> {
        let count = self.levels.first()?.len();
        if index >= count {
            return None;
        }
        let mut siblings = Vec::new();
        let mut idx = index;
        for level in &self.levels[..self.levels.len() - 1] {
            let sib = idx ^ 1;
            if sib < level.len() {
                siblings.push(level[sib]);
            }
            idx /= 2;
        }
        Some(MerkleProof {
            leaf_index: index as u64,
            leaf_count: count as u64,
            siblings,
            root: self.root(),
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn every_leaf_proves_and_no_other_leaf_does(n in 1usize..40, pick in 0usize..40) {
            let leaves: Vec<Vec<u8>> = (0..n).map(|i| format!("leaf {i}").into_bytes()).collect();
            let t = MerkleTree::new(&leaves).unwrap();
            for (i, l) in leaves.iter().enumerate() {
                let p = t.proof(i).unwrap();
                prop_assert_eq!(p.verify(l).unwrap(), t.root());
                let other = &leaves[pick % n];
                if other != l {
                    prop_assert!(p.verify(other).is_err());
                }
            }
            prop_assert!(t.proof(n).is_none());
        }
    }

    #[test]
    fn tampered_proofs_fail() {
        let leaves = ["a", "b", "c", "d", "e"];
        let t = MerkleTree::new(&leaves).unwrap();
        let p = t.proof(2).unwrap();
        let mut q = p.clone();
        q.leaf_index = 3;
        assert!(q.verify(b"c").is_err());
        let mut q = p.clone();
        q.siblings.pop();
        assert!(q.verify(b"c").is_err());
        let mut q = p.clone();
        q.siblings.push(ContentHash::default());
        assert!(q.verify(b"c").is_err());
        let mut q = p;
        q.leaf_count = 0;
        assert!(q.verify(b"c").is_err());
        // An inner node is not a leaf.
        let inner = node_hash(&leaf_hash(b"a"), &leaf_hash(b"b"));
        assert_ne!(inner, leaf_hash(&[inner.0, leaf_hash(b"b").0].concat()));
    }
}
