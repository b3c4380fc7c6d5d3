//! Proof blobs: CBOR `{claim, kind, data}` checked either by a hash commitment or by a Merkle
//! inclusion proof.
//!
//! * `HashCommitment`: `data` is CBOR [`Commitment`] `{nonce, commitment}`, valid iff
//!   `commitment = BLAKE3-derive-key("verisim proof commitment v1", len(nonce) as u64 BE ‖ nonce ‖
//!   claim)`. The nonce (≤ 64 bytes) lets a low-entropy claim be committed without being guessable.
//! * `MerkleInclusion`: `data` is CBOR [`MerkleProof`]; the claim's UTF-8 bytes are the leaf.
//!   Verification proves inclusion under `root`; whether that root is trusted is the caller's
//!   decision ([`Verified::root`] says which root it was).
//!
//! Decoding is strict: malformed CBOR and trailing bytes (after the blob, or after `data`'s own CBOR
//! item) are refused as [`StoreError::Malformed`].

use serde::{Deserialize, Serialize};

use super::merkle::MerkleProof;
use crate::codec::{Bytes, from_cbor_exact, to_cbor};
use crate::error::{Result, StoreError};
use crate::hash::ContentHash;

/// Longest nonce of a hash commitment.
pub const MAX_NONCE_BYTES: usize = 64;

/// How a proof blob is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProofKind {
    /// `data` is a [`Commitment`].
    HashCommitment,
    /// `data` is a [`MerkleProof`].
    MerkleInclusion,
}

/// A proof blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofBlob {
    /// What is claimed (UTF-8).
    pub claim: String,
    /// How to check it.
    pub kind: ProofKind,
    /// The kind's CBOR-encoded evidence.
    pub data: Bytes,
}

/// Evidence of a hash commitment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commitment {
    /// Random bytes mixed in before the claim.
    pub nonce: Bytes,
    /// The committed hash.
    pub commitment: ContentHash,
}

/// A verified proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The proof's kind.
    pub kind: ProofKind,
    /// The commitment (for `HashCommitment`) or Merkle root (for `MerkleInclusion`) the claim was
    /// checked against.
    pub root: ContentHash,
}

fn commit_hash(nonce: &[u8], claim: &str) -> ContentHash {
    let mut h = blake3::Hasher::new_derive_key("verisim proof commitment v1");
    h.update(&(nonce.len() as u64).to_be_bytes());
    h.update(nonce);
    h.update(claim.as_bytes());
    ContentHash(*h.finalize().as_bytes())
}

impl ProofBlob {
    /// A hash-commitment blob for `claim`.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] if the nonce is longer than 64 bytes.
    pub fn commit(claim: impl Into<String>, nonce: &[u8]) -> Result<Self> {
        if nonce.len() > MAX_NONCE_BYTES {
            return Err(StoreError::InvalidInput(
                "nonce longer than 64 bytes".into(),
            ));
        }
        let claim = claim.into();
        let c = Commitment {
            nonce: Bytes(nonce.to_vec()),
            commitment: commit_hash(nonce, &claim),
        };
        Ok(Self {
            claim,
            kind: ProofKind::HashCommitment,
            data: Bytes(to_cbor(&c)?),
        })
    }

    /// A Merkle-inclusion blob for `claim` (the leaf must be the claim's bytes).
    ///
    /// # Errors
    /// Never in practice (encoding).
    pub fn merkle(claim: impl Into<String>, proof: &MerkleProof) -> Result<Self> {
        Ok(Self {
            claim: claim.into(),
            kind: ProofKind::MerkleInclusion,
            data: Bytes(to_cbor(proof)?),
        })
    }

    /// Encodes the blob as CBOR.
    ///
    /// # Errors
    /// Never in practice (encoding).
    pub fn to_cbor(&self) -> Result<Vec<u8>> {
        to_cbor(self)
    }

    /// Decodes a blob strictly.
    ///
    /// # Errors
    /// [`StoreError::Malformed`] for invalid CBOR, a wrong structure or trailing bytes.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self> {
        from_cbor_exact("proof blob", bytes)
    }

    /// Checks the proof.
    ///
    /// # Errors
    /// [`StoreError::Malformed`] if `data` does not decode strictly; [`StoreError::ProofInvalid`]
    /// if it decodes but does not prove the claim.
    pub fn verify(&self) -> Result<Verified> {
        match self.kind {
            ProofKind::HashCommitment => {
                let c: Commitment = from_cbor_exact("proof blob", &self.data.0)?;
                if c.nonce.0.len() > MAX_NONCE_BYTES {
                    return Err(StoreError::ProofInvalid(
                        "nonce longer than 64 bytes".into(),
                    ));
                }
                if commit_hash(&c.nonce.0, &self.claim) != c.commitment {
                    return Err(StoreError::ProofInvalid(
                        "the commitment does not match the claim".into(),
                    ));
                }
                Ok(Verified {
                    kind: self.kind,
                    root: c.commitment,
                })
            }
            ProofKind::MerkleInclusion => {
                let p: MerkleProof = from_cbor_exact("proof blob", &self.data.0)?;
                let root = p.verify(self.claim.as_bytes())?;
                Ok(Verified {
                    kind: self.kind,
                    root,
                })
            }
        }
    }
}

/// Decodes and verifies a CBOR proof blob in one step.
///
/// # Errors
/// As [`ProofBlob::from_cbor`] and [`ProofBlob::verify`].
pub fn verify_blob(bytes: &[u8]) -> Result<(ProofBlob, Verified)> {
    let b = ProofBlob::from_cbor(bytes)?;
    let v = b.verify()?;
    Ok((b, v))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::semantic::merkle::MerkleTree;

    #[test]
    fn commitments_verify_and_detect_changes() {
        let b = ProofBlob::commit("alice owns key 42", b"nonce").unwrap();
        let (back, v) = verify_blob(&b.to_cbor().unwrap()).unwrap();
        assert_eq!(back, b);
        assert_eq!(v.kind, ProofKind::HashCommitment);
        let mut t = b.clone();
        t.claim.push('!');
        assert!(matches!(t.verify(), Err(StoreError::ProofInvalid(_))));
        assert!(ProofBlob::commit("x", &[0; 65]).is_err());
    }

    #[test]
    fn merkle_blobs_verify_against_their_root() {
        let claims = ["a", "b", "c"];
        let tree = MerkleTree::new(&claims).unwrap();
        let b = ProofBlob::merkle("b", &tree.proof(1).unwrap()).unwrap();
        let (_, v) = verify_blob(&b.to_cbor().unwrap()).unwrap();
        assert_eq!(v.root, tree.root());
        let wrong = ProofBlob::merkle("c", &tree.proof(1).unwrap()).unwrap();
        assert!(matches!(wrong.verify(), Err(StoreError::ProofInvalid(_))));
    }

    #[test]
    fn trailing_bytes_are_malformed_outside_and_inside() {
        let b = ProofBlob::commit("c", b"n").unwrap();
        let mut bytes = b.to_cbor().unwrap();
        bytes.push(0xf6);
        assert!(matches!(
            verify_blob(&bytes),
            Err(StoreError::Malformed { .. })
        ));
        let mut inner = b;
        inner.data.0.push(0);
        assert!(matches!(inner.verify(), Err(StoreError::Malformed { .. })));
        assert!(matches!(
            verify_blob(&[0xa1]),
            Err(StoreError::Malformed { .. })
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = verify_blob(&bytes);
        }
    }
}
