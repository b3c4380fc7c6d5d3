//! What a check found, in words a person can act on.

use std::fmt;
use std::time::Duration;

pub use crate::search::Exhaustion;

/// The result of [`check`](crate::check()): a verdict and what it cost.
#[derive(Clone, Debug)]
pub struct CheckReport {
    /// The verdict.
    pub verdict: Verdict,
    /// Work done.
    pub stats: Stats,
}

/// Whether the history is linearizable.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// Every partition has a linearization.
    Linearizable,
    /// A partition has none; the explanation names it and the operations involved.
    NotLinearizable(Box<Violation>),
    /// The budget ran out before a verdict (no partition checked so far was found
    /// non-linearizable).
    Unknown(Incomplete),
}

impl Verdict {
    /// Whether the verdict is [`Verdict::Linearizable`].
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Verdict::Linearizable)
    }

    /// Whether the verdict is [`Verdict::NotLinearizable`].
    pub fn is_violation(&self) -> bool {
        matches!(self, Verdict::NotLinearizable(_))
    }

    /// The violation, if any.
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            Verdict::NotLinearizable(v) => Some(v),
            Verdict::Linearizable | Verdict::Unknown(_) => None,
        }
    }
}

/// An operation as reports show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpSummary {
    /// Index into [`History::operations`](crate::History::operations).
    pub index: usize,
    /// The client that issued it.
    pub client: u64,
    /// Invocation time.
    pub invoked_at: u64,
    /// Return time; `None` for an unknown outcome (+infinity).
    pub returned_at: Option<u64>,
    /// The model's description of input and output.
    pub description: String,
}

/// One step of a linearization: the operation and the model state after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinearizedStep {
    /// The operation.
    pub op: OpSummary,
    /// The model state after it.
    pub state_after: String,
}

/// A candidate that could not extend the longest linearization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The operation.
    pub op: OpSummary,
    /// `true`: the model refuses it in that state. `false`: the model accepts it, but every
    /// continuation after it fails.
    pub refused_by_model: bool,
}

/// Why a history is not linearizable: the partition, the longest linearizable prefix the search
/// found, where it got stuck, and a small set of operations that on their own cannot be
/// linearized.
#[derive(Clone, Debug)]
pub struct Violation {
    /// The partition that has no linearization (for the KV model, `key "x"`).
    pub partition: String,
    /// Number of operations in that partition.
    pub partition_size: usize,
    /// The longest linearizable prefix found, in order.
    pub longest_prefix: Vec<LinearizedStep>,
    /// The model state after that prefix.
    pub stuck_state: String,
    /// The operation that returned before it could be linearized after that prefix.
    pub blocker: OpSummary,
    /// The operations that could have come next (invoked before the blocker returned) and why
    /// each failed.
    pub candidates: Vec<Candidate>,
    /// The operations at the heart of the violation, in history order: with their recorded
    /// outcomes, and with every other operation of the partition relaxed (allowed to take
    /// effect at any point of its interval with any output, or not at all), there is still no
    /// linearization. Minimal (relaxing any one of them too gives a linearization) when
    /// `core_is_minimal`.
    pub core: Vec<OpSummary>,
    /// The other operations the search looked at (those invoked before the latest return it
    /// reached), relaxed as above; later operations are relaxed too and not listed.
    pub context: Vec<OpSummary>,
    /// Whether `core` was minimised to the end (false if minimisation was disabled, then the
    /// core is every operation the search looked at, or ran out of budget, then it is
    /// partly minimised).
    pub core_is_minimal: bool,
}

/// Where and why a check stopped without a verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incomplete {
    /// The partition being searched when the budget ran out.
    pub partition: String,
    /// Which budget ran out.
    pub reason: Exhaustion,
    /// Partitions fully checked (all linearizable) before it.
    pub partitions_checked: usize,
    /// Partitions in the history.
    pub partitions_total: usize,
}

/// The work a check did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Operations checked (failed operations and those the model drops are not counted).
    pub operations: usize,
    /// Partitions.
    pub partitions: usize,
    /// Largest partition.
    pub largest_partition: usize,
    /// Model steps taken by the search (including minimisation of a violation).
    pub steps: u64,
    /// Wall time.
    pub elapsed: Duration,
}

impl fmt::Display for OpSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} client {} [{}, ",
            self.index, self.client, self.invoked_at
        )?;
        match self.returned_at {
            Some(at) => write!(f, "{at}]")?,
            None => write!(f, "inf]")?,
        }
        write!(f, " {}", self.description)
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "not linearizable: {} ({} operations)",
            self.partition, self.partition_size
        )?;
        let minimal = if self.core_is_minimal {
            "minimal"
        } else {
            "not minimised"
        };
        writeln!(
            f,
            "  these {} operations cannot be linearized ({minimal} core):",
            self.core.len()
        )?;
        for op in &self.core {
            writeln!(f, "    {op}")?;
        }
        if !self.context.is_empty() {
            writeln!(
                f,
                "  with the other {} operation(s) free to take effect at any point of their interval, with any output, or not at all:",
                self.context.len()
            )?;
            for op in &self.context {
                writeln!(f, "    {op}")?;
            }
        }
        writeln!(
            f,
            "  longest linearizable prefix ({} operations):",
            self.longest_prefix.len()
        )?;
        const SHOWN: usize = 20;
        let skip = self.longest_prefix.len().saturating_sub(SHOWN);
        if skip > 0 {
            writeln!(f, "    … {skip} earlier operations")?;
        }
        for step in &self.longest_prefix[skip..] {
            writeln!(f, "    {}  => {}", step.op, step.state_after)?;
        }
        writeln!(f, "  then, in state {}:", self.stuck_state)?;
        writeln!(
            f,
            "    {} returned before it could be linearized;",
            self.blocker
        )?;
        writeln!(f, "    none of the pending operations can come next:")?;
        for c in &self.candidates {
            let why = if c.refused_by_model {
                "refused by the model"
            } else {
                "accepted, but every continuation fails"
            };
            writeln!(f, "      {}: {why}", c.op)?;
        }
        Ok(())
    }
}

impl fmt::Display for Incomplete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.reason {
            Exhaustion::Steps => "step",
            Exhaustion::Time => "time",
        };
        write!(
            f,
            "unknown: the {what} budget ran out while checking {} ({} of {} partitions checked)",
            self.partition, self.partitions_checked, self.partitions_total
        )
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Linearizable => write!(f, "linearizable"),
            Verdict::NotLinearizable(v) => write!(f, "{v}"),
            Verdict::Unknown(u) => write!(f, "{u}"),
        }
    }
}
