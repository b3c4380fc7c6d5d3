//! Canonical CBOR: how every record and export is encoded, and the strict decoder that refuses
//! trailing bytes (ciborium on its own stops after the first item and ignores the rest).
//!
//! Canonical here means: the same value always encodes to the same bytes. All our maps are
//! `BTreeMap`/`BTreeSet` (sorted), floats are stored as their exact bits, and struct fields are
//! encoded in declaration order, so hashing the encoding is deterministic.

use std::fmt;

use serde::de::{DeserializeOwned, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Result, StoreError};

/// Encodes a value as CBOR.
///
/// # Errors
/// [`StoreError::InvalidInput`] if serde refuses the value (cannot happen for this crate's types).
pub fn to_cbor<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out)
        .map_err(|e| StoreError::InvalidInput(format!("cannot encode CBOR: {e}")))?;
    Ok(out)
}

/// Decodes exactly one CBOR item that must span all of `bytes`.
///
/// # Errors
/// [`StoreError::Malformed`] naming `what` if the bytes are not a valid encoding of `T` or if bytes
/// remain after the item.
pub fn from_cbor_exact<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T> {
    verisim_vocab::cbor::decode_exact(bytes).map_err(|e| StoreError::Malformed {
        what,
        reason: e.to_string(),
    })
}

/// A byte string that encodes as a CBOR byte string (serde's `Vec<u8>` would be an array of
/// integers: larger and slower).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> std::result::Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(
                self,
                v: Vec<u8>,
            ) -> std::result::Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        d.deserialize_bytes(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_bytes_are_malformed() {
        let mut b = to_cbor(&42u32).unwrap();
        assert_eq!(from_cbor_exact::<u32>("x", &b).unwrap(), 42);
        b.push(0);
        assert!(matches!(
            from_cbor_exact::<u32>("x", &b),
            Err(StoreError::Malformed { .. })
        ));
    }

    #[test]
    fn bytes_round_trip_as_a_byte_string() {
        let b = Bytes(vec![1, 2, 3]);
        let enc = to_cbor(&b).unwrap();
        assert_eq!(enc, vec![0x43, 1, 2, 3]);
        assert_eq!(from_cbor_exact::<Bytes>("x", &enc).unwrap(), b);
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for g in [
            &[][..],
            &[0xff],
            &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert!(from_cbor_exact::<Bytes>("x", g).is_err());
        }
    }
}
