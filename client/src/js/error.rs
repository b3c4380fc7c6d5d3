//! What the JS bindings throw: a `VerisimError` (an `Error` with `kind`, `code`, `status`, `node`,
//! `details`), the native `ClientError`'s cases with the same API error codes.

use wasm_bindgen::{JsCast as _, JsValue};

use crate::auth::AuthError;
use crate::wire::ErrorBody;

/// A failed call or a refused argument.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// The server answered with an error body (after retries, for retryable answers).
    #[error("{node} answered {status} {code}: {message}")]
    Api {
        /// The node that answered.
        node: String,
        /// HTTP status.
        status: u16,
        /// The code as sent (empty when the body was not an error body).
        code: String,
        /// The message.
        message: String,
        /// Structured details, as JSON text.
        details: Option<String>,
    },
    /// No node could be reached (the last node's error, after all attempts).
    #[error("cannot reach {node}: {reason}")]
    Transport {
        /// The last node tried.
        node: String,
        /// Why.
        reason: String,
    },
    /// A signed call without an open window.
    #[error("no trust window is open (open one first)")]
    NoSession,
    /// Signing or a key refused its input.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A body could not be encoded or decoded.
    #[error("JSON: {0}")]
    Json(String),
    /// A bad argument or option.
    #[error("{0}")]
    Config(String),
}

impl SdkError {
    /// The error of a non-2xx answer: the body's code and message when it is an error body.
    pub(crate) fn from_response(node: &str, status: u16, body: &[u8]) -> Self {
        if let Ok(b) = serde_json::from_slice::<ErrorBody>(body) {
            return Self::Api {
                node: node.to_string(),
                status,
                code: b.code.as_str().to_string(),
                message: b.message,
                details: b.details.map(|d| d.to_string()),
            };
        }
        // A newer server's code, or not an error body at all.
        let v: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let field = |k: &str| {
            v.as_ref()
                .and_then(|v| v.get(k))
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        };
        Self::Api {
            node: node.to_string(),
            status,
            code: field("code").unwrap_or_default(),
            message: field("message")
                .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(512)]).into()),
            details: None,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Api { .. } => "api",
            Self::Transport { .. } => "transport",
            Self::NoSession => "no_session",
            Self::Auth(_) => "auth",
            Self::Json(_) => "json",
            Self::Config(_) => "config",
        }
    }
}

/// A JS value's text for a message (an `Error`'s message, or its string form).
pub(crate) fn describe(v: &JsValue) -> String {
    if let Some(e) = v.dyn_ref::<js_sys::Error>() {
        let msg: String = e.message().into();
        // `fetch` failures carry the real reason (ECONNREFUSED, ...) in `cause`.
        let cause = js_sys::Reflect::get(e, &JsValue::from_str("cause"))
            .ok()
            .filter(|c| !c.is_undefined() && !c.is_null())
            .map(|c| describe(&c));
        return match cause {
            Some(c) if !c.is_empty() => format!("{msg} ({c})"),
            _ => msg,
        };
    }
    v.as_string()
        .or_else(|| js_sys::JSON::stringify(v).ok().and_then(|s| s.as_string()))
        .unwrap_or_else(|| "an unprintable JS value".into())
}

impl From<SdkError> for JsValue {
    fn from(e: SdkError) -> Self {
        let err = js_sys::Error::new(&e.to_string());
        err.set_name("VerisimError");
        let set = |k: &str, v: JsValue| {
            // Setting a property on a fresh Error cannot fail.
            let _ = js_sys::Reflect::set(&err, &JsValue::from_str(k), &v);
        };
        set("kind", JsValue::from_str(e.kind()));
        match &e {
            SdkError::Api {
                node,
                status,
                code,
                details,
                ..
            } => {
                if !code.is_empty() {
                    set("code", JsValue::from_str(code));
                }
                set("status", JsValue::from_f64(f64::from(*status)));
                set("node", JsValue::from_str(node));
                if let Some(d) = details
                    && let Ok(v) = js_sys::JSON::parse(d)
                {
                    set("details", v);
                }
            }
            SdkError::Transport { node, .. } => set("node", JsValue::from_str(node)),
            SdkError::Auth(a) => set("code", JsValue::from_str(a.code().as_str())),
            SdkError::NoSession | SdkError::Json(_) | SdkError::Config(_) => {}
        }
        err.into()
    }
}
