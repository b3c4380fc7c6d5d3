//! Starting and stopping a node: the cluster layer, the supervision tree, the admin HTTP API.
//!
//! ```text
//! node            rest_for_one (10 restarts in 60 s)
//! ├── cluster     one_for_all: ractor_cluster NodeServer, connector (dialling, heartbeats)
//! ├── registry    one_for_all: consensus actor, snapshotter, cluster endpoint
//! ├── stores      one_for_one: graph, vector, tensor, semantic store actors
//! ├── drift       the drift checker (`crate::drift`)
//! └── rebalancer  moves entities when the voters change (`crate::rebalance`; works on the leader)
//! ```
//! `rest_for_one` because each child needs the ones before it: a restarted cluster layer drops
//! every connection, so the registry restarts after it and finds its peers anew; a restart of the
//! stores restarts the drift checker and the rebalancer.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell};
use tracing::{debug, info};
use verisim_cluster::ClusterHandle;
use verisim_cluster::{Keyring, NodeIdentity};
use verisim_raft::{ConfChange, NodeId};
use verisim_supervision::{ChildSpec, StartError, Strategy, SupervisorHandle, SupervisorSpec};

use super::config::{NodeConfig, NodeConfigError};
use super::{admin, http_server};
use crate::consensus::{
    CONSENSUS_ACTOR_NAME, ClusterClock, ClusterTransport, ConsensusActor, ConsensusArgs,
    ConsensusError, ConsensusLocator, Endpoint, EndpointArgs, RegistryClient,
    SNAPSHOTTER_ACTOR_NAME, SharedReplica, Snapshotter, SnapshotterArgs,
};
use crate::proxy::ProxyState;
use crate::proxy::auth::Authenticator;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] NodeConfigError),
    #[error("creating the data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cluster layer: {0}")]
    Cluster(#[from] verisim_cluster::ClusterError),
    #[error("node identity: {0}")]
    Identity(String),
    #[error("starting the stores' group-commit thread: {0}")]
    StoresSync(#[source] std::io::Error),
    #[error("stores: {0}")]
    StoresConfig(#[from] crate::store_actors::StoresSettingsError),
    #[error("opening the stores database: {0}")]
    Stores(#[from] verisim_stores::StoreError),
    #[error("supervision tree: {0}")]
    Tree(#[from] verisim_supervision::SupervisorError),
    #[error("proxy: {0}")]
    Proxy(String),
    #[error("admin HTTP on {addr}: {source}")]
    Http {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// A running node.
pub struct RunningNode {
    pub config: NodeConfig,
    pub cluster: Arc<ClusterHandle>,
    pub tree: SupervisorHandle,
    pub replica: SharedReplica,
    pub http_addr: std::net::SocketAddr,
    http: tokio::task::JoinHandle<()>,
    http_stop: tokio::sync::watch::Sender<bool>,
    joiner: Option<tokio::task::JoinHandle<()>>,
    clock_sampler: tokio::task::JoinHandle<()>,
    /// Completes or drops the staged payloads writes left behind (`proxy::staging`).
    staging_sweeper: tokio::task::JoinHandle<()>,
    advertiser: tokio::task::JoinHandle<()>,
}

fn spawn_err(e: ractor::SpawnErr) -> StartError {
    StartError(e.to_string())
}

/// Starts a node and returns once its admin API listens.
pub async fn start(config: NodeConfig) -> Result<RunningNode, NodeError> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir).map_err(|source| NodeError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    // Before anything runs: a bad schema file or a locked stores directory fails fast.
    let stores_setup = Arc::new(config.stores.resolve()?);
    let stores_db = crate::store_actors::open_stores_db(&config.stores_dir(), &config.stores)?;
    let stores_sync =
        crate::store_actors::GroupSync::start(stores_db.clone()).map_err(NodeError::StoresSync)?;
    let (cluster_tree, cluster) = verisim_cluster::cluster_subtree(config.cluster_config())?;
    let cluster = Arc::new(cluster);
    let keyring = Arc::new(load_keyring(&config)?);
    let transport = ClusterTransport::new(cluster.discovery().clone(), keyring.clone());
    let replica = SharedReplica::default();
    let clock = ClusterClock::new(config.id, replica.clone());

    let consensus_args = ConsensusArgs {
        raft: config.raft_config(),
        dir: config.raft_dir(),
        bootstrap_voters: config.voters.clone(),
        tick: Duration::from_millis(config.raft.tick_ms),
        transport: transport.clone(),
        replica: replica.clone(),
        snapshots_kept: config.snapshot.keep,
        auto_promote: true,
    };
    let consensus = ChildSpec::new("consensus", move |sup: ActorCell| {
        let args = consensus_args.clone();
        async move {
            let name = Some(CONSENSUS_ACTOR_NAME.to_owned());
            let (a, _) = Actor::spawn_linked(name, ConsensusActor, args, sup)
                .await
                .map_err(spawn_err)?;
            Ok(a.get_cell())
        }
    });
    let snapshotter = {
        let replica = replica.clone();
        let dir = config.raft_dir().join("snapshots");
        let policy = config.snapshot_policy();
        ChildSpec::new("snapshotter", move |sup: ActorCell| {
            let args = SnapshotterArgs {
                consensus: ConsensusLocator::named(),
                replica: replica.clone(),
                dir: dir.clone(),
                policy: policy.clone(),
            };
            async move {
                let name = Some(SNAPSHOTTER_ACTOR_NAME.to_owned());
                let (a, _) = Actor::spawn_linked(name, Snapshotter, args, sup)
                    .await
                    .map_err(spawn_err)?;
                Ok(a.get_cell())
            }
        })
    };
    let endpoint_keyring = keyring.clone();
    let endpoint = ChildSpec::new("endpoint", move |sup: ActorCell| {
        let keyring = endpoint_keyring.clone();
        async move {
            let args = EndpointArgs {
                consensus: ConsensusLocator::named(),
                propose_timeout: Duration::from_secs(10),
                admit: |bytes| crate::registry::Proposal::admit(bytes).map(|_| ()),
                keyring,
            };
            let (a, _) = Actor::spawn_linked(None, Endpoint, args, sup)
                .await
                .map_err(spawn_err)?;
            Ok(a.get_cell())
        }
    });
    // The window key is derived from the Argon2id-stretched cookie (once, by the cluster layer),
    // never from the cookie itself.
    let cluster_keys = cluster.keys();
    let proxy = ProxyState {
        id: config.id,
        auth: Arc::new(
            Authenticator::new(
                cluster_keys.window_ikm(),
                verisim_client::auth::DEFAULT_SKEW_MS,
            )
            .map_err(|e| NodeError::Proxy(e.to_string()))?,
        ),
        replica: replica.clone(),
        registry: RegistryClient::new(
            config.id,
            ConsensusLocator::named(),
            transport.clone(),
            replica.clone(),
        ),
        commit_timeout: config.proxy.commit_timeout(),
        max_body: crate::proxy::DEFAULT_MAX_BODY,
        stores: crate::store_actors::StoreDirectory::new(
            crate::consensus::endpoint::node_name(config.id),
            cluster.discovery().clone(),
            keyring.clone(),
        ),
        replicas: config.placement.replicas,
        catch_up: Arc::new(crate::proxy::catch_up::CatchUp::default()),
        cors: Arc::new(
            crate::proxy::cors::CorsOrigins::parse(&config.proxy.cors_origins)
                .map_err(|e| NodeError::Proxy(e.to_string()))?,
        ),
        clock: clock.clone(),
        skip_distribution: Arc::new(std::sync::atomic::AtomicU32::new(
            crate::proxy::staging::take_fault_hook(&config.data_dir),
        )),
    };
    let drift_stats = Arc::new(crate::drift::DriftStats::new(config.drift.interval_s));
    let drift = {
        let (proxy, settings, stats) = (proxy.clone(), config.drift.clone(), drift_stats.clone());
        ChildSpec::new("drift", move |sup: ActorCell| {
            let args = crate::drift::DriftArgs {
                proxy: proxy.clone(),
                settings: settings.clone(),
                stats: stats.clone(),
            };
            async move {
                let name = Some(crate::drift::DRIFT_ACTOR_NAME.to_owned());
                let (a, _) = Actor::spawn_linked(name, crate::drift::DriftChecker, args, sup)
                    .await
                    .map_err(spawn_err)?;
                Ok(a.get_cell())
            }
        })
    };
    let rebalance_stats = Arc::new(crate::rebalance::RebalanceStats::default());
    let rebalancer = {
        let (proxy, settings, stats) = (
            proxy.clone(),
            config.placement.clone(),
            rebalance_stats.clone(),
        );
        ChildSpec::new("rebalancer", move |sup: ActorCell| {
            let args = crate::rebalance::RebalanceArgs {
                proxy: proxy.clone(),
                settings: settings.clone(),
                stats: stats.clone(),
            };
            async move {
                let name = Some(crate::rebalance::REBALANCER_ACTOR_NAME.to_owned());
                let (a, _) = Actor::spawn_linked(name, crate::rebalance::Rebalancer, args, sup)
                    .await
                    .map_err(spawn_err)?;
                Ok(a.get_cell())
            }
        })
    };
    // Every supervisor of the tree reports its events here, with its path.
    let events = Arc::new(super::events::EventLog::new(
        crate::consensus::endpoint::node_name(config.id),
        super::events::CAPACITY,
    ));
    let registry = SupervisorSpec::new("registry", Strategy::OneForAll)
        .events(events.sink("registry"))
        .intensity(10, Duration::from_secs(60))
        .child(consensus)
        .child(snapshotter)
        .child(endpoint);
    let node = SupervisorSpec::new("node", Strategy::RestForOne)
        .events(events.sink(""))
        .intensity(10, Duration::from_secs(60))
        .child(ChildSpec::supervisor(
            "cluster",
            cluster_tree.events(events.sink("cluster")),
        ))
        .child(ChildSpec::supervisor("registry", registry))
        .child(ChildSpec::supervisor(
            "stores",
            crate::store_actors::stores_subtree(
                stores_db,
                stores_setup,
                stores_sync.clone(),
                keyring.clone(),
            )
            .events(events.sink("stores")),
        ))
        .child(drift)
        .child(rebalancer);
    let (tree, _join) = SupervisorHandle::start(node).await?;

    let listener = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .map_err(|source| NodeError::Http {
            addr: config.http_listen,
            source,
        })?;
    let http_addr = listener.local_addr().map_err(|source| NodeError::Http {
        addr: config.http_listen,
        source,
    })?;
    let state = admin::AdminState {
        id: config.id,
        consensus: ConsensusLocator::named(),
        // Bounded, so a wedged supervisor makes the admin API answer an error rather than hang.
        tree: tree.clone().with_timeout(admin::TREE_TIMEOUT),
        replica: replica.clone(),
        cluster: cluster.clone(),
        raw_proposals: config.admin.raw_proposals,
        token: config
            .admin
            .load_token()
            .map_err(|e| NodeError::Proxy(e.to_string()))?
            .map(Arc::from),
        http: admin::metrics::HttpMetrics::default(),
        store_sync: stores_sync.clone(),
        catch_up: proxy.catch_up.clone(),
        proxy: proxy.clone(),
        clock: clock.clone(),
        drift: drift_stats,
        rebalance: rebalance_stats,
        placement: config.placement.clone(),
        events,
        tls: config.http.tls.is_some(),
    };
    let staging_sweeper = tokio::spawn(crate::proxy::staging::sweep_forever(proxy.clone()));
    let advertiser = tokio::spawn(super::advertise::advertise(
        proxy.clone(),
        crate::registry::NodeInfo {
            cluster_addr: config
                .cluster_config()
                .advertised(cluster.listen_addr().port())
                .map_or_else(
                    |_| cluster.listen_addr().to_string(),
                    |(host, port)| format!("{host}:{port}"),
                ),
            http_addr: config
                .http
                .advertise
                .clone()
                .unwrap_or_else(|| http_addr.to_string()),
        },
    ));
    let http_metrics = state.http.clone();
    let connections = http_metrics.connections.clone();
    // Inside the metrics layer, so a request cut off by its body deadline is counted as its 408.
    let deadline = http_server::BodyDeadline {
        timeout: config.http.body_timeout(),
        metrics: connections.clone(),
    };
    let registry_client = proxy.registry.clone();
    let app = admin::app(state, proxy)
        .layer(axum::middleware::from_fn_with_state(
            deadline,
            http_server::body_deadline,
        ))
        .layer(axum::middleware::from_fn_with_state(
            http_metrics,
            admin::metrics::track,
        ))
        .layer(axum::middleware::from_fn(super::request_log::request_span));
    let tls = match &config.http.tls {
        None => None,
        Some(t) => Some(
            verisim_cluster::http_acceptor(&t.cert_chain, &t.private_key)
                .map_err(|e| NodeError::Cluster(verisim_cluster::ClusterError::Config(e)))?,
        ),
    };
    let (http_stop, stop_rx) = tokio::sync::watch::channel(false);
    let http = tokio::spawn(http_server::serve(
        listener,
        app,
        config.http.clone(),
        tls,
        connections,
        stop_rx,
    ));
    let joiner = match &config.join {
        Some(_) if !replica.read().membership.contains(config.id) => Some(tokio::spawn(
            join_cluster(config.id, registry_client, replica.clone()),
        )),
        _ => None,
    };
    let clock_sampler = tokio::spawn(crate::consensus::clock::sample_peers(
        clock.clone(),
        transport,
    ));
    info!(id = config.id, cluster = %cluster.listen_addr(), http = %http_addr, "node started");
    Ok(RunningNode {
        config,
        cluster,
        tree,
        replica,
        http_addr,
        http,
        http_stop,
        joiner,
        clock_sampler,
        staging_sweeper,
        advertiser,
    })
}

/// The node's keyring: its identity file's, checked to be this node's, or none (with a warning:
/// any holder of the cookie can then speak as any node).
fn load_keyring(config: &NodeConfig) -> Result<Keyring, NodeError> {
    let Some(path) = &config.identity_file else {
        tracing::warn!(
            "no node identity (identity_file): cluster messages are not sealed, and any holder of \
             the cluster cookie can speak as any node; see docs/security.md, \"Node identities\""
        );
        return Ok(Keyring::open(config.id));
    };
    let identity = NodeIdentity::read(path).map_err(|e| NodeError::Identity(e.to_string()))?;
    if identity.node() != config.id {
        return Err(NodeError::Identity(format!(
            "{} was issued to node {}, and this is node {}",
            path.display(),
            identity.node(),
            config.id
        )));
    }
    info!(path = %path.display(), "node identity loaded: cluster messages are sealed and checked");
    Keyring::with_identity(identity).map_err(|e| NodeError::Identity(e.to_string()))
}

/// Asks the cluster to add this node as a learner (through the registry client, which asks a
/// connected member while this node knows no leader), until this node's replica shows it as a member
/// (the leader then streams it the snapshot and the log, and promotes it once caught up).
async fn join_cluster(me: NodeId, registry: RegistryClient, replica: SharedReplica) {
    let mut backoff =
        verisim_cluster::backoff::Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
    while !replica.read().membership.contains(me) {
        match registry
            .change_membership(ConfChange::AddLearner(me), Duration::from_secs(10))
            .await
        {
            Ok(index) => {
                info!(index, "added to the cluster as a learner; catching up");
                backoff.reset();
            }
            Err(ConsensusError::Invalid(reason)) => {
                // Already a member: the leader knows us; wait for the log to say so here.
                info!(%reason, "join request not needed");
            }
            Err(e) => debug!(error = %e, "join request not answered yet"),
        }
        let delay = backoff.next_delay(rand::random());
        tokio::time::sleep(delay).await;
    }
    info!("this node is a member of the cluster");
}

impl RunningNode {
    /// Stops the admin API, the supervision tree (children in reverse order), then the cluster layer.
    pub async fn shutdown(self) {
        if let Some(j) = self.joiner {
            j.abort();
        }
        self.clock_sampler.abort();
        self.staging_sweeper.abort();
        self.advertiser.abort();
        let _ = self.http_stop.send(true);
        let _ = self.http.await;
        // Children stop in reverse order: the cluster layer last.
        self.tree.stop().await;
        info!(id = self.config.id, "node stopped");
    }
}
