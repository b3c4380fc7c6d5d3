//! Entity ids and the other names that become parts of fjall keys.
//!
//! An entity id ([`verisim_vocab::EntityId`], shared with the registry and the public API) is a
//! string of 1 to 128 characters from `[A-Za-z0-9._:-]`: friendly in URLs and JSON, and free of
//! `0x00`, which the stores use as the separator inside composite keys (so a prefix scan on
//! `id ++ 0x00` never matches a longer id).

pub use verisim_vocab::EntityId;
use verisim_vocab::ids::is_name_byte;

use crate::error::{Result, StoreError, clip};

/// Maximum length of an entity id, in bytes.
pub const MAX_ID_LEN: usize = EntityId::MAX_LEN;

/// Rebuilds an id from key bytes written by this crate.
pub(crate) fn entity_id_from_key(bytes: &[u8]) -> Result<EntityId> {
    let s = std::str::from_utf8(bytes)
        .map_err(|_| crate::error::corrupt("stored key", "entity id is not UTF-8"))?;
    EntityId::new(s).map_err(|e| crate::error::corrupt("stored key", e.to_string()))
}

/// Validates a short name that becomes part of a key (a collection name, an edge predicate, a
/// property name): 1 to 128 bytes of `[A-Za-z0-9._:/#-]`, so IRIs-like predicates fit.
pub(crate) fn validate_name(what: &'static str, name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("empty")
    } else if name.len() > MAX_ID_LEN {
        Some("longer than 128 bytes")
    } else if !name
        .bytes()
        .all(|b| is_name_byte(b) || matches!(b, b'/' | b'#'))
    {
        Some("characters must be in [A-Za-z0-9._:/#-]")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StoreError::InvalidName {
            what,
            value: clip(name),
            reason,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_bytes_round_trip_and_bad_ones_are_corruption() {
        let id = EntityId::new("hexad:42").unwrap();
        assert_eq!(entity_id_from_key(id.as_bytes()).unwrap(), id);
        for bad in [&b""[..], b"a b", b"\xff"] {
            assert!(
                matches!(entity_id_from_key(bad), Err(StoreError::Malformed { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn names_allow_slashes_and_hashes_but_not_spaces() {
        assert!(validate_name("predicate", "http://x.org/p#q").is_ok());
        for bad in ["", "a b", &"x".repeat(129)] {
            assert!(
                matches!(
                    validate_name("predicate", bad),
                    Err(StoreError::InvalidName { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
