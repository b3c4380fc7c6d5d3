//! The Wing–Gong–Lowe search over one partition.
//!
//! The history is a doubly linked list of call and return entries ordered by time. Walking it
//! from the head, a call entry is a candidate to linearize next: if the model accepts it and the
//! pair (set of linearized operations, new state) has not been seen before, the operation is
//! lifted out of the list (its call and its return) and the walk restarts from the head. Reaching
//! a return entry means that operation should already have been linearized: undo the last
//! choice and try the next candidate after it. An empty list is a linearization; backtracking
//! past the first choice proves there is none. The cache of (bitset, state) pairs (Lowe's
//! memoisation) makes the search visit each configuration once.

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
    /// May be left without effect (a relaxed operation).
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
            optional: false,
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

type Cache<S> = HashMap<u64, Vec<(Box<[u64]>, S)>, BuildHasherDefault<PassThrough>>;

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

/// Searches for a linearization of `ops` (the operations of one partition).
pub(crate) fn search<M: Model>(
    model: &M,
    ops: &[View<'_, M::Input, M::Output>],
    meter: &mut Meter,
) -> SearchResult<M::State> {
    let n = ops.len();
    let mut s = Search {
        model,
        ops,
        list: Entries::new(ops),
        zobrist: (0..n as u64).map(splitmix64).collect(),
        bits: vec![0u64; n.div_ceil(64)],
        bits_hash: 0,
        cache: HashMap::default(),
        stack: Vec::new(),
        state: model.init(),
    };
    let mut deepest: Option<DeadEnd<M::State>> = None;
    let mut furthest_return = 0;

    let mut entry = s.list.first();
    while s.list.first() != NIL {
        // The last entry of a non-empty list is a return, so the walk meets one before NIL.
        debug_assert_ne!(entry, NIL);
        let j = entry as usize / 2;
        if is_call(entry) {
            if !meter.tick() {
                return SearchResult::Exhausted;
            }
            if s.linearize(j, false) || (ops[j].optional && s.linearize(j, true)) {
                entry = s.list.first();
            } else {
                entry = s.list.next[entry as usize];
            }
        } else {
            // Operation j returned but is not linearized: every choice since the last one fails.
            if deepest
                .as_ref()
                .is_none_or(|d| s.stack.len() > d.prefix.len())
            {
                deepest = Some(DeadEnd {
                    prefix: s.stack.iter().map(|f| f.op).collect(),
                    state: s.state.clone(),
                    blocker: j,
                    candidates: s.list.calls_before(entry),
                    relevant: Vec::new(),
                });
            }
            furthest_return = furthest_return.max(s.list.rank[entry as usize]);
            let Some(k) = s.undo() else {
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
            entry = s.list.next[2 * k.op];
            // An optional operation that took effect may still be skipped instead.
            if !k.skipped && ops[k.op].optional {
                if !meter.tick() {
                    return SearchResult::Exhausted;
                }
                if s.linearize(k.op, true) {
                    entry = s.list.first();
                }
            }
        }
    }
    SearchResult::Linearizable(s.stack.into_iter().map(|f| f.op).collect())
}

/// One choice of the search: an operation linearized (or skipped), and the state before it.
struct Frame<S> {
    op: usize,
    before: S,
    skipped: bool,
}

struct Search<'m, 'o, M: Model> {
    model: &'m M,
    ops: &'o [View<'o, M::Input, M::Output>],
    list: Entries,
    /// A random word per operation; `bits_hash` is the xor over the linearized ones.
    zobrist: Vec<u64>,
    bits: Vec<u64>,
    bits_hash: u64,
    cache: Cache<M::State>,
    stack: Vec<Frame<M::State>>,
    state: M::State,
}

impl<M: Model> Search<'_, '_, M> {
    /// Linearizes operation `j` next (or, with `skip`, lets it pass without effect) if the
    /// model accepts it and the resulting configuration is new.
    fn linearize(&mut self, j: usize, skip: bool) -> bool {
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
        if bucket.iter().any(|(b, s)| **b == *self.bits && *s == after) {
            self.bits[j / 64] &= !(1 << (j % 64));
            return false;
        }
        bucket.push((self.bits.clone().into_boxed_slice(), after.clone()));
        let before = std::mem::replace(&mut self.state, after);
        self.stack.push(Frame {
            op: j,
            before,
            skipped: skip,
        });
        self.bits_hash = key_bits;
        self.list.lift(j);
        true
    }

    /// Takes back the last choice.
    fn undo(&mut self) -> Option<Frame<()>> {
        let frame = self.stack.pop()?;
        let k = frame.op;
        self.state = frame.before;
        self.bits[k / 64] &= !(1 << (k % 64));
        self.bits_hash ^= self.zobrist[k];
        self.list.unlift(k);
        Some(Frame {
            op: k,
            before: (),
            skipped: frame.skipped,
        })
    }
}
