//! Preparing a graph item without writing it: the proxy needs the content hash before it proposes a
//! registration to the quorum, and writes only after the commit (see `docs/stores.md`, "Prepare").

use super::{GraphItem, GraphStore, OutEdge, Properties};
use crate::EntityId;
use crate::error::{Result, StoreError};
use crate::modality::{ExportedItem, ModalityKind};

impl GraphStore {
    /// Validates an entity's graph item — its node properties and its outgoing edges, in any order —
    /// and returns the export that [`crate::Modality::import_item`] would then store, with its
    /// content hash. Writes nothing.
    ///
    /// # Errors
    /// [`StoreError::InvalidInput`] for two edges with the same (predicate, target) or a non-finite
    /// float; [`StoreError::InvalidName`] for a bad predicate or property name;
    /// [`StoreError::LimitExceeded`] for too many edges or oversized properties.
    pub fn prepare_item(
        &self,
        id: &EntityId,
        properties: Properties,
        mut edges: Vec<OutEdge>,
    ) -> Result<ExportedItem> {
        edges.sort_by(|a, b| (&a.predicate, &a.target).cmp(&(&b.predicate, &b.target)));
        if let Some(w) = edges
            .windows(2)
            .find(|w| (&w[0].predicate, &w[0].target) == (&w[1].predicate, &w[1].target))
        {
            return Err(StoreError::InvalidInput(format!(
                "two edges {} -{}-> {}; an entity has at most one edge per (predicate, target)",
                id, w[0].predicate, w[0].target
            )));
        }
        let item = GraphItem { properties, edges };
        self.check_item(&item)?;
        ExportedItem::new(ModalityKind::Graph, id, &item)
    }
}
