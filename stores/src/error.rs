//! The one error type of the stores crate.
//!
//! Every variant is something a caller can act on: bad input (4xx at the proxy), missing data, or a
//! storage failure (the node's disk, 5xx). Input errors never leave partial writes behind: each engine
//! validates before it builds its write batch.

use crate::violation::Violation;

/// Result alias for the stores crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything that can go wrong in a modality store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An entity id is empty, too long or has a character outside `[A-Za-z0-9._:-]`
    /// ([`verisim_vocab::EntityId::new`]'s refusal).
    #[error(transparent)]
    InvalidId(#[from] verisim_vocab::IdError),
    /// A name (collection, predicate, property, IRI) is malformed.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// Which kind of name.
        what: &'static str,
        /// The offending value (possibly truncated).
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A configured limit was exceeded.
    #[error("{what} is {actual}, above the limit of {limit}")]
    LimitExceeded {
        /// What was measured.
        what: &'static str,
        /// The configured limit.
        limit: u64,
        /// The value that was offered.
        actual: u64,
    },
    /// A value is not acceptable (NaN in a vector, wrong dimension, shape/data mismatch, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The named thing does not exist.
    #[error("{what} not found: {name}")]
    NotFound {
        /// Which kind of thing.
        what: &'static str,
        /// Its name or id.
        name: String,
    },
    /// The named thing exists already with a different definition.
    #[error("{what} already exists with a different definition: {name}")]
    Conflict {
        /// Which kind of thing.
        what: &'static str,
        /// Its name.
        name: String,
    },
    /// An annotation does not satisfy the schema; every violation is listed.
    #[error("annotation for {id} violates the schema: {}", format_violations(.violations))]
    Validation {
        /// The entity.
        id: String,
        /// All violations found, in a stable order.
        violations: Vec<Violation>,
    },
    /// A proof blob does not verify.
    #[error("proof does not verify: {0}")]
    ProofInvalid(String),
    /// Bytes that should be CBOR (a proof blob, an export, a stored record) do not decode, or have
    /// trailing bytes.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// An exported item's hash does not match its content, or the stored hash does not match the
    /// stored data.
    #[error("hash mismatch for {what} {id}: expected {expected}, computed {actual}")]
    HashMismatch {
        /// What was checked.
        what: &'static str,
        /// The entity.
        id: String,
        /// The hash that was claimed.
        expected: String,
        /// The hash of the content.
        actual: String,
    },
    /// An arithmetic result does not fit the output type (integer tensor sums).
    #[error("overflow: {0}")]
    Overflow(String),
    /// The storage engine failed (I/O, corruption detected by fjall, lock held by another process).
    #[error("storage: {0}")]
    Storage(#[from] fjall::Error),
}

impl StoreError {
    /// True if the error is the caller's fault (bad input, unknown names, a bad export or proof):
    /// a proxy maps these to 4xx. False for disk failures and corruption of stored data (5xx).
    #[must_use]
    pub fn is_client_error(&self) -> bool {
        match self {
            Self::Storage(_) => false,
            Self::Malformed { what, .. } | Self::HashMismatch { what, .. } => {
                matches!(*what, "proof blob" | "export")
            }
            _ => true,
        }
    }
}

fn format_violations(v: &[Violation]) -> String {
    let parts: Vec<String> = v.iter().map(ToString::to_string).collect();
    parts.join("; ")
}

/// Truncates a user-supplied string for inclusion in an error message.
pub(crate) fn clip(s: &str) -> String {
    const MAX: usize = 80;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A storage-level corruption: stored bytes that we wrote ourselves no longer decode.
pub(crate) fn corrupt(what: &'static str, reason: impl Into<String>) -> StoreError {
    StoreError::Malformed {
        what,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_and_server_errors_are_told_apart() {
        assert!(StoreError::InvalidInput("x".into()).is_client_error());
        assert!(
            StoreError::Malformed {
                what: "export",
                reason: String::new()
            }
            .is_client_error()
        );
        assert!(!corrupt("stored tensor", "x").is_client_error());
        assert!(
            !StoreError::HashMismatch {
                what: "graph item",
                id: "a".into(),
                expected: String::new(),
                actual: String::new()
            }
            .is_client_error()
        );
    }
}
