use axum::http::{HeaderMap, HeaderValue};
use verisim_client::auth::{
    IdentityKey, WindowKey, WindowSecret, derive_window_key_client, sign_request,
};
use verisim_client::wire::{ClientId as WClient, RequestId as WRequest, WindowId as WWindow};
use verisim_client::wire::{ErrorCode, headers as names};

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
) -> HeaderMap {
    signed_with(key, client, window, ts, request, &JSON, body)
}

const JSON: CoveredHeaders<'static> = CoveredHeaders {
    content_type: Some("application/json"),
    if_match: None,
};

/// The headers of a request signed with `covered`, sent as signed.
fn signed_with(
    key: &WindowKey,
    client: &str,
    window: &str,
    ts: u64,
    request: &str,
    covered: &CoveredHeaders<'_>,
    body: &[u8],
) -> HeaderMap {
    let mut map = HeaderMap::new();
    let auth = sign_request(
        key,
        &WClient::new(client).unwrap(),
        &WWindow::new(window).unwrap(),
        "POST",
        "/v1/entities",
        covered,
        ts,
        &WRequest::new(request).unwrap(),
        body,
    )
    .unwrap()
    .to_pairs();
    for (k, v) in auth {
        map.insert(k, HeaderValue::from_str(&v).unwrap());
    }
    for (k, v) in covered.to_pairs() {
        map.insert(k, HeaderValue::from_str(v).unwrap());
    }
    map
}

fn verify(f: &Fixture, headers: &HeaderMap, body: &[u8], now: u64) -> Result<Verified, AuthError> {
    f.auth
        .verify(&f.registry, headers, "POST", "/v1/entities", body, now)
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
        fingerprint("POST", "/v1/entities", &JSON, b"{}")
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

    // Unknown client, unknown window, another client's window: answered like a bad MAC.
    for (client, window) in [("bob", "w1"), ("alice", "w9"), ("bob", "w9")] {
        let h = signed(&f.key, client, window, NOW, "r1", b"{}");
        let e = verify(&f, &h, b"{}", NOW).unwrap_err();
        assert_eq!(e, AuthError::UnknownWindow, "{client} {window}");
        assert_eq!(e.code(), ErrorCode::BadSignature);
    }

    // Expired: signed just before expiry but checked after it.
    let late = NOW + 3_600_000;
    let h = signed(&f.key, "alice", "w1", late, "r1", b"{}");
    assert!(matches!(
        verify(&f, &h, b"{}", late).unwrap_err(),
        AuthError::ExpiredWindow { .. }
    ));

    // Missing and malformed headers.
    let mut h = ok.clone();
    h.remove(names::SIGNATURE);
    assert!(matches!(
        verify(&f, &h, b"{}", NOW).unwrap_err(),
        AuthError::MissingHeader(_)
    ));
    let mut h = ok.clone();
    h.insert(names::TIMESTAMP, HeaderValue::from_static("+5"));
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
    // Revocation closed her windows: a request in one is refused like any unknown window, with
    // or without the key.
    for key in [f.key.clone(), WindowKey::from_bytes([7; 32])] {
        let h = signed(&key, "alice", "w1", NOW, "r1", b"{}");
        let e = verify(&f, &h, b"{}", NOW).unwrap_err();
        assert_eq!(e, AuthError::UnknownWindow);
        assert_eq!(e.code(), ErrorCode::BadSignature);
    }
}

#[test]
fn expiry_is_told_only_to_the_key_holder() {
    let f = fixture();
    let late = NOW + 3_600_000;
    let h = signed(
        &WindowKey::from_bytes([7; 32]),
        "alice",
        "w1",
        late,
        "r1",
        b"{}",
    );
    assert_eq!(
        verify(&f, &h, b"{}", late).unwrap_err(),
        AuthError::BadSignature
    );
}

#[test]
fn a_stale_timestamp_is_refused_before_any_lookup() {
    // An unknown window with a stale timestamp: `timestamp_skew`, not an unknown id (which would
    // make the proxy catch up with the quorum).
    let f = fixture();
    let h = signed(&f.key, "alice", "w9", NOW, "r1", b"{}");
    assert!(matches!(
        verify(&f, &h, b"{}", NOW + 300_001).unwrap_err(),
        AuthError::TimestampSkew { .. }
    ));
}

#[test]
fn a_rewritten_added_or_dropped_covered_header_is_a_bad_signature() {
    let f = fixture();
    let seven = CoveredHeaders {
        content_type: Some("application/json"),
        if_match: Some("7"),
    };
    let ok = signed_with(&f.key, "alice", "w1", NOW, "r1", &seven, b"{}");
    verify(&f, &ok, b"{}", NOW).unwrap();
    let tampered: [(&str, Option<&'static str>); 5] = [
        (names::IF_MATCH, Some("1")),
        (names::IF_MATCH, Some("\"7\"")),
        (names::IF_MATCH, None),
        (names::CONTENT_TYPE, Some("text/plain")),
        (names::CONTENT_TYPE, None),
    ];
    for (name, value) in tampered {
        let mut h = ok.clone();
        match value {
            Some(v) => {
                h.insert(name, HeaderValue::from_static(v));
            }
            None => {
                h.remove(name);
            }
        }
        assert_eq!(
            verify(&f, &h, b"{}", NOW).unwrap_err(),
            AuthError::BadSignature,
            "{name}: {value:?}"
        );
    }
    // Added to a request signed without it.
    let mut h = signed(&f.key, "alice", "w1", NOW, "r1", b"{}");
    h.insert(names::IF_MATCH, HeaderValue::from_static("1"));
    assert_eq!(
        verify(&f, &h, b"{}", NOW).unwrap_err(),
        AuthError::BadSignature
    );
    // Sent twice, the signed copy first: which one would the server act on? Refused.
    let mut h = ok.clone();
    h.append(names::IF_MATCH, HeaderValue::from_static("1"));
    let e = verify(&f, &h, b"{}", NOW).unwrap_err();
    assert!(
        matches!(e, AuthError::MalformedHeader { header, .. } if header == names::IF_MATCH),
        "{e}"
    );
}

#[test]
fn a_v1_signed_request_is_refused_as_unsupported() {
    let f = fixture();
    let mut h = signed(&f.key, "alice", "w1", NOW, "r1", b"{}");
    let v2 = h[names::SIGNATURE].to_str().unwrap().to_string();
    // What a v1 client sends: the bare hex HMAC.
    h.insert(
        names::SIGNATURE,
        HeaderValue::from_str(v2.trim_start_matches("v2=")).unwrap(),
    );
    let e = verify(&f, &h, b"{}", NOW).unwrap_err();
    assert!(matches!(e, AuthError::UnsupportedScheme(_)), "{e}");
    assert_eq!(e.code(), ErrorCode::UnsupportedScheme);
}

#[test]
fn the_fingerprint_covers_the_covered_headers() {
    let a = CoveredHeaders {
        content_type: None,
        if_match: Some("3"),
    };
    let b = CoveredHeaders {
        content_type: None,
        if_match: Some("5"),
    };
    let empty = CoveredHeaders {
        content_type: None,
        if_match: Some(""),
    };
    let fp = |c: &CoveredHeaders<'_>| fingerprint("DELETE", "/v1/entities/e", c, b"");
    assert_ne!(fp(&a), fp(&b));
    assert_ne!(fp(&empty), fp(&CoveredHeaders::NONE));
    assert_eq!(fp(&a), fp(&a));
}
