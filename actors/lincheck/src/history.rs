//! Client histories: what each client asked, when, and what it was told.

use serde::{Deserialize, Serialize};

use crate::error::HistoryError;

/// How an operation ended, as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome<O> {
    /// The client received `output` at time `at`.
    Returned {
        /// Return time, on the same clock as the invoke time.
        at: u64,
        /// What the system answered.
        output: O,
    },
    /// The client never learned the outcome (it timed out, crashed or lost the connection). The
    /// operation may have taken effect at any time after its invocation, or never: the checker
    /// treats it as returning at +infinity with any output allowed (Jepsen's and Porcupine's rule).
    Unknown,
    /// The system answered that the operation did *not* take effect (a refusal such as "not the
    /// leader" or "overloaded"). The checker leaves it out; if it did take effect after all, a read
    /// that saw it makes the history non-linearizable, which is the right verdict.
    Failed {
        /// Time the refusal arrived.
        at: u64,
    },
}

/// One client operation: an interval `[invoked_at, return time]` and its input and output.
///
/// Times are `u64` on one clock shared by all clients of a history (nanoseconds, virtual ticks…).
/// Operation `a` precedes operation `b` in real time only if `a` returned strictly before `b` was
/// invoked; intervals that touch (`a` returns at the instant `b` is invoked) count as concurrent,
/// so a coarse clock can only make the check weaker, never report a false violation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Operation<I, O> {
    /// The client (process, connection) that issued the operation. Used in reports only.
    pub client: u64,
    /// What the client asked.
    pub input: I,
    /// When the client sent the request.
    pub invoked_at: u64,
    /// How it ended.
    pub outcome: Outcome<O>,
}

impl<I, O> Operation<I, O> {
    /// An operation that returned `output` at `returned_at`.
    pub fn returned(client: u64, input: I, invoked_at: u64, output: O, returned_at: u64) -> Self {
        Self {
            client,
            input,
            invoked_at,
            outcome: Outcome::Returned {
                at: returned_at,
                output,
            },
        }
    }

    /// An operation whose outcome the client never learned.
    pub fn unknown(client: u64, input: I, invoked_at: u64) -> Self {
        Self {
            client,
            input,
            invoked_at,
            outcome: Outcome::Unknown,
        }
    }

    /// The output, if the client received one.
    pub fn output(&self) -> Option<&O> {
        match &self.outcome {
            Outcome::Returned { output, .. } => Some(output),
            Outcome::Unknown | Outcome::Failed { .. } => None,
        }
    }

    /// The return time, if the client received an answer (`None` is +infinity).
    pub fn returned_at(&self) -> Option<u64> {
        match self.outcome {
            Outcome::Returned { at, .. } | Outcome::Failed { at } => Some(at),
            Outcome::Unknown => None,
        }
    }

    /// Whether the system said the operation did not take effect.
    pub fn is_failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed { .. })
    }
}

/// The position of an operation in its [`History`], handed out by [`History::invoke`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OpId(pub usize);

/// A client history: the operations of all clients against one system.
///
/// Fill it op by op with [`History::push`], or event by event as a simulator or a test harness sees
/// them: [`History::invoke`] when a request leaves, then [`History::complete`] or
/// [`History::fail`] when its answer arrives. Operations never completed stay
/// [`Outcome::Unknown`]. A history serialises with serde, so it can be saved and re-checked later.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "I: Serialize, O: Serialize",
    deserialize = "I: Deserialize<'de>, O: Deserialize<'de>"
))]
pub struct History<I, O> {
    /// The operations, in no particular order.
    pub operations: Vec<Operation<I, O>>,
}

impl<I, O> Default for History<I, O> {
    fn default() -> Self {
        Self {
            operations: Vec::new(),
        }
    }
}

impl<I, O> History<I, O> {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a whole operation.
    pub fn push(&mut self, operation: Operation<I, O>) -> OpId {
        self.operations.push(operation);
        OpId(self.operations.len() - 1)
    }

    /// Records that `client` sent `input` at time `at`; the outcome stays unknown until
    /// [`complete`](Self::complete) or [`fail`](Self::fail).
    pub fn invoke(&mut self, client: u64, input: I, at: u64) -> OpId {
        self.push(Operation::unknown(client, input, at))
    }

    /// Records the answer to an invoked operation.
    ///
    /// # Errors
    /// The id is unknown, the operation already has an answer, or `at` is before its invocation.
    pub fn complete(&mut self, id: OpId, output: O, at: u64) -> Result<(), HistoryError> {
        let op = self.pending(id, at)?;
        op.outcome = Outcome::Returned { at, output };
        Ok(())
    }

    /// Records that the system refused an invoked operation (it did not take effect).
    ///
    /// # Errors
    /// As for [`complete`](Self::complete).
    pub fn fail(&mut self, id: OpId, at: u64) -> Result<(), HistoryError> {
        let op = self.pending(id, at)?;
        op.outcome = Outcome::Failed { at };
        Ok(())
    }

    fn pending(&mut self, id: OpId, at: u64) -> Result<&mut Operation<I, O>, HistoryError> {
        let len = self.operations.len();
        let op = self
            .operations
            .get_mut(id.0)
            .ok_or(HistoryError::NoSuchOperation { index: id.0, len })?;
        if !matches!(op.outcome, Outcome::Unknown) {
            return Err(HistoryError::AlreadyCompleted { index: id.0 });
        }
        if at < op.invoked_at {
            return Err(HistoryError::ReturnBeforeInvoke {
                index: id.0,
                invoked_at: op.invoked_at,
                returned_at: at,
            });
        }
        Ok(op)
    }

    /// The operation with this id.
    pub fn get(&self, id: OpId) -> Option<&Operation<I, O>> {
        self.operations.get(id.0)
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.operations.len()
    }

    /// Whether the history has no operation.
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// Checks that every operation returns no earlier than it was invoked.
    ///
    /// # Errors
    /// The first operation that returns before its invocation.
    pub fn validate(&self) -> Result<(), HistoryError> {
        for (index, op) in self.operations.iter().enumerate() {
            if let Some(returned_at) = op.returned_at()
                && returned_at < op.invoked_at
            {
                return Err(HistoryError::ReturnBeforeInvoke {
                    index,
                    invoked_at: op.invoked_at,
                    returned_at,
                });
            }
        }
        Ok(())
    }
}

impl<I, O> FromIterator<Operation<I, O>> for History<I, O> {
    fn from_iter<T: IntoIterator<Item = Operation<I, O>>>(iter: T) -> Self {
        Self {
            operations: iter.into_iter().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoke_then_complete_records_the_interval() {
        let mut h: History<&str, u32> = History::new();
        let a = h.invoke(1, "a", 10);
        let b = h.invoke(2, "b", 11);
        h.complete(a, 7, 20).unwrap();
        h.fail(b, 12).unwrap();
        let c = h.invoke(3, "c", 13);
        assert_eq!(h.get(a).unwrap().returned_at(), Some(20));
        assert_eq!(h.get(a).unwrap().output(), Some(&7));
        assert!(h.get(b).unwrap().is_failed());
        assert_eq!(h.get(c).unwrap().outcome, Outcome::Unknown);
        assert_eq!(h.len(), 3);
        h.validate().unwrap();
    }

    #[test]
    fn completing_twice_or_too_early_or_unknown_id_is_an_error() {
        let mut h: History<&str, u32> = History::new();
        let a = h.invoke(1, "a", 10);
        assert_eq!(
            h.complete(a, 1, 9),
            Err(HistoryError::ReturnBeforeInvoke {
                index: 0,
                invoked_at: 10,
                returned_at: 9
            })
        );
        h.complete(a, 1, 10).unwrap();
        assert_eq!(
            h.complete(a, 1, 11),
            Err(HistoryError::AlreadyCompleted { index: 0 })
        );
        assert_eq!(
            h.fail(OpId(5), 11),
            Err(HistoryError::NoSuchOperation { index: 5, len: 1 })
        );
    }

    #[test]
    fn validate_rejects_an_operation_returning_before_its_invocation() {
        let h: History<&str, u32> = [
            Operation::returned(1, "a", 5, 1, 6),
            Operation::returned(1, "b", 8, 1, 7),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            h.validate(),
            Err(HistoryError::ReturnBeforeInvoke {
                index: 1,
                invoked_at: 8,
                returned_at: 7
            })
        );
    }
}
