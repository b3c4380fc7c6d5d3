//! Signing requests inside a trust window: HMAC-SHA256 over a canonical request (scheme v2).

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::keys::WindowKey;
use super::{AuthError, REQUEST_DOMAIN, SCHEME_TAG};
use crate::wire::headers::{
    CLIENT, CONTENT_TYPE, IF_MATCH, REQUEST_ID, SIGNATURE, TIMESTAMP, WINDOW,
};
use crate::wire::{ClientId, RequestId, WindowId};

/// Longest path-and-query accepted in a canonical request.
pub const MAX_PATH_LEN: usize = 8192;

/// Longest value of a covered header accepted in a canonical request.
pub const MAX_COVERED_VALUE_LEN: usize = 1024;

/// Every request header the server acts on, in canonical order. Each is signed, present or absent,
/// so no header that changes what a request means can be added, removed or rewritten on the way.
/// Covering another header is a new scheme version.
pub const COVERED_HEADERS: [&str; 2] = [CONTENT_TYPE, IF_MATCH];

/// The values of the [`COVERED_HEADERS`] a request carries (`None`: the header is absent, which is
/// signed differently from an empty value).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CoveredHeaders<'a> {
    /// `Content-Type`.
    pub content_type: Option<&'a str>,
    /// `If-Match`.
    pub if_match: Option<&'a str>,
}

impl<'a> CoveredHeaders<'a> {
    /// No covered header (a `GET` or a body-less `DELETE` without `If-Match`).
    pub const NONE: Self = Self {
        content_type: None,
        if_match: None,
    };

    /// The values in [`COVERED_HEADERS`] order.
    #[must_use]
    pub fn values(&self) -> [Option<&'a str>; 2] {
        [self.content_type, self.if_match]
    }

    /// Reads the covered headers of a received request; `get_all(name)` yields every value of the
    /// header `name` (lower case).
    ///
    /// # Errors
    /// [`AuthError::MalformedHeader`] for a covered header sent twice (which copy would the server
    /// act on?) or not UTF-8.
    pub fn from_request<I>(get_all: impl Fn(&'static str) -> I) -> Result<Self, AuthError>
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let one = |name: &'static str| -> Result<Option<&'a str>, AuthError> {
            let mut values = get_all(name).into_iter();
            let Some(first) = values.next() else {
                return Ok(None);
            };
            if values.next().is_some() {
                return Err(AuthError::MalformedHeader {
                    header: name,
                    reason: "sent more than once".into(),
                });
            }
            std::str::from_utf8(first)
                .map(Some)
                .map_err(|_| AuthError::MalformedHeader {
                    header: name,
                    reason: "not UTF-8".into(),
                })
        };
        Ok(Self {
            content_type: one(CONTENT_TYPE)?,
            if_match: one(IF_MATCH)?,
        })
    }

    /// `(name, value)` pairs of the present headers, to send.
    #[must_use]
    pub fn to_pairs(&self) -> Vec<(&'static str, &'a str)> {
        COVERED_HEADERS
            .into_iter()
            .zip(self.values())
            .filter_map(|(n, v)| v.map(|v| (n, v)))
            .collect()
    }
}

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

/// A covered header's value: printable ASCII (0x20–0x7E), no leading or trailing space (HTTP
/// parsers strip it, so it would not arrive as signed), at most [`MAX_COVERED_VALUE_LEN`] bytes.
fn check_covered_value(name: &str, value: &str) -> Result<(), AuthError> {
    let ok = value.len() <= MAX_COVERED_VALUE_LEN
        && value.bytes().all(|b| (0x20..=0x7e).contains(&b))
        && !value.starts_with(' ')
        && !value.ends_with(' ');
    if !ok {
        return Err(AuthError::Unsignable(format!(
            "header {name}: the value must be printable ASCII without leading or trailing spaces, \
             at most {MAX_COVERED_VALUE_LEN} bytes"
        )));
    }
    Ok(())
}

/// The canonical request of scheme v2: ten lines joined by `\n` (no final newline):
/// `verisim-request-v2`, method (upper case), path and query exactly as in the request line, client,
/// window, timestamp_ms (decimal), request id, one line per [`COVERED_HEADERS`] entry (`name:value`
/// when present, the bare `name` when absent), lower-case hex SHA-256 of the body. No field can
/// contain `\n` (methods are letters, paths and header values printable ASCII, ids a restricted
/// alphabet) and a present header's line always has a `:`, so distinct requests have distinct
/// encodings.
///
/// # Errors
/// [`AuthError::Unsignable`] if the method, path or a covered header's value break those rules.
#[allow(clippy::too_many_arguments)]
pub fn canonical_request(
    method: &str,
    path_and_query: &str,
    covered: &CoveredHeaders<'_>,
    client: &ClientId,
    window: &WindowId,
    timestamp_ms: u64,
    request_id: &RequestId,
    body: &[u8],
) -> Result<Vec<u8>, AuthError> {
    check_method(method)?;
    check_path(path_and_query)?;
    let mut out = format!(
        "{REQUEST_DOMAIN}\n{method}\n{path_and_query}\n{client}\n{window}\n{timestamp_ms}\n{request_id}\n"
    );
    for (name, value) in COVERED_HEADERS.into_iter().zip(covered.values()) {
        out.push_str(name);
        if let Some(v) = value {
            check_covered_value(name, v)?;
            out.push(':');
            out.push_str(v);
        }
        out.push('\n');
    }
    out.push_str(&body_sha256_hex(body));
    Ok(out.into_bytes())
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
    /// `X-Verisim-Signature`: `v2=` then the lower-case hex HMAC-SHA256 of the canonical request.
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
            (
                SIGNATURE,
                format!("{SCHEME_TAG}={}", hex::encode(self.signature)),
            ),
        ]
    }

    /// Parses the five headers; `get` returns a header's raw value by lower-case name.
    ///
    /// # Errors
    /// [`AuthError::MissingHeader`] for the first absent header, [`AuthError::UnsupportedScheme`]
    /// for a signature of another scheme (a bare v1 HMAC, or another `<tag>=` than `v2=`),
    /// [`AuthError::MalformedHeader`] for one that is not ASCII, not a valid id, not a decimal
    /// timestamp or not 64 hex characters.
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
        let signature = parse_signature(text(SIGNATURE)?)?;
        Ok(Self {
            client,
            window,
            timestamp_ms,
            request_id,
            signature,
        })
    }
}

/// `v2=<64 hex>`. A bare 64-hex value is scheme v1 (which signed neither `If-Match` nor the
/// content type): refused as such, not as malformed, so an old client learns why.
fn parse_signature(value: &str) -> Result<[u8; 32], AuthError> {
    let hex_text = match value.split_once('=') {
        Some((tag, rest)) if tag == SCHEME_TAG => rest,
        Some((tag, _)) => {
            return Err(AuthError::UnsupportedScheme(format!(
                "signature scheme {tag:?}; this server accepts only {SCHEME_TAG}"
            )));
        }
        None if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) => {
            return Err(AuthError::UnsupportedScheme(format!(
                "an untagged signature is scheme v1; sign with {SCHEME_TAG} (docs/api.md)"
            )));
        }
        None => value,
    };
    let mut signature = [0u8; 32];
    hex::decode_to_slice(hex_text, &mut signature).map_err(|e| AuthError::MalformedHeader {
        header: SIGNATURE,
        reason: format!("expected {SCHEME_TAG}= and 64 hex characters: {e}"),
    })?;
    Ok(signature)
}

/// Signs a request: the headers to send with it (`covered` must be sent exactly as given).
///
/// # Errors
/// [`AuthError::Unsignable`] if the method, path or a covered header cannot be canonicalised.
#[allow(clippy::too_many_arguments)]
pub fn sign_request(
    key: &WindowKey,
    client: &ClientId,
    window: &WindowId,
    method: &str,
    path_and_query: &str,
    covered: &CoveredHeaders<'_>,
    timestamp_ms: u64,
    request_id: &RequestId,
    body: &[u8],
) -> Result<SignedHeaders, AuthError> {
    let canonical = canonical_request(
        method,
        path_and_query,
        covered,
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

/// The MAC check of a signed request, after the verifier found the window (`key`) for
/// `headers.window`: the timestamp within `skew_ms` of `now_ms`, then the MAC over the canonical
/// request, compared in constant time.
///
/// # Errors
/// [`AuthError::TimestampSkew`]; [`AuthError::BadSignature`] (also for a method, path or covered
/// header that cannot be canonicalised: the client could not have signed it).
#[allow(clippy::too_many_arguments)]
pub fn verify_request(
    key: &WindowKey,
    headers: &SignedHeaders,
    method: &str,
    path_and_query: &str,
    covered: &CoveredHeaders<'_>,
    body: &[u8],
    now_ms: u64,
    skew_ms: u64,
) -> Result<(), AuthError> {
    check_timestamp(headers.timestamp_ms, now_ms, skew_ms)?;
    let canonical = canonical_request(
        method,
        path_and_query,
        covered,
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
