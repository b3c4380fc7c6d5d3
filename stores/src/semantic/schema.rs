//! The type schema: types with an IRI, a label, supertypes, required properties and property
//! constraints (datatype, pattern, numeric range).
//!
//! A type's effective constraints are those of the type and all its ancestors: every ancestor's
//! required properties are required, and a property declared by several of them must satisfy every
//! declaration. Supertypes must be defined first (or in the same `define_types` call), so the
//! hierarchy is acyclic by construction (a redefinition that would close a cycle is refused).
//!
//! A (re)definition is checked against the schema it would produce as a whole ([`Schema::with`]):
//! the defined types and every subtype of them, whose inherited declarations a redefinition can take
//! away (a supertype that stops declaring a property a subtype requires is refused). Loading at
//! open is lenient instead ([`Schema::load`]): a stored schema that breaks these rules (written
//! before they were checked, or damaged on disk) is loaded as well as it can be and its problems
//! are reported, because refusing to open would make the store unusable until someone edited its
//! files by hand.

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
#[derive(Clone, Default)]
pub(crate) struct Schema {
    pub(crate) types: BTreeMap<String, TypeDef>,
    /// Compiled patterns, keyed by (type IRI, property).
    patterns: BTreeMap<(String, String), Regex>,
    /// Stored definitions that did not decode or do not pass their own checks, found at load, by
    /// key: a problem until the type is defined again.
    broken: BTreeMap<String, String>,
}

/// What can be wrong with a type's place in a hierarchy (see [`hierarchy_problems`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Problem {
    /// A direct supertype is not defined.
    MissingSupertype(String),
    /// The type is its own ancestor.
    Cycle,
    /// A required property that neither the type nor an ancestor declares (no annotation could
    /// satisfy the type: without the property it is missing, with it it is undeclared).
    UndeclaredRequired(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MissingSupertype(s) => write!(f, "supertype {} is not defined", clip(s)),
            Self::Cycle => write!(f, "the hierarchy would be cyclic through it"),
            Self::UndeclaredRequired(r) => write!(
                f,
                "required property {r} is not declared by the type or a supertype"
            ),
        }
    }
}

impl Schema {
    /// Checks what a definition says about itself (IRIs, label, property constraints, patterns),
    /// not its place in the hierarchy; returns its compiled patterns.
    fn check_own(def: &TypeDef) -> Result<Vec<(String, Regex)>> {
        validate_iri(&def.iri)?;
        if def.label.len() > 1024 {
            return Err(StoreError::InvalidInput(
                "label longer than 1024 bytes".into(),
            ));
        }
        for s in &def.supertypes {
            validate_iri(s)?;
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
                compiled.push((name.clone(), compile(name, pat)?));
            }
        }
        Ok(compiled)
    }

    /// The schema with `defs` (re)defined, checked as a whole: each definition must be sound by
    /// itself and in the resulting hierarchy (supertypes defined, no cycle, every required
    /// property declared), and no other type may get a problem it does not have now — which is
    /// how redefining a supertype could break a subtype that relies on what it inherits.
    /// Problems a type already has (a schema stored before this check existed) do not block the
    /// change, so a broken schema can always be repaired.
    ///
    /// `defs` may redefine a supertype and its subtypes together (a schema migration): only the
    /// end result is checked, in any order.
    pub(crate) fn with(&self, defs: &[TypeDef]) -> Result<Self> {
        let mut next = self.clone();
        for def in defs {
            let compiled = Self::check_own(def)?;
            next.insert(def.clone(), compiled);
        }
        let defined: BTreeSet<&str> = defs.iter().map(|d| d.iri.as_str()).collect();
        for def in defs {
            if let Some(p) = hierarchy_problems(&next.types, &def.iri).into_iter().next() {
                return Err(match p {
                    Problem::MissingSupertype(s) => StoreError::NotFound {
                        what: "supertype",
                        name: clip(&s),
                    },
                    p => StoreError::InvalidInput(format!("type {}: {p}", clip(&def.iri))),
                });
            }
        }
        let mut affected = BTreeSet::new();
        for def in defs {
            affected.extend(next.descendants(&def.iri));
        }
        for t in affected.iter().filter(|t| !defined.contains(t.as_str())) {
            let before = hierarchy_problems(&self.types, t);
            if let Some(p) = hierarchy_problems(&next.types, t)
                .into_iter()
                .find(|p| !before.contains(p))
            {
                let what: Vec<&str> = defined.iter().copied().collect();
                return Err(StoreError::InvalidInput(format!(
                    "defining {} would break its subtype {}: {p}",
                    clip(&what.join(", ")),
                    clip(t)
                )));
            }
        }
        Ok(next)
    }

    /// Builds the schema from stored definitions, never failing: a definition that does not pass
    /// the checks of [`Schema::with`] is still loaded (without the patterns that do not compile,
    /// which then match nothing: validation fails closed), one that does not decode is skipped, and
    /// every problem is returned for the caller to report. `stored` is (key, decoded definition or
    /// why it did not decode).
    pub(crate) fn load(stored: Vec<(String, Result<TypeDef>)>) -> (Self, Vec<String>) {
        let mut schema = Self::default();
        for (key, def) in stored {
            match def {
                Ok(d) if d.iri == key => {
                    schema.types.insert(key, d);
                }
                Ok(d) => {
                    let p = format!("stored under another key: {}; skipped", clip(&d.iri));
                    schema.broken.insert(key, p);
                }
                Err(e) => {
                    schema
                        .broken
                        .insert(key, format!("does not decode ({e}); skipped"));
                }
            }
        }
        let defs: Vec<TypeDef> = schema.types.values().cloned().collect();
        for d in defs {
            match Self::check_own(&d) {
                Ok(compiled) => schema.insert(d, compiled),
                Err(e) => {
                    schema.broken.insert(d.iri.clone(), e.to_string());
                    // Keep the patterns that do compile.
                    for (name, p) in &d.properties {
                        if let Some(re) = p.pattern.as_ref().and_then(|pat| compile(name, pat).ok())
                        {
                            schema.patterns.insert((d.iri.clone(), name.clone()), re);
                        }
                    }
                }
            }
        }
        let problems = schema.problems();
        (schema, problems)
    }

    /// Every problem of the schema: definitions found broken at load and not redefined since, then
    /// hierarchy problems (see [`hierarchy_problems`]), by type IRI.
    pub(crate) fn problems(&self) -> Vec<String> {
        let broken = self
            .broken
            .iter()
            .map(|(t, p)| format!("type {}: {p}", clip(t)));
        let hierarchy = self.types.keys().flat_map(|t| {
            hierarchy_problems(&self.types, t)
                .into_iter()
                .map(move |p| format!("type {}: {p}", clip(t)))
        });
        broken.chain(hierarchy).collect()
    }

    fn insert(&mut self, def: TypeDef, compiled: Vec<(String, Regex)>) {
        self.broken.remove(&def.iri);
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
        ancestors(&self.types, iri)
    }

    /// `iri` and all its (transitive) subtypes.
    pub(crate) fn descendants(&self, iri: &str) -> BTreeSet<String> {
        descendants(&self.types, iri)
    }
}

/// Compiles a property pattern, anchored to match the whole value.
fn compile(name: &str, pat: &str) -> Result<Regex> {
    regex::RegexBuilder::new(&format!("^(?:{pat})$"))
        .size_limit(1 << 20)
        .build()
        .map_err(|e| StoreError::InvalidInput(format!("property {name}: bad pattern: {e}")))
}

/// All (transitive) supertypes of `iri` in `types`, not including itself (unless the hierarchy is
/// cyclic through it). Terminates on any map, cyclic or not.
fn ancestors(types: &BTreeMap<String, TypeDef>, iri: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![iri.to_owned()];
    while let Some(t) = stack.pop() {
        if let Some(def) = types.get(&t) {
            for s in &def.supertypes {
                if out.insert(s.clone()) {
                    stack.push(s.clone());
                }
            }
        }
    }
    out
}

/// `iri` and all its (transitive) subtypes in `types`.
fn descendants(types: &BTreeMap<String, TypeDef>, iri: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::from([iri.to_owned()]);
    loop {
        let before = out.len();
        for (t, def) in types {
            if !out.contains(t) && def.supertypes.iter().any(|s| out.contains(s)) {
                out.insert(t.clone());
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

/// What is wrong with type `iri`'s place in the hierarchy `types`: a supertype that is not defined,
/// a cycle through it, a required property that neither it nor an ancestor declares. Empty for a
/// sound type (and for an unknown one).
fn hierarchy_problems(types: &BTreeMap<String, TypeDef>, iri: &str) -> Vec<Problem> {
    let Some(def) = types.get(iri) else {
        return Vec::new();
    };
    let mut out: Vec<Problem> = def
        .supertypes
        .iter()
        .filter(|s| !types.contains_key(*s))
        .map(|s| Problem::MissingSupertype(s.clone()))
        .collect();
    let anc = ancestors(types, iri);
    if anc.contains(iri) {
        out.push(Problem::Cycle);
    }
    let declared: BTreeSet<&String> = anc
        .iter()
        .chain([&def.iri])
        .filter_map(|t| types.get(t))
        .flat_map(|t| t.properties.keys())
        .collect();
    out.extend(
        def.required
            .iter()
            .filter(|r| !declared.contains(r))
            .map(|r| Problem::UndeclaredRequired(r.clone())),
    );
    out
}
