//! Validated names used in the registry: client ids, node names, request ids, window ids. Entity ids are
//! the stores' [`verisim_stores::EntityId`] (same alphabet).
//!
//! Ids travel in URLs, logs and CBOR; validating them once at the edge keeps every later step simple.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} is empty")]
    Empty { kind: &'static str },
    #[error("{kind} is {len} bytes long, more than the {max} allowed")]
    TooLong {
        kind: &'static str,
        len: usize,
        max: usize,
    },
    #[error("{kind} contains {found:?}; allowed are ASCII letters, digits and . _ : -")]
    BadChar { kind: &'static str, found: char },
}

fn validate(kind: &'static str, s: &str, max: usize) -> Result<(), IdError> {
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
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        Some(found) => Err(IdError::BadChar { kind, found }),
        None => Ok(()),
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The longest accepted value, in bytes.
            pub const MAX_LEN: usize = $max;

            /// Validates `s` and wraps it.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                validate($kind, &s, Self::MAX_LEN)?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
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
    /// A client's name, under which its identity key is registered.
    ClientId, "client id", 64
);
name_type!(
    /// A cluster node's name (its ractor_cluster node name).
    NodeName, "node name", 64
);
name_type!(
    /// A client-chosen request id; retrying with the same id is idempotent.
    RequestId, "request id", 64
);
name_type!(
    /// A trust window's id, assigned by the proxy that opened it.
    WindowId, "window id", 64
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_alphabet() {
        assert!(ClientId::new("user:42.v-1_a").is_ok());
        assert_eq!(ClientId::new(""), Err(IdError::Empty { kind: "client id" }));
        assert_eq!(
            ClientId::new("a/b"),
            Err(IdError::BadChar {
                kind: "client id",
                found: '/'
            })
        );
        assert!(matches!(
            ClientId::new("x".repeat(65)),
            Err(IdError::TooLong { len: 65, .. })
        ));
    }

    #[test]
    fn deserialising_validates() {
        let mut bytes = Vec::new();
        ciborium::into_writer(&"bad id", &mut bytes).unwrap();
        let r: Result<ClientId, _> = ciborium::from_reader(bytes.as_slice());
        assert!(r.is_err());
    }
}
