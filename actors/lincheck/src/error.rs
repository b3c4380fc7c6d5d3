//! Why a history could not be checked at all (as opposed to a verdict about it).

use thiserror::Error;

/// A malformed history.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum HistoryError {
    /// An operation returns before it was invoked.
    #[error("operation #{index} returns at {returned_at}, before its invocation at {invoked_at}")]
    ReturnBeforeInvoke {
        /// Position in the history.
        index: usize,
        /// Invocation time.
        invoked_at: u64,
        /// Return time.
        returned_at: u64,
    },
    /// An operation id that the history does not hold.
    #[error("no operation #{index} (the history holds {len})")]
    NoSuchOperation {
        /// The id asked for.
        index: usize,
        /// Number of operations.
        len: usize,
    },
    /// An answer recorded twice for the same operation.
    #[error("operation #{index} already has an outcome")]
    AlreadyCompleted {
        /// Position in the history.
        index: usize,
    },
}

/// Why [`check`](crate::check()) could not give a verdict.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CheckError {
    /// The history is malformed.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// The model refuses an operation as malformed (for example a `get` answered with a `cas`
    /// result).
    #[error("operation #{index} is malformed: {reason}")]
    MalformedOperation {
        /// Position in the history.
        index: usize,
        /// The model's explanation.
        reason: String,
    },
    /// The model's `partition` named an operation that does not exist, or one operation twice.
    #[error("partition {label} names operation #{index} {problem}")]
    BadPartition {
        /// The partition's label.
        label: String,
        /// The offending index.
        index: usize,
        /// "out of range" or "twice".
        problem: &'static str,
    },
}
