//! Checking a signed client request against the trust windows in the local registry replica.
//!
//! The signing scheme itself (canonical request, HMAC, window key agreement) lives in
//! `verisim-client` so that clients and nodes share one implementation; this module adds what only a
//! node knows: the registered clients and open windows, the cluster's X25519 secret, the clock.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::HeaderMap;
use verisim_client::auth::{
    self, AuthError, ClusterPublicKey, ClusterSecret, CoveredHeaders, SignedHeaders, WindowKey,
    WindowPublicKey,
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
/// request (possibly re-signed later) gives the same fingerprint. The covered headers are part of
/// it (`If-Match: 3` and `If-Match: 5` are different requests under one request id).
pub fn fingerprint(
    method: &str,
    path_and_query: &str,
    covered: &CoveredHeaders<'_>,
    body: &[u8],
) -> ContentHash {
    let mut h = blake3::Hasher::new_derive_key("verisim request fingerprint v2");
    h.update(method.as_bytes())
        .update(&[0])
        .update(path_and_query.as_bytes())
        .update(&[0]);
    for value in covered.values() {
        // 0: absent; 1, then the bytes and a 0: present (values hold no 0 byte).
        match value {
            None => h.update(&[0]),
            Some(v) => h.update(&[1]).update(v.as_bytes()).update(&[0]),
        };
    }
    h.update(blake3::hash(body).as_bytes());
    ContentHash(*h.finalize().as_bytes())
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

    /// Checks a signed request (scheme v2), in this order: the `X-Verisim-*` and covered headers
    /// parse, the timestamp is within the skew of `now_ms`, the window exists and belongs to the
    /// named client, the MAC verifies; only then whether the client is revoked or the window
    /// expired (those answers go only to someone holding the window key), and whether the request
    /// id was used before.
    ///
    /// # Errors
    /// The refusal, whose [`AuthError::code`] is the API error code. An unknown client or window is
    /// [`AuthError::UnknownClient`] / [`AuthError::UnknownWindow`] (the proxy catches up with the
    /// quorum on those), answered like [`AuthError::BadSignature`].
    pub fn verify(
        &self,
        registry: &RegistryState,
        http_headers: &HeaderMap,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        now_ms: u64,
    ) -> Result<Verified, AuthError> {
        let headers = SignedHeaders::parse(|name| http_headers.get(name).map(|v| v.as_bytes()))?;
        let covered = CoveredHeaders::from_request(|name| {
            http_headers.get_all(name).into_iter().map(|v| v.as_bytes())
        })?;
        let request = RequestId::new(headers.request_id.as_str()).map_err(|e| {
            AuthError::MalformedHeader {
                header: verisim_client::wire::headers::REQUEST_ID,
                reason: e.to_string(),
            }
        })?;
        // Cheap and independent of the ids: refused before any registry lookup.
        auth::check_timestamp(headers.timestamp_ms, now_ms, self.skew_ms)?;
        let client =
            ClientId::new(headers.client.as_str()).map_err(|_| AuthError::UnknownClient)?;
        let window =
            WindowId::new(headers.window.as_str()).map_err(|_| AuthError::UnknownWindow)?;
        let w = registry
            .window(&window)
            .filter(|w| w.client == client)
            .ok_or(AuthError::UnknownWindow)?;
        let key = self.window_key(&window, w.client_dh.0)?;
        auth::verify_request(
            &key,
            &headers,
            method,
            path_and_query,
            &covered,
            body,
            now_ms,
            self.skew_ms,
        )?;
        // Authenticated from here on.
        match registry.client(&client) {
            None => return Err(AuthError::UnknownClient),
            Some(c) if c.revoked => return Err(AuthError::ClientRevoked),
            Some(_) => {}
        }
        auth::check_window_expiry(w.expires_at_ms, now_ms)?;
        let fingerprint = fingerprint(method, path_and_query, &covered, body);
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
