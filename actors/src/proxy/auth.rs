//! Checking a signed client request against the trust windows in the local registry replica.
//!
//! The signing scheme itself (canonical request, HMAC, window key agreement) lives in
//! `verisim-client` so that clients and nodes share one implementation; this module adds what only a
//! node knows: the registered clients and open windows, the cluster's X25519 secret, the clock.

use std::collections::HashMap;
use std::sync::Mutex;

use verisim_client::auth::{
    self, AuthError, ClusterPublicKey, ClusterSecret, SignedHeaders, WindowKey, WindowPublicKey,
};
use verisim_client::wire::WindowId as WireWindowId;
use verisim_stores::ContentHash;

use crate::registry::{AppliedRequest, ClientId, Origin, RegistryState, RequestId, WindowId};

/// Derived window keys kept in memory; the cache is emptied when it grows past this (an X25519
/// agreement costs tens of microseconds, so a miss is cheap).
const KEY_CACHE_MAX: usize = 16_384;

/// A request that passed authentication.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Who signed it, in which window, under which request id, and what it asked.
    pub origin: Origin,
    /// The request id was already applied with this fingerprint: a retry, to be answered with the
    /// remembered outcome.
    pub retry_of: Option<AppliedRequest>,
}

/// The node's side of the trust-window scheme.
pub struct Authenticator {
    secret: ClusterSecret,
    public: ClusterPublicKey,
    skew_ms: u64,
    keys: Mutex<HashMap<(WindowId, [u8; 32]), WindowKey>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("public", &self.public)
            .field("skew_ms", &self.skew_ms)
            .finish_non_exhaustive()
    }
}

/// A hash of what a request asks, without its timestamp and signature: a client retrying the same
/// request (possibly re-signed later) gives the same fingerprint.
pub fn fingerprint(method: &str, path_and_query: &str, body: &[u8]) -> ContentHash {
    let digest = blake3::Hasher::new_derive_key("verisim request fingerprint v1")
        .update(method.as_bytes())
        .update(&[0])
        .update(path_and_query.as_bytes())
        .update(&[0])
        .update(blake3::hash(body).as_bytes())
        .finalize();
    ContentHash(*digest.as_bytes())
}

impl Authenticator {
    /// The cluster's X25519 key pair is derived from the cluster cookie, so every node has it.
    ///
    /// # Errors
    /// An empty cookie.
    pub fn new(cookie: &[u8], skew_ms: u64) -> Result<Self, AuthError> {
        let secret = auth::cluster_dh_secret(cookie)?;
        Ok(Self {
            public: secret.public(),
            secret,
            skew_ms,
            keys: Mutex::new(HashMap::new()),
        })
    }

    /// The key clients agree window keys against (`GET /v1/cluster-key`).
    pub fn cluster_public(&self) -> ClusterPublicKey {
        self.public
    }

    /// The allowed clock difference for signed requests and window openings.
    pub fn skew_ms(&self) -> u64 {
        self.skew_ms
    }

    fn window_key(&self, window: &WindowId, dh: [u8; 32]) -> Result<WindowKey, AuthError> {
        let cache_key = (window.clone(), dh);
        if let Ok(cache) = self.keys.lock()
            && let Some(k) = cache.get(&cache_key)
        {
            return Ok(k.clone());
        }
        let wire_window =
            WireWindowId::new(window.as_str()).map_err(|_| AuthError::UnknownWindow)?;
        let key =
            auth::derive_window_key_cluster(&self.secret, &WindowPublicKey(dh), &wire_window)?;
        if let Ok(mut cache) = self.keys.lock() {
            if cache.len() >= KEY_CACHE_MAX {
                cache.clear();
            }
            cache.insert(cache_key, key.clone());
        }
        Ok(key)
    }

    /// Checks a signed request: headers, client, window (owner and expiry as of `now_ms`),
    /// timestamp skew, then the MAC; and whether its request id was used before.
    ///
    /// # Errors
    /// The refusal, whose [`AuthError::code`] is the API error code.
    pub fn verify<'a>(
        &self,
        registry: &RegistryState,
        header: impl Fn(&str) -> Option<&'a [u8]>,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        now_ms: u64,
    ) -> Result<Verified, AuthError> {
        let headers = SignedHeaders::parse(header)?;
        let client =
            ClientId::new(headers.client.as_str()).map_err(|_| AuthError::UnknownClient)?;
        let window =
            WindowId::new(headers.window.as_str()).map_err(|_| AuthError::UnknownWindow)?;
        let request = RequestId::new(headers.request_id.as_str()).map_err(|e| {
            AuthError::MalformedHeader {
                header: verisim_client::wire::headers::REQUEST_ID,
                reason: e.to_string(),
            }
        })?;
        match registry.client(&client) {
            None => return Err(AuthError::UnknownClient),
            Some(c) if c.revoked => return Err(AuthError::ClientRevoked),
            Some(_) => {}
        }
        let w = registry
            .window(&window)
            .filter(|w| w.client == client)
            .ok_or(AuthError::UnknownWindow)?;
        auth::check_window_expiry(w.expires_at_ms, now_ms)?;
        let key = self.window_key(&window, w.client_dh.0)?;
        auth::verify_request(
            &key,
            &headers,
            method,
            path_and_query,
            body,
            now_ms,
            self.skew_ms,
        )?;
        let fingerprint = fingerprint(method, path_and_query, body);
        let retry_of = match registry.applied_request(&client, &request) {
            Some(prev) if prev.fingerprint != fingerprint => {
                return Err(AuthError::ReplayedRequest);
            }
            other => other.cloned(),
        };
        Ok(Verified {
            origin: Origin {
                client,
                window,
                request,
                fingerprint,
            },
            retry_of,
        })
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
