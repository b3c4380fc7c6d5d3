//! The content hash: BLAKE3 over an item's canonical CBOR, in one derive-key domain per modality
//! ([`crate::Modality::hash_domain`]). The stores compute it, the registry commits it, the drift
//! checker compares it and the public API shows it.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::InvalidInput;

/// A 32-byte BLAKE3 content hash.
///
/// Serialized as lower-case hex in human-readable formats (the public API's JSON) and as a 32-byte
/// byte string in binary ones (CBOR: the registry's log and snapshots, messages between nodes).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// Hashes `canonical` bytes in the given domain (a BLAKE3 derive-key context).
    #[must_use]
    pub fn of(domain: &'static str, canonical: &[u8]) -> Self {
        let mut h = blake3::Hasher::new_derive_key(domain);
        h.update(canonical);
        Self(*h.finalize().as_bytes())
    }

    /// Lower-case hex, 64 characters.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters (either case).
    ///
    /// # Errors
    /// [`InvalidInput`] on anything else.
    pub fn from_hex(s: &str) -> Result<Self, InvalidInput> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out)
            .map_err(|e| InvalidInput(format!("bad content hash {s:?}: {e}")))?;
        Ok(Self(out))
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentHash({})", &self.to_hex()[..16])
    }
}

impl Serialize for ContentHash {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            s.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            return Self::from_hex(&s).map_err(de::Error::custom);
        }
        struct V;
        impl Visitor<'_> for V {
            type Value = ContentHash;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte string of 32 bytes")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<ContentHash, E> {
                v.try_into()
                    .map(ContentHash)
                    .map_err(|_| E::invalid_length(v.len(), &"32 bytes"))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<ContentHash, E> {
                self.visit_bytes(&v)
            }
        }
        d.deserialize_bytes(V)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn cbor<T: Serialize>(v: &T) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).unwrap();
        out
    }

    #[test]
    fn cbor_is_a_32_byte_string_and_json_is_hex() {
        let h = ContentHash([0xab; 32]);
        let enc = cbor(&h);
        // Major type 2 (byte string), length 32 in the following byte.
        assert_eq!(&enc[..2], &[0x58, 32]);
        assert_eq!(&enc[2..], &[0xab; 32]);
        assert_eq!(crate::cbor::decode_exact::<ContentHash>(&enc).unwrap(), h);
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(32)));
        assert_eq!(serde_json::from_str::<ContentHash>(&json).unwrap(), h);
    }

    #[test]
    fn wrong_lengths_and_bad_hex_are_refused() {
        assert!(crate::cbor::decode_exact::<ContentHash>(&cbor(&serde_bytes_like(31))).is_err());
        assert!(serde_json::from_str::<ContentHash>("\"abc\"").is_err());
        assert!(serde_json::from_str::<ContentHash>(&format!("\"{}\"", "zz".repeat(32))).is_err());
        // An array of integers is not a byte string.
        assert!(crate::cbor::decode_exact::<ContentHash>(&cbor(&[0u8; 32].to_vec())).is_err());
    }

    /// A CBOR byte string of `n` bytes.
    fn serde_bytes_like(n: usize) -> ciborium::Value {
        ciborium::Value::Bytes(vec![7; n])
    }

    #[test]
    fn display_and_debug() {
        let h = ContentHash::of("verisim test", b"x");
        assert_eq!(h.to_string(), h.to_hex());
        assert_eq!(
            format!("{h:?}"),
            format!("ContentHash({})", &h.to_hex()[..16])
        );
        assert_eq!(
            h,
            ContentHash(
                *blake3::Hasher::new_derive_key("verisim test")
                    .update(b"x")
                    .finalize()
                    .as_bytes()
            )
        );
    }

    proptest! {
        #[test]
        fn prop_hex_and_both_serde_forms_round_trip(bytes in any::<[u8; 32]>()) {
            let h = ContentHash(bytes);
            prop_assert_eq!(ContentHash::from_hex(&h.to_hex()).unwrap(), h);
            prop_assert_eq!(ContentHash::from_hex(&h.to_hex().to_uppercase()).unwrap(), h);
            prop_assert_eq!(crate::cbor::decode_exact::<ContentHash>(&cbor(&h)).unwrap(), h);
            let json = serde_json::to_string(&h).unwrap();
            prop_assert_eq!(serde_json::from_str::<ContentHash>(&json).unwrap(), h);
        }
    }
}
