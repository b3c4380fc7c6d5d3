//! JavaScript bindings (feature `js`, `wasm32-unknown-unknown` only): identity keys, trust-window
//! key agreement, request signing, the edge [`Verifier`] (the proxy's request check, for an edge),
//! and an async [`client::Client`] on the global `fetch` with the native client's retries, leader
//! hints and error codes. `client/js/build.sh` turns the module
//! into the npm-style package `client/js/pkg`; `client/js/README.md` is its guide.
//!
//! Numbers cross as JS numbers (`f64`): timestamps, TTLs and versions must be safe integers
//! (below 2^53), which every real value is. Randomness is `crypto.getRandomValues` (Node ≥ 18 and
//! every browser), so the crate needs no `getrandom`.

// wasm-bindgen's generated glue contains `unsafe` blocks; this module writes none itself.
#![allow(unsafe_code)]

mod client;
mod error;
mod keys;
mod verify;

pub use client::Client;
pub use error::SdkError;
pub use keys::{
    IdentityKey, body_sha256_hex, derive_window_key, open_window_body, sign_request,
    window_public_key,
};
pub use verify::Verifier;

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// `crypto.getRandomValues` (fills the array it is given; wasm-bindgen copies it back).
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues, catch)]
    fn get_random_values(buf: &mut [u8]) -> Result<JsValue, JsValue>;
}

/// `N` bytes from the platform's CSPRNG.
pub(crate) fn random_bytes<const N: usize>() -> Result<zeroize::Zeroizing<[u8; N]>, SdkError> {
    let mut out = zeroize::Zeroizing::new([0u8; N]);
    get_random_values(out.as_mut()).map_err(|e| {
        SdkError::Config(format!(
            "crypto.getRandomValues is unavailable: {}",
            error::describe(&e)
        ))
    })?;
    Ok(out)
}

/// `prefix-` and 24 random hex characters (96 bits), like the native client's ids.
pub(crate) fn random_id(prefix: &str) -> Result<String, SdkError> {
    Ok(format!("{prefix}-{}", hex::encode(*random_bytes::<12>()?)))
}

/// Milliseconds since the Unix epoch, from `Date.now()`.
pub(crate) fn now_ms() -> u64 {
    // Date.now() is a non-negative integer below 2^53 on any real clock.
    let now = js_sys::Date::now();
    if now.is_finite() && now >= 0.0 {
        now as u64
    } else {
        0
    }
}

/// A JS number that must be a non-negative safe integer.
pub(crate) fn to_u64(what: &str, n: f64) -> Result<u64, SdkError> {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= MAX_SAFE {
        Ok(n as u64)
    } else {
        Err(SdkError::Config(format!(
            "{what} must be a non-negative integer below 2^53, got {n}"
        )))
    }
}

#[wasm_bindgen(typescript_custom_section)]
const TS_SHAPES: &'static str = r#"
/** What every failed call or refused argument throws (an `Error` with these fields). */
export interface VerisimError extends Error {
  name: "VerisimError";
  /** `api`: the server answered an error body; `transport`: no node could be reached;
   *  `no_session`: a signed call without a window; `auth`: signing refused its input;
   *  `json`: a body did not encode or decode; `config`: a bad argument or option. */
  kind: "api" | "transport" | "no_session" | "auth" | "json" | "config";
  /** The API error code (`bad_signature`, `version_conflict`, `no_quorum`, ...; docs/api.md) for
   *  `api`, the code the server would answer for `auth`; otherwise absent. */
  code?: string;
  /** HTTP status, for `api`. */
  status?: number;
  /** The node that answered (`api`) or was tried last (`transport`). */
  node?: string;
  /** Structured details of an `api` error (e.g. drift). */
  details?: unknown;
}

/** `new Client(nodes, options)`: retry policy (the native client's defaults) and admin token. */
export interface ClientOptions {
  /** Attempts per call, the first included (default 8). */
  maxAttempts?: number;
  /** Backoff before the second attempt, doubled each attempt, ±50 % jitter (default 50). */
  initialBackoffMs?: number;
  /** Longest backoff (default 2000). */
  maxBackoffMs?: number;
  /** Longest `Retry-After` wait honoured (default 10000). */
  maxRetryAfterMs?: number;
  /** Per-attempt timeout of a whole request (default 30000). */
  requestTimeoutMs?: number;
  /** Sent as `Authorization: Bearer <token>` on admin calls. */
  adminToken?: string;
}

/** An open trust window: what signed requests need. `key` is the window's HMAC key (hex): keep it
 *  as secret as the identity key. */
export interface Session {
  client: string;
  window: string;
  key: string;
  expires_at_ms: number;
}

/** The input of `signRequest`. `body` is the exact bytes sent (a string is UTF-8 encoded). */
export interface SignRequestInput {
  /** The window key, 64 hex characters. */
  windowKey: string;
  client: string;
  window: string;
  method: string;
  /** Path and query, exactly as sent (`/v1/entities/a?allow_drift=true`). */
  path: string;
  /** The `Content-Type` header sent, if any (signed: absent differs from empty). */
  contentType?: string;
  /** The `If-Match` header sent, if any. */
  ifMatch?: string;
  timestampMs: number;
  requestId: string;
  body?: Uint8Array | string;
}

/** The five authentication headers of a signed request (lower-case names). */
export interface SignedHeaders {
  "x-verisim-client": string;
  "x-verisim-window": string;
  "x-verisim-timestamp": string;
  "x-verisim-request-id": string;
  "x-verisim-signature": string;
}

/** The `POST /v1/windows` body. */
export interface OpenWindowRequest {
  client: string;
  window: string;
  client_public_key: string;
  ttl_ms: number;
  timestamp_ms: number;
  signature: string;
}

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };
export interface EdgePayload { predicate: string; target: string; properties?: { [k: string]: JsonValue } }
export interface GraphPayload { properties?: { [k: string]: JsonValue }; edges?: EdgePayload[] }
export interface VectorPayload { collection: string; values: number[] }
/** Tensor payload: see docs/api.md (`dtype`, `shape`, `data`). */
export type TensorPayload = { [k: string]: JsonValue };
export interface ProofPayload { claim: string; kind: string; data: string }
export interface SemanticPayload { types?: string[]; properties?: { [k: string]: JsonValue }; proofs?: ProofPayload[] }
/** `POST /v1/entities` (docs/api.md): unknown fields are refused. */
export interface RegisterRequest {
  id: string;
  graph: GraphPayload;
  vector: VectorPayload;
  tensor: TensorPayload;
  semantic: SemanticPayload;
}
/** `PUT /v1/entities/{id}`. */
export type UpdateRequest = Omit<RegisterRequest, "id">;
export interface ModalityHashes { graph: string; vector: string; tensor: string; semantic: string }
export interface EntityWritten { id: string; version: number; index: number; hashes: ModalityHashes }
export interface EntityDeleted { id: string; version: number; index: number }
export interface ModalityView<T> { hash: string; verified: boolean; replica: string; data: T | null }
export interface EntityView {
  id: string;
  version: number;
  index: number;
  placement: string[];
  graph: ModalityView<GraphPayload>;
  vector: ModalityView<VectorPayload>;
  tensor: ModalityView<TensorPayload>;
  semantic: ModalityView<SemanticPayload>;
  owner?: string | null;
  grants?: { [client: string]: "read" | "write" } | null;
}
export interface VectorSearchRequest { collection: string; vector: number[]; k: number; exact?: boolean; ef?: number | null }
export interface VectorSearchResponse { hits: { id: string; distance: number }[] }
export interface RegisterClientResponse { client: string; index: number }
/** What a raw `sendSigned` / `admin` call answers: status, node and the body (parsed JSON, or
 *  `null` for an empty body). */
export interface RawResponse { status: number; node: string; body: unknown }
"#;
