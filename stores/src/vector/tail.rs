//! The pending tail of a collection: vectors written (durably) but not yet linked into the HNSW
//! graph. A write only appends here, so it is acknowledged without paying for graph insertion;
//! [`super::VectorStore::index_pending`] moves tail vectors into the graph later, oldest first, and
//! searches scan the tail exactly and merge it with the graph's answer.
//!
//! Oldest first keeps the graph deterministic: the graph is built in write order, as a synchronous
//! index would build it, whatever the slicing of the background work.

use std::collections::{HashMap, VecDeque};

use crate::EntityId;

/// Default bound on a collection's tail: beyond it a write indexes the oldest pending vectors
/// itself, so the exact scan every ANN search pays stays small (4096 × 128-d ≈ 0.5 M flops).
pub const TAIL_LIMIT: usize = 4096;

#[derive(Default)]
pub(super) struct Tail {
    /// Prepared vectors in arrival order; `None` once replaced or deleted while pending.
    entries: VecDeque<Option<(EntityId, Vec<f32>)>>,
    /// Id → absolute position (`head` + index into `entries`).
    pos: HashMap<EntityId, u64>,
    /// Absolute position of `entries[0]`.
    head: u64,
}

impl Tail {
    /// Pending vectors.
    pub(super) fn len(&self) -> usize {
        self.pos.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pos.is_empty()
    }

    pub(super) fn contains(&self, id: &EntityId) -> bool {
        self.pos.contains_key(id)
    }

    /// Appends a prepared vector (replacing a pending one of the same id).
    pub(super) fn push(&mut self, id: &EntityId, v: Vec<f32>) {
        self.remove(id);
        let at = self.head + self.entries.len() as u64;
        self.entries.push_back(Some((id.clone(), v)));
        self.pos.insert(id.clone(), at);
    }

    /// Drops a pending vector; true if it was pending.
    pub(super) fn remove(&mut self, id: &EntityId) -> bool {
        let Some(at) = self.pos.remove(id) else {
            return false;
        };
        if let Some(slot) = usize::try_from(at - self.head)
            .ok()
            .and_then(|i| self.entries.get_mut(i))
        {
            *slot = None;
        }
        self.trim();
        // Ids rewritten over and over while pending leave holes; keep them from piling up.
        if self.entries.len() > 2 * self.pos.len() + 64 {
            self.compact();
        }
        true
    }

    /// The oldest pending vector, taken out of the tail.
    pub(super) fn pop(&mut self) -> Option<(EntityId, Vec<f32>)> {
        self.trim();
        let (id, v) = self.entries.pop_front()??;
        self.head += 1;
        self.pos.remove(&id);
        self.trim();
        Some((id, v))
    }

    /// Pending ids, oldest first.
    pub(super) fn ids(&self) -> impl Iterator<Item = &EntityId> {
        self.iter().map(|(id, _)| id)
    }

    /// Pending (id, prepared vector), oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&EntityId, &[f32])> {
        self.entries
            .iter()
            .flatten()
            .map(|(id, v)| (id, v.as_slice()))
    }

    /// The prepared vector of a pending id.
    pub(super) fn get(&self, id: &EntityId) -> Option<&[f32]> {
        let at = *self.pos.get(id)?;
        let i = usize::try_from(at - self.head).ok()?;
        self.entries.get(i)?.as_ref().map(|(_, v)| v.as_slice())
    }

    /// Approximate heap bytes held.
    pub(super) fn heap_bytes(&self) -> usize {
        self.iter().map(|(_, v)| 4 * v.len() + 96).sum::<usize>() + 8 * self.entries.capacity()
    }

    /// Drops holes at the front, so `pop` and `head` stay cheap.
    fn trim(&mut self) {
        while matches!(self.entries.front(), Some(None)) {
            self.entries.pop_front();
            self.head += 1;
        }
    }

    fn compact(&mut self) {
        let live: VecDeque<_> = self.entries.drain(..).flatten().map(Some).collect();
        self.entries = live;
        self.pos.clear();
        for (i, e) in (self.head..).zip(&self.entries) {
            if let Some((id, _)) = e {
                self.pos.insert(id.clone(), i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::id;

    #[test]
    fn fifo_with_replacements_and_removals() {
        let mut t = Tail::default();
        for i in 0..5u8 {
            t.push(&id(&format!("e{i}")), vec![f32::from(i)]);
        }
        t.push(&id("e1"), vec![10.0]);
        assert!(t.remove(&id("e0")));
        assert!(!t.remove(&id("e0")));
        assert_eq!(t.len(), 4);
        assert_eq!(t.get(&id("e1")), Some(&[10.0][..]));
        let order: Vec<String> = t.ids().map(|i| i.as_str().to_owned()).collect();
        assert_eq!(order, ["e2", "e3", "e4", "e1"]);
        assert_eq!(t.pop().map(|(i, _)| i), Some(id("e2")));
        // Many rewrites of one id do not grow the queue without bound.
        for i in 0..10_000u16 {
            t.push(&id("hot"), vec![f32::from(i)]);
        }
        assert!(t.entries.len() < 200, "{}", t.entries.len());
        assert_eq!(t.get(&id("hot")), Some(&[9999.0][..]));
        let rest: Vec<String> = std::iter::from_fn(|| t.pop())
            .map(|(i, _)| i.as_str().to_owned())
            .collect();
        assert_eq!(rest, ["e3", "e4", "e1", "hot"]);
        assert_eq!(t.len(), 0);
        assert!(t.pop().is_none());
    }
}
