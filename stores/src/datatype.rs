//! The datatype of a property value: what a schema requires of a property, and what a
//! [`Violation`](crate::semantic::Violation) reports. Its public path is `value::Datatype`.
//!
//! Apart from [`crate::value`] because it sits lower: the error type names datatypes (through
//! violations), and values themselves depend on the error type.

use serde::{Deserialize, Serialize};

/// The datatype of a [`Value`](crate::Value).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Datatype {
    /// [`Value::Bool`](crate::Value::Bool).
    Bool,
    /// [`Value::Int`](crate::Value::Int).
    Int,
    /// [`Value::Float`](crate::Value::Float) (an `Int` is also accepted where a `Float` is
    /// expected).
    Float,
    /// [`Value::Text`](crate::Value::Text).
    Text,
    /// [`Value::Iri`](crate::Value::Iri).
    Iri,
    /// [`Value::Bytes`](crate::Value::Bytes).
    Bytes,
}

impl std::fmt::Display for Datatype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}
