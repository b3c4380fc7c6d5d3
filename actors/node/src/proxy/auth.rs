//! Checking a signed client request against the trust windows in the local registry replica.
//!
//! The decision sequence itself (headers, skew, window and owner, MAC, revocation, expiry,
//! fingerprint and replay) is `verisim_client::verify`, pure and also built for wasm32 so that an
//! edge can run the very same code; this module is the node's adapter: it shows the verifier the
//! registry replica ([`TrustView`]) and axum's headers ([`HeaderLookup`]), and maps the result to
//! the registry's types.

use axum::http::HeaderMap;
use verisim_client::auth::{AuthError, ClusterPublicKey, CoveredHeaders, WindowPublicKey};
use verisim_client::verify::{
    self, Fingerprint, HeaderLookup, TrustClient, TrustView, TrustWindow, Verifier,
};
use verisim_client::wire::{self, headers::REQUEST_ID};
use verisim_stores::ContentHash;

use crate::registry::{AppliedRequest, ClientId, Origin, RegistryState, RequestId, WindowId};

/// A request that passed authentication.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Who signed it, in which window, under which request id, and what it asked.
    pub origin: Origin,
    /// The request id was already applied with this fingerprint: a retry, to be answered with the
    /// remembered outcome.
    pub retry_of: Option<AppliedRequest>,
}

/// The node's side of the trust-window scheme: [`Verifier`] over the registry replica.
#[derive(Debug)]
pub struct Authenticator {
    verifier: Verifier,
}

/// A hash of what a request asks, without its timestamp and signature (`verify::fingerprint`), as
/// the registry stores it.
pub fn fingerprint(
    method: &str,
    path_and_query: &str,
    covered: &CoveredHeaders<'_>,
    body: &[u8],
) -> ContentHash {
    ContentHash(verify::fingerprint(method, path_and_query, covered, body).0)
}

/// The registry replica as the verifier's trust state. The wire ids and the registry's have the
/// same rules, so a conversion never fails for a parsed header; if one did, the id is unknown.
struct RegistryView<'a>(&'a RegistryState);

impl TrustView for RegistryView<'_> {
    type Applied = AppliedRequest;

    fn window(&self, window: &wire::WindowId) -> Option<TrustWindow> {
        let w = self.0.window(&WindowId::new(window.as_str()).ok()?)?;
        Some(TrustWindow {
            client: wire::ClientId::new(w.client.as_str()).ok()?,
            client_dh: WindowPublicKey(w.client_dh.0),
            expires_at_ms: w.expires_at_ms,
        })
    }

    fn client(&self, client: &wire::ClientId) -> Option<TrustClient> {
        let c = self.0.client(&ClientId::new(client.as_str()).ok()?)?;
        Some(TrustClient { revoked: c.revoked })
    }

    fn applied(
        &self,
        client: &wire::ClientId,
        request: &wire::RequestId,
    ) -> Option<(Fingerprint, AppliedRequest)> {
        let applied = self.0.applied_request(
            &ClientId::new(client.as_str()).ok()?,
            &RequestId::new(request.as_str()).ok()?,
        )?;
        Some((Fingerprint(applied.fingerprint.0), applied.clone()))
    }
}

/// axum's headers as the verifier reads them.
struct HttpHeaders<'a>(&'a HeaderMap);

impl HeaderLookup for HttpHeaders<'_> {
    fn get_all<'s>(&'s self, name: &str) -> impl Iterator<Item = &'s [u8]> + 's {
        self.0.get_all(name).into_iter().map(|v| v.as_bytes())
    }
}

impl Authenticator {
    /// The cluster's X25519 key pair is derived from the cluster cookie, so every node has it.
    ///
    /// # Errors
    /// An empty cookie.
    pub fn new(cookie: &[u8], skew_ms: u64) -> Result<Self, AuthError> {
        Ok(Self {
            verifier: Verifier::from_key_material(cookie, skew_ms)?,
        })
    }

    /// The key clients agree window keys against (`GET /v1/cluster-key`).
    pub fn cluster_public(&self) -> ClusterPublicKey {
        self.verifier.cluster_public()
    }

    /// The allowed clock difference for signed requests and window openings.
    pub fn skew_ms(&self) -> u64 {
        self.verifier.skew_ms()
    }

    /// Checks a signed request (scheme v2) with [`Verifier::verify`], in its order: the
    /// `X-Verisim-*` and covered headers parse, the timestamp is within the skew of `now_ms`, the
    /// window exists and belongs to the named client, the MAC verifies; only then whether the
    /// client is revoked or the window expired (those answers go only to someone holding the window
    /// key), and whether the request id was used before.
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
        let v = self.verifier.verify(
            &RegistryView(registry),
            &HttpHeaders(http_headers),
            method,
            path_and_query,
            body,
            now_ms,
        )?;
        // Same alphabets (see `RegistryView`): these cannot fail for ids that parsed.
        let client = ClientId::new(v.client.as_str()).map_err(|_| AuthError::UnknownClient)?;
        let window = WindowId::new(v.window.as_str()).map_err(|_| AuthError::UnknownWindow)?;
        let request =
            RequestId::new(v.request_id.as_str()).map_err(|e| AuthError::MalformedHeader {
                header: REQUEST_ID,
                reason: e.to_string(),
            })?;
        Ok(Verified {
            origin: Origin {
                client,
                window,
                request,
                fingerprint: ContentHash(v.fingerprint.0),
            },
            retry_of: v.retry_of,
        })
    }
}

#[cfg(test)]
#[path = "auth_tests.rs"]
mod tests;
