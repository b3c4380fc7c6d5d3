//! The sequential specification a history is checked against.

use std::fmt::Debug;
use std::hash::Hash;

use crate::history::Operation;

/// A set of operations checked on its own, named for reports (for example `key "x"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// How reports name this partition.
    pub label: String,
    /// Indices into [`History::operations`](crate::History::operations).
    pub operations: Vec<usize>,
}

/// A sequential specification: a deterministic state machine that says which outputs an input
/// may produce in a state.
///
/// A history is linearizable when its operations can be put in one sequence, consistent with
/// their real-time order, in which every step is accepted by the model.
pub trait Model {
    /// What a client asks.
    type Input: Debug;
    /// What the system answers.
    type Output: Debug;
    /// The model's state; the search caches `(linearized set, state)` pairs, hence `Eq + Hash`.
    /// Keep it small: it is cloned at each step of the search.
    type State: Clone + Eq + Hash + Debug;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// Applies `input` to `state`. With `output: Some(o)` the step is accepted only if the
    /// specification answers `o`; with `None` (outcome unknown) any answer is accepted. Returns
    /// the state after the step, or `None` if the step is not allowed.
    fn step(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: Option<&Self::Output>,
    ) -> Option<Self::State>;

    /// Splits a history into independent parts checked separately (P-compositionality: a
    /// history is linearizable iff each part is). The default is one part holding everything.
    /// Operations left out of every part are not checked. Only the operations of one part are
    /// ever stepped through one state.
    fn partition(&self, operations: &[Operation<Self::Input, Self::Output>]) -> Vec<Partition> {
        vec![Partition {
            label: "history".to_owned(),
            operations: (0..operations.len()).collect(),
        }]
    }

    /// Whether `input` never changes the state (a read). A read whose answer was lost
    /// constrains nothing, so the checker leaves it out rather than search over it.
    fn is_read_only(&self, input: &Self::Input) -> bool {
        let _ = input;
        false
    }

    /// Rejects an operation that cannot be checked (for example an output of the wrong kind
    /// for its input), so that malformed input gets an error rather than a false verdict.
    ///
    /// # Errors
    /// A sentence saying what is wrong.
    fn validate(&self, input: &Self::Input, output: Option<&Self::Output>) -> Result<(), String> {
        let _ = (input, output);
        Ok(())
    }

    /// Text for an operation in reports; `output: None` means unknown.
    fn describe_operation(&self, input: &Self::Input, output: Option<&Self::Output>) -> String {
        match output {
            Some(output) => format!("{input:?} -> {output:?}"),
            None => format!("{input:?} -> ?"),
        }
    }

    /// Text for a state in reports.
    fn describe_state(&self, state: &Self::State) -> String {
        format!("{state:?}")
    }
}
