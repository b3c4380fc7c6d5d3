//! How one hexad registration maps to the four modality items.
//!
//! A registration carries, for one entity id, any of: graph node properties and the entity's
//! **outgoing** edges; one vector per named collection; one tensor; one semantic annotation. Each
//! present part becomes one [`ItemInput`]; each engine's `prepare_item` turns its input into the
//! [`crate::ExportedItem`] (canonical payload + content hash) that the registry records and the
//! store actors import after the commit. A modality with no input has no item: the registry records
//! no hash for it, and an update without it removes the entity's item there.
//!
//! | modality | item input | item = |
//! |---|---|---|
//! | graph | `properties`, `edges` (outgoing, any order) | node properties + outgoing edges sorted by (predicate, target) |
//! | vector | collection → vector | the map collection → little-endian `f32` bytes |
//! | tensor | dtype, shape, little-endian data ([`TensorItem`]) | the same |
//! | semantic | [`Annotation`] | the same |
//!
//! Incoming edges belong to their sources' items: registering `a -knows-> b` changes `a`'s graph
//! item, never `b`'s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::EntityId;
use crate::graph::{OutEdge, Properties};
use crate::modality::ModalityKind;
use crate::semantic::Annotation;
use crate::tensor::TensorItem;

/// The graph part of a hexad.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GraphInput {
    /// Node properties.
    pub properties: Properties,
    /// The entity's outgoing edges, in any order; at most one per (predicate, target).
    pub edges: Vec<OutEdge>,
}

/// A whole hexad registration, before it is split into items.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HexadInput {
    /// The entity.
    pub id: EntityId,
    /// Graph node and outgoing edges.
    pub graph: Option<GraphInput>,
    /// Collection name → vector (empty: no vector item).
    pub vectors: BTreeMap<String, Vec<f32>>,
    /// The tensor.
    pub tensor: Option<TensorItem>,
    /// The semantic annotation.
    pub semantic: Option<Annotation>,
}

/// The input of one engine's `prepare_item`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ItemInput {
    /// For [`crate::GraphStore::prepare_item`].
    Graph {
        /// The entity.
        id: EntityId,
        /// Node properties and outgoing edges.
        graph: GraphInput,
    },
    /// For [`crate::VectorStore::prepare_item`].
    Vector {
        /// The entity.
        id: EntityId,
        /// Collection name → vector.
        vectors: BTreeMap<String, Vec<f32>>,
    },
    /// For [`crate::TensorStore::prepare_encoded`].
    Tensor {
        /// The entity.
        id: EntityId,
        /// The tensor in its wire form.
        tensor: TensorItem,
    },
    /// For [`crate::SemanticStore::prepare_item`].
    Semantic {
        /// The entity.
        id: EntityId,
        /// The annotation.
        annotation: Annotation,
    },
}

impl ItemInput {
    /// The engine this input is for.
    #[must_use]
    pub fn modality(&self) -> ModalityKind {
        match self {
            Self::Graph { .. } => ModalityKind::Graph,
            Self::Vector { .. } => ModalityKind::Vector,
            Self::Tensor { .. } => ModalityKind::Tensor,
            Self::Semantic { .. } => ModalityKind::Semantic,
        }
    }

    /// The entity.
    #[must_use]
    pub fn id(&self) -> &EntityId {
        match self {
            Self::Graph { id, .. }
            | Self::Vector { id, .. }
            | Self::Tensor { id, .. }
            | Self::Semantic { id, .. } => id,
        }
    }
}

impl HexadInput {
    /// The modalities this registration has an item in, in [`ModalityKind`] order.
    #[must_use]
    pub fn modalities(&self) -> Vec<ModalityKind> {
        let present = [
            (ModalityKind::Graph, self.graph.is_some()),
            (ModalityKind::Vector, !self.vectors.is_empty()),
            (ModalityKind::Tensor, self.tensor.is_some()),
            (ModalityKind::Semantic, self.semantic.is_some()),
        ];
        present.into_iter().filter(|p| p.1).map(|p| p.0).collect()
    }

    /// Splits the registration into one input per present modality, in [`ModalityKind`] order
    /// (graph, vector, tensor, semantic).
    #[must_use]
    pub fn into_items(self) -> Vec<ItemInput> {
        let id = self.id;
        let mut out = Vec::with_capacity(4);
        if let Some(graph) = self.graph {
            out.push(ItemInput::Graph {
                id: id.clone(),
                graph,
            });
        }
        if !self.vectors.is_empty() {
            out.push(ItemInput::Vector {
                id: id.clone(),
                vectors: self.vectors,
            });
        }
        if let Some(tensor) = self.tensor {
            out.push(ItemInput::Tensor {
                id: id.clone(),
                tensor,
            });
        }
        if let Some(annotation) = self.semantic {
            out.push(ItemInput::Semantic { id, annotation });
        }
        out
    }
}

#[cfg(test)]
mod tests;
