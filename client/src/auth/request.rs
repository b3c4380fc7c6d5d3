//! Signing requests inside a trust window: HMAC-SHA256 over a canonical request.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::keys::WindowKey;
use super::{AuthError, REQUEST_DOMAIN};
use crate::wire::headers::{CLIENT, REQUEST_ID, SIGNATURE, TIMESTAMP, WINDOW};
use crate::wire::{ClientId, RequestId, WindowId};

/// Longest path-and-query accepted in a canonical request.
pub const MAX_PATH_LEN: usize = 8192;

/// Lower-case hex SHA-256 of a body (of the empty string when there is none).
#[must_use]
pub fn body_sha256_hex(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

fn check_method(method: &str) -> Result<(), AuthError> {
    if method.is_empty() || method.len() > 16 || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(AuthError::Unsignable(format!(
            "method {method:?} must be 1 to 16 upper-case ASCII letters"
        )));
    }
    Ok(())
}

fn check_path(path: &str) -> Result<(), AuthError> {
    if !path.starts_with('/') || path.len() > MAX_PATH_LEN {
        return Err(AuthError::Unsignable(format!(
            "path must start with '/' and be at most {MAX_PATH_LEN} bytes"
        )));
    }
    if let Some(b) = path.bytes().find(|b| !(0x21..=0x7e).contains(b)) {
        return Err(AuthError::Unsignable(format!(
            "path contains byte 0x{b:02x}; percent-encode everything outside printable ASCII"
        )));
    }
    Ok(())
}

/// The canonical request: eight lines joined by `\n` (no final newline):
/// `verisim-request-v1`, method (upper case), path and query exactly as in the request line, client,
/// window, timestamp_ms (decimal), request id, lower-case hex SHA-256 of the body. No field can
/// contain `\n` (methods are letters, paths printable ASCII without space, ids a restricted alphabet),
/// so distinct requests have distinct encodings.
///
/// # Errors
/// [`AuthError::Unsignable`] if the method or path break those rules.
pub fn canonical_request(
    method: &str,
    path_and_query: &str,
    client: &ClientId,
    window: &WindowId,
    timestamp_ms: u64,
    request_id: &RequestId,
    body: &[u8],
) -> Result<Vec<u8>, AuthError> {
    check_method(method)?;
    check_path(path_and_query)?;
    Ok(format!(
        "{REQUEST_DOMAIN}\n{method}\n{path_and_query}\n{client}\n{window}\n{timestamp_ms}\n{request_id}\n{}",
        body_sha256_hex(body)
    )
    .into_bytes())
}

fn mac(key: &WindowKey) -> Hmac<Sha256> {
    // HMAC takes keys of any length; a 32-byte key cannot be refused.
    match <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes()) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

/// The authentication headers of one signed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeaders {
    /// `X-Verisim-Client`.
    pub client: ClientId,
    /// `X-Verisim-Window`.
    pub window: WindowId,
    /// `X-Verisim-Timestamp`: decimal milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// `X-Verisim-Request-Id`.
    pub request_id: RequestId,
    /// `X-Verisim-Signature`: lower-case hex HMAC-SHA256 of the canonical request.
    pub signature: [u8; 32],
}

impl SignedHeaders {
    /// `(name, value)` pairs to send (lower-case names).
    #[must_use]
    pub fn to_pairs(&self) -> [(&'static str, String); 5] {
        [
            (CLIENT, self.client.to_string()),
            (WINDOW, self.window.to_string()),
            (TIMESTAMP, self.timestamp_ms.to_string()),
            (REQUEST_ID, self.request_id.to_string()),
            (SIGNATURE, hex::encode(self.signature)),
        ]
    }

    /// Parses the five headers; `get` returns a header's raw value by lower-case name.
    ///
    /// # Errors
    /// [`AuthError::MissingHeader`] for the first absent header, [`AuthError::MalformedHeader`] for
    /// one that is not ASCII, not a valid id, not a decimal timestamp or not 64 hex characters.
    pub fn parse<'a>(get: impl Fn(&str) -> Option<&'a [u8]>) -> Result<Self, AuthError> {
        let text = |name: &'static str| -> Result<&'a str, AuthError> {
            let raw = get(name).ok_or(AuthError::MissingHeader(name))?;
            std::str::from_utf8(raw).map_err(|_| AuthError::MalformedHeader {
                header: name,
                reason: "not UTF-8".into(),
            })
        };
        let bad =
            |header: &'static str, reason: String| AuthError::MalformedHeader { header, reason };
        let client = ClientId::new(text(CLIENT)?).map_err(|e| bad(CLIENT, e.to_string()))?;
        let window = WindowId::new(text(WINDOW)?).map_err(|e| bad(WINDOW, e.to_string()))?;
        let ts = text(TIMESTAMP)?;
        // Decimal digits only: `+5` or ` 5` would parse in Rust but sign differently.
        if ts.is_empty() || ts.len() > 20 || !ts.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(TIMESTAMP, "must be decimal milliseconds".into()));
        }
        let timestamp_ms = ts
            .parse::<u64>()
            .map_err(|e| bad(TIMESTAMP, e.to_string()))?;
        let request_id =
            RequestId::new(text(REQUEST_ID)?).map_err(|e| bad(REQUEST_ID, e.to_string()))?;
        let mut signature = [0u8; 32];
        hex::decode_to_slice(text(SIGNATURE)?, &mut signature)
            .map_err(|e| bad(SIGNATURE, format!("expected 64 hex characters: {e}")))?;
        Ok(Self {
            client,
            window,
            timestamp_ms,
            request_id,
            signature,
        })
    }
}

/// Signs a request: the headers to send with it.
///
/// # Errors
/// [`AuthError::Unsignable`] if the method or path cannot be canonicalised.
#[allow(clippy::too_many_arguments)]
pub fn sign_request(
    key: &WindowKey,
    client: &ClientId,
    window: &WindowId,
    method: &str,
    path_and_query: &str,
    timestamp_ms: u64,
    request_id: &RequestId,
    body: &[u8],
) -> Result<SignedHeaders, AuthError> {
    let canonical = canonical_request(
        method,
        path_and_query,
        client,
        window,
        timestamp_ms,
        request_id,
        body,
    )?;
    let mut m = mac(key);
    m.update(&canonical);
    Ok(SignedHeaders {
        client: client.clone(),
        window: window.clone(),
        timestamp_ms,
        request_id: request_id.clone(),
        signature: m.finalize().into_bytes().into(),
    })
}

/// Refuses a timestamp more than `skew_ms` away from `now_ms` (either direction).
///
/// # Errors
/// [`AuthError::TimestampSkew`].
pub fn check_timestamp(timestamp_ms: u64, now_ms: u64, skew_ms: u64) -> Result<(), AuthError> {
    if timestamp_ms.abs_diff(now_ms) > skew_ms {
        return Err(AuthError::TimestampSkew {
            timestamp_ms,
            now_ms,
            skew_ms,
        });
    }
    Ok(())
}

/// A node's check of a signed request, after it found the window (`key`) for `headers.window` and
/// checked that the window belongs to `headers.client` and has not expired: the timestamp within
/// `skew_ms` of `now_ms`, then the MAC, compared in constant time.
///
/// # Errors
/// [`AuthError::TimestampSkew`]; [`AuthError::BadSignature`] (also for a method or path that cannot
/// be canonicalised: the client could not have signed it).
pub fn verify_request(
    key: &WindowKey,
    headers: &SignedHeaders,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now_ms: u64,
    skew_ms: u64,
) -> Result<(), AuthError> {
    check_timestamp(headers.timestamp_ms, now_ms, skew_ms)?;
    let canonical = canonical_request(
        method,
        path_and_query,
        &headers.client,
        &headers.window,
        headers.timestamp_ms,
        &headers.request_id,
        body,
    )
    .map_err(|_| AuthError::BadSignature)?;
    let mut m = mac(key);
    m.update(&canonical);
    // `verify_slice` compares in constant time.
    m.verify_slice(&headers.signature)
        .map_err(|_| AuthError::BadSignature)
}

/// Every check of a signed request in the documented order, for a proxy: parse the headers, check
/// the timestamp, let `window` look the window up (it must refuse an unknown window, one of another
/// client than `headers.client`, a revoked client or an expired window with the matching
/// [`AuthError`], and return the window key, derived with
/// [`super::derive_window_key_cluster`] or from a cache), then verify the MAC. The request id is
/// returned in the headers for the proxy's replay check.
///
/// # Errors
/// The first refusal, as an [`AuthError`] whose [`AuthError::code`] is the answer's error code.
#[allow(clippy::too_many_arguments)]
pub fn authenticate<'a>(
    get_header: impl Fn(&str) -> Option<&'a [u8]>,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now_ms: u64,
    skew_ms: u64,
    window: impl FnOnce(&SignedHeaders) -> Result<WindowKey, AuthError>,
) -> Result<SignedHeaders, AuthError> {
    let headers = SignedHeaders::parse(get_header)?;
    check_timestamp(headers.timestamp_ms, now_ms, skew_ms)?;
    let key = window(&headers)?;
    verify_request(
        &key,
        &headers,
        method,
        path_and_query,
        body,
        now_ms,
        skew_ms,
    )?;
    Ok(headers)
}
