//! The check of a signed request against a trust state: the decision sequence every node's proxy
//! runs, pure (no clock, no I/O, no lock held across a call out), so that it builds for
//! `wasm32-unknown-unknown` and can run where the node is not (an edge verifier, docs/security.md).
//!
//! The caller supplies what only it knows through two small traits: [`TrustView`] (the windows,
//! clients and applied request ids of its replica of the registry) and [`HeaderLookup`] (the
//! received headers). [`Verifier::verify`] checks, in this order:
//!
//! 1. the `X-Verisim-*` headers and the covered headers parse;
//! 2. the timestamp is within the skew of `now_ms` (before any lookup: cheap, and a stale request
//!    must not make a proxy catch up with the quorum over an id it does not know);
//! 3. the window exists and belongs to the named client (else `UnknownWindow`);
//! 4. the MAC verifies under the window key (derived from the cluster secret, cached);
//! 5. only then, since the caller is proven to hold the window key: the client is known and not
//!    revoked, the window has not expired;
//! 6. the request's [`fingerprint`]: a request id applied before with another fingerprint is a
//!    replay; with the same one, a retry (its remembered record is returned).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::auth::{
    self, AuthError, ClusterPublicKey, ClusterSecret, CoveredHeaders, SignedHeaders, WindowKey,
    WindowPublicKey,
};
use crate::wire::{ClientId, RequestId, WindowId};

/// Derived window keys kept in memory by default; the cache is emptied when it grows past this (an
/// X25519 agreement costs tens of microseconds, so a miss is cheap).
pub const DEFAULT_KEY_CACHE_MAX: usize = 16_384;

/// The blake3 derive-key context of [`fingerprint`]. Fingerprints are committed in the Raft log:
/// changing one byte of this makes every retry after an upgrade look like a replay.
pub const FINGERPRINT_CONTEXT: &str = "verisim request fingerprint v2";

/// A hash of what a request asks (see [`fingerprint`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// 64 lower-case hex characters.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters.
    ///
    /// # Errors
    /// [`hex::FromHexError`] for anything else.
    pub fn from_hex(s: &str) -> Result<Self, hex::FromHexError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)?;
        Ok(Self(out))
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

/// A hash of what a request asks, without its timestamp and signature: a client retrying the same
/// request (possibly re-signed later) gives the same fingerprint. The covered headers are part of
/// it (`If-Match: 3` and `If-Match: 5` are different requests under one request id).
#[must_use]
pub fn fingerprint(
    method: &str,
    path_and_query: &str,
    covered: &CoveredHeaders<'_>,
    body: &[u8],
) -> Fingerprint {
    let mut h = blake3::Hasher::new_derive_key(FINGERPRINT_CONTEXT);
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
    Fingerprint(*h.finalize().as_bytes())
}

/// An open (or recently expired) trust window, as the verifier's trust state holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustWindow {
    /// The client that opened it.
    pub client: ClientId,
    /// The client's per-window X25519 public key (committed when the window opened).
    pub client_dh: WindowPublicKey,
    /// When it expires (milliseconds since the Unix epoch).
    pub expires_at_ms: u64,
}

/// A registered client, as the verifier's trust state holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustClient {
    /// Its key was revoked.
    pub revoked: bool,
}

/// The trust state a request is checked against: a node's registry replica, or an edge's copy of
/// it. Lookups only; the verifier never writes.
pub trait TrustView {
    /// What the state remembers of an applied request besides its fingerprint (a node: the
    /// outcome to answer a retry with), handed back in [`VerifiedRequest::retry_of`].
    type Applied;

    /// The window `window`, whoever owns it; `None` if unknown.
    fn window(&self, window: &WindowId) -> Option<TrustWindow>;

    /// The client `client`; `None` if unknown.
    fn client(&self, client: &ClientId) -> Option<TrustClient>;

    /// The request `request` of `client` if it was applied (and is still remembered): the
    /// fingerprint it was applied with, and the caller's record of it.
    fn applied(
        &self,
        client: &ClientId,
        request: &RequestId,
    ) -> Option<(Fingerprint, Self::Applied)>;
}

/// The received request's headers.
pub trait HeaderLookup {
    /// Every value of the header `name` (given in lower case), in the order received.
    fn get_all<'s>(&'s self, name: &str) -> impl Iterator<Item = &'s [u8]> + 's;

    /// The first value of `name`.
    fn get(&self, name: &str) -> Option<&[u8]> {
        self.get_all(name).next()
    }
}

/// `(name, value)` pairs (names compared ASCII case-insensitively), for callers without a header
/// map of their own (the JS binding, tests).
impl HeaderLookup for [(String, String)] {
    fn get_all<'s>(&'s self, name: &str) -> impl Iterator<Item = &'s [u8]> + 's {
        let name = name.to_ascii_lowercase();
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(&name))
            .map(|(_, v)| v.as_bytes())
    }
}

/// A request that passed every check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedRequest<A> {
    /// Who signed it.
    pub client: ClientId,
    /// In which window.
    pub window: WindowId,
    /// Under which request id.
    pub request_id: RequestId,
    /// Its signed timestamp.
    pub timestamp_ms: u64,
    /// What it asks ([`fingerprint`]).
    pub fingerprint: Fingerprint,
    /// The request id was already applied with this fingerprint: a retry, to be answered with the
    /// remembered record.
    pub retry_of: Option<A>,
}

/// The verifying side of the trust-window scheme: the cluster's X25519 secret, the allowed clock
/// skew and a bounded cache of derived window keys. Shareable across threads (`Sync`).
pub struct Verifier {
    secret: ClusterSecret,
    public: ClusterPublicKey,
    skew_ms: u64,
    cache_max: usize,
    keys: Mutex<HashMap<(WindowId, [u8; 32]), WindowKey>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("public", &self.public)
            .field("skew_ms", &self.skew_ms)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// A verifier holding the cluster's X25519 secret.
    #[must_use]
    pub fn new(secret: ClusterSecret, skew_ms: u64) -> Self {
        Self {
            public: secret.public(),
            secret,
            skew_ms,
            cache_max: DEFAULT_KEY_CACHE_MAX,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// A verifier whose secret is derived from `ikm` by [`auth::cluster_dh_secret`], as every
    /// node derives it (a node's `ikm` is the cluster layer's Argon2id-stretched cookie).
    ///
    /// # Errors
    /// [`AuthError::InvalidKey`] for an empty `ikm`.
    pub fn from_key_material(ikm: &[u8], skew_ms: u64) -> Result<Self, AuthError> {
        Ok(Self::new(auth::cluster_dh_secret(ikm)?, skew_ms))
    }

    /// At most `max` derived window keys kept (0: none).
    #[must_use]
    pub fn with_cache_capacity(mut self, max: usize) -> Self {
        self.cache_max = max;
        self
    }

    /// The key clients agree window keys against (`GET /v1/cluster-key`).
    #[must_use]
    pub fn cluster_public(&self) -> ClusterPublicKey {
        self.public
    }

    /// The allowed clock difference for signed requests.
    #[must_use]
    pub fn skew_ms(&self) -> u64 {
        self.skew_ms
    }

    /// Window keys in the cache.
    #[must_use]
    pub fn cached_keys(&self) -> usize {
        self.keys.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// The window key, from the cache or derived. A poisoned lock only costs the cache.
    fn window_key(&self, window: &WindowId, dh: &WindowPublicKey) -> Result<WindowKey, AuthError> {
        let cache_key = (window.clone(), dh.0);
        if let Ok(cache) = self.keys.lock()
            && let Some(k) = cache.get(&cache_key)
        {
            return Ok(k.clone());
        }
        // Derived outside the lock: other threads keep verifying meanwhile.
        let key = auth::derive_window_key_cluster(&self.secret, dh, window)?;
        if self.cache_max > 0
            && let Ok(mut cache) = self.keys.lock()
        {
            if cache.len() >= self.cache_max {
                cache.clear();
            }
            cache.insert(cache_key, key.clone());
        }
        Ok(key)
    }

    /// Checks a signed request (scheme v2) in the order of the module documentation.
    ///
    /// # Errors
    /// The first refusal, whose [`AuthError::code`] is the API error code. An unknown client or
    /// window is [`AuthError::UnknownClient`] / [`AuthError::UnknownWindow`] (a node's proxy
    /// catches up with the quorum on those), answered like [`AuthError::BadSignature`].
    pub fn verify<V, H>(
        &self,
        view: &V,
        headers: &H,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        now_ms: u64,
    ) -> Result<VerifiedRequest<V::Applied>, AuthError>
    where
        V: TrustView + ?Sized,
        H: HeaderLookup + ?Sized,
    {
        let signed = SignedHeaders::parse(|name| headers.get(name))?;
        let covered = CoveredHeaders::from_request(|name| headers.get_all(name))?;
        // Cheap and independent of the ids: refused before any lookup.
        auth::check_timestamp(signed.timestamp_ms, now_ms, self.skew_ms)?;
        let window = view
            .window(&signed.window)
            .filter(|w| w.client == signed.client)
            .ok_or(AuthError::UnknownWindow)?;
        let key = self.window_key(&signed.window, &window.client_dh)?;
        auth::verify_request(
            &key,
            &signed,
            method,
            path_and_query,
            &covered,
            body,
            now_ms,
            self.skew_ms,
        )?;
        // Authenticated from here on: these answers go only to the window key's holder.
        match view.client(&signed.client) {
            None => return Err(AuthError::UnknownClient),
            Some(c) if c.revoked => return Err(AuthError::ClientRevoked),
            Some(_) => {}
        }
        auth::check_window_expiry(window.expires_at_ms, now_ms)?;
        let fingerprint = fingerprint(method, path_and_query, &covered, body);
        let retry_of = match view.applied(&signed.client, &signed.request_id) {
            Some((previous, _)) if previous != fingerprint => {
                return Err(AuthError::ReplayedRequest);
            }
            Some((_, record)) => Some(record),
            None => None,
        };
        Ok(VerifiedRequest {
            client: signed.client,
            window: signed.window,
            request_id: signed.request_id,
            timestamp_ms: signed.timestamp_ms,
            fingerprint,
            retry_of,
        })
    }
}

#[cfg(test)]
mod tests;
