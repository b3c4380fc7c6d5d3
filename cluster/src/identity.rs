//! Node identities: which node a cluster message comes from, proven per message.
//!
//! The cluster cookie admits a process to the ractor_cluster mesh, and every holder of it is alike:
//! ractor_cluster hands a message to the receiving actor without saying which session it came in on.
//! So a node's identity cannot come from the connection; it travels with each message instead.
//!
//! - An **authority** (an Ed25519 key the operator keeps, like a CA key; [`Authority`]) issues each
//!   node a **credential** ([`NodeCredential`]): the node id, the node's Ed25519 key and its static
//!   X25519 key, signed. The node keeps its two secrets and its credential in its identity file
//!   ([`NodeIdentity`], mode 0600).
//! - Every sealed message ([`crate::seal`]) carries its sender's credential and a proof over the
//!   message kind, the sender's and the receiver's ids and the body. On first contact the proof is
//!   the sender's Ed25519 signature. Once a node has heard from a peer (and so verified its
//!   credential), it proves itself with a BLAKE3 MAC under their **pair key**: X25519 of its secret
//!   and the peer's credential key, hashed with both credentials ([`Keyring::seal`]). Both ends
//!   derive the same pair key without any exchange of their own.
//! - A receiver ([`Keyring::check`]) accepts a message only if the credential is the authority's,
//!   names the claimed sender, and the proof verifies. A credential's signature is checked once
//!   (then cached); after that a message costs one keyed BLAKE3 hash.
//!
//! Holding the cookie without an identity the authority issued, a process can join the mesh but
//! cannot speak as any node; holding one node's identity, it can speak only as that node.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Mutex;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

/// What an authority signs: this domain string, the node id (big-endian), the node's two keys.
const CREDENTIAL_DOMAIN: &[u8] = b"verisim node credential v1\0";
/// The BLAKE3 key-derivation contexts of pair keys and of first-contact signature digests.
const PAIR_KEY_CONTEXT: &str = "verisim 2026-12 node pair key v1";
const FIRST_CONTACT_CONTEXT: &str = "verisim 2026-12 first contact digest v1";

const AUTHORITY_HEADER: &str = "verisim-authority v1";
const IDENTITY_HEADER: &str = "verisim-node-identity v1";

/// Most distinct peer credentials a [`Keyring`] keeps verified (one per node in practice; a
/// reissued credential replaces its node's entry).
const MAX_CACHED_PEERS: usize = 4096;

/// Why an identity could not be made, read or written, or a credential was refused.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is not an authority or identity file of this version, or is damaged.
    #[error("{path}: {why}")]
    Format { path: String, why: String },
    /// A credential whose signature is not the authority's (or not for that node and key).
    #[error("the credential of node {node} is not signed by this cluster's authority")]
    NotIssued { node: u64 },
}

/// The issuer of node credentials: an Ed25519 key the operator keeps off the nodes once the
/// identities are issued (a node needs only the authority's public key, in its identity file).
pub struct Authority {
    signing: SigningKey,
}

impl Authority {
    /// A new authority with a random key.
    pub fn generate() -> Self {
        let seed = Zeroizing::new(rand::random::<[u8; 32]>());
        Self {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// The public key nodes check credentials against.
    pub fn public_key(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// Issues node `node` a new identity: fresh keys and their signed credential.
    pub fn issue(&self, node: u64) -> NodeIdentity {
        let signing = SigningKey::from_bytes(&Zeroizing::new(rand::random::<[u8; 32]>()));
        let dh = StaticSecret::from(*Zeroizing::new(rand::random::<[u8; 32]>()));
        let mut credential = NodeCredential {
            node,
            sign_key: signing.verifying_key().to_bytes(),
            dh_key: PublicKey::from(&dh).to_bytes(),
            signature: [0; 64],
        };
        credential.signature = self.signing.sign(&credential.signed_bytes()).to_bytes();
        NodeIdentity {
            signing,
            dh,
            credential,
            authority: self.public_key(),
        }
    }

    /// The authority file's text (its secret in hex, with a checksum).
    pub fn to_file_text(&self) -> Zeroizing<String> {
        let secret = Zeroizing::new(hex::encode(self.signing.to_bytes()));
        let body = Zeroizing::new(format!(
            "{AUTHORITY_HEADER}\nsecret = {}\npublic = {}\n",
            *secret,
            hex::encode(self.public_key())
        ));
        with_checksum(&body)
    }

    /// Reads an authority file written by [`Authority::to_file_text`].
    ///
    /// # Errors
    /// [`IdentityError::Io`] or [`IdentityError::Format`] (wrong header, damaged checksum, a key
    /// that does not match its public half).
    pub fn read(path: &Path) -> Result<Self, IdentityError> {
        let text = read_text(path)?;
        let fields = parse_fields(path, &text, AUTHORITY_HEADER, &["secret", "public"])?;
        let bad = |why: &str| format_error(path, why);
        let secret =
            Zeroizing::new(hex32(&fields[0]).ok_or_else(|| bad("secret is not 32 hex bytes"))?);
        let signing = SigningKey::from_bytes(&secret);
        let public = hex32(&fields[1]).ok_or_else(|| bad("public is not 32 hex bytes"))?;
        if signing.verifying_key().to_bytes() != public {
            return Err(bad("the public key does not belong to the secret"));
        }
        Ok(Self { signing })
    }
}

/// What an authority says of a node: its id, its Ed25519 key (signs first contacts) and its static
/// X25519 key (agrees pair keys), signed by the authority.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NodeCredential {
    pub node: u64,
    pub sign_key: [u8; 32],
    pub dh_key: [u8; 32],
    pub signature: [u8; 64],
}

impl fmt::Debug for NodeCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NodeCredential(n{}, {})",
            self.node,
            hex::encode(&self.sign_key[..8])
        )
    }
}

impl NodeCredential {
    /// Bytes of a credential on the wire: id, the two keys, the authority's signature.
    pub const WIRE_LEN: usize = 8 + 32 + 32 + 64;

    /// What the authority signs: a domain string, the node id (big-endian), the two keys.
    fn signed_bytes(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(CREDENTIAL_DOMAIN.len() + 8 + 64);
        m.extend_from_slice(CREDENTIAL_DOMAIN);
        m.extend_from_slice(&self.node.to_be_bytes());
        m.extend_from_slice(&self.sign_key);
        m.extend_from_slice(&self.dh_key);
        m
    }

    /// Whether `authority` signed this credential.
    ///
    /// # Errors
    /// [`IdentityError::NotIssued`].
    pub fn verify(&self, authority: &VerifyingKey) -> Result<(), IdentityError> {
        authority
            .verify_strict(
                &self.signed_bytes(),
                &Signature::from_bytes(&self.signature),
            )
            .map_err(|_| IdentityError::NotIssued { node: self.node })
    }

    /// The credential's wire form ([`Self::WIRE_LEN`] bytes).
    pub fn to_wire(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.node.to_be_bytes());
        out.extend_from_slice(&self.sign_key);
        out.extend_from_slice(&self.dh_key);
        out.extend_from_slice(&self.signature);
    }

    /// Reads a credential from exactly [`Self::WIRE_LEN`] bytes.
    pub fn from_wire(b: &[u8]) -> Option<Self> {
        if b.len() != Self::WIRE_LEN {
            return None;
        }
        Some(Self {
            node: u64::from_be_bytes(b[..8].try_into().ok()?),
            sign_key: b[8..40].try_into().ok()?,
            dh_key: b[40..72].try_into().ok()?,
            signature: b[72..136].try_into().ok()?,
        })
    }
}

/// One node's identity: its two secrets, its credential, and the authority it trusts.
pub struct NodeIdentity {
    signing: SigningKey,
    dh: StaticSecret,
    credential: NodeCredential,
    authority: [u8; 32],
}

impl fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeIdentity")
            .field("credential", &self.credential)
            .field("authority", &hex::encode(&self.authority[..8]))
            .finish_non_exhaustive()
    }
}

impl NodeIdentity {
    /// The node this identity speaks for.
    pub fn node(&self) -> u64 {
        self.credential.node
    }

    pub fn credential(&self) -> &NodeCredential {
        &self.credential
    }

    /// The authority's public key.
    pub fn authority(&self) -> [u8; 32] {
        self.authority
    }

    /// The identity file's text (the secrets in hex, with a checksum).
    pub fn to_file_text(&self) -> Zeroizing<String> {
        let c = &self.credential;
        let body = Zeroizing::new(format!(
            "{IDENTITY_HEADER}\nnode = {}\nsign_secret = {}\ndh_secret = {}\nsign_key = {}\ndh_key = {}\nauthority = {}\nsignature = {}\n",
            c.node,
            *Zeroizing::new(hex::encode(self.signing.to_bytes())),
            *Zeroizing::new(hex::encode(self.dh.to_bytes())),
            hex::encode(c.sign_key),
            hex::encode(c.dh_key),
            hex::encode(self.authority),
            hex::encode(c.signature),
        ));
        with_checksum(&body)
    }

    /// Reads an identity file written by [`NodeIdentity::to_file_text`] and checks it: the
    /// checksum, that the secrets match the credential's keys, and that the authority signed it.
    ///
    /// # Errors
    /// [`IdentityError::Io`], [`IdentityError::Format`] or [`IdentityError::NotIssued`].
    pub fn read(path: &Path) -> Result<Self, IdentityError> {
        let text = read_text(path)?;
        let f = parse_fields(
            path,
            &text,
            IDENTITY_HEADER,
            &[
                "node",
                "sign_secret",
                "dh_secret",
                "sign_key",
                "dh_key",
                "authority",
                "signature",
            ],
        )?;
        let bad = |why: &str| format_error(path, why);
        let key = |i: usize, name: &str| {
            hex32(&f[i]).ok_or_else(|| bad(&format!("{name} is not 32 hex bytes")))
        };
        let node: u64 = f[0].parse().map_err(|_| bad("node is not a number"))?;
        let signing = SigningKey::from_bytes(&Zeroizing::new(key(1, "sign_secret")?));
        let dh = StaticSecret::from(*Zeroizing::new(key(2, "dh_secret")?));
        let mut signature = [0u8; 64];
        hex::decode_to_slice(&*f[6], &mut signature)
            .map_err(|_| bad("signature is not 64 hex bytes"))?;
        let credential = NodeCredential {
            node,
            sign_key: key(3, "sign_key")?,
            dh_key: key(4, "dh_key")?,
            signature,
        };
        if signing.verifying_key().to_bytes() != credential.sign_key
            || PublicKey::from(&dh).to_bytes() != credential.dh_key
        {
            return Err(bad("a public key does not belong to its secret"));
        }
        let authority = key(5, "authority")?;
        let verifying = VerifyingKey::from_bytes(&authority)
            .map_err(|_| bad("authority is not an Ed25519 key"))?;
        credential.verify(&verifying)?;
        Ok(Self {
            signing,
            dh,
            credential,
            authority,
        })
    }
}

/// The key two nodes share: derived from X25519 of one's secret and the other's public key, bound
/// to both credentials (in a fixed order, so both ends derive the same key).
#[derive(Clone, PartialEq, Eq)]
struct PairKey([u8; 32]);

impl PairKey {
    fn derive(mine: &NodeIdentity, theirs: &NodeCredential) -> Self {
        let shared = Zeroizing::new(
            mine.dh
                .diffie_hellman(&PublicKey::from(theirs.dh_key))
                .to_bytes(),
        );
        let a = (mine.credential.node, mine.credential.dh_key);
        let b = (theirs.node, theirs.dh_key);
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let mut h = blake3::Hasher::new_derive_key(PAIR_KEY_CONTEXT);
        h.update(&*shared);
        h.update(&lo.0.to_be_bytes());
        h.update(&lo.1);
        h.update(&hi.0.to_be_bytes());
        h.update(&hi.1);
        Self(*h.finalize().as_bytes())
    }

    fn mac(&self, kind: &str, from: u64, to: u64, body: &[u8]) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.0);
        transcript(&mut h, kind, from, to, body);
        *h.finalize().as_bytes()
    }
}

/// What a MAC or a first-contact signature covers: the kind, both ids and the body, each
/// length-prefixed so no two inputs run together.
fn transcript(h: &mut blake3::Hasher, kind: &str, from: u64, to: u64, body: &[u8]) {
    h.update(&(kind.len() as u64).to_be_bytes());
    h.update(kind.as_bytes());
    h.update(&from.to_be_bytes());
    h.update(&to.to_be_bytes());
    h.update(&(body.len() as u64).to_be_bytes());
    h.update(body);
}

/// The signed digest of a first-contact message (Ed25519 over a 32-byte BLAKE3 digest, so a large
/// body is hashed once).
fn signed_digest(kind: &str, from: u64, to: u64, body: &[u8]) -> Vec<u8> {
    let mut h = blake3::Hasher::new_derive_key(FIRST_CONTACT_CONTEXT);
    transcript(&mut h, kind, from, to, body);
    h.finalize().as_bytes().to_vec()
}

/// How a sealed message proves its sender.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// A MAC under the pair key: the sender has heard from the receiver before.
    Mac([u8; 32]),
    /// The sender's Ed25519 signature: a first contact (the receiver's keys are not known yet).
    Signature([u8; 64]),
}

impl fmt::Debug for Proof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mac(_) => f.write_str("Mac(..)"),
            Self::Signature(_) => f.write_str("Signature(..)"),
        }
    }
}

/// The seal on one message: the sender's credential and its proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seal {
    pub credential: NodeCredential,
    pub proof: Proof,
}

/// A node's view of identities: its own, to seal with, and the peers' credentials it has verified,
/// to check with. Without an identity ([`Keyring::open`]) it seals nothing and checks nothing: the
/// cluster then trusts every holder of the cookie to say who it is.
pub struct Keyring {
    node: u64,
    me: Option<Mine>,
}

struct Mine {
    identity: NodeIdentity,
    authority: VerifyingKey,
    /// Verified peers: node id → (its credential, the pair key with it).
    peers: Mutex<HashMap<u64, (NodeCredential, PairKey)>>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.me {
            None => write!(f, "Keyring(n{}, open)", self.node),
            Some(m) => write!(f, "Keyring({:?})", m.identity.credential),
        }
    }
}

/// Why a sealed message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The message carries no seal, and this node requires one.
    #[error("unsealed message claiming node {from}")]
    Unsealed { from: u64 },
    /// The credential does not name the node the message claims to be from.
    #[error("message claims node {from} with a credential of node {credential}")]
    WrongNode { from: u64, credential: u64 },
    /// The credential is not the authority's.
    #[error(
        "message claiming node {from} carries a credential this cluster's authority did not issue"
    )]
    NotIssued { from: u64 },
    /// The message is addressed to another node.
    #[error("message for node {to} reached node {me}")]
    Misaddressed { to: u64, me: u64 },
    /// The MAC or signature does not verify: the body, kind or ids were changed, or the sender
    /// lacks the node's secrets.
    #[error("bad proof on a message claiming node {from}")]
    BadProof { from: u64 },
    /// The envelope or the body does not decode.
    #[error("malformed message: {0}")]
    Malformed(String),
}

impl SealError {
    /// A stable label for metrics and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unsealed { .. } => "unsealed",
            Self::WrongNode { .. } => "wrong_node",
            Self::NotIssued { .. } => "not_issued",
            Self::Misaddressed { .. } => "misaddressed",
            Self::BadProof { .. } => "bad_proof",
            Self::Malformed(_) => "malformed",
        }
    }
}

impl Keyring {
    /// No identity: node `node`'s messages go out unsealed and come in unchecked.
    pub fn open(node: u64) -> Self {
        Self { node, me: None }
    }

    /// This node's identity: messages go out sealed, and only sealed ones come in.
    ///
    /// # Errors
    /// [`IdentityError::Format`] when the identity's authority key is not an Ed25519 key.
    pub fn with_identity(identity: NodeIdentity) -> Result<Self, IdentityError> {
        let authority =
            VerifyingKey::from_bytes(&identity.authority).map_err(|_| IdentityError::Format {
                path: "identity".into(),
                why: "authority is not an Ed25519 key".into(),
            })?;
        // Messages to itself (a call to a local actor) are MACed from the start.
        let own = *identity.credential();
        let pair = PairKey::derive(&identity, &own);
        let peers = Mutex::new(HashMap::from([(own.node, (own, pair))]));
        Ok(Self {
            node: identity.node(),
            me: Some(Mine {
                identity,
                authority,
                peers,
            }),
        })
    }

    /// Whether this node seals and checks.
    pub fn is_sealing(&self) -> bool {
        self.me.is_some()
    }

    /// This node's id.
    pub fn node(&self) -> u64 {
        self.node
    }

    /// The seal of a message of `kind` from this node to `to`, over `body`: a MAC when this node
    /// has heard from `to`, a signature on first contact; `None` without an identity.
    pub fn seal(&self, kind: &str, to: u64, body: &[u8]) -> Option<Seal> {
        let me = self.me.as_ref()?;
        let credential = *me.identity.credential();
        let from = credential.node;
        let proof = match me.known(to) {
            Some(pair) => Proof::Mac(pair.mac(kind, from, to, body)),
            None => Proof::Signature(
                me.identity
                    .signing
                    .sign(&signed_digest(kind, from, to, body))
                    .to_bytes(),
            ),
        };
        Some(Seal { credential, proof })
    }

    /// Checks a message of `kind` claiming to come from `from` for `to`, over `body`.
    ///
    /// # Errors
    /// A [`SealError`] naming why it is refused.
    pub fn check(
        &self,
        kind: &str,
        from: u64,
        to: u64,
        body: &[u8],
        seal: Option<&Seal>,
    ) -> Result<(), SealError> {
        let Some(me) = &self.me else {
            return Ok(());
        };
        let Some(seal) = seal else {
            return Err(SealError::Unsealed { from });
        };
        if to != self.node {
            return Err(SealError::Misaddressed { to, me: self.node });
        }
        if seal.credential.node != from {
            return Err(SealError::WrongNode {
                from,
                credential: seal.credential.node,
            });
        }
        let pair = me
            .verified(&seal.credential)
            .ok_or(SealError::NotIssued { from })?;
        let good = match &seal.proof {
            Proof::Mac(tag) => constant_time_eq(&pair.mac(kind, from, to, body), tag),
            Proof::Signature(sig) => VerifyingKey::from_bytes(&seal.credential.sign_key)
                .and_then(|k| {
                    k.verify_strict(
                        &signed_digest(kind, from, to, body),
                        &Signature::from_bytes(sig),
                    )
                })
                .is_ok(),
        };
        if good {
            Ok(())
        } else {
            Err(SealError::BadProof { from })
        }
    }
}

impl Mine {
    /// The pair key with `peer`, if this node has verified its credential.
    fn known(&self, peer: u64) -> Option<PairKey> {
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.get(&peer).map(|(_, pair)| pair.clone())
    }

    /// The pair key with the node `credential` names, once the credential verifies (cached).
    fn verified(&self, credential: &NodeCredential) -> Option<PairKey> {
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((known, pair)) = peers.get(&credential.node)
            && known == credential
        {
            return Some(pair.clone());
        }
        credential.verify(&self.authority).ok()?;
        let pair = PairKey::derive(&self.identity, credential);
        if peers.len() >= MAX_CACHED_PEERS && !peers.contains_key(&credential.node) {
            peers.clear(); // Only issued credentials get here; clearing costs re-verifications.
        }
        peers.insert(credential.node, (*credential, pair.clone()));
        Some(pair)
    }
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn with_checksum(body: &str) -> Zeroizing<String> {
    let sum = blake3::hash(body.as_bytes());
    Zeroizing::new(format!("{body}checksum = {}\n", sum.to_hex()))
}

/// Reads a secret file, refusing it when group or others may read or write it (as the cookie file).
fn read_text(path: &Path) -> Result<Zeroizing<String>, IdentityError> {
    let io = |source| IdentityError::Io {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format_error(
                path,
                &format!("mode {mode:o} lets group or others at a secret; chmod 600 it"),
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = meta;
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|source| IdentityError::Io {
            path: path.display().to_string(),
            source,
        })
}

fn format_error(path: &Path, why: &str) -> IdentityError {
    IdentityError::Format {
        path: path.display().to_string(),
        why: why.to_string(),
    }
}

/// The values of `names`, in that order, from `header\nname = value\n...checksum = hex\n`, after
/// checking the checksum over everything before its line.
fn parse_fields(
    path: &Path,
    text: &str,
    header: &str,
    names: &[&str],
) -> Result<Vec<Zeroizing<String>>, IdentityError> {
    let bad = |why: String| format_error(path, &why);
    let Some(at) = text.rfind("checksum = ") else {
        return Err(bad("no checksum line".into()));
    };
    let (body, sum_line) = text.split_at(at);
    let sum = sum_line
        .strip_prefix("checksum = ")
        .map(str::trim_end)
        .and_then(hex32)
        .ok_or_else(|| bad("the checksum line is not 32 hex bytes".into()))?;
    if *blake3::hash(body.as_bytes()).as_bytes() != sum {
        return Err(bad(
            "checksum mismatch: the file is damaged or was edited".into()
        ));
    }
    let mut lines = body.lines();
    if lines.next() != Some(header) {
        return Err(bad(format!("not a `{header}` file")));
    }
    let mut values = Vec::with_capacity(names.len());
    for name in names {
        let line = lines
            .next()
            .ok_or_else(|| bad(format!("no `{name}` line")))?;
        let value = line
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(" = "))
            .ok_or_else(|| bad(format!("expected `{name} = ...`, found another line")))?;
        values.push(Zeroizing::new(value.to_string()));
    }
    if lines.next().is_some() {
        return Err(bad("unexpected lines before the checksum".into()));
    }
    Ok(values)
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests;
