//! Property values shared by graph nodes/edges and semantic annotations.

use serde::{Deserialize, Serialize};

use crate::codec::Bytes;
// Its own module, below `error` (whose schema violations name datatypes); public here as before.
pub use crate::datatype::Datatype;
use crate::error::{Result, StoreError};

/// A typed property value. Floats must be finite (NaN would break equality and hashing).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// true or false.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A finite 64-bit float.
    Float(f64),
    /// A UTF-8 string.
    Text(String),
    /// An IRI (a reference to another resource), e.g. `https://schema.org/Person`.
    Iri(String),
    /// Raw bytes.
    Bytes(Bytes),
}

impl Value {
    /// The value's datatype.
    #[must_use]
    pub fn datatype(&self) -> Datatype {
        match self {
            Self::Bool(_) => Datatype::Bool,
            Self::Int(_) => Datatype::Int,
            Self::Float(_) => Datatype::Float,
            Self::Text(_) => Datatype::Text,
            Self::Iri(_) => Datatype::Iri,
            Self::Bytes(_) => Datatype::Bytes,
        }
    }

    /// Refuses non-finite floats.
    pub(crate) fn check(&self, name: &str) -> Result<()> {
        match self {
            Self::Float(f) if !f.is_finite() => Err(StoreError::InvalidInput(format!(
                "property {name:?}: float must be finite, got {f}"
            ))),
            _ => Ok(()),
        }
    }

    /// The value as a number, for range constraints.
    #[must_use]
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            #[allow(clippy::cast_precision_loss)]
            Self::Int(i) => Some(*i as f64),
            Self::Float(f) => Some(*f),
            _ => None,
        }
    }
}
