//! The type schema: types with an IRI, a label, supertypes, required properties and property
//! constraints (datatype, pattern, numeric range).
//!
//! A type's effective constraints are those of the type and all its ancestors: every ancestor's
//! required properties are required, and a property declared by several of them must satisfy every
//! declaration. Supertypes must be defined first, so the hierarchy is acyclic by construction (a
//! redefinition that would close a cycle is refused).

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError, clip};
use crate::id::validate_name;
use crate::value::Datatype;

/// Longest IRI accepted.
pub const MAX_IRI_LEN: usize = 512;
/// Longest pattern accepted, in bytes.
pub const MAX_PATTERN_LEN: usize = 1024;

/// Constraints on one property.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PropertyDef {
    /// Required datatype (`Float` also accepts `Int` values).
    pub datatype: Datatype,
    /// A regular expression (Rust `regex` syntax) the whole value must match; `Text` and `Iri` only.
    pub pattern: Option<String>,
    /// Inclusive lower bound; `Int` and `Float` only.
    pub min: Option<f64>,
    /// Inclusive upper bound; `Int` and `Float` only.
    pub max: Option<f64>,
}

/// A type of the schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TypeDef {
    /// The type's IRI, e.g. `https://schema.org/Person`.
    pub iri: String,
    /// A human-readable label.
    pub label: String,
    /// Direct supertypes (must be defined).
    pub supertypes: BTreeSet<String>,
    /// Properties an entity of this type must have.
    pub required: BTreeSet<String>,
    /// Property constraints declared by this type.
    pub properties: BTreeMap<String, PropertyDef>,
}

/// Validates an IRI: `scheme:rest`, at most 512 bytes, no whitespace, control characters or
/// `<>"{}|\^`` ` (RFC 3987's excluded characters), so it can be used in keys and messages.
///
/// # Errors
/// [`StoreError::InvalidName`].
pub fn validate_iri(iri: &str) -> Result<()> {
    let bad = |reason| {
        Err(StoreError::InvalidName {
            what: "IRI",
            value: clip(iri),
            reason,
        })
    };
    if iri.is_empty() || iri.len() > MAX_IRI_LEN {
        return bad("must be 1 to 512 bytes");
    }
    if iri
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "<>\"{}|\\^`".contains(c))
    {
        return bad("contains whitespace, a control character or one of <>\"{}|\\^`");
    }
    let Some((scheme, _)) = iri.split_once(':') else {
        return bad("has no scheme (scheme:rest)");
    };
    let mut cs = scheme.chars();
    if !cs.next().is_some_and(|c| c.is_ascii_alphabetic())
        || !cs.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        return bad("has an invalid scheme");
    }
    Ok(())
}

/// The schema held in memory (loaded from fjall at open).
#[derive(Default)]
pub(crate) struct Schema {
    pub(crate) types: BTreeMap<String, TypeDef>,
    /// Compiled patterns, keyed by (type IRI, property).
    patterns: BTreeMap<(String, String), Regex>,
}

impl Schema {
    /// Checks a definition against itself and the current schema; returns its compiled patterns.
    pub(crate) fn check(&self, def: &TypeDef) -> Result<Vec<(String, Regex)>> {
        validate_iri(&def.iri)?;
        if def.label.len() > 1024 {
            return Err(StoreError::InvalidInput(
                "label longer than 1024 bytes".into(),
            ));
        }
        for s in &def.supertypes {
            validate_iri(s)?;
            if !self.types.contains_key(s) {
                return Err(StoreError::NotFound {
                    what: "supertype",
                    name: clip(s),
                });
            }
            if s == &def.iri || self.ancestors(s).contains(&def.iri) {
                return Err(StoreError::InvalidInput(format!(
                    "supertype {} would make the hierarchy cyclic",
                    clip(s)
                )));
            }
        }
        let mut compiled = Vec::new();
        for (name, p) in &def.properties {
            validate_name("property name", name)?;
            let numeric = matches!(p.datatype, Datatype::Int | Datatype::Float);
            if (p.min.is_some() || p.max.is_some()) && !numeric {
                return Err(StoreError::InvalidInput(format!(
                    "property {name}: a range needs an Int or Float datatype"
                )));
            }
            for b in [p.min, p.max].into_iter().flatten() {
                if !b.is_finite() {
                    return Err(StoreError::InvalidInput(format!(
                        "property {name}: range bounds must be finite"
                    )));
                }
            }
            if let (Some(lo), Some(hi)) = (p.min, p.max)
                && lo > hi
            {
                return Err(StoreError::InvalidInput(format!(
                    "property {name}: min {lo} is above max {hi}"
                )));
            }
            if let Some(pat) = &p.pattern {
                if !matches!(p.datatype, Datatype::Text | Datatype::Iri) {
                    return Err(StoreError::InvalidInput(format!(
                        "property {name}: a pattern needs a Text or Iri datatype"
                    )));
                }
                if pat.len() > MAX_PATTERN_LEN {
                    return Err(StoreError::LimitExceeded {
                        what: "pattern length",
                        limit: MAX_PATTERN_LEN as u64,
                        actual: pat.len() as u64,
                    });
                }
                let re = regex::RegexBuilder::new(&format!("^(?:{pat})$"))
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| {
                        StoreError::InvalidInput(format!("property {name}: bad pattern: {e}"))
                    })?;
                compiled.push((name.clone(), re));
            }
        }
        let mut declared: BTreeSet<&String> = def.properties.keys().collect();
        for s in &def.supertypes {
            for a in self.ancestors(s).iter().chain([s]) {
                if let Some(t) = self.types.get(a) {
                    declared.extend(t.properties.keys());
                }
            }
        }
        if let Some(r) = def.required.iter().find(|r| !declared.contains(r)) {
            return Err(StoreError::InvalidInput(format!(
                "required property {r} is not declared by the type or a supertype"
            )));
        }
        Ok(compiled)
    }

    pub(crate) fn insert(&mut self, def: TypeDef, compiled: Vec<(String, Regex)>) {
        self.patterns.retain(|(t, _), _| t != &def.iri);
        for (p, re) in compiled {
            self.patterns.insert((def.iri.clone(), p), re);
        }
        self.types.insert(def.iri.clone(), def);
    }

    pub(crate) fn pattern(&self, iri: &str, prop: &str) -> Option<&Regex> {
        self.patterns.get(&(iri.to_owned(), prop.to_owned()))
    }

    /// All (transitive) supertypes of `iri`, not including itself.
    pub(crate) fn ancestors(&self, iri: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut stack = vec![iri.to_owned()];
        while let Some(t) = stack.pop() {
            if let Some(def) = self.types.get(&t) {
                for s in &def.supertypes {
                    if out.insert(s.clone()) {
                        stack.push(s.clone());
                    }
                }
            }
        }
        out
    }

    /// `iri` and all its (transitive) subtypes.
    pub(crate) fn descendants(&self, iri: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::from([iri.to_owned()]);
        loop {
            let before = out.len();
            for (t, def) in &self.types {
                if !out.contains(t) && def.supertypes.iter().any(|s| out.contains(s)) {
                    out.insert(t.clone());
                }
            }
            if out.len() == before {
                return out;
            }
        }
    }
}
