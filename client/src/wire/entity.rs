//! Registering, updating, deleting and reading an entity (a hexad: graph, vector, tensor, semantic).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{
    Access, Base64Bytes, ClientId, ContentHash, EntityId, InvalidInput, TensorPayload, Value,
};

/// The graph modality: the entity's node properties and its outgoing edges.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphPayload {
    /// Node properties.
    #[serde(default)]
    pub properties: BTreeMap<String, Value>,
    /// Outgoing edges (the entity is their source).
    #[serde(default)]
    pub edges: Vec<EdgePayload>,
}

/// One outgoing edge.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgePayload {
    /// Edge type, `[A-Za-z0-9._:/#-]{1,128}`.
    pub predicate: String,
    /// Where the edge points (need not be registered).
    pub target: EntityId,
    /// Edge properties.
    #[serde(default)]
    pub properties: BTreeMap<String, Value>,
}

/// The vector modality: one embedding in a named collection (fixed dimension and metric, created by
/// an operator).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorPayload {
    /// Collection name, `[A-Za-z0-9._:/#-]{1,128}`.
    pub collection: String,
    /// The components; as many as the collection's dimension, all finite.
    pub values: Vec<f32>,
}

/// How a proof blob is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofKind {
    /// `data` is the CBOR of a hash commitment.
    HashCommitment,
    /// `data` is the CBOR of a Merkle inclusion proof.
    MerkleInclusion,
}

/// A proof blob attached to an annotation (checked when the annotation is validated).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofPayload {
    /// What is claimed.
    pub claim: String,
    /// How to check it.
    pub kind: ProofKind,
    /// The kind's CBOR-encoded evidence, base64.
    pub data: Base64Bytes,
}

/// The semantic modality: type IRIs and typed property values, validated against the schema.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SemanticPayload {
    /// Type IRIs (`scheme:rest`).
    pub types: BTreeSet<String>,
    /// Property values.
    #[serde(default)]
    pub properties: BTreeMap<String, Value>,
    /// Proof blobs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub proofs: Vec<ProofPayload>,
}

/// `POST /v1/entities`: register a new entity with all four modalities. The id is the client's, so a
/// retry (same request id) cannot create a second entity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The entity's id.
    pub id: EntityId,
    /// Graph modality.
    pub graph: GraphPayload,
    /// Vector modality.
    pub vector: VectorPayload,
    /// Tensor modality.
    pub tensor: TensorPayload,
    /// Semantic modality.
    pub semantic: SemanticPayload,
}

/// `PUT /v1/entities/{id}` (with `If-Match: <version>`): replace all four modalities.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRequest {
    /// Graph modality.
    pub graph: GraphPayload,
    /// Vector modality.
    pub vector: VectorPayload,
    /// Tensor modality.
    pub tensor: TensorPayload,
    /// Semantic modality.
    pub semantic: SemanticPayload,
}

impl RegisterRequest {
    /// The body of an update of the same entity with the same content.
    #[must_use]
    pub fn into_update(self) -> (EntityId, UpdateRequest) {
        (
            self.id,
            UpdateRequest {
                graph: self.graph,
                vector: self.vector,
                tensor: self.tensor,
                semantic: self.semantic,
            },
        )
    }
}

impl UpdateRequest {
    /// Checks what can be checked without the cluster's schema and collections: finite numbers and
    /// tensor element counts and ranges.
    ///
    /// # Errors
    /// [`InvalidInput`] naming the first problem.
    pub fn check(&self) -> Result<(), InvalidInput> {
        for (k, v) in &self.graph.properties {
            v.check(k)?;
        }
        for e in &self.graph.edges {
            for (k, v) in &e.properties {
                v.check(k)?;
            }
        }
        if let Some(i) = self.vector.values.iter().position(|x| !x.is_finite()) {
            return Err(InvalidInput(format!("vector.values[{i}] is not finite")));
        }
        self.tensor.typed()?;
        for (k, v) in &self.semantic.properties {
            v.check(k)?;
        }
        Ok(())
    }
}

/// Per-modality content hashes, as the registry records them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModalityHashes {
    /// Graph item hash.
    pub graph: ContentHash,
    /// Vector item hash.
    pub vector: ContentHash,
    /// Tensor item hash.
    pub tensor: ContentHash,
    /// Semantic item hash.
    pub semantic: ContentHash,
}

/// `201 Created` (register) or `200 OK` (update): the committed version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityWritten {
    /// The entity.
    pub id: EntityId,
    /// Its version after this write (1 for a registration).
    pub version: u64,
    /// The registry log index that committed it.
    pub index: u64,
    /// The committed content hashes.
    pub hashes: ModalityHashes,
}

/// `200 OK` to `DELETE /v1/entities/{id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityDeleted {
    /// The entity.
    pub id: EntityId,
    /// The version that was deleted.
    pub version: u64,
    /// The registry log index that committed the deletion.
    pub index: u64,
}

/// One modality of a fetched entity, checked against the registry's hash.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModalityView<T> {
    /// The hash the registry committed.
    pub hash: ContentHash,
    /// Whether the returned data hashes to `hash`. Always true unless `?allow_drift=true` was asked:
    /// otherwise a mismatch is answered with `drift_detected` instead.
    pub verified: bool,
    /// The node whose copy is returned.
    pub replica: String,
    /// The data (`null` only with `allow_drift` when no replica holds the item).
    pub data: Option<T>,
}

/// `200 OK` to `GET /v1/entities/{id}`: all four modalities.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityView {
    /// The entity.
    pub id: EntityId,
    /// Its committed version.
    pub version: u64,
    /// The registry log index of that version.
    pub index: u64,
    /// Nodes holding its payload.
    pub placement: Vec<String>,
    /// Graph modality.
    pub graph: ModalityView<GraphPayload>,
    /// Vector modality.
    pub vector: ModalityView<VectorPayload>,
    /// Tensor modality.
    pub tensor: ModalityView<TensorPayload>,
    /// Semantic modality.
    pub semantic: ModalityView<SemanticPayload>,
    /// The client that registered the entity (absent from servers older than ownership).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<ClientId>,
    /// Who else may read or write it: shown to the owner only (absent for anyone else).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<BTreeMap<ClientId, Access>>,
}

impl EntityView {
    /// True when every modality verified against the registry's hash.
    #[must_use]
    pub fn all_verified(&self) -> bool {
        self.graph.verified
            && self.vector.verified
            && self.tensor.verified
            && self.semantic.verified
    }
}
