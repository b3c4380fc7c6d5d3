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

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ractor::{Actor, ActorCell, ActorRef};
use ractor_cluster::NodeServerMessage;
use verisim_supervision::{ChildSpec, StartError, Strategy, SupervisorSpec};

use crate::config::ClusterConfig;
use crate::connector::Connector;
use crate::discovery::Discovery;
use crate::node::{ClusterError, ClusterHandle, Prepared};

// Defined in `node`, whose handle finds the supervised actors by them; public here as before.
pub use crate::node::{CONNECTOR_NAME, NODE_SERVER_NAME};

/// How long a restarted node server waits for its predecessor's listening socket to close.
const PREDECESSOR_RELEASE_DEADLINE: Duration = Duration::from_secs(5);

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
        keys: prepared.keys.clone(),
        discovery: Discovery::new(
            prepared.config.node_name.clone(),
            prepared.directory.clone(),
        ),
    };
    let for_server = prepared.clone();
    let started_once = Arc::new(AtomicBool::new(false));
    let server = ChildSpec::new("server", move |sup: ActorCell| {
        let prepared = for_server.clone();
        let started_once = started_once.clone();
        async move {
            // ractor kills the old server's listener without waiting for it, so on a restart its
            // socket may still be bound for a moment. Without this wait the new server's bind fails
            // and every retry counts against the subtree's intensity within microseconds. A first
            // start does not wait: a port taken by another program is reported at once.
            if started_once.load(Ordering::Acquire) {
                wait_until_bindable(prepared.listen, PREDECESSOR_RELEASE_DEADLINE)
                    .await
                    .map_err(start_err)?;
            }
            let server = prepared.node_server().map_err(start_err)?;
            let (a, _) = Actor::spawn_linked(Some(NODE_SERVER_NAME.to_owned()), server, (), sup)
                .await
                .map_err(start_err)?;
            prepared.announce(&a).map_err(start_err)?;
            started_once.store(true, Ordering::Release);
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

/// Waits until `addr` can be bound the way the node server binds it (`SO_REUSEADDR`, as tokio
/// does), polling until `deadline`. Linux refuses such a bind while another socket listens on
/// the address, so success means the old listener is gone.
///
/// # Errors
/// [`ClusterError::Bind`] with the last bind error once the deadline has passed.
pub(crate) async fn wait_until_bindable(
    addr: SocketAddr,
    deadline: Duration,
) -> Result<(), ClusterError> {
    let until = Instant::now() + deadline;
    loop {
        let attempt = (|| {
            let socket = if addr.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            socket.set_reuseaddr(true)?;
            socket.bind(addr)
        })();
        match attempt {
            Ok(()) => return Ok(()),
            Err(source) if Instant::now() >= until => {
                return Err(ClusterError::Bind { addr, source });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loopback_listener() -> (std::net::TcpListener, SocketAddr) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let addr = l.local_addr().expect("local address");
        (l, addr)
    }

    #[tokio::test]
    async fn a_port_is_bindable_once_its_listener_has_closed() {
        let (held, addr) = loopback_listener();
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        let closer = tokio::spawn(async move {
            // Close only after the waiter has seen the port taken at least once.
            let _ = release_rx.await;
            drop(held);
        });
        let waiter = tokio::spawn(wait_until_bindable(addr, Duration::from_secs(30)));
        // The waiter cannot have succeeded while the listener is held.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiter.is_finished(),
            "bound {addr} while another socket listened on it"
        );
        let _ = release_tx.send(());
        closer.await.expect("closer task");
        waiter
            .await
            .expect("waiter task")
            .expect("the port is free once its listener closed");
    }

    #[tokio::test]
    async fn a_port_held_past_the_deadline_is_a_bind_error_naming_it() {
        let (_held, addr) = loopback_listener();
        let err = wait_until_bindable(addr, Duration::from_millis(100))
            .await
            .expect_err("the port stays taken");
        assert!(
            matches!(&err, ClusterError::Bind { addr: a, .. } if *a == addr),
            "unexpected error: {err}"
        );
        assert!(err.to_string().contains(&addr.to_string()), "{err}");
    }
}
