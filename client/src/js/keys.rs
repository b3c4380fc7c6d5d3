//! Keys, window opening and request signing for JS: thin wrappers over [`crate::auth`].

use wasm_bindgen::prelude::*;

use super::{SdkError, random_bytes, to_u64};
use crate::auth::{self, ClusterPublicKey, CoveredHeaders, OpenWindow, WindowKey, WindowSecret};
use crate::wire::{ClientId, RequestId, WindowId};

/// A client's long-term Ed25519 identity key. The seed never leaves it except through
/// `toHex`/`toBase64` (for the caller to store).
#[wasm_bindgen]
pub struct IdentityKey(pub(crate) auth::IdentityKey);

fn seed32(what: &str, bytes: &[u8]) -> Result<zeroize::Zeroizing<[u8; 32]>, SdkError> {
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|_| SdkError::Config(format!("{what}: expected 32 bytes, got {}", bytes.len())))?;
    Ok(zeroize::Zeroizing::new(arr))
}

#[wasm_bindgen]
impl IdentityKey {
    /// A fresh key from `crypto.getRandomValues`.
    pub fn generate() -> Result<IdentityKey, SdkError> {
        Ok(Self(auth::IdentityKey::from_seed(&*random_bytes::<32>()?)))
    }

    /// The key whose RFC 8032 secret is these 32 bytes.
    #[wasm_bindgen(js_name = fromSeed)]
    pub fn from_seed(seed: &[u8]) -> Result<IdentityKey, SdkError> {
        Ok(Self(auth::IdentityKey::from_seed(&*seed32(
            "identity seed",
            seed,
        )?)))
    }

    /// Imports the 64-hex-character seed (`toHex`'s form; `verisim keygen` writes the same).
    #[wasm_bindgen(js_name = fromHex)]
    pub fn from_hex(s: &str) -> Result<IdentityKey, SdkError> {
        Ok(Self(auth::IdentityKey::from_hex(s)?))
    }

    /// Imports the base64 seed (`toBase64`'s form).
    #[wasm_bindgen(js_name = fromBase64)]
    pub fn from_base64(s: &str) -> Result<IdentityKey, SdkError> {
        Ok(Self(auth::IdentityKey::from_base64(s)?))
    }

    /// The seed, 64 lower-case hex characters: a secret.
    #[wasm_bindgen(js_name = toHex)]
    pub fn to_hex(&self) -> String {
        self.0.to_hex().to_string()
    }

    /// The seed, standard base64: a secret.
    #[wasm_bindgen(js_name = toBase64)]
    pub fn to_base64(&self) -> String {
        self.0.to_base64().to_string()
    }

    /// The public key, 64 hex characters (what `POST /admin/clients` enrolls).
    #[wasm_bindgen(js_name = publicKeyHex)]
    pub fn public_key_hex(&self) -> String {
        self.0.public().to_hex()
    }

    /// The public key, standard base64.
    #[wasm_bindgen(js_name = publicKeyBase64)]
    pub fn public_key_base64(&self) -> String {
        self.0.public().to_base64()
    }

    /// An Ed25519 signature (RFC 8032, deterministic) over `message`: 64 bytes.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.0.sign(message).to_vec()
    }
}

/// The X25519 public key (hex) of a per-window secret built from a 32-byte seed.
#[wasm_bindgen(js_name = windowPublicKey)]
pub fn window_public_key(seed: &[u8]) -> Result<String, SdkError> {
    Ok(WindowSecret::from_seed(&*seed32("window seed", seed)?)
        .public()
        .to_hex())
}

/// The window key (hex) the client derives: HKDF-SHA256 over X25519(window secret, cluster
/// public key), salted with the window id (docs/api.md).
#[wasm_bindgen(js_name = deriveWindowKey)]
pub fn derive_window_key(
    seed: &[u8],
    cluster_public_hex: &str,
    window: &str,
) -> Result<String, SdkError> {
    let secret = WindowSecret::from_seed(&*seed32("window seed", seed)?);
    let cluster = ClusterPublicKey::from_hex(cluster_public_hex)?;
    let window = window_id(window)?;
    Ok(auth::derive_window_key_client(&secret, &cluster, &window)?
        .to_hex()
        .to_string())
}

pub(crate) fn client_id(s: &str) -> Result<ClientId, SdkError> {
    ClientId::new(s).map_err(|e| SdkError::Config(format!("client id: {e}")))
}

pub(crate) fn window_id(s: &str) -> Result<WindowId, SdkError> {
    WindowId::new(s).map_err(|e| SdkError::Config(format!("window id: {e}")))
}

/// The signed `POST /v1/windows` body (an `OpenWindowRequest` object).
#[wasm_bindgen(js_name = openWindowBody, unchecked_return_type = "OpenWindowRequest")]
#[allow(clippy::too_many_arguments)]
pub fn open_window_body(
    identity: &IdentityKey,
    cluster_public_hex: &str,
    client: &str,
    window: &str,
    window_public_hex: &str,
    ttl_ms: f64,
    timestamp_ms: f64,
) -> Result<JsValue, SdkError> {
    let body = OpenWindow {
        cluster: ClusterPublicKey::from_hex(cluster_public_hex)?,
        client: client_id(client)?,
        window: window_id(window)?,
        window_public_key: auth::WindowPublicKey::from_hex(window_public_hex)?,
        ttl_ms: to_u64("ttlMs", ttl_ms)?,
        timestamp_ms: to_u64("timestampMs", timestamp_ms)?,
    }
    .sign(&identity.0);
    json_to_js(&body)
}

/// Serialises `v` and parses it as a JS value.
pub(crate) fn json_to_js<T: serde::Serialize>(v: &T) -> Result<JsValue, SdkError> {
    let text = serde_json::to_string(v).map_err(|e| SdkError::Json(e.to_string()))?;
    js_sys::JSON::parse(&text).map_err(|e| SdkError::Json(super::error::describe(&e)))
}

fn get(obj: &JsValue, key: &str) -> Result<JsValue, SdkError> {
    js_sys::Reflect::get(obj, &JsValue::from_str(key))
        .map_err(|e| SdkError::Config(format!("{key}: {}", super::error::describe(&e))))
}

fn get_str(obj: &JsValue, key: &str) -> Result<String, SdkError> {
    get(obj, key)?
        .as_string()
        .ok_or_else(|| SdkError::Config(format!("{key} must be a string")))
}

fn get_opt_str(obj: &JsValue, key: &str) -> Result<Option<String>, SdkError> {
    let v = get(obj, key)?;
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    v.as_string()
        .map(Some)
        .ok_or_else(|| SdkError::Config(format!("{key} must be a string when given")))
}

/// A body given as bytes, a string (UTF-8), or nothing.
pub(crate) fn body_bytes(v: &JsValue) -> Result<Vec<u8>, SdkError> {
    if v.is_undefined() || v.is_null() {
        Ok(Vec::new())
    } else if let Some(s) = v.as_string() {
        Ok(s.into_bytes())
    } else if let Some(a) = v.dyn_ref::<js_sys::Uint8Array>() {
        Ok(a.to_vec())
    } else {
        Err(SdkError::Config(
            "body must be a Uint8Array or a string".into(),
        ))
    }
}

/// Signs a request (scheme v2): the five `x-verisim-*` headers to send with it. `contentType` and
/// `ifMatch` must be sent exactly as given (or not at all when absent).
#[wasm_bindgen(js_name = signRequest, unchecked_return_type = "SignedHeaders")]
pub fn sign_request(
    #[wasm_bindgen(unchecked_param_type = "SignRequestInput")] input: JsValue,
) -> Result<JsValue, SdkError> {
    if !input.is_object() {
        return Err(SdkError::Config("signRequest takes an object".into()));
    }
    let key = WindowKey::from_hex(&get_str(&input, "windowKey")?)?;
    let content_type = get_opt_str(&input, "contentType")?;
    let if_match = get_opt_str(&input, "ifMatch")?;
    let ts = get(&input, "timestampMs")?
        .as_f64()
        .ok_or_else(|| SdkError::Config("timestampMs must be a number".into()))?;
    let request_id = RequestId::new(get_str(&input, "requestId")?)
        .map_err(|e| SdkError::Config(format!("request id: {e}")))?;
    let signed = auth::sign_request(
        &key,
        &client_id(&get_str(&input, "client")?)?,
        &window_id(&get_str(&input, "window")?)?,
        &get_str(&input, "method")?,
        &get_str(&input, "path")?,
        &CoveredHeaders {
            content_type: content_type.as_deref(),
            if_match: if_match.as_deref(),
        },
        to_u64("timestampMs", ts)?,
        &request_id,
        &body_bytes(&get(&input, "body")?)?,
    )?;
    let out = js_sys::Object::new();
    for (k, v) in signed.to_pairs() {
        // Setting a property on a fresh object cannot fail.
        let _ = js_sys::Reflect::set(&out, &JsValue::from_str(k), &JsValue::from_str(&v));
    }
    Ok(out.into())
}

/// Lower-case hex SHA-256 of a body (the last line of a canonical request).
#[wasm_bindgen(js_name = bodySha256Hex)]
pub fn body_sha256_hex(
    #[wasm_bindgen(unchecked_param_type = "Uint8Array | string")] body: JsValue,
) -> Result<String, SdkError> {
    Ok(auth::body_sha256_hex(&body_bytes(&body)?))
}
