//! A ractor_cluster node under supervision. The node's tree is `rest_for_one`: first the
//! `NodeServer` (it listens and owns the sessions), then a `link` worker that dials a peer node
//! through it. When the server dies, the link dies with it and both start again in order, and
//! the node reconnects to its peer on its own.
//!
//! Run: `cargo run -p verisim-supervision --example cluster_node`

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::rpc::CallResult;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef};
use ractor_cluster::{NodeServer, NodeServerMessage};
use verisim_supervision::{
    Backoff, ChildSpec, ChildState, StartError, Strategy, SupervisorHandle, SupervisorSpec,
};

type Error = Box<dyn std::error::Error + Send + Sync>;

const COOKIE: &str = "example-cookie";

/// The node server that runs now.
type Current = Arc<Mutex<Option<ActorRef<NodeServerMessage>>>>;

/// A free local port (taken and released; good enough for an example).
fn free_port() -> Result<u16, Error> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn node_server(port: u16, name: &str) -> NodeServer {
    NodeServer::new(
        port,
        COOKIE.to_string(),
        name.to_string(),
        "localhost".to_string(),
        None,
        None,
    )
    .with_listen_addr(Ipv4Addr::LOCALHOST.into())
}

/// The link: in `pre_start` it asks the node server (its older sibling) to dial the peer.
#[derive(Clone)]
struct Link;

/// The link takes no messages in this example.
enum LinkMsg {}

impl ractor::Message for LinkMsg {}

impl Actor for Link {
    type Msg = LinkMsg;
    type State = ();
    type Arguments = (ActorRef<NodeServerMessage>, SocketAddr);

    async fn pre_start(
        &self,
        _: ActorRef<LinkMsg>,
        (server, peer): (ActorRef<NodeServerMessage>, SocketAddr),
    ) -> Result<(), ActorProcessingErr> {
        ractor_cluster::client_connect(&server, peer).await?;
        Ok(())
    }
}

/// The node server of the supervisor `node`, as its handle sees it now.
async fn server_of(node: &SupervisorHandle) -> Result<ActorRef<NodeServerMessage>, Error> {
    let cell = node
        .child("server")
        .await?
        .cell
        .ok_or("server not running")?;
    Ok(cell.into())
}

/// Wait until `server` has a session with a peer.
async fn connected(server: &ActorRef<NodeServerMessage>) -> Result<(), Error> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let CallResult::Success(sessions) = server
            .call(NodeServerMessage::GetSessions, Some(Duration::from_secs(1)))
            .await?
            && !sessions.is_empty()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err("no session with the peer in time".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Start a peer node and a supervised node that links to it; kill the supervised node's server
/// and check that the tree rebuilt itself and reconnected.
pub async fn run() -> Result<(), Error> {
    let peer_port = free_port()?;
    let (peer, peer_join) = Actor::spawn(None, node_server(peer_port, "peer"), ()).await?;
    let peer_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, peer_port));

    let port = free_port()?;
    // The server's start function publishes each new server here; the link's start function
    // takes the current one. (A start function runs inside the supervisor, so it must not call
    // the supervisor itself: that would wait on its own answer.)
    let current = Current::default();
    let published = current.clone();
    let server = ChildSpec::new("server", move |sup: ActorCell| {
        let published = published.clone();
        async move {
            let (server, _) = Actor::spawn_linked(None, node_server(port, "node"), (), sup).await?;
            *published
                .lock()
                .map_err(|e| StartError::new(e.to_string()))? = Some(server.clone());
            Ok(server.get_cell())
        }
    });
    let link = ChildSpec::new("link", move |sup: ActorCell| {
        let current = current.clone();
        async move {
            let server = current
                .lock()
                .map_err(|e| StartError::new(e.to_string()))?
                .clone()
                .ok_or_else(|| StartError::new("no node server yet"))?;
            let (link, _) = Actor::spawn_linked(None, Link, (server, peer_addr), sup).await?;
            Ok(link.get_cell())
        }
    });
    let spec = SupervisorSpec::new("node", Strategy::RestForOne)
        .intensity(10, Duration::from_secs(10))
        // A restarted server may find its port still held by its predecessor for a moment:
        // the backoff spaces out the retries.
        .backoff(Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(500),
            reset_after: Duration::from_secs(5),
        })
        .child(server)
        .child(link);
    let (node, join) = SupervisorHandle::start(spec).await?;
    let node = node.with_timeout(Duration::from_secs(2));
    connected(&server_of(&node).await?).await?;

    let before = node.child("server").await?;
    before.cell.as_ref().ok_or("server not running")?.kill();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let children = node.which_children().await?;
        if children
            .iter()
            .all(|c| c.state == ChildState::Running && c.restart_count >= 1)
        {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("the node did not come back in time: {children:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let after = node.child("server").await?;
    assert_ne!(after.actor_id, before.actor_id, "a new node server");
    connected(&server_of(&node).await?).await?;
    println!(
        "node server {:?} replaced by {:?}; reconnected to the peer",
        before.actor_id, after.actor_id
    );

    node.stop().await;
    join.await?;
    peer.stop(None);
    peer_join.await?;
    Ok(())
}

#[cfg(not(test))]
#[tokio::main]
async fn main() -> Result<(), Error> {
    run().await
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_example_runs_to_completion() {
        super::run().await.expect("the cluster_node example");
    }
}
