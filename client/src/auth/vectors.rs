//! Fixed test vectors, also printed in docs/api.md, so another SDK (wasm, another language) can
//! check itself byte for byte. `client/scripts/check_vectors.py` recomputes them independently with
//! Python's `cryptography` package; [`python_checker_agrees`] runs it.

use super::*;
use crate::wire::{ClientId, RequestId, WindowId};

pub(super) fn identity_seed() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

pub(super) fn window_seed() -> [u8; 32] {
    std::array::from_fn(|i| 0x20 + i as u8)
}

pub(super) const COOKIE: &[u8] = b"verisim test cookie";

/// One signed-request vector: everything the signature covers, and the header value it gives.
struct RequestVector {
    name: &'static str,
    method: &'static str,
    path_and_query: &'static str,
    covered: CoveredHeaders<'static>,
    timestamp_ms: u64,
    request_id: &'static str,
    body: &'static [u8],
    signature_header: &'static str,
}

const REQUESTS: [RequestVector; 4] = [
    RequestVector {
        name: "request_post",
        method: "POST",
        path_and_query: "/v1/entities",
        covered: CoveredHeaders {
            content_type: Some("application/json"),
            if_match: None,
        },
        timestamp_ms: 1_700_000_000_123,
        request_id: "r-0001",
        body: br#"{"id":"a"}"#,
        signature_header: "v2=c1e42f31e4539f67526b95a71f603c2ce073cb1cc9bf8c549bd9a9c5a398d7da",
    },
    RequestVector {
        name: "request_put_if_match",
        method: "PUT",
        path_and_query: "/v1/entities/a",
        covered: CoveredHeaders {
            content_type: Some("application/json"),
            if_match: Some("7"),
        },
        timestamp_ms: 1_700_000_000_456,
        request_id: "r-0002",
        body: br#"{"v":2}"#,
        signature_header: "v2=93875dc8304d3bb57a71ecc7a965e3fc5bbf8c319bababf897c16dbbb038123f",
    },
    RequestVector {
        name: "request_get_query",
        method: "GET",
        path_and_query: "/v1/entities/a?allow_drift=true",
        covered: CoveredHeaders::NONE,
        timestamp_ms: 1_700_000_000_789,
        request_id: "r-0003",
        body: b"",
        signature_header: "v2=18a940a8e8bde4219f0d8a4051720226616c9614a3de95bbe6f032abc12ebfd3",
    },
    RequestVector {
        name: "request_delete_if_match_empty",
        method: "DELETE",
        path_and_query: "/v1/entities/a",
        covered: CoveredHeaders {
            content_type: None,
            if_match: Some(""),
        },
        timestamp_ms: 1_700_000_001_000,
        request_id: "r-0004",
        body: b"",
        signature_header: "v2=1c156dad9f4e9fa6854230e38dfaaa5c18fa3b2b0fd011d5629a5a3cc486830e",
    },
];

const EXPECTED: [(&str, &str); 6] = [
    (
        "identity_public",
        "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8",
    ),
    (
        "cluster_public",
        "cbceadd417826b0560d961452a2df0a95071bb5551e461bb7f48b5ff97a8bd60",
    ),
    (
        "window_public",
        "358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd166254",
    ),
    (
        "window_key",
        "7d2f5e013e2a6d9860749f39afdd75a5970e68449021bf4af0e23e6724b06687",
    ),
    (
        "open_signature",
        "6daa19da16398333a90ba0c2025bfd8bad6555d2fc2dfa6822e4be8ecea394ad7d752152ac185cc54c01b3a19847e2200b84354d7645376c25da31f4e84ef400",
    ),
    (
        "body_sha256",
        "8489a5deb454a360345c7868bca8672de92b446caf3d3b014af6a56e3d549d30",
    ),
];

/// Every vector as computed by this crate, as `(name, value)` in the Python script's order.
fn computed() -> Vec<(String, String)> {
    let identity = IdentityKey::from_seed(&identity_seed());
    let cluster = cluster_dh_secret(COOKIE).unwrap();
    let secret = WindowSecret::from_seed(&window_seed());
    let client = ClientId::new("alice").unwrap();
    let window = WindowId::new("w-0001").unwrap();
    let key = derive_window_key_client(&secret, &cluster.public(), &window).unwrap();
    let open = OpenWindow {
        cluster: cluster.public(),
        client: client.clone(),
        window: window.clone(),
        window_public_key: secret.public(),
        ttl_ms: 3_600_000,
        timestamp_ms: 1_700_000_000_000,
    };
    println!(
        "open-window bytes:\n{}",
        String::from_utf8_lossy(&open.signing_bytes())
    );
    let mut got = vec![
        ("identity_public".into(), identity.public().to_hex()),
        ("cluster_public".into(), cluster.public().to_hex()),
        ("window_public".into(), secret.public().to_hex()),
        ("window_key".into(), key.to_hex().to_string()),
        (
            "open_signature".into(),
            hex::encode(open.sign(&identity).signature.0),
        ),
        ("body_sha256".into(), body_sha256_hex(br#"{"id":"a"}"#)),
    ];
    for v in &REQUESTS {
        let rid = RequestId::new(v.request_id).unwrap();
        let canonical = canonical_request(
            v.method,
            v.path_and_query,
            &v.covered,
            &client,
            &window,
            v.timestamp_ms,
            &rid,
            v.body,
        )
        .unwrap();
        println!(
            "canonical request {}:\n{}",
            v.name,
            String::from_utf8_lossy(&canonical)
        );
        let signed = sign_request(
            &key,
            &client,
            &window,
            v.method,
            v.path_and_query,
            &v.covered,
            v.timestamp_ms,
            &rid,
            v.body,
        )
        .unwrap();
        let header = signed.to_pairs()[4].1.clone();
        got.push((v.name.to_string(), header));
    }
    got
}

#[test]
fn fixed_vectors() {
    let got = computed();
    let want: Vec<(String, String)> = EXPECTED
        .iter()
        .map(|(n, v)| ((*n).to_string(), (*v).to_string()))
        .chain(
            REQUESTS
                .iter()
                .map(|r| (r.name.to_string(), r.signature_header.to_string())),
        )
        .collect();
    for (name, v) in &got {
        println!("{name}: {v}");
    }
    assert_eq!(got, want);
}

/// Runs the independent Python implementation and compares its every line with this crate's.
/// Needs `python3` with the `cryptography` package; without them it says so and checks nothing
/// (set `VERISIM_REQUIRE_PYTHON_VECTORS=1` to make that a failure, as CI should).
#[test]
fn python_checker_agrees() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/check_vectors.py");
    let required = std::env::var_os("VERISIM_REQUIRE_PYTHON_VECTORS").is_some();
    let out = match std::process::Command::new("python3").arg(script).output() {
        Ok(out) if out.status.success() => out,
        other => {
            assert!(
                !required,
                "python3 {script} did not run: {other:?} (needs python3 and `cryptography`)"
            );
            eprintln!(
                "SKIPPED: python3 {script} did not run ({other:?}); install python3 and `cryptography`"
            );
            return;
        }
    };
    let text = String::from_utf8(out.stdout).unwrap();
    let python: Vec<(String, String)> = text
        .lines()
        .map(|l| {
            let (n, v) = l.split_once(' ').unwrap();
            (n.to_string(), v.to_string())
        })
        .collect();
    assert_eq!(python, computed());
}

/// The file the Node tests read (client/js/test/vectors.json): the vectors' inputs, the values
/// this crate computes, each request's fingerprint, and the trust state an edge verifier checks
/// them against.
const JSON_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/js/test/vectors.json");

/// When the window of the vectors expires (an hour after it was opened).
const EXPIRES_AT_MS: u64 = 1_700_003_600_000;

fn vectors_json() -> serde_json::Value {
    use serde_json::{Map, Value, json};
    let values: Map<String, Value> = computed()
        .into_iter()
        .map(|(n, v)| (n, Value::String(v)))
        .collect();
    let cluster = cluster_dh_secret(COOKIE).unwrap();
    let requests: Vec<Value> = REQUESTS
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "method": r.method,
                "path": r.path_and_query,
                "content_type": r.covered.content_type,
                "if_match": r.covered.if_match,
                "timestamp_ms": r.timestamp_ms,
                "request_id": r.request_id,
                "body": std::str::from_utf8(r.body).unwrap(),
                "signature": r.signature_header,
                "fingerprint": crate::verify::fingerprint(
                    r.method,
                    r.path_and_query,
                    &r.covered,
                    r.body,
                )
                .to_hex(),
            })
        })
        .collect();
    json!({
        "comment": "Generated by client/src/auth/vectors.rs (VERISIM_UPDATE_VECTORS=1 rewrites it); read by client/js/test/*.test.mjs.",
        "cookie": std::str::from_utf8(COOKIE).unwrap(),
        "cluster_secret": hex::encode(*cluster.to_bytes()),
        "client": "alice",
        "window": "w-0001",
        "window_public": WindowSecret::from_seed(&window_seed()).public().to_hex(),
        "expires_at_ms": EXPIRES_AT_MS,
        "skew_ms": DEFAULT_SKEW_MS,
        "values": values,
        "requests": requests,
    })
}

/// client/js/test/vectors.json says what this crate computes (set `VERISIM_UPDATE_VECTORS=1` to
/// rewrite it after a deliberate change).
#[test]
fn the_js_vectors_file_is_current() {
    let want = vectors_json();
    if std::env::var_os("VERISIM_UPDATE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&want).unwrap() + "\n";
        std::fs::write(JSON_FILE, text).unwrap();
    }
    let text = std::fs::read_to_string(JSON_FILE).unwrap();
    let got: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        got, want,
        "{JSON_FILE} is stale: rerun with VERISIM_UPDATE_VECTORS=1"
    );
}
