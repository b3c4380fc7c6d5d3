//! The four modalities of a hexad, named once.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The four modalities of a hexad, in the order the registry and the stores list them.
///
/// Two serde spellings, both kept from before they were one type: the public API's JSON says
/// `"graph"` (snake case), the CBOR between nodes and on disk says `"Graph"` (the variant name).
/// The format chooses (`is_human_readable`), so every byte written stays what it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Modality {
    /// Graph node and its outgoing edges.
    Graph,
    /// The entity's vectors, one per collection.
    Vector,
    /// The entity's tensor.
    Tensor,
    /// The entity's semantic annotation.
    Semantic,
}

impl Modality {
    /// All four, in order.
    pub const ALL: [Self; 4] = [Self::Graph, Self::Vector, Self::Tensor, Self::Semantic];

    /// `graph`, `vector`, `tensor` or `semantic`: in routes, actor names, keyspaces and JSON.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Graph => "graph",
            Self::Vector => "vector",
            Self::Tensor => "tensor",
            Self::Semantic => "semantic",
        }
    }

    /// The modality named `name` (as [`Modality::name`] spells it).
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The BLAKE3 derive-key context of this modality's content hashes
    /// ([`crate::ContentHash::of`]), so the same bytes in two modalities never share a hash.
    #[must_use]
    pub fn hash_domain(self) -> &'static str {
        match self {
            Self::Graph => "verisim stores graph item v1",
            Self::Vector => "verisim stores vector item v1",
            Self::Tensor => "verisim stores tensor item v1",
            Self::Semantic => "verisim stores semantic item v1",
        }
    }
}

impl fmt::Display for Modality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The binary formats' spelling: the variant names.
#[derive(Serialize, Deserialize)]
#[serde(rename = "Modality")]
enum Binary {
    Graph,
    Vector,
    Tensor,
    Semantic,
}

/// The human-readable formats' spelling: snake case.
#[derive(Serialize, Deserialize)]
#[serde(rename = "Modality", rename_all = "snake_case")]
enum Readable {
    Graph,
    Vector,
    Tensor,
    Semantic,
}

impl Serialize for Modality {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            match self {
                Self::Graph => Readable::Graph,
                Self::Vector => Readable::Vector,
                Self::Tensor => Readable::Tensor,
                Self::Semantic => Readable::Semantic,
            }
            .serialize(s)
        } else {
            match self {
                Self::Graph => Binary::Graph,
                Self::Vector => Binary::Vector,
                Self::Tensor => Binary::Tensor,
                Self::Semantic => Binary::Semantic,
            }
            .serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Modality {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(if d.is_human_readable() {
            match Readable::deserialize(d)? {
                Readable::Graph => Self::Graph,
                Readable::Vector => Self::Vector,
                Readable::Tensor => Self::Tensor,
                Readable::Semantic => Self::Semantic,
            }
        } else {
            match Binary::deserialize(d)? {
                Binary::Graph => Self::Graph,
                Binary::Vector => Self::Vector,
                Binary::Tensor => Self::Tensor,
                Binary::Semantic => Self::Semantic,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cbor<T: Serialize>(v: &T) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).unwrap();
        out
    }

    #[test]
    fn names_round_trip_and_order_is_the_registry_order() {
        for m in Modality::ALL {
            assert_eq!(Modality::from_name(m.name()), Some(m));
            assert_eq!(m.to_string(), m.name());
        }
        assert_eq!(Modality::from_name("Graph"), None);
        let mut sorted = Modality::ALL;
        sorted.sort();
        assert_eq!(sorted, Modality::ALL);
    }

    #[test]
    fn json_is_snake_case_and_cbor_the_variant_name() {
        assert_eq!(
            serde_json::to_string(&Modality::Semantic).unwrap(),
            "\"semantic\""
        );
        assert_eq!(
            serde_json::from_str::<Modality>("\"vector\"").unwrap(),
            Modality::Vector
        );
        assert!(serde_json::from_str::<Modality>("\"Vector\"").is_err());
        // CBOR text string "Graph" (0x65 = text of length 5).
        assert_eq!(cbor(&Modality::Graph), b"\x65Graph");
        for m in Modality::ALL {
            assert_eq!(crate::cbor::decode_exact::<Modality>(&cbor(&m)).unwrap(), m);
        }
        assert!(crate::cbor::decode_exact::<Modality>(&cbor(&"graph")).is_err());
    }

    #[test]
    fn hash_domains_are_distinct() {
        let mut d: Vec<_> = Modality::ALL.iter().map(|m| m.hash_domain()).collect();
        d.dedup();
        assert_eq!(d.len(), 4);
    }
}
