//! Entity ids and the other names that become parts of fjall keys.
//!
//! An entity id is a string of 1 to 128 characters from `[A-Za-z0-9._:-]`: friendly in URLs and JSON,
//! and free of `0x00`, which the stores use as the separator inside composite keys (so a prefix scan
//! on `id ++ 0x00` never matches a longer id).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Result, StoreError, clip};

/// Maximum length of an entity id, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// A validated entity (hexad) id: `[A-Za-z0-9._:-]{1,128}`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntityId(String);

impl EntityId {
    /// Validates and wraps an id.
    ///
    /// # Errors
    /// [`StoreError::InvalidId`] if the id is empty, longer than 128 bytes or has a character outside
    /// `[A-Za-z0-9._:-]`.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        if id.is_empty() {
            return Err(StoreError::InvalidId {
                id,
                reason: "empty",
            });
        }
        if id.len() > MAX_ID_LEN {
            return Err(StoreError::InvalidId {
                id: clip(&id),
                reason: "longer than 128 bytes",
            });
        }
        if !id.bytes().all(is_id_byte) {
            return Err(StoreError::InvalidId {
                id: clip(&id),
                reason: "characters must be in [A-Za-z0-9._:-]",
            });
        }
        Ok(Self(id))
    }

    /// The id as a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id's bytes, as used in keys.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Rebuilds an id from key bytes written by this crate.
    pub(crate) fn from_key_bytes(bytes: &[u8]) -> Result<Self> {
        let s = std::str::from_utf8(bytes)
            .map_err(|_| crate::error::corrupt("stored key", "entity id is not UTF-8"))?;
        Self::new(s).map_err(|e| crate::error::corrupt("stored key", e.to_string()))
    }
}

fn is_id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntityId({:?})", self.0)
    }
}

impl std::str::FromStr for EntityId {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl TryFrom<&str> for EntityId {
    type Error = StoreError;
    fn try_from(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

impl Serialize for EntityId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EntityId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
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
        .all(|b| is_id_byte(b) || matches!(b, b'/' | b'#'))
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
    fn accepts_the_documented_alphabet() {
        for ok in ["a", "hexad:42", "A.b_c-d:e", &"x".repeat(128)] {
            assert!(EntityId::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_empty_long_and_foreign_characters() {
        for bad in ["", "a b", "a/b", "é", "a\0b", &"x".repeat(129)] {
            assert!(
                matches!(EntityId::new(bad), Err(StoreError::InvalidId { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn deserialising_validates() {
        let mut buf = Vec::new();
        ciborium::into_writer(&"no spaces", &mut buf).unwrap();
        let r: std::result::Result<EntityId, _> = ciborium::from_reader(buf.as_slice());
        assert!(r.is_err());
    }
}
