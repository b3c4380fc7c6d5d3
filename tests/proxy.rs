//! Whole-system tests of the proxy on real node processes, through `verisim-client`: client
//! identities, trust windows and every authentication refusal; registration through any node and
//! verified reads from any other; many registrations in flight on one HTTP/2 connection; retries,
//! replays, conflicts, bad input.

mod support;

use std::time::Duration;

use support::entities::{client_of, entity_cluster, hexad, signed_headers, via};
use support::{Cluster, Options};
use verisim_client::auth::{CoveredHeaders, IdentityKey, OpenWindow, WindowSecret, sign_request};
use verisim_client::http::{Client, MultiplexClient, now_ms};
use verisim_client::wire::{
    ClientId, EntityId, Hex, OpenWindowRequest, RequestId, TensorData, TensorPayload, WindowId,
};

/// A raw POST of a JSON value to one node, for bodies the client library would never send.
fn post_raw(c: &Cluster, id: u64, path: &str, body: &serde_json::Value) -> support::Reply {
    c.node(id).post(path, Some(body.clone())).expect("request")
}

#[test]
fn windows_open_through_any_node_and_every_refusal_has_its_code() {
    let c = Cluster::start(Options::default());
    let admin = client_of(&c);
    let alice = ClientId::new("alice").unwrap();
    let identity = IdentityKey::from_seed(&[11; 32]);
    admin
        .register_client(&alice, &identity.public())
        .expect("register alice");

    // Open through each node in turn: every node derives the same cluster key and commits.
    for id in 1..=3u64 {
        let one = Client::new(&[format!("http://{}", c.node(id).http.unwrap())]).unwrap();
        let session = one
            .open_window(&identity, &alice, Duration::from_secs(600))
            .unwrap_or_else(|e| panic!("open a window through n{id}: {e}"));
        assert!(session.expires_at_ms > now_ms());
    }

    let cluster = admin.cluster_key().expect("cluster key");
    let opening = |client: &str, key: &IdentityKey, window: &str, ts: u64| -> OpenWindowRequest {
        OpenWindow {
            cluster,
            client: ClientId::new(client).unwrap(),
            window: WindowId::new(window).unwrap(),
            window_public_key: WindowSecret::from_seed(&[5; 32]).public(),
            ttl_ms: 60_000,
            timestamp_ms: ts,
        }
        .sign(key)
    };
    let refused = |req: &OpenWindowRequest| -> (u16, String) {
        let r = post_raw(&c, 2, "/v1/windows", &serde_json::to_value(req).unwrap());
        (r.status, r.code().unwrap_or_default().to_string())
    };
    // Signed by another key, an unknown client, a stale timestamp.
    let stranger = IdentityKey::from_seed(&[12; 32]);
    assert_eq!(
        refused(&opening("alice", &stranger, "wx", now_ms())),
        (401, "bad_signature".into())
    );
    assert_eq!(
        refused(&opening("mallory", &stranger, "wx", now_ms())),
        (401, "bad_signature".into())
    );
    assert_eq!(
        refused(&opening("alice", &identity, "wx", now_ms() - 301_000)),
        (401, "timestamp_skew".into())
    );
    // The same opening twice answers the same window; another key under that id is refused.
    let ok = opening("alice", &identity, "w-retry", now_ms());
    let first = post_raw(&c, 1, "/v1/windows", &serde_json::to_value(&ok).unwrap());
    let again = post_raw(&c, 3, "/v1/windows", &serde_json::to_value(&ok).unwrap());
    assert_eq!(first.status, 201, "{first:?}");
    assert_eq!(again.status, 201, "{again:?}");
    assert_eq!(first.body, again.body);
    let mut other = ok.clone();
    other.client_public_key = Hex(WindowSecret::from_seed(&[6; 32]).public().0);
    let other = OpenWindow {
        cluster,
        client: other.client.clone(),
        window: other.window.clone(),
        window_public_key: verisim_client::auth::WindowPublicKey(other.client_public_key.0),
        ttl_ms: other.ttl_ms,
        timestamp_ms: other.timestamp_ms,
    }
    .sign(&identity);
    assert_eq!(refused(&other), (409, "already_exists".into()));
    // Malformed JSON.
    let r = c
        .node(1)
        .post("/v1/windows", Some(serde_json::json!({"client": 5})))
        .unwrap();
    assert_eq!((r.status, r.code()), (400, Some("malformed_json")));

    // A window closed through a request signed in it refuses everything after.
    let session = admin
        .open_window(&identity, &alice, Duration::from_secs(600))
        .expect("open");
    admin.close_window().expect("close");
    let key = session.key.clone();
    let headers = sign_request(
        &key,
        &alice,
        &session.window,
        "DELETE",
        &format!("/v1/windows/{}", session.window),
        &CoveredHeaders::NONE,
        now_ms(),
        &RequestId::new("r-after-close").unwrap(),
        b"",
    )
    .unwrap();
    let r = c
        .node(2)
        .delete_with_headers(
            &format!("/v1/windows/{}", session.window),
            &headers.to_pairs(),
        )
        .unwrap();
    // Closed is gone: answered like any window this cluster does not know (`bad_signature`); a
    // replica that has not applied the close yet verifies the MAC and the quorum then refuses the
    // second close (`unknown_window`, seen only by the key's holder).
    assert_eq!(r.status, 401, "{r:?}");
    assert!(
        matches!(r.code(), Some("bad_signature" | "unknown_window")),
        "{r:?}"
    );
}

#[test]
fn registration_through_any_node_is_read_back_verified_from_any_other() {
    let (c, client, _) = entity_cluster();
    for (n, id) in [(1, "e1"), (2, "e2"), (3, "e3")] {
        let req = hexad(id, n);
        let w = via(&c, n, &client).register(&req).expect("register");
        assert_eq!((w.id.as_str(), w.version), (id, 1));
        // Read through the next node: every modality equals what was registered, verified.
        let reader = via(&c, n % 3 + 1, &client);
        let view = reader.get(&req.id, false).expect("get");
        assert!(view.all_verified(), "{view:?}");
        assert_eq!(view.version, 1);
        assert_eq!(view.placement.len(), 3);
        assert_eq!(view.graph.data.as_ref(), Some(&req.graph));
        assert_eq!(view.vector.data.as_ref(), Some(&req.vector));
        assert_eq!(view.tensor.data.as_ref(), Some(&req.tensor));
        assert_eq!(view.semantic.data.as_ref(), Some(&req.semantic));
        assert_eq!(view.graph.hash, w.hashes.graph);
        assert_eq!(view.tensor.hash, w.hashes.tensor);
    }

    // A retry of a registration (same request id, same body) answers the same result, through
    // another node; the same id with another body is a replay.
    let req = hexad("e4", 4);
    let body = serde_json::to_vec(&req).unwrap();
    let first = c
        .node(1)
        .request(
            "POST",
            "/v1/entities",
            &signed_headers(&client, "POST", "/v1/entities", &body, "r-e4"),
            &body,
        )
        .unwrap();
    assert_eq!(first.status, 201, "{first:?}");
    let again = c
        .node(3)
        .request(
            "POST",
            "/v1/entities",
            &signed_headers(&client, "POST", "/v1/entities", &body, "r-e4"),
            &body,
        )
        .unwrap();
    assert_eq!((again.status, &again.body), (201, &first.body));
    let other = serde_json::to_vec(&hexad("e5", 5)).unwrap();
    let replay = c
        .node(2)
        .request(
            "POST",
            "/v1/entities",
            &signed_headers(&client, "POST", "/v1/entities", &other, "r-e4"),
            &other,
        )
        .unwrap();
    assert_eq!(
        (replay.status, replay.code()),
        (401, Some("replayed_request"))
    );

    // Registering an existing id conflicts; an update needs the current version.
    let conflict = client.register(&hexad("e1", 9)).unwrap_err();
    assert_eq!(
        conflict.code(),
        Some(verisim_client::wire::ErrorCode::VersionConflict)
    );
    let (id, mut update) = hexad("e1", 1).into_update();
    update.tensor = TensorPayload::from_typed(vec![2], &TensorData::I64(vec![7, 8]));
    let stale = client.update(&id, &update, 5).unwrap_err();
    assert_eq!(
        stale.code(),
        Some(verisim_client::wire::ErrorCode::VersionConflict)
    );
    let w = client.update(&id, &update, 1).expect("update");
    assert_eq!(w.version, 2);
    let view = via(&c, 2, &client).get(&id, false).expect("get v2");
    assert_eq!(
        (view.version, view.tensor.data.as_ref()),
        (2, Some(&update.tensor))
    );

    // Delete, then the entity is gone everywhere.
    let d = client.delete(&id, Some(2)).expect("delete");
    assert_eq!(d.version, 2);
    for n in 1..=3 {
        let e = via(&c, n, &client).get(&id, false).unwrap_err();
        assert_eq!(
            e.code(),
            Some(verisim_client::wire::ErrorCode::NotFound),
            "n{n}"
        );
    }
}

#[test]
fn bad_input_is_refused_with_its_code_and_writes_nothing() {
    let (c, client, _) = entity_cluster();
    let send = |body: &[u8], request: &str| {
        c.node(2)
            .request(
                "POST",
                "/v1/entities",
                &signed_headers(&client, "POST", "/v1/entities", body, request),
                body,
            )
            .unwrap()
    };
    // Wrong vector dimension, a schema violation (missing required property), malformed JSON.
    let mut short = hexad("bad1", 1);
    short.vector.values.truncate(100);
    let r = send(&serde_json::to_vec(&short).unwrap(), "r1");
    assert_eq!((r.status, r.code()), (400, Some("invalid_input")), "{r:?}");
    let mut unnamed = hexad("bad2", 2);
    unnamed.semantic.properties.remove("ex:name");
    let r = send(&serde_json::to_vec(&unnamed).unwrap(), "r2");
    assert_eq!((r.status, r.code()), (400, Some("invalid_input")), "{r:?}");
    let r = send(b"{\"id\": \"bad3\", ", "r3");
    assert_eq!((r.status, r.code()), (400, Some("malformed_json")), "{r:?}");
    // Oversized: 5 MiB of vector.
    let mut huge = hexad("bad4", 4);
    huge.vector.values = vec![0.5; 5 * 1024 * 1024 / 4];
    let r = send(&serde_json::to_vec(&huge).unwrap(), "r4");
    assert_eq!(
        (r.status, r.code()),
        (413, Some("payload_too_large")),
        "{r:?}"
    );
    // Nothing was written: none of them exists.
    for id in ["bad1", "bad2", "bad3", "bad4"] {
        let e = client.get(&EntityId::new(id).unwrap(), false).unwrap_err();
        assert_eq!(
            e.code(),
            Some(verisim_client::wire::ErrorCode::NotFound),
            "{id}"
        );
    }
    // Unsigned and badly signed requests never reach the registry.
    let body = serde_json::to_vec(&hexad("e9", 9)).unwrap();
    let r = c
        .node(1)
        .request("POST", "/v1/entities", &[], &body)
        .unwrap();
    assert_eq!((r.status, r.code()), (401, Some("missing_auth")));
    let mut h = signed_headers(&client, "POST", "/v1/entities", &body, "r9");
    let sig = h
        .iter_mut()
        .find(|(k, _)| *k == "x-verisim-signature")
        .unwrap();
    sig.1 = format!("v2={}", "00".repeat(32));
    let r = c
        .node(1)
        .request("POST", "/v1/entities", &h, &body)
        .unwrap();
    assert_eq!((r.status, r.code()), (401, Some("bad_signature")));
}

/// Many registrations in flight at once on one HTTP/2 connection (`MultiplexClient`): every one is
/// answered on its own stream, lands, and reads back verified from another node; a refusal on one
/// stream carries its code and disturbs none of the others.
#[test]
fn registrations_in_flight_on_one_http2_connection_all_land() {
    let (c, client, _) = entity_cluster();
    let session = client.session().expect("a window is open");
    let node = format!("http://{}", c.node(1).http.expect("n1 listens"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let written = rt.block_on(async {
        let h2 = MultiplexClient::connect(&node)
            .await
            .expect("an HTTP/2 connection")
            .with_session(session);
        let calls: Vec<_> = (0..32u64)
            .map(|i| {
                let h2 = h2.clone();
                tokio::spawn(async move { h2.register(&hexad(&format!("m{i}"), i)).await })
            })
            .collect();
        // One more on the same connection, for an id already taken once the others are in.
        let mut written = Vec::new();
        for call in calls {
            written.push(call.await.expect("the task ran").expect("registered"));
        }
        let taken = h2.register(&hexad("m0", 99)).await.unwrap_err();
        assert_eq!(
            taken.code(),
            Some(verisim_client::wire::ErrorCode::VersionConflict),
            "{taken}"
        );
        written
    });
    assert_eq!(written.len(), 32);
    let reader = via(&c, 2, &client);
    for (i, w) in written.iter().enumerate() {
        let req = hexad(&format!("m{i}"), i as u64);
        assert_eq!((w.id.as_str(), w.version), (req.id.as_str(), 1));
        let view = reader.get(&req.id, false).expect("get");
        assert!(view.all_verified(), "{view:?}");
        assert_eq!(view.vector.data.as_ref(), Some(&req.vector));
    }
}
