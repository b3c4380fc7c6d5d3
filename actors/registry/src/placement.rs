//! Where an entity's payload lives (the placement policy, beside the state machine that records it): rendezvous (highest-random-weight) hashing over the cluster's
//! voters.
//!
//! Every node computes the same placement from the same member set, adding or removing a node
//! moves only the entities that rank it among their top `replicas`, and no table needs to be kept.
//! The placement chosen at registration is committed to the registry with the entity; updates
//! keep it. When the voters change, the leader's rebalancer (`verisim::rebalance`) moves entities
//! to the placement this function gives for the new voters, through the quorum.

use std::sync::LazyLock;

use crate::{EntityId, NodeName};

/// The hasher with the placement's derived key already computed: every score starts from a
/// clone of it, so the context string is not hashed again for every node of every entity (a
/// rebalancing round scores all of them).
static PLACEMENT_HASHER: LazyLock<blake3::Hasher> =
    LazyLock::new(|| blake3::Hasher::new_derive_key("verisim placement v1"));

/// The `replicas` nodes (fewer if the cluster is smaller) that hold `id`, best-ranked first.
pub fn place(id: &EntityId, nodes: &[NodeName], replicas: usize) -> Vec<NodeName> {
    let mut ranked: Vec<(blake3::Hash, &NodeName)> = nodes
        .iter()
        .map(|n| {
            let score = PLACEMENT_HASHER
                .clone()
                .update(n.as_str().as_bytes())
                .update(&[0])
                .update(id.as_str().as_bytes())
                .finalize();
            (score, n)
        })
        .collect();
    // Highest score first; ties (impossible in practice) broken by name for determinism.
    ranked.sort_by(|a, b| {
        b.0.as_bytes()
            .cmp(a.0.as_bytes())
            .then_with(|| a.1.cmp(b.1))
    });
    ranked.dedup_by(|a, b| a.1 == b.1);
    ranked
        .into_iter()
        .take(replicas)
        .map(|(_, n)| n.clone())
        .collect()
}

/// How many replicas must hold a payload durably before a write is acknowledged: a majority.
pub fn write_quorum(replicas: usize) -> usize {
    replicas / 2 + 1
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn nodes(n: usize) -> Vec<NodeName> {
        (1..=n)
            .map(|i| NodeName::new(format!("n{i}")).unwrap())
            .collect()
    }

    #[test]
    fn scores_are_those_of_the_derived_key_computed_afresh() {
        for i in 0..200 {
            let id = EntityId::new(format!("entity-{i}")).unwrap();
            let fresh = |n: &NodeName| {
                blake3::Hasher::new_derive_key("verisim placement v1")
                    .update(n.as_str().as_bytes())
                    .update(&[0])
                    .update(id.as_str().as_bytes())
                    .finalize()
            };
            let mut expected = nodes(5);
            expected.sort_by(|a, b| fresh(b).as_bytes().cmp(fresh(a).as_bytes()));
            expected.truncate(3);
            assert_eq!(place(&id, &nodes(5), 3), expected, "{id}");
        }
    }

    #[test]
    fn small_clusters_place_on_every_node() {
        let id = EntityId::new("e1").unwrap();
        assert_eq!(place(&id, &nodes(1), 3).len(), 1);
        assert_eq!(place(&id, &nodes(2), 3).len(), 2);
        assert_eq!(place(&id, &nodes(5), 3).len(), 3);
        assert_eq!(write_quorum(1), 1);
        assert_eq!(write_quorum(2), 2);
        assert_eq!(write_quorum(3), 2);
        assert_eq!(write_quorum(5), 3);
    }

    proptest! {
        /// The same on every node whatever the order of the member list, distinct, and a node
        /// added to the cluster only ever takes a slot: the others keep their relative order.
        #[test]
        fn deterministic_distinct_and_stable(id in "[a-z0-9]{1,12}", n in 1usize..9, seed in any::<u64>()) {
            let id = EntityId::new(id).unwrap();
            let members = nodes(n);
            let mut shuffled = members.clone();
            let k = shuffled.len();
            shuffled.rotate_left((seed as usize) % k);
            let a = place(&id, &members, 3);
            prop_assert_eq!(&a, &place(&id, &shuffled, 3));
            let mut d = a.clone();
            d.sort();
            d.dedup();
            prop_assert_eq!(d.len(), a.len());
            let grown = nodes(n + 1);
            let b = place(&id, &grown, 3);
            let newcomer = &grown[n];
            let kept: Vec<_> = b.iter().filter(|x| *x != newcomer).cloned().collect();
            prop_assert_eq!(&kept[..], &a[..kept.len()]);
        }
    }
}
