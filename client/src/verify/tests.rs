//! The verification core attacked: each test is something an attacker (or a confused client) sends,
//! and the refusal it must get, with its stable error code.

use std::collections::HashMap;

use super::*;
use crate::auth::{WindowSecret, derive_window_key_client, sign_request};
use crate::wire::{ErrorCode, headers as names};

const COOKIE: &[u8] = b"test cookie";
const NOW: u64 = 1_700_000_000_000;
const SKEW: u64 = 300_000;
const EXPIRES: u64 = NOW + 3_600_000;

/// An in-memory trust state: what an edge verifier would keep replicated.
#[derive(Default)]
struct State {
    windows: HashMap<WindowId, TrustWindow>,
    clients: HashMap<ClientId, TrustClient>,
    applied: HashMap<(ClientId, RequestId), (Fingerprint, &'static str)>,
}

impl TrustView for State {
    type Applied = &'static str;

    fn window(&self, window: &WindowId) -> Option<TrustWindow> {
        self.windows.get(window).cloned()
    }

    fn client(&self, client: &ClientId) -> Option<TrustClient> {
        self.clients.get(client).copied()
    }

    fn applied(
        &self,
        client: &ClientId,
        request: &RequestId,
    ) -> Option<(Fingerprint, &'static str)> {
        self.applied
            .get(&(client.clone(), request.clone()))
            .copied()
    }
}

fn client(s: &str) -> ClientId {
    ClientId::new(s).unwrap()
}

fn window(s: &str) -> WindowId {
    WindowId::new(s).unwrap()
}

struct Fixture {
    verifier: Verifier,
    state: State,
    /// Alice's key for `w1`.
    alice: WindowKey,
    /// Bob's key for `w2`.
    bob: WindowKey,
}

/// Clients `alice` (window `w1`) and `bob` (window `w2`), both open until [`EXPIRES`].
fn fixture() -> Fixture {
    let verifier = Verifier::from_key_material(COOKIE, SKEW).unwrap();
    let mut state = State::default();
    let mut open = |name: &str, w: &str, seed: u8| {
        let secret = WindowSecret::from_seed(&[seed; 32]);
        state
            .clients
            .insert(client(name), TrustClient { revoked: false });
        state.windows.insert(
            window(w),
            TrustWindow {
                client: client(name),
                client_dh: secret.public(),
                expires_at_ms: EXPIRES,
            },
        );
        derive_window_key_client(&secret, &verifier.cluster_public(), &window(w)).unwrap()
    };
    let alice = open("alice", "w1", 2);
    let bob = open("bob", "w2", 3);
    Fixture {
        verifier,
        state,
        alice,
        bob,
    }
}

const JSON: CoveredHeaders<'static> = CoveredHeaders {
    content_type: Some("application/json"),
    if_match: None,
};

/// What a client sends: the five authentication headers and the covered ones.
#[allow(clippy::too_many_arguments)]
fn signed_with(
    key: &WindowKey,
    who: &str,
    w: &str,
    ts: u64,
    request: &str,
    covered: &CoveredHeaders<'_>,
    body: &[u8],
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = sign_request(
        key,
        &client(who),
        &window(w),
        "POST",
        "/v1/entities",
        covered,
        ts,
        &RequestId::new(request).unwrap(),
        body,
    )
    .unwrap()
    .to_pairs()
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    out.extend(
        covered
            .to_pairs()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    out
}

fn signed(
    key: &WindowKey,
    who: &str,
    w: &str,
    ts: u64,
    request: &str,
    body: &[u8],
) -> Vec<(String, String)> {
    signed_with(key, who, w, ts, request, &JSON, body)
}

fn verify(
    f: &Fixture,
    h: &[(String, String)],
    body: &[u8],
    now: u64,
) -> Result<VerifiedRequest<&'static str>, AuthError> {
    f.verifier
        .verify(&f.state, h, "POST", "/v1/entities", body, now)
}

/// `h` with header `name` set to `value` (every copy replaced), or removed for `None`.
fn with(h: &[(String, String)], name: &str, value: Option<&str>) -> Vec<(String, String)> {
    let mut out: Vec<_> = h.iter().filter(|(n, _)| n != name).cloned().collect();
    if let Some(v) = value {
        out.push((name.to_string(), v.to_string()));
    }
    out
}

#[test]
fn a_request_signed_in_an_open_window_passes() {
    let f = fixture();
    let h = signed(&f.alice, "alice", "w1", NOW, "r1", b"{}");
    let v = verify(&f, &h, b"{}", NOW + 1_000).unwrap();
    assert_eq!(v.client.as_str(), "alice");
    assert_eq!(v.window.as_str(), "w1");
    assert_eq!(v.request_id.as_str(), "r1");
    assert_eq!(v.timestamp_ms, NOW);
    assert_eq!(
        v.fingerprint,
        fingerprint("POST", "/v1/entities", &JSON, b"{}")
    );
    assert_eq!(v.retry_of, None);
}

#[test]
fn a_tampered_body_method_or_path_is_a_bad_signature() {
    let f = fixture();
    let h = signed(&f.alice, "alice", "w1", NOW, "r1", b"{\"a\":1}");
    let e = verify(&f, &h, b"{\"a\":2}", NOW).unwrap_err();
    assert_eq!(e, AuthError::BadSignature);
    assert_eq!(e.code(), ErrorCode::BadSignature);
    for (method, path) in [("PUT", "/v1/entities"), ("POST", "/v1/entities?x=1")] {
        let e = f
            .verifier
            .verify(&f.state, &h[..], method, path, b"{\"a\":1}", NOW)
            .unwrap_err();
        assert_eq!(e, AuthError::BadSignature, "{method} {path}");
    }
    // A path that could not have been signed at all: the same answer.
    let e = f
        .verifier
        .verify(&f.state, &h[..], "POST", "/v1/ent ities", b"{\"a\":1}", NOW)
        .unwrap_err();
    assert_eq!(e, AuthError::BadSignature);
}

#[test]
fn a_rewritten_added_or_dropped_covered_header_is_a_bad_signature() {
    let f = fixture();
    let seven = CoveredHeaders {
        content_type: Some("application/json"),
        if_match: Some("7"),
    };
    let ok = signed_with(&f.alice, "alice", "w1", NOW, "r1", &seven, b"{}");
    verify(&f, &ok, b"{}", NOW).unwrap();
    for (name, value) in [
        (names::IF_MATCH, Some("1")),
        (names::IF_MATCH, Some("\"7\"")),
        (names::IF_MATCH, None),
        (names::CONTENT_TYPE, Some("text/plain")),
        (names::CONTENT_TYPE, None),
    ] {
        let e = verify(&f, &with(&ok, name, value), b"{}", NOW).unwrap_err();
        assert_eq!(e, AuthError::BadSignature, "{name}: {value:?}");
    }
    // Added to a request signed without it.
    let plain = signed(&f.alice, "alice", "w1", NOW, "r1", b"{}");
    let e = verify(&f, &with(&plain, names::IF_MATCH, Some("1")), b"{}", NOW).unwrap_err();
    assert_eq!(e, AuthError::BadSignature);
    // Sent twice, the signed copy first: which one would the server act on? Refused.
    let mut twice = ok.clone();
    twice.push((names::IF_MATCH.to_string(), "1".to_string()));
    let e = verify(&f, &twice, b"{}", NOW).unwrap_err();
    assert!(
        matches!(e, AuthError::MalformedHeader { header, .. } if header == names::IF_MATCH),
        "{e}"
    );
    assert_eq!(e.code(), ErrorCode::MalformedAuth);
}

#[test]
fn a_timestamp_outside_the_skew_is_refused_either_way_before_any_lookup() {
    let f = fixture();
    let h = signed(&f.alice, "alice", "w1", NOW, "r1", b"{}");
    // The edge of the skew passes.
    verify(&f, &h, b"{}", NOW + SKEW).unwrap();
    verify(&f, &h, b"{}", NOW - SKEW).unwrap();
    for now in [NOW + SKEW + 1, NOW - SKEW - 1] {
        let e = verify(&f, &h, b"{}", now).unwrap_err();
        assert!(matches!(e, AuthError::TimestampSkew { .. }), "{e}");
        assert_eq!(e.code(), ErrorCode::TimestampSkew);
    }
    // An unknown window with a stale timestamp: the skew, not the unknown id.
    let h = signed(&f.alice, "alice", "w9", NOW, "r1", b"{}");
    let e = verify(&f, &h, b"{}", NOW + SKEW + 1).unwrap_err();
    assert!(matches!(e, AuthError::TimestampSkew { .. }), "{e}");
}

#[test]
fn another_clients_window_is_an_unknown_window_answered_as_a_bad_signature() {
    let f = fixture();
    // Bob names Alice's window (with his key or hers): not his window.
    for key in [&f.bob, &f.alice] {
        let h = signed(key, "bob", "w1", NOW, "r1", b"{}");
        let e = verify(&f, &h, b"{}", NOW).unwrap_err();
        assert_eq!(e, AuthError::UnknownWindow);
        assert_eq!(e.code(), ErrorCode::BadSignature);
    }
    // Bob claims to be Alice, in her window, with his own key: the MAC fails.
    let h = signed(&f.bob, "alice", "w1", NOW, "r1", b"{}");
    assert_eq!(
        verify(&f, &h, b"{}", NOW).unwrap_err(),
        AuthError::BadSignature
    );
    // A window nobody opened.
    let h = signed(&f.alice, "alice", "w9", NOW, "r1", b"{}");
    assert_eq!(
        verify(&f, &h, b"{}", NOW).unwrap_err().code(),
        ErrorCode::BadSignature
    );
}

#[test]
fn a_revoked_or_unknown_client_is_told_only_to_the_key_holder() {
    let mut f = fixture();
    f.state
        .clients
        .insert(client("alice"), TrustClient { revoked: true });
    let h = signed(&f.alice, "alice", "w1", NOW, "r1", b"{}");
    let e = verify(&f, &h, b"{}", NOW).unwrap_err();
    assert_eq!(e, AuthError::ClientRevoked);
    assert_eq!(e.code(), ErrorCode::ClientRevoked);
    // Without the key: nothing learnt.
    let h = signed(
        &WindowKey::from_bytes([7; 32]),
        "alice",
        "w1",
        NOW,
        "r1",
        b"{}",
    );
    assert_eq!(
        verify(&f, &h, b"{}", NOW).unwrap_err(),
        AuthError::BadSignature
    );
    // A window whose client the state does not know (a replica caught mid-update).
    f.state.clients.remove(&client("alice"));
    let h = signed(&f.alice, "alice", "w1", NOW, "r1", b"{}");
    let e = verify(&f, &h, b"{}", NOW).unwrap_err();
    assert_eq!(e, AuthError::UnknownClient);
    assert_eq!(e.code(), ErrorCode::BadSignature);
}

#[test]
fn an_expired_window_is_refused_and_told_only_to_the_key_holder() {
    let f = fixture();
    // Signed just before expiry, checked at it.
    let h = signed(&f.alice, "alice", "w1", EXPIRES, "r1", b"{}");
    let e = verify(&f, &h, b"{}", EXPIRES).unwrap_err();
    assert!(matches!(e, AuthError::ExpiredWindow { .. }), "{e}");
    assert_eq!(e.code(), ErrorCode::ExpiredWindow);
    verify(&f, &h, b"{}", EXPIRES - 1).unwrap();
    let h = signed(
        &WindowKey::from_bytes([7; 32]),
        "alice",
        "w1",
        EXPIRES,
        "r1",
        b"{}",
    );
    assert_eq!(
        verify(&f, &h, b"{}", EXPIRES).unwrap_err(),
        AuthError::BadSignature
    );
}

#[test]
fn a_used_request_id_is_a_retry_with_the_same_request_and_a_replay_otherwise() {
    let mut f = fixture();
    let body = b"{\"a\":1}";
    let first = verify(
        &f,
        &signed(&f.alice, "alice", "w1", NOW, "r1", body),
        body,
        NOW,
    )
    .unwrap();
    f.state.applied.insert(
        (client("alice"), RequestId::new("r1").unwrap()),
        (first.fingerprint, "created"),
    );
    // The same request re-signed later: a retry, given the remembered record.
    let again = signed(&f.alice, "alice", "w1", NOW + 5_000, "r1", body);
    let retry = verify(&f, &again, body, NOW + 5_000).unwrap();
    assert_eq!(retry.retry_of, Some("created"));
    assert_eq!(retry.fingerprint, first.fingerprint);
    // Another body, or another If-Match, under the same id: a replay.
    let other = signed(&f.alice, "alice", "w1", NOW, "r1", b"{\"a\":2}");
    let e = verify(&f, &other, b"{\"a\":2}", NOW).unwrap_err();
    assert_eq!(e, AuthError::ReplayedRequest);
    assert_eq!(e.code(), ErrorCode::ReplayedRequest);
    let conditional = CoveredHeaders {
        content_type: Some("application/json"),
        if_match: Some("3"),
    };
    let other = signed_with(&f.alice, "alice", "w1", NOW, "r1", &conditional, body);
    assert_eq!(
        verify(&f, &other, body, NOW).unwrap_err(),
        AuthError::ReplayedRequest
    );
    // Request ids are per client: Bob's r1 is new.
    let bobs = signed(&f.bob, "bob", "w2", NOW, "r1", b"{\"a\":2}");
    assert_eq!(verify(&f, &bobs, b"{\"a\":2}", NOW).unwrap().retry_of, None);
}

#[test]
fn missing_malformed_and_v1_headers_have_their_codes() {
    let f = fixture();
    let ok = signed(&f.alice, "alice", "w1", NOW, "r1", b"{}");
    let e = verify(&f, &with(&ok, names::SIGNATURE, None), b"{}", NOW).unwrap_err();
    assert_eq!(e, AuthError::MissingHeader(names::SIGNATURE));
    assert_eq!(e.code(), ErrorCode::MissingAuth);
    let e = verify(&f, &with(&ok, names::TIMESTAMP, Some("+5")), b"{}", NOW).unwrap_err();
    assert_eq!(e.code(), ErrorCode::MalformedAuth);
    let e = verify(&f, &with(&ok, names::REQUEST_ID, Some("r 1")), b"{}", NOW).unwrap_err();
    assert_eq!(e.code(), ErrorCode::MalformedAuth);
    let v2 = ok
        .iter()
        .find(|(n, _)| n == names::SIGNATURE)
        .map(|(_, v)| v.clone())
        .unwrap();
    let v1 = with(&ok, names::SIGNATURE, Some(v2.trim_start_matches("v2=")));
    let e = verify(&f, &v1, b"{}", NOW).unwrap_err();
    assert!(matches!(e, AuthError::UnsupportedScheme(_)), "{e}");
    assert_eq!(e.code(), ErrorCode::UnsupportedScheme);
    // Header names arrive in any case.
    let upper: Vec<_> = ok
        .iter()
        .map(|(n, v)| (n.to_ascii_uppercase(), v.clone()))
        .collect();
    verify(&f, &upper, b"{}", NOW).unwrap();
}

#[test]
fn the_key_cache_is_bounded_and_never_changes_an_answer() {
    let f = fixture();
    let verifier = Verifier::from_key_material(COOKIE, SKEW)
        .unwrap()
        .with_cache_capacity(1);
    let a = signed(&f.alice, "alice", "w1", NOW, "r1", b"{}");
    let b = signed(&f.bob, "bob", "w2", NOW, "r1", b"{}");
    for _ in 0..3 {
        for h in [&a, &b] {
            verifier
                .verify(&f.state, &h[..], "POST", "/v1/entities", b"{}", NOW)
                .unwrap();
            assert!(verifier.cached_keys() <= 1);
        }
    }
    // A cached key is bound to the window's public key: a window re-opened under the same id with
    // another key does not verify with the old one.
    let mut state = State::default();
    state
        .clients
        .insert(client("alice"), TrustClient { revoked: false });
    state.windows.insert(
        window("w1"),
        TrustWindow {
            client: client("alice"),
            client_dh: WindowSecret::from_seed(&[9; 32]).public(),
            expires_at_ms: EXPIRES,
        },
    );
    let e = verifier
        .verify(&state, &a[..], "POST", "/v1/entities", b"{}", NOW)
        .unwrap_err();
    assert_eq!(e, AuthError::BadSignature);
    // No cache at all: the same answers.
    let uncached = Verifier::from_key_material(COOKIE, SKEW)
        .unwrap()
        .with_cache_capacity(0);
    uncached
        .verify(&f.state, &a[..], "POST", "/v1/entities", b"{}", NOW)
        .unwrap();
    assert_eq!(uncached.cached_keys(), 0);
}

#[test]
fn a_verifier_from_the_exported_secret_is_the_nodes() {
    let node = Verifier::from_key_material(COOKIE, SKEW).unwrap();
    let secret = crate::auth::cluster_dh_secret(COOKIE).unwrap();
    let edge = Verifier::new(
        ClusterSecret::from_hex(&hex::encode(*secret.to_bytes())).unwrap(),
        SKEW,
    );
    assert_eq!(edge.cluster_public(), node.cluster_public());
    let f = fixture();
    let h = signed(&f.alice, "alice", "w1", NOW, "r1", b"{}");
    edge.verify(&f.state, &h[..], "POST", "/v1/entities", b"{}", NOW)
        .unwrap();
}

#[test]
fn the_fingerprint_is_pinned_and_covers_the_covered_headers() {
    // Fingerprints are committed in the log: this value must never change (context, encoding).
    assert_eq!(
        fingerprint("POST", "/v1/entities", &JSON, b"{}").to_hex(),
        PINNED_FINGERPRINT
    );
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
    assert_eq!(Fingerprint::from_hex(&fp(&a).to_hex()), Ok(fp(&a)));
}

const PINNED_FINGERPRINT: &str = "d8dc8bbb9f6d97c0554b8444f1eab7f7fe6e515cd714823fdf5813b11afa19ee";
