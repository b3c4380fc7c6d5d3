use std::collections::BTreeMap;

use proptest::prelude::*;
use verisim_stores::codec::Bytes;

use super::*;
use crate::registry::{ClientId, EntityMeta, ItemMeta, NodeName};
use crate::store_actors::MODALITIES;

fn item(id: &str, modality: ModalityKind, payload: Vec<u8>) -> ExportedItem {
    ExportedItem {
        modality,
        id: EntityId::new(id).unwrap(),
        hash: ContentHash::of(modality.hash_domain(), &payload),
        payload: Bytes(payload),
    }
}

/// A registry of `n` entities and their items (payload sizes from `sizes`, cycled).
fn fixture(n: usize, sizes: &[usize]) -> (RegistryState, Vec<ExportedItem>) {
    let mut state = RegistryState::default();
    let mut items = Vec::new();
    for e in 0..n {
        let id = format!("e{e}");
        let mut metas = BTreeMap::new();
        for (m, &kind) in MODALITIES.iter().enumerate() {
            let size = sizes[(e * 4 + m) % sizes.len()];
            let it = item(
                &id,
                kind,
                (0..size).map(|i| (i * 7 + e + m) as u8).collect(),
            );
            metas.insert(
                kind,
                ItemMeta {
                    hash: it.hash,
                    size: size as u64,
                },
            );
            items.push(it);
        }
        state.insert_entity(
            EntityId::new(&id).unwrap(),
            EntityMeta {
                version: 1,
                items: (&metas).into(),
                placement: vec![NodeName::new("n1").unwrap()],
                owner: ClientId::new("alice").unwrap(),
                index: 3,
                grants: BTreeMap::new(),
            },
        );
    }
    (state, items)
}

fn header(state: &RegistryState) -> BackupHeader {
    BackupHeader {
        format: FORMAT,
        source_node: 1,
        index: 42,
        term: 3,
        membership: encode(&Membership::with_voters([1, 2, 3])),
        created_ms: 1_700_000_000_000,
        entities: state.entity_count() as u64,
        registry_len: 0,
        registry_blake3: Vec::new(),
    }
}

fn write(state: &RegistryState, items: &[ExportedItem]) -> Vec<u8> {
    let body = state.to_cbor();
    let mut w = BackupWriter::new(Vec::new(), header(state), &body).unwrap();
    w.registry(&body).unwrap();
    for it in items {
        w.item(it).unwrap();
    }
    w.finish().unwrap().0
}

#[test]
fn a_backup_round_trips() {
    let (state, items) = fixture(5, &[0, 1, 100, 4000]);
    let bytes = write(&state, &items);
    let s = verify_reader(&bytes[..]).unwrap();
    assert_eq!(s.entities, 5);
    assert_eq!(s.items, 20);
    assert_eq!(s.bytes, bytes.len() as u64);
    assert_eq!(s.header.index, 42);
    assert_eq!(s.header.term, 3);
    assert_eq!(
        s.header.source_membership(),
        Some(Membership::with_voters([1, 2, 3]))
    );
    // And item by item, as a restore reads it.
    let mut r = BackupReader::open(&bytes[..]).unwrap();
    assert_eq!(decode_registry(&r.registry().unwrap()).unwrap(), state);
    let mut back = Vec::new();
    while let Some(it) = r.next_item().unwrap() {
        back.push(it);
    }
    assert_eq!(back, items);
}

#[test]
fn an_empty_registry_round_trips() {
    let (state, items) = fixture(0, &[1]);
    let bytes = write(&state, &items);
    let s = verify_reader(&bytes[..]).unwrap();
    assert_eq!((s.entities, s.items), (0, 0));
}

#[test]
fn every_flipped_byte_is_detected() {
    let (state, items) = fixture(2, &[0, 3, 17, 40]);
    let bytes = write(&state, &items);
    for at in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[at] ^= bit;
            assert!(
                verify_reader(&b[..]).is_err(),
                "flipping bit {bit:#x} of byte {at} of {} went unnoticed",
                bytes.len()
            );
        }
    }
}

#[test]
fn every_truncation_and_any_extension_is_detected() {
    let (state, items) = fixture(2, &[0, 3, 17, 40]);
    let bytes = write(&state, &items);
    for len in 0..bytes.len() {
        let e = verify_reader(&bytes[..len]).expect_err("a truncated backup passed");
        assert_eq!(e.code(), "backup_corrupt", "at {len}: {e}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        verify_reader(&longer[..]).unwrap_err().code(),
        "backup_corrupt"
    );
}

#[test]
fn a_missing_a_duplicated_or_a_foreign_item_is_refused() {
    let (state, items) = fixture(2, &[5]);
    let mut missing = items.clone();
    missing.pop();
    let e = verify_reader(&write(&state, &missing)[..]).unwrap_err();
    assert!(e.to_string().contains("records 8 items"), "{e}");

    let mut twice = items.clone();
    twice.push(items[0].clone());
    let e = verify_reader(&write(&state, &twice)[..]).unwrap_err();
    assert!(e.to_string().contains("comes twice"), "{e}");

    let mut other = items.clone();
    other[0] = item("e0", other[0].modality, vec![1, 2, 3]);
    let e = verify_reader(&write(&state, &other)[..]).unwrap_err();
    assert!(e.to_string().contains("not the content"), "{e}");

    let mut foreign = items;
    foreign.push(item("zz", ModalityKind::Graph, vec![1]));
    let e = verify_reader(&write(&state, &foreign)[..]).unwrap_err();
    assert!(e.to_string().contains("does not hold"), "{e}");
}

#[test]
fn an_aborted_stream_says_why() {
    let (state, items) = fixture(1, &[5]);
    let body = state.to_cbor();
    let mut w = BackupWriter::new(Vec::new(), header(&state), &body).unwrap();
    w.registry(&body).unwrap();
    w.item(&items[0]).unwrap();
    let bytes = w.abort("the vector item of e0 changed").unwrap();
    let e = verify_reader(&bytes[..]).unwrap_err();
    assert_eq!(e.code(), "backup_aborted");
    assert!(e.to_string().contains("vector item of e0 changed"), "{e}");
}

#[test]
fn another_format_is_refused_by_number() {
    let (state, items) = fixture(1, &[5]);
    let mut bytes = write(&state, &items);
    bytes[11] = 2;
    assert!(matches!(
        verify_reader(&bytes[..]),
        Err(BackupError::UnknownFormat(2))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_backups_round_trip_and_any_damage_is_refused(
        n in 0usize..6,
        sizes in proptest::collection::vec(0usize..300, 1..8),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
        cut in any::<prop::sample::Index>(),
    ) {
        let (state, items) = fixture(n, &sizes);
        let bytes = write(&state, &items);
        let s = verify_reader(&bytes[..]).unwrap();
        prop_assert_eq!(s.items, items.len() as u64);
        let mut flipped = bytes.clone();
        flipped[at.index(bytes.len())] ^= 1 << bit;
        prop_assert!(verify_reader(&flipped[..]).is_err());
        let len = cut.index(bytes.len());
        prop_assert!(verify_reader(&bytes[..len]).is_err());
    }
}
