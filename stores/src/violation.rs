//! One way an annotation breaks the semantic schema: what [`crate::semantic`]'s validation
//! reports, and what [`StoreError::Validation`](crate::StoreError::Validation) carries. Its public
//! path is `semantic::Violation`.
//!
//! Here rather than in the semantic engine because the error type, below every engine, holds it.

use std::fmt;

use crate::datatype::Datatype;

/// One way an annotation breaks the schema.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Violation {
    /// The annotation names a type the schema does not define.
    UnknownType {
        /// The type IRI.
        iri: String,
    },
    /// A required property is missing.
    MissingRequired {
        /// The type (possibly an ancestor of an annotated type) that requires it.
        type_iri: String,
        /// The property.
        property: String,
    },
    /// A property is not declared by any of the annotation's types or their ancestors.
    UndeclaredProperty {
        /// The property.
        property: String,
    },
    /// A value has the wrong datatype.
    WrongDatatype {
        /// The property.
        property: String,
        /// The type that declares it.
        type_iri: String,
        /// What the schema requires.
        expected: Datatype,
        /// What was given.
        found: Datatype,
    },
    /// A text value does not match the pattern.
    PatternMismatch {
        /// The property.
        property: String,
        /// The type that declares it.
        type_iri: String,
        /// The pattern (must match the whole value).
        pattern: String,
    },
    /// A number is outside the range.
    OutOfRange {
        /// The property.
        property: String,
        /// The type that declares it.
        type_iri: String,
        /// The value.
        value: f64,
        /// Inclusive lower bound.
        min: Option<f64>,
        /// Inclusive upper bound.
        max: Option<f64>,
    },
    /// A proof blob does not verify.
    InvalidProof {
        /// Its position in `proofs`.
        index: usize,
        /// Why.
        reason: String,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownType { iri } => write!(f, "unknown type {iri}"),
            Self::MissingRequired { type_iri, property } => {
                write!(f, "{type_iri} requires property {property}")
            }
            Self::UndeclaredProperty { property } => {
                write!(f, "property {property} is not declared by any of the types")
            }
            Self::WrongDatatype {
                property,
                type_iri,
                expected,
                found,
            } => write!(
                f,
                "{property}: {type_iri} requires {expected}, found {found}"
            ),
            Self::PatternMismatch {
                property,
                type_iri,
                pattern,
            } => write!(
                f,
                "{property}: does not match {type_iri}'s pattern {pattern:?}"
            ),
            Self::OutOfRange {
                property,
                type_iri,
                value,
                min,
                max,
            } => write!(
                f,
                "{property}: {value} is outside {type_iri}'s range [{}, {}]",
                min.map_or("-inf".into(), |x| x.to_string()),
                max.map_or("+inf".into(), |x| x.to_string())
            ),
            Self::InvalidProof { index, reason } => write!(f, "proof {index}: {reason}"),
        }
    }
}
