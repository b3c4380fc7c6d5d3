//! The consensus endpoint: the one actor per node that other nodes' consensus traffic reaches through
//! ractor_cluster, and the [`ClusterTransport`] that sends to it.
//!
//! Endpoints join the process group `verisim` / `consensus`; a peer is found by node name, and node
//! `n` of the Raft configuration is the cluster node named [`node_name`]`(n)`. Raft messages travel as
//! CBOR ([`Cbor`]), decoded (with full-consumption and size checks) on arrival and handed to the local
//! consensus actor, whichever incarnation is running. Proposals forwarded from other nodes arrive as an
//! RPC and are answered when applied.

use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;
use serde::{Deserialize, Serialize};
use tracing::debug;
use verisim_cluster::{Cbor, Discovery};
use verisim_raft::{ConfChange, Message, NodeId};

use super::actor::{Applied, ConsensusError, ConsensusMsg, wall_clock_ms};
use super::locator::ConsensusLocator;
use super::transport::Transport;
use crate::registry::Outcome;

/// Process-group scope and group of the consensus endpoints.
pub const SCOPE: &str = "verisim";
pub const GROUP: &str = "consensus";

/// The cluster node name of Raft node `id`.
pub fn node_name(id: NodeId) -> String {
    format!("n{id}")
}

/// What a forwarded proposal or membership change returns, on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardReply {
    Applied {
        index: u64,
        term: u64,
        outcome: Outcome,
    },
    /// A membership change was applied at `index`.
    Changed {
        index: u64,
    },
    /// The leader confirmed its leadership and applied `index`: a read that waits until it has
    /// applied `index` too sees every write acknowledged before it was asked.
    ReadIndex {
        index: u64,
    },
    NotLeader {
        leader: Option<NodeId>,
    },
    /// Can never succeed as asked.
    Invalid(String),
    /// Failed this time; may be retried.
    Failed(String),
    /// Asked, and no answer came: it may still take effect (see [`ConsensusError::Unknown`]).
    Unknown(String),
}

impl From<Result<Applied, ConsensusError>> for ForwardReply {
    fn from(r: Result<Applied, ConsensusError>) -> Self {
        match r {
            Ok(a) => ForwardReply::Applied {
                index: a.index,
                term: a.term,
                outcome: a.outcome,
            },
            Err(ConsensusError::NotLeader { leader }) => ForwardReply::NotLeader { leader },
            Err(ConsensusError::Invalid(reason)) => ForwardReply::Invalid(reason),
            Err(ConsensusError::Unknown(reason)) => ForwardReply::Unknown(reason),
            Err(e) => ForwardReply::Failed(e.to_string()),
        }
    }
}

#[derive(RactorClusterMessage)]
pub enum EndpointMsg {
    /// A Raft message for this node.
    Raft(Cbor<Message>),
    /// A registry command proposed through another node.
    #[rpc]
    Propose(Cbor<Vec<u8>>, RpcReplyPort<Cbor<ForwardReply>>),
    /// A membership change asked for by another node (a joining node asks to be added).
    #[rpc]
    ChangeMembership(Cbor<ConfChange>, RpcReplyPort<Cbor<ForwardReply>>),
    /// A read index asked for by another node, for its linearizable reads (the payload is unused).
    #[rpc]
    ReadIndex(Cbor<()>, RpcReplyPort<Cbor<ForwardReply>>),
    /// This node's wall clock, asked for by a peer estimating cluster time (the payload is unused;
    /// see `clock`).
    #[rpc]
    Time(Cbor<()>, RpcReplyPort<Cbor<u64>>),
}

pub struct Endpoint;

pub struct EndpointArgs {
    pub consensus: ConsensusLocator,
    /// How long a forwarded proposal may wait for its commit.
    pub propose_timeout: Duration,
}

impl Actor for Endpoint {
    type Msg = EndpointMsg;
    type State = EndpointArgs;
    type Arguments = EndpointArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<EndpointMsg>,
        args: EndpointArgs,
    ) -> Result<EndpointArgs, ActorProcessingErr> {
        ractor::pg::join_scoped(SCOPE.into(), GROUP.into(), vec![myself.get_cell()]);
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<EndpointMsg>,
        msg: EndpointMsg,
        st: &mut EndpointArgs,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            EndpointMsg::Raft(wire) => match (wire.decode(), st.consensus.get()) {
                (Ok(m), Some(consensus)) => {
                    let _ = consensus.cast(ConsensusMsg::Peer(m));
                }
                (Err(e), _) => debug!(error = %e, "malformed Raft message dropped"),
                (Ok(_), None) => debug!("no consensus actor running; Raft message dropped"),
            },
            EndpointMsg::Propose(wire, reply) => {
                let consensus = st.consensus.clone();
                let timeout = st.propose_timeout;
                // Answered from a task so a slow commit does not hold up Raft traffic.
                tokio::spawn(async move {
                    let answer = match wire.decode() {
                        Err(e) => ForwardReply::Failed(format!("malformed proposal: {e}")),
                        Ok(command) => propose_local(&consensus, command, timeout).await.into(),
                    };
                    if let Ok(encoded) = Cbor::encode(&answer) {
                        let _ = reply.send(encoded);
                    }
                });
            }
            EndpointMsg::Time(_, reply) => {
                // Answered at once, so the reading sits in the middle of the asker's round trip.
                if let Ok(encoded) = Cbor::encode(&wall_clock_ms()) {
                    let _ = reply.send(encoded);
                }
            }
            EndpointMsg::ReadIndex(_, reply) => {
                let consensus = st.consensus.clone();
                let timeout = st.propose_timeout;
                tokio::spawn(async move {
                    let answer = match read_index_local(&consensus, timeout).await {
                        Ok(index) => ForwardReply::ReadIndex { index },
                        Err(ConsensusError::NotLeader { leader }) => {
                            ForwardReply::NotLeader { leader }
                        }
                        Err(e) => ForwardReply::Failed(e.to_string()),
                    };
                    if let Ok(encoded) = Cbor::encode(&answer) {
                        let _ = reply.send(encoded);
                    }
                });
            }
            EndpointMsg::ChangeMembership(wire, reply) => {
                let consensus = st.consensus.clone();
                let timeout = st.propose_timeout;
                tokio::spawn(async move {
                    let answer = match wire.decode() {
                        Err(e) => ForwardReply::Failed(format!("malformed change: {e}")),
                        Ok(change) => match change_local(&consensus, change, timeout).await {
                            Ok(index) => ForwardReply::Changed { index },
                            Err(ConsensusError::NotLeader { leader }) => {
                                ForwardReply::NotLeader { leader }
                            }
                            Err(ConsensusError::Invalid(reason)) => ForwardReply::Invalid(reason),
                            Err(ConsensusError::Unknown(reason)) => ForwardReply::Unknown(reason),
                            Err(e) => ForwardReply::Failed(e.to_string()),
                        },
                    };
                    if let Ok(encoded) = Cbor::encode(&answer) {
                        let _ = reply.send(encoded);
                    }
                });
            }
        }
        Ok(())
    }
}

/// Asks this node's consensus actor for a read index (it must lead).
pub async fn read_index_local(
    consensus: &ConsensusLocator,
    timeout: Duration,
) -> Result<u64, ConsensusError> {
    ask(consensus, timeout, |reply| ConsensusMsg::ReadIndex {
        reply,
    })
    .await
}

/// Proposes `command` to this node's consensus actor and waits for the outcome.
pub async fn propose_local(
    consensus: &ConsensusLocator,
    command: Vec<u8>,
    timeout: Duration,
) -> Result<Applied, ConsensusError> {
    ask(consensus, timeout, |reply| ConsensusMsg::Propose {
        command,
        reply,
    })
    .await
}

/// Asks this node's consensus actor for a membership change and waits until it is applied.
pub async fn change_local(
    consensus: &ConsensusLocator,
    change: ConfChange,
    timeout: Duration,
) -> Result<u64, ConsensusError> {
    ask(consensus, timeout, |reply| ConsensusMsg::ChangeMembership {
        change,
        reply,
    })
    .await
}

/// One request to the consensus actor that is running now, answered once applied.
async fn ask<T: Send + 'static>(
    consensus: &ConsensusLocator,
    timeout: Duration,
    msg: impl FnOnce(RpcReplyPort<Result<T, ConsensusError>>) -> ConsensusMsg,
) -> Result<T, ConsensusError> {
    let actor = consensus
        .get()
        .ok_or_else(|| ConsensusError::Refused("the consensus actor is restarting".into()))?;
    match actor.call(msg, Some(timeout)).await {
        Ok(CallResult::Success(r)) => r,
        // Delivered, unanswered: a proposal may already be in the log.
        Ok(CallResult::Timeout) => Err(ConsensusError::Unknown(
            "timed out waiting for the commit".into(),
        )),
        Ok(CallResult::SenderError) => Err(ConsensusError::Unknown(
            "the consensus actor stopped before answering".into(),
        )),
        // Never delivered: nothing was asked.
        Err(_) => Err(ConsensusError::Refused(
            "the consensus actor stopped".into(),
        )),
    }
}

/// Sends Raft messages to peers' endpoints over ractor_cluster.
pub struct ClusterTransport {
    discovery: Discovery,
}

impl ClusterTransport {
    pub fn new(discovery: Discovery) -> Arc<Self> {
        Arc::new(Self { discovery })
    }

    /// The endpoint of node `id`, if it is connected.
    pub fn endpoint(&self, id: NodeId) -> Option<ActorRef<EndpointMsg>> {
        self.discovery.actor_on(SCOPE, GROUP, &node_name(id))
    }

    /// Every connected node but `me` whose name is a Raft node's, with its endpoint.
    pub fn peers(&self, me: NodeId) -> Vec<(NodeId, ActorRef<EndpointMsg>)> {
        self.discovery
            .members_by_node(SCOPE, GROUP)
            .into_iter()
            .filter_map(|(node, mut cells)| {
                let id = node.strip_prefix('n')?.parse::<NodeId>().ok()?;
                // Several endpoints under one name is a misconfiguration: trust none of them.
                let cell = cells.pop().filter(|_| cells.is_empty())?;
                (id != me).then(|| (id, ActorRef::from(cell)))
            })
            .collect()
    }

    /// The endpoints of every connected node but `me`.
    pub fn peer_endpoints(&self, me: NodeId) -> Vec<ActorRef<EndpointMsg>> {
        let me = node_name(me);
        self.discovery
            .members_by_node(SCOPE, GROUP)
            .into_iter()
            .filter(|(node, _)| *node != me)
            .flat_map(|(_, cells)| cells)
            .map(ActorRef::from)
            .collect()
    }
}

impl Transport for ClusterTransport {
    fn send(&self, msg: Message) {
        let Some(endpoint) = self.endpoint(msg.to) else {
            return; // Not connected: Raft retries.
        };
        match Cbor::encode(&msg) {
            Ok(wire) => {
                let _ = endpoint.cast(EndpointMsg::Raft(wire));
            }
            Err(e) => debug!(error = %e, to = msg.to, "Raft message not sent"),
        }
    }
}
