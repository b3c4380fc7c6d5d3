use proptest::prelude::*;

use super::vectors::{COOKIE, identity_seed, window_seed};
use super::*;
use crate::wire::{ClientId, ErrorCode, RequestId, WindowId};

const NOW: u64 = 1_700_000_000_000;

struct Fixture {
    key: WindowKey,
    client: ClientId,
    window: WindowId,
    rid: RequestId,
}

fn fixture() -> Fixture {
    let cluster = cluster_dh_secret(COOKIE).unwrap();
    let window = WindowId::new("w-1").unwrap();
    let key = derive_window_key_client(
        &WindowSecret::from_seed(&window_seed()),
        &cluster.public(),
        &window,
    )
    .unwrap();
    Fixture {
        key,
        client: ClientId::new("alice").unwrap(),
        window,
        rid: RequestId::new("r-1").unwrap(),
    }
}

fn sign(f: &Fixture, method: &str, path: &str, ts: u64, body: &[u8]) -> SignedHeaders {
    sign_request(
        &f.key,
        &f.client,
        &f.window,
        method,
        path,
        &CoveredHeaders::NONE,
        ts,
        &f.rid,
        body,
    )
    .unwrap()
}

#[test]
fn both_sides_derive_the_same_window_key() {
    let cluster = cluster_dh_secret(COOKIE).unwrap();
    for i in 0..16u8 {
        let secret = WindowSecret::from_seed(&[i; 32]);
        let window = WindowId::new(format!("w{i}")).unwrap();
        let c = derive_window_key_client(&secret, &cluster.public(), &window).unwrap();
        let n = derive_window_key_cluster(&cluster, &secret.public(), &window).unwrap();
        assert_eq!(c, n, "seed {i}");
    }
}

#[test]
fn window_keys_differ_by_window_id_secret_and_cluster() {
    let cluster = cluster_dh_secret(COOKIE).unwrap();
    let other = cluster_dh_secret(b"another cookie").unwrap();
    let s = WindowSecret::from_seed(&window_seed());
    let w1 = WindowId::new("w1").unwrap();
    let w2 = WindowId::new("w2").unwrap();
    let base = derive_window_key_client(&s, &cluster.public(), &w1).unwrap();
    assert_ne!(
        base,
        derive_window_key_client(&s, &cluster.public(), &w2).unwrap()
    );
    assert_ne!(
        base,
        derive_window_key_client(&s, &other.public(), &w1).unwrap()
    );
    let s2 = WindowSecret::from_seed(&[9; 32]);
    assert_ne!(
        base,
        derive_window_key_client(&s2, &cluster.public(), &w1).unwrap()
    );
}

#[test]
fn low_order_points_and_empty_cookies_are_refused() {
    let cluster = cluster_dh_secret(COOKIE).unwrap();
    let w = WindowId::new("w").unwrap();
    // The all-zero u-coordinate is a low-order point: the shared secret would be all zeros.
    let zero = WindowPublicKey([0; 32]);
    assert_eq!(
        derive_window_key_cluster(&cluster, &zero, &w),
        Err(AuthError::LowOrderKey)
    );
    let s = WindowSecret::from_seed(&window_seed());
    assert_eq!(
        derive_window_key_client(&s, &ClusterPublicKey([0; 32]), &w),
        Err(AuthError::LowOrderKey)
    );
    assert!(matches!(
        cluster_dh_secret(b""),
        Err(AuthError::InvalidKey(_))
    ));
}

#[test]
fn sign_verify_round_trip() {
    let f = fixture();
    for (method, path, body) in [
        ("POST", "/v1/entities", &br#"{"id":"a"}"#[..]),
        ("GET", "/v1/entities/a?allow_drift=true", b""),
        ("DELETE", "/v1/entities/a", b""),
    ] {
        let h = sign(&f, method, path, NOW, body);
        verify_request(
            &f.key,
            &h,
            method,
            path,
            &CoveredHeaders::NONE,
            body,
            NOW,
            DEFAULT_SKEW_MS,
        )
        .unwrap();
        // Through the headers as they travel.
        let pairs = h.to_pairs();
        let parsed = SignedHeaders::parse(|name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_bytes())
        })
        .unwrap();
        assert_eq!(parsed, h);
    }
}

#[test]
fn skew_is_inclusive_and_symmetric() {
    let f = fixture();
    for ts in [NOW - DEFAULT_SKEW_MS, NOW + DEFAULT_SKEW_MS] {
        let h = sign(&f, "GET", "/x", ts, b"");
        verify_request(
            &f.key,
            &h,
            "GET",
            "/x",
            &CoveredHeaders::NONE,
            b"",
            NOW,
            DEFAULT_SKEW_MS,
        )
        .unwrap();
    }
    for ts in [NOW - DEFAULT_SKEW_MS - 1, NOW + DEFAULT_SKEW_MS + 1, 0] {
        let h = sign(&f, "GET", "/x", ts, b"");
        let e = verify_request(
            &f.key,
            &h,
            "GET",
            "/x",
            &CoveredHeaders::NONE,
            b"",
            NOW,
            DEFAULT_SKEW_MS,
        )
        .unwrap_err();
        assert!(matches!(e, AuthError::TimestampSkew { .. }), "{e}");
        assert_eq!(e.code(), ErrorCode::TimestampSkew);
    }
}

#[test]
fn a_wrong_key_or_another_window_is_a_bad_signature() {
    let f = fixture();
    let h = sign(&f, "GET", "/x", NOW, b"");
    let other = WindowKey::from_bytes([7; 32]);
    let e = verify_request(
        &other,
        &h,
        "GET",
        "/x",
        &CoveredHeaders::NONE,
        b"",
        NOW,
        DEFAULT_SKEW_MS,
    )
    .unwrap_err();
    assert_eq!(e, AuthError::BadSignature);
    assert_eq!(e.code(), ErrorCode::BadSignature);
    let mut moved = h.clone();
    moved.window = WindowId::new("w-2").unwrap();
    assert_eq!(
        verify_request(
            &f.key,
            &moved,
            "GET",
            "/x",
            &CoveredHeaders::NONE,
            b"",
            NOW,
            DEFAULT_SKEW_MS
        ),
        Err(AuthError::BadSignature)
    );
    let mut other_client = h;
    other_client.client = ClientId::new("mallory").unwrap();
    assert_eq!(
        verify_request(
            &f.key,
            &other_client,
            "GET",
            "/x",
            &CoveredHeaders::NONE,
            b"",
            NOW,
            DEFAULT_SKEW_MS
        ),
        Err(AuthError::BadSignature)
    );
}

fn header_map<'a>(pairs: &'a [(&'static str, String)]) -> impl Fn(&str) -> Option<&'a [u8]> + 'a {
    move |name| {
        pairs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_bytes())
    }
}

#[test]
fn every_missing_header_is_named() {
    let f = fixture();
    let pairs = sign(&f, "GET", "/x", NOW, b"").to_pairs();
    for skip in 0..pairs.len() {
        let fewer: Vec<_> = pairs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, p)| p.clone())
            .collect();
        let e = SignedHeaders::parse(header_map(&fewer)).unwrap_err();
        assert_eq!(e, AuthError::MissingHeader(pairs[skip].0));
        assert_eq!(e.code(), ErrorCode::MissingAuth);
    }
}

#[test]
fn malformed_headers_are_refused() {
    let f = fixture();
    let pairs = sign(&f, "GET", "/x", NOW, b"").to_pairs();
    let cases: [(usize, &str); 9] = [
        (0, "has space"),
        (1, ""),
        (2, "+5"),
        (2, "12a"),
        (2, "99999999999999999999999"),
        (3, "r/1"),
        (4, "abc"),
        (4, &"zz".repeat(32)),
        (4, &"ab".repeat(33)),
    ];
    for (i, bad) in cases {
        let mut p = pairs.clone();
        p[i].1 = bad.to_string();
        let e = SignedHeaders::parse(header_map(&p)).unwrap_err();
        assert!(
            matches!(e, AuthError::MalformedHeader { header, .. } if header == pairs[i].0),
            "{i} {bad:?}: {e}"
        );
        assert_eq!(e.code(), ErrorCode::MalformedAuth);
    }
    let lookup = header_map(&pairs);
    let not_utf8: &'static [u8] = &[0xff, 0xfe];
    let r = SignedHeaders::parse(|name| {
        if name == crate::wire::headers::CLIENT {
            Some(not_utf8)
        } else {
            lookup(name)
        }
    });
    assert!(matches!(r, Err(AuthError::MalformedHeader { .. })));
}

#[test]
fn unsignable_methods_and_paths_are_refused() {
    let f = fixture();
    for (m, p) in [
        ("get", "/x"),
        ("", "/x"),
        ("GET", "x"),
        ("GET", "/a b"),
        ("GET", "/a\nb"),
        ("GET", "/é"),
    ] {
        let e = sign_request(
            &f.key,
            &f.client,
            &f.window,
            m,
            p,
            &CoveredHeaders::NONE,
            NOW,
            &f.rid,
            b"",
        )
        .unwrap_err();
        assert!(matches!(e, AuthError::Unsignable(_)), "{m:?} {p:?}");
        assert_eq!(e.code(), ErrorCode::InvalidInput);
    }
}

#[test]
fn proxy_decided_refusals_have_their_codes() {
    // Unknown ids are answered like a bad MAC: ids cannot be enumerated.
    assert_eq!(AuthError::UnknownWindow.code(), ErrorCode::BadSignature);
    assert_eq!(AuthError::UnknownClient.code(), ErrorCode::BadSignature);
    assert_eq!(
        AuthError::UnsupportedScheme("v1".into()).code(),
        ErrorCode::UnsupportedScheme
    );
    assert_eq!(AuthError::ClientRevoked.code(), ErrorCode::ClientRevoked);
    assert_eq!(
        AuthError::ReplayedRequest.code(),
        ErrorCode::ReplayedRequest
    );
    let e = check_window_expiry(NOW, NOW).unwrap_err();
    assert_eq!(e.code(), ErrorCode::ExpiredWindow);
    check_window_expiry(NOW + 1, NOW).unwrap();
    for code in [
        ErrorCode::UnsupportedScheme,
        ErrorCode::UnknownWindow,
        ErrorCode::ExpiredWindow,
        ErrorCode::ReplayedRequest,
        ErrorCode::BadSignature,
        ErrorCode::TimestampSkew,
    ] {
        assert_eq!(code.status(), 401, "{code}");
    }
}

#[test]
fn open_window_round_trip_and_refusals() {
    let identity = IdentityKey::from_seed(&identity_seed());
    let cluster = cluster_dh_secret(COOKIE).unwrap().public();
    let secret = WindowSecret::from_seed(&window_seed());
    let open = OpenWindow {
        cluster,
        client: ClientId::new("alice").unwrap(),
        window: WindowId::new("w-1").unwrap(),
        window_public_key: secret.public(),
        ttl_ms: 60_000,
        timestamp_ms: NOW,
    };
    let req = open.sign(&identity);
    let public = identity.public();
    verify_open_window(&req, &public, &cluster, NOW, DEFAULT_SKEW_MS).unwrap();

    // Through JSON, as it travels.
    let json = serde_json::to_string(&req).unwrap();
    let back: crate::wire::OpenWindowRequest = serde_json::from_str(&json).unwrap();
    verify_open_window(&back, &public, &cluster, NOW, DEFAULT_SKEW_MS).unwrap();

    let skewed = verify_open_window(&req, &public, &cluster, NOW + 400_000, DEFAULT_SKEW_MS);
    assert!(matches!(skewed, Err(AuthError::TimestampSkew { .. })));

    let other_cluster = cluster_dh_secret(b"other").unwrap().public();
    assert_eq!(
        verify_open_window(&req, &public, &other_cluster, NOW, DEFAULT_SKEW_MS),
        Err(AuthError::BadSignature)
    );
    let other_identity = IdentityKey::from_seed(&[3; 32]).public();
    assert_eq!(
        verify_open_window(&req, &other_identity, &cluster, NOW, DEFAULT_SKEW_MS),
        Err(AuthError::BadSignature)
    );
    let tampered = [
        {
            let mut r = req.clone();
            r.ttl_ms += 1;
            r
        },
        {
            let mut r = req.clone();
            r.window = WindowId::new("w-2").unwrap();
            r
        },
        {
            let mut r = req.clone();
            r.client = ClientId::new("bob").unwrap();
            r
        },
        {
            let mut r = req.clone();
            r.client_public_key.0[0] ^= 1;
            r
        },
        {
            let mut r = req.clone();
            r.timestamp_ms += 1;
            r
        },
        {
            let mut r = req.clone();
            r.signature.0[63] ^= 0x80;
            r
        },
    ];
    for (i, t) in tampered.iter().enumerate() {
        assert_eq!(
            verify_open_window(t, &public, &cluster, NOW, DEFAULT_SKEW_MS),
            Err(AuthError::BadSignature),
            "tamper {i}"
        );
    }
}

#[test]
fn key_text_forms_round_trip_and_refuse_garbage() {
    let k = IdentityKey::from_seed(&identity_seed());
    assert_eq!(
        IdentityKey::from_hex(&k.to_hex()).unwrap().public(),
        k.public()
    );
    assert_eq!(
        IdentityKey::from_base64(&format!(" {}\n", k.to_base64().as_str()))
            .unwrap()
            .public(),
        k.public()
    );
    let p = k.public();
    assert_eq!(IdentityPublicKey::from_hex(&p.to_hex()).unwrap(), p);
    assert_eq!(IdentityPublicKey::from_base64(&p.to_base64()).unwrap(), p);
    for bad in ["", "00", &"g".repeat(64), &"00".repeat(33)] {
        assert!(matches!(
            IdentityKey::from_hex(bad),
            Err(AuthError::InvalidKey(_))
        ));
        assert!(IdentityPublicKey::from_hex(bad).is_err());
        assert!(WindowKey::from_hex(bad).is_err());
    }
    assert!(IdentityKey::from_base64("AAAA").is_err());
    let wk = WindowKey::from_bytes([5; 32]);
    assert_eq!(WindowKey::from_hex(&wk.to_hex()).unwrap(), wk);
}

#[test]
fn debug_never_prints_secret_bytes() {
    let seed = identity_seed();
    let k = IdentityKey::from_seed(&seed);
    let seed_hex = hex::encode(seed);
    assert!(!format!("{k:?}").contains(&seed_hex));
    let wk = WindowKey::from_bytes([0xab; 32]);
    assert!(!format!("{wk:?}").contains("abab"));
    let cs = cluster_dh_secret(COOKIE).unwrap();
    let ws = WindowSecret::from_seed(&window_seed());
    assert!(!format!("{ws:?}").contains(&hex::encode(window_seed())));
    assert!(format!("{cs:?}").contains(&cs.public().to_hex()));
}

fn flip(s: &str, at: usize, alphabet: &[u8]) -> String {
    let mut b = s.as_bytes().to_vec();
    let i = at % b.len();
    let pos = alphabet.iter().position(|c| *c == b[i]).unwrap_or(0);
    b[i] = alphabet[(pos + 1) % alphabet.len()];
    String::from_utf8(b).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any single changed byte of the method, path, body, timestamp or request id, and any changed,
    /// added or removed covered header, fails verification.
    #[test]
    fn any_tampered_field_fails(
        path in "/[a-z0-9/?=&%._-]{0,40}",
        body in proptest::collection::vec(any::<u8>(), 0..200),
        ts in (NOW - 1000)..(NOW + 1000),
        rid in "[a-z0-9]{1,20}",
        at in any::<usize>(),
        xor in 1u8..=255,
        which in 0usize..9,
        version in 0u64..1000,
    ) {
        let f = fixture();
        let rid = RequestId::new(rid).unwrap();
        let method = "POST";
        let version = version.to_string();
        let covered = CoveredHeaders { content_type: Some("application/json"), if_match: Some(&version) };
        let h = sign_request(&f.key, &f.client, &f.window, method, &path, &covered, ts, &rid, &body).unwrap();
        prop_assert!(verify_request(&f.key, &h, method, &path, &covered, &body, NOW, DEFAULT_SKEW_MS).is_ok());
        let mut h2 = h.clone();
        let (mut m2, mut p2, mut b2) = (method.to_string(), path.clone(), body.clone());
        let other_version = flip(&version, at, b"0123456789");
        let mut c2 = covered;
        match which {
            5 => c2.if_match = Some(&other_version),
            6 => c2.if_match = None,
            7 => c2.content_type = Some("text/plain"),
            8 => c2.content_type = None,
            0 => m2 = flip(method, at, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
            1 => p2 = flip(&path, at, b"abcdefghijklmnopqrstuvwxyz0123456789/?=&%._-"),
            2 => {
                if b2.is_empty() {
                    b2.push(xor);
                } else {
                    let i = at % b2.len();
                    b2[i] ^= xor;
                }
            }
            3 => h2.timestamp_ms ^= u64::from(xor) & 0x3f | 1,
            _ => {
                h2.request_id = RequestId::new(flip(h.request_id.as_str(), at, b"abcdefghijklmnopqrstuvwxyz0123456789")).unwrap();
            }
        }
        let r = verify_request(&f.key, &h2, &m2, &p2, &c2, &b2, NOW, DEFAULT_SKEW_MS);
        prop_assert_eq!(r, Err(AuthError::BadSignature));
    }

    /// A flipped bit of the signature itself fails.
    #[test]
    fn any_tampered_signature_fails(at in 0usize..32, bit in 0u8..8) {
        let f = fixture();
        let mut h = sign(&f, "GET", "/v1/entities/a", NOW, b"");
        h.signature[at] ^= 1 << bit;
        prop_assert_eq!(
            verify_request(&f.key, &h, "GET", "/v1/entities/a", &CoveredHeaders::NONE, b"", NOW, DEFAULT_SKEW_MS),
            Err(AuthError::BadSignature)
        );
    }
}

#[test]
fn covered_headers_are_signed_present_absent_or_empty() {
    let f = fixture();
    let sig = |c: &CoveredHeaders<'_>| {
        sign_request(
            &f.key,
            &f.client,
            &f.window,
            "DELETE",
            "/v1/entities/a",
            c,
            NOW,
            &f.rid,
            b"",
        )
        .unwrap()
        .signature
    };
    let cases = [
        CoveredHeaders::NONE,
        CoveredHeaders {
            content_type: None,
            if_match: Some(""),
        },
        CoveredHeaders {
            content_type: None,
            if_match: Some("7"),
        },
        CoveredHeaders {
            content_type: None,
            if_match: Some("1"),
        },
        CoveredHeaders {
            content_type: Some(""),
            if_match: None,
        },
        CoveredHeaders {
            content_type: Some("application/json"),
            if_match: None,
        },
    ];
    let sigs: Vec<_> = cases.iter().map(sig).collect();
    for i in 0..sigs.len() {
        for j in i + 1..sigs.len() {
            assert_ne!(sigs[i], sigs[j], "{:?} vs {:?}", cases[i], cases[j]);
        }
    }
    // The canonical request says which: `name:value` present, bare `name` absent.
    let canon = |c: &CoveredHeaders<'_>| {
        String::from_utf8(
            canonical_request("DELETE", "/x", c, &f.client, &f.window, NOW, &f.rid, b"").unwrap(),
        )
        .unwrap()
    };
    assert!(canon(&cases[0]).contains("\ncontent-type\nif-match\n"));
    assert!(canon(&cases[1]).contains("\ncontent-type\nif-match:\n"));
    assert!(canon(&cases[2]).contains("\ncontent-type\nif-match:7\n"));
    assert!(canon(&cases[0]).starts_with("verisim-request-v2\n"));
}

#[test]
fn covered_values_that_would_not_arrive_as_signed_are_unsignable() {
    let f = fixture();
    let long = "1".repeat(MAX_COVERED_VALUE_LEN + 1);
    for bad in [" 7", "7 ", "7\n", "a\tb", "é", long.as_str()] {
        let c = CoveredHeaders {
            content_type: None,
            if_match: Some(bad),
        };
        let e = sign_request(
            &f.key, &f.client, &f.window, "PUT", "/x", &c, NOW, &f.rid, b"",
        )
        .unwrap_err();
        assert!(matches!(e, AuthError::Unsignable(_)), "{bad:?}");
        // And a node that receives one answers `bad_signature`: nobody could have signed it.
        let h = sign(&f, "PUT", "/x", NOW, b"");
        assert_eq!(
            verify_request(&f.key, &h, "PUT", "/x", &c, b"", NOW, DEFAULT_SKEW_MS),
            Err(AuthError::BadSignature)
        );
    }
}

#[test]
fn a_covered_header_sent_twice_or_not_utf8_is_refused() {
    let twice: &[&[u8]] = &[b"7", b"1"];
    let e = CoveredHeaders::from_request(|n| {
        if n == "if-match" {
            twice.to_vec()
        } else {
            vec![]
        }
    })
    .unwrap_err();
    assert!(
        matches!(
            e,
            AuthError::MalformedHeader {
                header: "if-match",
                ..
            }
        ),
        "{e}"
    );
    assert_eq!(e.code(), ErrorCode::MalformedAuth);
    let bad: &[&[u8]] = &[&[0xff]];
    let e = CoveredHeaders::from_request(|n| {
        if n == "content-type" {
            bad.to_vec()
        } else {
            vec![]
        }
    })
    .unwrap_err();
    assert!(
        matches!(
            e,
            AuthError::MalformedHeader {
                header: "content-type",
                ..
            }
        ),
        "{e}"
    );
    let one: &[&[u8]] = &[b"3"];
    let c = CoveredHeaders::from_request(|n| {
        if n == "if-match" {
            one.to_vec()
        } else {
            vec![]
        }
    })
    .unwrap();
    assert_eq!(
        c,
        CoveredHeaders {
            content_type: None,
            if_match: Some("3")
        }
    );
    assert_eq!(c.to_pairs(), vec![("if-match", "3")]);
}

#[test]
fn a_v1_or_unknown_scheme_signature_is_refused_as_such() {
    let f = fixture();
    let pairs = sign(&f, "GET", "/x", NOW, b"").to_pairs();
    let v2 = pairs[4].1.clone();
    assert!(v2.starts_with("v2=") && v2.len() == 67, "{v2}");
    for (value, want) in [
        // A v1 client sends the bare hex HMAC.
        (v2["v2=".len()..].to_string(), ErrorCode::UnsupportedScheme),
        (format!("v1={}", &v2[3..]), ErrorCode::UnsupportedScheme),
        (format!("v3={}", &v2[3..]), ErrorCode::UnsupportedScheme),
        ("v2=abc".to_string(), ErrorCode::MalformedAuth),
        ("nonsense".to_string(), ErrorCode::MalformedAuth),
    ] {
        let mut p = pairs.clone();
        p[4].1 = value.clone();
        let e = SignedHeaders::parse(header_map(&p)).unwrap_err();
        assert_eq!(e.code(), want, "{value:?}: {e}");
        assert_eq!(e.code().status(), 401);
    }
}

#[test]
fn the_covered_header_list_is_what_the_server_acts_on() {
    // The proxy acts on If-Match (conditional writes) and the body's media type: both must be
    // covered, in this order (the canonical request's order is part of the scheme).
    assert_eq!(
        COVERED_HEADERS,
        [
            crate::wire::headers::CONTENT_TYPE,
            crate::wire::headers::IF_MATCH
        ]
    );
}
