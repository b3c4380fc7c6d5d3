//! `step` never panics, whatever arrives: arbitrary (mostly malformed or stale) messages and inputs
//! against running nodes, with the core's debug invariants checked after every input.

mod common;

use common::Net;
use proptest::prelude::*;
use verisim_raft::{
    AppendResult, ConfChange, Entry, Input, Membership, Message, MessageBody, Payload,
    SnapshotMeta, SnapshotResult,
};

fn entry() -> impl Strategy<Value = Entry> {
    (0u64..12, 0u64..6, 0u8..4).prop_map(|(index, term, kind)| Entry {
        index,
        term,
        payload: match kind {
            0 => Payload::Noop,
            1 => Payload::Normal(vec![kind; 3]),
            2 => Payload::Config {
                change: ConfChange::AddLearner(7),
                membership: Membership::with_voters([1, 2, 3]),
            },
            _ => Payload::Config {
                change: ConfChange::Remove(2),
                membership: Membership::default(),
            },
        },
    })
}

fn meta() -> impl Strategy<Value = SnapshotMeta> {
    (0u64..15, 0u64..6, 0u64..4, 0u64..40, prop::bool::ANY).prop_map(
        |(index, term, id, size, empty)| SnapshotMeta {
            index,
            term,
            membership: if empty {
                Membership::default()
            } else {
                Membership::with_voters([1, 2, 3])
            },
            id,
            size,
        },
    )
}

fn body() -> impl Strategy<Value = MessageBody> {
    prop_oneof![
        (0u64..15, 0u64..6).prop_map(|(last_log_index, last_log_term)| MessageBody::PreVote {
            last_log_index,
            last_log_term
        }),
        prop::bool::ANY.prop_map(|granted| MessageBody::PreVoteResponse { granted }),
        (0u64..15, 0u64..6, prop::bool::ANY).prop_map(
            |(last_log_index, last_log_term, transfer)| {
                MessageBody::Vote {
                    last_log_index,
                    last_log_term,
                    transfer,
                }
            }
        ),
        prop::bool::ANY.prop_map(|granted| MessageBody::VoteResponse { granted }),
        (
            0u64..15,
            0u64..6,
            prop::collection::vec(entry(), 0..4),
            0u64..20
        )
            .prop_map(
                |(prev_index, prev_term, entries, commit)| MessageBody::Append {
                    prev_index,
                    prev_term,
                    entries,
                    commit
                }
            ),
        (0u64..20).prop_map(
            |match_index| MessageBody::AppendResponse(AppendResult::Accepted { match_index })
        ),
        (0u64..20, 0u64..20, 0u64..6).prop_map(|(rejected, hint_index, hint_term)| {
            MessageBody::AppendResponse(AppendResult::Rejected {
                rejected,
                hint_index,
                hint_term,
            })
        }),
        (0u64..20, 0u64..5)
            .prop_map(|(commit, read_round)| MessageBody::Heartbeat { commit, read_round }),
        (0u64..5).prop_map(|read_round| MessageBody::HeartbeatResponse { read_round }),
        (
            meta(),
            0u64..40,
            prop::collection::vec(any::<u8>(), 0..20),
            prop::bool::ANY
        )
            .prop_map(|(meta, offset, data, done)| MessageBody::InstallSnapshot {
                meta,
                offset,
                data,
                done
            }),
        (0u64..4, 0u64..40, prop::bool::ANY).prop_map(|(snapshot_id, n, done)| {
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

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        4 => (0u64..6, 0u64..5, 0u64..8, body()).prop_map(|(from, to_other, term, body)| Input::Message(Message {
            from,
            to: if to_other == 0 { 9 } else { 1 },
            term,
            body,
        })),
        1 => Just(Input::Tick),
        1 => prop::collection::vec(any::<u8>(), 0..8).prop_map(Input::Propose),
        1 => (0u64..9, 0u8..3).prop_map(|(id, k)| Input::ProposeConfChange(match k {
            0 => ConfChange::AddLearner(id),
            1 => ConfChange::Promote(id),
            _ => ConfChange::Remove(id),
        })),
        1 => (0u64..9).prop_map(|request_id| Input::ReadIndex { request_id }),
        1 => (0u64..9).prop_map(|to| Input::TransferLeadership { to }),
        1 => Just(Input::Campaign),
        1 => (0u64..20, 0u64..4, 0u64..40).prop_map(|(index, id, size)| Input::SnapshotTaken { index, id, size }),
        1 => (0u64..5, 0u64..4, 0u64..40, prop::collection::vec(any::<u8>(), 0..20)).prop_map(
            |(to, snapshot_id, offset, data)| Input::SnapshotChunk { to, snapshot_id, offset, data }
        ),
        1 => (0u64..5, 0u64..4).prop_map(|(to, snapshot_id)| Input::SnapshotUnavailable { to, snapshot_id }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Node 1 as leader of a healthy cluster, then anything.
    #[test]
    fn arbitrary_inputs_at_a_leader_never_panic(inputs in prop::collection::vec(input(), 1..60)) {
        let mut net = Net::new(3, |c| c.log_keep_after_snapshot = 1);
        net.elect(1);
        net.deliver_all();
        let _ = net.propose(1, b"a");
        net.deliver_all();
        for input in inputs {
            let _ = net.step(1, input);
            net.queue.clear();
        }
    }

    /// Node 1 as a follower (node 2 leads), then anything.
    #[test]
    fn arbitrary_inputs_at_a_follower_never_panic(inputs in prop::collection::vec(input(), 1..60)) {
        let mut net = Net::new(3, |c| c.log_keep_after_snapshot = 1);
        net.elect(2);
        net.deliver_all();
        let _ = net.propose(2, b"a");
        net.deliver_all();
        for input in inputs {
            let _ = net.step(1, input);
            net.queue.clear();
        }
    }
}
