//! Sealed messages: a CBOR body with its sender's and receiver's node ids and, when the node has an
//! identity, the sender's credential and proof ([`crate::identity`]).
//!
//! The wire form puts the body first and a fixed-layout trailer last, so sealing appends to the
//! encoded body without copying it:
//!
//! ```text
//! body (CBOR of T) | [credential (136) | proof (32 MAC or 64 signature)] | from (u64 BE) | to (u64 BE) | proof kind (u8) | version (u8)
//! ```
//!
//! Proof kind 0 has no credential or proof (a node without an identity), 1 a MAC, 2 a signature.
//! The receiver reads the trailer from the end, checks the seal against its [`Keyring`] for the
//! message `kind` (so a sealed Raft message cannot be passed off as a store import), and only then
//! decodes the body, strictly ([`crate::codec::decode`]).

use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{self, CodecError, DEFAULT_MAX_MESSAGE_BYTES};
use crate::identity::{Keyring, NodeCredential, Proof, Seal, SealError};

/// The version byte of the trailer.
const VERSION: u8 = 1;
const KIND_NONE: u8 = 0;
const KIND_MAC: u8 = 1;
const KIND_SIGNATURE: u8 = 2;
/// from, to, proof kind, version.
const FIXED_TRAILER: usize = 8 + 8 + 1 + 1;

/// A `T` sealed by one node for another, on its way across the cluster. Use it where
/// [`crate::Cbor`] would go in a `#[derive(RactorClusterMessage)]` enum or an RPC reply.
pub struct Sealed<T> {
    bytes: Vec<u8>,
    _type: PhantomData<fn() -> T>,
}

/// An opened message: who sent it (proven, when the receiver has an identity) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened<T> {
    pub from: u64,
    pub value: T,
}

impl<T: Serialize> Sealed<T> {
    /// Encodes `value` (at most [`DEFAULT_MAX_MESSAGE_BYTES`]) as a message of `kind` from
    /// `keyring`'s node to node `to`, sealed when the keyring has an identity.
    ///
    /// # Errors
    /// [`CodecError`] when the value does not encode or is too large.
    pub fn seal(kind: &str, value: &T, keyring: &Keyring, to: u64) -> Result<Self, CodecError> {
        let bytes = codec::encode(value, DEFAULT_MAX_MESSAGE_BYTES)?;
        Ok(Self::seal_encoded(kind, bytes, keyring, to))
    }
}

impl<T: DeserializeOwned> Sealed<T> {
    /// Checks the seal for a message of `kind` to `keyring`'s node, then decodes the body.
    ///
    /// # Errors
    /// A [`SealError`]: the trailer is malformed, the seal does not verify (or is missing where the
    /// keyring requires one), or the body does not decode.
    pub fn open(&self, kind: &str, keyring: &Keyring) -> Result<Opened<T>, SealError> {
        let parts = self.parts()?;
        keyring.check(kind, parts.from, parts.to, parts.body, parts.seal.as_ref())?;
        if !keyring.is_sealing() && parts.to != keyring.node() {
            return Err(SealError::Misaddressed {
                to: parts.to,
                me: keyring.node(),
            });
        }
        let value = codec::decode(parts.body, DEFAULT_MAX_MESSAGE_BYTES)
            .map_err(|e| SealError::Malformed(e.to_string()))?;
        Ok(Opened {
            from: parts.from,
            value,
        })
    }
}

struct Parts<'a> {
    body: &'a [u8],
    seal: Option<Seal>,
    from: u64,
    to: u64,
}

impl<T> Sealed<T> {
    /// Seals `bytes`, which the caller has already encoded as the CBOR of a `T` (at most
    /// [`DEFAULT_MAX_MESSAGE_BYTES`]): one encoding sealed for several receivers. The receiver
    /// decodes strictly, so bytes that are not a `T` are refused there, not trusted.
    pub fn seal_encoded(kind: &str, mut bytes: Vec<u8>, keyring: &Keyring, to: u64) -> Self {
        let from = keyring.node();
        let seal = keyring.seal(kind, to, &bytes);
        bytes.reserve(NodeCredential::WIRE_LEN + 64 + FIXED_TRAILER);
        let proof_kind = match seal {
            None => KIND_NONE,
            Some(Seal { credential, proof }) => {
                credential.to_wire(&mut bytes);
                match proof {
                    Proof::Mac(tag) => {
                        bytes.extend_from_slice(&tag);
                        KIND_MAC
                    }
                    Proof::Signature(sig) => {
                        bytes.extend_from_slice(&sig);
                        KIND_SIGNATURE
                    }
                }
            }
        };
        bytes.extend_from_slice(&from.to_be_bytes());
        bytes.extend_from_slice(&to.to_be_bytes());
        bytes.push(proof_kind);
        bytes.push(VERSION);
        Self::from_encoded(bytes)
    }

    /// Wraps bytes received from elsewhere; they are checked on [`Sealed::open`].
    pub fn from_encoded(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            _type: PhantomData,
        }
    }

    /// The wire bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The node the message claims to come from (unproven until opened), or `None` when the
    /// trailer is malformed.
    pub fn claimed_sender(&self) -> Option<u64> {
        self.parts().ok().map(|p| p.from)
    }

    fn parts(&self) -> Result<Parts<'_>, SealError> {
        let bad = |why: &str| SealError::Malformed(why.to_string());
        let b = &self.bytes;
        let n = b.len();
        if n < FIXED_TRAILER {
            return Err(bad("shorter than the trailer"));
        }
        if b[n - 1] != VERSION {
            return Err(bad("unknown envelope version"));
        }
        let word = |at: usize| -> Result<u64, SealError> {
            b.get(at..at + 8)
                .and_then(|w| w.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or_else(|| bad("truncated"))
        };
        let from = word(n - FIXED_TRAILER)?;
        let to = word(n - FIXED_TRAILER + 8)?;
        let fixed = n - FIXED_TRAILER;
        let (proof_len, kind) = match b[n - 2] {
            KIND_NONE => (0, KIND_NONE),
            KIND_MAC => (32, KIND_MAC),
            KIND_SIGNATURE => (64, KIND_SIGNATURE),
            _ => return Err(bad("unknown proof kind")),
        };
        if kind == KIND_NONE {
            return Ok(Parts {
                body: &b[..fixed],
                seal: None,
                from,
                to,
            });
        }
        let body_end = fixed
            .checked_sub(NodeCredential::WIRE_LEN + proof_len)
            .ok_or_else(|| bad("shorter than its seal"))?;
        let credential =
            NodeCredential::from_wire(&b[body_end..body_end + NodeCredential::WIRE_LEN])
                .ok_or_else(|| bad("malformed credential"))?;
        let proof_bytes = &b[body_end + NodeCredential::WIRE_LEN..fixed];
        let proof = if kind == KIND_MAC {
            Proof::Mac(proof_bytes.try_into().map_err(|_| bad("malformed MAC"))?)
        } else {
            Proof::Signature(
                proof_bytes
                    .try_into()
                    .map_err(|_| bad("malformed signature"))?,
            )
        };
        Ok(Parts {
            body: &b[..body_end],
            seal: Some(Seal { credential, proof }),
            from,
            to,
        })
    }
}

impl<T> Clone for Sealed<T> {
    fn clone(&self) -> Self {
        Self::from_encoded(self.bytes.clone())
    }
}

impl<T> fmt::Debug for Sealed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Sealed<{}>({} bytes)",
            std::any::type_name::<T>(),
            self.bytes.len()
        )
    }
}

// The wire form is the bytes themselves: nothing here can fail inside ractor_cluster.
impl<T> ractor::BytesConvertable for Sealed<T> {
    fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    fn from_bytes(bytes: Vec<u8>) -> Self {
        Self::from_encoded(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Authority, Keyring};

    fn ring(authority: &Authority, node: u64) -> Keyring {
        Keyring::with_identity(authority.issue(node)).expect("keyring")
    }

    #[test]
    fn a_sealed_message_opens_with_its_sender_and_value() {
        let ca = Authority::generate();
        let (a, b) = (ring(&ca, 1), ring(&ca, 2));
        let first = Sealed::seal("raft", &(7u64, "x".to_string()), &a, 2).unwrap();
        let opened = first.open("raft", &b).unwrap();
        assert_eq!(opened.from, 1);
        assert_eq!(opened.value, (7, "x".to_string()));
        // b has now verified a: its answer carries a MAC, which a checks with the pair key it
        // derives from b's credential.
        let answer = Sealed::seal("raft", &9u32, &b, 1).unwrap();
        assert!(answer.as_bytes().len() < first.as_bytes().len());
        assert_eq!(answer.open("raft", &a).unwrap().value, 9);
        // And a, having heard from b, now MACs too.
        let second = Sealed::seal("raft", &1u8, &a, 2).unwrap();
        assert_eq!(second.as_bytes().len(), answer.as_bytes().len());
        assert_eq!(second.open("raft", &b).unwrap().value, 1);
    }

    #[test]
    fn without_identities_messages_travel_unsealed_and_a_sealing_node_refuses_them() {
        let ca = Authority::generate();
        let open = Keyring::open(3);
        let m = Sealed::seal("raft", &5u8, &open, 2).unwrap();
        assert_eq!(m.open("raft", &Keyring::open(2)).unwrap().from, 3);
        assert_eq!(
            m.open("raft", &ring(&ca, 2)).unwrap_err(),
            SealError::Unsealed { from: 3 }
        );
        // An open node still refuses what is addressed to another node.
        assert!(matches!(
            m.open("raft", &Keyring::open(4)),
            Err(SealError::Misaddressed { to: 2, me: 4 })
        ));
    }

    #[test]
    fn every_byte_of_a_sealed_message_is_covered() {
        let ca = Authority::generate();
        let (a, b) = (ring(&ca, 1), ring(&ca, 2));
        let m = Sealed::seal("raft", &"payload".to_string(), &a, 2).unwrap();
        for i in 0..m.as_bytes().len() {
            let mut bytes = m.as_bytes().to_vec();
            bytes[i] ^= 0x01;
            let tampered: Sealed<String> = Sealed::from_encoded(bytes);
            assert!(
                tampered.open("raft", &b).is_err(),
                "flipping byte {i} went unnoticed"
            );
        }
    }

    #[test]
    fn a_message_of_one_kind_does_not_open_as_another() {
        let ca = Authority::generate();
        let (a, b) = (ring(&ca, 1), ring(&ca, 2));
        let m = Sealed::seal("raft", &1u8, &a, 2).unwrap();
        assert_eq!(
            m.open("store", &b).unwrap_err(),
            SealError::BadProof { from: 1 }
        );
    }

    #[test]
    fn a_truncated_or_foreign_envelope_is_malformed() {
        let b = Keyring::open(2);
        for bytes in [vec![], vec![1, 2, 3], vec![0; 18], {
            let mut v = vec![0; 17];
            v.push(9);
            v
        }] {
            let m: Sealed<u8> = Sealed::from_encoded(bytes);
            assert!(matches!(m.open("raft", &b), Err(SealError::Malformed(_))));
        }
    }
}
