//! Whole-system tests of the proxy on real node processes: client identities, trust windows and
//! every authentication refusal, through `verisim-client`.

mod support;

use std::time::Duration;

use support::{Cluster, Options};
use verisim_client::auth::{IdentityKey, OpenWindow, WindowSecret, sign_request};
use verisim_client::http::{Client, now_ms};
use verisim_client::wire::{ClientId, Hex, OpenWindowRequest, RequestId, WindowId};

/// A client of every node of `c` (retrying on 503 and unreachable nodes, as users would).
fn client_of(c: &Cluster) -> Client {
    let urls: Vec<String> = (1..=c.nodes.len() as u64)
        .filter_map(|id| c.node(id).http.map(|a| format!("http://{a}")))
        .collect();
    Client::new(&urls).expect("client")
}

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
        (401, "unknown_client".into())
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
    assert_eq!((r.status, r.code()), (401, Some("unknown_window")));
}
