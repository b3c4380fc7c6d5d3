//! Issue 11, "admin means admin" and "enrollment and keys", as an attacker tries them on real
//! nodes: every admin route of the table refuses a missing or wrong token; enrollment without the
//! token registers nothing; an enrolled key is never replaced without an explicit rotation; a
//! revocation closes the client's windows on every node and the id stays revoked; a rotation
//! closes the old key's windows and the new key works.

mod support;

use std::time::Duration;

use support::entities::{SCHEMA, client_of, node_urls, via};
use support::{Cluster, Options};
use verisim::node::admin::routes;
use verisim_client::auth::IdentityKey;
use verisim_client::http::Client;
use verisim_client::wire::{ClientId, EntityId, ErrorCode};

const TOKEN: &str = "5f1c0e2a9b7d4c3e8a6f0b1d2c3e4f5a";
const LONG: Duration = Duration::from_secs(30);
const TTL: Duration = Duration::from_secs(600);

/// A 3-node cluster whose nodes require [`TOKEN`] on `/admin/*` and load the entity schema.
fn guarded_cluster(nodes: u64) -> Cluster {
    Cluster::start(Options {
        nodes,
        admin_token: Some(TOKEN.into()),
        config: Some("[stores]\nschema_file = \"{dir}/schema.json\"\n".into()),
        files: vec![("schema.json".into(), SCHEMA.into())],
        ..Options::default()
    })
}

/// One request to node `id` with exactly the `authorization` header given (none: none at all),
/// as an outsider sends it: `(status, code)`.
fn send(
    c: &Cluster,
    id: u64,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&serde_json::Value>,
) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(15)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(format!("http://{}{path}", c.node(id).http.unwrap()));
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let bytes = body
        .map(|b| serde_json::to_vec(b).unwrap())
        .unwrap_or_default();
    if !bytes.is_empty() {
        req = req.header("content-type", "application/json");
    }
    let mut resp = agent.run(req.body(bytes).unwrap()).expect("request");
    let status = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    let code = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (status, code)
}

fn enrollment(client: &str, key: &IdentityKey) -> serde_json::Value {
    serde_json::json!({"client": client, "public_key": key.public().to_hex()})
}

/// The code a signed read in `who`'s window gets from node `id`: `not_found` (the probe entity
/// does not exist) means the window authenticated.
fn probe(c: &Cluster, id: u64, who: &Client) -> Option<ErrorCode> {
    let e = via(c, id, who)
        .get(&EntityId::new("probe-entity").unwrap(), false)
        .expect_err("the probe entity does not exist");
    e.code()
}

/// A client of every node holding `name`'s window, opened with `key`.
fn open(c: &Cluster, name: &str, key: &IdentityKey) -> Client {
    let client = Client::new(&node_urls(c)).unwrap();
    client
        .open_window(key, &ClientId::new(name).unwrap(), TTL)
        .unwrap_or_else(|e| panic!("open a window for {name}: {e}"));
    client
}

/// The code a window opening for `name` with `key` through node `id` gets.
fn open_refused(c: &Cluster, id: u64, name: &str, key: &IdentityKey) -> Option<ErrorCode> {
    let one = Client::new(&[format!("http://{}", c.node(id).http.unwrap())]).unwrap();
    one.open_window(key, &ClientId::new(name).unwrap(), TTL)
        .expect_err("the opening must be refused")
        .code()
}

#[test]
fn every_admin_route_of_the_table_refuses_a_missing_or_a_wrong_token() {
    let c = Cluster::start(Options {
        nodes: 1,
        admin_token: Some(TOKEN.into()),
        ..Options::default()
    });
    let wrong = format!("Bearer {}", TOKEN.to_uppercase());
    let right = format!("Bearer {TOKEN}");
    for r in routes() {
        let (m, p) = (r.verb.as_str(), r.path_with("x"));
        assert_eq!(
            send(&c, 1, m, &p, None, None),
            (401, "missing_auth".into()),
            "{m} {p} without a token"
        );
        assert_eq!(
            send(&c, 1, m, &p, Some(&wrong), None),
            (403, "forbidden".into()),
            "{m} {p} with a wrong token"
        );
        // With the token the guard lets it through (the handler may still refuse the `x`s).
        let (status, code) = send(&c, 1, m, &p, Some(&right), None);
        assert!(
            status != 401 && code != "missing_auth" && code != "forbidden",
            "{m} {p} with the token: {status} {code}"
        );
    }
    // Unrouted admin paths are guarded too; the open routes stay open.
    assert_eq!(
        send(&c, 1, "GET", "/admin/nosuch", None, None),
        (401, "missing_auth".into())
    );
    for open in ["/healthz", "/metrics"] {
        assert_eq!(send(&c, 1, "GET", open, None, None).0, 200, "{open}");
    }
}

#[test]
fn enrollment_is_admin_only_and_an_enrolled_key_is_never_replaced_without_rotation() {
    let c = guarded_cluster(3);
    let admin = client_of(&c);
    let mallory_key = IdentityKey::from_seed(&[66; 32]);
    let wrong = format!("Bearer {TOKEN}x");

    // (a) An outsider enrolls itself: refused on every node, without a token and with a wrong one.
    for id in 1..=3 {
        let body = enrollment("mallory", &mallory_key);
        assert_eq!(
            send(&c, id, "POST", "/admin/clients", None, Some(&body)),
            (401, "missing_auth".into()),
            "n{id}"
        );
        assert_eq!(
            send(&c, id, "POST", "/admin/clients", Some(&wrong), Some(&body)),
            (403, "forbidden".into()),
            "n{id}"
        );
    }
    // ... and was not registered: the admin view has no such client on any node, and its window
    // opening is refused everywhere (answered like any unknown id: one 401 code, docs/api.md).
    let right = format!("Bearer {TOKEN}");
    for id in 1..=3 {
        assert_eq!(
            send(&c, id, "GET", "/admin/clients/mallory", Some(&right), None),
            (404, "not_found".into()),
            "n{id}"
        );
        assert_eq!(
            open_refused(&c, id, "mallory", &mallory_key),
            Some(ErrorCode::BadSignature),
            "n{id}"
        );
    }
    assert_eq!(
        send(
            &c,
            1,
            "GET",
            "/admin/clients/mallory",
            Some(&format!("Bearer {TOKEN}")),
            None
        ),
        (404, "not_found".into())
    );

    // `dev` is enrolled by the admin, with its window open.
    let dev_key = IdentityKey::from_seed(&[21; 32]);
    let dev_id = ClientId::new("dev").unwrap();
    admin
        .register_client(&dev_id, &dev_key.public())
        .expect("enroll dev");
    let dev = open(&c, "dev", &dev_key);

    // (b) Without the token, the attacker tries to replace dev's key in every way the API offers.
    let body = enrollment("dev", &mallory_key);
    let rotate = serde_json::json!({"public_key": mallory_key.public().to_hex()});
    for id in 1..=3 {
        for (m, p, b) in [
            ("POST", "/admin/clients", Some(&body)),
            ("POST", "/admin/clients/dev/rotate", Some(&rotate)),
            ("DELETE", "/admin/clients/dev", None),
        ] {
            assert_eq!(
                send(&c, id, m, p, None, b),
                (401, "missing_auth".into()),
                "{m} {p} on n{id}"
            );
            assert_eq!(
                send(&c, id, m, p, Some(&wrong), b),
                (403, "forbidden".into()),
                "{m} {p} on n{id}"
            );
        }
    }
    // Even the admin cannot replace the key without rotating: 409 client_exists.
    let e = admin
        .register_client(&dev_id, &mallory_key.public())
        .expect_err("another key without rotation");
    assert_eq!(e.code(), Some(ErrorCode::ClientExists), "{e}");
    // The attacker's key opens nothing for dev; dev's window and key still work on every node.
    for id in 1..=3 {
        assert_eq!(
            open_refused(&c, id, "dev", &mallory_key),
            Some(ErrorCode::BadSignature),
            "n{id}"
        );
        assert_eq!(probe(&c, id, &dev), Some(ErrorCode::NotFound), "n{id}");
    }
    open(&c, "dev", &dev_key);

    // Enrolling the same key again is harmless: 200 (not 201), nothing changes.
    let again = send(
        &c,
        2,
        "POST",
        "/admin/clients",
        Some(&format!("Bearer {TOKEN}")),
        Some(&enrollment("dev", &dev_key)),
    );
    assert_eq!(again.0, 200, "{again:?}");
    assert_eq!(probe(&c, 3, &dev), Some(ErrorCode::NotFound));
}

#[test]
fn revocation_and_rotation_close_the_clients_windows_on_every_node() {
    let c = guarded_cluster(3);
    let admin = client_of(&c);

    // (c) Revocation: dev's open window is refused on every node once it applied the DELETE.
    let dev_key = IdentityKey::from_seed(&[21; 32]);
    let dev_id = ClientId::new("dev").unwrap();
    admin.register_client(&dev_id, &dev_key.public()).unwrap();
    let dev = open(&c, "dev", &dev_key);
    for id in 1..=3 {
        assert_eq!(probe(&c, id, &dev), Some(ErrorCode::NotFound), "n{id}");
    }
    let revoked = admin.revoke_client(&dev_id).expect("revoke dev");
    for id in 1..=3 {
        c.wait_applied(id, revoked.index, LONG);
        // Revocation closed the window: a request signed in it is answered like any request in a
        // window the node does not know (one 401 code, docs/api.md).
        assert_eq!(probe(&c, id, &dev), Some(ErrorCode::BadSignature), "n{id}");
        assert_eq!(
            open_refused(&c, id, "dev", &dev_key),
            Some(ErrorCode::ClientRevoked),
            "n{id}"
        );
    }
    // A revoked id stays revoked: re-enrolling it (same or another key) or rotating is refused.
    let other = IdentityKey::from_seed(&[22; 32]);
    for key in [&dev_key, &other] {
        let e = admin.register_client(&dev_id, &key.public()).unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::ClientRevoked), "{e}");
    }
    let e = admin.rotate_client(&dev_id, &other.public()).unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::ClientRevoked), "{e}");
    assert_eq!(probe(&c, 2, &dev), Some(ErrorCode::BadSignature));
    // Revoking it again answers the same; an unknown id is 404.
    admin.revoke_client(&dev_id).expect("revoking twice");
    let e = admin
        .revoke_client(&ClientId::new("nobody").unwrap())
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotFound), "{e}");

    // (d) Rotation: carol's windows under the old key close everywhere; the new key opens one.
    let old_key = IdentityKey::from_seed(&[31; 32]);
    let new_key = IdentityKey::from_seed(&[32; 32]);
    let carol = ClientId::new("carol").unwrap();
    admin.register_client(&carol, &old_key.public()).unwrap();
    let old_a = open(&c, "carol", &old_key);
    let old_b = open(&c, "carol", &old_key);
    let rotated = admin
        .rotate_client(&carol, &new_key.public())
        .expect("rotate carol");
    assert_eq!(rotated.windows_closed, 2);
    for id in 1..=3 {
        c.wait_applied(id, rotated.index, LONG);
        for old in [&old_a, &old_b] {
            assert_eq!(probe(&c, id, old), Some(ErrorCode::BadSignature), "n{id}");
        }
        assert_eq!(
            open_refused(&c, id, "carol", &old_key),
            Some(ErrorCode::BadSignature),
            "n{id}"
        );
    }
    let fresh = open(&c, "carol", &new_key);
    for id in 1..=3 {
        assert_eq!(probe(&c, id, &fresh), Some(ErrorCode::NotFound), "n{id}");
    }
    // Rotating an unknown client enrolls nothing.
    let e = admin
        .rotate_client(&ClientId::new("nobody").unwrap(), &new_key.public())
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotFound), "{e}");
}
