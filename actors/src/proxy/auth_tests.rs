use std::collections::HashMap;

use verisim_client::auth::{IdentityKey, WindowSecret, derive_window_key_client, sign_request};
use verisim_client::wire::{ClientId as WClient, RequestId as WRequest, WindowId as WWindow};

use super::*;
use crate::registry::{Command, Outcome, Proposal, PublicKey};

const COOKIE: &[u8] = b"test cookie";
const NOW: u64 = 1_700_000_000_000;

struct Fixture {
    registry: RegistryState,
    auth: Authenticator,
    key: WindowKey,
}

/// A registry with client `alice` and her window `w1`, open until NOW + 1 h, and the key she derived.
fn fixture() -> Fixture {
    let auth = Authenticator::new(COOKIE, 300_000).unwrap();
    let identity = IdentityKey::from_seed(&[1; 32]);
    let secret = WindowSecret::from_seed(&[2; 32]);
    let mut registry = RegistryState::default();
    let setup = [
        Command::RegisterClient {
            client: ClientId::new("alice").unwrap(),
            public_key: PublicKey(identity.public().to_bytes()),
        },
        Command::OpenWindow {
            client: ClientId::new("alice").unwrap(),
            window: WindowId::new("w1").unwrap(),
            expires_at_ms: NOW + 3_600_000,
            client_dh: PublicKey(secret.public().0),
        },
    ];
    for (i, command) in setup.into_iter().enumerate() {
        let outcome = registry.apply(
            i as u64 + 1,
            &Proposal {
                at_ms: NOW,
                command,
            },
        );
        assert!(!matches!(outcome, Outcome::Refused(_)), "{outcome:?}");
    }
    let key = derive_window_key_client(
        &secret,
        &auth.cluster_public(),
        &WWindow::new("w1").unwrap(),
    )
    .unwrap();
    Fixture {
        registry,
        auth,
        key,
    }
}

fn signed(
    key: &WindowKey,
    client: &str,
    window: &str,
    ts: u64,
    request: &str,
    body: &[u8],
) -> HashMap<&'static str, Vec<u8>> {
    sign_request(
        key,
        &WClient::new(client).unwrap(),
        &WWindow::new(window).unwrap(),
        "POST",
        "/v1/entities",
        ts,
        &WRequest::new(request).unwrap(),
        body,
    )
    .unwrap()
    .to_pairs()
    .into_iter()
    .map(|(k, v)| (k, v.into_bytes()))
    .collect()
}

fn verify(
    f: &Fixture,
    headers: &HashMap<&'static str, Vec<u8>>,
    body: &[u8],
    now: u64,
) -> Result<Verified, AuthError> {
    f.auth.verify(
        &f.registry,
        |name| headers.get(name).map(Vec::as_slice),
        "POST",
        "/v1/entities",
        body,
        now,
    )
}

#[test]
fn a_request_signed_in_an_open_window_passes() {
    let f = fixture();
    let h = signed(&f.key, "alice", "w1", NOW, "r1", b"{}");
    let v = verify(&f, &h, b"{}", NOW + 1_000).unwrap();
    assert_eq!(v.origin.client.as_str(), "alice");
    assert_eq!(v.origin.request.as_str(), "r1");
    assert_eq!(
        v.origin.fingerprint,
        fingerprint("POST", "/v1/entities", b"{}")
    );
    assert!(v.retry_of.is_none());
}

#[test]
fn every_refusal_has_its_code() {
    let f = fixture();
    let ok = signed(&f.key, "alice", "w1", NOW, "r1", b"{}");

    // A tampered body, or a key the cluster did not agree.
    assert_eq!(
        verify(&f, &ok, b"{ }", NOW).unwrap_err(),
        AuthError::BadSignature
    );
    let stranger = WindowKey::from_bytes([7; 32]);
    let h = signed(&stranger, "alice", "w1", NOW, "r1", b"{}");
    assert_eq!(
        verify(&f, &h, b"{}", NOW).unwrap_err(),
        AuthError::BadSignature
    );

    // Outside the skew, either way.
    for now in [NOW + 300_001, NOW - 300_001] {
        assert!(matches!(
            verify(&f, &ok, b"{}", now).unwrap_err(),
            AuthError::TimestampSkew { .. }
        ));
    }

    // Unknown client, unknown window, another client's window.
    let h = signed(&f.key, "bob", "w1", NOW, "r1", b"{}");
    assert_eq!(
        verify(&f, &h, b"{}", NOW).unwrap_err(),
        AuthError::UnknownClient
    );
    let h = signed(&f.key, "alice", "w9", NOW, "r1", b"{}");
    assert_eq!(
        verify(&f, &h, b"{}", NOW).unwrap_err(),
        AuthError::UnknownWindow
    );

    // Expired: signed just before expiry but checked after it.
    let late = NOW + 3_600_000;
    let h = signed(&f.key, "alice", "w1", late, "r1", b"{}");
    assert!(matches!(
        verify(&f, &h, b"{}", late).unwrap_err(),
        AuthError::ExpiredWindow { .. }
    ));

    // Missing and malformed headers.
    let mut h = ok.clone();
    h.remove(verisim_client::wire::headers::SIGNATURE);
    assert!(matches!(
        verify(&f, &h, b"{}", NOW).unwrap_err(),
        AuthError::MissingHeader(_)
    ));
    let mut h = ok.clone();
    h.insert(verisim_client::wire::headers::TIMESTAMP, b"+5".to_vec());
    assert!(matches!(
        verify(&f, &h, b"{}", NOW).unwrap_err(),
        AuthError::MalformedHeader { .. }
    ));
}

#[test]
fn a_used_request_id_is_a_retry_with_the_same_request_and_a_replay_otherwise() {
    let mut f = fixture();
    let body = b"{\"a\":1}";
    let h = signed(&f.key, "alice", "w1", NOW, "r1", body);
    let v = verify(&f, &h, body, NOW).unwrap();
    // Commit something under r1 (any client command records its request id).
    let outcome = f.registry.apply(
        3,
        &Proposal {
            at_ms: NOW,
            command: Command::DeleteEntity {
                origin: v.origin.clone(),
                id: crate::registry::EntityId::new("e1").unwrap(),
                expected_version: None,
            },
        },
    );
    assert!(matches!(outcome, Outcome::Refused(_)), "no such entity");
    // A retry re-signed later: same fingerprint, so it is told the first outcome.
    let again = signed(&f.key, "alice", "w1", NOW + 5_000, "r1", body);
    let retry = verify(&f, &again, body, NOW + 5_000).unwrap();
    assert_eq!(retry.retry_of.map(|a| a.outcome), Some(outcome));
    // Another body under the same id is a replay.
    let other = signed(&f.key, "alice", "w1", NOW, "r1", b"{\"a\":2}");
    assert_eq!(
        verify(&f, &other, b"{\"a\":2}", NOW).unwrap_err(),
        AuthError::ReplayedRequest
    );
}

#[test]
fn a_revoked_client_is_refused() {
    let mut f = fixture();
    f.registry.apply(
        3,
        &Proposal {
            at_ms: NOW,
            command: Command::RevokeClient {
                client: ClientId::new("alice").unwrap(),
            },
        },
    );
    let h = signed(&f.key, "alice", "w1", NOW, "r1", b"{}");
    assert_eq!(
        verify(&f, &h, b"{}", NOW).unwrap_err(),
        AuthError::ClientRevoked
    );
}
