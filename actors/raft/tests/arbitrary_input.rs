//! `step` never panics, whatever arrives: arbitrary (mostly malformed or stale) messages and inputs
//! against running nodes, with the core's debug invariants (log order, terms never decreasing, commit
//! within the log, no entry of a future term...) checked after every input. Values include the
//! extremes of their `u64` space (0, 1, `u64::MAX - 1`, `u64::MAX`), appends whose shape is right
//! (contiguous, terms rising) so they reach the log checks, multi-term logs with uncommitted
//! divergent tails and compacted prefixes, and snapshot chunks of another term, leader or snapshot.
//!
//! A failing case is shrunk and its seed saved in `arbitrary_input.proptest-regressions` (replayed
//! first on every run); cases worth keeping for good become named tests at the end of this file.

mod common;

use common::{Net, plain};
use proptest::prelude::*;
use verisim_raft::{
    AppendResult, ConfChange, Config, Entry, Input, MAX_INDEX, Membership, Message, MessageBody,
    Payload, Role, SnapshotMeta, SnapshotResult, StepError,
};

/// A number mostly below `small`, sometimes one of the extremes of the `u64` space.
fn num(small: u64) -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => 0..small,
        1 => Just(0),
        1 => Just(1),
        1 => Just(u64::MAX - 1),
        1 => Just(u64::MAX),
        1 => u64::MAX - 3..=u64::MAX,
    ]
}

fn payload() -> impl Strategy<Value = Payload> {
    (0u8..6).prop_map(|kind| match kind {
        0 => Payload::Noop,
        1 | 2 => Payload::Normal(vec![kind; 3]),
        3 => Payload::Config {
            change: ConfChange::AddLearner(7),
            membership: {
                let mut m = Membership::with_voters([1, 2, 3]);
                m.learners.insert(7);
                m
            },
        },
        4 => Payload::Config {
            change: ConfChange::Remove(2),
            membership: Membership::with_voters([1, 3]),
        },
        _ => Payload::Config {
            change: ConfChange::Remove(2),
            membership: Membership::default(),
        },
    })
}

/// Any entry at all.
fn entry() -> impl Strategy<Value = Entry> {
    (num(14), num(7), payload()).prop_map(|(index, term, payload)| Entry {
        index,
        term,
        payload,
    })
}

fn membership() -> impl Strategy<Value = Membership> {
    (0u8..4).prop_map(|k| match k {
        0 => Membership::default(),
        1 => {
            let mut m = Membership::with_voters([1, 2]);
            m.learners.insert(2);
            m
        }
        _ => Membership::with_voters([1, 2, 3]),
    })
}

fn meta() -> impl Strategy<Value = SnapshotMeta> {
    (num(16), num(7), 0u64..4, num(40), membership()).prop_map(
        |(index, term, id, size, membership)| SnapshotMeta {
            index,
            term,
            membership,
            id,
            size,
        },
    )
}

/// An append whose shape is right for its term (contiguous from `prev_index + 1`, terms rising
/// from `prev_term`, none beyond the message's term), so it reaches the checks against the log.
fn shaped_append() -> impl Strategy<Value = (u64, MessageBody)> {
    (1u64..8)
        .prop_flat_map(|term| {
            (
                Just(term),
                prop_oneof![8 => 0u64..14, 1 => Just(MAX_INDEX - 2), 1 => Just(MAX_INDEX)],
                0..=term,
                prop::collection::vec((0u64..2, payload()), 0..5),
                num(16),
            )
        })
        .prop_map(|(term, prev_index, prev_term, steps, commit)| {
            let prev_term = if prev_index == 0 { 0 } else { prev_term.max(1) };
            let mut t = prev_term.max(1);
            let entries = steps
                .into_iter()
                .enumerate()
                .map(|(i, (bump, payload))| {
                    t = (t + bump).min(term);
                    Entry {
                        index: prev_index.saturating_add(i as u64 + 1),
                        term: t,
                        payload,
                    }
                })
                .collect();
            (
                term,
                MessageBody::Append {
                    prev_index,
                    prev_term,
                    entries,
                    commit,
                },
            )
        })
}

/// A chunk that fits its snapshot (offset on a chunk boundary, length and `done` consistent), of
/// one of a few snapshots, so it reaches the resume checks (leader, term, id, offset).
fn shaped_chunk() -> impl Strategy<Value = MessageBody> {
    (1u64..16, 1u64..4, 0u64..3, 1u64..40, 0u64..6).prop_map(|(index, term, id, size, k)| {
        let offset = (k * 8).min(size);
        let len = 8.min(size - offset);
        MessageBody::InstallSnapshot {
            meta: SnapshotMeta {
                index,
                term,
                membership: Membership::with_voters([1, 2, 3]),
                id,
                size,
            },
            offset,
            data: vec![index as u8; len as usize],
            done: offset + len == size,
        }
    })
}

fn body() -> impl Strategy<Value = MessageBody> {
    prop_oneof![
        (num(15), num(7)).prop_map(|(last_log_index, last_log_term)| MessageBody::PreVote {
            last_log_index,
            last_log_term
        }),
        prop::bool::ANY.prop_map(|granted| MessageBody::PreVoteResponse { granted }),
        (num(15), num(7), prop::bool::ANY).prop_map(|(last_log_index, last_log_term, transfer)| {
            MessageBody::Vote {
                last_log_index,
                last_log_term,
                transfer,
            }
        }),
        prop::bool::ANY.prop_map(|granted| MessageBody::VoteResponse { granted }),
        (
            num(15),
            num(7),
            prop::collection::vec(entry(), 0..4),
            num(20)
        )
            .prop_map(
                |(prev_index, prev_term, entries, commit)| MessageBody::Append {
                    prev_index,
                    prev_term,
                    entries,
                    commit
                }
            ),
        num(20).prop_map(
            |match_index| MessageBody::AppendResponse(AppendResult::Accepted { match_index })
        ),
        (num(20), num(20), num(7)).prop_map(|(rejected, hint_index, hint_term)| {
            MessageBody::AppendResponse(AppendResult::Rejected {
                rejected,
                hint_index,
                hint_term,
            })
        }),
        (num(20), num(5))
            .prop_map(|(commit, read_round)| MessageBody::Heartbeat { commit, read_round }),
        num(5).prop_map(|read_round| MessageBody::HeartbeatResponse { read_round }),
        (
            meta(),
            num(40),
            prop::collection::vec(any::<u8>(), 0..20),
            prop::bool::ANY
        )
            .prop_map(|(meta, offset, data, done)| MessageBody::InstallSnapshot {
                meta,
                offset,
                data,
                done
            }),
        shaped_chunk(),
        (0u64..4, num(40), prop::bool::ANY).prop_map(|(snapshot_id, n, done)| {
            MessageBody::InstallSnapshotResponse {
                snapshot_id,
                result: if done {
                    SnapshotResult::Done { match_index: n }
                } else {
                    SnapshotResult::Continue { next_offset: n }
                },
            }
        }),
        Just(MessageBody::TimeoutNow),
    ]
}

/// A sender: the nodes of the cluster (1 is the node under test itself), unknown ones, id 0, the
/// largest id.
fn sender() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0u64..6, 1 => Just(u64::MAX)]
}

fn message() -> impl Strategy<Value = Input> {
    prop_oneof![
        4 => (sender(), 0u64..5, num(8), body()).prop_map(|(from, to_other, term, body)| {
            Input::Message(Message {
                from,
                to: if to_other == 0 { 9 } else { 1 },
                term,
                body,
            })
        }),
        2 => (sender(), shaped_append()).prop_map(|(from, (term, body))| {
            Input::Message(Message { from, to: 1, term, body })
        }),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        6 => message(),
        1 => Just(Input::Tick),
        1 => prop::collection::vec(any::<u8>(), 0..8).prop_map(Input::Propose),
        1 => (num(9), 0u8..3).prop_map(|(id, k)| Input::ProposeConfChange(match k {
            0 => ConfChange::AddLearner(id),
            1 => ConfChange::Promote(id),
            _ => ConfChange::Remove(id),
        })),
        1 => num(9).prop_map(|request_id| Input::ReadIndex { request_id }),
        1 => num(9).prop_map(|to| Input::TransferLeadership { to }),
        1 => Just(Input::Campaign),
        1 => (num(20), 0u64..4, num(40)).prop_map(|(index, id, size)| Input::SnapshotTaken { index, id, size }),
        1 => (num(5), 0u64..4, num(40), prop::collection::vec(any::<u8>(), 0..20)).prop_map(
            |(to, snapshot_id, offset, data)| Input::SnapshotChunk { to, snapshot_id, offset, data }
        ),
        1 => (num(5), 0u64..4).prop_map(|(to, snapshot_id)| Input::SnapshotUnavailable { to, snapshot_id }),
    ]
}

/// The starting points: node 1 as leader or follower, with a one-term log or a multi-term log
/// whose tail is uncommitted (and, for the follower, diverges from the leader's), with or without
/// a compacted prefix, with or without pre-vote and check-quorum.
#[derive(Clone, Copy, Debug)]
enum Setup {
    Leader,
    Follower,
    MultiTermFollower { snapshot: bool },
    MultiTermLeader { snapshot: bool },
}

fn setup() -> impl Strategy<Value = (Setup, bool)> {
    (
        prop_oneof![
            Just(Setup::Leader),
            Just(Setup::Follower),
            prop::bool::ANY.prop_map(|snapshot| Setup::MultiTermFollower { snapshot }),
            prop::bool::ANY.prop_map(|snapshot| Setup::MultiTermLeader { snapshot }),
        ],
        prop::bool::ANY,
    )
}

fn guarded(c: &mut Config) {
    c.log_keep_after_snapshot = 1;
    c.snapshot_chunk_size = 8;
}

fn unguarded(c: &mut Config) {
    plain(c);
    guarded(c);
}

/// Terms 1 (node 2 leads), 2 (node 3), 3 (node 1: its no-op and one entry nobody else gets), 4
/// (node 2 again, with node 3): node 1 holds `[1:t1 2:t1 3:t2 4:t2 5:t3 6:t3]`, 4 committed, the
/// tail of term 3 uncommitted and contradicted by the leader of term 4 (`5:t4 6:t4`). With
/// `snapshot`, node 1 snapshotted at 4 and compacted its log before 4. With `guard`, every node
/// then restarts with pre-vote and check-quorum.
fn multi_term(guard: bool, snapshot: bool) -> Net {
    let mut net = Net::new(3, unguarded);
    for (leader, payload) in [(2, b"a"), (3, b"b")] {
        net.elect(leader);
        let _ = net.propose(leader, payload);
        net.deliver_all();
    }
    net.campaign(1);
    net.deliver_if(|m| !matches!(m.body, MessageBody::Append { .. }));
    assert_eq!(net.node(1).role(), Role::Leader);
    let _ = net.propose(1, b"x");
    net.queue.clear();
    net.campaign(2);
    net.deliver_within(&[2, 3]);
    let _ = net.propose(2, b"z");
    net.deliver_within(&[2, 3]);
    if snapshot {
        let _ = net.take_snapshot(1, 20);
    }
    // Node 1 learns of term 4 from a heartbeat only: its divergent tail stays.
    net.tick(2, 1);
    net.deliver_if(|m| m.to != 1 || matches!(m.body, MessageBody::Heartbeat { .. }));
    net.queue.clear();
    assert_eq!(net.node(1).term(), 4);
    assert_eq!(net.node(1).last_term(), 3);
    if guard {
        // The same logs, now run with pre-vote and check-quorum.
        net.configure = guarded;
        for id in 1..=3 {
            net.crash(id);
            net.start(id);
        }
    }
    net
}

fn start(setup: Setup, guard: bool) -> Net {
    let configure = if guard { guarded } else { unguarded };
    match setup {
        Setup::Leader | Setup::Follower => {
            let leader = if matches!(setup, Setup::Leader) { 1 } else { 2 };
            let mut net = Net::new(3, configure);
            net.elect(leader);
            net.deliver_all();
            let _ = net.propose(leader, b"a");
            net.deliver_all();
            net
        }
        Setup::MultiTermFollower { snapshot } => multi_term(guard, snapshot),
        Setup::MultiTermLeader { snapshot } => {
            // Node 1 catches up with the leader of term 4 (its tail replaced), then leads term 5;
            // its last entry reaches node 2 only. Without pre-vote and check-quorum whatever
            // `guard` says: a restart would cost node 1 its leadership.
            let mut net = multi_term(false, snapshot);
            net.tick(2, 1);
            net.deliver_all();
            net.elect(1);
            let _ = net.propose(1, b"y");
            net.deliver_within(&[1, 2]);
            if snapshot {
                let _ = net.take_snapshot(1, 20);
            }
            net.queue.clear();
            net
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Node 1 in one of the starting states, then anything.
    #[test]
    fn arbitrary_inputs_never_panic(
        (setup, guard) in setup(),
        inputs in prop::collection::vec(input(), 1..60),
    ) {
        let mut net = start(setup, guard);
        for input in inputs {
            let _ = net.step(1, input);
            net.queue.clear();
        }
    }

    /// The same, with the rest of the cluster running: node 1's replies reach the others, so a
    /// forged message's consequences (a raised term, a refused append) play out across the
    /// cluster with every core's invariants checked.
    #[test]
    fn arbitrary_inputs_in_a_running_cluster_never_panic(
        (setup, guard) in setup(),
        inputs in prop::collection::vec(input(), 1..30),
    ) {
        let mut net = start(setup, guard);
        for input in inputs {
            let _ = net.step(1, input);
            for id in 1..=3 {
                net.tick(id, 1);
            }
            let mut rounds = 0;
            while !net.queue.is_empty() && rounds < 20 {
                let batch = std::mem::take(&mut net.queue);
                for m in batch {
                    let to = m.to;
                    let _ = net.step(to, Input::Message(m));
                }
                rounds += 1;
            }
            net.queue.clear();
        }
    }
}

/// The case proptest once recorded (it panicked before snapshot metadata was checked against the
/// message's term): a follower of term 1 receives a whole snapshot whose last entry claims term 2.
/// A leader cannot hold an entry of a term beyond its own (§7): refused, nothing installed.
#[test]
fn regression_s7_snapshot_of_a_term_beyond_the_leaders_is_refused() {
    let mut net = Net::new(3, |c| c.log_keep_after_snapshot = 1);
    net.elect(2);
    net.deliver_all();
    let _ = net.propose(2, b"a");
    net.deliver_all();
    let m = Message {
        from: 2,
        to: 1,
        term: 1,
        body: MessageBody::InstallSnapshot {
            meta: SnapshotMeta {
                index: 3,
                term: 2,
                membership: Membership::with_voters([1, 2, 3]),
                id: 0,
                size: 18,
            },
            offset: 0,
            data: vec![0; 18],
            done: true,
        },
    };
    assert!(matches!(
        net.step(1, Input::Message(m)),
        Err(StepError::Snapshot { .. })
    ));
    assert_eq!(net.node(1).snapshot().index, 0);
    assert_eq!(net.node(1).term(), 1);
    assert!(net.queue.is_empty());
}

/// The multi-term starting state the property tests use is what its comment says.
#[test]
fn multi_term_setup_has_a_divergent_uncommitted_tail() {
    let net = multi_term(false, false);
    let log: Vec<(u64, u64)> = net
        .node(1)
        .entries()
        .iter()
        .map(|e| (e.index, e.term))
        .collect();
    assert_eq!(
        log,
        vec![(1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (6, 3)],
        "node 1's log"
    );
    assert_eq!(net.node(1).commit_index(), 4);
    assert_eq!(net.node(2).term_at(5), Some(4));
    assert_eq!(net.node(1).role(), Role::Follower);
    let snap = multi_term(true, true);
    assert!(snap.node(1).first_index() > 1, "a compacted prefix");
    assert_eq!(snap.node(1).last_term(), 3);
    let leader = start(Setup::MultiTermLeader { snapshot: true }, false);
    assert_eq!(leader.node(1).role(), Role::Leader);
    assert_eq!(leader.node(1).term(), 5);
    assert!(leader.node(1).first_index() > 1);
}
