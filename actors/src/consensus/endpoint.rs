//! The consensus endpoint: the one actor per node that other nodes' consensus traffic reaches through
//! ractor_cluster, and the [`ClusterTransport`] that sends to it.
//!
//! Endpoints join the process group `verisim` / `consensus`; a peer is found by node name, and node
//! `n` of the Raft configuration is the cluster node named [`node_name`]`(n)`. Raft messages travel as
//! CBOR ([`Cbor`]), decoded (with full-consumption and size checks) on arrival and handed to the local
//! consensus actor, whichever incarnation is running. Proposals forwarded from other nodes (by their
//! [`crate::consensus::RegistryClient`]) arrive as an RPC and are answered when applied.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;
use serde::{Deserialize, Serialize};
use tracing::debug;
use verisim_cluster::{Cbor, Discovery};
use verisim_raft::{ConfChange, Index, Message, NodeId};

use super::actor::{Applied, ConsensusError, ConsensusMsg, wall_clock_ms};
use super::locator::ConsensusLocator;
use super::transport::Transport;

/// Process-group scope and group of the consensus endpoints.
pub const SCOPE: &str = "verisim";
pub const GROUP: &str = "consensus";

/// The cluster node name of Raft node `id`.
pub fn node_name(id: NodeId) -> String {
    format!("n{id}")
}

/// What a request forwarded to the leader returns, on the wire: the leader's own answer, or the
/// consensus layer's one error ([`ConsensusError`]) as it is.
pub type ForwardReply = Result<Forwarded, ConsensusError>;

/// The answers of [`ForwardReply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Forwarded {
    /// A proposal committed and was applied with this outcome.
    Applied(Applied),
    /// A membership change was applied at `index`.
    Changed { index: Index },
    /// The leader confirmed its leadership and applied `index`: a read that waits until it has
    /// applied `index` too sees every write acknowledged before it was asked.
    ReadIndex { index: Index },
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
    /// Decides whether a forwarded command may be proposed (the registry's
    /// `Proposal::admit`); the consensus layer itself does not read commands.
    pub admit: fn(&[u8]) -> Result<(), String>,
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
                let admit = st.admit;
                // Answered from a task so a slow commit does not hold up Raft traffic.
                tokio::spawn(async move {
                    let command = wire
                        .decode()
                        .map_err(|e| format!("malformed proposal: {e}"))
                        .and_then(|command: Vec<u8>| admit(&command).map(|()| command));
                    let answer = match command {
                        Err(e) => Err(ConsensusError::Invalid(e)),
                        Ok(command) => consensus
                            .propose(command, timeout)
                            .await
                            .map(Forwarded::Applied),
                    };
                    answer_with(reply, &answer);
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
                    let answer = consensus
                        .read_index(timeout)
                        .await
                        .map(|index| Forwarded::ReadIndex { index });
                    answer_with(reply, &answer);
                });
            }
            EndpointMsg::ChangeMembership(wire, reply) => {
                let consensus = st.consensus.clone();
                let timeout = st.propose_timeout;
                tokio::spawn(async move {
                    let answer = match wire.decode() {
                        Err(e) => Err(ConsensusError::Invalid(format!("malformed change: {e}"))),
                        Ok(change) => consensus
                            .change_membership(change, timeout)
                            .await
                            .map(|index| Forwarded::Changed { index }),
                    };
                    answer_with(reply, &answer);
                });
            }
        }
        Ok(())
    }
}

fn answer_with(reply: RpcReplyPort<Cbor<ForwardReply>>, answer: &ForwardReply) {
    match Cbor::encode(answer) {
        Ok(encoded) => {
            let _ = reply.send(encoded);
        }
        Err(e) => debug!(error = %e, "forwarded answer not encodable; left unanswered"),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A forwarded proposal the admission check refuses comes back `Invalid`, without reaching a
    /// consensus actor (none runs here: one reached would answer `NoLeader`).
    async fn forward(admit: fn(&[u8]) -> Result<(), String>, wire: Cbor<Vec<u8>>) -> ForwardReply {
        let args = EndpointArgs {
            consensus: ConsensusLocator::named(),
            propose_timeout: Duration::from_millis(200),
            admit,
        };
        let (endpoint, handle) = Actor::spawn(None, Endpoint, args).await.unwrap();
        let reply = ractor::call!(endpoint, EndpointMsg::Propose, wire).unwrap();
        endpoint.stop(None);
        handle.await.unwrap();
        reply.decode().unwrap()
    }

    #[tokio::test]
    async fn a_forwarded_proposal_the_registry_refuses_is_answered_invalid() {
        let refuse: fn(&[u8]) -> Result<(), String> = |b| Err(format!("refused {} bytes", b.len()));
        let wire = Cbor::encode(&vec![1u8, 2, 3]).unwrap();
        assert_eq!(
            forward(refuse, wire).await,
            Err(ConsensusError::Invalid("refused 3 bytes".into()))
        );
    }

    #[tokio::test]
    async fn a_forwarded_proposal_that_is_not_bytes_is_answered_invalid() {
        let admit_all: fn(&[u8]) -> Result<(), String> = |_| Ok(());
        // A CBOR text string where the endpoint expects a byte string.
        let wire: Cbor<Vec<u8>> = Cbor::from_encoded(Cbor::encode(&"text").unwrap().into_encoded());
        match forward(admit_all, wire).await {
            Err(ConsensusError::Invalid(e)) => assert!(e.contains("malformed proposal"), "{e}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
}
