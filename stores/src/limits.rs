//! Configurable size limits, checked by every engine before it writes. Its public path is
//! `db::Limits` (or the crate root).

/// Configurable size limits. Anything above a limit is refused with
/// [`crate::StoreError::LimitExceeded`] before anything is written. Deserialises with every field
/// optional (missing ones take the default), as the node config's `[stores.limits]` section.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest vector dimension a collection may declare.
    pub max_vector_dim: usize,
    /// Most vector collections.
    pub max_collections: usize,
    /// Largest number of elements in one tensor.
    pub max_tensor_elements: u64,
    /// Largest tensor payload, in bytes.
    pub max_tensor_bytes: u64,
    /// Largest tensor rank (number of axes).
    pub max_tensor_rank: usize,
    /// Target size of one stored tensor chunk, in bytes.
    pub tensor_chunk_bytes: usize,
    /// Largest encoded annotation (types, properties and proofs), in bytes.
    pub max_annotation_bytes: usize,
    /// Largest encoded property map of a graph node or edge, in bytes.
    pub max_properties_bytes: usize,
    /// Most outgoing edges per entity.
    pub max_out_edges: usize,
    /// Most hops of a traversal or shortest-path search.
    pub max_hops: u32,
    /// Most nodes a traversal or shortest-path search may visit.
    pub max_visited: usize,
    /// Largest `k` of a vector search.
    pub max_k: usize,
    /// Largest HNSW beam width `ef` of a vector search (the requested one, or the collection's
    /// default): a search explores about `ef` nodes per result list, so an unbounded `ef` would let
    /// one query scan the whole graph. A larger `ef` is refused, not clamped, so a caller never gets
    /// a lower recall than it asked for without knowing.
    pub max_ef: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_vector_dim: 4096,
            max_collections: 1024,
            max_tensor_elements: 64 * 1024 * 1024,
            max_tensor_bytes: 256 * 1024 * 1024,
            max_tensor_rank: 8,
            tensor_chunk_bytes: 64 * 1024,
            max_annotation_bytes: 1024 * 1024,
            max_properties_bytes: 64 * 1024,
            max_out_edges: 100_000,
            max_hops: 16,
            max_visited: 1_000_000,
            max_k: 10_000,
            max_ef: 10_000,
        }
    }
}
