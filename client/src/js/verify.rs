//! The edge verifier for JS: [`crate::verify::Verifier`] (the code every node's proxy runs) over a
//! trust state given as plain JS objects.

use wasm_bindgen::prelude::*;

use super::keys::{body_bytes, json_to_js};
use super::{SdkError, now_ms, to_u64};
use crate::auth::{ClusterSecret, DEFAULT_SKEW_MS, WindowPublicKey};
use crate::verify::{self, Fingerprint, TrustClient, TrustView, TrustWindow};
use crate::wire::{ClientId, RequestId, WindowId};

/// Checks signed requests as a node does: headers, skew, window and its owner, MAC, revocation,
/// expiry, replay (docs/security.md, "An edge verifier").
#[wasm_bindgen]
pub struct Verifier(verify::Verifier);

fn skew(skew_ms: Option<f64>) -> Result<u64, SdkError> {
    skew_ms.map_or(Ok(DEFAULT_SKEW_MS), |s| to_u64("skewMs", s))
}

#[wasm_bindgen]
impl Verifier {
    /// A verifier holding the cluster's X25519 secret (64 hex characters), the only secret it
    /// needs: not the cluster cookie, which would also let its holder join the cluster.
    #[wasm_bindgen(js_name = fromClusterSecretHex)]
    pub fn from_cluster_secret_hex(
        secret_hex: &str,
        skew_ms: Option<f64>,
    ) -> Result<Verifier, SdkError> {
        Ok(Self(verify::Verifier::new(
            ClusterSecret::from_hex(secret_hex)?,
            skew(skew_ms)?,
        )))
    }

    /// A verifier whose secret is derived (HKDF, docs/api.md "Cluster DH key") from this key
    /// material, as nodes derive it from theirs (the test vectors' `cookie`). An edge should hold
    /// only the derived secret: see `fromClusterSecretHex`.
    #[wasm_bindgen(js_name = fromKeyMaterial)]
    pub fn from_key_material(
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | string")] ikm: JsValue,
        skew_ms: Option<f64>,
    ) -> Result<Verifier, SdkError> {
        Ok(Self(verify::Verifier::from_key_material(
            &body_bytes(&ikm)?,
            skew(skew_ms)?,
        )?))
    }

    /// The cluster's public key (hex), as `GET /v1/cluster-key` publishes it.
    #[wasm_bindgen(js_name = clusterPublicKeyHex)]
    pub fn cluster_public_key_hex(&self) -> String {
        self.0.cluster_public().to_hex()
    }

    /// The allowed clock difference, in milliseconds.
    #[wasm_bindgen(getter, js_name = skewMs)]
    pub fn skew_ms(&self) -> f64 {
        // Skews are far below 2^53.
        self.0.skew_ms() as f64
    }

    /// Checks one received request against `trust`. Returns the `VerifiedRequest`; throws a
    /// `VerisimError` of kind `auth` whose `code` is the API error code a node would answer
    /// (`bad_signature`, `timestamp_skew`, `replayed_request`, ...), or of kind `config` for an
    /// argument of the wrong shape.
    #[wasm_bindgen(unchecked_return_type = "VerifiedRequest")]
    pub fn verify(
        &self,
        #[wasm_bindgen(unchecked_param_type = "TrustState")] trust: JsValue,
        #[wasm_bindgen(unchecked_param_type = "VerifyInput")] request: JsValue,
    ) -> Result<JsValue, SdkError> {
        if !trust.is_object() || !request.is_object() {
            return Err(SdkError::Config(
                "verify takes a trust state and a request object".into(),
            ));
        }
        let headers = headers(&get(&request, "headers")?)?;
        let method = get_string(&request, "method")?;
        let path = get_string(&request, "path")?;
        let body = body_bytes(&get(&request, "body")?)?;
        let now = match get(&request, "nowMs")?.as_f64() {
            Some(n) => to_u64("nowMs", n)?,
            None => now_ms(),
        };
        let view = JsTrust::new(&trust)?;
        let result = self
            .0
            .verify(&view, &headers[..], &method, &path, &body, now);
        // A malformed trust state is the caller's bug, reported as such rather than as a refusal.
        if let Some(e) = view.error.take() {
            return Err(e);
        }
        let v = result?;
        json_to_js(&serde_json::json!({
            "client": v.client,
            "window": v.window,
            "requestId": v.request_id,
            "timestampMs": v.timestamp_ms,
            "fingerprint": v.fingerprint.to_hex(),
            "retry": v.retry_of.is_some(),
        }))
    }
}

fn get(obj: &JsValue, key: &str) -> Result<JsValue, SdkError> {
    js_sys::Reflect::get(obj, &JsValue::from_str(key))
        .map_err(|e| SdkError::Config(format!("{key}: {}", super::error::describe(&e))))
}

fn get_string(obj: &JsValue, key: &str) -> Result<String, SdkError> {
    get(obj, key)?
        .as_string()
        .ok_or_else(|| SdkError::Config(format!("{key} must be a string")))
}

/// `obj[key]` if `obj` has it as its own property (not `__proto__`, `constructor` and the like,
/// which are valid ids).
fn own(obj: &JsValue, key: &str) -> Result<Option<JsValue>, SdkError> {
    let Some(o) = obj.dyn_ref::<js_sys::Object>() else {
        return Ok(None);
    };
    if !js_sys::Object::has_own(o, &JsValue::from_str(key)) {
        return Ok(None);
    }
    get(obj, key).map(Some)
}

/// The headers as `(name, value)` pairs, from a `Headers`, a `Map` or an array of pairs (anything
/// iterable of `[name, value]`), or a plain object whose values are strings or arrays of strings
/// (a header sent twice: refused if it is a covered one). A `Headers` object joins repeated values
/// with `, `, so a repeated covered header arrives as a value that fails the MAC.
fn headers(v: &JsValue) -> Result<Vec<(String, String)>, SdkError> {
    let bad = || {
        SdkError::Config(
            "headers must be a Headers, a Map, an array of [name, value] or an object of strings"
                .into(),
        )
    };
    let mut out = Vec::new();
    let mut push = |name: JsValue, value: JsValue| -> Result<(), SdkError> {
        let name = name.as_string().ok_or_else(bad)?;
        if let Some(s) = value.as_string() {
            out.push((name, s));
        } else if let Some(a) = value.dyn_ref::<js_sys::Array>() {
            for item in a.iter() {
                out.push((name.clone(), item.as_string().ok_or_else(bad)?));
            }
        } else {
            return Err(bad());
        }
        Ok(())
    };
    if let Some(iter) = js_sys::try_iter(v).map_err(|_| bad())? {
        for entry in iter {
            let entry = entry.map_err(|_| bad())?;
            let pair = entry.dyn_ref::<js_sys::Array>().ok_or_else(bad)?;
            push(pair.get(0), pair.get(1))?;
        }
    } else if let Some(o) = v.dyn_ref::<js_sys::Object>() {
        for entry in js_sys::Object::entries(o).iter() {
            let pair = entry.dyn_ref::<js_sys::Array>().ok_or_else(bad)?;
            push(pair.get(0), pair.get(1))?;
        }
    } else {
        return Err(bad());
    }
    Ok(out)
}

/// The JS trust state as a [`TrustView`]. Lookups cannot fail in the trait, so the first shape
/// error is kept and reported after the verification.
struct JsTrust {
    windows: JsValue,
    clients: JsValue,
    applied: JsValue,
    error: std::cell::Cell<Option<SdkError>>,
}

impl JsTrust {
    fn new(trust: &JsValue) -> Result<Self, SdkError> {
        Ok(Self {
            windows: get(trust, "windows")?,
            clients: get(trust, "clients")?,
            applied: get(trust, "applied")?,
            error: std::cell::Cell::new(None),
        })
    }

    fn fail<T>(&self, what: String) -> Option<T> {
        let first = self.error.take();
        self.error
            .set(Some(first.unwrap_or(SdkError::Config(what))));
        None
    }

    fn window_entry(&self, entry: &JsValue, id: &str) -> Result<TrustWindow, String> {
        let field = |k: &str| get(entry, k).map_err(|e| e.to_string());
        let client = field("client")?
            .as_string()
            .and_then(|c| ClientId::new(c).ok())
            .ok_or_else(|| format!("windows[{id:?}].client must be a client id"))?;
        let client_dh = field("clientPublicKey")?
            .as_string()
            .and_then(|k| WindowPublicKey::from_hex(&k).ok())
            .ok_or_else(|| format!("windows[{id:?}].clientPublicKey must be 64 hex characters"))?;
        let expires_at_ms = field("expiresAtMs")?
            .as_f64()
            .and_then(|n| to_u64("expiresAtMs", n).ok())
            .ok_or_else(|| format!("windows[{id:?}].expiresAtMs must be a non-negative integer"))?;
        Ok(TrustWindow {
            client,
            client_dh,
            expires_at_ms,
        })
    }
}

impl TrustView for JsTrust {
    type Applied = ();

    fn window(&self, window: &WindowId) -> Option<TrustWindow> {
        match own(&self.windows, window.as_str()) {
            Ok(Some(entry)) => match self.window_entry(&entry, window.as_str()) {
                Ok(w) => Some(w),
                Err(e) => self.fail(e),
            },
            Ok(None) => None,
            Err(e) => self.fail(e.to_string()),
        }
    }

    fn client(&self, client: &ClientId) -> Option<TrustClient> {
        match own(&self.clients, client.as_str()) {
            Ok(Some(entry)) => match get(&entry, "revoked") {
                Ok(r) if r.is_undefined() => Some(TrustClient { revoked: false }),
                Ok(r) => match r.as_bool() {
                    Some(revoked) => Some(TrustClient { revoked }),
                    None => self.fail(format!("clients[{client:?}].revoked must be a boolean")),
                },
                Err(e) => self.fail(e.to_string()),
            },
            Ok(None) => None,
            Err(e) => self.fail(e.to_string()),
        }
    }

    fn applied(&self, client: &ClientId, request: &RequestId) -> Option<(Fingerprint, ())> {
        let per_client = match own(&self.applied, client.as_str()) {
            Ok(Some(p)) => p,
            Ok(None) => return None,
            Err(e) => return self.fail(e.to_string()),
        };
        match own(&per_client, request.as_str()) {
            Ok(Some(fp)) => match fp.as_string().and_then(|s| Fingerprint::from_hex(&s).ok()) {
                Some(fp) => Some((fp, ())),
                None => self.fail(format!(
                    "applied[{client:?}][{request:?}] must be a fingerprint (64 hex characters)"
                )),
            },
            Ok(None) => None,
            Err(e) => self.fail(e.to_string()),
        }
    }
}

#[wasm_bindgen(typescript_custom_section)]
const TS_VERIFY: &'static str = r#"
/** The trust state an edge verifier checks requests against: its copy of the registry's windows,
 *  clients and applied request ids (docs/security.md, "An edge verifier"). Looked up by own
 *  property; a window or client that is absent is unknown. */
export interface TrustState {
  windows: { [window: string]: { client: string; clientPublicKey: string; expiresAtMs: number } };
  clients: { [client: string]: { revoked?: boolean } };
  /** Request ids already applied, per client: the fingerprint each was applied with. */
  applied?: { [client: string]: { [requestId: string]: string } };
}

/** One received request. `path` is the path and query exactly as received; `body` the exact
 *  bytes (a string is UTF-8 encoded); `nowMs` the verifier's clock (default `Date.now()`). */
export interface VerifyInput {
  method: string;
  path: string;
  headers: Headers | Map<string, string> | [string, string][] | { [name: string]: string | string[] };
  body?: Uint8Array | string;
  nowMs?: number;
}

/** A request that passed: who, in which window, under which request id, and its fingerprint
 *  (hex, what the registry records). `retry`: the id was applied before with this fingerprint. */
export interface VerifiedRequest {
  client: string;
  window: string;
  requestId: string;
  timestampMs: number;
  fingerprint: string;
  retry: boolean;
}
"#;
