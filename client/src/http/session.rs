//! An open trust window, and the clock and randomness the pure `auth` module leaves to callers.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::auth::WindowKey;
use crate::wire::{ClientId, RequestId, WindowId};

/// An open trust window: what signed requests need.
#[derive(Clone, Debug)]
pub struct Session {
    /// The client.
    pub client: ClientId,
    /// The window.
    pub window: WindowId,
    /// The window's HMAC key (redacted in `Debug`).
    pub key: WindowKey,
    /// When the window expires (cluster time, ms since the Unix epoch).
    pub expires_at_ms: u64,
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
#[must_use]
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `prefix-` followed by 24 random hex characters (96 bits): a fresh request or window id.
#[must_use]
pub fn random_id(prefix: &str) -> String {
    let bytes: [u8; 12] = rand::random();
    format!("{prefix}-{}", hex::encode(bytes))
}

/// A fresh random request id (`r-` + 24 hex characters). A free function, not
/// `RequestId::random()`: the id type is `verisim_vocab`'s, which has no randomness of its own.
#[must_use]
pub fn random_request_id() -> RequestId {
    match RequestId::new(random_id("r")) {
        Ok(id) => id,
        Err(e) => unreachable!("a generated request id is valid: {e}"),
    }
}
