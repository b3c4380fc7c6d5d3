//! Whole-system test of cluster time (issue 11, item 5), written as the attack: one node of three
//! runs with its clock two days ahead (libfaketime), leads, and proposes commands. Before cluster
//! time, its stamps became the registry clock: every window expired and remembered request ids
//! were purged on every node. Now the node is outvoted on its own clock, and nothing expires.
//!
//! Needs Debian's `faketime` package (`apt-get install faketime`); skips loudly without it.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use support::entities::{SCHEMA, client_of, hexad, signed_headers, via};
use support::{Cluster, Options, wait_for};
use verisim_client::auth::IdentityKey;
use verisim_client::http::now_ms;
use verisim_client::wire::{ClientId, EntityId};

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
const TWO_DAYS_MS: u64 = 2 * 24 * 60 * 60 * 1000;
/// How far a registry or cluster clock may be from true time here: the registry's step bound
/// (60 s) and slack for a slow machine; two days is far outside it.
const TOLERANCE_MS: u64 = 2 * 60 * 1000;
/// The node whose clock is wrong.
const FAST: u64 = 3;

fn clock_of(c: &Cluster, id: u64) -> Value {
    c.node(id).status().expect("status")["clock"].clone()
}

fn ms(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {v}"))
}

#[test]
fn a_node_two_days_ahead_expires_nothing_on_the_others() {
    if !Path::new(LIBFAKETIME).exists() {
        eprintln!(
            "SKIPPED: {LIBFAKETIME} is not installed (apt-get install faketime); \
             the clock-skew attack is NOT tested on this machine"
        );
        return;
    }
    let env = |k: &str, v: &str| (FAST, k.to_string(), v.to_string());
    let c = Cluster::start(Options {
        config: Some("[stores]\nschema_file = \"{dir}/schema.json\"\n".into()),
        files: vec![("schema.json".into(), SCHEMA.into())],
        node_env: vec![
            env("LD_PRELOAD", LIBFAKETIME),
            env("FAKETIME", "+2d"),
            env("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
        ..Options::default()
    });

    // The fast node's own clock is two days ahead (or the test proves nothing)...
    let fast = clock_of(&c, FAST);
    assert!(
        ms(&fast, "local_ms") > now_ms() + TWO_DAYS_MS - 60 * 60 * 1000,
        "libfaketime did not move n{FAST}'s clock: {fast}"
    );
    // ...yet once every node has heard its peers, every node's cluster time is the true time,
    // the fast node's included.
    wait_for(
        "every node's cluster time to be agreed and true",
        Duration::from_secs(30),
        || {
            (1..=3)
                .all(|id| {
                    let clock = clock_of(&c, id);
                    clock["agreed"] == true && ms(&clock, "cluster_ms").abs_diff(now_ms()) < 10_000
                })
                .then_some(())
        },
    );

    // A client on true time: registered, a window open, one write applied through an honest node
    // under a chosen request id (retried below, after the attack).
    let client = client_of(&c);
    let alice = ClientId::new("alice").unwrap();
    let identity = IdentityKey::from_seed(&[21; 32]);
    client
        .register_client(&alice, &identity.public())
        .expect("register alice");
    let session = client
        .open_window(&identity, &alice, Duration::from_secs(600))
        .expect("open a window");
    let first_req = hexad("e-before", 1);
    let first_body = serde_json::to_vec(&first_req).unwrap();
    let first_headers = signed_headers(&client, "POST", "/v1/entities", &first_body, "r-before");
    let first = c
        .node(1)
        .request("POST", "/v1/entities", &first_headers, &first_body)
        .expect("first write");
    assert_eq!(first.status, 201, "{first:?}");

    // The attack: the fast node leads and proposes (entities, a window, node addresses).
    c.transfer_to(FAST);
    let through_fast = via(&c, FAST, &client);
    for i in 0..5 {
        let w = through_fast
            .register(&hexad(&format!("e-fast-{i}"), 10 + i))
            .unwrap_or_else(|e| panic!("a true-time client is served by n{FAST}: {e}"));
        assert_eq!(w.version, 1);
    }
    let second = IdentityKey::from_seed(&[22; 32]);
    let bob = ClientId::new("bob").unwrap();
    through_fast
        .register_client(&bob, &second.public())
        .expect("register bob through the fast node");
    let bobs = client_of(&c);
    let bob_session = via(&c, FAST, &bobs)
        .open_window(&second, &bob, Duration::from_secs(600))
        .expect("bob opens a window through the fast node");
    assert!(
        bob_session.expires_at_ms < now_ms() + 700_000,
        "the window's expiry is measured in true time: {bob_session:?}"
    );
    let r = c
        .node(FAST)
        .put(
            "/admin/nodes/n9",
            &json!({"cluster_addr": "127.0.0.1:1", "http_addr": "127.0.0.1:2"}),
        )
        .expect("put node");
    assert!(r.ok(), "{r:?}");

    // No registry clock moved beyond true time, on any node.
    for id in 1..=3 {
        let clock = clock_of(&c, id);
        let registry = ms(&clock, "registry_ms");
        assert!(
            registry < now_ms() + TOLERANCE_MS,
            "n{id}'s registry clock was pushed: {clock}"
        );
    }

    // Alice's window has not expired: she is served on the honest nodes, and by the fast one.
    for id in 1..=3 {
        let one = via(&c, id, &client);
        let view = one
            .get(&EntityId::new("e-fast-0").unwrap(), false)
            .unwrap_or_else(|e| panic!("alice's window still works on n{id}: {e}"));
        assert_eq!(view.version, 1);
        one.register(&hexad(&format!("e-after-{id}"), 20 + id))
            .unwrap_or_else(|e| panic!("alice writes through n{id}: {e}"));
    }
    assert_eq!(client.session().unwrap().window, session.window);

    // Her request id is still remembered: the retry is answered with the first outcome, and
    // applies nothing again.
    let retry = c
        .node(2)
        .request("POST", "/v1/entities", &first_headers, &first_body)
        .expect("retry");
    assert_eq!(retry.status, first.status, "{retry:?}");
    assert_eq!(retry.body["version"], first.body["version"], "{retry:?}");
    let view = via(&c, 2, &client)
        .get(&EntityId::new("e-before").unwrap(), false)
        .expect("read e-before");
    assert_eq!(view.version, 1, "the retry applied nothing");
}
