//! Opening a trust window and agreeing its key.
//!
//! The client signs the opening with its identity key; the window's HMAC key comes from an X25519
//! agreement between the client's per-window secret and the cluster's long-term secret, so each side
//! computes it alone and nothing secret is sent or committed.

use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::PublicKey as XPublic;

use super::keys::{
    ClusterPublicKey, ClusterSecret, IdentityKey, IdentityPublicKey, WindowKey, WindowPublicKey,
    WindowSecret,
};
use super::{AuthError, CLUSTER_DH_INFO, OPEN_WINDOW_DOMAIN, WINDOW_KEY_INFO, check_timestamp};
use crate::wire::{ClientId, Hex, OpenWindowRequest, WindowId};

/// Derives the cluster's long-term X25519 secret from its cookie:
/// `HKDF-SHA256(salt = none, ikm = cookie, info = "verisim cluster dh key v1")`, 32 bytes, used as the
/// X25519 scalar (clamped by X25519 itself).
///
/// # Errors
/// [`AuthError::InvalidKey`] if the cookie is empty.
pub fn cluster_dh_secret(cookie: &[u8]) -> Result<ClusterSecret, AuthError> {
    if cookie.is_empty() {
        return Err(AuthError::InvalidKey("the cluster cookie is empty".into()));
    }
    let mut okm = zeroize::Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(None, cookie)
        .expand(CLUSTER_DH_INFO.as_bytes(), okm.as_mut())
        .map_err(|e| AuthError::InvalidKey(format!("HKDF: {e}")))?;
    Ok(ClusterSecret(x25519_dalek::StaticSecret::from(*okm)))
}

fn window_key(
    shared: &x25519_dalek::SharedSecret,
    window: &WindowId,
) -> Result<WindowKey, AuthError> {
    if !shared.was_contributory() {
        return Err(AuthError::LowOrderKey);
    }
    let mut key = WindowKey([0u8; 32]);
    Hkdf::<Sha256>::new(Some(window.as_str().as_bytes()), shared.as_bytes())
        .expand(WINDOW_KEY_INFO.as_bytes(), &mut key.0)
        .map_err(|e| AuthError::InvalidKey(format!("HKDF: {e}")))?;
    Ok(key)
}

/// The client's side: `HKDF-SHA256(salt = window id, ikm = X25519(window secret, cluster public),
/// info = "verisim window key v1")`.
///
/// # Errors
/// [`AuthError::LowOrderKey`] if the cluster public key is a low-order point.
pub fn derive_window_key_client(
    secret: &WindowSecret,
    cluster: &ClusterPublicKey,
    window: &WindowId,
) -> Result<WindowKey, AuthError> {
    window_key(&secret.0.diffie_hellman(&XPublic::from(cluster.0)), window)
}

/// A node's side: the same key from the cluster secret and the window public key committed in the
/// registry.
///
/// # Errors
/// [`AuthError::LowOrderKey`] if the window public key is a low-order point.
pub fn derive_window_key_cluster(
    cluster: &ClusterSecret,
    client: &WindowPublicKey,
    window: &WindowId,
) -> Result<WindowKey, AuthError> {
    window_key(&cluster.0.diffie_hellman(&XPublic::from(client.0)), window)
}

/// The fields of a window opening, before signing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenWindow {
    /// The cluster the window is for (binds the signature to one cluster).
    pub cluster: ClusterPublicKey,
    /// Who opens it.
    pub client: ClientId,
    /// The chosen window id.
    pub window: WindowId,
    /// The client's per-window X25519 public key.
    pub window_public_key: WindowPublicKey,
    /// Requested lifetime.
    pub ttl_ms: u64,
    /// Signing time.
    pub timestamp_ms: u64,
}

impl OpenWindow {
    /// The bytes the identity key signs: seven lines joined by `\n` (no final newline):
    /// `verisim-open-window-v1`, hex(cluster public key), client, window, hex(window public key),
    /// ttl_ms, timestamp_ms (decimal). No field can contain `\n`, so the encoding is unambiguous.
    #[must_use]
    pub fn signing_bytes(&self) -> Vec<u8> {
        format!(
            "{OPEN_WINDOW_DOMAIN}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.cluster.to_hex(),
            self.client,
            self.window,
            self.window_public_key.to_hex(),
            self.ttl_ms,
            self.timestamp_ms
        )
        .into_bytes()
    }

    /// Signs and builds the `POST /v1/windows` body.
    #[must_use]
    pub fn sign(&self, identity: &IdentityKey) -> OpenWindowRequest {
        OpenWindowRequest {
            client: self.client.clone(),
            window: self.window.clone(),
            client_public_key: Hex(self.window_public_key.0),
            ttl_ms: self.ttl_ms,
            timestamp_ms: self.timestamp_ms,
            signature: Hex(identity.sign(&self.signing_bytes())),
        }
    }
}

/// A node's check of a `POST /v1/windows` body: the timestamp within `skew_ms` of `now_ms`, then the
/// Ed25519 signature under the client's registered key, for this cluster. The caller has looked up
/// `identity` (an unknown client is refused before this, as `bad_signature`; a revoked one after
/// it, so that only the key's holder learns of the revocation).
///
/// # Errors
/// [`AuthError::TimestampSkew`], [`AuthError::BadSignature`].
pub fn verify_open_window(
    req: &OpenWindowRequest,
    identity: &IdentityPublicKey,
    cluster: &ClusterPublicKey,
    now_ms: u64,
    skew_ms: u64,
) -> Result<(), AuthError> {
    check_timestamp(req.timestamp_ms, now_ms, skew_ms)?;
    let fields = OpenWindow {
        cluster: *cluster,
        client: req.client.clone(),
        window: req.window.clone(),
        window_public_key: WindowPublicKey(req.client_public_key.0),
        ttl_ms: req.ttl_ms,
        timestamp_ms: req.timestamp_ms,
    };
    identity.verify(&fields.signing_bytes(), &req.signature.0)
}

/// Refuses a window whose expiry is not after `now_ms`.
///
/// # Errors
/// [`AuthError::ExpiredWindow`].
pub fn check_window_expiry(expires_at_ms: u64, now_ms: u64) -> Result<(), AuthError> {
    if now_ms >= expires_at_ms {
        return Err(AuthError::ExpiredWindow {
            expires_at_ms,
            now_ms,
        });
    }
    Ok(())
}
