use std::collections::BTreeMap;

use proptest::prelude::*;
use serde::Serialize;

use super::*;

fn client(s: &str) -> ClientId {
    ClientId::new(s).unwrap()
}
fn window(s: &str) -> WindowId {
    WindowId::new(s).unwrap()
}
fn entity(s: &str) -> EntityId {
    EntityId::new(s).unwrap()
}
fn node(s: &str) -> NodeName {
    NodeName::new(s).unwrap()
}
fn origin(c: &str, w: &str, r: &str) -> Origin {
    Origin {
        client: client(c),
        window: window(w),
        request: RequestId::new(r).unwrap(),
        fingerprint: ContentHash([0xf0; 32]),
    }
}
fn items(seed: u8) -> BTreeMap<ModalityKind, ItemMeta> {
    MODALITIES
        .iter()
        .map(|&m| {
            (
                m,
                ItemMeta {
                    hash: ContentHash([seed ^ m as u8; 32]),
                    size: 100 + seed as u64,
                },
            )
        })
        .collect()
}
fn put(o: Origin, id: &str, seed: u8, expected_version: Option<u64>) -> Command {
    Command::PutEntity {
        origin: o,
        id: entity(id),
        items: items(seed),
        placement: vec![node("n1"), node("n2"), node("n3")],
        expected_version,
    }
}

/// A registry with client `alice` and her window `w1` open until t=1_000_000.
/// A registry whose clock may jump freely, for tests of other rules (the step bound has its own).
fn unbounded_clock() -> RegistryState {
    RegistryState::new(RegistryConfig {
        max_clock_step_ms: u64::MAX,
        ..RegistryConfig::default()
    })
}

fn with_window() -> (RegistryState, u64) {
    let mut s = unbounded_clock();
    let cmds = [
        Command::RegisterClient {
            client: client("alice"),
            public_key: PublicKey([7; 32]),
        },
        Command::OpenWindow {
            client: client("alice"),
            window: window("w1"),
            expires_at_ms: 1_000_000,
            client_dh: PublicKey([9; 32]),
        },
    ];
    for (i, command) in cmds.into_iter().enumerate() {
        s.apply(
            i as u64 + 1,
            &Proposal {
                at_ms: 1_000,
                command,
            },
        );
    }
    (s, 3)
}

#[test]
fn registration_then_retry_returns_the_first_outcome() {
    let (mut s, i) = with_window();
    let p = Proposal {
        at_ms: 2_000,
        command: put(origin("alice", "w1", "r1"), "e1", 1, None),
    };
    assert_eq!(
        s.apply(i, &p),
        Outcome::EntityPut {
            version: 1,
            index: i
        }
    );
    let before = s.entity(&entity("e1")).cloned();
    // The same request again (a client retry reaching the log twice) changes nothing.
    let retry = Proposal {
        at_ms: 2_500,
        command: put(origin("alice", "w1", "r1"), "e1", 9, None),
    };
    assert_eq!(
        s.apply(i + 1, &retry),
        Outcome::EntityPut {
            version: 1,
            index: i
        }
    );
    assert_eq!(s.entity(&entity("e1")).cloned(), before);
    // A new request updates.
    let update = Proposal {
        at_ms: 3_000,
        command: put(origin("alice", "w1", "r2"), "e1", 2, Some(1)),
    };
    assert_eq!(
        s.apply(i + 2, &update),
        Outcome::EntityPut {
            version: 2,
            index: i + 2
        }
    );
    assert_eq!(
        s.entity(&entity("e1")).map(|e| e.items.to_map()),
        Some(items(2))
    );
    // Another request under a used id is a replay, refused without changes.
    let mut replay = origin("alice", "w1", "r2");
    replay.fingerprint = ContentHash([0x0f; 32]);
    let before = s.entity(&entity("e1")).cloned();
    assert_eq!(
        s.apply(
            i + 3,
            &Proposal {
                at_ms: 3_500,
                command: put(replay, "e1", 3, None),
            }
        ),
        Outcome::Refused(Refusal::ReplayedRequest)
    );
    assert_eq!(s.entity(&entity("e1")).cloned(), before);
}

#[test]
fn version_conflicts_and_deletes() {
    let (mut s, i) = with_window();
    let create = put(origin("alice", "w1", "r1"), "e1", 1, Some(0));
    assert!(matches!(
        s.apply(
            i,
            &Proposal {
                at_ms: 2_000,
                command: create
            }
        ),
        Outcome::EntityPut { version: 1, .. }
    ));
    let stale = put(origin("alice", "w1", "r2"), "e1", 1, Some(0));
    assert_eq!(
        s.apply(
            i + 1,
            &Proposal {
                at_ms: 2_000,
                command: stale
            }
        ),
        Outcome::Refused(Refusal::VersionConflict {
            expected: 0,
            actual: 1
        })
    );
    let del = Command::DeleteEntity {
        origin: origin("alice", "w1", "r3"),
        id: entity("e1"),
        expected_version: Some(1),
    };
    assert_eq!(
        s.apply(
            i + 2,
            &Proposal {
                at_ms: 2_000,
                command: del
            }
        ),
        Outcome::EntityDeleted {
            version: 1,
            index: i + 2
        }
    );
    assert!(s.entity(&entity("e1")).is_none());
    let del_again = Command::DeleteEntity {
        origin: origin("alice", "w1", "r4"),
        id: entity("e1"),
        expected_version: None,
    };
    assert_eq!(
        s.apply(
            i + 3,
            &Proposal {
                at_ms: 2_000,
                command: del_again
            }
        ),
        Outcome::Refused(Refusal::UnknownEntity)
    );
    // Registered again, it continues from the deleted version: an `If-Match: 1` from before the
    // delete cannot match the new entity (no ABA).
    let again = put(origin("alice", "w1", "r5"), "e1", 2, Some(0));
    let p = |command| Proposal {
        at_ms: 2_000,
        command,
    };
    assert!(matches!(
        s.apply(i + 4, &p(again)),
        Outcome::EntityPut { version: 2, .. }
    ));
    let stale_update = put(origin("alice", "w1", "r6"), "e1", 3, Some(1));
    assert_eq!(
        s.apply(i + 5, &p(stale_update)),
        Outcome::Refused(Refusal::VersionConflict {
            expected: 1,
            actual: 2
        })
    );
    // And it survives a snapshot.
    let restored = RegistryState::from_cbor(&s.to_cbor()).unwrap();
    let del = Command::DeleteEntity {
        origin: origin("alice", "w1", "r7"),
        id: entity("e1"),
        expected_version: Some(2),
    };
    let mut restored = restored;
    assert!(matches!(
        restored.apply(i + 6, &p(del)),
        Outcome::EntityDeleted { version: 2, .. }
    ));
    let third = put(origin("alice", "w1", "r8"), "e1", 4, Some(0));
    assert!(matches!(
        restored.apply(i + 7, &p(third)),
        Outcome::EntityPut { version: 3, .. }
    ));
}

/// An update carries the placement its proxy read, which a rebalancer's move may have changed
/// since: apply keeps the committed placement, so the move is never undone.
#[test]
fn an_update_keeps_a_placement_moved_after_it_was_proposed() {
    let (mut s, i) = with_window();
    let p = |command| Proposal {
        at_ms: 2_000,
        command,
    };
    s.apply(i, &p(put(origin("alice", "w1", "r1"), "e1", 1, None)));
    let moved = vec![node("n4"), node("n1"), node("n2")];
    let out = s.apply(
        i + 1,
        &p(Command::MovePlacements {
            moves: vec![PlacementMove {
                id: entity("e1"),
                version: 1,
                from: vec![node("n1"), node("n2"), node("n3")],
                to: moved.clone(),
            }],
        }),
    );
    assert_eq!(
        out,
        Outcome::PlacementsMoved {
            moved: 1,
            skipped: 0,
            index: i + 1
        }
    );
    assert_eq!(s.entity(&entity("e1")).unwrap().index, i + 1);
    // Proposed with the placement before the move.
    let out = s.apply(
        i + 2,
        &p(put(origin("alice", "w1", "r2"), "e1", 2, Some(1))),
    );
    assert!(
        matches!(out, Outcome::EntityPut { version: 2, .. }),
        "{out:?}"
    );
    assert_eq!(s.entity(&entity("e1")).unwrap().placement, moved);
}

#[test]
fn incomplete_items_and_bad_placements_are_refused() {
    let (mut s, i) = with_window();
    let mut partial = items(1);
    partial.remove(&ModalityKind::Tensor);
    let cmd = Command::PutEntity {
        origin: origin("alice", "w1", "r1"),
        id: entity("e1"),
        items: partial,
        placement: vec![node("n1")],
        expected_version: None,
    };
    assert_eq!(
        s.apply(
            i,
            &Proposal {
                at_ms: 2_000,
                command: cmd
            }
        ),
        Outcome::Refused(Refusal::MissingModality)
    );
    for (k, placement) in [vec![], vec![node("n1"), node("n1")]]
        .into_iter()
        .enumerate()
    {
        let cmd = Command::PutEntity {
            origin: origin("alice", "w1", &format!("r{}", k + 2)),
            id: entity("e1"),
            items: items(1),
            placement,
            expected_version: None,
        };
        let p = Proposal {
            at_ms: 2_000,
            command: cmd,
        };
        assert_eq!(
            s.apply(i + 1 + k as u64, &p),
            Outcome::Refused(Refusal::BadPlacement)
        );
    }
    assert_eq!(s.entity_count(), 0);
}

#[test]
fn windows_are_checked_at_proposal_time_and_expire() {
    let (mut s, i) = with_window();
    let late = Proposal {
        at_ms: 1_000_000,
        command: put(origin("alice", "w1", "r1"), "e1", 1, None),
    };
    assert_eq!(s.apply(i, &late), Outcome::Refused(Refusal::WindowExpired));
    assert!(
        s.open_window_for(&window("w1"), &client("alice"), 1_000_000)
            .is_none()
    );
    assert!(
        s.window(&window("w1")).is_some(),
        "an expired window is kept to tell 'expired' from 'unknown'"
    );
    let other = Proposal {
        at_ms: 1_000_001,
        command: put(origin("bob", "w1", "r1"), "e1", 1, None),
    };
    assert_eq!(
        s.apply(i + 1, &other),
        Outcome::Refused(Refusal::UnknownClient)
    );
    let later = Proposal {
        at_ms: 1_000_000 + s.config.request_retention_ms,
        command: Command::RemoveNode { node: node("nx") },
    };
    s.apply(i + 2, &later);
    assert!(
        s.window(&window("w1")).is_none(),
        "pruned once past expiry plus the retention horizon"
    );
}

#[test]
fn revoking_a_client_closes_its_windows() {
    let (mut s, i) = with_window();
    s.apply(
        i,
        &Proposal {
            at_ms: 2_000,
            command: Command::RevokeClient {
                client: client("alice"),
            },
        },
    );
    assert!(
        s.open_window_for(&window("w1"), &client("alice"), 2_000)
            .is_none()
    );
    let p = Proposal {
        at_ms: 2_000,
        command: put(origin("alice", "w1", "r1"), "e1", 1, None),
    };
    assert_eq!(s.apply(i + 1, &p), Outcome::Refused(Refusal::ClientRevoked));
    let reopen = Command::OpenWindow {
        client: client("alice"),
        window: window("w2"),
        expires_at_ms: 9_000,
        client_dh: PublicKey([9; 32]),
    };
    assert_eq!(
        s.apply(
            i + 2,
            &Proposal {
                at_ms: 2_000,
                command: reopen
            }
        ),
        Outcome::Refused(Refusal::ClientRevoked)
    );
}

#[test]
fn windows_longer_than_the_limit_or_duplicated_are_refused() {
    let (mut s, i) = with_window();
    let max = s.config.max_window_ms;
    let long = Command::OpenWindow {
        client: client("alice"),
        window: window("w2"),
        expires_at_ms: 2_000 + max + 1,
        client_dh: PublicKey([9; 32]),
    };
    assert!(matches!(
        s.apply(
            i,
            &Proposal {
                at_ms: 2_000,
                command: long
            }
        ),
        Outcome::Refused(Refusal::WindowTooLong { .. })
    ));
    let dup = Command::OpenWindow {
        client: client("alice"),
        window: window("w1"),
        expires_at_ms: 5_000,
        client_dh: PublicKey([9; 32]),
    };
    assert_eq!(
        s.apply(
            i + 1,
            &Proposal {
                at_ms: 2_000,
                command: dup
            }
        ),
        Outcome::Refused(Refusal::DuplicateWindow)
    );
}

#[test]
fn request_ids_are_forgotten_after_the_retention_horizon() {
    let (mut s, i) = with_window();
    let retention = s.config.request_retention_ms;
    s.apply(
        i,
        &Proposal {
            at_ms: 2_000,
            command: put(origin("alice", "w1", "r1"), "e1", 1, None),
        },
    );
    assert!(
        s.applied_request(&client("alice"), &RequestId::new("r1").unwrap())
            .is_some()
    );
    s.apply(
        i + 1,
        &Proposal {
            at_ms: 2_000 + retention + 1,
            command: Command::RemoveNode { node: node("nx") },
        },
    );
    assert!(
        s.applied_request(&client("alice"), &RequestId::new("r1").unwrap())
            .is_none()
    );
}

#[test]
fn malformed_entries_are_refused_the_same_everywhere() {
    let (mut s, i) = with_window();
    let mut bytes = Proposal {
        at_ms: 2_000,
        command: Command::RemoveNode { node: node("n1") },
    }
    .encode();
    bytes.push(0);
    assert!(matches!(
        s.apply_bytes(i, &bytes),
        Outcome::Refused(Refusal::Malformed(_))
    ));
    assert_eq!(s.applied_index(), i);
    assert!(matches!(
        s.apply_bytes(i + 1, b"\xff\x00garbage"),
        Outcome::Refused(Refusal::Malformed(_))
    ));
}

#[test]
fn snapshot_body_round_trips_and_refuses_trailing_bytes() {
    let (mut s, i) = with_window();
    s.apply(
        i,
        &Proposal {
            at_ms: 2_000,
            command: put(origin("alice", "w1", "r1"), "e1", 1, None),
        },
    );
    let body = s.to_cbor();
    let back = RegistryState::from_cbor(&body).unwrap();
    assert_eq!(back, s);
    assert_eq!(back.digest(), s.digest());
    let mut longer = body.clone();
    longer.extend_from_slice(&[0, 1]);
    assert_eq!(
        RegistryState::from_cbor(&longer),
        Err(DecodeError::TrailingBytes(2))
    );
}

fn at(s: &mut RegistryState, index: u64, at_ms: u64, command: Command) -> Outcome {
    s.apply(index, &Proposal { at_ms, command })
}
fn enroll(c: &str, key: u8) -> Command {
    Command::EnrollClient {
        client: client(c),
        public_key: PublicKey([key; 32]),
    }
}
fn rotate(c: &str, key: u8) -> Command {
    Command::RotateClient {
        client: client(c),
        public_key: PublicKey([key; 32]),
    }
}
fn open(c: &str, w: &str) -> Command {
    Command::OpenWindow {
        client: client(c),
        window: window(w),
        expires_at_ms: 900_000,
        client_dh: PublicKey([9; 32]),
    }
}

#[test]
fn enrolling_the_same_key_again_changes_nothing_and_another_key_is_refused() {
    let mut s = RegistryState::default();
    assert_eq!(
        at(&mut s, 1, 1_000, enroll("dev", 7)),
        Outcome::ClientRegistered
    );
    assert_eq!(
        at(&mut s, 2, 1_000, open("dev", "w1")),
        Outcome::WindowOpened {
            expires_at_ms: 900_000
        }
    );
    let before = s.client(&client("dev")).cloned();
    // A re-run of the enrollment (same key) succeeds and leaves the record as it was.
    assert_eq!(
        at(&mut s, 3, 2_000, enroll("dev", 7)),
        Outcome::ClientRegistered
    );
    assert_eq!(s.client(&client("dev")).cloned(), before);
    // The attack: another key under an existing id, without rotation.
    assert_eq!(
        at(&mut s, 4, 2_000, enroll("dev", 66)),
        Outcome::Refused(Refusal::ClientExists)
    );
    assert_eq!(
        s.client(&client("dev")).cloned(),
        before,
        "the key was not replaced"
    );
    assert!(
        s.open_window_for(&window("w1"), &client("dev"), 2_000)
            .is_some()
    );
}

#[test]
fn rotation_replaces_the_key_and_closes_every_window_of_that_client_only() {
    let mut s = RegistryState::default();
    at(&mut s, 1, 1_000, enroll("dev", 7));
    at(&mut s, 2, 1_000, enroll("bob", 8));
    at(&mut s, 3, 1_000, open("dev", "w1"));
    at(&mut s, 4, 1_000, open("dev", "w2"));
    at(&mut s, 5, 1_000, open("bob", "wb"));
    assert_eq!(
        at(&mut s, 6, 2_000, rotate("dev", 70)),
        Outcome::ClientRotated { windows_closed: 2 }
    );
    let dev = s.client(&client("dev")).unwrap();
    assert_eq!(
        (dev.public_key, dev.revoked, dev.registered_index),
        (PublicKey([70; 32]), false, 6)
    );
    for w in ["w1", "w2"] {
        assert!(s.window(&window(w)).is_none(), "{w} survived the rotation");
    }
    assert!(
        s.open_window_for(&window("wb"), &client("bob"), 2_000)
            .is_some()
    );
    // A request in a closed window is refused; a window under the new key opens.
    let p = Proposal {
        at_ms: 2_000,
        command: put(origin("dev", "w1", "r1"), "e1", 1, None),
    };
    assert_eq!(s.apply(7, &p), Outcome::Refused(Refusal::UnknownWindow));
    assert_eq!(
        at(&mut s, 8, 2_000, open("dev", "w3")),
        Outcome::WindowOpened {
            expires_at_ms: 900_000
        }
    );
    // Rotating an unknown client is refused and registers nothing.
    assert_eq!(
        at(&mut s, 9, 2_000, rotate("nobody", 1)),
        Outcome::Refused(Refusal::UnknownClient)
    );
    assert!(s.client(&client("nobody")).is_none());
}

#[test]
fn a_revoked_client_stays_revoked_whatever_command_tries_to_bring_it_back() {
    let mut s = RegistryState::default();
    at(&mut s, 1, 1_000, enroll("dev", 7));
    at(&mut s, 2, 1_000, open("dev", "w1"));
    assert_eq!(
        at(
            &mut s,
            3,
            2_000,
            Command::RevokeClient {
                client: client("dev")
            }
        ),
        Outcome::ClientRevoked
    );
    assert!(s.window(&window("w1")).is_none());
    // What the state must still be afterwards: the same, with only a no-op applied at the end.
    let mut unchanged = s.clone();
    let attempts = [
        enroll("dev", 7),
        enroll("dev", 66),
        rotate("dev", 66),
        Command::RegisterClient {
            client: client("dev"),
            public_key: PublicKey([66; 32]),
        },
    ];
    for (i, command) in attempts.into_iter().enumerate() {
        let index = 4 + i as u64;
        assert_eq!(
            at(&mut s, index, 2_000, command.clone()),
            Outcome::Refused(Refusal::ClientRevoked),
            "{command:?}"
        );
    }
    at(
        &mut unchanged,
        7,
        2_000,
        Command::RemoveNode { node: node("nx") },
    );
    assert_eq!(
        s.digest(),
        unchanged.digest(),
        "a refused command changed the state"
    );
    let rec = s.client(&client("dev")).unwrap();
    assert!(rec.revoked);
    assert_eq!(rec.public_key, PublicKey([7; 32]));
    // Revoking again is harmless; revoking an unknown client is refused.
    assert_eq!(
        at(
            &mut s,
            8,
            2_000,
            Command::RevokeClient {
                client: client("dev")
            }
        ),
        Outcome::ClientRevoked
    );
    assert_eq!(
        at(
            &mut s,
            9,
            2_000,
            Command::RevokeClient {
                client: client("nobody")
            }
        ),
        Outcome::Refused(Refusal::UnknownClient)
    );
}

#[test]
fn the_legacy_register_command_still_replaces_a_key_as_old_logs_did() {
    let (mut s, i) = with_window();
    let legacy = Command::RegisterClient {
        client: client("alice"),
        public_key: PublicKey([8; 32]),
    };
    assert_eq!(at(&mut s, i, 2_000, legacy), Outcome::ClientRegistered);
    assert_eq!(
        s.client(&client("alice")).unwrap().public_key,
        PublicKey([8; 32])
    );
}

#[test]
fn the_legacy_register_command_is_never_admitted_as_a_new_proposal() {
    let legacy = Proposal {
        at_ms: 1,
        command: Command::RegisterClient {
            client: client("dev"),
            public_key: PublicKey([8; 32]),
        },
    };
    let e = Proposal::admit(&legacy.encode()).unwrap_err();
    assert!(e.contains("RegisterClient"), "{e}");
    let enrol = Proposal {
        at_ms: 1,
        command: enroll("dev", 8),
    };
    assert_eq!(Proposal::admit(&enrol.encode()), Ok(enrol.clone()));
    let mut trailing = enrol.encode();
    trailing.push(0);
    assert!(
        Proposal::admit(&trailing)
            .unwrap_err()
            .contains("malformed proposal")
    );
    assert!(
        Proposal::admit(b"\xff")
            .unwrap_err()
            .contains("malformed proposal")
    );
}

// ---- property tests -------------------------------------------------------------------------

fn arb_command() -> impl Strategy<Value = Command> {
    let c = prop_oneof![Just("alice"), Just("bob")];
    let w = prop_oneof![Just("w1"), Just("w2"), Just("w3")];
    let e = prop_oneof![Just("e1"), Just("e2"), Just("e3"), Just("e4")];
    let r = (0u8..12).prop_map(|n| format!("r{n}"));
    prop_oneof![
        c.clone().prop_map(|c| Command::RegisterClient {
            client: client(c),
            public_key: PublicKey([1; 32])
        }),
        (c.clone(), w.clone(), 0u64..400).prop_map(|(c, w, exp)| Command::OpenWindow {
            client: client(c),
            window: window(w),
            expires_at_ms: exp,
            client_dh: PublicKey([9; 32]),
        }),
        (
            c.clone(),
            w.clone(),
            r.clone(),
            e.clone(),
            any::<u8>(),
            proptest::option::of(0u64..4)
        )
            .prop_map(|(c, w, r, e, seed, ev)| put(origin(c, w, &r), e, seed, ev)),
        (
            c.clone(),
            w.clone(),
            r.clone(),
            e.clone(),
            proptest::option::of(0u64..4)
        )
            .prop_map(|(c, w, r, e, ev)| {
                Command::DeleteEntity {
                    origin: origin(c, w, &r),
                    id: entity(e),
                    expected_version: ev,
                }
            }),
        (
            c.clone(),
            w.clone(),
            r.clone(),
            e.clone(),
            c.clone(),
            proptest::option::of(prop_oneof![Just(Access::Read), Just(Access::Write)])
        )
            .prop_map(|(c, w, r, e, g, a)| match a {
                Some(access) => grant(origin(c, w, &r), e, g, access),
                None => revoke(origin(c, w, &r), e, g),
            }),
        c.clone()
            .prop_map(|c| Command::RevokeClient { client: client(c) }),
        (c.clone(), 1u8..3).prop_map(|(c, k)| Command::EnrollClient {
            client: client(c),
            public_key: PublicKey([k; 32])
        }),
        (c.clone(), 1u8..3).prop_map(|(c, k)| Command::RotateClient {
            client: client(c),
            public_key: PublicKey([k; 32])
        }),
        (c, w).prop_map(|(c, w)| Command::CloseWindow {
            client: client(c),
            window: window(w)
        }),
        prop_oneof![Just("n1"), Just("n2")].prop_map(|n| Command::SetNode {
            node: node(n),
            info: NodeInfo {
                cluster_addr: "127.0.0.1:1".into(),
                http_addr: "127.0.0.1:2".into()
            }
        }),
        (e, 0u64..4, any::<bool>()).prop_map(|(e, version, widen)| {
            let three = vec![node("n1"), node("n2"), node("n3")];
            let four = vec![node("n4"), node("n1"), node("n2"), node("n3")];
            let (from, to) = if widen { (three, four) } else { (four, three) };
            Command::MovePlacements {
                moves: vec![PlacementMove {
                    id: entity(e),
                    version,
                    from,
                    to,
                }],
            }
        }),
    ]
}

fn arb_log() -> impl Strategy<Value = Vec<Proposal>> {
    proptest::collection::vec((0u64..40, arb_command()), 1..80).prop_map(|steps| {
        let mut t = 0;
        steps
            .into_iter()
            .map(|(dt, command)| {
                t += dt;
                Proposal { at_ms: t, command }
            })
            .collect()
    })
}

/// An outcome without its log index (which differs between logs of different lengths).
fn version_of(o: &Outcome) -> Outcome {
    match o {
        Outcome::EntityPut { version, .. } => Outcome::EntityPut {
            version: *version,
            index: 0,
        },
        Outcome::EntityDeleted { version, .. } => Outcome::EntityDeleted {
            version: *version,
            index: 0,
        },
        Outcome::PlacementsMoved { moved, skipped, .. } => Outcome::PlacementsMoved {
            moved: *moved,
            skipped: *skipped,
            index: 0,
        },
        other => other.clone(),
    }
}

fn small_config() -> RegistryConfig {
    RegistryConfig {
        request_retention_ms: 300,
        max_window_ms: 250,
        // Smaller than some steps of `arb_log`, so the bound is exercised too.
        max_clock_step_ms: 25,
    }
}

proptest! {
    /// Two replicas applying the same log (one from the encoded bytes) reach the same state.
    #[test]
    fn apply_is_deterministic(log in arb_log()) {
        let mut a = RegistryState::new(small_config());
        let mut b = RegistryState::new(small_config());
        for (i, p) in log.iter().enumerate() {
            let oa = a.apply(i as u64 + 1, p);
            let ob = b.apply_bytes(i as u64 + 1, &p.encode());
            prop_assert_eq!(oa, ob);
        }
        prop_assert_eq!(a.digest(), b.digest());
    }

    /// Restoring from a snapshot taken at any point and replaying the rest equals applying everything.
    #[test]
    fn snapshot_then_replay_equals_full_apply(log in arb_log(), cut in any::<prop::sample::Index>()) {
        let k = cut.index(log.len() + 1);
        let mut full = RegistryState::new(small_config());
        let mut prefix = RegistryState::new(small_config());
        for (i, p) in log.iter().enumerate() {
            full.apply(i as u64 + 1, p);
            if i < k {
                prefix.apply(i as u64 + 1, p);
            }
        }
        let mut restored = RegistryState::from_cbor(&prefix.to_cbor()).unwrap();
        for (i, p) in log.iter().enumerate().skip(k) {
            restored.apply(i as u64 + 1, p);
        }
        prop_assert_eq!(&restored, &full);
    }

    /// A client command that reaches the log twice (a retry) leaves the same entities as once.
    #[test]
    fn duplicated_requests_apply_once(log in arb_log()) {
        let mut once = RegistryState::new(RegistryConfig { request_retention_ms: u64::MAX, max_window_ms: 250, max_clock_step_ms: 25 });
        let mut twice = once.clone();
        let mut j = 0;
        for (i, p) in log.iter().enumerate() {
            let first = once.apply(i as u64 + 1, p);
            j += 1;
            let a = twice.apply(j, p);
            prop_assert_eq!(version_of(&first), version_of(&a));
            if matches!(p.command, Command::PutEntity { .. } | Command::DeleteEntity { .. })
                && !matches!(a, Outcome::Refused(_))
            {
                j += 1;
                let b = twice.apply(j, p);
                prop_assert_eq!(&a, &b, "a retry returns the first outcome, index included");
            }
        }
        let ents = |s: &RegistryState| s.entities().map(|(k, v)| (k.clone(), v.version, v.items.clone())).collect::<Vec<_>>();
        prop_assert_eq!(ents(&once), ents(&twice));
    }
}

/// The persistent maps of the registry state encode exactly as `BTreeMap`s: snapshots written
/// before the switch load, and every replica's snapshot body stays byte-identical.
#[test]
fn persistent_maps_encode_as_btreemaps() {
    let pairs: Vec<((u64, String), u32)> = (0..50u64)
        .map(|i| ((i * 7919 % 97, format!("k{i}")), i as u32))
        .collect();
    let ord: imbl::OrdMap<_, _> = pairs.iter().cloned().collect();
    let btree: std::collections::BTreeMap<_, _> = pairs.into_iter().collect();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    ciborium::into_writer(&ord, &mut a).unwrap();
    ciborium::into_writer(&btree, &mut b).unwrap();
    assert_eq!(a, b);
    let back: imbl::OrdMap<(u64, String), u32> = ciborium::from_reader(b.as_slice()).unwrap();
    assert_eq!(back, ord);
}

// ---- The registry clock: bounded steps (issue 11, item 5) ----

const T: u64 = 1_800_000_000_000;
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Alice registered with window `w1` (open for an hour) and one applied request `r1`, everything
/// stamped around `T`, under the default configuration. Returns the next log index.
fn honest_cluster_at_t() -> (RegistryState, u64) {
    let mut s = RegistryState::default();
    let cmds = [
        Command::RegisterClient {
            client: client("alice"),
            public_key: PublicKey([7; 32]),
        },
        Command::OpenWindow {
            client: client("alice"),
            window: window("w1"),
            expires_at_ms: T + 3_600_000,
            client_dh: PublicKey([9; 32]),
        },
        put(origin("alice", "w1", "r1"), "e1", 1, None),
    ];
    for (i, command) in cmds.into_iter().enumerate() {
        let out = s.apply(i as u64 + 1, &Proposal { at_ms: T, command });
        assert!(!matches!(out, Outcome::Refused(_)), "{out:?}");
    }
    (s, 4)
}

/// The attack of issue 11: a node two days ahead gets entries into the log. Each moves the
/// registry clock one bounded step; nothing expires and no request id is forgotten, and alice,
/// on true time, is still served and still gets her retry answered.
#[test]
fn entries_stamped_two_days_ahead_expire_nothing() {
    let (mut s, mut i) = honest_cluster_at_t();
    let step = s.config.max_clock_step_ms;
    let before = s.clone();
    for k in 0..3 {
        let out = s.apply(
            i,
            &Proposal {
                at_ms: T + 2 * DAY_MS,
                command: Command::RemoveNode { node: node("nx") },
            },
        );
        assert_eq!(out, Outcome::NodeRemoved);
        assert_eq!(s.clock_ms(), T + (k + 1) * step);
        i += 1;
    }
    assert_eq!(s.window(&window("w1")), before.window(&window("w1")));
    assert_eq!(
        s.applied_request(&client("alice"), &RequestId::new("r1").unwrap()),
        before.applied_request(&client("alice"), &RequestId::new("r1").unwrap()),
    );
    // A retry of r1 is answered with its first outcome, not applied again.
    let retry = s.apply(
        i,
        &Proposal {
            at_ms: T + 1_000,
            command: put(origin("alice", "w1", "r1"), "e1", 1, None),
        },
    );
    assert_eq!(
        retry,
        Outcome::EntityPut {
            version: 1,
            index: 3
        }
    );
    // A new request, stamped with true time, is served in her window.
    let out = s.apply(
        i + 1,
        &Proposal {
            at_ms: T + 2_000,
            command: put(origin("alice", "w1", "r2"), "e1", 2, Some(1)),
        },
    );
    assert_eq!(
        out,
        Outcome::EntityPut {
            version: 2,
            index: i + 1
        }
    );
}

#[test]
fn the_registry_clock_never_goes_backwards() {
    let (mut s, i) = honest_cluster_at_t();
    s.apply(
        i,
        &Proposal {
            at_ms: T - 2 * DAY_MS,
            command: Command::RemoveNode { node: node("nx") },
        },
    );
    assert_eq!(s.clock_ms(), T);
    // A request stamped in the past is remembered from the registry clock, not from its stamp.
    s.apply(
        i + 1,
        &Proposal {
            at_ms: 5,
            command: put(origin("alice", "w1", "r2"), "e1", 2, Some(1)),
        },
    );
    let r2 = s
        .applied_request(&client("alice"), &RequestId::new("r2").unwrap())
        .unwrap();
    assert_eq!(r2.at_ms, T);
}

/// After an idle spell the clock catches up with honest stamps one step per entry; meanwhile a
/// window asked for the longest allowed time is measured from the stamp, so it is not refused as
/// too long because the clock is behind.
#[test]
fn after_an_idle_spell_the_clock_catches_up_by_steps() {
    let (mut s, mut i) = honest_cluster_at_t();
    let step = s.config.max_clock_step_ms;
    let later = T + 3 * step + step / 2;
    let out = s.apply(
        i,
        &Proposal {
            at_ms: later,
            command: Command::OpenWindow {
                client: client("alice"),
                window: window("w2"),
                expires_at_ms: later + s.config.max_window_ms,
                client_dh: PublicKey([3; 32]),
            },
        },
    );
    assert_eq!(
        out,
        Outcome::WindowOpened {
            expires_at_ms: later + s.config.max_window_ms
        }
    );
    assert_eq!(s.clock_ms(), T + step);
    i += 1;
    for _ in 0..3 {
        s.apply(
            i,
            &Proposal {
                at_ms: later,
                command: Command::RemoveNode { node: node("nx") },
            },
        );
        i += 1;
    }
    assert_eq!(s.clock_ms(), later);
}

/// Property (seeded): whatever the stamps, the clock never goes back, never steps more than the
/// bound, and never passes the largest stamp seen.
#[test]
fn step_clock_is_monotone_and_bounded() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let seed = crate::testing::test_seed();
    let mut rng = StdRng::seed_from_u64(seed);
    for round in 0..1_000 {
        let bound: u64 = rng.random_range(0..10_000);
        let mut clock: u64 = 0;
        let mut max_stamp: u64 = 0;
        for _ in 0..100 {
            let at: u64 = match rng.random_range(0..4) {
                0 => rng.random(),
                1 => clock.saturating_sub(rng.random_range(0..100_000)),
                _ => clock.saturating_add(rng.random_range(0..2 * bound + 1)),
            };
            max_stamp = max_stamp.max(at);
            let next = step_clock(clock, at, bound);
            let ctx = format!("seed {seed} round {round}: {clock} + {at} (bound {bound}) = {next}");
            if clock == 0 {
                assert_eq!(next, at, "{ctx}");
            } else {
                assert!(next >= clock, "{ctx}");
                assert!(next - clock <= bound, "{ctx}");
            }
            assert!(next <= max_stamp, "{ctx}");
            clock = next;
        }
    }
}

/// Snapshots written before the bound existed have no `max_clock_step_ms`: they decode with the
/// default bound.
#[test]
fn old_snapshots_without_the_step_bound_decode_with_the_default() {
    let (s, _) = honest_cluster_at_t();
    let mut value: ciborium::Value = ciborium::from_reader(&s.to_cbor()[..]).unwrap();
    let ciborium::Value::Map(fields) = &mut value else {
        panic!("the state is a map")
    };
    let config = fields
        .iter_mut()
        .find(|(k, _)| k.as_text() == Some("config"))
        .map(|(_, v)| v)
        .unwrap();
    let ciborium::Value::Map(config) = config else {
        panic!("the config is a map")
    };
    config.retain(|(k, _)| k.as_text() != Some("max_clock_step_ms"));
    assert_eq!(config.len(), 2);
    let mut old = Vec::new();
    ciborium::into_writer(&value, &mut old).unwrap();
    let restored = RegistryState::from_cbor(&old).unwrap();
    assert_eq!(restored.config.max_clock_step_ms, DEFAULT_MAX_CLOCK_STEP_MS);
    assert_eq!(restored, s);
}

// ---- ownership and grants, tried as an attacker would -----------------------------------------

/// [`with_window`] plus client `bob` (window `wb`) and `carol` (no window), and entity `e1`
/// registered by alice. Answers the next free index.
fn alice_owns_e1() -> (RegistryState, u64) {
    let (mut s, mut i) = with_window();
    let cmds = [
        Command::RegisterClient {
            client: client("bob"),
            public_key: PublicKey([8; 32]),
        },
        Command::RegisterClient {
            client: client("carol"),
            public_key: PublicKey([6; 32]),
        },
        Command::OpenWindow {
            client: client("bob"),
            window: window("wb"),
            expires_at_ms: 1_000_000,
            client_dh: PublicKey([9; 32]),
        },
        put(origin("alice", "w1", "a-reg"), "e1", 1, Some(0)),
    ];
    for command in cmds {
        let out = s.apply(
            i,
            &Proposal {
                at_ms: 1_500,
                command,
            },
        );
        assert!(!matches!(out, Outcome::Refused(_)), "{out:?}");
        i += 1;
    }
    (s, i)
}

/// Applies `command` at index `*i` (then advances it) at t=2_000.
fn step(s: &mut RegistryState, i: &mut u64, command: Command) -> Outcome {
    let out = s.apply(
        *i,
        &Proposal {
            at_ms: 2_000,
            command,
        },
    );
    *i += 1;
    out
}

fn grant(o: Origin, id: &str, grantee: &str, access: Access) -> Command {
    Command::GrantAccess {
        origin: o,
        id: entity(id),
        grantee: client(grantee),
        access,
    }
}

fn revoke(o: Origin, id: &str, grantee: &str) -> Command {
    Command::RevokeAccess {
        origin: o,
        id: entity(id),
        grantee: client(grantee),
    }
}

fn delete(o: Origin, id: &str, expected_version: Option<u64>) -> Command {
    Command::DeleteEntity {
        origin: o,
        id: entity(id),
        expected_version,
    }
}

#[test]
fn a_stranger_cannot_update_delete_or_grant_itself_access() {
    let (mut s, mut i) = alice_owns_e1();
    let before = s.entity(&entity("e1")).cloned().unwrap();
    assert_eq!(before.owner, client("alice"));
    let hidden = Outcome::Refused(Refusal::Forbidden { visible: false });
    let attacks = [
        // Overwrite, with and without the right If-Match, and with a wrong one (which must not
        // reveal the version either).
        put(origin("bob", "wb", "b1"), "e1", 66, None),
        put(origin("bob", "wb", "b2"), "e1", 66, Some(1)),
        put(origin("bob", "wb", "b3"), "e1", 66, Some(7)),
        delete(origin("bob", "wb", "b4"), "e1", None),
        delete(origin("bob", "wb", "b5"), "e1", Some(1)),
        grant(origin("bob", "wb", "b6"), "e1", "bob", Access::Write),
        grant(origin("bob", "wb", "b7"), "e1", "carol", Access::Read),
        revoke(origin("bob", "wb", "b8"), "e1", "alice"),
    ];
    for attack in attacks {
        assert_eq!(step(&mut s, &mut i, attack.clone()), hidden, "{attack:?}");
        assert_eq!(s.entity(&entity("e1")), Some(&before), "{attack:?}");
    }
    // Registering the taken id is a conflict for everyone, and changes nothing either.
    assert!(matches!(
        step(
            &mut s,
            &mut i,
            put(origin("bob", "wb", "b9"), "e1", 66, Some(0))
        ),
        Outcome::Refused(Refusal::VersionConflict { expected: 0, .. })
    ));
    assert_eq!(s.entity(&entity("e1")), Some(&before));
}

#[test]
fn a_read_grantee_is_forbidden_writes_and_a_write_grantee_keeps_the_owner() {
    let (mut s, mut i) = alice_owns_e1();
    let g = step(
        &mut s,
        &mut i,
        grant(origin("alice", "w1", "a1"), "e1", "bob", Access::Read),
    );
    assert!(matches!(g, Outcome::GrantChanged { .. }), "{g:?}");
    let meta = s.entity(&entity("e1")).cloned().unwrap();
    assert_eq!(meta.version, 1, "a grant is not a new version");
    assert!(meta.can_read(&client("bob")) && !meta.can_write(&client("bob")));
    // Read access: told "forbidden" (it may see the entity), and nothing changes.
    let forbidden = Outcome::Refused(Refusal::Forbidden { visible: true });
    for attack in [
        put(origin("bob", "wb", "b1"), "e1", 66, Some(1)),
        delete(origin("bob", "wb", "b2"), "e1", Some(1)),
        grant(origin("bob", "wb", "b3"), "e1", "bob", Access::Write),
    ] {
        assert_eq!(
            step(&mut s, &mut i, attack.clone()),
            forbidden,
            "{attack:?}"
        );
        assert_eq!(s.entity(&entity("e1")), Some(&meta), "{attack:?}");
    }
    // Write access: bob updates; alice stays the owner and the grants stay.
    step(
        &mut s,
        &mut i,
        grant(origin("alice", "w1", "a2"), "e1", "bob", Access::Write),
    );
    let w = step(
        &mut s,
        &mut i,
        put(origin("bob", "wb", "b4"), "e1", 2, Some(1)),
    );
    assert!(matches!(w, Outcome::EntityPut { version: 2, .. }), "{w:?}");
    let meta = s.entity(&entity("e1")).cloned().unwrap();
    assert_eq!(meta.owner, client("alice"));
    assert_eq!(meta.items, items(2));
    assert_eq!(
        meta.grants,
        BTreeMap::from([(client("bob"), Access::Write)])
    );
    // A write grantee still cannot grant (only the owner does).
    assert_eq!(
        step(
            &mut s,
            &mut i,
            grant(origin("bob", "wb", "b5"), "e1", "carol", Access::Read)
        ),
        forbidden
    );
    // Revoked: bob's next write is refused as from a stranger, and his delete too.
    step(
        &mut s,
        &mut i,
        revoke(origin("alice", "w1", "a3"), "e1", "bob"),
    );
    let hidden = Outcome::Refused(Refusal::Forbidden { visible: false });
    assert_eq!(
        step(
            &mut s,
            &mut i,
            put(origin("bob", "wb", "b6"), "e1", 3, Some(2))
        ),
        hidden
    );
    assert_eq!(
        step(
            &mut s,
            &mut i,
            delete(origin("bob", "wb", "b7"), "e1", None)
        ),
        hidden
    );
    assert_eq!(s.entity(&entity("e1")).map(|e| e.version), Some(2));
    // The owner deletes; the id is free again and a new registration owns it afresh, continuing
    // from the deleted version (versions are never reused).
    step(
        &mut s,
        &mut i,
        delete(origin("alice", "w1", "a4"), "e1", None),
    );
    let r = step(
        &mut s,
        &mut i,
        put(origin("bob", "wb", "b8"), "e1", 5, Some(0)),
    );
    assert!(matches!(r, Outcome::EntityPut { version: 3, .. }), "{r:?}");
    let fresh = s.entity(&entity("e1")).unwrap();
    assert_eq!(fresh.owner, client("bob"));
    assert!(fresh.grants.is_empty(), "grants die with the entity");
}

#[test]
fn grants_need_a_registered_grantee_other_than_the_owner_and_an_existing_entity() {
    let (mut s, mut i) = alice_owns_e1();
    let before = s.entity(&entity("e1")).cloned();
    assert_eq!(
        step(
            &mut s,
            &mut i,
            grant(origin("alice", "w1", "a1"), "e1", "nobody", Access::Read)
        ),
        Outcome::Refused(Refusal::UnknownGrantee)
    );
    assert_eq!(
        step(
            &mut s,
            &mut i,
            grant(origin("alice", "w1", "a2"), "e1", "alice", Access::Read)
        ),
        Outcome::Refused(Refusal::GrantToOwner)
    );
    assert_eq!(
        step(
            &mut s,
            &mut i,
            grant(origin("alice", "w1", "a3"), "e9", "bob", Access::Read)
        ),
        Outcome::Refused(Refusal::UnknownEntity)
    );
    assert_eq!(s.entity(&entity("e1")).cloned(), before);
    // Withdrawing a grant that does not exist succeeds and changes nothing.
    assert!(matches!(
        step(
            &mut s,
            &mut i,
            revoke(origin("alice", "w1", "a4"), "e1", "carol")
        ),
        Outcome::GrantChanged { .. }
    ));
    assert_eq!(s.entity(&entity("e1")).cloned(), before);
    // A grant is a client request like any other: its window is checked, retries are
    // idempotent and a reused request id is a replay.
    let first = step(
        &mut s,
        &mut i,
        grant(origin("alice", "w1", "a5"), "e1", "carol", Access::Read),
    );
    let retry = step(
        &mut s,
        &mut i,
        grant(origin("alice", "w1", "a5"), "e1", "carol", Access::Read),
    );
    assert_eq!(first, retry);
    let mut replay = origin("alice", "w1", "a5");
    replay.fingerprint = ContentHash([1; 32]);
    assert_eq!(
        step(&mut s, &mut i, grant(replay, "e1", "carol", Access::Write)),
        Outcome::Refused(Refusal::ReplayedRequest)
    );
    assert_eq!(
        step(
            &mut s,
            &mut i,
            grant(origin("alice", "wb", "a6"), "e1", "carol", Access::Write)
        ),
        Outcome::Refused(Refusal::WindowOfAnotherClient)
    );
    assert_eq!(
        s.entity(&entity("e1")).map(|e| e.grants.clone()),
        Some(BTreeMap::from([(client("carol"), Access::Read)]))
    );
}

/// Snapshots written before grants existed hold entities without a `grants` field: they load, with
/// no grants.
#[test]
fn entity_metadata_without_grants_decodes() {
    #[derive(Serialize)]
    struct EntityMetaBeforeGrants {
        version: u64,
        items: BTreeMap<ModalityKind, ItemMeta>,
        placement: Vec<NodeName>,
        owner: ClientId,
        index: u64,
    }
    let old = EntityMetaBeforeGrants {
        version: 3,
        items: items(4),
        placement: vec![node("n1")],
        owner: client("alice"),
        index: 17,
    };
    let meta: EntityMeta = decode_exact(&encode(&old)).unwrap();
    assert_eq!(meta.owner, client("alice"));
    assert_eq!((meta.version, meta.index), (3, 17));
    assert!(meta.grants.is_empty());
    // And a whole state round-trips with grants in it.
    let (mut s, mut i) = alice_owns_e1();
    step(
        &mut s,
        &mut i,
        grant(origin("alice", "w1", "a1"), "e1", "bob", Access::Write),
    );
    assert_eq!(RegistryState::from_cbor(&s.to_cbor()).unwrap(), s);
}

#[test]
fn a_rehomed_registry_places_everything_on_its_one_node_and_forgets_the_old_ones() {
    let (mut s, i) = with_window();
    s.apply(
        i,
        &Proposal {
            at_ms: 2_000,
            command: put(origin("alice", "w1", "r1"), "e1", 1, None),
        },
    );
    s.apply(
        i + 1,
        &Proposal {
            at_ms: 2_000,
            command: Command::SetNode {
                node: node("n2"),
                info: NodeInfo {
                    cluster_addr: "10.0.0.2:7100".into(),
                    http_addr: "10.0.0.2:8100".into(),
                },
            },
        },
    );
    let before = s.entity(&entity("e1")).cloned().unwrap();
    assert_eq!(s.nodes().len(), 1);
    s.rehome(&node("n7"));
    let after = s.entity(&entity("e1")).unwrap();
    assert_eq!(after.placement, vec![node("n7")]);
    assert_eq!(
        (after.version, &after.items, after.index, &after.owner),
        (before.version, &before.items, before.index, &before.owner),
        "only the placement changes"
    );
    assert!(s.nodes().is_empty());
    assert!(s.client(&client("alice")).is_some(), "clients come along");
}

// ---- The compact snapshot body (format 2) ----

/// A registry with every part the snapshot body holds: two clients (one revoked), windows, nodes,
/// entities with grants and moved placements, a deleted id, and remembered outcomes of each kind.
fn every_part() -> RegistryState {
    let (mut s, mut i) = alice_owns_e1();
    let o = |r: &str| origin("alice", "w1", r);
    let cmds = [
        put(o("r-e2"), "e2", 0x40, None),
        put(o("r-e3"), "e3", 3, None),
        grant(o("r-g"), "e1", "bob", Access::Write),
        grant(o("r-g2"), "e2", "bob", Access::Read),
        delete(o("r-d"), "e3", None),
        put(o("r-bad"), "e1", 1, Some(99)),
        Command::SetNode {
            node: node("n1"),
            info: NodeInfo {
                cluster_addr: "127.0.0.1:1".into(),
                http_addr: "x".repeat(5000),
            },
        },
        Command::MovePlacements {
            moves: vec![PlacementMove {
                id: entity("e2"),
                version: 1,
                from: vec![node("n1"), node("n2"), node("n3")],
                to: vec![node("n4"), node("n1")],
            }],
        },
        Command::RegisterClient {
            client: client("carol"),
            public_key: PublicKey([0x33; 32]),
        },
        Command::RevokeClient {
            client: client("carol"),
        },
    ];
    for c in cmds {
        step(&mut s, &mut i, c);
    }
    s
}

fn compact(s: &RegistryState) -> Vec<u8> {
    let mut body = Vec::new();
    s.write_snapshot_body(&mut body).unwrap();
    body
}

fn read_compact(body: &[u8]) -> Result<RegistryState, SnapshotBodyError> {
    RegistryState::read_snapshot_body(FORMAT_COMPACT, &mut &body[..])
}

fn malformed(r: Result<RegistryState, SnapshotBodyError>, what: &str) -> String {
    match r {
        Err(SnapshotBodyError::Malformed(why)) => why,
        other => panic!("{what}: expected a malformed body, got {other:?}"),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("the pattern is in the body")
}

#[test]
fn the_compact_body_round_trips_every_part() {
    let s = every_part();
    assert_eq!(s.window_count(), 2);
    assert!(s.client(&client("carol")).unwrap().revoked);
    let body = compact(&s);
    let back = read_compact(&body).unwrap();
    assert_eq!(back, s, "the derived orders are rebuilt too");
    assert_eq!(back.digest(), s.digest());
    assert_eq!(compact(&back), body, "one encoding per state");
    // Both formats through the same entry point.
    let cbor = s.to_cbor();
    assert_eq!(
        RegistryState::read_snapshot_body(FORMAT_CBOR, &mut &cbor[..]).unwrap(),
        s
    );
    // Both hold the 5,000-byte address once; the rest shrinks by more than half.
    assert!(
        (body.len() - 5000) * 2 < cbor.len() - 5000,
        "{} vs {} bytes",
        body.len(),
        cbor.len()
    );
    let empty = RegistryState::default();
    assert_eq!(read_compact(&compact(&empty)).unwrap(), empty);
}

#[test]
fn a_compact_body_cut_short_or_with_bytes_after_it_is_malformed() {
    let body = compact(&every_part());
    for len in 0..body.len() {
        malformed(read_compact(&body[..len]), &format!("cut to {len}"));
    }
    let mut longer = body.clone();
    longer.push(0);
    assert!(malformed(read_compact(&longer), "one byte more").contains("after"));
    let cbor = every_part().to_cbor();
    let mut longer = cbor.clone();
    longer.push(0);
    assert!(matches!(
        RegistryState::read_snapshot_body(FORMAT_CBOR, &mut &longer[..]),
        Err(SnapshotBodyError::Malformed(_))
    ));
    assert!(matches!(
        RegistryState::read_snapshot_body(3, &mut &body[..]),
        Err(SnapshotBodyError::UnknownFormat(3))
    ));
}

#[test]
fn bad_tags_and_non_minimal_integers_are_malformed() {
    let body = compact(&every_part());
    // The modality tag before e2's graph hash (seed 0x40).
    let at = find(&body, &[0x40; 32]) - 1;
    let mut bad = body.clone();
    bad[at] = 9;
    assert!(malformed(read_compact(&bad), "modality").contains("modality"));
    // The outcome tag after the first remembered request's fingerprint.
    let at = find(&body, &[0xf0; 32]) + 32;
    let mut bad = body.clone();
    bad[at] = 9;
    assert!(malformed(read_compact(&bad), "outcome").contains("outcome"));
    // `revoked` after carol's key.
    let at = find(&body, &[0x33; 32]) + 32;
    assert_eq!(body[at], 1);
    let mut bad = body.clone();
    bad[at] = 2;
    assert!(malformed(read_compact(&bad), "bool").contains("boolean"));
    // The applied index (after the config's bytes), written in two bytes instead of one.
    let at = 1 + body[0] as usize;
    assert!(body[at] < 0x80);
    let mut bad = body[..at].to_vec();
    bad.extend_from_slice(&[body[at] | 0x80, 0]);
    bad.extend_from_slice(&body[at + 1..]);
    assert!(malformed(read_compact(&bad), "varint").contains("shortest"));
    // Eleven continuation bytes.
    let mut bad = body[..at].to_vec();
    bad.extend_from_slice(&[0xff; 11]);
    assert!(malformed(read_compact(&bad), "overflow").contains("overflows"));
}

#[test]
fn compact_maps_out_of_order_are_malformed() {
    let mut s = RegistryState::default();
    let meta = |owner: &str, n: &str| EntityMeta {
        version: 1,
        items: (&items(1)).into(),
        placement: vec![node(n)],
        owner: client(owner),
        index: 1,
        grants: BTreeMap::new(),
    };
    // Each record defines its own names, so the two can be swapped without a dangling reference.
    s.insert_entity(entity("ea"), meta("alice", "n1"));
    s.insert_entity(entity("eb"), meta("bob", "n2"));
    let body = compact(&s);
    assert_eq!(read_compact(&body).unwrap(), s);
    let (a, b) = (find(&body, b"\x02ea"), find(&body, b"\x02eb"));
    let end = body.len() - 2; // no retired ids, no requests
    let mut swapped = body[..a].to_vec();
    swapped.extend_from_slice(&body[b..end]);
    swapped.extend_from_slice(&body[a..b]);
    swapped.extend_from_slice(&body[end..]);
    assert_eq!(swapped.len(), body.len());
    assert!(malformed(read_compact(&swapped), "swapped").contains("out of order"));
    // A reference to a name never defined.
    let mut bad = body.clone();
    let owner = find(&body, b"\x05alice") - 1;
    bad[owner] = 7;
    bad.remove(owner + 1);
    malformed(read_compact(&bad), "dangling reference");
}

proptest! {
    /// Any state an arbitrary log reaches survives the compact body unchanged, and so does its
    /// replay: restoring from the body at any point and applying the rest equals applying all.
    #[test]
    fn compact_body_round_trips_and_replays(log in arb_log(), cut in any::<prop::sample::Index>()) {
        let k = cut.index(log.len() + 1);
        let mut full = RegistryState::new(small_config());
        let mut prefix = RegistryState::new(small_config());
        for (i, p) in log.iter().enumerate() {
            full.apply(i as u64 + 1, p);
            if i < k {
                prefix.apply(i as u64 + 1, p);
            }
        }
        let body = compact(&prefix);
        let mut restored = read_compact(&body).unwrap();
        prop_assert_eq!(&restored, &prefix);
        prop_assert_eq!(compact(&restored), body);
        for (i, p) in log.iter().enumerate().skip(k) {
            restored.apply(i as u64 + 1, p);
        }
        prop_assert_eq!(&restored, &full);
        prop_assert_eq!(read_compact(&compact(&full)).unwrap(), full);
    }
}

/// A registry of `n` entities applied one by one as `PutEntity` commands (two clients, request
/// times out of step with the request ids' order): the state the decode must rebuild exactly.
fn applied_registry(n: u64) -> RegistryState {
    let mut s = RegistryState::new(RegistryConfig::default());
    for (i, c) in ["alice", "bob"].into_iter().enumerate() {
        let at = |command| Proposal { at_ms: 1, command };
        s.apply(
            2 * i as u64 + 1,
            &at(Command::EnrollClient {
                client: client(c),
                public_key: PublicKey([i as u8 + 1; 32]),
            }),
        );
        s.apply(
            2 * i as u64 + 2,
            &at(Command::OpenWindow {
                client: client(c),
                window: window(&format!("w-{c}")),
                expires_at_ms: 3_600_000,
                client_dh: PublicKey([9; 32]),
            }),
        );
    }
    for i in 0..n {
        let c = if i % 3 == 0 { "bob" } else { "alice" };
        let outcome = s.apply(
            i + 5,
            &Proposal {
                // Times run backwards against the ids: the order by time is not the stream's.
                at_ms: 1_000_000 - i,
                command: Command::PutEntity {
                    origin: origin(c, &format!("w-{c}"), &format!("r{i}")),
                    id: entity(&format!("e{}", i * 7919 % n.max(1))),
                    items: items(i as u8),
                    placement: vec![node("n1"), node(&format!("n{}", 2 + i % 4))],
                    expected_version: None,
                },
            },
        );
        assert!(matches!(outcome, Outcome::EntityPut { .. }), "{outcome:?}");
    }
    s
}

#[test]
fn the_decoded_registry_equals_the_one_built_entry_by_entry() {
    // 0 and 1 record, and more than one of the decoder's batches (4,096 records) of each map.
    for n in [0, 1, 2, 4_096, 4_097, 9_000] {
        let s = applied_registry(n);
        assert_eq!(s.entity_count() as u64, n);
        let body = compact(&s);
        let back = read_compact(&body).unwrap();
        assert_eq!(back, s, "{n} entities");
        assert_eq!(back.digest(), s.digest(), "{n} entities");
        // The derived order by time answers as the applied one does: apply on both the same
        // later entry, which expires requests by it, and they stay equal.
        let (mut a, mut b) = (s.clone(), back);
        let later = Proposal {
            at_ms: 1_000_000 + 12 * 60 * 1000 - n / 2,
            command: Command::RemoveNode { node: node("n9") },
        };
        a.apply(n + 5, &later);
        b.apply(n + 5, &later);
        assert_eq!(a, b, "{n} entities, after expiry");
    }
}

#[test]
fn compact_maps_with_a_repeated_key_are_malformed() {
    let mut s = RegistryState::default();
    s.insert_entity(
        entity("ea"),
        EntityMeta {
            version: 1,
            items: (&items(1)).into(),
            placement: vec![node("n1")],
            owner: client("alice"),
            index: 1,
            grants: BTreeMap::new(),
        },
    );
    let body = compact(&s);
    let start = find(&body, b"\x02ea");
    let end = body.len() - 2; // no retired ids, no requests
    assert_eq!(body[start - 1], 1, "one entity");
    // The same record twice (it defines its names again, which a table allows).
    let mut twice = body[..start - 1].to_vec();
    twice.push(2);
    twice.extend_from_slice(&body[start..end]);
    twice.extend_from_slice(&body[start..end]);
    twice.extend_from_slice(&body[end..]);
    assert!(malformed(read_compact(&twice), "repeated").contains("entities out of order"));

    // A repeated remembered request (same client, same request id): alice's r1 and r2.
    let s = applied_registry(3);
    let body = compact(&s);
    let first = find(&body, b"\x02r1");
    let second = find(&body, b"\x02r2");
    assert_eq!(read_compact(&body).unwrap(), s);
    let mut repeated = body.clone();
    repeated[second + 2] = b'1';
    assert!(malformed(read_compact(&repeated), "repeated request").contains("requests"));
    // The same two swapped: out of order.
    let mut swapped = body.clone();
    (swapped[first + 2], swapped[second + 2]) = (b'2', b'1');
    assert!(malformed(read_compact(&swapped), "swapped requests").contains("requests"));
}
