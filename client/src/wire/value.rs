//! Typed property values of graph nodes, edges and semantic annotations (the stores' `Value`).

use serde::{Deserialize, Serialize};

use super::Base64Bytes;

/// A typed property value, written as a one-key object naming its type: `{"int": 42}`,
/// `{"float": 1.5}`, `{"bool": true}`, `{"text": "Ada"}`, `{"iri": "https://schema.org/Person"}`,
/// `{"bytes": "AAEC"}` (base64). Floats must be finite.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Value {
    /// true or false.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A finite 64-bit float.
    Float(f64),
    /// A UTF-8 string.
    Text(String),
    /// An IRI (a reference to another resource).
    Iri(String),
    /// Raw bytes, base64 in JSON.
    Bytes(Base64Bytes),
}

impl Value {
    /// Refuses non-finite floats (JSON cannot carry them, but a Rust caller can build one).
    ///
    /// # Errors
    /// [`super::InvalidInput`] naming the property.
    pub fn check(&self, name: &str) -> Result<(), super::InvalidInput> {
        match self {
            Self::Float(f) if !f.is_finite() => Err(super::InvalidInput(format!(
                "property {name:?}: float must be finite, got {f}"
            ))),
            _ => Ok(()),
        }
    }
}
