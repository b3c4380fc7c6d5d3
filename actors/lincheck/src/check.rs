//! The entry point: validate, partition, search each partition, explain a failure.

use std::time::{Duration, Instant};

use crate::error::CheckError;
use crate::history::{History, Operation};
use crate::model::{Model, Partition};
use crate::report::{
    Candidate, CheckReport, Incomplete, LinearizedStep, OpSummary, Stats, Verdict, Violation,
};
use crate::search::{DeadEnd, Meter, SearchResult, View, decide};

/// Model steps that minimising a violation may use at most (besides the caller's budget):
/// explaining a violation must not cost much more than finding it.
const MINIMIZE_MAX_STEPS: u64 = 500_000;

/// The budget of a check. A check never runs past it: when it is spent the verdict is
/// [`Verdict::Unknown`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOptions {
    /// Maximum number of model steps over the whole check (`None`: no limit). Deterministic:
    /// the same history and budget always give the same verdict.
    pub max_steps: Option<u64>,
    /// Maximum wall time (`None`: no limit).
    pub time_limit: Option<Duration>,
    /// Shrink the operations of a violation to a minimal core. Uses what is left of the budget,
    /// at most 500,000 steps; the verdict does not depend on it.
    pub minimize: bool,
}

impl Default for CheckOptions {
    /// 20 million steps (seconds at most), no time limit, minimisation on.
    fn default() -> Self {
        Self {
            max_steps: Some(20_000_000),
            time_limit: None,
            minimize: true,
        }
    }
}

impl CheckOptions {
    /// These options with a step budget.
    #[must_use]
    pub fn with_max_steps(mut self, max_steps: Option<u64>) -> Self {
        self.max_steps = max_steps;
        self
    }

    /// These options with a time budget.
    #[must_use]
    pub fn with_time_limit(mut self, time_limit: Option<Duration>) -> Self {
        self.time_limit = time_limit;
        self
    }

    /// These options with minimisation of violations on or off.
    #[must_use]
    pub fn with_minimize(mut self, minimize: bool) -> Self {
        self.minimize = minimize;
        self
    }
}

/// Checks `history` for linearizability against `model`.
///
/// Operations with [`Outcome::Failed`](crate::Outcome::Failed) are left out; operations with
/// [`Outcome::Unknown`](crate::Outcome::Unknown) may take effect at any time after their
/// invocation, or never. Partitions are checked one after the other in the model's order; the
/// first one without a linearization gives the verdict.
///
/// # Errors
/// The history is malformed (an operation returns before its invocation), the model refuses an
/// operation as malformed, or the model's partition names an operation that does not exist.
pub fn check<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    options: &CheckOptions,
) -> Result<CheckReport, CheckError> {
    let started = Instant::now();
    let deadline = options.time_limit.map(|t| started + t);
    history.validate()?;
    let ops = &history.operations;
    for (index, op) in ops.iter().enumerate() {
        if !op.is_failed() {
            model
                .validate(&op.input, op.output())
                .map_err(|reason| CheckError::MalformedOperation { index, reason })?;
        }
    }
    let partitions = checked_partitions(model, ops)?;

    let mut meter = Meter::new(options.max_steps, deadline);
    let mut stats = Stats {
        operations: partitions.iter().map(|p| p.operations.len()).sum(),
        partitions: partitions.len(),
        largest_partition: partitions
            .iter()
            .map(|p| p.operations.len())
            .max()
            .unwrap_or(0),
        ..Stats::default()
    };
    let mut verdict = Verdict::Linearizable;
    for (checked, partition) in partitions.iter().enumerate() {
        let views: Vec<View<'_, _, _>> = partition
            .operations
            .iter()
            .map(|&i| View::of(&ops[i]))
            .collect();
        match decide(model, &views, &mut meter) {
            SearchResult::Linearizable(order) => {
                debug_assert!(is_linearization(model, &views, &order));
            }
            SearchResult::Exhausted => {
                verdict = Verdict::Unknown(Incomplete {
                    partition: partition.label.clone(),
                    reason: meter.exhausted.unwrap_or(crate::Exhaustion::Steps),
                    partitions_checked: checked,
                    partitions_total: partitions.len(),
                });
                break;
            }
            SearchResult::NotLinearizable(dead_end) => {
                let violation = explain(model, ops, partition, &dead_end, options, &mut meter);
                verdict = Verdict::NotLinearizable(Box::new(violation));
                break;
            }
        }
    }
    stats.steps = meter.steps;
    stats.elapsed = started.elapsed();
    Ok(CheckReport { verdict, stats })
}

/// Whether `order` is a linearization of `ops`: every operation once (optional ones, such as
/// those of unknown outcome, at most once), accepted step by step by the model, none after an
/// operation invoked after it returned. Asserted of every witness the search finds.
fn is_linearization<M: Model>(
    model: &M,
    ops: &[View<'_, M::Input, M::Output>],
    order: &[usize],
) -> bool {
    let mut used = vec![false; ops.len()];
    let mut state = model.init();
    // The latest invocation so far: an operation that returned before it cannot come later.
    let mut latest_invoke = 0;
    for &j in order {
        let op = ops[j];
        if std::mem::replace(&mut used[j], true) {
            return false;
        }
        if op.returned_at.is_some_and(|r| r < latest_invoke) {
            return false;
        }
        latest_invoke = latest_invoke.max(op.invoked_at);
        match model.step(&state, op.input, op.output) {
            Some(next) => state = next,
            None => return false,
        }
    }
    used.iter().zip(ops).all(|(&u, op)| u || op.optional)
}

/// Whether an operation can only matter through what it was told: a read that was told nothing
/// constrains nothing.
fn is_inert<M: Model>(model: &M, op: View<'_, M::Input, M::Output>) -> bool {
    op.output.is_none() && model.is_read_only(op.input)
}

/// The model's partitions, checked for bad indices, without refused operations or lost reads,
/// and with operations in history order so that searches are deterministic.
fn checked_partitions<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
) -> Result<Vec<Partition>, CheckError> {
    let mut seen = vec![false; ops.len()];
    let mut partitions = model.partition(ops);
    for partition in &mut partitions {
        for &index in &partition.operations {
            let problem = match seen.get_mut(index) {
                None => Some("out of range"),
                Some(true) => Some("twice"),
                Some(s) => {
                    *s = true;
                    None
                }
            };
            if let Some(problem) = problem {
                return Err(CheckError::BadPartition {
                    label: partition.label.clone(),
                    index,
                    problem,
                });
            }
        }
        partition
            .operations
            .retain(|&i| !ops[i].is_failed() && !is_inert(model, View::of(&ops[i])));
        partition.operations.sort_unstable();
    }
    partitions.retain(|p| !p.operations.is_empty());
    Ok(partitions)
}

fn summary<M: Model>(model: &M, ops: &[Operation<M::Input, M::Output>], index: usize) -> OpSummary {
    let op = &ops[index];
    OpSummary {
        index,
        client: op.client,
        invoked_at: op.invoked_at,
        returned_at: op.returned_at(),
        description: model.describe_operation(&op.input, op.output()),
    }
}

fn explain<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    partition: &Partition,
    dead_end: &DeadEnd<M::State>,
    options: &CheckOptions,
    meter: &mut Meter,
) -> Violation {
    let global = |local: usize| partition.operations[local];
    let mut state = model.init();
    let mut longest_prefix = Vec::with_capacity(dead_end.prefix.len());
    for &local in &dead_end.prefix {
        let op = &ops[global(local)];
        // Replaying the search's own choices: each step was accepted when it was made.
        if let Some(next) = model.step(&state, &op.input, op.output()) {
            state = next;
        }
        longest_prefix.push(LinearizedStep {
            op: summary(model, ops, global(local)),
            state_after: model.describe_state(&state),
        });
    }
    let candidates = dead_end
        .candidates
        .iter()
        .map(|&local| {
            let op = &ops[global(local)];
            Candidate {
                op: summary(model, ops, global(local)),
                refused_by_model: model
                    .step(&dead_end.state, &op.input, op.output())
                    .is_none(),
            }
        })
        .collect();
    let window: Vec<usize> = dead_end.relevant.iter().map(|&l| global(l)).collect();
    let (core, core_is_minimal) = if options.minimize {
        minimize(model, ops, &partition.operations, &window, meter)
    } else {
        (window.clone(), false)
    };
    let context = window
        .iter()
        .filter(|i| core.binary_search(i).is_err())
        .map(|&i| summary(model, ops, i))
        .collect();
    Violation {
        partition: partition.label.clone(),
        partition_size: partition.operations.len(),
        longest_prefix,
        stuck_state: model.describe_state(&dead_end.state),
        blocker: summary(model, ops, global(dead_end.blocker)),
        candidates,
        core: core.into_iter().map(|i| summary(model, ops, i)).collect(),
        context,
        core_is_minimal,
    }
}

/// Finds a core of a violation: operations of `window` that keep their recorded outcome while
/// every other operation of the partition is relaxed (it may take effect at any point of its
/// interval with any output, or not at all), and the whole is still not linearizable.
///
/// Operations invoked after the window were never reached by the search, so relaxing them all
/// keeps the violation. Relaxing only adds linearizations, so non-linearizability is monotone in
/// the relaxed set: relax halves, quarters, … then single operations of the window, keeping each
/// relaxation after which there is still no linearization. After the pass of single
/// operations, relaxing any core operation too gives a linearization. (Deleting operations
/// instead would mislead: without its write, any read looks like a read of a value never
/// written.)
///
/// Returns the core in history order and whether it is minimal (false when out of budget).
fn minimize<M: Model>(
    model: &M,
    ops: &[Operation<M::Input, M::Output>],
    partition: &[usize],
    window: &[usize],
    meter: &mut Meter,
) -> (Vec<usize>, bool) {
    // A search that runs out of budget here must not turn the verdict into "unknown": work on
    // a copy of the meter, capped, and keep only its step count.
    let mut sub = meter.clone();
    sub.cap_steps(MINIMIZE_MAX_STEPS);
    // Positions of the window's operations in the partition (both are in history order).
    let positions: Vec<usize> = window
        .iter()
        .filter_map(|i| partition.binary_search(i).ok())
        .collect();
    let mut relaxed = vec![true; partition.len()];
    for &p in &positions {
        relaxed[p] = false;
    }
    let mut chunk = positions.len().div_ceil(2).max(1);
    let complete = 'passes: loop {
        for part in positions.chunks(chunk) {
            if part.iter().all(|&p| relaxed[p]) {
                continue;
            }
            let trying = |p: usize| relaxed[p] || part.contains(&p);
            let views: Vec<View<'_, _, _>> = partition
                .iter()
                .enumerate()
                .filter_map(|(p, &i)| {
                    let view = View::of(&ops[i]);
                    if trying(p) {
                        let view = view.relaxed();
                        (!is_inert(model, view)).then_some(view)
                    } else {
                        Some(view)
                    }
                })
                .collect();
            match decide(model, &views, &mut sub) {
                SearchResult::NotLinearizable(_) => {
                    for &p in part {
                        relaxed[p] = true;
                    }
                }
                SearchResult::Linearizable(_) => {}
                SearchResult::Exhausted => break 'passes false,
            }
        }
        if chunk == 1 {
            break true;
        }
        chunk = chunk.div_ceil(2);
    };
    meter.steps = sub.steps;
    let core = positions
        .iter()
        .filter(|&&p| !relaxed[p])
        .map(|&p| partition[p])
        .collect();
    (core, complete)
}
