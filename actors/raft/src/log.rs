//! The in-memory log: the entries after the last compaction point, plus what is durable and what has
//! been handed out. Snapshots keep it short, so the whole tail lives in memory and the core stays pure.

use crate::types::{Entry, Index, Payload, Term};

#[derive(Clone, Debug)]
pub(crate) struct RaftLog {
    /// Index and term of the entry just before `entries[0]` (the compaction point, or a snapshot).
    offset: Index,
    offset_term: Term,
    entries: Vec<Entry>,
    /// Entries up to here are durable on this node (as far as the core has been told).
    pub(crate) persisted: Index,
    /// First index not yet handed to the driver for persistence.
    pub(crate) unstable_from: Index,
    pub(crate) commit: Index,
    /// Highest index handed out for applying.
    pub(crate) applied_handed: Index,
    /// Highest index the driver confirmed applied.
    pub(crate) applied: Index,
}

impl RaftLog {
    /// A log whose first entry will be `offset + 1`; everything up to `offset` is durable and applied.
    pub(crate) fn new(offset: Index, offset_term: Term) -> Self {
        RaftLog {
            offset,
            offset_term,
            entries: Vec::new(),
            persisted: offset,
            unstable_from: offset + 1,
            commit: offset,
            applied_handed: offset,
            applied: offset,
        }
    }

    /// Rebuild from persisted entries (already validated contiguous, starting at `offset + 1`).
    pub(crate) fn restore(offset: Index, offset_term: Term, entries: Vec<Entry>) -> Self {
        let mut log = RaftLog::new(offset, offset_term);
        log.entries = entries;
        log.persisted = log.last_index();
        log.unstable_from = log.last_index() + 1;
        log
    }

    pub(crate) fn offset(&self) -> Index {
        self.offset
    }

    pub(crate) fn first_index(&self) -> Index {
        self.offset + 1
    }

    pub(crate) fn last_index(&self) -> Index {
        self.offset + self.entries.len() as Index
    }

    pub(crate) fn last_term(&self) -> Term {
        self.entries.last().map_or(self.offset_term, |e| e.term)
    }

    /// The term of the entry at `index`, or `None` if it is compacted away or beyond the end.
    pub(crate) fn term(&self, index: Index) -> Option<Term> {
        if index == self.offset {
            return Some(self.offset_term);
        }
        self.entry(index).map(|e| e.term)
    }

    pub(crate) fn entry(&self, index: Index) -> Option<&Entry> {
        if index <= self.offset {
            return None;
        }
        self.entries.get((index - self.offset - 1) as usize)
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub(crate) fn matches(&self, index: Index, term: Term) -> bool {
        self.term(index) == Some(term)
    }

    /// Entries in `[from, to]`, capped at `max_bytes` (always at least one entry) and `max_count`.
    pub(crate) fn slice(
        &self,
        from: Index,
        to: Index,
        max_count: usize,
        max_bytes: usize,
    ) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut index = from.max(self.first_index());
        while index <= to && out.len() < max_count {
            let Some(entry) = self.entry(index) else {
                break;
            };
            bytes += entry.approx_size();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(entry.clone());
            index += 1;
        }
        out
    }

    /// Append entries that directly follow the last one (the leader's own proposals).
    pub(crate) fn append(&mut self, entry: Entry) {
        debug_assert_eq!(
            entry.index,
            self.last_index() + 1,
            "log append out of order"
        );
        debug_assert!(
            entry.term >= self.last_term(),
            "log terms must not decrease"
        );
        self.entries.push(entry);
    }

    /// Bug `KeepConflictingSuffix` only: replace the entry at `entry.index` in place, keeping what
    /// follows it (the terms after it may then decrease: the bug's damage).
    pub(crate) fn overwrite(&mut self, entry: Entry) {
        let index = entry.index;
        if index <= self.offset || index > self.last_index() {
            return;
        }
        self.entries[(index - self.offset - 1) as usize] = entry;
        self.persisted = self.persisted.min(index - 1);
        self.unstable_from = self.unstable_from.min(index);
    }

    /// Bug `KeepConflictingSuffix` only: append after an entry that may have a higher term.
    pub(crate) fn append_unchecked(&mut self, entry: Entry) {
        if entry.index == self.last_index() + 1 {
            self.entries.push(entry);
        }
    }

    /// Drop every entry from `index` on (a conflict found while appending a leader's entries).
    pub(crate) fn truncate_from(&mut self, index: Index) {
        debug_assert!(index > self.commit, "truncating committed entry {index}");
        if index <= self.offset {
            return;
        }
        self.entries.truncate((index - self.offset - 1) as usize);
        self.persisted = self.persisted.min(index - 1);
        self.unstable_from = self.unstable_from.min(index);
    }

    /// Largest index at or below `index` whose term is at most `term` (the fast-backtracking probe).
    pub(crate) fn find_conflict_by_term(&self, index: Index, term: Term) -> Index {
        let mut i = index.min(self.last_index());
        while i > self.offset {
            match self.term(i) {
                Some(t) if t <= term => return i,
                _ => i -= 1,
            }
        }
        i
    }

    /// Forget entries up to `index` (they are covered by a snapshot). Never beyond what is applied.
    pub(crate) fn compact_to(&mut self, index: Index) -> bool {
        if index <= self.offset || index > self.applied || index > self.last_index() {
            return false;
        }
        let Some(term) = self.term(index) else {
            return false;
        };
        self.entries.drain(..(index - self.offset) as usize);
        // `drain` keeps the capacity the log had at its longest; give back all but some headroom
        // so the memory a compaction frees is really freed.
        if self.entries.capacity() > 2 * self.entries.len() + 1024 {
            self.entries.shrink_to(self.entries.len() * 2);
        }
        self.offset = index;
        self.offset_term = term;
        true
    }

    /// Replace the whole log with a snapshot position (a follower installing a snapshot).
    pub(crate) fn reset_to_snapshot(&mut self, index: Index, term: Term) {
        self.entries.clear();
        self.offset = index;
        self.offset_term = term;
        self.persisted = index;
        self.unstable_from = index + 1;
        self.commit = self.commit.max(index);
        self.applied_handed = index;
        self.applied = index;
    }

    /// The entries handed out for persistence and the last index/term among them.
    pub(crate) fn take_unstable(&mut self) -> Vec<Entry> {
        if self.unstable_from > self.last_index() {
            return Vec::new();
        }
        let start = (self.unstable_from.max(self.first_index()) - self.offset - 1) as usize;
        let out = self.entries[start..].to_vec();
        self.unstable_from = self.last_index() + 1;
        out
    }

    /// The driver made entries up to (`index`, `term`) durable. Ignored if the log changed under it.
    pub(crate) fn persisted_to(&mut self, index: Index, term: Term) {
        if index > self.persisted && index < self.unstable_from && self.matches(index, term) {
            self.persisted = index;
        }
    }

    /// Committed entries not yet handed out for applying.
    pub(crate) fn take_committed(&mut self) -> Vec<Entry> {
        let to = self.commit.min(self.last_index());
        if to <= self.applied_handed {
            return Vec::new();
        }
        let out = self.slice(self.applied_handed + 1, to, usize::MAX, usize::MAX);
        if let Some(last) = out.last() {
            self.applied_handed = last.index;
        }
        out
    }

    /// Index of the last configuration entry at or below `upto`, if any is still in memory.
    pub(crate) fn last_config_at_or_below(&self, upto: Index) -> Option<&Entry> {
        self.entries
            .iter()
            .rev()
            .filter(|e| e.index <= upto)
            .find(|e| matches!(e.payload, Payload::Config { .. }))
    }

    /// Whether any configuration entry lies in `(after, last]`.
    pub(crate) fn has_config_after(&self, after: Index) -> bool {
        self.entries
            .iter()
            .rev()
            .take_while(|e| e.index > after)
            .any(|e| matches!(e.payload, Payload::Config { .. }))
    }

    /// Invariants of the structure itself, cheap enough for debug builds after every step.
    pub(crate) fn debug_check(&self) {
        debug_assert!(
            self.commit <= self.last_index(),
            "commit {} beyond last index {}",
            self.commit,
            self.last_index()
        );
        debug_assert!(self.applied <= self.applied_handed && self.applied_handed <= self.commit);
        debug_assert!(self.persisted <= self.last_index());
        debug_assert!(
            self.unstable_from > self.offset && self.unstable_from <= self.last_index() + 1
        );
        debug_assert!(
            self.entries
                .first()
                .is_none_or(|e| e.index == self.offset + 1),
            "log does not start right after its offset"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: Index, term: Term) -> Entry {
        Entry {
            term,
            index,
            payload: Payload::Normal(vec![index as u8]),
        }
    }

    fn log_with(terms: &[Term]) -> RaftLog {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(i, &t)| entry(i as Index + 1, t))
            .collect();
        RaftLog::restore(0, 0, entries)
    }

    #[test]
    fn terms_and_bounds() {
        let log = log_with(&[1, 1, 2]);
        assert_eq!(
            (log.first_index(), log.last_index(), log.last_term()),
            (1, 3, 2)
        );
        assert_eq!(log.term(0), Some(0));
        assert_eq!(log.term(3), Some(2));
        assert_eq!(log.term(4), None);
    }

    #[test]
    fn find_conflict_by_term_skips_a_whole_term() {
        let log = log_with(&[1, 1, 2, 2, 2, 4, 4]);
        assert_eq!(log.find_conflict_by_term(7, 3), 5);
        assert_eq!(log.find_conflict_by_term(7, 1), 2);
        assert_eq!(log.find_conflict_by_term(7, 0), 0);
        assert_eq!(log.find_conflict_by_term(20, 9), 7);
    }

    #[test]
    fn truncation_rewinds_what_is_persisted_and_unstable() {
        let mut log = log_with(&[1, 1, 1]);
        log.truncate_from(2);
        assert_eq!(
            (log.last_index(), log.persisted, log.unstable_from),
            (1, 1, 2)
        );
        log.append(entry(2, 2));
        assert_eq!(log.take_unstable(), vec![entry(2, 2)]);
        log.persisted_to(2, 2);
        assert_eq!(log.persisted, 2);
        // A stale acknowledgement for an overwritten entry changes nothing.
        log.persisted_to(3, 1);
        assert_eq!(log.persisted, 2);
    }

    #[test]
    fn compaction_returns_the_spare_capacity() {
        let mut log = RaftLog::new(0, 0);
        for i in 1..=10_000 {
            log.append(entry(i, 1));
        }
        log.commit = 10_000;
        log.applied = 10_000;
        assert!(log.compact_to(9_900));
        assert_eq!(log.first_index(), 9_901);
        assert!(
            log.entries.capacity() <= 2 * 100 + 1024,
            "capacity {} after compacting to 100 entries",
            log.entries.capacity()
        );
        assert_eq!(log.term(10_000), Some(1));
    }

    #[test]
    fn compaction_stops_at_the_applied_index() {
        let mut log = log_with(&[1, 1, 1, 1]);
        log.commit = 4;
        log.applied_handed = 3;
        log.applied = 3;
        assert!(!log.compact_to(4), "beyond applied");
        assert!(log.compact_to(2));
        assert_eq!(
            (log.first_index(), log.term(2), log.term(1)),
            (3, Some(1), None)
        );
        assert_eq!(log.slice(1, 4, 10, 1000).len(), 2);
    }

    #[test]
    fn slice_respects_count_and_bytes_but_returns_at_least_one() {
        let log = log_with(&[1; 10]);
        assert_eq!(log.slice(1, 10, 3, usize::MAX).len(), 3);
        assert_eq!(log.slice(1, 10, 100, 1).len(), 1);
    }
}
