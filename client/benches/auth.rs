//! What authentication costs a proxy per request: HMAC signing and verification of a registration-
//! sized body, deriving a window key (X25519 + HKDF, once per window, cacheable), and verifying a
//! window opening (Ed25519). `cargo bench -p verisim-client --bench auth`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use verisim_client::auth::{
    ClusterPublicKey, CoveredHeaders, DEFAULT_SKEW_MS, IdentityKey, OpenWindow, WindowSecret,
    cluster_dh_secret, derive_window_key_cluster, sign_request, verify_open_window,
};
use verisim_client::verify::{Fingerprint, TrustClient, TrustView, TrustWindow, Verifier};
use verisim_client::wire::{ClientId, RequestId, WindowId};

/// One open window of one client, and nothing applied yet: a proxy's trust state, reduced.
struct OneWindow {
    window: WindowId,
    open: TrustWindow,
}

impl TrustView for OneWindow {
    type Applied = ();

    fn window(&self, window: &WindowId) -> Option<TrustWindow> {
        (*window == self.window).then(|| self.open.clone())
    }

    fn client(&self, client: &ClientId) -> Option<TrustClient> {
        (*client == self.open.client).then_some(TrustClient { revoked: false })
    }

    fn applied(&self, _: &ClientId, _: &RequestId) -> Option<(Fingerprint, ())> {
        None
    }
}

const NOW: u64 = 1_700_000_000_000;

fn bench(c: &mut Criterion) {
    let cluster = cluster_dh_secret(b"bench cookie").expect("cookie");
    let secret = WindowSecret::from_seed(&[7; 32]);
    let window = WindowId::new("w-1").expect("id");
    let client = ClientId::new("alice").expect("id");
    let rid = RequestId::new("r-1").expect("id");
    let key = derive_window_key_cluster(&cluster, &secret.public(), &window).expect("key");
    // About the JSON size of the benchmark entity (128-d vector, 10 edges, 4x4 tensor).
    let body = vec![b'x'; 4096];
    let covered = CoveredHeaders {
        content_type: Some("application/json"),
        if_match: None,
    };
    let covered_pairs = covered.to_pairs();

    let mut g = c.benchmark_group("auth");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign_request_4KiB", |b| {
        b.iter(|| {
            sign_request(
                &key,
                &client,
                &window,
                "POST",
                "/v1/entities",
                &covered,
                NOW,
                &rid,
                black_box(&body),
            )
        });
    });
    let signed = sign_request(
        &key,
        &client,
        &window,
        "POST",
        "/v1/entities",
        &covered,
        NOW,
        &rid,
        &body,
    )
    .expect("sign");
    // What a node's proxy runs per request (every check, steps 1 to 5), with the window key
    // already in the verifier's cache.
    let mut headers: Vec<(String, String)> = signed
        .to_pairs()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    headers.extend(
        covered_pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let verifier = Verifier::from_key_material(b"bench cookie", DEFAULT_SKEW_MS).expect("cookie");
    let view = OneWindow {
        window: window.clone(),
        open: TrustWindow {
            client: client.clone(),
            client_dh: secret.public(),
            expires_at_ms: NOW + 3_600_000,
        },
    };
    g.bench_function("verify_4KiB_cached_key", |b| {
        b.iter(|| {
            verifier
                .verify(
                    &view,
                    headers.as_slice(),
                    "POST",
                    "/v1/entities",
                    black_box(&body),
                    NOW,
                )
                .expect("verifies")
        });
    });
    g.bench_function("derive_window_key_cluster", |b| {
        b.iter(|| derive_window_key_cluster(&cluster, black_box(&secret.public()), &window));
    });
    let identity = IdentityKey::from_seed(&[1; 32]);
    let cluster_public: ClusterPublicKey = cluster.public();
    let open = OpenWindow {
        cluster: cluster_public,
        client: client.clone(),
        window: window.clone(),
        window_public_key: secret.public(),
        ttl_ms: 60_000,
        timestamp_ms: NOW,
    }
    .sign(&identity);
    let public = identity.public();
    g.bench_function("verify_open_window", |b| {
        b.iter(|| {
            verify_open_window(
                black_box(&open),
                &public,
                &cluster_public,
                NOW,
                DEFAULT_SKEW_MS,
            )
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
