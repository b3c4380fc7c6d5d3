//! Between the public JSON types (`verisim-client`'s `wire`) and the stores' types: the client crate
//! cannot depend on the stores (it must build for wasm32), so the proxy translates payloads at the
//! edge. Ids need no translation: both sides use `verisim-vocab`'s, validated once when parsed.

use std::collections::BTreeMap;

use verisim_client::wire as w;
use verisim_stores::Value;
use verisim_stores::codec::Bytes;
use verisim_stores::graph::{GraphItem, OutEdge, Properties};
use verisim_stores::hexad::GraphInput;
use verisim_stores::semantic::{Annotation, ProofBlob, ProofKind};
use verisim_stores::tensor::{Tensor, TensorData, TensorItem};
use verisim_stores::vector::VectorItem;

use super::error::ApiError;

fn value_in(v: &w::Value) -> Value {
    match v {
        w::Value::Bool(b) => Value::Bool(*b),
        w::Value::Int(i) => Value::Int(*i),
        w::Value::Float(f) => Value::Float(*f),
        w::Value::Text(s) => Value::Text(s.clone()),
        w::Value::Iri(s) => Value::Iri(s.clone()),
        w::Value::Bytes(b) => Value::Bytes(Bytes(b.0.clone())),
    }
}

fn value_out(v: &Value) -> w::Value {
    match v {
        Value::Bool(b) => w::Value::Bool(*b),
        Value::Int(i) => w::Value::Int(*i),
        Value::Float(f) => w::Value::Float(*f),
        Value::Text(s) => w::Value::Text(s.clone()),
        Value::Iri(s) => w::Value::Iri(s.clone()),
        Value::Bytes(b) => w::Value::Bytes(w::Base64Bytes(b.0.clone())),
    }
}

fn props_in(p: &BTreeMap<String, w::Value>) -> Properties {
    p.iter().map(|(k, v)| (k.clone(), value_in(v))).collect()
}

fn props_out(p: &Properties) -> BTreeMap<String, w::Value> {
    p.iter().map(|(k, v)| (k.clone(), value_out(v))).collect()
}

/// An entity id of the wire as the stores' (same alphabet; checked again).
pub fn access_in(a: w::Access) -> crate::registry::Access {
    match a {
        w::Access::Read => crate::registry::Access::Read,
        w::Access::Write => crate::registry::Access::Write,
    }
}

pub fn access_out(a: crate::registry::Access) -> w::Access {
    match a {
        crate::registry::Access::Read => w::Access::Read,
        crate::registry::Access::Write => w::Access::Write,
    }
}

/// An entity's grants as the owner sees them in `GET /v1/entities/{id}`.
/// Ids are `verisim-vocab`'s on both sides: only the access level changes type.
pub fn grants_out(
    grants: &std::collections::BTreeMap<crate::registry::ClientId, crate::registry::Access>,
) -> std::collections::BTreeMap<w::ClientId, w::Access> {
    grants
        .iter()
        .map(|(c, a)| (c.clone(), access_out(*a)))
        .collect()
}

pub fn graph_in(g: &w::GraphPayload) -> Result<GraphInput, ApiError> {
    let edges = g
        .edges
        .iter()
        .map(|e| {
            Ok(OutEdge {
                predicate: e.predicate.clone(),
                target: e.target.clone(),
                properties: props_in(&e.properties),
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(GraphInput {
        properties: props_in(&g.properties),
        edges,
    })
}

pub fn graph_out(g: &GraphItem) -> Result<w::GraphPayload, ApiError> {
    let edges = g
        .edges
        .iter()
        .map(|e| {
            Ok(w::EdgePayload {
                predicate: e.predicate.clone(),
                target: w::EntityId::new(e.target.as_str())
                    .map_err(|e| ApiError::internal(e.to_string()))?,
                properties: props_out(&e.properties),
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(w::GraphPayload {
        properties: props_out(&g.properties),
        edges,
    })
}

pub fn vector_in(v: &w::VectorPayload) -> BTreeMap<String, Vec<f32>> {
    BTreeMap::from([(v.collection.clone(), v.values.clone())])
}

/// The entity's vector item as the one-collection payload of the API.
pub fn vector_out(v: &VectorItem) -> Result<w::VectorPayload, ApiError> {
    let mut it = v.vectors.iter();
    let (Some((collection, bytes)), None) = (it.next(), it.next()) else {
        return Err(ApiError::internal(format!(
            "the vector item holds {} collections; the API carries one",
            v.vectors.len()
        )));
    };
    let values = bytes
        .0
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(w::VectorPayload {
        collection: collection.clone(),
        values,
    })
}

pub fn tensor_in(t: &w::TensorPayload) -> Result<TensorItem, ApiError> {
    let data = match t.typed().map_err(|e| ApiError::invalid(e.0))? {
        w::TensorData::F32(v) => TensorData::F32(v),
        w::TensorData::F64(v) => TensorData::F64(v),
        w::TensorData::I32(v) => TensorData::I32(v),
        w::TensorData::I64(v) => TensorData::I64(v),
        w::TensorData::U8(v) => TensorData::U8(v),
        w::TensorData::Bool(v) => TensorData::Bool(v),
    };
    Ok(TensorItem::from(&Tensor {
        shape: t.shape.clone(),
        data,
    }))
}

pub fn tensor_out(t: &Tensor) -> w::TensorPayload {
    let data = match &t.data {
        TensorData::F32(v) => w::TensorData::F32(v.clone()),
        TensorData::F64(v) => w::TensorData::F64(v.clone()),
        TensorData::I32(v) => w::TensorData::I32(v.clone()),
        TensorData::I64(v) => w::TensorData::I64(v.clone()),
        TensorData::U8(v) => w::TensorData::U8(v.clone()),
        TensorData::Bool(v) => w::TensorData::Bool(v.clone()),
    };
    w::TensorPayload::from_typed(t.shape.clone(), &data)
}

pub fn semantic_in(s: &w::SemanticPayload) -> Annotation {
    Annotation {
        types: s.types.clone(),
        properties: props_in(&s.properties),
        proofs: s
            .proofs
            .iter()
            .map(|p| ProofBlob {
                claim: p.claim.clone(),
                kind: match p.kind {
                    w::ProofKind::HashCommitment => ProofKind::HashCommitment,
                    w::ProofKind::MerkleInclusion => ProofKind::MerkleInclusion,
                },
                data: Bytes(p.data.0.clone()),
            })
            .collect(),
    }
}

pub fn semantic_out(a: &Annotation) -> w::SemanticPayload {
    w::SemanticPayload {
        types: a.types.clone(),
        properties: props_out(&a.properties),
        proofs: a
            .proofs
            .iter()
            .map(|p| w::ProofPayload {
                claim: p.claim.clone(),
                kind: match p.kind {
                    ProofKind::HashCommitment => w::ProofKind::HashCommitment,
                    ProofKind::MerkleInclusion => w::ProofKind::MerkleInclusion,
                },
                data: w::Base64Bytes(p.data.0.clone()),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_through_the_store_types() {
        let g = w::GraphPayload {
            properties: BTreeMap::from([("name".into(), w::Value::Text("Ada".into()))]),
            edges: vec![w::EdgePayload {
                predicate: "knows".into(),
                target: w::EntityId::new("e2").unwrap(),
                properties: BTreeMap::from([("since".into(), w::Value::Int(1843))]),
            }],
        };
        let input = graph_in(&g).unwrap();
        let item = GraphItem {
            properties: input.properties,
            edges: input.edges,
        };
        assert_eq!(graph_out(&item).unwrap(), g);

        let t = w::TensorPayload::from_typed(vec![2, 2], &w::TensorData::I32(vec![1, -2, 3, 4]));
        let item = tensor_in(&t).unwrap();
        assert_eq!(tensor_out(&item.to_tensor().unwrap()), t);

        let s = w::SemanticPayload {
            types: ["schema:Person".to_string()].into(),
            properties: BTreeMap::from([("schema:age".into(), w::Value::Float(36.5))]),
            proofs: vec![],
        };
        assert_eq!(semantic_out(&semantic_in(&s)), s);

        let v = w::VectorPayload {
            collection: "default".into(),
            values: vec![0.5, -1.0, 3.25],
        };
        let bytes = v.values.iter().flat_map(|x| x.to_le_bytes()).collect();
        let item = VectorItem {
            vectors: BTreeMap::from([("default".to_string(), Bytes(bytes))]),
        };
        assert_eq!(vector_out(&item).unwrap(), v);
        assert_eq!(vector_in(&v)["default"], v.values);
    }
}
