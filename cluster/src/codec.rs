//! CBOR wire codec for messages that cross ractor_cluster.
//!
//! ractor_cluster moves opaque byte vectors; a message field that crosses the wire must implement
//! [`ractor::BytesConvertable`], whose `from_bytes` cannot return an error. [`Cbor<T>`] therefore
//! carries the *encoded* bytes and decodes on demand: converting to and from the wire never fails
//! and never panics, and a malformed payload surfaces as a typed [`CodecError`] in the receiving
//! actor's handler, where it can be logged and dropped.
//!
//! Decoding checks full consumption (trailing bytes are malformed) and a size limit, so a peer
//! cannot make us parse more than we agreed to.

use std::fmt;
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;
use verisim_vocab::cbor::CborError;

/// Largest encoded message accepted by [`Cbor::encode`] and [`Cbor::decode`] by default: 8 MiB,
/// half of ractor_cluster's default 16 MiB inbound frame cap, leaving room for the frame's own
/// envelope. Anything larger goes through [`crate::chunk`].
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;

/// Why a value could not be encoded or decoded.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// The encoded form is larger than the limit.
    #[error("encoded message is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Size of the encoded message.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The value could not be serialized.
    #[error("cannot encode message: {0}")]
    Encode(String),
    /// The bytes are not a valid CBOR encoding of the expected type.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A valid value was followed by extra bytes.
    #[error("malformed message: {trailing} trailing bytes after the value")]
    TrailingBytes {
        /// Number of bytes left after the value.
        trailing: usize,
    },
}

/// Encode `value` as CBOR, refusing results larger than `limit` bytes.
pub fn encode<T: Serialize + ?Sized>(value: &T, limit: usize) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(value, &mut out).map_err(|e| CodecError::Encode(e.to_string()))?;
    if out.len() > limit {
        return Err(CodecError::TooLarge {
            size: out.len(),
            limit,
        });
    }
    Ok(out)
}

/// Decode one CBOR value of type `T` that must span all of `bytes`, which must be at most `limit`
/// bytes long.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, CodecError> {
    verisim_vocab::cbor::decode_limited(bytes, limit).map_err(|e| match e {
        CborError::TooLarge { size, limit } => CodecError::TooLarge { size, limit },
        CborError::Malformed(reason) => CodecError::Malformed(reason),
        CborError::TrailingBytes(trailing) => CodecError::TrailingBytes { trailing },
    })
}

/// A CBOR-encoded `T` on its way across the cluster.
///
/// Use it as a field of a `#[derive(RactorClusterMessage)]` enum (or as an RPC reply type):
///
/// ```
/// use ractor_cluster::RactorClusterMessage;
/// use verisim_cluster::Cbor;
///
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// struct Vote { term: u64, granted: bool }
///
/// #[derive(RactorClusterMessage)]
/// enum PeerMsg {
///     Vote(Cbor<Vote>),
/// }
///
/// let wire = Cbor::encode(&Vote { term: 3, granted: true }).unwrap();
/// let msg = PeerMsg::Vote(wire);
/// let PeerMsg::Vote(wire) = msg;
/// assert_eq!(wire.decode().unwrap(), Vote { term: 3, granted: true });
/// ```
pub struct Cbor<T> {
    bytes: Vec<u8>,
    // `fn() -> T` keeps `Cbor<T>` Send + Sync whatever `T` is: we never hold a `T`.
    _type: PhantomData<fn() -> T>,
}

impl<T> Cbor<T> {
    /// Wrap bytes received from elsewhere (e.g. reassembled chunks); they are checked on decode.
    pub fn from_encoded(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            _type: PhantomData,
        }
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The encoded bytes, by value.
    pub fn into_encoded(self) -> Vec<u8> {
        self.bytes
    }

    /// Size of the encoded form in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the encoded form is empty (never a valid CBOR value).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl<T: Serialize> Cbor<T> {
    /// Encode `value`, refusing anything over [`DEFAULT_MAX_MESSAGE_BYTES`].
    pub fn encode(value: &T) -> Result<Self, CodecError> {
        Self::encode_with_limit(value, DEFAULT_MAX_MESSAGE_BYTES)
    }

    /// Encode `value`, refusing anything over `limit` bytes.
    pub fn encode_with_limit(value: &T, limit: usize) -> Result<Self, CodecError> {
        encode(value, limit).map(Self::from_encoded)
    }
}

impl<T: DeserializeOwned> Cbor<T> {
    /// Decode, refusing anything over [`DEFAULT_MAX_MESSAGE_BYTES`] or with trailing bytes.
    pub fn decode(&self) -> Result<T, CodecError> {
        self.decode_with_limit(DEFAULT_MAX_MESSAGE_BYTES)
    }

    /// Decode, refusing anything over `limit` bytes or with trailing bytes.
    pub fn decode_with_limit(&self, limit: usize) -> Result<T, CodecError> {
        decode(&self.bytes, limit)
    }
}

impl<T> Clone for Cbor<T> {
    fn clone(&self) -> Self {
        Self::from_encoded(self.bytes.clone())
    }
}

impl<T> PartialEq for Cbor<T> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl<T> Eq for Cbor<T> {}

impl<T> fmt::Debug for Cbor<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Cbor<{}>({} bytes)",
            std::any::type_name::<T>(),
            self.bytes.len()
        )
    }
}

// The wire form is the CBOR bytes themselves: nothing here can fail, so nothing panics inside
// ractor_cluster's (de)serialization path.
impl<T> ractor::BytesConvertable for Cbor<T> {
    fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    fn from_bytes(bytes: Vec<u8>) -> Self {
        Self::from_encoded(bytes)
    }
}

/// Serde helper that encodes a `Vec<u8>` as one CBOR byte string instead of an array of integers
/// (which costs up to two bytes per byte). Use it on every bulk byte field:
/// `#[serde(with = "verisim_cluster::codec::bytes")]`.
pub mod bytes {
    use std::fmt;

    use serde::de::{self, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    /// Serialize as a byte string.
    pub fn serialize<S: Serializer>(value: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(value)
    }

    /// Deserialize from a byte string (or, for tolerance, an array of integers).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        deserializer.deserialize_byte_buf(BytesVisitor)
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            // Cap the preallocation: the length is the peer's claim, not a fact.
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
            while let Some(b) = seq.next_element::<u8>()? {
                out.push(b);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use ractor::BytesConvertable;
    use serde::Deserialize;

    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
    struct Sample {
        term: u64,
        name: String,
        data: Vec<u8>,
        tags: BTreeMap<String, i64>,
        nested: Option<Box<Sample>>,
    }

    fn sample() -> Sample {
        Sample {
            term: 7,
            name: "n1".into(),
            data: vec![1, 2, 3],
            tags: BTreeMap::from([("a".into(), -1), ("b".into(), 2)]),
            nested: Some(Box::new(Sample {
                term: 1,
                name: String::new(),
                data: vec![],
                tags: BTreeMap::new(),
                nested: None,
            })),
        }
    }

    #[test]
    fn round_trip_through_bytes_convertable() {
        let wire = Cbor::encode(&sample()).unwrap();
        let bytes = wire.clone().into_bytes();
        let back = <Cbor<Sample> as BytesConvertable>::from_bytes(bytes);
        assert_eq!(back, wire);
        assert_eq!(back.decode().unwrap(), sample());
    }

    #[derive(ractor_cluster::RactorClusterMessage)]
    enum WireMsg {
        Sample(Cbor<Sample>, u64),
    }

    #[test]
    fn round_trip_through_ractor_cluster_message_serialization() {
        use ractor::Message;
        let msg = WireMsg::Sample(Cbor::encode(&sample()).unwrap(), 42);
        assert!(WireMsg::serializable());
        let serialized = msg.serialize().unwrap();
        let WireMsg::Sample(wire, n) = WireMsg::deserialize(serialized).unwrap();
        assert_eq!(n, 42);
        assert_eq!(wire.decode().unwrap(), sample());

        // Garbage in the CBOR field still deserializes the message (no panic inside ractor);
        // the receiving handler gets the typed error from `decode`.
        let garbage = ractor::message::SerializedMessage::Cast {
            variant: "Sample".into(),
            args: {
                let mut a = Vec::new();
                a.extend(3u64.to_be_bytes());
                a.extend([0xff, 0x00, 0x13]);
                a.extend(8u64.to_be_bytes());
                a.extend(7u64.to_be_bytes());
                a
            },
            metadata: None,
        };
        let WireMsg::Sample(wire, n) = WireMsg::deserialize(garbage).unwrap();
        assert_eq!(n, 7);
        assert!(matches!(wire.decode(), Err(CodecError::Malformed(_))));
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = encode(&sample(), usize::MAX).unwrap();
        bytes.push(0x00);
        assert_eq!(
            decode::<Sample>(&bytes, usize::MAX),
            Err(CodecError::TrailingBytes { trailing: 1 })
        );
        // Two valid values back to back are also one value too many.
        let mut two = encode(&5u32, usize::MAX).unwrap();
        two.extend(encode(&6u32, usize::MAX).unwrap());
        assert!(matches!(
            decode::<u32>(&two, usize::MAX),
            Err(CodecError::TrailingBytes { trailing: 1 })
        ));
    }

    #[test]
    fn oversize_is_rejected_both_ways() {
        let big = vec![0u8; 1000];
        assert!(matches!(
            encode(&big, 100),
            Err(CodecError::TooLarge { limit: 100, .. })
        ));
        let bytes = encode(&big, usize::MAX).unwrap();
        assert!(matches!(
            decode::<Vec<u8>>(&bytes, 100),
            Err(CodecError::TooLarge { limit: 100, .. })
        ));
        assert!(Cbor::<Vec<u8>>::from_encoded(bytes).decode().is_ok());
    }

    #[test]
    fn truncated_and_garbage_are_malformed() {
        let bytes = encode(&sample(), usize::MAX).unwrap();
        for cut in 0..bytes.len() {
            assert!(
                matches!(
                    decode::<Sample>(&bytes[..cut], usize::MAX),
                    Err(CodecError::Malformed(_))
                ),
                "prefix of {cut} bytes decoded"
            );
        }
        // A map where a struct of different shape is expected.
        let other = encode(&BTreeMap::from([(1u8, 2u8)]), usize::MAX).unwrap();
        assert!(matches!(
            decode::<Sample>(&other, usize::MAX),
            Err(CodecError::Malformed(_))
        ));
    }

    #[test]
    fn debug_does_not_dump_payload() {
        let wire = Cbor::encode(&vec![9u8; 64]).unwrap();
        let text = format!("{wire:?}");
        assert!(text.contains("bytes"), "{text}");
        assert!(text.len() < 80, "{text}");
    }

    fn arb_sample() -> impl Strategy<Value = Sample> {
        let leaf = (
            any::<u64>(),
            ".{0,16}",
            proptest::collection::vec(any::<u8>(), 0..64),
            proptest::collection::btree_map(".{0,8}", any::<i64>(), 0..4),
        )
            .prop_map(|(term, name, data, tags)| Sample {
                term,
                name,
                data,
                tags,
                nested: None,
            });
        leaf.prop_recursive(3, 8, 1, |inner| {
            (inner.clone(), proptest::option::of(inner)).prop_map(|(mut outer, nested)| {
                outer.nested = nested.map(Box::new);
                outer
            })
        })
    }

    proptest! {
        #[test]
        fn prop_round_trip(value in arb_sample()) {
            let wire = Cbor::encode(&value).unwrap();
            let back = <Cbor<Sample>>::from_bytes(wire.into_bytes());
            prop_assert_eq!(back.decode().unwrap(), value);
        }

        #[test]
        fn prop_any_trailing_bytes_rejected(value in arb_sample(),
                                            extra in proptest::collection::vec(any::<u8>(), 1..32)) {
            let mut bytes = encode(&value, usize::MAX).unwrap();
            bytes.extend_from_slice(&extra);
            // Either the extra bytes corrupt the value (malformed) or they are left over: never Ok.
            prop_assert!(decode::<Sample>(&bytes, usize::MAX).is_err());
        }

        #[test]
        fn prop_limit_is_exact(value in arb_sample()) {
            let bytes = encode(&value, usize::MAX).unwrap();
            prop_assert!(decode::<Sample>(&bytes, bytes.len()).is_ok());
            prop_assert!(encode(&value, bytes.len()).is_ok());
            if !bytes.is_empty() {
                let too_small = bytes.len() - 1;
                let decoded_err = matches!(
                    decode::<Sample>(&bytes, too_small),
                    Err(CodecError::TooLarge { .. })
                );
                prop_assert!(decoded_err);
                let encoded_err = matches!(
                    encode(&value, too_small),
                    Err(CodecError::TooLarge { .. })
                );
                prop_assert!(encoded_err);
            }
        }

        #[test]
        fn prop_random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode::<Sample>(&bytes, usize::MAX);
            let _ = decode::<ciborium::Value>(&bytes, usize::MAX);
        }
    }
}
