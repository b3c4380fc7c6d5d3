//! Validated names, with the registry's and the stores' rules: ASCII letters, digits and `. _ : -`.
//! Entity ids are 1 to 128 bytes, the other names 1 to 64.

use std::fmt;

use serde::{Deserialize, Serialize};

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
            ///
            /// # Errors
            /// [`IdError`] if `s` is empty, too long or has a character outside the alphabet.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                validate($kind, &s, Self::MAX_LEN)?;
                Ok(Self(s))
            }

            /// The name as a string slice.
            #[must_use]
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
    /// An entity (hexad) id, chosen by the client so that a retried registration is idempotent.
    EntityId, "entity id", 128
);
name_type!(
    /// A client's name, under which its identity key is registered.
    ClientId, "client id", 64
);
name_type!(
    /// A client-chosen request id; a retry reuses it, and the cluster answers it with the first outcome.
    RequestId, "request id", 64
);
name_type!(
    /// A trust window's id, chosen by the client when it opens the window.
    WindowId, "window id", 64
);
