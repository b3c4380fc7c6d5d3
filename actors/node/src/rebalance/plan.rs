//! What the rebalancer has to do, computed from the registry state alone (pure, so that every step
//! of a move can be tested without a cluster).
//!
//! An entity whose committed placement `P` differs from its desired placement `D` (rendezvous
//! hashing over the current voters, [`place`]) moves in two committed steps:
//!
//! 1. **Widen** `P → D ∪ P` (D first): writes from now on go to the new replicas as well, and the
//!    drift checkers of the new replicas count the entity as theirs.
//! 2. **Narrow** `D ∪ P → D`, only once every node of `D` holds the entity's committed content
//!    (checked by hash, copied from a verified replica where missing). The old replicas' copies
//!    are then dropped.
//!
//! An entity whose placement already contains `D` (a widened one, also after a leader change in
//! the middle of a move) is settled directly.

use verisim_stores::EntityId;

use crate::registry::placement::place;
use crate::registry::{EntityMeta, NodeName, PlacementMove, RegistryState};

/// One entity to settle: every node of `to` must hold version `version` before the placement
/// narrows from `from` to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settle {
    pub id: EntityId,
    pub version: u64,
    pub from: Vec<NodeName>,
    pub to: Vec<NodeName>,
}

impl Settle {
    /// The committed move once the copies are in place.
    pub fn narrowing(&self) -> PlacementMove {
        PlacementMove {
            id: self.id.clone(),
            version: self.version,
            from: self.from.clone(),
            to: self.to.clone(),
        }
    }

    /// The nodes that drop their copies after the narrowing.
    pub fn dropped(&self) -> impl Iterator<Item = &NodeName> {
        self.from.iter().filter(|n| !self.to.contains(n))
    }

    /// Whether a narrowing is needed after the copies (not when the widening already reached the
    /// desired set, as when a cluster grows to the replication factor).
    pub fn narrows(&self) -> bool {
        !same_set(&self.from, &self.to)
    }
}

/// One entity to widen: `to` is `desired` followed by the replicas it had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Widen {
    pub mv: PlacementMove,
    pub desired: Vec<NodeName>,
}

impl Widen {
    /// What is left once the widening committed: copy to `desired`, then narrow to it.
    pub fn then(&self) -> Settle {
        Settle {
            id: self.mv.id.clone(),
            version: self.mv.version,
            from: self.mv.to.clone(),
            to: self.desired.clone(),
        }
    }
}

/// The work of one round, at most `limit` entities of each kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Entities placed somewhere else than they should be (all of them, not only this round's).
    pub misplaced: u64,
    pub widen: Vec<Widen>,
    pub settle: Vec<Settle>,
}

/// Where `meta` should be placed among `voters`, and what to do about it.
enum Next {
    Stay,
    /// The widened placement, and the desired one.
    Widen(Vec<NodeName>, Vec<NodeName>),
    Settle(Vec<NodeName>),
}

fn next(id: &EntityId, meta: &EntityMeta, voters: &[NodeName], replicas: usize) -> Next {
    let desired = place(id, voters, replicas);
    if desired.is_empty() || same_set(&meta.placement, &desired) {
        return Next::Stay;
    }
    if desired.iter().all(|n| meta.placement.contains(n)) {
        return Next::Settle(desired);
    }
    let mut widened = desired.clone();
    widened.extend(
        meta.placement
            .iter()
            .filter(|n| !widened.contains(n))
            .cloned()
            .collect::<Vec<_>>(),
    );
    Next::Widen(widened, desired)
}

fn same_set(a: &[NodeName], b: &[NodeName]) -> bool {
    a.len() == b.len() && a.iter().all(|n| b.contains(n))
}

/// The entities written or moved after log index `since` (every entity for 0). An entity's `index`
/// is that of the entry that last wrote or moved it, so one at or below `since` has the placement
/// it had at `since`: a round that found every entity in place at `since` need not look at it
/// again while the voters stay the same.
fn changed_since(
    state: &RegistryState,
    since: u64,
) -> impl Iterator<Item = (&EntityId, &EntityMeta)> {
    state.entities().filter(move |(_, e)| e.index > since)
}

/// How many entities written or moved after `since` (0: all) the registry places elsewhere than
/// `voters` and `replicas` say.
pub fn misplaced_since(
    state: &RegistryState,
    voters: &[NodeName],
    replicas: usize,
    since: u64,
) -> u64 {
    changed_since(state, since)
        .filter(|(id, e)| !matches!(next(id, e, voters, replicas), Next::Stay))
        .count() as u64
}

/// The next round's moves among the entities written or moved after `since` (0: all): up to
/// `limit` widenings and `limit` settlements.
pub fn plan(
    state: &RegistryState,
    voters: &[NodeName],
    replicas: usize,
    limit: usize,
    since: u64,
) -> Plan {
    let mut plan = Plan::default();
    for (id, e) in changed_since(state, since) {
        match next(id, e, voters, replicas) {
            Next::Stay => continue,
            Next::Widen(to, desired) if plan.widen.len() < limit => plan.widen.push(Widen {
                mv: PlacementMove {
                    id: id.clone(),
                    version: e.version,
                    from: e.placement.clone(),
                    to,
                },
                desired,
            }),
            Next::Settle(to) if plan.settle.len() < limit => plan.settle.push(Settle {
                id: id.clone(),
                version: e.version,
                from: e.placement.clone(),
                to,
            }),
            Next::Widen(..) | Next::Settle(_) => {}
        }
        plan.misplaced += 1;
    }
    plan
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::registry::{Command, ItemMeta, MODALITIES, Outcome, Proposal};
    use verisim_stores::ContentHash;

    fn nodes(ids: &[u64]) -> Vec<NodeName> {
        ids.iter()
            .map(|i| NodeName::new(format!("node-{i}")).unwrap())
            .collect()
    }

    /// A state with `n` entities placed on `placement` (registered through the legacy client
    /// command and a window, as the registry's own tests do).
    fn state_with(n: usize, placement: &[NodeName]) -> RegistryState {
        let mut s = RegistryState::default();
        let mut index = 0;
        let mut apply = |s: &mut RegistryState, command: Command| {
            index += 1;
            s.apply(
                index,
                &Proposal {
                    at_ms: 1_000,
                    command,
                },
            )
        };
        let client = crate::registry::ClientId::new("c").unwrap();
        let window = crate::registry::WindowId::new("w").unwrap();
        apply(
            &mut s,
            Command::EnrollClient {
                client: client.clone(),
                public_key: crate::registry::PublicKey([1; 32]),
            },
        );
        apply(
            &mut s,
            Command::OpenWindow {
                client: client.clone(),
                window: window.clone(),
                expires_at_ms: 100_000,
                client_dh: crate::registry::PublicKey([2; 32]),
            },
        );
        for i in 0..n {
            let items: BTreeMap<_, _> = MODALITIES
                .iter()
                .map(|&k| {
                    (
                        k,
                        ItemMeta {
                            hash: ContentHash([i as u8; 32]),
                            size: 1,
                        },
                    )
                })
                .collect();
            let out = apply(
                &mut s,
                Command::PutEntity {
                    origin: crate::registry::Origin {
                        client: client.clone(),
                        window: window.clone(),
                        request: crate::registry::RequestId::new(format!("r{i}")).unwrap(),
                        fingerprint: ContentHash([0; 32]),
                    },
                    id: EntityId::new(format!("e{i}")).unwrap(),
                    items,
                    placement: placement.to_vec(),
                    expected_version: None,
                },
            );
            assert!(matches!(out, Outcome::EntityPut { .. }), "{out:?}");
        }
        s
    }

    fn commit(s: &mut RegistryState, moves: Vec<PlacementMove>) -> Outcome {
        let index = s.applied_index() + 1;
        s.apply(
            index,
            &Proposal {
                at_ms: 1_000,
                command: Command::MovePlacements { moves },
            },
        )
    }

    #[test]
    fn a_join_widens_settles_and_ends_on_exactly_the_desired_replicas() {
        let three = nodes(&[1, 2, 3]);
        let four = nodes(&[1, 2, 3, 4]);
        let mut s = state_with(200, &three);
        assert_eq!(misplaced_since(&s, &three, 3, 0), 0);
        let first = plan(&s, &four, 3, 1_000, 0);
        // Node 4 ranks among the top 3 of 4 for about three quarters of the ids.
        assert!(
            (100..=190).contains(&first.misplaced),
            "{}",
            first.misplaced
        );
        assert!(first.settle.is_empty());
        for w in &first.widen {
            assert_eq!(w.mv.to.len(), 4, "{w:?}");
            assert!(w.mv.to.contains(&four[3]));
            assert!(w.then().narrows());
        }
        let widened = first.widen.len() as u64;
        let out = commit(&mut s, first.widen.iter().map(|w| w.mv.clone()).collect());
        assert!(
            matches!(out, Outcome::PlacementsMoved { moved, skipped: 0, .. } if moved == widened),
            "{out:?}"
        );
        let second = plan(&s, &four, 3, 1_000, 0);
        assert!(second.widen.is_empty());
        assert_eq!(second.settle.len() as u64, widened);
        for t in &second.settle {
            assert_eq!(t.to, place(&t.id, &four, 3));
            assert_eq!(t.dropped().count(), 1);
        }
        let moves = second.settle.iter().map(Settle::narrowing).collect();
        commit(&mut s, moves);
        assert_eq!(misplaced_since(&s, &four, 3, 0), 0);
        for (_, e) in s.entities() {
            assert_eq!(e.placement.len(), 3);
        }
    }

    #[test]
    fn a_removed_voter_is_replaced_and_a_move_that_raced_a_change_is_skipped() {
        let three = nodes(&[1, 2, 3]);
        let mut s = state_with(20, &three);
        let left = nodes(&[1, 3]);
        // Two voters left, replication factor 3: every entity narrows to the two.
        let p = plan(&s, &left, 3, 1_000, 0);
        assert_eq!(p.misplaced, 20);
        assert!(p.widen.is_empty());
        let mut moves: Vec<PlacementMove> = p.settle.iter().map(Settle::narrowing).collect();
        // One move computed from an older view: its `from` no longer matches, so it is skipped.
        moves[0].from = nodes(&[1, 2]);
        let out = commit(&mut s, moves);
        assert!(
            matches!(
                out,
                Outcome::PlacementsMoved {
                    moved: 19,
                    skipped: 1,
                    ..
                }
            ),
            "{out:?}"
        );
        assert_eq!(misplaced_since(&s, &left, 3, 0), 1);
        // A moved entity's index is the move's: its copies are fenced by it.
        let index = s.applied_index();
        let moved = s.entities().filter(|(_, e)| e.index == index).count();
        assert_eq!(moved, 19);
        // An invalid target placement is skipped too.
        let e = s.entities().find(|(_, e)| e.placement.len() == 3).unwrap();
        let bad = PlacementMove {
            id: e.0.clone(),
            version: e.1.version,
            from: e.1.placement.clone(),
            to: Vec::new(),
        };
        let out = commit(&mut s, vec![bad]);
        assert!(matches!(
            out,
            Outcome::PlacementsMoved {
                moved: 0,
                skipped: 1,
                ..
            }
        ));
    }

    #[test]
    fn a_round_after_one_that_found_all_in_place_looks_only_at_what_changed_since() {
        let three = nodes(&[1, 2, 3]);
        let four = nodes(&[1, 2, 3, 4]);
        // 40 entities on the three old voters, written at indexes 3..=42 (after the enrollment
        // and the window); a round at `mid` found the first 20 in place for the four voters.
        let mut s = state_with(40, &three);
        let mid = 22;
        let changed = |s: &RegistryState, since: u64| {
            s.entities()
                .filter(|(id, e)| e.index > since && !same_set(&place(id, &four, 3), &e.placement))
                .count() as u64
        };
        let full = plan(&s, &four, 3, 1_000, 0);
        let since = plan(&s, &four, 3, 1_000, mid);
        assert_eq!(full.misplaced, changed(&s, 0));
        assert_eq!(since.misplaced, changed(&s, mid));
        assert!(0 < since.misplaced && since.misplaced < full.misplaced);
        assert!(
            since
                .widen
                .iter()
                .all(|w| s.entity(&w.mv.id).unwrap().index > mid)
        );
        assert_eq!(misplaced_since(&s, &four, 3, mid), since.misplaced);
        // Nothing at or below the last index is looked at again.
        let through = s.applied_index();
        assert_eq!(plan(&s, &four, 3, 1_000, through).misplaced, 0);
        // A move gives the moved entities the move's index: the next round sees them again.
        let widen: Vec<_> = full.widen.iter().map(|w| w.mv.clone()).collect();
        let widened = widen.len() as u64;
        commit(&mut s, widen);
        let after = plan(&s, &four, 3, 1_000, through);
        assert_eq!(
            (after.misplaced, after.settle.len() as u64),
            (widened, widened)
        );
    }

    #[test]
    fn growing_to_the_replication_factor_only_widens_and_the_limit_bounds_a_round() {
        let mut s = state_with(50, &nodes(&[1]));
        let three = nodes(&[1, 2, 3]);
        let p = plan(&s, &three, 3, 10, 0);
        assert_eq!(p.misplaced, 50);
        assert_eq!(p.widen.len(), 10);
        // The widening reaches the desired set: copies follow, no narrowing.
        assert!(p.widen.iter().all(|w| !w.then().narrows()));
        commit(&mut s, p.widen.iter().map(|w| w.mv.clone()).collect());
        let p = plan(&s, &three, 3, 10, 0);
        assert_eq!((p.misplaced, p.widen.len(), p.settle.len()), (40, 10, 0));
    }
}
