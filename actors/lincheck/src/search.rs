//! The Wing–Gong–Lowe search over one partition.
//!
//! The history is a doubly linked list of call and return entries ordered by time. Walking it
//! from the head, a call entry is a candidate to linearize next: if the model accepts it and the
//! pair (set of placed operations, new state) has not been seen before, the operation is lifted
//! out of the list (its call and its return) and the walk restarts from the head. Reaching a
//! return entry means that operation should already have been placed: undo the last choice and
//! try the next candidate after it. Placing every operation that returned is a linearization;
//! backtracking past the first choice proves there is none. The cache of (bitset, state) pairs
//! (Lowe's memoisation) makes the search visit each configuration once.
//!
//! Operations of unknown outcome return at +infinity and are optional: those never placed did
//! not take effect. A configuration that placed fewer of them, with the same returning
//! operations placed and the same state, *dominates* one that placed more (it can skip the
//! extra ones), so the cache prunes dominated configurations, not only equal ones. The eager
//! strategy tries them in time order like the rest; the deferred one only when the walk is
//! stuck, so that dominating configurations come first (see [`decide`]).
//!
//! Relaxed operations (used to minimise a violation) keep their interval but may also be
//! placed without effect.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::time::Instant;

use crate::model::Model;

/// Why a search stopped without a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exhaustion {
    /// The step budget ran out.
    Steps,
    /// The time budget ran out.
    Time,
}

/// Counts model steps against the caller's budget.
#[derive(Clone, Debug)]
pub(crate) struct Meter {
    pub(crate) steps: u64,
    max_steps: Option<u64>,
    deadline: Option<Instant>,
    pub(crate) exhausted: Option<Exhaustion>,
}

impl Meter {
    pub(crate) fn new(max_steps: Option<u64>, deadline: Option<Instant>) -> Self {
        Self {
            steps: 0,
            max_steps,
            deadline,
            exhausted: None,
        }
    }

    /// Allows at most `more` further steps.
    pub(crate) fn cap_steps(&mut self, more: u64) {
        let cap = self.steps.saturating_add(more);
        self.max_steps = Some(self.max_steps.map_or(cap, |max| max.min(cap)));
    }

    /// Counts one step; false once the budget is spent.
    fn tick(&mut self) -> bool {
        if self.exhausted.is_some() {
            return false;
        }
        self.steps += 1;
        if self.max_steps.is_some_and(|max| self.steps > max) {
            self.exhausted = Some(Exhaustion::Steps);
            return false;
        }
        // Reading the clock costs more than a model step; look at it every 1024 steps.
        if self.steps.is_multiple_of(1024) && self.deadline.is_some_and(|d| Instant::now() >= d) {
            self.exhausted = Some(Exhaustion::Time);
            return false;
        }
        true
    }
}

/// What the search needs of an operation. Minimisation builds relaxed views (output and return
/// forgotten) of recorded operations without copying them.
pub(crate) struct View<'a, I, O> {
    pub(crate) input: &'a I,
    /// `None`: unknown outcome, any output accepted.
    pub(crate) output: Option<&'a O>,
    pub(crate) invoked_at: u64,
    /// `None`: +infinity.
    pub(crate) returned_at: Option<u64>,
    /// May be left without effect (an unknown outcome, or a relaxed operation).
    pub(crate) optional: bool,
}

impl<I, O> Clone for View<'_, I, O> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<I, O> Copy for View<'_, I, O> {}

impl<'a, I, O> View<'a, I, O> {
    pub(crate) fn of(op: &'a crate::history::Operation<I, O>) -> Self {
        Self {
            input: &op.input,
            output: op.output(),
            invoked_at: op.invoked_at,
            returned_at: op.returned_at(),
            // An operation of unknown outcome may never have taken effect.
            optional: op.returned_at().is_none(),
        }
    }

    /// The same operation with its output forgotten and its effect optional: it may take
    /// effect at any point of its interval, with any output, or not at all. Its interval is
    /// kept, so relaxing adds no concurrency to the search.
    pub(crate) fn relaxed(self) -> Self {
        Self {
            output: None,
            optional: true,
            ..self
        }
    }
}

/// The deepest configuration the search reached before every way on failed.
#[derive(Clone, Debug)]
pub(crate) struct DeadEnd<S> {
    /// Local indices of the linearized operations, in linearization order.
    pub(crate) prefix: Vec<usize>,
    /// Model state after the prefix.
    pub(crate) state: S,
    /// The operation whose return was reached while it was still unlinearized.
    pub(crate) blocker: usize,
    /// The operations that could have been linearized next (invoked before that return).
    pub(crate) candidates: Vec<usize>,
    /// The operations invoked before the latest return the search ever reached. The others
    /// were never looked at: without them the search runs exactly the same and fails the same.
    pub(crate) relevant: Vec<usize>,
}

pub(crate) enum SearchResult<S> {
    /// Local indices in linearization order.
    Linearizable(Vec<usize>),
    NotLinearizable(DeadEnd<S>),
    Exhausted,
}

const NIL: u32 = u32::MAX;

/// Entry `2j` is the call of operation `j`, entry `2j + 1` its return.
fn is_call(entry: u32) -> bool {
    entry.is_multiple_of(2)
}

/// A hasher for keys that already are well-mixed 64-bit hashes.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// FxHash-style hasher for model states: fast and the same in every run, so step counts and
/// reports replay exactly.
#[derive(Default)]
struct StateHasher(u64);

impl Hasher for StateHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }
}

impl StateHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

fn hash_state<S: Hash>(state: &S) -> u64 {
    let mut h = StateHasher::default();
    state.hash(&mut h);
    splitmix64(h.finish())
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A configuration seen: placed operations and state, and whether it is only reserved (found
/// as a candidate, to be explored later by the walk that found it).
struct Seen<S> {
    bits: Box<[u64]>,
    state: S,
    reserved: bool,
}

type Cache<S> = HashMap<u64, Vec<Seen<S>>, BuildHasherDefault<PassThrough>>;

/// The call/return list of one partition, linked through two arrays. Entry `2j` is the call of
/// local operation `j`, entry `2j + 1` its return, entry `2n` the head.
struct Entries {
    next: Vec<u32>,
    prev: Vec<u32>,
    head: u32,
    /// Position of each entry in time order.
    rank: Vec<u32>,
}

impl Entries {
    fn new<I, O>(ops: &[View<'_, I, O>]) -> Self {
        let n = ops.len();
        // (time, 0 for a call / 1 for a return, entry). Calls sort before returns at equal times:
        // touching intervals are concurrent. Unknown outcomes return after everything.
        let mut order: Vec<(u64, u8, u32)> = Vec::with_capacity(2 * n);
        for (j, op) in ops.iter().enumerate() {
            let call = 2 * j as u32;
            order.push((op.invoked_at, 0, call));
            match op.returned_at {
                Some(at) => order.push((at, 1, call + 1)),
                None => order.push((u64::MAX, 2, call + 1)),
            }
        }
        order.sort_unstable();
        let head = 2 * n as u32;
        let mut next = vec![NIL; 2 * n + 1];
        let mut prev = vec![NIL; 2 * n + 1];
        let mut rank = vec![0; 2 * n];
        let mut last = head;
        for (position, &(_, _, e)) in order.iter().enumerate() {
            next[last as usize] = e;
            prev[e as usize] = last;
            rank[e as usize] = position as u32;
            last = e;
        }
        Self {
            next,
            prev,
            head,
            rank,
        }
    }

    fn first(&self) -> u32 {
        self.next[self.head as usize]
    }

    fn unlink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = n;
        if n != NIL {
            self.prev[n as usize] = p;
        }
    }

    fn relink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = e;
        if n != NIL {
            self.prev[n as usize] = e;
        }
    }

    /// Removes operation `j` (call and return) from the list.
    fn lift(&mut self, j: usize) {
        self.unlink(2 * j as u32);
        self.unlink(2 * j as u32 + 1);
    }

    /// Puts back the operation lifted last (dancing links: undo in reverse order).
    fn unlift(&mut self, j: usize) {
        self.relink(2 * j as u32 + 1);
        self.relink(2 * j as u32);
    }

    /// Operations whose call precedes entry `stop` in the list.
    fn calls_before(&self, stop: u32) -> Vec<usize> {
        let mut out = Vec::new();
        let mut e = self.first();
        while e != stop && e != NIL {
            if is_call(e) {
                out.push(e as usize / 2);
            }
            e = self.next[e as usize];
        }
        out
    }
}

/// Which candidates the walk is trying: first those that must return, then (at the first
/// return in the way) those whose outcome is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Returning,
    Deferred,
}

/// How the search treats operations of unknown outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Strategy {
    /// Like any other candidate, in time order: finds a linearization fast when most of them
    /// took effect soon after their invocation, but may try every subset of them before it
    /// can say there is none.
    Eager,
    /// Only when the walk is stuck, and with reservations that prune sets of them (see
    /// `reserve_deferred`): slower to find a linearization, much faster to rule one out.
    Deferred,
}

/// Searches for a linearization of `ops`: first eagerly, with a slice of the budget, then, if
/// that was not enough and some outcomes are unknown, deferring those.
pub(crate) fn decide<M: Model>(
    model: &M,
    ops: &[View<'_, M::Input, M::Output>],
    meter: &mut Meter,
) -> SearchResult<M::State> {
    if ops.iter().all(|op| op.returned_at.is_some()) {
        return search(model, ops, meter, Strategy::Eager);
    }
    let mut slice = meter.clone();
    slice.cap_steps(EAGER_STEPS_PER_OP * ops.len() as u64 + EAGER_STEPS_BASE);
    let eager = search(model, ops, &mut slice, Strategy::Eager);
    meter.steps = slice.steps;
    match eager {
        SearchResult::Exhausted if slice.exhausted == Some(Exhaustion::Steps) => {
            search(model, ops, meter, Strategy::Deferred)
        }
        SearchResult::Exhausted => {
            meter.exhausted = slice.exhausted;
            SearchResult::Exhausted
        }
        found => found,
    }
}

/// The eager search's slice of the budget: enough to walk a linearizable history straight
/// through many times over.
const EAGER_STEPS_PER_OP: u64 = 100;
const EAGER_STEPS_BASE: u64 = 10_000;

/// Searches for a linearization of `ops` (the operations of one partition).
pub(crate) fn search<M: Model>(
    model: &M,
    ops: &[View<'_, M::Input, M::Output>],
    meter: &mut Meter,
    strategy: Strategy,
) -> SearchResult<M::State> {
    let n = ops.len();
    let deferred: Vec<bool> = ops.iter().map(|op| op.returned_at.is_none()).collect();
    let mut deferred_mask = vec![0u64; n.div_ceil(64)];
    for j in (0..n).filter(|&j| deferred[j]) {
        deferred_mask[j / 64] |= 1 << (j % 64);
    }
    let mut s = Search {
        model,
        ops,
        list: Entries::new(ops),
        // Deferred operations stay out of the hash: configurations that differ only in them
        // share a bucket, where domination is checked.
        zobrist: (0..n)
            .map(|j| if deferred[j] { 0 } else { splitmix64(j as u64) })
            .collect(),
        bits: vec![0u64; n.div_ceil(64)],
        deferred_mask,
        bits_hash: 0,
        cache: HashMap::default(),
        stack: Vec::new(),
        state: model.init(),
        returning_left: deferred.iter().filter(|&&d| !d).count(),
    };
    let mut deepest: Option<DeadEnd<M::State>> = None;
    let mut furthest_return = 0;

    let mut entry = s.list.first();
    let mut phase = Phase::Returning;
    // Once every operation that returned is placed, the unknown ones left may never have taken
    // effect: done.
    while s.returning_left > 0 {
        // The last entry of the list is a return, so the walk meets one before NIL.
        debug_assert_ne!(entry, NIL);
        let j = entry as usize / 2;
        if is_call(entry) {
            if strategy == Strategy::Deferred && deferred[j] != (phase == Phase::Deferred) {
                entry = s.list.next[entry as usize];
                continue;
            }
            if !meter.tick() {
                return SearchResult::Exhausted;
            }
            if s.linearize(j, false, phase) || (s.skippable(j) && s.linearize(j, true, phase)) {
                entry = s.list.first();
                phase = Phase::Returning;
            } else {
                entry = s.list.next[entry as usize];
            }
        } else if strategy == Strategy::Deferred && phase == Phase::Returning {
            // Operation j returned and is not placed: first try placing the operations of
            // unknown outcome invoked before this point.
            phase = Phase::Deferred;
            if !s.reserve_deferred(entry, meter) {
                return SearchResult::Exhausted;
            }
            entry = s.list.first();
        } else {
            // No candidate works: every choice since the last one fails.
            if deepest
                .as_ref()
                .is_none_or(|d| s.stack.len() > d.prefix.len())
            {
                deepest = Some(DeadEnd {
                    prefix: s
                        .stack
                        .iter()
                        .filter(|f| !f.skipped)
                        .map(|f| f.op)
                        .collect(),
                    state: s.state.clone(),
                    blocker: j,
                    candidates: s.list.calls_before(entry),
                    relevant: Vec::new(),
                });
            }
            furthest_return = furthest_return.max(s.list.rank[entry as usize]);
            let Some(frame) = s.undo() else {
                // A dead end was recorded just above, so `deepest` is set.
                return match deepest {
                    Some(mut d) => {
                        d.relevant = (0..n)
                            .filter(|&j| s.list.rank[2 * j] < furthest_return)
                            .collect();
                        SearchResult::NotLinearizable(d)
                    }
                    None => SearchResult::Exhausted,
                };
            };
            entry = s.list.next[2 * frame.op];
            phase = frame.phase;
            // An optional operation that took effect may still be skipped instead.
            if !frame.skipped && s.skippable(frame.op) {
                if !meter.tick() {
                    return SearchResult::Exhausted;
                }
                if s.linearize(frame.op, true, frame.phase) {
                    entry = s.list.first();
                    phase = Phase::Returning;
                }
            }
        }
    }
    SearchResult::Linearizable(
        s.stack
            .into_iter()
            .filter(|f| !f.skipped)
            .map(|f| f.op)
            .collect(),
    )
}

/// One choice of the search: an operation placed (or skipped), the state before it, and where
/// the walk was when it chose.
struct Frame<S> {
    op: usize,
    before: S,
    skipped: bool,
    phase: Phase,
}

struct Search<'m, 'o, M: Model> {
    model: &'m M,
    ops: &'o [View<'o, M::Input, M::Output>],
    list: Entries,
    /// A random word per returning operation (0 for deferred ones); `bits_hash` is the xor
    /// over the placed ones.
    zobrist: Vec<u64>,
    /// Placed (or skipped) operations.
    bits: Vec<u64>,
    /// Operations of unknown outcome.
    deferred_mask: Vec<u64>,
    bits_hash: u64,
    cache: Cache<M::State>,
    stack: Vec<Frame<M::State>>,
    state: M::State,
    /// Operations with a return time not yet placed.
    returning_left: usize,
}

/// Whether a configuration seen before (`seen`) makes the current one (`now`, same state)
/// pointless: the same returning operations placed, and only some of the deferred ones.
/// Whatever can follow `now` can follow `seen` too, by skipping the deferred operations `now`
/// placed that `seen` did not.
fn dominates(seen: &[u64], now: &[u64], deferred: &[u64]) -> bool {
    seen.iter()
        .zip(now)
        .zip(deferred)
        .all(|((&s, &n), &d)| (s ^ n) & !d == 0 && s & !n & d == 0)
}

impl<M: Model> Search<'_, '_, M> {
    /// Places operation `j` next (or, with `skip`, lets it pass without effect) if the model
    /// accepts it and no configuration seen before dominates the result.
    fn linearize(&mut self, j: usize, skip: bool, phase: Phase) -> bool {
        let after = if skip {
            self.state.clone()
        } else {
            match self
                .model
                .step(&self.state, self.ops[j].input, self.ops[j].output)
            {
                Some(after) => after,
                None => return false,
            }
        };
        self.bits[j / 64] |= 1 << (j % 64);
        let key_bits = self.bits_hash ^ self.zobrist[j];
        let bucket = self.cache.entry(key_bits ^ hash_state(&after)).or_default();
        let (bits, deferred) = (&self.bits, &self.deferred_mask);
        if let Some(seen) = bucket
            .iter_mut()
            .find(|seen| seen.state == after && dominates(&seen.bits, bits, deferred))
        {
            // A reservation is for exploring exactly this configuration, whoever gets there.
            if !(seen.reserved && *seen.bits == **bits) {
                self.bits[j / 64] &= !(1 << (j % 64));
                return false;
            }
            seen.reserved = false;
        } else {
            // Entries the new configuration dominates can prune nothing it cannot.
            bucket.retain(|seen| !(seen.state == after && dominates(bits, &seen.bits, deferred)));
            bucket.push(Seen {
                bits: bits.clone().into_boxed_slice(),
                state: after.clone(),
                reserved: false,
            });
        }
        let before = std::mem::replace(&mut self.state, after);
        self.stack.push(Frame {
            op: j,
            before,
            skipped: skip,
            phase,
        });
        self.bits_hash = key_bits;
        if self.ops[j].returned_at.is_some() {
            self.returning_left -= 1;
        }
        self.list.lift(j);
        true
    }

    /// Whether operation `j` may also be left without effect once placing it failed. Not for
    /// operations of unknown outcome: for them, staying unplaced is the same.
    fn skippable(&self, j: usize) -> bool {
        self.ops[j].optional && self.ops[j].returned_at.is_some()
    }

    /// Before trying, one by one, the operations of unknown outcome invoked before `barrier`,
    /// reserves the configuration each would lead to. Placing several of them in a row then
    /// meets the reservation of the last one alone, which dominates it, and is pruned: without
    /// this, every subset of them would be tried at every dead end. False when out of budget.
    fn reserve_deferred(&mut self, barrier: u32, meter: &mut Meter) -> bool {
        let mut e = self.list.first();
        while e != barrier && e != NIL {
            let j = e as usize / 2;
            if is_call(e) && self.ops[j].returned_at.is_none() {
                if !meter.tick() {
                    return false;
                }
                if let Some(after) =
                    self.model
                        .step(&self.state, self.ops[j].input, self.ops[j].output)
                {
                    self.bits[j / 64] |= 1 << (j % 64);
                    let key = self.bits_hash ^ self.zobrist[j] ^ hash_state(&after);
                    let bucket = self.cache.entry(key).or_default();
                    let (bits, deferred) = (&self.bits, &self.deferred_mask);
                    if !bucket
                        .iter()
                        .any(|seen| seen.state == after && dominates(&seen.bits, bits, deferred))
                    {
                        bucket.push(Seen {
                            bits: bits.clone().into_boxed_slice(),
                            state: after,
                            reserved: true,
                        });
                    }
                    self.bits[j / 64] &= !(1 << (j % 64));
                }
            }
            e = self.list.next[e as usize];
        }
        true
    }

    /// Takes back the last choice.
    fn undo(&mut self) -> Option<Frame<()>> {
        let frame = self.stack.pop()?;
        let k = frame.op;
        self.state = frame.before;
        self.bits[k / 64] &= !(1 << (k % 64));
        self.bits_hash ^= self.zobrist[k];
        if self.ops[k].returned_at.is_some() {
            self.returning_left += 1;
        }
        self.list.unlift(k);
        Some(Frame {
            op: k,
            before: (),
            skipped: frame.skipped,
            phase: frame.phase,
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::kv::{KvInput, KvModel, KvOutput};

    type In = KvInput<u8, u8>;
    type Out = KvOutput<u8>;

    /// Every order by brute force: an operation may go next unless a pending one returned
    /// before its invocation; optional ones may go without effect, and those of unknown
    /// outcome may also never go.
    fn brute_force(model: &KvModel<u8, u8>, ops: &[View<'_, In, Out>]) -> bool {
        fn go(
            model: &KvModel<u8, u8>,
            ops: &[View<'_, In, Out>],
            done: &mut [bool],
            state: &Option<u8>,
        ) -> bool {
            let pending: Vec<usize> = (0..ops.len()).filter(|&i| !done[i]).collect();
            if pending.iter().all(|&i| ops[i].returned_at.is_none()) {
                return true;
            }
            for &i in &pending {
                if pending
                    .iter()
                    .any(|&j| ops[j].returned_at.is_some_and(|r| r < ops[i].invoked_at))
                {
                    continue;
                }
                done[i] = true;
                if let Some(next) = model.step(state, ops[i].input, ops[i].output)
                    && go(model, ops, done, &next)
                {
                    return true;
                }
                if ops[i].optional && go(model, ops, done, state) {
                    return true;
                }
                done[i] = false;
            }
            false
        }
        go(model, ops, &mut vec![false; ops.len()], &model.init())
    }

    #[test]
    fn both_strategies_agree_with_brute_force_on_one_key() {
        let model = KvModel::<u8, u8>::new();
        let (mut linearizable, mut not) = (0, 0);
        // `LINCHECK_SEEDS=n` runs more.
        let seeds = std::env::var("LINCHECK_SEEDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20_000u64);
        for seed in 0..seeds {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let n = rng.random_range(0..9);
            let mut inputs = Vec::new();
            let mut outputs = Vec::new();
            for _ in 0..n {
                let v = rng.random_range(0..3);
                let (input, output) = match rng.random_range(0..4) {
                    0 => (KvInput::put(0, v), KvOutput::Ok),
                    1 => (KvInput::delete(0), KvOutput::Ok),
                    2 => {
                        let read = rng.random_bool(0.7).then(|| rng.random_range(0..3));
                        (KvInput::get(0), KvOutput::Value(read))
                    }
                    _ => {
                        let expected = rng.random_bool(0.7).then(|| rng.random_range(0..3));
                        let swapped = rng.random_bool(0.5);
                        (KvInput::cas(0, expected, v), KvOutput::Swapped(swapped))
                    }
                };
                inputs.push(input);
                outputs.push(output);
            }
            let views: Vec<View<'_, In, Out>> = (0..n)
                .map(|i| {
                    let invoked_at = rng.random_range(0..20);
                    let returned_at = invoked_at + rng.random_range(0..10);
                    let view = View {
                        input: &inputs[i],
                        output: Some(&outputs[i]),
                        invoked_at,
                        returned_at: Some(returned_at),
                        optional: false,
                    };
                    match rng.random_range(0..10) {
                        0 | 1 => View {
                            output: None,
                            returned_at: None,
                            optional: true,
                            ..view
                        },
                        2 => view.relaxed(),
                        _ => view,
                    }
                })
                .collect();
            let expected = brute_force(&model, &views);
            for strategy in [Strategy::Eager, Strategy::Deferred] {
                let mut meter = Meter::new(None, None);
                let got = match search(&model, &views, &mut meter, strategy) {
                    SearchResult::Linearizable(_) => true,
                    SearchResult::NotLinearizable(_) => false,
                    SearchResult::Exhausted => panic!("seed {seed}: no budget was set"),
                };
                assert_eq!(got, expected, "seed {seed}, {strategy:?}");
            }
            if expected {
                linearizable += 1;
            } else {
                not += 1;
            }
        }
        // Both verdicts are well represented, or the comparison proves little.
        assert!(
            linearizable > seeds / 4 && not > seeds / 4,
            "{linearizable} / {not}"
        );
    }
}
