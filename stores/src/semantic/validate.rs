//! Validating an annotation against the schema. Every violation is collected (not just the first),
//! in a stable order: unknown types, then per type (closure in IRI order) its missing required
//! properties, then per property (in name order) datatype, pattern and range failures, then proofs.

use std::collections::BTreeSet;
use std::fmt;

use super::Annotation;
use super::schema::Schema;
use crate::value::{Datatype, Value};

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

pub(crate) fn validate(schema: &Schema, a: &Annotation) -> Vec<Violation> {
    let mut v = Vec::new();
    let mut closure = BTreeSet::new();
    for t in &a.types {
        if schema.types.contains_key(t) {
            closure.insert(t.clone());
            closure.extend(schema.ancestors(t));
        } else {
            v.push(Violation::UnknownType { iri: t.clone() });
        }
    }
    for t in &closure {
        if let Some(def) = schema.types.get(t) {
            for r in &def.required {
                if !a.properties.contains_key(r) {
                    v.push(Violation::MissingRequired {
                        type_iri: t.clone(),
                        property: r.clone(),
                    });
                }
            }
        }
    }
    for (name, value) in &a.properties {
        let decls: Vec<_> = closure
            .iter()
            .filter_map(|t| schema.types.get(t)?.properties.get(name).map(|p| (t, p)))
            .collect();
        if decls.is_empty() {
            v.push(Violation::UndeclaredProperty {
                property: name.clone(),
            });
            continue;
        }
        for (t, p) in decls {
            let ok_type = value.datatype() == p.datatype
                || (p.datatype == Datatype::Float && matches!(value, Value::Int(_)));
            if !ok_type {
                v.push(Violation::WrongDatatype {
                    property: name.clone(),
                    type_iri: t.clone(),
                    expected: p.datatype,
                    found: value.datatype(),
                });
                continue;
            }
            if let (Some(pat), Value::Text(s) | Value::Iri(s)) = (&p.pattern, value)
                && schema.pattern(t, name).is_none_or(|re| !re.is_match(s))
            {
                v.push(Violation::PatternMismatch {
                    property: name.clone(),
                    type_iri: t.clone(),
                    pattern: pat.clone(),
                });
            }
            if let Some(x) = value.as_f64()
                && (p.min.is_some_and(|lo| x < lo) || p.max.is_some_and(|hi| x > hi))
            {
                v.push(Violation::OutOfRange {
                    property: name.clone(),
                    type_iri: t.clone(),
                    value: x,
                    min: p.min,
                    max: p.max,
                });
            }
        }
    }
    for (i, p) in a.proofs.iter().enumerate() {
        if let Err(e) = p.verify() {
            v.push(Violation::InvalidProof {
                index: i,
                reason: e.to_string(),
            });
        }
    }
    v
}
