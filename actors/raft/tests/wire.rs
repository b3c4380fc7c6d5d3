//! Messages survive CBOR (what the node runtime sends) unchanged.

use verisim_raft::{
    AppendResult, ConfChange, Entry, Membership, Message, MessageBody, Payload, SnapshotMeta,
    SnapshotResult,
};

fn round_trip(m: &Message) -> Message {
    let mut bytes = Vec::new();
    ciborium::into_writer(m, &mut bytes).expect("encode");
    ciborium::from_reader(bytes.as_slice()).expect("decode")
}

#[test]
fn every_message_kind_round_trips_through_cbor() {
    let meta = SnapshotMeta {
        index: 9,
        term: 2,
        membership: Membership::with_voters([1, 2, 3]),
        id: 77,
        size: 1 << 30,
    };
    let bodies = vec![
        MessageBody::PreVote {
            last_log_index: 3,
            last_log_term: 1,
        },
        MessageBody::PreVoteResponse { granted: true },
        MessageBody::Vote {
            last_log_index: 3,
            last_log_term: 1,
            transfer: true,
        },
        MessageBody::VoteResponse { granted: false },
        MessageBody::Append {
            prev_index: 2,
            prev_term: 1,
            entries: vec![
                Entry {
                    term: 2,
                    index: 3,
                    payload: Payload::Noop,
                },
                Entry {
                    term: 2,
                    index: 4,
                    payload: Payload::Normal(vec![0, 255, 7]),
                },
                Entry {
                    term: 2,
                    index: 5,
                    payload: Payload::Config {
                        change: ConfChange::AddLearner(4),
                        membership: Membership::with_voters([1, 2, 3]),
                    },
                },
            ],
            commit: 2,
        },
        MessageBody::AppendResponse(AppendResult::Accepted { match_index: 5 }),
        MessageBody::AppendResponse(AppendResult::Rejected {
            rejected: 5,
            hint_index: 3,
            hint_term: 1,
        }),
        MessageBody::Heartbeat {
            commit: 4,
            read_round: 9,
        },
        MessageBody::HeartbeatResponse { read_round: 9 },
        MessageBody::InstallSnapshot {
            meta,
            offset: 1 << 20,
            data: vec![1, 2, 3],
            done: false,
        },
        MessageBody::InstallSnapshotResponse {
            snapshot_id: 77,
            result: SnapshotResult::Continue { next_offset: 3 },
        },
        MessageBody::InstallSnapshotResponse {
            snapshot_id: 77,
            result: SnapshotResult::Done { match_index: 9 },
        },
        MessageBody::TimeoutNow,
    ];
    for body in bodies {
        let m = Message {
            from: 1,
            to: 2,
            term: 3,
            body,
        };
        assert_eq!(round_trip(&m), m);
    }
}

/// The consensus actor keeps the core in its state and ships messages between tasks.
#[test]
fn core_and_messages_can_cross_threads() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<verisim_raft::Raft>();
    send_sync::<verisim_raft::Ready>();
    send_sync::<Message>();
    send_sync::<verisim_raft::StepError>();
}

/// Payload bytes are one CBOR byte string (about their own size), and a log written by earlier
/// builds, where they were an array of integers, still decodes.
#[test]
fn payload_bytes_are_a_byte_string_and_old_arrays_still_decode() {
    let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let e = Entry {
        term: 3,
        index: 7,
        payload: Payload::Normal(data.clone()),
    };
    let mut bytes = Vec::new();
    ciborium::into_writer(&e, &mut bytes).expect("encode");
    assert!(bytes.len() < 1000 + 64, "{} bytes for 1000", bytes.len());
    let back: Entry = ciborium::from_reader(bytes.as_slice()).expect("decode");
    assert_eq!(back, e);

    /// The same entry as earlier builds encoded it.
    #[derive(serde::Serialize)]
    enum OldPayload {
        Normal(Vec<u8>),
    }
    #[derive(serde::Serialize)]
    struct OldEntry {
        term: u64,
        index: u64,
        payload: OldPayload,
    }
    let mut old = Vec::new();
    ciborium::into_writer(
        &OldEntry {
            term: 3,
            index: 7,
            payload: OldPayload::Normal(data),
        },
        &mut old,
    )
    .expect("encode");
    assert!(old.len() > 1500, "the old form is an integer array");
    let back: Entry = ciborium::from_reader(old.as_slice()).expect("decode old");
    assert_eq!(back, e);
}
