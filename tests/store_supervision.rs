//! Whole-system check of the `stores` subtree in a running node: the four store actors start under
//! it, and one killed through the admin API is restarted by its supervisor while the others keep
//! running (`one_for_one`). The tree is read with the fault-injection kit's `Tree` (paths, restart
//! counts, shape) from `GET /admin/tree`.

mod support;

use std::time::Duration;

use support::{Cluster, Options, wait_for};
use verisim_faultkit::Tree;
use verisim_supervision::ChildState;

const LONG: Duration = Duration::from_secs(30);

const STORES: [&str; 4] = [
    "stores/graph",
    "stores/vector",
    "stores/tensor",
    "stores/semantic",
];

#[test]
fn a_killed_store_actor_in_a_node_is_restarted_alone() {
    let c = Cluster::start(Options {
        nodes: 1,
        ..Options::default()
    });
    let tree = |c: &Cluster| {
        let r = c.node(1).get("/admin/tree").ok()?;
        Tree::from_json(r.body).ok()
    };
    let t = wait_for("the stores subtree", LONG, || {
        tree(&c).filter(|t| t.child("stores/semantic").is_some())
    });
    let shape = t.shape();
    assert!(
        shape.contains("stores(graph vector tensor semantic)"),
        "{shape}"
    );
    t.expect_restarts(&STORES.map(|p| (p, 0)))
        .unwrap_or_else(|e| panic!("{e}"));
    let r = c
        .node(1)
        .post("/admin/kill/verisim.store.vector", None)
        .expect("kill request");
    assert!(r.ok(), "kill refused: {r:?}");
    let t = wait_for("the vector store to be restarted", LONG, || {
        tree(&c).filter(|t| {
            t.restart_count("stores/vector") == Some(1)
                && STORES
                    .iter()
                    .all(|p| t.state(p) == Some(ChildState::Running))
        })
    });
    t.expect_restarts(&[
        ("stores", 0),
        ("stores/graph", 0),
        ("stores/vector", 1),
        ("stores/tensor", 0),
        ("stores/semantic", 0),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    // The registry kept running.
    c.put("k", "v");
    assert_eq!(c.get("k").as_deref(), Some("v"));
}
