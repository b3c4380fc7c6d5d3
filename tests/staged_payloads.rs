//! Whole-system tests of staged payloads (`proxy::staging`): a write whose hashes the registry
//! committed but whose items were never distributed (its node died right after the commit, or the
//! answer to the commit was lost) is still read back verified, and its replicas are repaired.
//!
//! The fault is injected with the node's test hook `FAULT_SKIP_DISTRIBUTION` (a count in its data
//! directory, read at start): the next writes through that node commit and answer 503 without
//! distributing anything, which is what a node killed between the commit and the distribution
//! leaves behind. This is the regression test of a failure the SIGKILL load test found in CI:
//! an update acknowledged by the quorum whose answer the proxy never got left its entity reading
//! `502 drift_detected` for good, since no store held the committed content.

mod support;

use std::time::Duration;

use support::entities::{entity_cluster, hexad, via};
use support::{Cluster, wait_for};
use verisim_client::http::{Client, ClientError, RetryPolicy};
use verisim_client::wire::RegisterRequest;

const LONG: Duration = Duration::from_secs(30);

/// Arms n`n`'s fault hook for `count` writes (the node is restarted to read it).
fn skip_distribution(c: &mut Cluster, n: u64, count: u32) {
    std::fs::write(
        c.node(n).data_dir.join("FAULT_SKIP_DISTRIBUTION"),
        count.to_string(),
    )
    .expect("fault hook");
    assert!(c.node_mut(n).terminate(), "n{n} stops cleanly");
    c.node_mut(n).start();
    let commit = c.leader_commit();
    c.wait_applied(n, commit, LONG);
}

/// A client of node `n` only that tries once.
fn once(c: &Cluster, n: u64, template: &Client) -> Client {
    via(c, n, template).with_policy(RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    })
}

/// Registers `req` through n`n`, whose hook makes it answer 503 after the commit.
fn register_undistributed(c: &Cluster, n: u64, template: &Client, req: &RegisterRequest) {
    match once(c, n, template).register(req) {
        Err(ClientError::Api { status: 503, .. }) => {}
        other => panic!("{}: expected the injected 503, got {other:?}", req.id),
    }
}

/// Reads `req` through n`n`: every modality verified, at version 1, with `req`'s content.
fn read_back(c: &Cluster, n: u64, template: &Client, req: &RegisterRequest) -> Result<(), String> {
    let view = once(c, n, template)
        .get(&req.id, false)
        .map_err(|e| format!("read {} via n{n}: {e}", req.id))?;
    if !view.all_verified() || view.version != 1 {
        return Err(format!("{} via n{n}: {view:?}", req.id));
    }
    let graph = view.graph.data.as_ref().ok_or("no graph")?;
    if graph.properties != req.graph.properties {
        return Err(format!("{} via n{n}: graph {:?}", req.id, graph.properties));
    }
    Ok(())
}

fn sweep(c: &Cluster, n: u64) -> serde_json::Value {
    let r = c
        .node(n)
        .post("/admin/staging/sweep?settled_after_ms=0", None)
        .expect("sweep request");
    assert!(r.ok(), "sweep on n{n}: {r:?}");
    r.body
}

/// A registration committed through n1 but never distributed reads back verified through every
/// node (from n1's staged copy), the read repairs the replicas, and once they hold it the sweep
/// drops n1's copy: with n1 killed, the entity still reads back from the other two.
#[test]
fn a_committed_write_that_was_never_distributed_reads_back_and_repairs_its_replicas() {
    let (mut c, client, _) = entity_cluster();
    skip_distribution(&mut c, 1, 1);
    let req = hexad("undistributed", 1);
    register_undistributed(&c, 1, &client, &req);
    for n in [2, 3, 1] {
        read_back(&c, n, &client, &req).unwrap();
    }
    // The read's repair runs in the background: the sweep keeps the copy until a write quorum of
    // replicas holds it, then drops all four items.
    wait_for("n1's staged copy to be dropped", LONG, || {
        let r = sweep(&c, 1);
        (r["dropped"].as_u64() >= Some(4) && r["kept"] == 0).then_some(())
    });
    c.node_mut(1).kill9();
    for n in [2, 3] {
        read_back(&c, n, &client, &req).unwrap();
    }
}

/// The node that took the write is SIGKILLed right after the commit: its staged copy survives,
/// and once it is back the entity reads back verified through the others. The sweep alone (no
/// read) repairs the replicas of a second such write.
#[test]
fn a_staged_copy_survives_its_node_being_killed_and_the_sweep_repairs_without_a_read() {
    let (mut c, client, _) = entity_cluster();
    skip_distribution(&mut c, 1, 1);
    let first = hexad("killed-after-commit", 2);
    register_undistributed(&c, 1, &client, &first);
    c.node_mut(1).kill9();
    c.node_mut(1).start();
    let commit = c.leader_commit();
    c.wait_applied(1, commit, LONG);
    wait_for("the entity to read back through n2", LONG, || {
        read_back(&c, 2, &client, &first).ok()
    });
    read_back(&c, 3, &client, &first).unwrap();

    // The hook is spent (its file was removed when read): arm it again.
    skip_distribution(&mut c, 1, 1);
    let second = hexad("swept", 3);
    register_undistributed(&c, 1, &client, &second);
    let r = sweep(&c, 1);
    assert_eq!(r["kept"], 0, "{r}");
    assert!(r["dropped"].as_u64() >= Some(4), "{r}");
    c.node_mut(1).kill9();
    for n in [2, 3] {
        read_back(&c, n, &client, &second).unwrap();
    }
}
