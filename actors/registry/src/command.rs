//! What the registry log carries: a [`Proposal`] is one Raft entry's command.
//!
//! Every proposal carries the proposer's cluster time (`at_ms`, see `consensus::clock`). Apply never
//! reads a clock: the registry clock follows these stamps by bounded steps, expiry of trust windows
//! and of remembered request ids is decided from it, so every replica applying the same log reaches
//! the same state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use verisim_vocab::cbor::CborError;
use verisim_vocab::{ContentHash, EntityId, Modality as ModalityKind};

use super::ids::{ClientId, NodeName, RequestId, WindowId};

/// A 32-byte public key (a client's Ed25519 identity key, or an X25519 key of a window), encoded as a
/// CBOR byte string.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PublicKey(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…)")
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = PublicKey;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a 32-byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<PublicKey, E> {
                <[u8; 32]>::try_from(v)
                    .map(PublicKey)
                    .map_err(|_| E::invalid_length(v.len(), &self))
            }
        }
        d.deserialize_bytes(V)
    }
}

/// What the registry records of one modality item: its content hash and size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemMeta {
    pub hash: ContentHash,
    pub size: u64,
}

/// What a grant lets another client do with an entity. `Write` implies `Read`; only the owner
/// grants, revokes, or sees the grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Access {
    Read,
    Write,
}

/// Who asked for a change: the client, the trust window its request was signed in, its request id,
/// and a fingerprint of what was asked (a hash over method, path and body), so that a retry of the
/// same request is told the first outcome while another request reusing the id is refused as a
/// replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub client: ClientId,
    pub window: WindowId,
    pub request: RequestId,
    pub fingerprint: ContentHash,
}

/// Addresses at which a node is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// ractor_cluster listen address, `host:port`.
    pub cluster_addr: String,
    /// HTTP proxy address, `host:port`.
    pub http_addr: String,
}

/// One registry log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The proposer's cluster time in milliseconds since the Unix epoch (the median of the voters'
    /// clocks as it estimates them; never ahead of the registry clock when it heard from too few).
    pub at_ms: u64,
    pub command: Command,
}

/// The changes the registry knows. Admin commands (clients, nodes) are authorised before proposing;
/// client commands carry an [`Origin`] that apply checks against the committed trust windows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Register a client's Ed25519 identity key, as nodes before admin-only enrollment wrote it:
    /// replaces the key of an existing client (a revoked one is refused). Kept so that old logs
    /// replay to the state they reached; nodes now propose [`Command::EnrollClient`].
    RegisterClient {
        client: ClientId,
        public_key: PublicKey,
    },
    /// Revoke a client: its windows close and its key can no longer open new ones.
    RevokeClient { client: ClientId },
    /// Open a trust window. The window's HMAC key is never in the log: the client's ephemeral X25519
    /// public key is, and every node derives the key from it and the cluster's X25519 secret (itself
    /// derived from the cluster secret), as the client does from its ephemeral secret and the
    /// cluster's public key.
    OpenWindow {
        client: ClientId,
        window: WindowId,
        expires_at_ms: u64,
        client_dh: PublicKey,
    },
    /// Close a window before it expires.
    CloseWindow { client: ClientId, window: WindowId },
    /// Create or update an entity's metadata after its payload was accepted for distribution.
    PutEntity {
        origin: Origin,
        id: EntityId,
        items: BTreeMap<ModalityKind, ItemMeta>,
        placement: Vec<NodeName>,
        /// `Some(v)`: apply only if the current version is `v` (`Some(0)`: only if absent).
        expected_version: Option<u64>,
    },
    /// Delete an entity; its store items become orphans for the drift checker to remove.
    DeleteEntity {
        origin: Origin,
        id: EntityId,
        expected_version: Option<u64>,
    },
    /// Record (or update) a node's addresses.
    SetNode { node: NodeName, info: NodeInfo },
    /// Forget a node's addresses.
    RemoveNode { node: NodeName },
    // New variants go at the end (older logs name only the ones above).
    /// Give `grantee` `access` to an entity, replacing any earlier grant to it. Only the owner
    /// may; the entity's version does not change.
    GrantAccess {
        origin: Origin,
        id: EntityId,
        grantee: ClientId,
        access: Access,
    },
    /// Withdraw `grantee`'s grant on an entity (only the owner may; withdrawing an absent grant
    /// succeeds and changes nothing).
    RevokeAccess {
        origin: Origin,
        id: EntityId,
        grantee: ClientId,
    },
    /// Enroll a client's identity key: a new client is registered; the same key again changes
    /// nothing; another key for an existing client is refused ([`Refusal::ClientExists`]), as is
    /// any key for a revoked client.
    ///
    /// [`Refusal::ClientExists`]: super::Refusal::ClientExists
    EnrollClient {
        client: ClientId,
        public_key: PublicKey,
    },
    /// Replace an existing client's identity key and close all of its open windows at once (an
    /// explicit rotation, by an admin). Refused for an unknown or revoked client.
    RotateClient {
        client: ClientId,
        public_key: PublicKey,
    },
    /// Change where entities are placed (the leader's rebalancer, after a membership change):
    /// each move applies only if the entity is still at `version` with placement `from`, so a
    /// write or another move in between makes it a no-op for the next round to look at again.
    MovePlacements { moves: Vec<PlacementMove> },
}

/// One entity's change of placement in [`Command::MovePlacements`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementMove {
    pub id: EntityId,
    pub version: u64,
    pub from: Vec<NodeName>,
    pub to: Vec<NodeName>,
}

/// A CBOR value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed CBOR: {0}")]
    Malformed(String),
    #[error("{0} trailing bytes after the CBOR value")]
    TrailingBytes(usize),
}

/// Encodes a value as CBOR.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail, and our types contain no map with non-string-like keys that
    // ciborium refuses; an error here is a programming error in a type definition.
    if let Err(e) = ciborium::into_writer(value, &mut out) {
        panic!("CBOR encoding of an in-memory registry value failed: {e}");
    }
    out
}

/// Decodes a CBOR value that must take up all of `bytes`.
pub fn decode_exact<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    verisim_vocab::cbor::decode_exact(bytes).map_err(|e| match e {
        CborError::TrailingBytes(n) => DecodeError::TrailingBytes(n),
        other => DecodeError::Malformed(other.to_string()),
    })
}

impl Proposal {
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode_exact(bytes)
    }

    /// Whether `bytes` may be proposed now, by a peer forwarding it or through the raw-proposal
    /// route: it must decode to a proposal, and not to a command kept only so that old logs replay
    /// (the leader's own proxy never builds one). Apply still checks everything else.
    ///
    /// # Errors
    /// A sentence saying why the bytes are refused.
    pub fn admit(bytes: &[u8]) -> Result<Self, String> {
        let p = Self::decode(bytes).map_err(|e| format!("malformed proposal: {e}"))?;
        if p.command.is_legacy() {
            return Err(
                "RegisterClient is kept only to replay old logs; enroll clients with EnrollClient"
                    .to_owned(),
            );
        }
        Ok(p)
    }
}

impl Command {
    /// A command no node proposes any more, kept so that old logs replay to the state they reached.
    pub fn is_legacy(&self) -> bool {
        matches!(self, Command::RegisterClient { .. })
    }
}
