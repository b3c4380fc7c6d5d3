//! Whole-system check of the `stores` subtree in a running node: the four store actors start under
//! it, and one killed through the admin API is restarted by its supervisor while the others keep
//! running (`one_for_one`).

mod support;

use std::time::Duration;

use support::{Cluster, Options, restart_count, wait_for};

const LONG: Duration = Duration::from_secs(30);

#[test]
fn a_killed_store_actor_in_a_node_is_restarted_alone() {
    let c = Cluster::start(Options {
        nodes: 1,
        ..Options::default()
    });
    let tree = |c: &Cluster| c.node(1).get("/admin/tree").ok().map(|r| r.body);
    let t = wait_for("the stores subtree", LONG, || {
        tree(&c).filter(|t| restart_count(t, "semantic").is_some())
    });
    for m in ["graph", "vector", "tensor", "semantic"] {
        assert_eq!(restart_count(&t, m), Some(0), "{m}: {t}");
    }
    let r = c
        .node(1)
        .post("/admin/kill/verisim.store.vector", None)
        .expect("kill request");
    assert!(r.ok(), "kill refused: {r:?}");
    let t = wait_for("the vector store to be restarted", LONG, || {
        tree(&c).filter(|t| restart_count(t, "vector") == Some(1))
    });
    for m in ["graph", "tensor", "semantic"] {
        assert_eq!(restart_count(&t, m), Some(0), "{m} restarted too: {t}");
    }
    // The registry kept running.
    c.put("k", "v");
    assert_eq!(c.get("k").as_deref(), Some("v"));
}
