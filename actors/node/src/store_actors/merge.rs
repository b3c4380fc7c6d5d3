//! Scatter-gather k-NN: merging per-store top-k lists into the global top-k.

use std::collections::HashSet;

use verisim_stores::vector::Hit;

/// Merges per-store results (each closest first) into the `k` closest distinct entities, closest
/// first, ties by id — what one store holding every vector would answer. An entity held by several
/// replicas appears once, at its smallest distance.
///
/// Exact when each list is its store's exact top-k: any entity of the global top-k is in the top-k
/// of every store that holds it.
pub fn merge_top_k(lists: Vec<Vec<Hit>>, k: usize) -> Vec<Hit> {
    let mut all: Vec<Hit> = lists.into_iter().flatten().collect();
    all.sort_by(|a, b| {
        a.distance
            .total_cmp(&b.distance)
            .then_with(|| a.id.cmp(&b.id))
    });
    let mut seen = HashSet::new();
    all.retain(|h| seen.insert(h.id.clone()));
    all.truncate(k);
    all
}
