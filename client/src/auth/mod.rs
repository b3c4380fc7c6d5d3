//! Authentication, pure: no clock (callers pass milliseconds since the Unix epoch), no randomness
//! (callers pass 32-byte seeds), no I/O. It builds for `wasm32-unknown-unknown`.
//!
//! * [`IdentityKey`]: a client's long-term Ed25519 key; it signs the opening of a trust window.
//! * [`ClusterSecret`]: the cluster's long-term X25519 key, derived from the cluster cookie.
//! * [`WindowSecret`] + [`ClusterPublicKey`] (client side) or [`ClusterSecret`] + the client's window
//!   public key (node side) give the same [`WindowKey`]: no secret travels or lands in the Raft log.
//! * [`sign_request`] / [`verify_request`]: HMAC-SHA256 over a canonical request (scheme v2:
//!   method, path and query, the [`COVERED_HEADERS`], ids, timestamp and body hash).
//!
//! Byte-level specification and test vectors: `docs/api.md`.

mod error;
mod keys;
mod request;
mod window;

pub use error::AuthError;
pub use keys::{
    ClusterPublicKey, ClusterSecret, IdentityKey, IdentityPublicKey, WindowKey, WindowPublicKey,
    WindowSecret,
};
pub use request::{
    COVERED_HEADERS, CoveredHeaders, MAX_COVERED_VALUE_LEN, SignedHeaders, body_sha256_hex,
    canonical_request, check_timestamp, sign_request, verify_request,
};
pub use window::{
    OpenWindow, check_window_expiry, cluster_dh_secret, derive_window_key_client,
    derive_window_key_cluster, verify_open_window,
};

/// The default allowed difference between a request's timestamp and the verifier's clock: 300 s.
pub const DEFAULT_SKEW_MS: u64 = 300_000;

/// First line of the canonical request (domain separation and version).
pub const REQUEST_DOMAIN: &str = "verisim-request-v2";
/// The scheme tag that prefixes the signature header's value (`v2=<hex>`): a request signed under
/// another scheme is refused as such (`unsupported_scheme`), not as a bad signature.
pub const SCHEME_TAG: &str = "v2";
/// First line of the window-opening bytes the identity key signs.
pub const OPEN_WINDOW_DOMAIN: &str = "verisim-open-window-v1";
/// HKDF `info` of the cluster's X25519 secret.
pub const CLUSTER_DH_INFO: &str = "verisim cluster dh key v1";
/// HKDF `info` of a window key.
pub const WINDOW_KEY_INFO: &str = "verisim window key v1";

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;
