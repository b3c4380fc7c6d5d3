//! Fixed test vectors, also printed in docs/api.md, so another SDK (wasm, another language) can
//! check itself byte for byte. `client/scripts/check_vectors.py` recomputes them independently with
//! Python's `cryptography` package.

use super::*;
use crate::wire::{ClientId, RequestId, WindowId};

pub(super) fn identity_seed() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

pub(super) fn window_seed() -> [u8; 32] {
    std::array::from_fn(|i| 0x20 + i as u8)
}

pub(super) const COOKIE: &[u8] = b"verisim test cookie";

struct Expected {
    identity_public: &'static str,
    cluster_public: &'static str,
    window_public: &'static str,
    window_key: &'static str,
    open_signature: &'static str,
    body_sha256: &'static str,
    request_signature: &'static str,
}

const EXPECTED: Expected = Expected {
    identity_public: "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8",
    cluster_public: "cbceadd417826b0560d961452a2df0a95071bb5551e461bb7f48b5ff97a8bd60",
    window_public: "358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd166254",
    window_key: "7d2f5e013e2a6d9860749f39afdd75a5970e68449021bf4af0e23e6724b06687",
    open_signature: "6daa19da16398333a90ba0c2025bfd8bad6555d2fc2dfa6822e4be8ecea394ad7d752152ac185cc54c01b3a19847e2200b84354d7645376c25da31f4e84ef400",
    body_sha256: "8489a5deb454a360345c7868bca8672de92b446caf3d3b014af6a56e3d549d30",
    request_signature: "9647b0764ee4b822fac0f0349629a454ab405b0b909fe076a12fd882495ba9a9",
};

#[test]
fn fixed_vectors() {
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
    let body = br#"{"id":"a"}"#;
    let rid = RequestId::new("r-0001").unwrap();
    let canonical = canonical_request(
        "POST",
        "/v1/entities?x=1",
        &client,
        &window,
        1_700_000_000_123,
        &rid,
        body,
    )
    .unwrap();
    let signed = sign_request(
        &key,
        &client,
        &window,
        "POST",
        "/v1/entities?x=1",
        1_700_000_000_123,
        &rid,
        body,
    )
    .unwrap();
    let got = [
        ("identity_public", identity.public().to_hex()),
        ("cluster_public", cluster.public().to_hex()),
        ("window_public", secret.public().to_hex()),
        ("window_key", key.to_hex().to_string()),
        (
            "open_signature",
            hex::encode(open.sign(&identity).signature.0),
        ),
        ("body_sha256", body_sha256_hex(body)),
        ("request_signature", hex::encode(signed.signature)),
    ];
    println!(
        "open-window bytes:\n{}",
        String::from_utf8_lossy(&open.signing_bytes())
    );
    println!(
        "canonical request:\n{}",
        String::from_utf8_lossy(&canonical)
    );
    for (name, v) in &got {
        println!("{name}: {v}");
    }
    let want = [
        EXPECTED.identity_public,
        EXPECTED.cluster_public,
        EXPECTED.window_public,
        EXPECTED.window_key,
        EXPECTED.open_signature,
        EXPECTED.body_sha256,
        EXPECTED.request_signature,
    ];
    for ((name, g), w) in got.iter().zip(want) {
        assert_eq!(g, w, "{name}");
    }
}
