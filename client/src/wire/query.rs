//! Per-modality queries. All are `POST` with a JSON body (so they are signed like writes).

use serde::{Deserialize, Serialize};

use super::{EntityId, SemanticPayload};

/// `POST /v1/search/vector`: k nearest neighbours in a collection, gathered from every node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorSearchRequest {
    /// Collection name.
    pub collection: String,
    /// The query; as many components as the collection's dimension.
    pub vector: Vec<f32>,
    /// How many hits (1 ..= the server's limit).
    pub k: u32,
    /// Brute force instead of the ANN index (exact, slower).
    #[serde(default)]
    pub exact: bool,
    /// ANN beam width (`null`: the collection's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ef: Option<u32>,
}

/// One k-NN hit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorHit {
    /// The entity.
    pub id: EntityId,
    /// Its distance to the query under the collection's metric; smaller is closer (cosine:
    /// `1 − cos`, l2: Euclidean, dot: `−(a·b)`).
    pub distance: f32,
}

/// `200 OK` to a vector search: hits ordered by distance, then id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorSearchResponse {
    /// At most `k` hits.
    pub hits: Vec<VectorHit>,
}

/// Which edges a graph query follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// source → target (the default).
    #[default]
    Out,
    /// target → source.
    In,
    /// Both.
    Both,
}

/// `POST /v1/graph/neighbours`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphNeighboursRequest {
    /// The entity.
    pub id: EntityId,
    /// Edge direction (default `out`).
    #[serde(default)]
    pub direction: Direction,
    /// Only edges of this type (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate: Option<String>,
}

/// `200 OK` to a neighbours query: distinct neighbours sorted by id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphNeighboursResponse {
    /// The neighbours.
    pub ids: Vec<EntityId>,
}

/// `POST /v1/graph/traverse`: breadth-first, at most `max_hops` hops.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphTraverseRequest {
    /// Where to start.
    pub start: EntityId,
    /// Hop limit (the server caps it).
    pub max_hops: u32,
    /// Edge direction (default `out`).
    #[serde(default)]
    pub direction: Direction,
    /// Only edges of this type (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate: Option<String>,
}

/// One reached entity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traversed {
    /// The entity.
    pub id: EntityId,
    /// Its hop distance from the start (the start is at 0).
    pub depth: u32,
}

/// `200 OK` to a traversal: every reached entity in BFS order, the start first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphTraverseResponse {
    /// The reached entities.
    pub visited: Vec<Traversed>,
}

/// `POST /v1/graph/path`: an unweighted shortest path of at most `max_hops` edges.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphPathRequest {
    /// Start.
    pub from: EntityId,
    /// End.
    pub to: EntityId,
    /// Hop limit (the server caps it).
    pub max_hops: u32,
    /// Edge direction (default `out`).
    #[serde(default)]
    pub direction: Direction,
    /// Only edges of this type (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate: Option<String>,
}

/// `200 OK` to a path query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphPathResponse {
    /// Both ends included (`[from]` if `from == to`); `null` if no path within `max_hops`.
    pub path: Option<Vec<EntityId>>,
}

/// `POST /v1/tensor/slice`: the sub-tensor `[start, end)` along every axis. Answered with a
/// `TensorPayload`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorSliceRequest {
    /// The entity.
    pub id: EntityId,
    /// One `[start, end)` pair per axis, `start <= end <= extent`.
    pub ranges: Vec<[u64; 2]>,
}

/// A reduction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReduceOp {
    /// Sum (integers widen to i64, floats keep their type).
    Sum,
    /// Mean (always f64).
    Mean,
    /// Minimum (the input dtype).
    Min,
    /// Maximum (the input dtype).
    Max,
}

/// `POST /v1/tensor/reduce`: reduce along one axis, which disappears from the shape. Answered with a
/// `TensorPayload`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorReduceRequest {
    /// The entity.
    pub id: EntityId,
    /// The reduction.
    pub op: ReduceOp,
    /// The axis (0-based).
    pub axis: u32,
}

/// `POST /v1/semantic/validate`: check an annotation against the schema; nothing is stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SemanticValidateRequest {
    /// The annotation.
    pub annotation: SemanticPayload,
}

/// One way an annotation breaks the schema (the stores' `Violation`), tagged by `kind`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Violation {
    /// A type the schema does not define.
    UnknownType {
        /// The type IRI.
        iri: String,
    },
    /// A required property is missing.
    MissingRequired {
        /// The type that requires it.
        type_iri: String,
        /// The property.
        property: String,
    },
    /// A property no type declares.
    UndeclaredProperty {
        /// The property.
        property: String,
    },
    /// A value of the wrong datatype.
    WrongDatatype {
        /// The property.
        property: String,
        /// The type that declares it.
        type_iri: String,
        /// Required datatype (`bool`, `int`, `float`, `text`, `iri`, `bytes`).
        expected: String,
        /// Given datatype.
        found: String,
    },
    /// A text value not matching the pattern.
    PatternMismatch {
        /// The property.
        property: String,
        /// The type that declares it.
        type_iri: String,
        /// The pattern.
        pattern: String,
    },
    /// A number outside the range.
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
    /// A proof blob that does not verify.
    InvalidProof {
        /// Its position in `proofs`.
        index: u32,
        /// Why.
        reason: String,
    },
}

/// `200 OK` to a validation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SemanticValidateResponse {
    /// No violations.
    pub valid: bool,
    /// Every violation, in the stores' stable order.
    pub violations: Vec<Violation>,
}

/// `POST /v1/semantic/by-type`: entities annotated with a type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SemanticByTypeRequest {
    /// The type IRI.
    #[serde(rename = "type")]
    pub type_iri: String,
    /// Include entities of its subtypes (default true).
    #[serde(default = "yes")]
    pub include_subtypes: bool,
}

fn yes() -> bool {
    true
}

/// `200 OK` to a by-type query: ids sorted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SemanticByTypeResponse {
    /// The entities.
    pub ids: Vec<EntityId>,
}
