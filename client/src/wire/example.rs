//! The example hexad of `verisim dev`, the quick start and the registration benchmark: one place, so
//! that what the docs show is what the tools send.

use super::{
    EdgePayload, EntityId, GraphPayload, IdError, RegisterRequest, SemanticPayload, TensorData,
    TensorPayload, Value, VectorPayload,
};

/// The example hexad `id`: a 128-d vector, 10 edges, a 4×4 tensor and three annotated properties.
///
/// # Errors
/// [`IdError`] when `id` (or an edge target derived from it) is not a valid entity id.
pub fn example_entity(id: &str) -> Result<RegisterRequest, IdError> {
    #[allow(clippy::cast_precision_loss)]
    let vector = (0..128)
        .map(|i| ((i * 37 % 101) as f32) / 101.0 - 0.5)
        .collect();
    #[allow(clippy::cast_precision_loss)]
    let tensor = (0..16).map(|i| i as f32 * 0.5).collect();
    Ok(RegisterRequest {
        id: EntityId::new(id.to_owned())?,
        graph: GraphPayload {
            properties: [("name".to_owned(), Value::Text(id.to_owned()))].into(),
            edges: (0..10)
                .map(|i| {
                    Ok(EdgePayload {
                        predicate: "links".into(),
                        target: EntityId::new(format!("example-target-{i}"))?,
                        properties: Default::default(),
                    })
                })
                .collect::<Result<_, IdError>>()?,
        },
        vector: VectorPayload {
            collection: "default".into(),
            values: vector,
        },
        tensor: TensorPayload::from_typed(vec![4, 4], &TensorData::F32(tensor)),
        semantic: SemanticPayload {
            types: ["ex:Thing".to_owned()].into(),
            properties: [
                ("ex:name".to_owned(), Value::Text(id.to_owned())),
                ("ex:count".to_owned(), Value::Int(3)),
                ("ex:score".to_owned(), Value::Float(0.75)),
            ]
            .into(),
            proofs: vec![],
        },
    })
}
