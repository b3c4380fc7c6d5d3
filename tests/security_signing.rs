//! Whole-system tests of request signing (scheme v2), each written as the attack: a proxy on the
//! path rewrites or strips a header the server acts on, an old client signs with v1, a captured
//! read is replayed after the skew, a stranger probes for client and window ids, a flood of
//! unknown ids tries to make every request cost a Raft read. Each is refused with its stable code
//! and changes nothing.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use support::entities::{entity_cluster, hexad, signed_headers_at};
use support::{Cluster, Reply};
use verisim_client::auth::{CoveredHeaders, IdentityKey, OpenWindow, WindowSecret};
use verisim_client::http::{Client, now_ms};
use verisim_client::wire::{ClientId, EntityId, ErrorCode, WindowId, routes};

const JSON: Option<&str> = Some("application/json");

/// Sends `headers` (as built by `signed_headers_at`, possibly tampered with) to node `n`.
fn send(
    c: &Cluster,
    n: u64,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Reply {
    c.node(n)
        .request(method, path, headers, body)
        .expect("request")
}

/// Replaces (or with `None` removes) header `name`, as a proxy on the path would.
fn rewrite(headers: &mut Vec<(&'static str, String)>, name: &'static str, value: Option<&str>) {
    headers.retain(|(k, _)| *k != name);
    if let Some(v) = value {
        headers.push((name, v.to_string()));
    }
}

fn version_of(client: &Client, id: &EntityId) -> u64 {
    client.get(id, false).expect("get").version
}

#[test]
fn a_rewritten_if_match_or_content_type_is_refused_and_changes_nothing() {
    let (c, client, _) = entity_cluster();
    let original = hexad("e1", 1);
    let id = original.id.clone();
    client.register(&original).expect("register");
    let path = routes::entity(&id);

    // The client signs an update expecting version 7 (it would conflict); a proxy on the path
    // rewrites `If-Match: 7` to the current `1`.
    let (_, update) = hexad("e1", 2).into_update();
    let body = serde_json::to_vec(&update).unwrap();
    let covered = CoveredHeaders {
        content_type: JSON,
        if_match: Some("7"),
    };
    let mut h = signed_headers_at(&client, "PUT", &path, &covered, &body, "r-put", now_ms());
    rewrite(&mut h, "if-match", Some("1"));
    let r = send(&c, 1, "PUT", &path, &h, &body);
    assert_eq!((r.status, r.code()), (401, Some("bad_signature")), "{r:?}");
    let view = client.get(&id, false).expect("get");
    assert_eq!(view.version, 1, "the update was not applied");
    assert_eq!(view.tensor.data.as_ref(), Some(&original.tensor));
    // Untouched, the same signed request reaches the registry and conflicts, as the client meant.
    let h = signed_headers_at(&client, "PUT", &path, &covered, &body, "r-put-2", now_ms());
    let r = send(&c, 1, "PUT", &path, &h, &body);
    assert_eq!(
        (r.status, r.code()),
        (409, Some("version_conflict")),
        "{r:?}"
    );

    // A conditional delete of a stale version, rewritten to the current one, or stripped to an
    // unconditional delete.
    for (value, request) in [(Some("1"), "r-del-1"), (None, "r-del-2")] {
        let covered = CoveredHeaders {
            content_type: None,
            if_match: Some("0"),
        };
        let mut h = signed_headers_at(&client, "DELETE", &path, &covered, b"", request, now_ms());
        rewrite(&mut h, "if-match", value);
        let r = send(&c, 2, "DELETE", &path, &h, b"");
        assert_eq!(
            (r.status, r.code()),
            (401, Some("bad_signature")),
            "{value:?}: {r:?}"
        );
        assert_eq!(version_of(&client, &id), 1, "nothing was deleted");
    }
    // An `If-Match` added to a request signed without one.
    let mut h = signed_headers_at(
        &client,
        "DELETE",
        &path,
        &CoveredHeaders::NONE,
        b"",
        "r-del-3",
        now_ms(),
    );
    rewrite(&mut h, "if-match", Some("1"));
    let r = send(&c, 3, "DELETE", &path, &h, b"");
    assert_eq!((r.status, r.code()), (401, Some("bad_signature")), "{r:?}");
    // The same header twice, the signed value first.
    let covered = CoveredHeaders {
        content_type: None,
        if_match: Some("1"),
    };
    let mut h = signed_headers_at(&client, "DELETE", &path, &covered, b"", "r-del-4", now_ms());
    h.push(("if-match", "5".into()));
    let r = send(&c, 3, "DELETE", &path, &h, b"");
    assert_eq!((r.status, r.code()), (401, Some("malformed_auth")), "{r:?}");
    assert_eq!(version_of(&client, &id), 1, "nothing was deleted");

    // A registration whose content type is swapped, or dropped.
    let fresh = hexad("e2", 3);
    let body = serde_json::to_vec(&fresh).unwrap();
    for (value, request) in [
        (Some("text/plain"), "r-ct-1"),
        (Some("application/json; charset=latin1"), "r-ct-2"),
    ] {
        let covered = CoveredHeaders {
            content_type: JSON,
            if_match: None,
        };
        let mut h = signed_headers_at(
            &client,
            "POST",
            routes::ENTITIES,
            &covered,
            &body,
            request,
            now_ms(),
        );
        rewrite(&mut h, "content-type", value);
        let r = send(&c, 1, "POST", routes::ENTITIES, &h, &body);
        assert_eq!(
            (r.status, r.code()),
            (401, Some("bad_signature")),
            "{value:?}: {r:?}"
        );
    }
    let e = client.get(&fresh.id, false).unwrap_err();
    assert_eq!(
        e.code(),
        Some(ErrorCode::NotFound),
        "nothing was registered"
    );

    // The honest client (the library signs v2) still updates and deletes.
    let w = client.update(&id, &update, 1).expect("update");
    assert_eq!(w.version, 2);
    client.delete(&id, Some(2)).expect("delete");
}

#[test]
fn old_schemes_stale_reads_and_id_probes_are_refused_alike() {
    let (c, client, _) = entity_cluster();
    let e = hexad("e1", 1);
    client.register(&e).expect("register");
    let path = format!("{}?allow_drift=true", routes::entity(&e.id));

    // A v1 client: the bare hex HMAC in `X-Verisim-Signature`.
    let mut h = signed_headers_at(
        &client,
        "GET",
        &path,
        &CoveredHeaders::NONE,
        b"",
        "r-v1",
        now_ms(),
    );
    let v2 = h
        .iter()
        .find(|(k, _)| *k == "x-verisim-signature")
        .unwrap()
        .1
        .clone();
    rewrite(
        &mut h,
        "x-verisim-signature",
        Some(v2.trim_start_matches("v2=")),
    );
    let r = send(&c, 1, "GET", &path, &h, b"");
    assert_eq!(
        (r.status, r.code()),
        (401, Some("unsupported_scheme")),
        "{r:?}"
    );

    // A signed read captured and replayed later than the skew (300 s): refused, from any node.
    let captured_at = now_ms() - 301_000;
    let h = signed_headers_at(
        &client,
        "GET",
        &path,
        &CoveredHeaders::NONE,
        b"",
        "r-old",
        captured_at,
    );
    for n in 1..=3 {
        let r = send(&c, n, "GET", &path, &h, b"");
        assert_eq!(
            (r.status, r.code()),
            (401, Some("timestamp_skew")),
            "n{n}: {r:?}"
        );
    }
    // Within the skew it is served (reads are idempotent).
    let h = signed_headers_at(
        &client,
        "GET",
        &path,
        &CoveredHeaders::NONE,
        b"",
        "r-new",
        now_ms(),
    );
    assert_eq!(send(&c, 2, "GET", &path, &h, b"").status, 200);

    // A stranger probing ids: an unknown client, an unknown window of a known client, a known
    // window with a wrong key get the very same answer, code and message.
    let session = client.session().expect("session");
    let probe = |client_id: &str, window_id: &str, key: [u8; 32]| -> Reply {
        let mut s = session.clone();
        s.client = ClientId::new(client_id).unwrap();
        s.window = WindowId::new(window_id).unwrap();
        s.key = verisim_client::auth::WindowKey::from_bytes(key);
        let stranger = Client::new(&[format!("http://{}", c.node(3).http.unwrap())]).unwrap();
        stranger.set_session(Some(s));
        let h = signed_headers_at(
            &stranger,
            "GET",
            &path,
            &CoveredHeaders::NONE,
            b"",
            "r-probe",
            now_ms(),
        );
        send(&c, 3, "GET", &path, &h, b"")
    };
    let known = session.window.to_string();
    let answers = [
        probe("mallory", &known, [7; 32]),
        probe("alice", "w-does-not-exist", [7; 32]),
        probe("alice", &known, [7; 32]),
        probe("mallory", "w-does-not-exist", [7; 32]),
    ];
    for a in &answers {
        assert_eq!((a.status, a.code()), (401, Some("bad_signature")), "{a:?}");
        assert_eq!(a.body, answers[0].body);
    }

    // The same for a window opening: an unknown client, or a known one with a stranger's key.
    let cluster = client.cluster_key().expect("cluster key");
    let stranger = IdentityKey::from_seed(&[99; 32]);
    let opening = |who: &str| {
        let req = OpenWindow {
            cluster,
            client: ClientId::new(who).unwrap(),
            window: WindowId::new("w-probe").unwrap(),
            window_public_key: WindowSecret::from_seed(&[5; 32]).public(),
            ttl_ms: 60_000,
            timestamp_ms: now_ms(),
        }
        .sign(&stranger);
        c.node(1)
            .post(routes::WINDOWS, Some(serde_json::to_value(req).unwrap()))
            .expect("post")
    };
    let (unknown, wrong_key) = (opening("mallory"), opening("alice"));
    assert_eq!(
        (unknown.status, unknown.code()),
        (401, Some("bad_signature")),
        "{unknown:?}"
    );
    assert_eq!(unknown.body, wrong_key.body);
}

/// `verisim_proxy_catch_up_barriers_total` of node `n`.
fn catch_up_barriers(c: &Cluster, n: u64) -> u64 {
    let r = c.node(n).get("/metrics").expect("metrics");
    let text = r.body.as_str().expect("metrics text").to_string();
    text.lines()
        .find_map(|l| l.strip_prefix("verisim_proxy_catch_up_barriers_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the catch-up counter")
}

#[test]
fn a_flood_of_unknown_ids_costs_a_bounded_number_of_read_barriers() {
    let (c, client, _) = entity_cluster();
    let c = Arc::new(c);
    let session = client.session().expect("session");
    let before = catch_up_barriers(&c, 1);
    let refused = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    // 500 requests with random window ids, from 25 concurrent connections.
    let threads: Vec<_> = (0..25)
        .map(|t| {
            let (c, session, refused) = (c.clone(), session.clone(), refused.clone());
            std::thread::spawn(move || {
                let attacker =
                    Client::new(&[format!("http://{}", c.node(1).http.unwrap())]).unwrap();
                for i in 0..20 {
                    let mut s = session.clone();
                    s.window = WindowId::new(format!("w-random-{t}-{i}")).unwrap();
                    attacker.set_session(Some(s));
                    let path = "/v1/entities/e1";
                    let h = signed_headers_at(
                        &attacker,
                        "GET",
                        path,
                        &CoveredHeaders::NONE,
                        b"",
                        &format!("r-{t}-{i}"),
                        now_ms(),
                    );
                    let r = c.node(1).request("GET", path, &h, b"").expect("request");
                    assert_eq!((r.status, r.code()), (401, Some("bad_signature")), "{r:?}");
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("attacker thread");
    }
    let elapsed = start.elapsed();
    assert_eq!(refused.load(Ordering::Relaxed), 500);
    let started = catch_up_barriers(&c, 1) - before;
    // At most one barrier per 50 ms (plus the first), and far fewer than one per request.
    let bound = elapsed.as_millis() as u64 / 50 + 1;
    assert!(started <= bound, "{started} barriers in {elapsed:?}");
    assert!(
        started < 100,
        "{started} barriers for 500 requests in {elapsed:?}"
    );
    assert!(
        started >= 1,
        "unknown ids are looked up again after a barrier"
    );

    // An honest client whose window was opened through another node a moment ago is still served
    // through this one (the catch-up finds it).
    let identity = IdentityKey::from_seed(&[21; 32]);
    let via2 = Client::new(&[format!("http://{}", c.node(2).http.unwrap())]).unwrap();
    via2.open_window(
        &identity,
        &ClientId::new("alice").unwrap(),
        Duration::from_secs(60),
    )
    .expect("open through n2");
    let via1 = Client::new(&[format!("http://{}", c.node(1).http.unwrap())]).unwrap();
    via1.set_session(via2.session());
    let e = hexad("e-after", 4);
    via1.register(&e)
        .expect("register through n1 in the new window");
}
