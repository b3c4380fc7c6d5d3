//! Whole-system tests of entity ownership and grants on real node processes, written as the
//! attacks: a second client tries to overwrite, conditionally overwrite, delete, grant itself, read
//! and find the first client's entity; a grantee's access follows the owner's grants.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::Cluster;
use support::entities::{client_of, entity_cluster, hexad, hexad_with, via};
use verisim_client::auth::IdentityKey;
use verisim_client::http::{Client, ClientError};
use verisim_client::wire::{
    Access, ClientId, Direction, EntityId, EntityView, ErrorCode, GraphNeighboursRequest,
    GraphPathRequest, GraphTraverseRequest, RegisterRequest, SemanticByTypeRequest, TensorData,
    TensorPayload, TensorSliceRequest, VectorSearchRequest,
};

/// Registers client `name` (identity key from seed `[seed; 32]`) through `admin` and answers a
/// client of every node with a window open for it.
fn another_client(c: &Cluster, admin: &Client, name: &str, seed: u8) -> Client {
    let id = ClientId::new(name).unwrap();
    let key = IdentityKey::from_seed(&[seed; 32]);
    admin
        .register_client(&id, &key.public())
        .unwrap_or_else(|e| panic!("register {name}: {e}"));
    let client = client_of(c);
    client
        .open_window(&key, &id, Duration::from_secs(600))
        .unwrap_or_else(|e| panic!("open a window for {name}: {e}"));
    client
}

fn id(s: &str) -> EntityId {
    EntityId::new(s).unwrap()
}

fn client_id(s: &str) -> ClientId {
    ClientId::new(s).unwrap()
}

/// The code of a refused call; panics if the call succeeded.
fn refused<T: std::fmt::Debug>(what: &str, r: Result<T, ClientError>) -> ErrorCode {
    match r {
        Ok(v) => panic!("{what} was accepted: {v:?}"),
        Err(e) => e
            .code()
            .unwrap_or_else(|| panic!("{what}: no error code in {e}")),
    }
}

fn search(client: &Client, req: &RegisterRequest, k: u32) -> Vec<EntityId> {
    client
        .search_vector(&VectorSearchRequest {
            collection: "default".into(),
            vector: req.vector.values.clone(),
            k,
            exact: true,
            ef: None,
        })
        .expect("vector search")
        .hits
        .into_iter()
        .map(|h| h.id)
        .collect()
}

/// What the owner reads is exactly what it registered: the stores were not touched.
fn assert_unchanged(view: &EntityView, req: &RegisterRequest, version: u64) {
    assert_eq!(view.version, version);
    assert!(view.all_verified(), "{view:?}");
    assert_eq!(view.graph.data.as_ref(), Some(&req.graph));
    assert_eq!(view.vector.data.as_ref(), Some(&req.vector));
    assert_eq!(view.semantic.data.as_ref(), Some(&req.semantic));
    assert_eq!(view.owner, Some(client_id("alice")));
}

#[test]
fn a_stranger_cannot_change_delete_grant_itself_read_or_find_an_entity() {
    let (c, alice, _) = entity_cluster();
    // alice's entity has an edge to bob's, so bob's incoming edges would name it.
    let secret = hexad_with("secret", 7, &["bob-1".to_string()], |noise| {
        TensorPayload::from_typed(vec![2, 2], &TensorData::F32(noise.f32s(4)))
    });
    let written = alice.register(&secret).expect("alice registers");
    let bob = another_client(&c, &alice, "bob", 41);
    let mine = hexad("bob-1", 8);
    bob.register(&mine).expect("bob registers his own");

    let (sid, update) = hexad("secret", 99).into_update();
    for node in 1..=3u64 {
        let b = via(&c, node, &bob);
        // Overwrite it: plain, with the right version, with a wrong one. An entity bob may not
        // read is answered as one that does not exist (no version is leaked either).
        for v in [1, 7] {
            assert_eq!(
                refused("bob's update", b.update(&sid, &update, v)),
                ErrorCode::NotFound
            );
        }
        assert_eq!(
            refused(
                "bob's update of a ghost",
                b.update(&id("ghost"), &update, 1)
            ),
            ErrorCode::NotFound,
            "a hidden entity and a missing one look the same"
        );
        // Delete it, with and without a version.
        assert_eq!(
            refused("bob's delete", b.delete(&sid, None)),
            ErrorCode::NotFound
        );
        assert_eq!(
            refused("bob's conditional delete", b.delete(&sid, Some(1))),
            ErrorCode::NotFound
        );
        // Grant himself access, or withdraw alice's nothing.
        assert_eq!(
            refused(
                "bob granting himself",
                b.grant(&sid, &client_id("bob"), Access::Write)
            ),
            ErrorCode::NotFound
        );
        assert_eq!(
            refused(
                "bob revoking a grant",
                b.revoke_grant(&sid, &client_id("alice"))
            ),
            ErrorCode::NotFound
        );
        // Register it afresh over alice's: a conflict, not a takeover.
        assert_eq!(
            refused("bob re-registering", b.register(&secret)),
            ErrorCode::VersionConflict
        );
        // Read it, directly or through its modalities.
        assert_eq!(
            refused("bob's get", b.get(&sid, false)),
            ErrorCode::NotFound
        );
        assert_eq!(
            refused(
                "bob's slice",
                b.tensor_slice(&TensorSliceRequest {
                    id: sid.clone(),
                    ranges: vec![[0, 1], [0, 1]],
                })
            ),
            ErrorCode::NotFound
        );
        assert_eq!(
            refused(
                "bob's traversal",
                b.graph_traverse(&GraphTraverseRequest {
                    start: sid.clone(),
                    max_hops: 2,
                    direction: Direction::Out,
                    predicate: None,
                })
            ),
            ErrorCode::NotFound
        );
        // Find it: by its own vector (k=2, but bob may read only one entity), by its edge into
        // bob's entity, by a path, by type.
        assert_eq!(search(&b, &secret, 2), vec![id("bob-1")]);
        let incoming = b
            .graph_neighbours(&GraphNeighboursRequest {
                id: id("bob-1"),
                direction: Direction::In,
                predicate: None,
            })
            .expect("bob's incoming edges");
        assert!(incoming.ids.is_empty(), "{incoming:?}");
        let both = b
            .graph_neighbours(&GraphNeighboursRequest {
                id: id("bob-1"),
                direction: Direction::Both,
                predicate: None,
            })
            .expect("bob's edges");
        assert!(!both.ids.contains(&sid), "{both:?}");
        let path = b
            .graph_path(&GraphPathRequest {
                from: id("bob-1"),
                to: sid.clone(),
                max_hops: 3,
                direction: Direction::In,
                predicate: None,
            })
            .expect("bob's path");
        assert_eq!(path.path, None);
        let by_type = b
            .semantic_by_type(&SemanticByTypeRequest {
                type_iri: "ex:Thing".into(),
                include_subtypes: true,
            })
            .expect("bob's by-type");
        assert_eq!(by_type.ids, vec![id("bob-1")]);
    }

    // The owner still reads version 1 with its own data, and the stores hold the registered
    // hashes. She may not read bob's entity either.
    for node in 1..=3u64 {
        let view = via(&c, node, &alice).get(&sid, false).expect("alice reads");
        assert_unchanged(&view, &secret, 1);
        assert_eq!(view.graph.hash, written.hashes.graph);
        assert_eq!(view.vector.hash, written.hashes.vector);
        assert_eq!(view.tensor.hash, written.hashes.tensor);
        assert_eq!(view.semantic.hash, written.hashes.semantic);
        assert_eq!(view.grants, Some(BTreeMap::new()));
    }
    assert_eq!(
        refused("alice's get of bob's", alice.get(&id("bob-1"), false)),
        ErrorCode::NotFound
    );
    // Her own edge to bob-1 is her data: her outgoing neighbours name it.
    let out = alice
        .graph_neighbours(&GraphNeighboursRequest {
            id: sid.clone(),
            direction: Direction::Out,
            predicate: None,
        })
        .expect("alice's edges");
    assert_eq!(out.ids, vec![id("bob-1")]);
    // The operator sees everything.
    let admin = c.node(2).get("/admin/entities/secret").expect("admin get");
    assert_eq!(admin.status, 200, "{admin:?}");
    assert_eq!(admin.body["owner"], "alice");
    assert_eq!(admin.body["version"], 1);
    assert_eq!(admin.body["grants"], serde_json::json!({}));
    let admin = c.node(3).get("/admin/entities/bob-1").expect("admin get");
    assert_eq!(admin.body["owner"], "bob");
}

#[test]
fn grants_let_a_client_read_then_write_until_revoked() {
    let (c, alice, _) = entity_cluster();
    let shared = hexad("shared", 3);
    let sid = shared.id.clone();
    alice.register(&shared).expect("alice registers");
    let bob = another_client(&c, &alice, "bob", 42);
    let bob_id = client_id("bob");
    assert_eq!(
        refused("bob's get", bob.get(&sid, false)),
        ErrorCode::NotFound
    );

    // Read: bob sees and finds it, but may not change it or grant.
    let g = alice
        .grant(&sid, &bob_id, Access::Read)
        .expect("grant read");
    assert_eq!(g.access, Some(Access::Read));
    for node in 1..=3u64 {
        let b = via(&c, node, &bob);
        let view = b.get(&sid, false).expect("bob reads");
        assert_eq!(view.owner, Some(client_id("alice")));
        assert_eq!(view.grants, None, "only the owner sees the grants");
        assert_eq!(search(&b, &shared, 1), vec![sid.clone()]);
    }
    let (_, update) = hexad("shared", 4).into_update();
    assert_eq!(
        refused("a reader's update", bob.update(&sid, &update, 1)),
        ErrorCode::Forbidden
    );
    assert_eq!(
        refused("a reader's delete", bob.delete(&sid, Some(1))),
        ErrorCode::Forbidden
    );
    assert_eq!(
        refused(
            "a reader granting himself write",
            bob.grant(&sid, &bob_id, Access::Write)
        ),
        ErrorCode::Forbidden
    );
    assert_unchanged(&alice.get(&sid, false).expect("alice reads"), &shared, 1);
    assert_eq!(
        alice.get(&sid, false).unwrap().grants,
        Some(BTreeMap::from([(bob_id.clone(), Access::Read)]))
    );
    // Granting the owner or an unknown client is bad input.
    assert_eq!(
        refused(
            "a grant to the owner",
            alice.grant(&sid, &client_id("alice"), Access::Read)
        ),
        ErrorCode::InvalidInput
    );
    assert_eq!(
        refused(
            "a grant to nobody",
            alice.grant(&sid, &client_id("nobody"), Access::Read)
        ),
        ErrorCode::InvalidInput
    );

    // Write: bob updates; alice stays the owner and reads bob's version.
    alice
        .grant(&sid, &bob_id, Access::Write)
        .expect("grant write");
    let w = via(&c, 3, &bob)
        .update(&sid, &update, 1)
        .expect("a writer updates");
    assert_eq!(w.version, 2);
    let view = via(&c, 1, &alice).get(&sid, false).expect("alice reads v2");
    assert_eq!(view.version, 2);
    assert_eq!(view.owner, Some(client_id("alice")));
    assert_eq!(view.vector.data.as_ref(), Some(&update.vector));
    assert_eq!(
        refused(
            "a writer granting",
            bob.grant(&sid, &client_id("alice"), Access::Read)
        ),
        ErrorCode::Forbidden
    );

    // Revoked: nothing works for bob any more, through any node, at once.
    let r = alice.revoke_grant(&sid, &bob_id).expect("revoke");
    assert_eq!(r.access, None);
    let (_, again) = hexad("shared", 5).into_update();
    for node in 1..=3u64 {
        let b = via(&c, node, &bob);
        assert_eq!(
            refused("a revoked update", b.update(&sid, &again, 2)),
            ErrorCode::NotFound
        );
        assert_eq!(
            refused("a revoked delete", b.delete(&sid, None)),
            ErrorCode::NotFound
        );
        assert_eq!(
            refused("a revoked get", b.get(&sid, false)),
            ErrorCode::NotFound
        );
        assert!(search(&b, &shared, 3).is_empty());
    }
    let view = alice.get(&sid, false).expect("alice reads");
    assert_eq!(view.version, 2);
    assert_eq!(view.vector.data.as_ref(), Some(&update.vector));
    assert_eq!(view.grants, Some(BTreeMap::new()));
    // Revoking again is harmless; the owner deletes.
    alice.revoke_grant(&sid, &bob_id).expect("revoke again");
    alice.delete(&sid, Some(2)).expect("the owner deletes");
    assert_eq!(
        refused("a deleted get", alice.get(&sid, false)),
        ErrorCode::NotFound
    );
}
