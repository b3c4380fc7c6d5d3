//! Validating an annotation against the schema. Every violation is collected (not just the first),
//! in a stable order: unknown types, then per type (closure in IRI order) its missing required
//! properties, then per property (in name order) datatype, pattern and range failures, then proofs.

use std::collections::BTreeSet;

use super::Annotation;
use super::schema::Schema;
use crate::value::{Datatype, Value};
use crate::violation::Violation;

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
