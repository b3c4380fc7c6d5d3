//! Behaviour named by the section of the Raft paper (Ongaro & Ousterhout 2014, "§") or of Ongaro's
//! thesis (2014, "thesis §") it checks, in the manner of etcd's raft_paper_test.go. Each scripted
//! cluster is watched by the simulator's safety checker on every step.

mod common;

use common::{Net, plain};
use verisim_raft::sim::Property;
use verisim_raft::{
    AppendResult, ConfChange, Config, Input, Message, MessageBody, ReadResult, Role, StepError,
    Stepped,
};

// ----- §5.2 leader election ---------------------------------------------------------------------

#[test]
fn s5_2_follower_campaigns_after_randomized_election_timeout() {
    let mut net = Net::new(3, plain);
    let timeout = net.node(1).term();
    assert_eq!(timeout, 0);
    // Within [election, 2 * election) ticks the follower becomes a candidate of term 1.
    let mut ticks = 0;
    while net.node(1).role() == Role::Follower && ticks < 100 {
        net.tick(1, 1);
        ticks += 1;
    }
    assert_eq!(net.node(1).role(), Role::Candidate);
    assert_eq!(net.node(1).term(), 1);
    assert!((10..20).contains(&ticks), "campaigned after {ticks} ticks");
    assert!(
        net.queue
            .iter()
            .all(|m| matches!(m.body, MessageBody::Vote { .. }))
    );
    net.assert_safe();
}

#[test]
fn s5_2_randomized_timeouts_differ_between_nodes() {
    let mut net = Net::new(5, plain);
    let mut first_campaign = Vec::new();
    for id in 1..=5 {
        let mut ticks = 0;
        while net.node(id).role() == Role::Follower && ticks < 100 {
            net.tick(id, 1);
            ticks += 1;
        }
        first_campaign.push(ticks);
    }
    first_campaign.sort_unstable();
    first_campaign.dedup();
    assert!(
        first_campaign.len() > 1,
        "all nodes share one timeout: {first_campaign:?}"
    );
}

#[test]
fn s5_2_candidate_with_majority_becomes_leader_and_others_follow() {
    let mut net = Net::new(5, plain);
    net.elect(3);
    for id in [1, 2, 4, 5] {
        assert_eq!(net.node(id).role(), Role::Follower);
        assert_eq!(net.node(id).leader(), Some(3));
        assert_eq!(net.node(id).term(), 1);
    }
    net.assert_safe();
}

#[test]
fn s5_2_candidate_without_majority_does_not_win() {
    let mut net = Net::new(5, plain);
    net.campaign(1);
    net.deliver_within(&[1, 2]);
    assert_eq!(net.node(1).role(), Role::Candidate);
}

#[test]
fn s5_2_each_node_votes_at_most_once_per_term() {
    let mut net = Net::new(3, plain);
    net.campaign(1);
    net.campaign(2);
    // Both candidates of term 1 ask node 3; it grants the first request only.
    let mut votes = Vec::new();
    for m in std::mem::take(&mut net.queue)
        .into_iter()
        .filter(|m| m.to == 3)
    {
        let _ = net.step(3, Input::Message(m));
    }
    for m in std::mem::take(&mut net.queue) {
        if let MessageBody::VoteResponse { granted } = m.body {
            votes.push((m.to, granted));
        }
    }
    assert_eq!(votes, vec![(1, true), (2, false)]);
    assert_eq!(net.node(3).vote(), Some(1));
}

#[test]
fn s5_2_leader_of_newer_term_makes_candidate_step_down() {
    let mut net = Net::new(3, plain);
    net.elect(1);
    net.campaign(2);
    net.deliver_all();
    assert_eq!(net.leader(), Some(2));
    assert_eq!(net.node(1).role(), Role::Follower);
    net.assert_safe();
}

// ----- §5.3 log replication ---------------------------------------------------------------------

#[test]
fn s5_3_leader_replicates_and_commits_then_followers_apply() {
    let mut net = Net::new(3, plain);
    net.elect(1);
    let Ok(Stepped::Proposed { index, term }) = net.propose(1, b"x") else {
        panic!("leader refused a proposal");
    };
    assert_eq!((index, term), (2, 1));
    net.deliver_all();
    for id in 1..=3 {
        assert_eq!(net.node(id).commit_index(), 2, "node {id}");
        assert_eq!(net.applied_data(id), vec![b"x".to_vec()], "node {id}");
    }
    net.assert_safe();
}

#[test]
fn s5_3_follower_refuses_proposals_with_leader_hint() {
    let mut net = Net::new(3, plain);
    net.elect(1);
    assert_eq!(
        net.propose(2, b"x"),
        Err(StepError::NotLeader { leader: Some(1) })
    );
}

#[test]
fn s5_3_follower_rejects_append_whose_previous_entry_does_not_match() {
    let mut net = Net::new(3, plain);
    net.elect(1);
    let m = Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::Append {
            prev_index: 7,
            prev_term: 1,
            entries: vec![],
            commit: 0,
        },
    };
    net.step(2, Input::Message(m)).expect("append handled");
    let reply = net.queue.pop().expect("a reply");
    assert!(matches!(
        reply.body,
        MessageBody::AppendResponse(AppendResult::Rejected { rejected: 7, .. })
    ));
}

#[test]
fn s5_3_leader_overwrites_conflicting_uncommitted_entries_with_few_round_trips() {
    // Node 1 leads term 1 and appends many entries nobody receives; node 2 then leads term 2+ and
    // its log wins. Fast backtracking skips the whole conflicting term at once.
    let mut net = Net::new(3, plain);
    net.elect(1);
    net.crash(2);
    net.crash(3);
    for i in 0..50u8 {
        let _ = net.propose(1, &[i]);
    }
    net.queue.clear();
    net.crash(1);
    net.start(2);
    net.start(3);
    net.campaign(2);
    net.deliver_all();
    assert_eq!(net.leader(), Some(2));
    let _ = net.propose(2, b"winner");
    net.deliver_all();
    net.start(1);
    // Count rejections while node 1 catches up.
    let _ = net.step(2, Input::Tick);
    let _ = net.step(2, Input::Tick);
    let mut rejections = 0;
    for _ in 0..100 {
        if net.queue.is_empty() {
            break;
        }
        let batch = std::mem::take(&mut net.queue);
        for m in batch {
            if matches!(
                m.body,
                MessageBody::AppendResponse(AppendResult::Rejected { .. })
            ) {
                rejections += 1;
            }
            let to = m.to;
            let _ = net.step(to, Input::Message(m));
        }
    }
    assert!(
        rejections <= 2,
        "{rejections} rejections to skip one conflicting term"
    );
    assert_eq!(net.applied_data(1), vec![b"winner".to_vec()]);
    assert_eq!(net.node(1).last_index(), net.node(2).last_index());
    net.assert_safe();
}

#[test]
fn s5_3_pipelined_appends_stay_within_the_inflight_bound() {
    fn cfg(c: &mut Config) {
        plain(c);
        c.max_inflight = 3;
        c.max_entries_per_append = 1;
    }
    let mut net = Net::new(3, cfg);
    net.elect(1);
    for i in 0..20u8 {
        let _ = net.propose(1, &[i]);
    }
    let to_two = net
        .queue
        .iter()
        .filter(|m| {
            m.to == 2
                && matches!(&m.body, MessageBody::Append { entries, .. } if !entries.is_empty())
        })
        .count();
    assert_eq!(to_two, 3, "appends in flight to one follower");
    net.deliver_all();
    assert_eq!(net.node(2).commit_index(), 21);
    net.assert_safe();
}

// ----- §5.4 safety ------------------------------------------------------------------------------

#[test]
fn s5_4_1_voter_rejects_candidate_with_less_up_to_date_log() {
    let mut net = Net::new(3, plain);
    net.elect(1);
    let _ = net.propose(1, b"x");
    net.deliver_within(&[1, 2]);
    assert_eq!(net.node(2).last_index(), 2);
    net.crash(1);
    // Node 3 missed the entry: node 2 refuses it.
    net.campaign(3);
    net.deliver_within(&[2, 3]);
    assert_ne!(net.node(3).role(), Role::Leader);
    net.campaign(2);
    net.deliver_within(&[2, 3]);
    assert_eq!(net.node(2).role(), Role::Leader);
    net.assert_safe();
}

/// Figure 8: node 1 (leader of term 3) gets its term-1 entry at index 2 onto a majority, but not its
/// own no-op. Counting replicas would commit it; node 5 can still win term 4 and overwrite it.
fn figure_8(bug: bool) -> Net {
    fn cfg(c: &mut Config) {
        plain(c);
        c.max_entries_per_append = 1;
    }
    fn cfg_bug(c: &mut Config) {
        cfg(c);
        c.bug = Some(verisim_raft::Bug::CommitPreviousTerm);
    }
    let mut net = Net::new(5, if bug { cfg_bug } else { cfg });
    // (a) Node 1 leads term 1; index 1 (its no-op) is everywhere; index 2 only reaches node 2.
    net.elect(1);
    let _ = net.propose(1, b"term-1 entry");
    net.deliver_within(&[1, 2]);
    net.queue.clear();
    // (b) Node 1 crashes; node 5 wins term 2 with votes of 3 and 4 and appends its no-op at index 2
    // locally only.
    net.crash(1);
    net.campaign(5);
    net.deliver_if(|m| {
        !matches!(m.body, MessageBody::Append { .. }) && [3, 4, 5].contains(&m.from)
    });
    assert_eq!(net.node(5).role(), Role::Leader);
    assert_eq!(net.node(5).term_at(2), Some(2));
    net.queue.clear();
    // (c) Node 5 crashes; node 1 restarts and wins term 3; it replicates index 2 to node 3, and its
    // term-3 no-op at index 3 is lost.
    net.crash(5);
    net.start(1);
    net.campaign(1);
    net.deliver_within(&[1, 2, 3, 4]);
    net.campaign(1);
    // Deliver everything among nodes 1-4 except an append that would put index 3 into a log.
    while !net.queue.is_empty() {
        for m in std::mem::take(&mut net.queue) {
            let lands_index_3 = match &m.body {
                MessageBody::Append {
                    prev_index,
                    prev_term,
                    entries,
                    ..
                } => {
                    entries.iter().any(|e| e.index >= 3)
                        && net.nodes.get(&m.to).and_then(|n| n.term_at(*prev_index))
                            == Some(*prev_term)
                }
                _ => false,
            };
            if !lands_index_3 && m.to != 5 && m.from != 5 {
                let to = m.to;
                let _ = net.step(to, Input::Message(m));
            }
        }
    }
    assert_eq!(net.node(1).role(), Role::Leader);
    assert_eq!(net.node(1).term(), 3);
    assert_eq!(net.node(3).term_at(2), Some(1));
    net.queue.clear();
    // (d) Node 1 crashes; node 5 restarts and wins term 4 with nodes 2, 3 and 4 (its last term, 2,
    // beats their 1), then overwrites index 2.
    net.crash(1);
    net.start(5);
    net.campaign(5);
    net.deliver_within(&[2, 3, 4, 5]);
    net.campaign(5);
    net.deliver_within(&[2, 3, 4, 5]);
    net
}

#[test]
fn s5_4_2_leader_does_not_commit_entries_of_earlier_terms_by_counting_replicas() {
    let net = figure_8(false);
    assert_eq!(net.leader(), Some(5));
    // Index 2 was never committed with term 1, so node 5 overwriting it is safe.
    assert_eq!(net.node(3).term_at(2), Some(2));
    net.assert_safe();
}

#[test]
fn s5_4_2_injected_bug_committing_earlier_term_entry_by_count_is_caught() {
    let net = figure_8(true);
    let violation = net
        .violation
        .as_ref()
        .expect("the checker must catch the Figure 8 bug");
    // The checker flags the wrong commit itself (§5.4.2: a leader commits only entries of its
    // term), before node 5 goes on to overwrite the entry (which leader completeness would flag).
    assert_eq!(violation.property, Property::CommitRule, "{violation}");
    assert!(
        violation.to_string().contains("leader 1 of term 3"),
        "{violation}"
    );
}

#[test]
fn s5_4_3_restarted_node_keeps_term_vote_and_log() {
    let mut net = Net::new(3, plain);
    net.elect(1);
    let _ = net.propose(1, b"a");
    net.deliver_all();
    let (term, vote, last) = (
        net.node(2).term(),
        net.node(2).vote(),
        net.node(2).last_index(),
    );
    net.crash(2);
    net.start(2);
    assert_eq!(
        (
            net.node(2).term(),
            net.node(2).vote(),
            net.node(2).last_index()
        ),
        (term, vote, last)
    );
    // Committed entries are handed out again for the state machine rebuilt from the snapshot.
    assert_eq!(net.applied_data(2), vec![b"a".to_vec(), b"a".to_vec()]);
    net.assert_safe();
}

// ----- §7 log compaction and InstallSnapshot ---------------------------------------------------

fn snapshotting(c: &mut Config) {
    plain(c);
    c.log_keep_after_snapshot = 2;
    c.snapshot_chunk_size = 10;
}

#[test]
fn s7_snapshot_compacts_the_log_keeping_a_trailing_window() {
    let mut net = Net::new(3, snapshotting);
    net.elect(1);
    for i in 0..10u8 {
        let _ = net.propose(1, &[i]);
    }
    net.deliver_all();
    assert_eq!(net.node(1).applied_index(), 11);
    net.take_snapshot(1, 35).expect("snapshot accepted");
    assert_eq!(net.node(1).snapshot().index, 11);
    assert_eq!(
        net.node(1).first_index(),
        10,
        "two entries kept before the snapshot"
    );
    assert!(net.disks[&1].entries.iter().all(|e| e.index >= 10));
    // A snapshot beyond the applied index is refused.
    assert!(
        net.step(
            1,
            Input::SnapshotTaken {
                index: 99,
                id: 5,
                size: 1
            }
        )
        .is_err()
    );
    net.assert_safe();
}

#[test]
fn s7_follower_behind_the_log_start_gets_the_snapshot_in_chunks() {
    let mut net = Net::new(3, snapshotting);
    net.elect(1);
    net.crash(3);
    for i in 0..10u8 {
        let _ = net.propose(1, &[i]);
    }
    net.deliver_all();
    net.take_snapshot(1, 35).expect("snapshot accepted");
    net.start(3);
    net.tick(1, 1);
    let chunks = std::cell::Cell::new(0);
    net.deliver_if(|m| {
        if matches!(m.body, MessageBody::InstallSnapshot { .. }) {
            chunks.set(chunks.get() + 1);
        }
        true
    });
    assert_eq!(chunks.get(), 4, "35 bytes in chunks of 10");
    assert_eq!(net.node(3).snapshot().index, 11);
    assert_eq!(net.disks[&3].snapshot.index, 11);
    assert_eq!(
        net.snapshot_files[&(3, net.node(1).snapshot().id)].len(),
        35
    );
    let _ = net.propose(1, b"after");
    net.deliver_all();
    assert_eq!(net.node(3).commit_index(), 12);
    assert_eq!(net.applied_data(3), vec![b"after".to_vec()]);
    net.assert_safe();
}

fn pipelined_snapshots(c: &mut Config) {
    snapshotting(c);
    c.snapshot_chunks_in_flight = 3;
}

/// Not the paper's rule (Figure 13 sends a chunk per round trip) but within it: the leader keeps up
/// to `snapshot_chunks_in_flight` chunks unacknowledged, the follower still writes them strictly in
/// order, and a follower that restarted mid-transfer (a partial transfer never survives a restart)
/// answers the next chunk with "from offset 0", on which the leader starts over at once.
#[test]
fn s7_pipelined_transfer_keeps_a_window_of_chunks_and_starts_over_for_a_restarted_follower() {
    let mut net = Net::new(3, pipelined_snapshots);
    net.elect(1);
    net.crash(3);
    for i in 0..10u8 {
        let _ = net.propose(1, &[i]);
    }
    net.deliver_all();
    net.take_snapshot(1, 75).expect("snapshot accepted");
    net.start(3);
    net.tick(1, 1);
    let mut rounds: Vec<Vec<u64>> = Vec::new();
    let mut restarted = false;
    for _ in 0..100 {
        let batch = std::mem::take(&mut net.queue);
        if batch.is_empty() {
            break;
        }
        let mut offsets = Vec::new();
        for m in batch {
            if let MessageBody::InstallSnapshot { offset, .. } = &m.body {
                offsets.push(*offset);
                if *offset == 40 && !restarted {
                    // The follower restarts before this chunk arrives: what it had is gone.
                    restarted = true;
                    net.crash(3);
                    net.start(3);
                }
            }
            let to = m.to;
            let _ = net.step(to, Input::Message(m));
        }
        if !offsets.is_empty() {
            rounds.push(offsets);
        }
    }
    assert!(restarted);
    assert_eq!(rounds[0], vec![0, 10, 20], "three chunks in flight at once");
    assert_eq!(
        rounds[1],
        vec![30, 40, 50],
        "each acknowledgement lets one more go"
    );
    let sent_from_zero = rounds.iter().flatten().filter(|&&o| o == 0).count();
    assert_eq!(
        sent_from_zero, 2,
        "started over after the restart: {rounds:?}"
    );
    assert_eq!(net.node(3).snapshot().index, 11);
    assert_eq!(
        net.snapshot_files[&(3, net.node(1).snapshot().id)].len(),
        75
    );
    net.assert_safe();
}

#[test]
fn s7_snapshot_transfer_resumes_from_the_offset_after_a_lost_chunk() {
    let mut net = Net::new(3, snapshotting);
    net.elect(1);
    net.crash(3);
    for i in 0..10u8 {
        let _ = net.propose(1, &[i]);
    }
    net.deliver_all();
    net.take_snapshot(1, 35).expect("snapshot accepted");
    net.start(3);
    net.tick(1, 1);
    // Deliver until the second chunk is on its way, then lose it.
    let mut offsets = Vec::new();
    for _ in 0..20 {
        let batch = std::mem::take(&mut net.queue);
        for m in batch {
            if let MessageBody::InstallSnapshot { offset, .. } = &m.body {
                offsets.push(*offset);
                if *offset == 10 && offsets.iter().filter(|&&o| o == 10).count() == 1 {
                    continue;
                }
            }
            let to = m.to;
            let _ = net.step(to, Input::Message(m));
        }
    }
    // Nothing moves until the leader notices the idle transfer; then it resends from offset 10.
    assert_eq!(net.node(3).snapshot().index, 0);
    net.tick(1, 10);
    net.deliver_all();
    assert_eq!(net.node(3).snapshot().index, 11);
    assert_eq!(offsets, vec![0, 10]);
    net.assert_safe();
}

#[test]
fn s7_chunk_of_a_different_snapshot_is_not_resumed() {
    let mut net = Net::new(3, plain);
    net.elect(1);
    let mut meta = net.node(1).snapshot().clone();
    meta.index = 50;
    meta.term = 1;
    meta.size = 20;
    meta.id = 77;
    let chunk = |id, offset: u64| Message {
        from: 1,
        to: 2,
        term: 1,
        body: MessageBody::InstallSnapshot {
            meta: verisim_raft::SnapshotMeta { id, ..meta.clone() },
            offset,
            data: vec![0; 10],
            done: offset == 10,
        },
    };
    net.step(2, Input::Message(chunk(77, 0)))
        .expect("first chunk");
    net.queue.clear();
    // A middle chunk of another snapshot: the follower asks for offset 0 of that one.
    net.step(2, Input::Message(chunk(78, 10))).expect("handled");
    let reply = net.queue.pop().expect("reply");
    assert!(matches!(
        reply.body,
        MessageBody::InstallSnapshotResponse {
            snapshot_id: 78,
            result: verisim_raft::SnapshotResult::Continue { next_offset: 0 }
        }
    ));
    // A chunk that overruns the declared size is malformed.
    let mut bad = chunk(77, 10);
    if let MessageBody::InstallSnapshot { data, .. } = &mut bad.body {
        data.push(1);
    }
    assert!(net.step(2, Input::Message(bad)).is_err());
    assert_eq!(net.node(2).snapshot().index, 0);
}

#[test]
fn s7_restart_from_snapshot_and_log() {
    let mut net = Net::new(3, snapshotting);
    net.elect(1);
    for i in 0..6u8 {
        let _ = net.propose(1, &[i]);
    }
    net.deliver_all();
    net.take_snapshot(2, 12).expect("snapshot");
    let _ = net.propose(1, b"tail");
    net.deliver_all();
    let before = (
        net.node(2).last_index(),
        net.node(2).commit_index(),
        net.node(2).term(),
    );
    net.crash(2);
    net.applied.insert(2, Vec::new());
    net.start(2);
    assert_eq!(
        (
            net.node(2).last_index(),
            net.node(2).commit_index(),
            net.node(2).term()
        ),
        before
    );
    assert_eq!(net.node(2).snapshot().index, 7);
    // Only what follows the snapshot is re-applied.
    assert_eq!(net.applied_data(2), vec![b"tail".to_vec()]);
    net.assert_safe();
}

// ----- thesis §4: membership changes ------------------------------------------------------------

#[test]
fn thesis_4_learner_receives_the_log_but_neither_votes_nor_counts_and_is_promoted() {
    let mut net = Net::new(3, plain);
    net.elect(1);
    net.add_joining(4);
    net.step(1, Input::ProposeConfChange(ConfChange::AddLearner(4)))
        .expect("add learner");
    // Takes effect on append, before commit.
    assert!(net.node(1).membership().learners.contains(&4));
    // A second change waits for the first to commit.
    assert_eq!(
        net.step(1, Input::ProposeConfChange(ConfChange::Promote(4))),
        Err(StepError::ConfChangePending)
    );
    net.deliver_all();
    assert!(net.node(4).membership().learners.contains(&4));
    let _ = net.propose(1, b"x");
    // With node 2 and 3 silent, the learner's copy does not make a majority.
    net.deliver_if(|m| m.to == 4 || m.from == 4);
    assert_eq!(net.node(1).commit_index(), 2);
    assert_eq!(net.node(4).last_index(), 3);
    assert_eq!(net.step(4, Input::Campaign), Err(StepError::NotVoter(4)));
    net.deliver_all();
    net.step(1, Input::ProposeConfChange(ConfChange::Promote(4)))
        .expect("promote");
    net.deliver_all();
    for id in 1..=4 {
        assert!(net.node(id).membership().voters.contains(&4), "node {id}");
    }
    net.assert_safe();
}

#[test]
fn thesis_4_removed_leader_steps_down_once_the_change_commits() {
    let mut net = Net::new(3, plain);
    net.elect(1);
    net.deliver_all();
    net.step(1, Input::ProposeConfChange(ConfChange::Remove(1)))
        .expect("remove self");
    assert_eq!(net.node(1).role(), Role::Leader);
    net.deliver_all();
    assert_eq!(net.node(1).role(), Role::Follower);
    assert!(!net.node(2).membership().voters.contains(&1));
    net.campaign(2);
    net.deliver_all();
    assert_eq!(net.leader(), Some(2));
    assert_eq!(net.step(1, Input::Campaign), Err(StepError::NotVoter(1)));
    net.assert_safe();
}

#[test]
fn thesis_4_invalid_changes_are_refused() {
    let mut net = Net::new(3, plain);
    net.elect(1);
    net.deliver_all();
    assert!(
        net.step(1, Input::ProposeConfChange(ConfChange::AddLearner(2)))
            .is_err()
    );
    assert!(
        net.step(1, Input::ProposeConfChange(ConfChange::Promote(9)))
            .is_err()
    );
    assert!(
        net.step(1, Input::ProposeConfChange(ConfChange::Remove(9)))
            .is_err()
    );
    assert!(
        net.step(2, Input::ProposeConfChange(ConfChange::AddLearner(9)))
            .is_err()
    );
}

#[test]
fn thesis_4_joining_node_catches_up_from_a_snapshot() {
    let mut net = Net::new(3, snapshotting);
    net.elect(1);
    for i in 0..8u8 {
        let _ = net.propose(1, &[i]);
    }
    net.deliver_all();
    net.take_snapshot(1, 23).expect("snapshot");
    net.add_joining(4);
    net.step(1, Input::ProposeConfChange(ConfChange::AddLearner(4)))
        .expect("add learner");
    net.deliver_all();
    net.tick(1, 2);
    net.deliver_all();
    assert_eq!(net.node(4).snapshot().index, 9);
    assert_eq!(net.node(4).commit_index(), net.node(1).commit_index());
    assert!(net.node(4).membership().learners.contains(&4));
    net.assert_safe();
}

// ----- thesis §6.4: read index ------------------------------------------------------------------

#[test]
fn thesis_6_4_read_index_waits_for_a_heartbeat_round_from_a_majority() {
    let mut net = Net::new(3, plain);
    net.elect(1);
    net.deliver_all();
    net.step(1, Input::ReadIndex { request_id: 7 })
        .expect("read accepted");
    assert!(
        net.read_states.get(&1).is_none_or(|r| r.is_empty()),
        "released before confirmation"
    );
    net.deliver_within(&[1, 2]);
    let states = &net.read_states[&1];
    assert_eq!(states.len(), 1);
    assert_eq!(states[0].request_id, 7);
    assert_eq!(states[0].result, ReadResult::Ready { index: 1 });
    assert_eq!(
        net.step(2, Input::ReadIndex { request_id: 8 }),
        Err(StepError::NotLeader { leader: Some(1) })
    );
}

#[test]
fn thesis_6_4_read_on_a_deposed_leader_is_aborted_not_answered() {
    let mut net = Net::new(3, plain);
    net.elect(1);
    net.deliver_all();
    net.step(1, Input::ReadIndex { request_id: 1 })
        .expect("read accepted");
    net.queue.clear();
    // The others elect node 2; node 1 hears of term 2 and must not confirm its read.
    net.campaign(2);
    net.deliver_all();
    let states = &net.read_states[&1];
    assert_eq!(states.len(), 1);
    assert!(matches!(states[0].result, ReadResult::Aborted { .. }));
}

#[test]
fn thesis_6_4_read_waits_for_the_leaders_first_commit_in_its_term() {
    let mut net = Net::new(3, plain);
    net.campaign(1);
    // Votes only: the no-op is not yet committed.
    net.deliver_if(|m| !matches!(m.body, MessageBody::Append { .. }));
    assert_eq!(net.node(1).role(), Role::Leader);
    net.step(1, Input::ReadIndex { request_id: 3 })
        .expect("accepted");
    net.tick(1, 2);
    net.deliver_if(|m| !matches!(m.body, MessageBody::Append { .. }));
    assert!(net.read_states.get(&1).is_none_or(|r| r.is_empty()));
    net.tick(1, 2);
    net.deliver_all();
    assert_eq!(
        net.read_states[&1][0].result,
        ReadResult::Ready { index: 1 }
    );
}

// ----- thesis §3.10: leadership transfer --------------------------------------------------------

#[test]
fn thesis_3_10_leadership_transfer_to_an_up_to_date_voter() {
    let mut net = Net::new(3, |c| {
        c.check_quorum = true;
        c.pre_vote = true;
    });
    net.elect(1);
    net.deliver_all();
    net.step(1, Input::TransferLeadership { to: 3 })
        .expect("transfer");
    assert_eq!(net.propose(1, b"x"), Err(StepError::TransferInProgress));
    net.deliver_all();
    assert_eq!(net.leader(), Some(3));
    assert_eq!(net.node(1).role(), Role::Follower);
    net.assert_safe();
}

#[test]
fn thesis_3_10_transfer_target_catches_up_first() {
    let mut net = Net::new(3, plain);
    net.elect(1);
    net.deliver_all();
    let _ = net.propose(1, b"x");
    net.deliver_within(&[1, 2]);
    net.step(1, Input::TransferLeadership { to: 3 })
        .expect("transfer");
    let timeout_now_first = net.queue.iter().any(|m| m.body == MessageBody::TimeoutNow);
    assert!(!timeout_now_first, "TimeoutNow sent to a lagging target");
    net.deliver_all();
    assert_eq!(net.leader(), Some(3));
    assert_eq!(net.node(3).term_at(2), Some(1));
    net.assert_safe();
}

#[test]
fn thesis_3_10_transfer_that_does_not_finish_is_abandoned() {
    let mut net = Net::new(3, plain);
    net.elect(1);
    net.deliver_all();
    net.crash(3);
    net.step(1, Input::TransferLeadership { to: 3 })
        .expect("transfer");
    net.tick(1, 10);
    assert_eq!(net.node(1).transferring_to(), None);
    assert!(net.propose(1, b"x").is_ok());
}

// ----- thesis §9.6 pre-vote and §6.2 check-quorum -----------------------------------------------

fn guarded(c: &mut Config) {
    c.pre_vote = true;
    c.check_quorum = true;
}

#[test]
fn thesis_9_6_partitioned_node_does_not_raise_its_term_with_pre_vote() {
    let mut net = Net::new(3, guarded);
    net.elect(1);
    net.deliver_all();
    // Node 3 is cut off and times out many times.
    for _ in 0..10 {
        net.tick(3, 25);
        net.queue.retain(|m| m.from != 3 && m.to != 3);
    }
    assert_eq!(net.node(3).term(), 1);
    assert_eq!(net.node(3).role(), Role::PreCandidate);
    // Back in contact, it does not depose the leader.
    net.tick(3, 25);
    net.deliver_all();
    net.tick(1, 2);
    net.deliver_all();
    assert_eq!(net.leader(), Some(1));
    assert_eq!(net.node(1).term(), 1);
    assert_eq!(net.node(3).leader(), Some(1));
}

#[test]
fn thesis_9_6_follower_hearing_from_its_leader_ignores_vote_requests() {
    let mut net = Net::new(3, guarded);
    net.elect(1);
    net.deliver_all();
    let m = Message {
        from: 3,
        to: 2,
        term: 5,
        body: MessageBody::Vote {
            last_log_index: 100,
            last_log_term: 4,
            transfer: false,
        },
    };
    assert_eq!(net.step(2, Input::Message(m)), Err(StepError::InLease));
    assert_eq!(net.node(2).term(), 1);
}

#[test]
fn thesis_6_2_leader_without_a_majority_steps_down() {
    let mut net = Net::new(3, guarded);
    net.elect(1);
    net.deliver_all();
    for _ in 0..25 {
        net.tick(1, 1);
        net.queue.clear();
    }
    assert_eq!(net.node(1).role(), Role::Follower);
    assert_eq!(
        net.propose(1, b"x"),
        Err(StepError::NotLeader { leader: None })
    );
}

#[test]
fn thesis_6_2_leader_with_a_majority_stays() {
    let mut net = Net::new(3, guarded);
    net.elect(1);
    net.deliver_all();
    for _ in 0..50 {
        net.tick(1, 1);
        net.deliver_within(&[1, 2]);
        net.queue.clear();
    }
    assert_eq!(net.node(1).role(), Role::Leader);
}

// ----- stale and malformed input ----------------------------------------------------------------

#[test]
fn stale_term_and_wrong_recipient_are_refused_and_a_stale_leader_learns_the_term() {
    let mut net = Net::new(3, |c| {
        c.pre_vote = true;
        c.check_quorum = false;
    });
    net.elect(1);
    net.deliver_all();
    let zero_term = Message {
        from: 3,
        to: 2,
        term: 0,
        body: MessageBody::Heartbeat {
            commit: 0,
            read_round: 0,
        },
    };
    assert!(matches!(
        net.step(2, Input::Message(zero_term)),
        Err(StepError::Malformed(_))
    ));
    let misaddressed = Message {
        from: 3,
        to: 9,
        term: 1,
        body: MessageBody::TimeoutNow,
    };
    assert!(matches!(
        net.step(2, Input::Message(misaddressed)),
        Err(StepError::WrongRecipient { .. })
    ));
    // Nodes 2 and 3 elect node 2 while node 1 hears nothing: node 1 still leads term 1.
    net.campaign(2);
    net.deliver_within(&[2, 3]);
    assert_eq!(net.node(2).role(), Role::Leader);
    assert_eq!(net.node(1).role(), Role::Leader);
    // Its next heartbeat is refused as stale, and the reply carries term 2: it steps down.
    net.tick(1, 2);
    let heartbeat = net
        .queue
        .iter()
        .position(|m| m.from == 1 && m.to == 3)
        .map(|i| net.queue.remove(i))
        .expect("heartbeat to node 3");
    net.queue.clear();
    assert!(matches!(
        net.step(3, Input::Message(heartbeat)),
        Err(StepError::StaleTerm {
            message: 1,
            current: 2
        })
    ));
    net.deliver_all();
    assert_eq!(net.node(1).role(), Role::Follower);
    assert_eq!(net.node(1).term(), 2);
    net.assert_safe();
}

// ----- recovery paths -------------------------------------------------------------------------

#[test]
fn s5_3_lost_pipelined_append_is_resent_after_a_heartbeat_without_new_proposals() {
    let mut net = Net::new(3, plain);
    net.elect(1);
    net.deliver_all();
    let _ = net.propose(1, b"a");
    net.deliver_all();
    // Node 2 follows (replicate state); the next append to it is lost and nothing else is proposed.
    let _ = net.propose(1, b"lost");
    net.deliver_if(|m| !(m.to == 2 && matches!(m.body, MessageBody::Append { .. })));
    assert_eq!(net.node(2).last_index(), 2);
    for _ in 0..3 {
        net.tick(1, 2);
        net.deliver_all();
    }
    assert_eq!(net.node(2).last_index(), 3);
    assert_eq!(net.applied_data(2), vec![b"a".to_vec(), b"lost".to_vec()]);
    net.assert_safe();
}

#[test]
fn s7_transfer_restarts_from_the_latest_snapshot_when_its_file_is_gone() {
    let mut net = Net::new(3, snapshotting);
    net.elect(1);
    net.crash(3);
    for i in 0..6u8 {
        let _ = net.propose(1, &[i]);
    }
    net.deliver_all();
    net.take_snapshot(1, 30).expect("first snapshot");
    let first = net.node(1).snapshot().id;
    net.start(3);
    net.tick(1, 1);
    // One chunk arrives; then the application replaces the snapshot and deletes the old file.
    let mut delivered_chunks = 0;
    while delivered_chunks < 1 {
        let batch = std::mem::take(&mut net.queue);
        assert!(!batch.is_empty(), "transfer stalled");
        for m in batch {
            if matches!(m.body, MessageBody::InstallSnapshot { .. }) {
                delivered_chunks += 1;
            }
            let to = m.to;
            let _ = net.step(to, Input::Message(m));
        }
    }
    for i in 0..4u8 {
        let _ = net.propose(1, &[i]);
    }
    net.deliver_within(&[1, 2]);
    net.take_snapshot(1, 25).expect("second snapshot");
    let second = net.node(1).snapshot().id;
    assert_ne!(first, second);
    net.snapshot_files.remove(&(1, first));
    net.tick(1, 12);
    net.deliver_all();
    assert_eq!(net.node(3).snapshot().id, second);
    assert_eq!(net.node(3).commit_index(), net.node(1).commit_index());
    net.assert_safe();
}

#[test]
fn thesis_6_4_single_voter_confirms_reads_at_once() {
    let mut net = Net::new(1, plain);
    net.elect(1);
    net.step(1, Input::ReadIndex { request_id: 5 })
        .expect("read");
    assert_eq!(
        net.read_states[&1][0].result,
        ReadResult::Ready { index: 1 }
    );
}
