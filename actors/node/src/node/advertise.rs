//! Each node records its own addresses in the registry (`SetNode`, through the quorum) once it can
//! commit, so that operators and tools find every member's HTTP API from any one of them (`GET
//! /admin/members`, `verisim status --cluster`), as etcd's member list carries client URLs.

use std::time::Duration;

use crate::consensus::endpoint::node_name;
use crate::proxy::ProxyState;
use crate::registry::{Command, NodeInfo, NodeName};

/// Commits `info` as this node's addresses unless the registry holds them already; retries (with
/// backoff up to 5 s) until it is done: a node starts before it can commit.
pub async fn advertise(proxy: ProxyState, info: NodeInfo) {
    let Ok(me) = NodeName::new(node_name(proxy.id)) else {
        return;
    };
    let mut pause = Duration::from_millis(200);
    loop {
        if proxy.read_barrier().await.is_ok() {
            if proxy.replica.read().state.nodes().get(&me) == Some(&info) {
                return;
            }
            match proxy
                .commit(Command::SetNode {
                    node: me.clone(),
                    info: info.clone(),
                })
                .await
            {
                Ok(_) => {
                    tracing::info!(http = %info.http_addr, cluster = %info.cluster_addr, "addresses recorded in the registry");
                    return;
                }
                Err(e) => {
                    tracing::debug!(error = %e.message, "recording this node's addresses: not yet")
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}
