//! Strict CBOR decoding. `ciborium::from_reader` stops after the first item and ignores whatever
//! follows; everything VeriSim reads back (from disk or from a peer) must be exactly one item, so
//! trailing bytes are malformed. Decoders that also bound the input use [`decode_limited`].

use serde::de::DeserializeOwned;

/// Why bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CborError {
    /// The input is longer than the caller accepts (checked before decoding anything).
    #[error("{size} bytes, more than the {limit} allowed")]
    TooLarge {
        /// The input's length.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The bytes are not a valid CBOR encoding of the expected type (ciborium's reason).
    #[error("{0}")]
    Malformed(String),
    /// A valid item was followed by more bytes.
    #[error("{0} trailing bytes after the CBOR item")]
    TrailingBytes(usize),
}

/// Decodes exactly one CBOR item of type `T` that spans all of `bytes`.
///
/// # Errors
/// [`CborError::Malformed`] if the bytes are not a valid encoding of `T`;
/// [`CborError::TrailingBytes`] if bytes remain after it.
pub fn decode_exact<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CborError> {
    let mut rest = bytes;
    let value: T =
        ciborium::from_reader(&mut rest).map_err(|e| CborError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CborError::TrailingBytes(rest.len()));
    }
    Ok(value)
}

/// [`decode_exact`] of at most `limit` bytes: a peer cannot make us decode (and allocate for) more.
///
/// # Errors
/// [`CborError::TooLarge`] first, then those of [`decode_exact`].
pub fn decode_limited<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, CborError> {
    if bytes.len() > limit {
        return Err(CborError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    decode_exact(bytes)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn cbor<T: serde::Serialize>(v: &T) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).unwrap();
        out
    }

    #[test]
    fn trailing_bytes_are_malformed() {
        let mut b = cbor(&42u32);
        assert_eq!(decode_exact::<u32>(&b), Ok(42));
        b.push(0);
        assert_eq!(decode_exact::<u32>(&b), Err(CborError::TrailingBytes(1)));
        assert_eq!(
            CborError::TrailingBytes(1).to_string(),
            "1 trailing bytes after the CBOR item"
        );
    }

    #[test]
    fn the_limit_is_checked_before_decoding() {
        let b = cbor(&"four");
        assert_eq!(decode_limited::<String>(&b, b.len()), Ok("four".into()));
        assert_eq!(
            decode_limited::<String>(&b, b.len() - 1),
            Err(CborError::TooLarge {
                size: b.len(),
                limit: b.len() - 1
            })
        );
        // Too large wins over garbage: nothing is decoded past the limit.
        assert!(matches!(
            decode_limited::<String>(&[0xff; 9], 8),
            Err(CborError::TooLarge { .. })
        ));
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for g in [
            &[][..],
            &[0xff],
            // A byte string claiming 2^64 - 1 bytes.
            &[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert!(matches!(
                decode_exact::<Vec<u8>>(g),
                Err(CborError::Malformed(_))
            ));
        }
    }

    proptest! {
        #[test]
        fn prop_round_trip_and_any_suffix_is_refused(
            m in proptest::collection::btree_map(any::<u16>(), ".{0,8}", 0..8),
            suffix in proptest::collection::vec(any::<u8>(), 1..8),
        ) {
            let enc = cbor(&m);
            prop_assert_eq!(decode_exact::<BTreeMap<u16, String>>(&enc).unwrap(), m);
            let mut longer = enc.clone();
            longer.extend_from_slice(&suffix);
            prop_assert_eq!(
                decode_exact::<BTreeMap<u16, String>>(&longer),
                Err(CborError::TrailingBytes(suffix.len()))
            );
        }
    }
}
