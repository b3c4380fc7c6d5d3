//! Malformed, impossible and extreme messages are refused with a typed error and change nothing:
//! appends that contradict committed entries (§5.3, §5.4.1), terms and indexes at the end of their
//! `u64` space (§5.1, §7), snapshot chunks of another term, leader or snapshot (§7). Each test
//! names the section whose rule the refusal protects. Debug assertions and overflow checks are on
//! in every test build, so an arithmetic overflow or a broken log invariant fails these tests.

mod common;

use common::{Net, plain};
use verisim_raft::{
    AppendResult, ChunkWrite, Config, Entry, HardState, Index, InitError, Input, MAX_INDEX,
    MAX_TERM, Membership, Message, MessageBody, Payload, PersistedState, Raft, Role, SnapshotMeta,
    SnapshotResult, StepError, Term,
};

fn entry(index: Index, term: Term) -> Entry {
    Entry {
        term,
        index,
        payload: Payload::Normal(vec![index as u8, term as u8]),
    }
}

fn config(id: u64) -> Config {
    let mut c = Config::new(id, 7);
    plain(&mut c);
    c
}

/// Node `id` of voters {1, 2, 3}, restarted from this hard state and log.
fn restarted(id: u64, term: Term, commit: Index, log: &[(Index, Term)]) -> Raft {
    let state = PersistedState {
        hard_state: HardState {
            term,
            vote: None,
            commit,
        },
        entries: log.iter().map(|&(i, t)| entry(i, t)).collect(),
        ..PersistedState::bootstrap([1, 2, 3])
    };
    Raft::new(config(id), state).expect("consistent state")
}

fn append(from: u64, term: Term, prev: (Index, Term), entries: &[(Index, Term)]) -> Input {
    Input::Message(Message {
        from,
        to: 1,
        term,
        body: MessageBody::Append {
            prev_index: prev.0,
            prev_term: prev.1,
            entries: entries.iter().map(|&(i, t)| entry(i, t)).collect(),
            commit: 0,
        },
    })
}

fn log_of(raft: &Raft) -> Vec<(Index, Term)> {
    raft.entries().iter().map(|e| (e.index, e.term)).collect()
}

/// The messages a core would send, handled as a driver would (and acknowledged).
fn sent(raft: &mut Raft) -> Vec<Message> {
    let Some(rd) = raft.ready() else {
        return Vec::new();
    };
    raft.advance();
    rd.early_messages.into_iter().chain(rd.messages).collect()
}

fn snapshot_meta(index: Index, term: Term, id: u64, size: u64) -> SnapshotMeta {
    SnapshotMeta {
        index,
        term,
        membership: Membership::with_voters([1, 2, 3]),
        id,
        size,
    }
}

fn chunk(from: u64, term: Term, meta: &SnapshotMeta, offset: u64, len: u64) -> Input {
    Input::Message(Message {
        from,
        to: 1,
        term,
        body: MessageBody::InstallSnapshot {
            meta: meta.clone(),
            offset,
            data: vec![9; len as usize],
            done: offset + len == meta.size,
        },
    })
}

// ----- §5.3 / §5.4.1: appends against committed entries ------------------------------------------

/// The audit's case: the follower holds [1:t1, 2:t2, 3:t2] with 2 committed. An append of term 2
/// claiming (2:t1, 3:t1) after 1:t1 contradicts the committed entry at 2, which every leader of
/// term 2 holds (Leader Completeness): no real leader sends it. It used to be cut at the commit
/// point and truncate 3, appending a term-1 entry after a term-2 one.
#[test]
fn s5_4_1_append_contradicting_a_committed_entry_is_refused_and_changes_nothing() {
    let mut raft = restarted(1, 2, 2, &[(1, 1), (2, 2), (3, 2)]);
    let before = log_of(&raft);
    let r = raft.step(append(2, 2, (1, 1), &[(2, 1), (3, 1)]));
    assert!(matches!(r, Err(StepError::Malformed(_))), "{r:?}");
    assert_eq!(log_of(&raft), before);
    assert_eq!((raft.term(), raft.commit_index()), (2, 2));
    assert!(
        sent(&mut raft).is_empty(),
        "a refused append is not acknowledged"
    );
    // The previous entry at or below the commit index must match too.
    let r = raft.step(append(2, 2, (2, 1), &[(3, 2)]));
    assert!(matches!(r, Err(StepError::Malformed(_))), "{r:?}");
    assert_eq!(log_of(&raft), before);
}

/// A duplicate or reordered append that starts below the commit index is cut at the commit point
/// and what follows is appended (the ordinary case the refusal above must not break).
#[test]
fn s5_3_append_starting_below_the_commit_index_appends_what_follows() {
    let mut raft = restarted(1, 2, 2, &[(1, 1), (2, 2)]);
    raft.step(append(2, 2, (1, 1), &[(2, 2), (3, 2), (4, 2)]))
        .expect("accepted");
    assert_eq!(log_of(&raft), vec![(1, 1), (2, 2), (3, 2), (4, 2)]);
    let acks: Vec<_> = sent(&mut raft)
        .into_iter()
        .map(|m| m.body)
        .collect::<Vec<_>>();
    assert_eq!(
        acks,
        vec![MessageBody::AppendResponse(AppendResult::Accepted {
            match_index: 4
        })]
    );
    // Entirely below the commit index: nothing to do, the commit point is acknowledged.
    raft.step(append(2, 2, (0, 0), &[(1, 1)]))
        .expect("accepted");
    assert_eq!(
        sent(&mut raft).pop().map(|m| m.body),
        Some(MessageBody::AppendResponse(AppendResult::Accepted {
            match_index: 2
        }))
    );
}

/// Uncommitted entries after a matching committed prefix are still replaced by the leader's
/// (§5.3), with the log's terms non-decreasing afterwards.
#[test]
fn s5_3_conflicting_uncommitted_entries_after_the_commit_index_are_replaced() {
    let mut raft = restarted(1, 3, 2, &[(1, 1), (2, 2), (3, 2), (4, 2)]);
    raft.step(append(3, 3, (1, 1), &[(2, 2), (3, 3)]))
        .expect("accepted");
    assert_eq!(log_of(&raft), vec![(1, 1), (2, 2), (3, 3)]);
}

/// Entries must follow the previous entry one by one, with terms that never decrease, never 0, and
/// never beyond the message's term (a leader appends only entries of its term or earlier ones).
/// Checked before anything changes: the term of such a message is not even adopted.
#[test]
fn s5_3_append_out_of_shape_is_refused_before_it_changes_anything() {
    type Case = (Term, (Index, Term), &'static [(Index, Term)]);
    let cases: [Case; 7] = [
        (3, (2, 2), &[(3, 2), (4, 1)]), // terms decrease
        (3, (2, 2), &[(3, 4)]),         // beyond the message term
        (3, (2, 2), &[(4, 3)]),         // a gap after the previous entry
        (3, (2, 2), &[(3, 3), (3, 3)]), // repeated index
        (3, (2, 3), &[(3, 2)]),         // below the previous entry's term
        (3, (0, 0), &[(1, 0)]),         // term 0
        (3, (2, 4), &[]),               // previous term beyond the message term
    ];
    for (term, prev, entries) in cases {
        let mut raft = restarted(1, 2, 2, &[(1, 1), (2, 2)]);
        let r = raft.step(append(2, term, prev, entries));
        assert!(
            matches!(r, Err(StepError::Malformed(_))),
            "{prev:?} {entries:?}: {r:?}"
        );
        assert_eq!(raft.term(), 2, "{prev:?} {entries:?}: term adopted");
        assert_eq!(log_of(&raft), vec![(1, 1), (2, 2)]);
    }
}

/// A configuration entry whose membership no leader could produce (no voters, a node both voter
/// and learner, node 0) is refused (thesis §4.1).
#[test]
fn thesis_4_1_configuration_entry_with_an_impossible_membership_is_refused() {
    let mut both = Membership::with_voters([1, 2]);
    both.learners.insert(2);
    for membership in [Membership::default(), both, Membership::with_voters([0, 1])] {
        let mut raft = restarted(1, 1, 0, &[]);
        let m = Message {
            from: 2,
            to: 1,
            term: 1,
            body: MessageBody::Append {
                prev_index: 0,
                prev_term: 0,
                entries: vec![Entry {
                    term: 1,
                    index: 1,
                    payload: Payload::Config {
                        change: verisim_raft::ConfChange::Remove(3),
                        membership,
                    },
                }],
                commit: 1,
            },
        };
        assert!(matches!(
            raft.step(Input::Message(m)),
            Err(StepError::Malformed(_))
        ));
        assert_eq!(raft.membership(), &Membership::with_voters([1, 2, 3]));
    }
}

// ----- §5.1 terms at the end of their space -----------------------------------------------------

/// A term must be incrementable (a campaign, a pre-vote asks for `term + 1`): `u64::MAX` is
/// refused, whatever the message, and the node's term does not move.
#[test]
fn s5_1_message_of_term_u64_max_is_refused() {
    let bodies = [
        MessageBody::Heartbeat {
            commit: 0,
            read_round: 0,
        },
        MessageBody::Vote {
            last_log_index: 9,
            last_log_term: 9,
            transfer: true,
        },
        MessageBody::PreVote {
            last_log_index: 9,
            last_log_term: 9,
        },
        MessageBody::PreVoteResponse { granted: true },
        MessageBody::TimeoutNow,
    ];
    for body in bodies {
        let mut raft = restarted(1, 1, 0, &[]);
        let m = Message {
            from: 2,
            to: 1,
            term: u64::MAX,
            body,
        };
        assert!(matches!(
            raft.step(Input::Message(m)),
            Err(StepError::Malformed(_))
        ));
        assert_eq!(raft.term(), 1);
    }
}

/// A node that reached the highest usable term (through a message of that term) keeps running but
/// cannot campaign: its timer, `Campaign` and `TimeoutNow` change nothing and overflow nothing.
#[test]
fn s5_1_node_at_the_highest_term_does_not_campaign() {
    for pre_vote in [false, true] {
        let mut cfg = config(1);
        cfg.pre_vote = pre_vote;
        let mut raft = Raft::new(cfg, PersistedState::bootstrap([1, 2, 3])).expect("new");
        let heartbeat = Message {
            from: 2,
            to: 1,
            term: MAX_TERM,
            body: MessageBody::Heartbeat {
                commit: 0,
                read_round: 0,
            },
        };
        raft.step(Input::Message(heartbeat)).expect("a usable term");
        assert_eq!(raft.term(), MAX_TERM);
        for _ in 0..100 {
            raft.step(Input::Tick).expect("tick");
        }
        assert_eq!((raft.term(), raft.role()), (MAX_TERM, Role::Follower));
        assert!(matches!(
            raft.step(Input::Campaign),
            Err(StepError::Unexpected(_))
        ));
        let timeout_now = Message {
            from: 2,
            to: 1,
            term: MAX_TERM,
            body: MessageBody::TimeoutNow,
        };
        assert!(raft.step(Input::Message(timeout_now)).is_err());
        assert_eq!((raft.term(), raft.role()), (MAX_TERM, Role::Follower));
    }
}

/// Persisted state beyond the usable term or index space is inconsistent, not a panic later.
#[test]
fn s5_1_restart_with_a_term_or_index_beyond_the_usable_space_is_refused() {
    let too_high_term = PersistedState {
        hard_state: HardState {
            term: u64::MAX,
            vote: None,
            commit: 0,
        },
        ..PersistedState::bootstrap([1, 2, 3])
    };
    assert!(matches!(
        Raft::new(config(1), too_high_term),
        Err(InitError::Persisted(_))
    ));
    let too_high_index = PersistedState {
        hard_state: HardState {
            term: 1,
            vote: None,
            commit: 0,
        },
        entries: vec![entry(u64::MAX, 1)],
        snapshot: snapshot_meta(u64::MAX - 1, 1, 1, 1),
    };
    assert!(matches!(
        Raft::new(config(1), too_high_index),
        Err(InitError::Persisted(_))
    ));
}

// ----- §5.3 / §7 indexes at the end of their space ----------------------------------------------

/// Appends whose entries would pass the highest usable index are refused; so is a rejection that
/// names an index beyond the leader's log.
#[test]
fn s5_3_append_past_the_index_space_is_refused() {
    let mut raft = restarted(1, 1, 0, &[]);
    for (prev, entries) in [
        ((u64::MAX, 1), &[][..]),
        ((MAX_INDEX, 1), &[(u64::MAX, 1)][..]),
        (
            (u64::MAX - 3, 1),
            &[(u64::MAX - 2, 1), (u64::MAX - 1, 1), (u64::MAX, 1)][..],
        ),
    ] {
        let r = raft.step(append(2, 1, prev, entries));
        assert!(matches!(r, Err(StepError::Malformed(_))), "{prev:?}: {r:?}");
    }
    // A previous entry near the end that this log does not hold is an ordinary rejection.
    raft.step(append(2, 1, (MAX_INDEX - 1, 1), &[(MAX_INDEX, 1)]))
        .expect("rejected, not refused");
    let reply = sent(&mut raft).pop().map(|m| m.body);
    assert!(matches!(
        reply,
        Some(MessageBody::AppendResponse(AppendResult::Rejected { .. }))
    ));
    assert_eq!(raft.last_index(), 0);
}

#[test]
fn s5_3_leader_refuses_a_rejection_beyond_its_log() {
    let mut net = Net::new(3, plain);
    net.elect(1);
    net.deliver_all();
    let m = Message {
        from: 2,
        to: 1,
        term: 1,
        body: MessageBody::AppendResponse(AppendResult::Rejected {
            rejected: u64::MAX,
            hint_index: u64::MAX,
            hint_term: 0,
        }),
    };
    assert!(matches!(
        net.step(1, Input::Message(m)),
        Err(StepError::Malformed(_))
    ));
    assert_eq!(net.node(1).peer_match(2), Some(1));
    let _ = net.propose(1, b"x");
    net.deliver_all();
    assert_eq!(net.node(2).commit_index(), 2);
    net.assert_safe();
}

/// A snapshot at `u64::MAX` (its successor would overflow) is refused; one at the highest usable
/// index installs, and the node then cannot campaign (no room for a leader's no-op) but does not
/// panic on its timer or on a follow-up append.
#[test]
fn s7_snapshot_at_the_end_of_the_index_space() {
    let mut raft = restarted(1, 1, 0, &[]);
    let meta = snapshot_meta(u64::MAX, 1, 5, 4);
    assert!(matches!(
        raft.step(chunk(2, 1, &meta, 0, 4)),
        Err(StepError::Snapshot { .. })
    ));
    assert_eq!(raft.snapshot().index, 0);
    let meta = snapshot_meta(MAX_INDEX, 1, 6, 4);
    raft.step(chunk(2, 1, &meta, 0, 4)).expect("installed");
    let rd = raft.ready().expect("ready");
    assert_eq!(rd.snapshot_install.map(|m| m.index), Some(MAX_INDEX));
    raft.advance();
    assert_eq!(
        (raft.last_index(), raft.commit_index()),
        (MAX_INDEX, MAX_INDEX)
    );
    raft.step(append(2, 1, (MAX_INDEX, 1), &[]))
        .expect("empty append");
    for _ in 0..100 {
        raft.step(Input::Tick).expect("tick");
    }
    assert_eq!(raft.role(), Role::Follower);
}

// ----- §7 snapshot chunks -----------------------------------------------------------------------

/// A transfer is resumed only from the leader and term it started with: a middle chunk of the same
/// snapshot from another leader (same term: impossible, refused; newer term: a new transfer) is not
/// written; the follower asks the new leader for offset 0 (§7, "checked against term and snapshot
/// id").
#[test]
fn s7_snapshot_chunk_from_another_term_or_leader_is_refused() {
    let mut raft = restarted(1, 1, 0, &[]);
    let meta = snapshot_meta(20, 1, 42, 32);
    raft.step(chunk(2, 1, &meta, 0, 16)).expect("first chunk");
    let rd = raft.ready().expect("ready");
    raft.advance();
    assert_eq!(
        rd.snapshot_writes,
        vec![ChunkWrite {
            snapshot_id: 42,
            offset: 0,
            data: vec![9; 16]
        }]
    );
    // Another node claiming to lead the same term: there is one leader per term (§5.2).
    let r = raft.step(chunk(3, 1, &meta, 16, 16));
    assert!(matches!(r, Err(StepError::Unexpected(_))), "{r:?}");
    assert!(raft.ready().is_none(), "nothing written, nothing sent");
    // The leader of a newer term sends the rest of the same snapshot: not resumed.
    raft.step(chunk(3, 2, &meta, 16, 16)).expect("answered");
    let rd = raft.ready().expect("ready");
    raft.advance();
    assert!(rd.snapshot_writes.is_empty() && rd.snapshot_install.is_none());
    let replies: Vec<_> = rd
        .messages
        .into_iter()
        .map(|m| (m.to, m.term, m.body))
        .collect();
    assert_eq!(
        replies,
        vec![(
            3,
            2,
            MessageBody::InstallSnapshotResponse {
                snapshot_id: 42,
                result: SnapshotResult::Continue { next_offset: 0 }
            }
        )]
    );
    // The old leader's last chunk, now stale, is refused as such.
    assert!(matches!(
        raft.step(chunk(2, 1, &meta, 16, 16)),
        Err(StepError::StaleTerm { .. })
    ));
    assert_eq!(raft.snapshot().index, 0);
    // From offset 0, the new leader's transfer completes.
    raft.step(chunk(3, 2, &meta, 0, 16)).expect("chunk");
    raft.step(chunk(3, 2, &meta, 16, 16)).expect("chunk");
    let rd = raft.ready().expect("ready");
    assert_eq!(rd.snapshot_writes.len(), 2);
    assert_eq!(rd.snapshot_install.map(|m| m.index), Some(20));
}

/// Snapshot metadata no leader could send: index 0, term 0, a term beyond the message's, an
/// impossible membership, a chunk that overruns the declared size or ends it without `done`.
#[test]
fn s7_snapshot_chunk_with_impossible_metadata_is_refused() {
    let mut no_voters = snapshot_meta(5, 1, 1, 8);
    no_voters.membership = Membership::default();
    let cases = [
        (snapshot_meta(0, 1, 1, 8), 0, 8, true),
        (snapshot_meta(5, 0, 1, 8), 0, 8, true),
        (snapshot_meta(5, 2, 1, 8), 0, 8, true),
        (no_voters, 0, 8, true),
        (snapshot_meta(5, 1, 1, 8), 4, 8, true),
        (snapshot_meta(5, 1, 1, 8), 0, 8, false),
        (snapshot_meta(5, 1, 1, 8), u64::MAX, 1, false),
    ];
    for (meta, offset, len, done) in cases {
        let mut raft = restarted(1, 1, 0, &[]);
        let m = Message {
            from: 2,
            to: 1,
            term: 1,
            body: MessageBody::InstallSnapshot {
                meta: meta.clone(),
                offset,
                data: vec![0; len],
                done,
            },
        };
        let r = raft.step(Input::Message(m));
        assert!(
            matches!(r, Err(StepError::Snapshot { .. })),
            "{meta:?} {offset}: {r:?}"
        );
        assert!(raft.ready().is_none(), "{meta:?} {offset}: something to do");
    }
}
