//! The cluster layer as a subtree of a node's supervision tree.
//!
//! ```text
//! cluster     one_for_all (5 restarts in 10 s)
//! ├── server      ractor_cluster NodeServer   (registered as `verisim.cluster.server`)
//! └── connector   dialling, heartbeats, peers (registered as `verisim.cluster.connector`)
//! ```
//! The two are restarted together: a new connector must subscribe to the server's session events
//! from the start, and a new server has no sessions for an old connector to track. Every
//! connection drops when they restart; peers redial and process-group members reappear, as after
//! any network failure. The [`ClusterHandle`] returned alongside the spec finds the current
//! actors by name, so it stays valid across restarts.

use std::time::Duration;

use ractor::{Actor, ActorCell, ActorRef};
use ractor_cluster::NodeServerMessage;
use verisim_supervision::{ChildSpec, StartError, Strategy, SupervisorSpec};

use crate::config::ClusterConfig;
use crate::connector::Connector;
use crate::discovery::Discovery;
use crate::node::{ClusterError, ClusterHandle, Parts, Prepared};

/// The registered name of the node server.
pub const NODE_SERVER_NAME: &str = "verisim.cluster.server";
/// The registered name of the connector.
pub const CONNECTOR_NAME: &str = "verisim.cluster.connector";

/// Builds the `cluster` subtree for `config` and a handle onto it. Nothing runs until the spec is
/// started (as the first child of a node's tree, so that everything after it finds the cluster up).
///
/// # Errors
/// An unusable configuration, cookie or TLS material, or no free port when port 0 is configured.
pub fn cluster_subtree(
    config: ClusterConfig,
) -> Result<(SupervisorSpec, ClusterHandle), ClusterError> {
    let prepared = Prepared::new(config)?;
    let handle = ClusterHandle {
        node_name: prepared.config.node_name.clone(),
        listen: prepared.listen,
        max_frame_bytes: prepared.config.max_frame_bytes,
        parts: Parts::Supervised,
        discovery: Discovery::new(
            prepared.config.node_name.clone(),
            prepared.directory.clone(),
        ),
    };
    let for_server = prepared.clone();
    let server = ChildSpec::new("server", move |sup: ActorCell| {
        let prepared = for_server.clone();
        async move {
            let server = prepared.node_server().map_err(start_err)?;
            let (a, _) = Actor::spawn_linked(Some(NODE_SERVER_NAME.to_owned()), server, (), sup)
                .await
                .map_err(start_err)?;
            Ok(a.get_cell())
        }
    });
    let connector = ChildSpec::new("connector", move |sup: ActorCell| {
        let prepared = prepared.clone();
        async move {
            let server = ActorRef::<NodeServerMessage>::where_is(NODE_SERVER_NAME)
                .ok_or_else(|| StartError("the node server is not running".into()))?;
            let args = prepared.connector_args(server).map_err(start_err)?;
            let (a, _) = Actor::spawn_linked(Some(CONNECTOR_NAME.to_owned()), Connector, args, sup)
                .await
                .map_err(start_err)?;
            Ok(a.get_cell())
        }
    });
    let spec = SupervisorSpec::new("cluster", Strategy::OneForAll)
        .intensity(5, Duration::from_secs(10))
        .child(server)
        .child(connector);
    Ok((spec, handle))
}

fn start_err(e: impl std::fmt::Display) -> StartError {
    StartError(e.to_string())
}
