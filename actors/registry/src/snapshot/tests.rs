//! Registry snapshots on disk: both formats load, and a body that does not decode is corruption.

use std::collections::BTreeMap;

use super::*;
use crate::{
    ClientId, Command, ContentHash, EntityId, ItemMeta, MODALITIES, NodeName, Origin, Outcome,
    Proposal, PublicKey, RegistryConfig, RequestId, WindowId,
};

/// A small registry reached by applying real commands: a client, a window, entities, a delete.
fn registry() -> RegistryState {
    let mut s = RegistryState::new(RegistryConfig::default());
    let client = ClientId::new("alice").unwrap();
    let window = WindowId::new("w1").unwrap();
    let mut cmds = vec![
        Command::RegisterClient {
            client: client.clone(),
            public_key: PublicKey([7; 32]),
        },
        Command::OpenWindow {
            client: client.clone(),
            window: window.clone(),
            expires_at_ms: 3_600_000,
            client_dh: PublicKey([9; 32]),
        },
    ];
    for i in 0..20u8 {
        let items: BTreeMap<_, _> = MODALITIES
            .iter()
            .map(|&m| {
                let hash = ContentHash([i ^ m as u8; 32]);
                (m, ItemMeta { hash, size: 64 })
            })
            .collect();
        cmds.push(Command::PutEntity {
            origin: Origin {
                client: client.clone(),
                window: window.clone(),
                request: RequestId::new(format!("r{i}")).unwrap(),
                fingerprint: ContentHash([i; 32]),
            },
            id: EntityId::new(format!("e{i:02}")).unwrap(),
            items,
            placement: vec![NodeName::new("n1").unwrap(), NodeName::new("n2").unwrap()],
            expected_version: None,
        });
    }
    cmds.push(Command::DeleteEntity {
        origin: Origin {
            client: client.clone(),
            window,
            request: RequestId::new("del").unwrap(),
            fingerprint: ContentHash([0xdd; 32]),
        },
        id: EntityId::new("e03").unwrap(),
        expected_version: None,
    });
    for (i, command) in cmds.into_iter().enumerate() {
        let out = s.apply(
            i as u64 + 1,
            &Proposal {
                at_ms: 1_000,
                command,
            },
        );
        assert!(!matches!(out, Outcome::Refused(_)), "{out:?}");
    }
    s
}

#[test]
fn a_snapshot_written_in_the_old_cbor_format_still_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let state = registry();
    let path = tmp.path().join("old.vsnap");
    // Exactly what the snapshotter wrote before format 2: the state as CBOR, format 1.
    write_snapshot_as(1, &path, 23, 2, vec![0xa0], 5, |w| {
        ciborium::into_writer(&state, w).map_err(std::io::Error::other)
    })
    .unwrap();
    let (header, loaded) = read_registry(&path).unwrap();
    assert_eq!(header.format, 1);
    assert_eq!(loaded, state);
    assert_eq!(loaded.digest(), state.digest());
}

#[test]
fn a_snapshot_in_the_current_format_round_trips_and_is_smaller() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = SnapshotDir::open(tmp.path(), 2).unwrap();
    let state = registry();
    let info = dir
        .write(23, 2, vec![0xa0], 5, |w| state.write_snapshot_body(w))
        .unwrap();
    assert_eq!(info.header.format, FORMAT);
    assert_eq!(FORMAT, crate::FORMAT_COMPACT);
    let (header, loaded) = read_registry(&info.path).unwrap();
    assert_eq!(header, info.header);
    assert_eq!(loaded, state);
    assert!(info.header.body_len * 2 < state.to_cbor().len() as u64);
}

#[test]
fn every_flipped_byte_of_a_registry_snapshot_is_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = SnapshotDir::open(tmp.path(), 1).unwrap();
    let state = registry();
    let info = dir
        .write(23, 2, vec![0xa0], 5, |w| state.write_snapshot_body(w))
        .unwrap();
    let good = std::fs::read(&info.path).unwrap();
    for i in (0..good.len()).step_by(7) {
        let mut bad = good.clone();
        bad[i] ^= 0x10;
        std::fs::write(&info.path, &bad).unwrap();
        let e = read_registry(&info.path).unwrap_err();
        assert!(e.is_corruption(), "flip at {i}: {e}");
    }
}

#[test]
fn a_checksummed_body_that_does_not_decode_is_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = SnapshotDir::open(tmp.path(), 3).unwrap();
    let state = registry();
    // Bytes after the state, checksummed as if they belonged.
    let info = dir
        .write(30, 2, vec![], 0, |w| {
            state.write_snapshot_body(w)?;
            w.write_all(&[0])
        })
        .unwrap();
    let e = read_registry(&info.path).unwrap_err();
    assert!(e.is_corruption() && e.to_string().contains("after"), "{e}");
    // A format-1 header over a format-2 body.
    let path = tmp.path().join("mislabelled.vsnap");
    write_snapshot_as(1, &path, 31, 2, vec![], 0, |w| state.write_snapshot_body(w)).unwrap();
    let e = read_registry(&path).unwrap_err();
    assert!(
        e.is_corruption() && e.to_string().contains("does not decode"),
        "{e}"
    );
}
