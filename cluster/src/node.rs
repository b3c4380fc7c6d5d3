//! Node bootstrap: what ractor_cluster's `NodeServer` and our connector need from a
//! [`ClusterConfig`] (validated, cookie stretched, port chosen), and the [`ClusterHandle`] onto
//! them. [`crate::supervised`] starts them as a subtree of the node's supervision tree.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ractor::{ActorCell, ActorRef, Message};
use ractor_cluster::node::NodeConnectionMode;
use ractor_cluster::{NodeServer, NodeServerMessage};
use tokio::sync::mpsc;

use crate::config::ClusterConfig;
use crate::connector::{ConnectorArgs, ConnectorMsg, PeerStatus};
use crate::discovery::{Directory, Discovery};
use crate::error::ConfigError;
use crate::events::{PeerEvent, actor_subscriber, channel_subscriber};
use crate::secret::ClusterKeys;

/// Why a node could not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// An actor of the cluster layer could not start.
    #[error("cannot start {what}: {reason}")]
    Spawn {
        /// Which actor.
        what: &'static str,
        /// The cause.
        reason: String,
    },
    /// The connector is gone (the node is shutting down).
    #[error("the cluster connector is not running")]
    Stopped,
}

/// A cluster node's `NodeServer`, connector and heartbeat endpoint, run by the `cluster` subtree
/// ([`crate::cluster_subtree`]); the handle finds the current actors by their registered names, so
/// it stays valid across restarts.
pub struct ClusterHandle {
    pub(crate) node_name: String,
    pub(crate) listen: SocketAddr,
    pub(crate) max_frame_bytes: u64,
    pub(crate) discovery: Discovery,
    pub(crate) keys: ClusterKeys,
}

/// The registered name of a supervised node server (see [`crate::supervised`]).
pub const NODE_SERVER_NAME: &str = "verisim.cluster.server";
/// The registered name of a supervised connector (see [`crate::supervised`]).
pub const CONNECTOR_NAME: &str = "verisim.cluster.connector";

impl std::fmt::Debug for ClusterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterHandle")
            .field("node_name", &self.node_name)
            .field("listen", &self.listen)
            .finish()
    }
}

/// Pick a free port on `ip` (the OS chooses; there is a short window in which another process
/// could take it).
fn free_port(ip: std::net::IpAddr) -> Result<u16, ClusterError> {
    let addr = SocketAddr::new(ip, 0);
    std::net::TcpListener::bind(addr)
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| ClusterError::Bind { addr, source })
}

/// A validated configuration with its cookie loaded and its port chosen: what building the node
/// server and the connector needs, once or at every restart.
#[derive(Clone)]
pub(crate) struct Prepared {
    pub(crate) config: ClusterConfig,
    /// Derived once (Argon2id costs tens of milliseconds): the node server's handshake key, and
    /// what the handle hands to users of the cluster secret.
    pub(crate) keys: ClusterKeys,
    pub(crate) listen: SocketAddr,
    pub(crate) directory: Arc<Directory>,
}

impl Prepared {
    pub(crate) fn new(config: ClusterConfig) -> Result<Self, ClusterError> {
        config.validate()?;
        let keys = config.cluster_keys()?;
        // Fail now, not at the first start, on unreadable TLS material.
        crate::tls::transport(config.tls.as_ref())?;
        let mut listen = config.listen;
        if listen.port() == 0 {
            listen.set_port(free_port(listen.ip())?);
        }
        Ok(Self {
            config,
            keys,
            listen,
            directory: Arc::new(Directory::default()),
        })
    }

    pub(crate) fn node_server(&self) -> Result<NodeServer, ClusterError> {
        let (encryption, _) = crate::tls::transport(self.config.tls.as_ref())?;
        let (host, _) = self.config.advertised(self.listen.port())?;
        Ok(NodeServer::new(
            self.listen.port(),
            // Keyed with a key derived from the cookie, never the cookie itself.
            self.keys.handshake_cookie().to_string(),
            self.config.node_name.clone(),
            host,
            Some(encryption),
            // We dial exactly the peers we are told about; transitive dialling would bypass our
            // backoff and handshake deadlines.
            Some(NodeConnectionMode::Isolated),
        )
        .with_listen_addr(self.listen.ip())
        .with_max_inbound_frame_size(self.config.max_frame_bytes))
    }

    /// Make a freshly spawned node server announce the advertised port, when it is not the one it
    /// listens on (a forwarded port): ractor builds the announced `host:port` from the listen
    /// port, and takes a new port only through this message.
    pub(crate) fn announce(
        &self,
        server: &ActorRef<NodeServerMessage>,
    ) -> Result<(), ClusterError> {
        let (_, port) = self.config.advertised(self.listen.port())?;
        if port != self.listen.port() {
            server
                .cast(NodeServerMessage::PortChanged { port })
                .map_err(|_| ClusterError::Stopped)?;
        }
        Ok(())
    }

    pub(crate) fn connector_args(
        &self,
        server: ActorRef<NodeServerMessage>,
    ) -> Result<ConnectorArgs, ClusterError> {
        let (_, dialer) = crate::tls::transport(self.config.tls.as_ref())?;
        let config = &self.config;
        Ok(ConnectorArgs {
            node_name: config.node_name.clone(),
            server,
            dialer,
            seeds: config.seeds.clone(),
            directory: self.directory.clone(),
            heartbeat_interval: config.heartbeat_interval(),
            heartbeat_deadline: config.heartbeat_deadline(),
            handshake_timeout: config.handshake_timeout(),
            backoff_min: Duration::from_millis(config.backoff_min_ms),
            backoff_max: Duration::from_millis(config.backoff_max_ms),
        })
    }
}

impl ClusterHandle {
    /// This node's name.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// The address the node listens on (with the chosen port if 0 was configured).
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// The keys derived from the cluster cookie at start (the cookie itself is not kept).
    pub fn keys(&self) -> &ClusterKeys {
        &self.keys
    }

    /// The inbound frame cap in force; keep every message (and chunk) well under it.
    pub fn max_frame_bytes(&self) -> u64 {
        self.max_frame_bytes
    }

    /// ractor_cluster's `NodeServer`, for anything this layer does not wrap (`None` while a
    /// supervised one restarts).
    pub fn node_server(&self) -> Option<ActorRef<NodeServerMessage>> {
        ActorRef::where_is(NODE_SERVER_NAME)
    }

    /// The connector actor, for a supervisor to link to or monitor: if it stops, this node no
    /// longer redials, beats or reports peers. `None` while a supervised one restarts.
    pub fn connector_cell(&self) -> Option<ActorCell> {
        self.connector().ok().map(|c| c.get_cell())
    }

    fn connector(&self) -> Result<ActorRef<ConnectorMsg>, ClusterError> {
        ActorRef::where_is(CONNECTOR_NAME).ok_or(ClusterError::Stopped)
    }

    /// Process-group lookups by node name.
    pub fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    /// Members of `scope`/`group` on node `node` (see [`Discovery::members_on`]).
    pub fn members_on(&self, scope: &str, group: &str, node: &str) -> Vec<ActorCell> {
        self.discovery.members_on(scope, group, node)
    }

    /// Members of `scope`/`group` by node name (see [`Discovery::members_by_node`]).
    pub fn members_by_node(&self, scope: &str, group: &str) -> BTreeMap<String, Vec<ActorCell>> {
        self.discovery.members_by_node(scope, group)
    }

    /// Receive peer events on a channel. Peers already up are announced first.
    pub fn subscribe(&self) -> Result<mpsc::UnboundedReceiver<PeerEvent>, ClusterError> {
        let (sub, rx) = channel_subscriber();
        self.connector()?
            .cast(ConnectorMsg::Subscribe(sub))
            .map_err(|_| ClusterError::Stopped)?;
        Ok(rx)
    }

    /// Deliver peer events to `actor`, converted by `convert` (`None` skips an event). Peers
    /// already up are announced first. The subscription ends when the actor stops.
    pub fn subscribe_actor<M, F>(&self, actor: ActorRef<M>, convert: F) -> Result<(), ClusterError>
    where
        M: Message,
        F: Fn(PeerEvent) -> Option<M> + Send + 'static,
    {
        self.connector()?
            .cast(ConnectorMsg::Subscribe(actor_subscriber(actor, convert)))
            .map_err(|_| ClusterError::Stopped)
    }

    /// Every peer ever seen, up or down.
    pub async fn peers(&self) -> Result<Vec<PeerStatus>, ClusterError> {
        ractor::call_t!(self.connector()?, ConnectorMsg::Peers, 5_000)
            .map_err(|_| ClusterError::Stopped)
    }

    /// Names of the peers up now.
    pub async fn up_peers(&self) -> Result<BTreeSet<String>, ClusterError> {
        Ok(self
            .peers()
            .await?
            .into_iter()
            .filter(|p| p.up)
            .map(|p| p.node)
            .collect())
    }

    /// Dial `addr` (`host:port`) and keep it dialled (e.g. a member added to the cluster).
    pub fn add_peer_address(&self, addr: impl Into<String>) -> Result<(), ClusterError> {
        self.connector()?
            .cast(ConnectorMsg::AddSeed(addr.into()))
            .map_err(|_| ClusterError::Stopped)
    }

    /// Stop redialling `addr` (a member removed). An open connection stays until it drops.
    pub fn remove_peer_address(&self, addr: impl Into<String>) -> Result<(), ClusterError> {
        self.connector()?
            .cast(ConnectorMsg::RemoveSeed(addr.into()))
            .map_err(|_| ClusterError::Stopped)
    }

    /// Report `node` down and drop its connections now; redial follows as after any failure.
    pub fn disconnect(&self, node: impl Into<String>) -> Result<(), ClusterError> {
        self.connector()?
            .cast(ConnectorMsg::Disconnect(node.into()))
            .map_err(|_| ClusterError::Stopped)
    }
}
