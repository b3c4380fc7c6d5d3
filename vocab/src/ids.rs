//! Validated names: entity ids, client ids, request ids, window ids, node names. One alphabet,
//! ASCII letters, digits and `. _ : -`: friendly in URLs, logs and JSON, and free of `0x00`, which
//! the stores use as the separator inside composite keys. Entity ids are 1 to 128 bytes, the other
//! names 1 to 64.
//!
//! Each is a string in serde (JSON and CBOR alike), validated again when deserialized. A name is
//! shared, not copied: a clone costs a reference count, so the owner of a million entities or a
//! node named in a million placements is one allocation where the registry decodes or copies it.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The name is empty.
    #[error("{kind} is empty")]
    Empty {
        /// Which kind of name.
        kind: &'static str,
    },
    /// The name is too long.
    #[error("{kind} is {len} bytes long, more than the {max} allowed")]
    TooLong {
        /// Which kind of name.
        kind: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The name has a character outside the alphabet.
    #[error("{kind} contains {found:?}; allowed are ASCII letters, digits and . _ : -")]
    BadChar {
        /// Which kind of name.
        kind: &'static str,
        /// The first refused character.
        found: char,
    },
}

/// True for a byte of the names' alphabet, `[A-Za-z0-9._:-]`.
#[must_use]
pub fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-')
}

/// Checks `s` as a name of `kind` at most `max` bytes long.
///
/// # Errors
/// [`IdError`] if `s` is empty, longer than `max` or has a character outside the alphabet.
pub fn validate(kind: &'static str, s: &str, max: usize) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if s.len() > max {
        return Err(IdError::TooLong {
            kind,
            len: s.len(),
            max,
        });
    }
    match s
        .chars()
        .find(|&c| !u8::try_from(c).is_ok_and(is_name_byte))
    {
        Some(found) => Err(IdError::BadChar { kind, found }),
        None => Ok(()),
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
        #[serde(try_from = "String")]
        pub struct $name(Arc<str>);

        impl $name {
            /// The longest accepted value, in bytes.
            pub const MAX_LEN: usize = $max;

            /// Validates `s` and wraps it.
            ///
            /// # Errors
            /// [`IdError`] if `s` is empty, too long or has a character outside the alphabet.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                validate($kind, &s, Self::MAX_LEN)?;
                Ok(Self(Arc::from(s)))
            }

            /// The name as a string slice.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The name's bytes (as the stores use them in keys).
            #[must_use]
            pub fn as_bytes(&self) -> &[u8] {
                self.0.as_bytes()
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0.to_string()
            }
        }

        // As the string it is (what `String` writes), without copying it first.
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }
    };
}

name_type!(
    /// An entity (hexad) id, chosen by the client so that a retried registration is idempotent.
    EntityId, "entity id", 128
);
name_type!(
    /// A client's name, under which its identity key is registered.
    ClientId, "client id", 64
);
name_type!(
    /// A client-chosen request id; a retry reuses it, and the cluster answers it with the first
    /// outcome.
    RequestId, "request id", 64
);
name_type!(
    /// A trust window's id, chosen by the client when it opens the window.
    WindowId, "window id", 64
);
name_type!(
    /// A cluster node's name (its ractor_cluster node name).
    NodeName, "node name", 64
);

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        for ok in ["a", "hexad:42", "A.b_c-d:e", &"x".repeat(128)] {
            assert!(EntityId::new(ok).is_ok(), "{ok}");
        }
        assert!(ClientId::new("user:42.v-1_a").is_ok());
        assert_eq!(ClientId::new(""), Err(IdError::Empty { kind: "client id" }));
        assert_eq!(
            ClientId::new("a/b"),
            Err(IdError::BadChar {
                kind: "client id",
                found: '/'
            })
        );
        assert_eq!(
            NodeName::new("x".repeat(65)),
            Err(IdError::TooLong {
                kind: "node name",
                len: 65,
                max: 64
            })
        );
    }

    #[test]
    fn refuses_empty_long_and_foreign_characters() {
        for bad in ["", "a b", "a/b", "é", "a\0b", &"x".repeat(129)] {
            assert!(EntityId::new(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            EntityId::new("aé").unwrap_err().to_string(),
            "entity id contains 'é'; allowed are ASCII letters, digits and . _ : -"
        );
    }

    #[test]
    fn serde_is_a_string_and_deserialising_validates() {
        let mut bytes = Vec::new();
        ciborium::into_writer(&"bad id", &mut bytes).unwrap();
        assert!(crate::cbor::decode_exact::<ClientId>(&bytes).is_err());
        let id = EntityId::new("e-1").unwrap();
        let mut enc = Vec::new();
        ciborium::into_writer(&id, &mut enc).unwrap();
        assert_eq!(enc, b"\x63e-1");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"e-1\"");
        assert!(serde_json::from_str::<WindowId>("\"\"").is_err());
    }

    proptest! {
        #[test]
        fn prop_valid_exactly_when_in_the_alphabet(s in "[A-Za-z0-9._:/ é-]{0,70}") {
            let expected = !s.is_empty()
                && s.len() <= 64
                && s.bytes().all(is_name_byte);
            prop_assert_eq!(RequestId::new(s.clone()).is_ok(), expected, "{:?}", s);
            if let Ok(id) = RequestId::new(s.clone()) {
                prop_assert_eq!(id.as_str(), s.as_str());
                prop_assert_eq!(id.to_string().parse::<RequestId>().unwrap(), id);
            }
        }
    }
}
