//! Key types. Secrets zeroize on drop and never print their bytes (`Debug` shows a public part or
//! nothing); their text forms come back in [`Zeroizing`] strings.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use x25519_dalek::{PublicKey as XPublic, StaticSecret};
use zeroize::{Zeroize, Zeroizing};

use super::AuthError;

fn from_hex32(what: &str, s: &str) -> Result<Zeroizing<[u8; 32]>, AuthError> {
    let mut out = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(s.trim(), out.as_mut())
        .map_err(|e| AuthError::InvalidKey(format!("{what}: expected 64 hex characters: {e}")))?;
    Ok(out)
}

fn from_base64_32(what: &str, s: &str) -> Result<Zeroizing<[u8; 32]>, AuthError> {
    let v = Zeroizing::new(
        STANDARD
            .decode(s.trim().as_bytes())
            .map_err(|e| AuthError::InvalidKey(format!("{what}: invalid base64: {e}")))?,
    );
    let arr: [u8; 32] = v.as_slice().try_into().map_err(|_| {
        AuthError::InvalidKey(format!("{what}: expected 32 bytes, got {}", v.len()))
    })?;
    Ok(Zeroizing::new(arr))
}

/// A client's long-term Ed25519 identity key, built from a 32-byte seed (RFC 8032's secret key).
#[derive(Clone)]
pub struct IdentityKey(SigningKey);

impl IdentityKey {
    /// The key whose RFC 8032 secret is `seed`. The caller draws the seed from a CSPRNG.
    #[must_use]
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// The 32-byte seed.
    #[must_use]
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The seed as 64 lower-case hex characters.
    #[must_use]
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.seed().as_ref()))
    }

    /// Parses [`IdentityKey::to_hex`]'s form (surrounding whitespace ignored).
    ///
    /// # Errors
    /// [`AuthError::InvalidKey`].
    pub fn from_hex(s: &str) -> Result<Self, AuthError> {
        Ok(Self::from_seed(&*from_hex32("identity key", s)?))
    }

    /// The seed as standard padded base64.
    #[must_use]
    pub fn to_base64(&self) -> Zeroizing<String> {
        Zeroizing::new(STANDARD.encode(self.seed().as_ref()))
    }

    /// Parses [`IdentityKey::to_base64`]'s form.
    ///
    /// # Errors
    /// [`AuthError::InvalidKey`].
    pub fn from_base64(s: &str) -> Result<Self, AuthError> {
        Ok(Self::from_seed(&*from_base64_32("identity key", s)?))
    }

    /// The public key.
    #[must_use]
    pub fn public(&self) -> IdentityPublicKey {
        IdentityPublicKey(self.0.verifying_key())
    }

    /// An Ed25519 signature (RFC 8032, deterministic) over `msg`.
    #[must_use]
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        self.0.sign(msg).to_bytes()
    }
}

impl fmt::Debug for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityKey(public {})", self.public().to_hex())
    }
}

/// A client's Ed25519 public key (a valid curve point).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IdentityPublicKey(VerifyingKey);

impl IdentityPublicKey {
    /// Checks that `bytes` encode a curve point.
    ///
    /// # Errors
    /// [`AuthError::InvalidKey`].
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, AuthError> {
        VerifyingKey::from_bytes(bytes)
            .map(Self)
            .map_err(|e| AuthError::InvalidKey(format!("Ed25519 public key: {e}")))
    }

    /// The 32 bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// 64 lower-case hex characters.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }

    /// Parses 64 hex characters.
    ///
    /// # Errors
    /// [`AuthError::InvalidKey`].
    pub fn from_hex(s: &str) -> Result<Self, AuthError> {
        Self::from_bytes(&*from_hex32("Ed25519 public key", s)?)
    }

    /// Standard padded base64.
    #[must_use]
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.to_bytes())
    }

    /// Parses standard base64.
    ///
    /// # Errors
    /// [`AuthError::InvalidKey`].
    pub fn from_base64(s: &str) -> Result<Self, AuthError> {
        Self::from_bytes(&*from_base64_32("Ed25519 public key", s)?)
    }

    /// Strict Ed25519 verification (no malleable signatures, no small-order keys).
    ///
    /// # Errors
    /// [`AuthError::BadSignature`].
    pub fn verify(&self, msg: &[u8], signature: &[u8; 64]) -> Result<(), AuthError> {
        self.0
            .verify_strict(msg, &Signature::from_bytes(signature))
            .map_err(|_| AuthError::BadSignature)
    }
}

impl fmt::Debug for IdentityPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityPublicKey({})", self.to_hex())
    }
}

/// The cluster's long-term X25519 secret (see [`super::cluster_dh_secret`]).
#[derive(Clone)]
pub struct ClusterSecret(pub(super) StaticSecret);

impl ClusterSecret {
    /// The secret from its 32 bytes (what [`ClusterSecret::to_bytes`] gives): how a verifier that
    /// is not a node (an edge verifier) gets the key without the cluster cookie.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(StaticSecret::from(bytes))
    }

    /// Parses the secret from 64 hex characters.
    ///
    /// # Errors
    /// [`AuthError::InvalidKey`].
    pub fn from_hex(s: &str) -> Result<Self, AuthError> {
        Ok(Self::from_bytes(*from_hex32("cluster secret", s)?))
    }

    /// The secret's 32 bytes: a secret that lets its holder derive every window key.
    #[must_use]
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public key published at `GET /v1/cluster-key`.
    #[must_use]
    pub fn public(&self) -> ClusterPublicKey {
        ClusterPublicKey(XPublic::from(&self.0).to_bytes())
    }
}

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClusterSecret(public {})", self.public().to_hex())
    }
}

macro_rules! x_public {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// 64 lower-case hex characters.
            #[must_use]
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parses 64 hex characters.
            ///
            /// # Errors
            /// [`AuthError::InvalidKey`].
            pub fn from_hex(s: &str) -> Result<Self, AuthError> {
                Ok(Self(*from_hex32($what, s)?))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.to_hex())
            }
        }
    };
}

x_public!(
    /// The cluster's X25519 public key.
    ClusterPublicKey, "cluster public key"
);
x_public!(
    /// A client's per-window X25519 public key, committed to the registry with the window.
    WindowPublicKey, "window public key"
);

/// A client's per-window X25519 secret, from a 32-byte seed the caller draws from a CSPRNG. Use a fresh
/// seed for every window.
#[derive(Clone)]
pub struct WindowSecret(pub(super) StaticSecret);

impl WindowSecret {
    /// The secret whose X25519 scalar (before clamping) is `seed`.
    #[must_use]
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(StaticSecret::from(*seed))
    }

    /// The public key sent in the open-window request.
    #[must_use]
    pub fn public(&self) -> WindowPublicKey {
        WindowPublicKey(XPublic::from(&self.0).to_bytes())
    }
}

impl fmt::Debug for WindowSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WindowSecret(public {})", self.public().to_hex())
    }
}

/// A trust window's 32-byte HMAC-SHA256 key. Zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct WindowKey(pub(super) [u8; 32]);

impl WindowKey {
    /// Wraps raw key bytes (e.g. read back from a session file).
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 64 lower-case hex characters, for a session file.
    #[must_use]
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0))
    }

    /// Parses [`WindowKey::to_hex`]'s form.
    ///
    /// # Errors
    /// [`AuthError::InvalidKey`].
    pub fn from_hex(s: &str) -> Result<Self, AuthError> {
        Ok(Self(*from_hex32("window key", s)?))
    }
}

impl Drop for WindowKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for WindowKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WindowKey(<redacted>)")
    }
}
