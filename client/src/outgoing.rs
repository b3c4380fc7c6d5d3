//! What either client (the native `http` one, the wasm `js` one) sends on one attempt of a call:
//! the headers the server acts on, derived once from the caller's headers and the body, and the
//! signature over them in the caller's window. One place, so the two transports cannot drift
//! apart in what they sign.

use crate::auth::{AuthError, COVERED_HEADERS, CoveredHeaders, WindowKey, sign_request};
use crate::wire::{ClientId, RequestId, WindowId, headers};

/// The window a call is signed in.
pub(crate) struct Signer<'a> {
    pub(crate) key: &'a WindowKey,
    pub(crate) client: &'a ClientId,
    pub(crate) window: &'a WindowId,
}

/// The headers the server acts on (scheme v2), from the caller's headers; a body without a
/// content type is JSON.
pub(crate) fn covered<'a>(extra: &[(&'a str, &'a str)], body: &[u8]) -> CoveredHeaders<'a> {
    let value = |name: &str| extra.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    CoveredHeaders {
        content_type: value(headers::CONTENT_TYPE)
            .or((!body.is_empty()).then_some("application/json")),
        if_match: value(headers::IF_MATCH),
    }
}

/// Every header of one attempt, in the order sent: the request id, the covered headers exactly as
/// signed, the caller's other headers, the signature (signed afresh each attempt: the timestamp
/// moves, the request id does not) and the admin token.
#[allow(clippy::too_many_arguments)] // one call's whole description; a struct would only rename it
pub(crate) fn attempt_headers<'a>(
    method: &str,
    path: &str,
    body: &[u8],
    covered: &CoveredHeaders<'_>,
    extra: &[(&'a str, &str)],
    request_id: &RequestId,
    signer: Option<&Signer<'_>>,
    admin_token: Option<&str>,
    now_ms: u64,
) -> Result<Vec<(&'a str, String)>, AuthError> {
    let mut out: Vec<(&'a str, String)> = vec![(headers::REQUEST_ID, request_id.to_string())];
    out.extend(
        covered
            .to_pairs()
            .into_iter()
            .map(|(k, v)| (k, v.to_string())),
    );
    // The covered ones went out above, exactly as signed.
    out.extend(
        extra
            .iter()
            .filter(|(k, _)| !COVERED_HEADERS.contains(k))
            .map(|(k, v)| (*k, (*v).to_string())),
    );
    if let Some(s) = signer {
        let signed = sign_request(
            s.key, s.client, s.window, method, path, covered, now_ms, request_id, body,
        )?;
        out.extend(
            signed
                .to_pairs()
                .into_iter()
                .filter(|(k, _)| *k != headers::REQUEST_ID),
        );
    }
    if let Some(t) = admin_token {
        out.push(("authorization", format!("Bearer {t}")));
    }
    Ok(out)
}
