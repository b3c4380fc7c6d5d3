//! The peer connector: dials the configured peers and keeps them dialled, tracks peers by node
//! name across connections, detects dead peers by heartbeat deadline, and publishes
//! [`PeerEvent`]s.
//!
//! Everything is driven by ractor_cluster's session events (opened, authenticated, ready,
//! closed), the results of our own dial tasks, incoming beats, and one periodic tick.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use ractor_cluster::node::{NodeServerSessionInformation, NodeSessionMessage};
use ractor_cluster::{NodeEventSubscription, NodeId, NodeServerMessage, RactorMessage};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng};

use crate::backoff::Backoff;
use crate::codec::Cbor;
use crate::config::SeedSpec;
use crate::discovery::Directory;
use crate::events::{DownReason, PeerEvent, Subscriber};
use crate::heartbeat::{
    Beat, BeatSink, CLUSTER_SCOPE, HEARTBEAT_GROUP, HeartbeatEndpoint, HeartbeatMessage,
};
use crate::tls::Dialer;

/// What we know about one ractor_cluster session, from its events.
#[derive(Clone)]
pub(crate) struct SessionInfo {
    actor: ActorRef<NodeSessionMessage>,
    node_id: NodeId,
    is_server: bool,
    peer_addr: String,
    /// The peer's node name (without ractor's `@host` suffix), once it announced it.
    name: Option<String>,
    /// The peer's advertised `host:port`, once it announced it.
    connection_string: Option<String>,
}

impl SessionInfo {
    fn from_ractor(ses: NodeServerSessionInformation) -> Self {
        let (name, connection_string) = match ses.peer_name {
            Some(p) => (Some(strip_host(&p.name)), Some(p.connection_string)),
            None => (None, None),
        };
        Self {
            actor: ses.actor,
            node_id: ses.node_id,
            is_server: ses.is_server,
            peer_addr: ses.peer_addr,
            name,
            connection_string,
        }
    }
}

/// ractor names nodes `name@host`; we name them `name`.
fn strip_host(full: &str) -> String {
    match full.rsplit_once('@') {
        Some((name, _)) => name.to_string(),
        None => full.to_string(),
    }
}

/// A peer as the rest of the node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// Node name.
    pub node: String,
    /// Whether it is up.
    pub up: bool,
    /// Current connection id while up.
    pub node_id: Option<NodeId>,
    /// How long ago its last heartbeat arrived, while up.
    pub since_last_beat: Option<Duration>,
}

/// Messages of the connector (local only).
#[derive(RactorMessage)]
pub(crate) enum ConnectorMsg {
    Opened(SessionInfo),
    Authenticated(SessionInfo),
    Ready(SessionInfo),
    Closed(SessionInfo),
    DialDone {
        seed: String,
        result: Result<SocketAddr, String>,
    },
    Beat(String),
    Tick,
    AddSeed(String),
    RemoveSeed(String),
    Disconnect(String),
    Subscribe(Subscriber),
    Peers(RpcReplyPort<Vec<PeerStatus>>),
}

/// Forwards ractor_cluster's session events into the connector's mailbox.
pub(crate) struct SessionEvents(pub(crate) ActorRef<ConnectorMsg>);

impl NodeEventSubscription for SessionEvents {
    fn node_session_opened(&self, ses: NodeServerSessionInformation) {
        let _ = self
            .0
            .cast(ConnectorMsg::Opened(SessionInfo::from_ractor(ses)));
    }
    fn node_session_disconnected(&self, ses: NodeServerSessionInformation) {
        let _ = self
            .0
            .cast(ConnectorMsg::Closed(SessionInfo::from_ractor(ses)));
    }
    fn node_session_authenticated(&self, ses: NodeServerSessionInformation) {
        let _ = self
            .0
            .cast(ConnectorMsg::Authenticated(SessionInfo::from_ractor(ses)));
    }
    fn node_session_ready(&self, ses: NodeServerSessionInformation) {
        let _ = self
            .0
            .cast(ConnectorMsg::Ready(SessionInfo::from_ractor(ses)));
    }
}

/// Connector parameters, from the configuration.
pub(crate) struct ConnectorArgs {
    pub(crate) node_name: String,
    pub(crate) server: ActorRef<NodeServerMessage>,
    pub(crate) dialer: Dialer,
    pub(crate) seeds: Vec<String>,
    pub(crate) directory: Arc<Directory>,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) heartbeat_deadline: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
}

struct Session {
    info: SessionInfo,
    opened_at: Instant,
    authenticated: bool,
    ready: bool,
}

struct Peer {
    up: bool,
    node_id: Option<NodeId>,
    last_beat: Instant,
}

struct Seed {
    /// `host:port` to dial.
    addr: String,
    /// The node name behind this address: configured (`name=host:port`), or learned once a
    /// connection to it authenticated or a connected peer announced this address.
    name: Option<String>,
    /// The address our last dial resolved to.
    resolved: Option<SocketAddr>,
    /// Our dials refused in the handshake in a row while the name is unknown; past a few, we say
    /// what to configure (the peer is likely connected to us by another address).
    refused: u32,
    dialing_since: Option<Instant>,
    next_attempt: Instant,
    backoff: Backoff,
}

pub(crate) struct ConnectorState {
    args: ConnectorArgs,
    sessions: HashMap<ActorId, Session>,
    peers: BTreeMap<String, Peer>,
    seeds: BTreeMap<String, Seed>,
    subscribers: Vec<Subscriber>,
    rng: StdRng,
    last_tick: Instant,
    last_beat_sent: Instant,
    beat_seq: u64,
    heartbeat: Option<ActorRef<HeartbeatMessage>>,
    /// Peers whose connection closed while other connections were still authenticating: one of
    /// those may be the same peer replacing its connection (the two ends of a duplicate-connection
    /// election do not decide at the same moment). Down is held until that is settled.
    pending_down: BTreeMap<String, Instant>,
}

pub(crate) struct Connector;

impl Actor for Connector {
    type Msg = ConnectorMsg;
    type State = ConnectorState;
    type Arguments = ConnectorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        let now = Instant::now();
        args.directory.clear();
        let seeds = args
            .seeds
            .iter()
            .filter_map(|s| new_seed(&args, s, now).map(|seed| (s.clone(), seed)))
            .collect();
        args.server.cast(NodeServerMessage::SubscribeToEvents {
            id: "verisim-cluster-connector".to_string(),
            subscription: Box::new(SessionEvents(myself.clone())),
        })?;
        let me = myself.clone();
        let sink: BeatSink = Box::new(move |from| {
            // We outlive the endpoint (we supervise it); if we are gone it stops anyway.
            let _ = me.cast(ConnectorMsg::Beat(from));
        });
        let (heartbeat, _) =
            Actor::spawn_linked(None, HeartbeatEndpoint, sink, myself.get_cell()).await?;
        let tick = tick_period(&args);
        myself.send_interval(tick, || ConnectorMsg::Tick);
        Ok(ConnectorState {
            args,
            sessions: HashMap::new(),
            peers: BTreeMap::new(),
            seeds,
            subscribers: Vec::new(),
            rng: StdRng::from_os_rng(),
            last_tick: now,
            last_beat_sent: now,
            beat_seq: 0,
            heartbeat: Some(heartbeat),
            pending_down: BTreeMap::new(),
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let _ = state
            .args
            .server
            .cast(NodeServerMessage::UnsubscribeToEvents(
                "verisim-cluster-connector".to_string(),
            ));
        if let Some(hb) = state.heartbeat.take() {
            hb.stop(None);
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ConnectorMsg::Opened(info) => state.on_opened(info),
            ConnectorMsg::Authenticated(info) => state.on_authenticated(info),
            ConnectorMsg::Ready(info) => state.on_ready(info),
            ConnectorMsg::Closed(info) => state.on_closed(info),
            ConnectorMsg::DialDone { seed, result } => state.on_dial_done(&seed, result),
            ConnectorMsg::Beat(from) => state.on_beat(&from),
            ConnectorMsg::Tick => state.on_tick(&myself),
            ConnectorMsg::AddSeed(addr) => {
                if let Some(seed) = new_seed(&state.args, &addr, Instant::now()) {
                    state.seeds.entry(addr).or_insert(seed);
                }
            }
            ConnectorMsg::RemoveSeed(addr) => {
                state.seeds.remove(&addr);
            }
            ConnectorMsg::Disconnect(node) => state.take_down(&node, DownReason::Requested),
            ConnectorMsg::Subscribe(mut sub) => {
                // Replay the current state so a late subscriber misses nothing.
                let alive = state.peers.iter().filter(|(_, p)| p.up).all(|(node, p)| {
                    sub(PeerEvent::Up {
                        node: node.clone(),
                        node_id: p.node_id.unwrap_or_default(),
                    })
                });
                if alive {
                    state.subscribers.push(sub);
                }
            }
            ConnectorMsg::Peers(reply) => {
                let now = Instant::now();
                let list = state
                    .peers
                    .iter()
                    .map(|(node, p)| PeerStatus {
                        node: node.clone(),
                        up: p.up,
                        node_id: p.node_id.filter(|_| p.up),
                        since_last_beat: p.up.then(|| now.saturating_duration_since(p.last_beat)),
                    })
                    .collect();
                let _ = reply.send(list);
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // The heartbeat endpoint is our only child; without it peers would declare us dead.
        match event {
            SupervisionEvent::ActorFailed(_, e) => {
                Err(format!("heartbeat endpoint failed: {e}").into())
            }
            SupervisionEvent::ActorTerminated(_, _, reason) => {
                Err(format!("heartbeat endpoint stopped: {reason:?}").into())
            }
            _ => Ok(()),
        }
    }
}

/// Whether the peer of `info` announces the address `seed` dials: the same text, or the address
/// the seed last resolved to (`localhost:7100` and `127.0.0.1:7100` are one address).
fn advertises(info: &SessionInfo, seed: &Seed) -> bool {
    let Some(announced) = info.connection_string.as_deref() else {
        return false;
    };
    announced == seed.addr
        || announced
            .parse::<SocketAddr>()
            .is_ok_and(|a| Some(a) == seed.resolved)
}

/// After this many handshakes refused in a row at a seed whose node is unknown, say why.
const REFUSED_BEFORE_WARNING: u32 = 3;

fn new_seed(args: &ConnectorArgs, spec: &str, now: Instant) -> Option<Seed> {
    let spec = match SeedSpec::parse(spec) {
        Ok(spec) => spec,
        Err(error) => {
            tracing::warn!(seed = %spec, %error, "seed ignored");
            return None;
        }
    };
    Some(Seed {
        addr: spec.addr,
        name: spec.name,
        resolved: None,
        refused: 0,
        dialing_since: None,
        next_attempt: now,
        backoff: Backoff::new(args.backoff_min, args.backoff_max),
    })
}

/// Fine enough for the heartbeat and the shortest backoff, coarse enough to cost nothing.
fn tick_period(args: &ConnectorArgs) -> Duration {
    args.heartbeat_interval
        .min(args.backoff_min)
        .min(Duration::from_millis(100))
        .max(Duration::from_millis(5))
}

impl ConnectorState {
    fn emit(&mut self, ev: PeerEvent) {
        match &ev {
            PeerEvent::Up { node, node_id } => tracing::info!(%node, node_id, "peer up"),
            PeerEvent::Down { node, reason } => tracing::info!(%node, %reason, "peer down"),
            PeerEvent::DialFailed { addr, error } => tracing::debug!(%addr, %error, "dial failed"),
            PeerEvent::HandshakeFailed { peer_addr } => {
                tracing::warn!(%peer_addr, "connection closed before authenticating")
            }
        }
        self.subscribers.retain_mut(|s| s(ev.clone()));
    }

    fn on_opened(&mut self, info: SessionInfo) {
        self.sessions.insert(
            info.actor.get_id(),
            Session {
                info,
                opened_at: Instant::now(),
                authenticated: false,
                ready: false,
            },
        );
    }

    fn on_authenticated(&mut self, info: SessionInfo) {
        self.match_seeds(&info);
        if let Some(name) = &info.name {
            // The replacement arrived: no Down (its Ready announces the new connection).
            self.pending_down.remove(name);
        }
        if let Some(s) = self.sessions.get_mut(&info.actor.get_id()) {
            s.authenticated = true;
            s.info = info;
        }
    }

    fn on_ready(&mut self, info: SessionInfo) {
        self.match_seeds(&info);
        let Some(name) = info.name.clone() else {
            return;
        };
        if name == self.args.node_name {
            tracing::warn!(peer_addr = %info.peer_addr, "connected to ourselves; dropping");
            info.actor.stop(Some("self-connection".into()));
            return;
        }
        let node_id = info.node_id;
        match self.sessions.get_mut(&info.actor.get_id()) {
            Some(s) => {
                s.authenticated = true;
                s.ready = true;
                s.info = info;
            }
            // Closed before we saw it ready: nothing to announce.
            None => return,
        }
        self.args.directory.insert(node_id, name.clone());
        let now = Instant::now();
        let peer = self.peers.entry(name.clone()).or_insert(Peer {
            up: false,
            node_id: None,
            last_beat: now,
        });
        let replaced = peer.up && peer.node_id != Some(node_id);
        let was_up = peer.up;
        peer.node_id = Some(node_id);
        peer.last_beat = now;
        peer.up = true;
        // A repeated Up (with a new node_id) tells subscribers the connection was replaced and
        // remote actor references must be looked up again.
        if !was_up || replaced {
            self.emit(PeerEvent::Up {
                node: name,
                node_id,
            });
        }
    }

    fn on_closed(&mut self, info: SessionInfo) {
        let id = info.actor.get_id();
        let Some(session) = self.sessions.remove(&id) else {
            return;
        };
        self.args.directory.remove(session.info.node_id);
        // The claimed name is known from the first handshake message, even unauthenticated.
        let name = session.info.name.clone().or(info.name);
        // Another authenticated connection to the same node means this one lost ractor's
        // duplicate-connection election (both sides dialled): the node stays up.
        let survivor = name.as_deref().and_then(|n| {
            self.sessions
                .values()
                .find(|s| s.authenticated && s.info.name.as_deref() == Some(n))
        });
        if let Some(survivor) = survivor {
            let node_id = survivor.info.node_id;
            let ready = survivor.ready;
            if let Some(p) = name.as_deref().and_then(|n| self.peers.get_mut(n))
                && ready
            {
                p.node_id = Some(node_id);
            }
            return;
        }
        if !session.authenticated {
            // Our dial of a seed failed in the handshake: back off now rather than wait for
            // the handshake timeout.
            if !session.info.is_server {
                let now = Instant::now();
                let connected = self.peers.values().any(|p| p.up);
                for seed in self.seeds.values_mut() {
                    let ours = seed
                        .resolved
                        .is_some_and(|r| r.to_string() == session.info.peer_addr);
                    if ours && seed.dialing_since.is_some() {
                        seed.dialing_since = None;
                        seed.next_attempt = now + seed.backoff.next_delay(self.rng.random());
                        if seed.name.is_none() {
                            seed.refused += 1;
                            if seed.refused == REFUSED_BEFORE_WARNING && connected {
                                // ractor refuses a second connection to a node already connected
                                // before it tells the dialler who it is: we cannot see that the
                                // address leads to a peer we have.
                                tracing::warn!(
                                    seed = %seed.addr,
                                    "handshakes with this seed keep being refused; if it is a \
                                     node already connected by another address, name the seed \
                                     (name=host:port) or set that node's advertise address"
                                );
                            }
                        }
                    }
                }
            }
            self.emit(PeerEvent::HandshakeFailed {
                peer_addr: session.info.peer_addr,
            });
            if !self.sessions.values().any(|s| !s.authenticated) {
                // Nothing is authenticating any more: held Downs are real.
                self.flush_pending_down(None);
            }
            return;
        }
        if let Some(name) = name
            && self.peers.get(&name).is_some_and(|p| p.up)
        {
            if self.sessions.values().any(|s| !s.authenticated) {
                self.pending_down.entry(name).or_insert_with(Instant::now);
            } else {
                self.mark_down(&name, DownReason::Disconnected);
            }
        }
    }

    /// Report the held Downs: all of them, or those held longer than `older_than`.
    fn flush_pending_down(&mut self, older_than: Option<(Instant, Duration)>) {
        let due: Vec<String> = self
            .pending_down
            .iter()
            .filter(|(_, since)| {
                older_than.is_none_or(|(now, limit)| now.saturating_duration_since(**since) > limit)
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            self.pending_down.remove(&name);
            if self.peers.get(&name).is_some_and(|p| p.up) {
                self.mark_down(&name, DownReason::Disconnected);
            }
        }
    }

    /// Learn which seed address a connection belongs to, from the address we dialled or the
    /// address the peer advertises (as written, or as the seed resolved).
    fn match_seeds(&mut self, info: &SessionInfo) {
        let Some(name) = &info.name else {
            return;
        };
        for seed in self.seeds.values_mut() {
            let dialled = !info.is_server
                && seed
                    .resolved
                    .is_some_and(|r| r.to_string() == info.peer_addr);
            if dialled || advertises(info, seed) || seed.name.as_deref() == Some(name.as_str()) {
                seed.name = Some(name.clone());
                seed.dialing_since = None;
                seed.refused = 0;
                seed.backoff.reset();
            }
        }
    }

    fn on_dial_done(&mut self, key: &str, result: Result<SocketAddr, String>) {
        let now = Instant::now();
        let Some(seed) = self.seeds.get_mut(key) else {
            return;
        };
        match result {
            Ok(resolved) => {
                seed.resolved = Some(resolved);
                if seed.name.is_none() {
                    // A peer already connected (it dialled us) may announce the address this seed
                    // resolves to: then this seed is that peer, and is not redialled while it is up.
                    seed.name = self
                        .sessions
                        .values()
                        .filter(|s| s.ready)
                        .find(|s| advertises(&s.info, seed))
                        .and_then(|s| s.info.name.clone());
                }
            }
            Err(error) => {
                let delay = seed.backoff.next_delay(self.rng.random());
                tracing::debug!(addr = %seed.addr, %error, ?delay, "dial failed");
                seed.dialing_since = None;
                seed.next_attempt = now + delay;
                let addr = seed.addr.clone();
                self.emit(PeerEvent::DialFailed { addr, error });
            }
        }
    }

    fn on_beat(&mut self, from: &str) {
        if let Some(p) = self.peers.get_mut(from)
            && p.up
        {
            p.last_beat = Instant::now();
        }
    }

    fn mark_down(&mut self, name: &str, reason: DownReason) {
        let now = Instant::now();
        self.pending_down.remove(name);
        if let Some(p) = self.peers.get_mut(name) {
            p.up = false;
            p.node_id = None;
        }
        for seed in self.seeds.values_mut() {
            if seed.name.as_deref() == Some(name) && seed.dialing_since.is_none() {
                seed.next_attempt = now + seed.backoff.next_delay(self.rng.random());
            }
        }
        self.emit(PeerEvent::Down {
            node: name.to_string(),
            reason,
        });
    }

    /// Report `name` down now and drop its connections, which makes the redial start.
    fn take_down(&mut self, name: &str, reason: DownReason) {
        for s in self.sessions.values() {
            if s.info.name.as_deref() == Some(name) {
                s.info.actor.stop(Some(reason.to_string()));
            }
        }
        if self.peers.get(name).is_some_and(|p| p.up) {
            self.mark_down(name, reason);
        }
    }

    fn on_tick(&mut self, myself: &ActorRef<ConnectorMsg>) {
        let now = Instant::now();
        let gap = now.saturating_duration_since(self.last_tick);
        self.last_tick = now;
        if gap > self.args.heartbeat_deadline / 2 {
            // We were not running (SIGSTOP, a stalled machine): our peers' silence is our own.
            // Give every peer a fresh deadline instead of declaring them all dead.
            tracing::warn!(?gap, "connector stalled; restarting peer deadlines");
            for p in self.peers.values_mut() {
                p.last_beat = now;
            }
        }

        if now.saturating_duration_since(self.last_beat_sent) >= self.args.heartbeat_interval {
            self.last_beat_sent = now;
            self.send_beats();
        }

        let silent: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.up && now.saturating_duration_since(p.last_beat) > self.args.heartbeat_deadline
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in silent {
            tracing::warn!(node = %name, "no heartbeat within the deadline");
            self.take_down(&name, DownReason::HeartbeatDeadline);
        }

        for s in self.sessions.values() {
            if !s.ready && now.saturating_duration_since(s.opened_at) > self.args.handshake_timeout
            {
                s.info.actor.stop(Some("handshake timeout".into()));
            }
        }

        self.flush_pending_down(Some((now, self.args.handshake_timeout)));
        self.dial_due(now, myself);
    }

    fn send_beats(&mut self) {
        self.beat_seq += 1;
        let beat = Beat {
            from: self.args.node_name.clone(),
            seq: self.beat_seq,
        };
        let wire = match Cbor::encode(&beat) {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode heartbeat");
                return;
            }
        };
        for cell in
            ractor::pg::get_scoped_members(&CLUSTER_SCOPE.to_string(), &HEARTBEAT_GROUP.to_string())
        {
            if !cell.get_id().is_local() {
                let target: ActorRef<HeartbeatMessage> = cell.into();
                let _ = target.cast(HeartbeatMessage::Beat(wire.clone()));
            }
        }
    }

    fn dial_due(&mut self, now: Instant, myself: &ActorRef<ConnectorMsg>) {
        for (key, seed) in &mut self.seeds {
            let up = seed
                .name
                .as_ref()
                .and_then(|n| self.peers.get(n))
                .is_some_and(|p| p.up);
            if up {
                continue;
            }
            if let Some(since) = seed.dialing_since {
                if now.saturating_duration_since(since) <= self.args.handshake_timeout {
                    continue;
                }
                seed.dialing_since = None;
                seed.next_attempt = now + seed.backoff.next_delay(self.rng.random());
                continue;
            }
            if now < seed.next_attempt {
                continue;
            }
            seed.dialing_since = Some(now);
            let (key, addr) = (key.clone(), seed.addr.clone());
            let server = self.args.server.clone();
            let dialer = self.args.dialer.clone();
            let me = myself.clone();
            let timeout = self.args.handshake_timeout;
            tokio::spawn(async move {
                let result = match tokio::time::timeout(timeout, dialer.dial(&server, &addr)).await
                {
                    Ok(r) => r,
                    Err(_) => Err("connect timed out".to_string()),
                };
                let _ = me.cast(ConnectorMsg::DialDone { seed: key, result });
            });
        }
    }
}
