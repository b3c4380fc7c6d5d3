//! The `[stores]` section of the node configuration (identical on every node): size limits, the
//! vector collections, the semantic schema file. Resolved once at node start into a [`StoreSetup`],
//! which every store actor applies idempotently when it starts.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use verisim_stores::Limits;
use verisim_stores::semantic::TypeDef;
use verisim_stores::vector::{CollectionDef, Metric};

/// `[stores]` in the node config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoresSettings {
    /// `[stores.limits]`: every field of `verisim_stores::Limits`, each optional.
    pub limits: Limits,
    /// Vector collections (`[[stores.collections]]`); default: `default`, 128-d, cosine.
    pub collections: Vec<CollectionSetting>,
    /// Semantic type definitions: a JSON file (`.json`: a list of types, or `{"types": [...]}`) or
    /// a TOML file (`[[types]]` tables).
    pub schema_file: Option<PathBuf>,
    /// fjall block cache for the stores, in bytes (`None`: fjall's default).
    pub cache_bytes: Option<u64>,
}

/// One vector collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionSetting {
    pub name: String,
    pub dimension: u32,
    pub metric: MetricName,
}

/// A metric as written in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricName {
    Cosine,
    L2,
    Dot,
}

impl From<MetricName> for Metric {
    fn from(m: MetricName) -> Self {
        match m {
            MetricName::Cosine => Metric::Cosine,
            MetricName::L2 => Metric::L2,
            MetricName::Dot => Metric::Dot,
        }
    }
}

impl Default for StoresSettings {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            collections: vec![CollectionSetting {
                name: "default".into(),
                dimension: 128,
                metric: MetricName::Cosine,
            }],
            schema_file: None,
            cache_bytes: None,
        }
    }
}

/// The resolved configuration the store actors apply at start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreSetup {
    pub limits: Limits,
    pub collections: Vec<(String, CollectionDef)>,
    /// Ordered so that every type comes after its supertypes.
    pub types: Vec<TypeDef>,
}

/// A `[stores]` section that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoresSettingsError {
    #[error("reading the schema file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("schema file {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("stores: {0}")]
    Invalid(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SchemaFile {
    types: Vec<TypeDef>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum JsonSchema {
    List(Vec<TypeDef>),
    File(SchemaFile),
}

impl StoresSettings {
    /// Checks the section and reads the schema file.
    ///
    /// # Errors
    /// A duplicate or empty collection, an unreadable or malformed schema file, a type whose
    /// supertype is neither in the file nor earlier in it (cycles included).
    pub fn resolve(&self) -> Result<StoreSetup, StoresSettingsError> {
        let mut names = BTreeSet::new();
        for c in &self.collections {
            if !names.insert(&c.name) {
                return Err(StoresSettingsError::Invalid(format!(
                    "collection {:?} is listed twice",
                    c.name
                )));
            }
            if c.dimension == 0 {
                return Err(StoresSettingsError::Invalid(format!(
                    "collection {:?} has dimension 0",
                    c.name
                )));
            }
        }
        let types = match &self.schema_file {
            Some(path) => order_types(read_schema(path)?)?,
            None => Vec::new(),
        };
        Ok(StoreSetup {
            limits: self.limits.clone(),
            collections: self
                .collections
                .iter()
                .map(|c| {
                    (
                        c.name.clone(),
                        CollectionDef {
                            dim: c.dimension,
                            metric: c.metric.into(),
                        },
                    )
                })
                .collect(),
            types,
        })
    }
}

fn read_schema(path: &Path) -> Result<Vec<TypeDef>, StoresSettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| StoresSettingsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let parse = |reason: String| StoresSettingsError::Parse {
        path: path.to_owned(),
        reason,
    };
    if path.extension().is_some_and(|e| e == "json") {
        match serde_json::from_str::<JsonSchema>(&text).map_err(|e| parse(e.to_string()))? {
            JsonSchema::List(t) => Ok(t),
            JsonSchema::File(f) => Ok(f.types),
        }
    } else {
        let f: SchemaFile = toml::from_str(&text).map_err(|e| parse(e.to_string()))?;
        Ok(f.types)
    }
}

/// Orders types so each follows its supertypes (the engine refuses a type whose supertype is
/// unknown).
fn order_types(mut rest: Vec<TypeDef>) -> Result<Vec<TypeDef>, StoresSettingsError> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::with_capacity(rest.len());
    while !rest.is_empty() {
        let before = rest.len();
        let (ready, wait): (Vec<TypeDef>, Vec<TypeDef>) = rest
            .into_iter()
            .partition(|t| t.supertypes.iter().all(|s| done.contains(s)));
        for t in ready {
            if !done.insert(t.iri.clone()) {
                return Err(StoresSettingsError::Invalid(format!(
                    "type {} is defined twice in the schema file",
                    t.iri
                )));
            }
            out.push(t);
        }
        if wait.len() == before {
            let iris: Vec<&str> = wait.iter().map(|t| t.iri.as_str()).collect();
            return Err(StoresSettingsError::Invalid(format!(
                "types with undefined or cyclic supertypes: {iris:?}"
            )));
        }
        rest = wait;
    }
    Ok(out)
}
