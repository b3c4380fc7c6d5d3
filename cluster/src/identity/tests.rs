//! Node identities, tried as an attacker would: files damaged or forged, credentials from another
//! authority, a member claiming another member's id, captured credentials without their secrets.

use super::*;

fn ring(authority: &Authority, node: u64) -> Keyring {
    Keyring::with_identity(authority.issue(node)).expect("keyring")
}

/// Writes a secret file as the CLI does: mode 0600.
fn write_private(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn seal_of(k: &Keyring, to: u64, body: &[u8]) -> Seal {
    k.seal("raft", to, body)
        .expect("a keyring with an identity seals")
}

#[test]
fn identity_and_authority_files_read_back_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::generate();
    let ca_path = dir.path().join("authority.key");
    write_private(&ca_path, &ca.to_file_text());
    assert_eq!(
        Authority::read(&ca_path).unwrap().public_key(),
        ca.public_key()
    );

    let id = ca.issue(7);
    let path = dir.path().join("n7.identity");
    write_private(&path, &id.to_file_text());
    let back = NodeIdentity::read(&path).unwrap();
    assert_eq!(back.credential(), id.credential());
    assert_eq!(back.authority(), ca.public_key());
    assert_eq!(back.node(), 7);
}

#[test]
fn a_damaged_or_edited_identity_file_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Authority::generate();
    let text = ca.issue(2).to_file_text();
    let path = dir.path().join("n2.identity");

    // One character changed: the checksum no longer matches.
    let edited = text.replacen("node = 2", "node = 1", 1);
    write_private(&path, &edited);
    let e = NodeIdentity::read(&path).unwrap_err().to_string();
    assert!(e.contains("checksum mismatch"), "{e}");

    // The node id changed and the checksum recomputed (an attacker editing a stolen file to claim
    // another id): the authority's signature no longer covers it.
    let body = &edited[..edited.rfind("checksum = ").unwrap()];
    write_private(&path, &with_checksum(body));
    assert!(matches!(
        NodeIdentity::read(&path),
        Err(IdentityError::NotIssued { node: 1 })
    ));

    // An authority file where an identity file belongs.
    write_private(&path, &ca.to_file_text());
    let e = NodeIdentity::read(&path).unwrap_err().to_string();
    assert!(e.contains("not a `verisim-node-identity v1` file"), "{e}");

    // Readable by others: refused before it is read.
    write_private(&path, &text);
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let e = NodeIdentity::read(&path).unwrap_err().to_string();
    assert!(e.contains("mode 644"), "{e}");

    // Missing file: the path and the OS error.
    let e = NodeIdentity::read(&dir.path().join("absent"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("absent"), "{e}");
}

#[test]
fn a_member_cannot_speak_as_another_member() {
    let ca = Authority::generate();
    let (n1, n2, n3) = (ring(&ca, 1), ring(&ca, 2), ring(&ca, 3));
    let body = b"append entries";
    // n3 seals honestly, but claims to be n1.
    let s = seal_of(&n3, 2, body);
    assert_eq!(
        n2.check("raft", 1, 2, body, Some(&s)),
        Err(SealError::WrongNode {
            from: 1,
            credential: 3
        })
    );
    // n3 presents n1's credential (copied from a message n1 sent) with its own proof.
    let captured = seal_of(&n1, 2, b"anything").credential;
    let forged = Seal {
        credential: captured,
        proof: seal_of(&n3, 2, body).proof,
    };
    assert_eq!(
        n2.check("raft", 1, 2, body, Some(&forged)),
        Err(SealError::BadProof { from: 1 })
    );
    // The honest message passes.
    assert_eq!(
        n2.check("raft", 1, 2, body, Some(&seal_of(&n1, 2, body))),
        Ok(())
    );
}

#[test]
fn once_a_peer_is_known_a_mac_proves_it_and_a_forged_mac_does_not() {
    let ca = Authority::generate();
    let (n1, n2, n3) = (ring(&ca, 1), ring(&ca, 2), ring(&ca, 3));
    // n2 hears from n1 and from n3 first (signed), so it knows both.
    n2.check("raft", 1, 2, b"a", Some(&seal_of(&n1, 2, b"a")))
        .unwrap();
    n2.check("raft", 3, 2, b"b", Some(&seal_of(&n3, 2, b"b")))
        .unwrap();
    // n1 hears from n2: it MACs from then on.
    n1.check("raft", 2, 1, b"c", Some(&seal_of(&n2, 1, b"c")))
        .unwrap();
    let mac = seal_of(&n1, 2, b"d");
    assert!(matches!(mac.proof, Proof::Mac(_)));
    assert_eq!(n2.check("raft", 1, 2, b"d", Some(&mac)), Ok(()));
    // n3 knows n2 (it MACs to n2 under *their* pair key), and wraps that MAC in n1's credential.
    n3.check("raft", 2, 3, b"e", Some(&seal_of(&n2, 3, b"e")))
        .unwrap();
    let theirs = seal_of(&n3, 2, b"f");
    assert!(matches!(theirs.proof, Proof::Mac(_)));
    let forged = Seal {
        credential: mac.credential,
        proof: theirs.proof,
    };
    assert_eq!(
        n2.check("raft", 1, 2, b"f", Some(&forged)),
        Err(SealError::BadProof { from: 1 })
    );
}

#[test]
fn a_credential_from_another_authority_is_refused() {
    let ours = Authority::generate();
    let theirs = Authority::generate();
    let n2 = ring(&ours, 2);
    let rogue = ring(&theirs, 1);
    let body = b"vote for me";
    assert_eq!(
        n2.check("raft", 1, 2, body, Some(&seal_of(&rogue, 2, body))),
        Err(SealError::NotIssued { from: 1 })
    );
}

#[test]
fn a_message_is_bound_to_its_receiver_and_its_direction() {
    let ca = Authority::generate();
    let (n1, n2, n3) = (ring(&ca, 1), ring(&ca, 2), ring(&ca, 3));
    let body = b"heartbeat";
    let s = seal_of(&n1, 2, body);
    // Replayed to another node.
    assert_eq!(
        n3.check("raft", 1, 2, body, Some(&s)),
        Err(SealError::Misaddressed { to: 2, me: 3 })
    );
    assert_eq!(
        n3.check("raft", 1, 3, body, Some(&s)),
        Err(SealError::BadProof { from: 1 })
    );
    // Reflected back to its sender as if the receiver had sent it.
    n1.check("raft", 2, 1, b"x", Some(&seal_of(&n2, 1, b"x")))
        .unwrap();
    let mac = seal_of(&n1, 2, body);
    assert_eq!(
        n1.check(
            "raft",
            2,
            1,
            body,
            Some(&Seal {
                credential: *n2_credential(&n2),
                proof: mac.proof
            })
        ),
        Err(SealError::BadProof { from: 2 })
    );
}

fn n2_credential(k: &Keyring) -> &NodeCredential {
    k.me.as_ref()
        .map(|m| m.identity.credential())
        .expect("identity")
}

#[test]
fn a_reissued_credential_replaces_the_old_one() {
    let ca = Authority::generate();
    let n2 = ring(&ca, 2);
    let old = ring(&ca, 1);
    let new = ring(&ca, 1);
    n2.check("raft", 1, 2, b"a", Some(&seal_of(&old, 2, b"a")))
        .unwrap();
    n2.check("raft", 1, 2, b"b", Some(&seal_of(&new, 2, b"b")))
        .unwrap();
    let cached = n2
        .me
        .as_ref()
        .unwrap()
        .peers
        .lock()
        .unwrap()
        .get(&1)
        .map(|(c, _)| *c);
    assert_eq!(cached.as_ref(), Some(n2_credential(&new)));
}

#[test]
fn an_open_keyring_seals_nothing_and_accepts_anything() {
    let open = Keyring::open(5);
    assert!(!open.is_sealing());
    assert!(open.seal("raft", 1, b"x").is_none());
    assert_eq!(open.check("raft", 9, 5, b"x", None), Ok(()));
}

#[test]
fn credentials_round_trip_their_wire_form() {
    let ca = Authority::generate();
    let c = *ca.issue(42).credential();
    let mut wire = Vec::new();
    c.to_wire(&mut wire);
    assert_eq!(wire.len(), NodeCredential::WIRE_LEN);
    assert_eq!(NodeCredential::from_wire(&wire), Some(c));
    assert_eq!(NodeCredential::from_wire(&wire[1..]), None);
}
