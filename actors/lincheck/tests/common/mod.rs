//! Random key-value histories for tests and the benchmark: linearizable by construction, and
//! mutations of them that cannot be linearized.
#![allow(dead_code)] // Each test binary uses a different part.

use std::collections::BTreeMap;

use rand::Rng;
use rand::seq::{IndexedRandom, IteratorRandom};
use rand_chacha::ChaCha8Rng;
use verisim_lincheck::{KvHistory, KvInput, KvOutput, Operation, Outcome};

pub type H = KvHistory<u32, u32>;
pub type Op = Operation<KvInput<u32, u32>, KvOutput<u32>>;

/// Shape of a generated history.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Concurrent clients.
    pub clients: usize,
    /// Keys.
    pub keys: u32,
    /// Operations.
    pub ops: usize,
    /// How far an invocation may precede, and a return follow, the linearization point
    /// (in units of the mean gap between linearization points, which is 5 ticks).
    pub spread: u64,
    /// Percent of operations whose client never learns the outcome.
    pub unknown_percent: u32,
    /// Percent of operations the system refuses (no effect).
    pub failed_percent: u32,
}

impl Shape {
    pub fn small(rng: &mut ChaCha8Rng) -> Self {
        Self {
            clients: rng.random_range(1..=5),
            keys: rng.random_range(1..=4),
            ops: rng.random_range(0..=60),
            spread: rng.random_range(0..=6),
            unknown_percent: rng.random_range(0..=10),
            failed_percent: rng.random_range(0..=10),
        }
    }
}

/// A history made by running a reference map: each operation takes effect atomically at a
/// linearization point, and its interval is drawn around that point. Always linearizable.
pub fn linearizable(rng: &mut ChaCha8Rng, shape: Shape) -> H {
    const GAP: u64 = 5;
    let width = shape.spread * GAP;
    let mut map: BTreeMap<u32, u32> = BTreeMap::new();
    let mut busy_until = vec![0u64; shape.clients];
    let mut ids: Vec<u64> = (0..shape.clients as u64).collect();
    let mut next_id = shape.clients as u64;
    let mut history = H::new();
    let mut t = 0u64;
    // Values from 11 on are fresh; 0..3 is a small pool shared by all operations.
    for fresh in (11u32..).take(shape.ops) {
        // The next linearization point at which some client is idle.
        let c = loop {
            t += rng.random_range(1..=2 * GAP);
            if let Some(c) = (0..shape.clients)
                .filter(|&c| busy_until[c] < t)
                .choose(rng)
            {
                break c;
            }
        };
        let earliest = (busy_until[c] + 1).max(t.saturating_sub(width));
        let invoked_at = rng.random_range(earliest..=t);
        let returned_at = t + rng.random_range(0..=width);
        let key = rng.random_range(0..shape.keys);
        // Mostly fresh values; sometimes a small shared pool, so values repeat (ABA).
        let value = if rng.random_ratio(1, 4) {
            rng.random_range(0..3)
        } else {
            fresh
        };
        let current = map.get(&key).copied();
        let input = match rng.random_range(0..10) {
            0..4 => KvInput::get(key),
            4..7 => KvInput::put(key, value),
            7..9 => {
                let expected = if rng.random_bool(0.5) {
                    current
                } else {
                    [None, Some(0), Some(1), Some(2)]
                        .choose(rng)
                        .copied()
                        .flatten()
                };
                KvInput::cas(key, expected, value)
            }
            _ => KvInput::delete(key),
        };
        let roll = rng.random_range(0..100);
        let outcome = if roll < shape.unknown_percent {
            // The client is gone; a new one takes its place. The operation took effect or not.
            ids[c] = next_id;
            next_id += 1;
            if rng.random_bool(0.5) {
                apply(&mut map, &input);
            }
            Outcome::Unknown
        } else if roll < shape.unknown_percent + shape.failed_percent {
            Outcome::Failed { at: returned_at }
        } else {
            Outcome::Returned {
                at: returned_at,
                output: apply(&mut map, &input),
            }
        };
        busy_until[c] = match outcome {
            Outcome::Unknown => t,
            _ => returned_at,
        };
        history.push(Operation {
            client: ids[c],
            input,
            invoked_at,
            outcome,
        });
    }
    history
}

fn apply(map: &mut BTreeMap<u32, u32>, input: &KvInput<u32, u32>) -> KvOutput<u32> {
    match *input {
        KvInput::Put { key, value } => {
            map.insert(key, value);
            KvOutput::Ok
        }
        KvInput::Get { key } => KvOutput::Value(map.get(&key).copied()),
        KvInput::Cas { key, expected, new } => {
            let swaps = map.get(&key).copied() == expected;
            if swaps {
                map.insert(key, new);
            }
            KvOutput::Swapped(swaps)
        }
        KvInput::Delete { key } => {
            map.remove(&key);
            KvOutput::Ok
        }
    }
}

/// How to make a read impossible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// The read returns a value nobody wrote.
    NeverWritten,
    /// The read returns a value that was definitely overwritten before the read was invoked.
    Stale,
    /// The read returns a value that only operations invoked after the read returned write.
    Future,
}

/// What may have set a key to a value: (invoked, returned; `None` for unknown outcomes).
fn writers(history: &H, key: u32, value: Option<u32>) -> Vec<(u64, Option<u64>)> {
    history
        .operations
        .iter()
        .filter(|op| *op.input.key() == key && !op.is_failed())
        .filter(|op| match (&op.input, op.output()) {
            (KvInput::Put { value: v, .. }, _) => Some(*v) == value,
            (KvInput::Delete { .. }, _) => value.is_none(),
            (KvInput::Cas { new, .. }, None | Some(KvOutput::Swapped(true))) => Some(*new) == value,
            _ => false,
        })
        .map(|op| (op.invoked_at, op.returned_at()))
        .collect()
}

/// Whether a read of `key` during `[invoked, returned]` cannot return `value`, by the rule of
/// `mutation`.
fn impossible(
    history: &H,
    key: u32,
    value: Option<u32>,
    invoked: u64,
    returned: u64,
    mutation: Mutation,
) -> bool {
    let writers = writers(history, key, value);
    match mutation {
        Mutation::NeverWritten => value.is_some() && writers.is_empty(),
        Mutation::Future => {
            value.is_some() && !writers.is_empty() && writers.iter().all(|&(i, _)| i > returned)
        }
        Mutation::Stale => {
            // A definite overwrite Q (to another value) returned before the read, and every
            // writer of `value` (and the initial state, for absent) returned before Q began.
            history.operations.iter().any(|q| {
                let overwrites = match (&q.input, q.output()) {
                    (KvInput::Put { value: w, .. }, Some(_)) => Some(*w) != value,
                    (KvInput::Delete { .. }, Some(_)) => value.is_some(),
                    (KvInput::Cas { new, .. }, Some(KvOutput::Swapped(true))) => {
                        Some(*new) != value
                    }
                    _ => false,
                };
                overwrites
                    && *q.input.key() == key
                    && q.returned_at().is_some_and(|r| r < invoked)
                    && writers
                        .iter()
                        .all(|&(_, r)| r.is_some_and(|r| r < q.invoked_at))
            })
        }
    }
}

/// Makes one answered read of `history` impossible by `mutation`. Returns the mutated history
/// and the read's index, or `None` if no read can be mutated that way.
pub fn mutate(rng: &mut ChaCha8Rng, history: &H, mutation: Mutation) -> Option<(H, usize)> {
    let reads: Vec<usize> = history
        .operations
        .iter()
        .enumerate()
        .filter(|(_, op)| matches!(op.input, KvInput::Get { .. }) && op.output().is_some())
        .map(|(i, _)| i)
        .collect();
    let mut options: Vec<(usize, Option<u32>)> = Vec::new();
    for &i in &reads {
        let op = &history.operations[i];
        let key = *op.input.key();
        let (invoked, returned) = (op.invoked_at, op.returned_at().unwrap_or(u64::MAX));
        let candidates: Vec<Option<u32>> = match mutation {
            Mutation::NeverWritten => vec![Some(1_000_000 + rng.random_range(0..1_000))],
            Mutation::Stale | Mutation::Future => {
                let mut values: Vec<Option<u32>> = vec![None];
                for w in &history.operations {
                    if *w.input.key() == key {
                        match w.input {
                            KvInput::Put { value, .. } => values.push(Some(value)),
                            KvInput::Cas { new, .. } => values.push(Some(new)),
                            _ => {}
                        }
                    }
                }
                values.sort_unstable();
                values.dedup();
                values
            }
        };
        for v in candidates {
            if impossible(history, key, v, invoked, returned, mutation) {
                options.push((i, v));
            }
        }
    }
    let &(i, v) = options.choose(rng)?;
    let mut mutated = history.clone();
    if let Outcome::Returned { output, .. } = &mut mutated.operations[i].outcome {
        assert_ne!(
            *output,
            KvOutput::Value(v),
            "the recorded value cannot be impossible"
        );
        *output = KvOutput::Value(v);
    }
    Some((mutated, i))
}

/// Seeds to run: `LINCHECK_SEED=n` runs only seed n, `LINCHECK_SEEDS=n` runs n seeds.
pub fn seeds(default: u64) -> Vec<u64> {
    if let Some(seed) = std::env::var("LINCHECK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return vec![seed];
    }
    let n = std::env::var("LINCHECK_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    (0..n).collect()
}
