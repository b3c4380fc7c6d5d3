//! The consensus endpoint: the one actor per node that other nodes' consensus traffic reaches through
//! ractor_cluster, and the [`ClusterTransport`] that sends to it.
//!
//! Endpoints join the process group `verisim` / `consensus`; a peer is found by node name, and node
//! `n` of the Raft configuration is the cluster node named [`node_name`]`(n)`. Every message and
//! answer travels sealed ([`Sealed`]): with node identities configured, a message whose seal does not
//! prove the node it claims to come from is refused and counted
//! (`verisim_cluster_messages_refused_total`), and a Raft message is handed to the local consensus
//! actor only if its `from` is the node that sealed it. Proposals forwarded from other nodes (by
//! their [`crate::consensus::RegistryClient`]) arrive as an RPC and are answered when applied.

use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::RactorClusterMessage;
use serde::Serialize;
use serde_bytes::ByteBuf;
use tracing::debug;
use verisim_cluster::{CodecError, Discovery, Keyring, Opened, SealError, Sealed};
use verisim_raft::{ConfChange, Message, NodeId};

use super::actor::{ConsensusError, ConsensusMsg, wall_clock_ms};
use super::forward_batch::{BatchOutcome, ForwardBatchReply, MAX_BATCH_PROPOSALS, SendBatch};
pub use super::forwarded::{ForwardReply, Forwarded};
use super::locator::ConsensusLocator;
use super::transport::Transport;
use super::wire;
use crate::telemetry::{TELEMETRY, message_refused as refused};

/// The kinds sealed messages of the endpoint are checked for (a message of one kind never opens as
/// another).
pub mod kind {
    pub const RAFT: &str = "raft";
    pub const PROPOSE: &str = "propose";
    pub const PROPOSE_BATCH: &str = "propose_batch";
    pub const CHANGE_MEMBERSHIP: &str = "change_membership";
    pub const READ_INDEX: &str = "read_index";
    pub const TIME: &str = "time";
    pub const FORWARD_REPLY: &str = "forward_reply";
    pub const FORWARD_BATCH_REPLY: &str = "forward_batch_reply";
    pub const TIME_REPLY: &str = "time_reply";
}

/// Process-group scope and group of the consensus endpoints.
pub const SCOPE: &str = "verisim";
pub const GROUP: &str = "consensus";

/// The cluster node name of Raft node `id`.
pub fn node_name(id: NodeId) -> String {
    format!("n{id}")
}

#[derive(RactorClusterMessage)]
pub enum EndpointMsg {
    /// A Raft message for this node.
    Raft(Sealed<Message>),
    /// A registry command proposed through another node (one at a time: what nodes of an
    /// earlier version send; this version's nodes send [`EndpointMsg::ProposeBatch`]).
    #[rpc]
    Propose(Sealed<Vec<u8>>, RpcReplyPort<Sealed<ForwardReply>>),
    /// Registry commands proposed through another node, batched (`forward_batch`): proposed
    /// together and answered each, in order, in one answer.
    #[rpc]
    ProposeBatch(
        Sealed<Vec<ByteBuf>>,
        RpcReplyPort<Sealed<ForwardBatchReply>>,
    ),
    /// A membership change asked for by another node (a joining node asks to be added).
    #[rpc]
    ChangeMembership(Sealed<ConfChange>, RpcReplyPort<Sealed<ForwardReply>>),
    /// A read index asked for by another node, for its linearizable reads (the payload is unused).
    #[rpc]
    ReadIndex(Sealed<()>, RpcReplyPort<Sealed<ForwardReply>>),
    /// This node's wall clock, asked for by a peer estimating cluster time (the payload is unused;
    /// see `clock`).
    #[rpc]
    Time(Sealed<()>, RpcReplyPort<Sealed<u64>>),
}

pub struct Endpoint;

pub struct EndpointArgs {
    pub consensus: ConsensusLocator,
    /// How long a forwarded proposal may wait for its commit.
    pub propose_timeout: Duration,
    /// Decides whether a forwarded command may be proposed (the registry's
    /// `Proposal::admit`); the consensus layer itself does not read commands.
    pub admit: fn(&[u8]) -> Result<(), String>,
    /// Seals answers and checks what arrives.
    pub keyring: Arc<Keyring>,
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
        let keyring = st.keyring.clone();
        match msg {
            EndpointMsg::Raft(wire) => {
                let Some(Opened { from, value: m }) = open(&keyring, kind::RAFT, &wire) else {
                    return Ok(());
                };
                if m.from != from || m.to != keyring.node() {
                    // Sealed by one node, claiming to be from (or for) another.
                    refused(
                        kind::RAFT,
                        "claimed_id",
                        &format!("{from} sent {}→{}", m.from, m.to),
                    );
                } else if let Some(consensus) = st.consensus.get() {
                    let _ = consensus.cast(ConsensusMsg::Peer(m));
                } else {
                    debug!("no consensus actor running; Raft message dropped");
                }
            }
            EndpointMsg::Propose(wire, reply) => {
                let Some((from, command)) =
                    open_request(&keyring, kind::PROPOSE, "proposal", &wire)
                else {
                    return Ok(());
                };
                let consensus = st.consensus.clone();
                let timeout = st.propose_timeout;
                let admit = st.admit;
                // Answered from a task so a slow commit does not hold up Raft traffic.
                tokio::spawn(async move {
                    let answer = match command.and_then(|c| admit(&c).map(|()| c)) {
                        Err(e) => Err(ConsensusError::Invalid(e)),
                        Ok(command) => consensus
                            .propose(command, timeout)
                            .await
                            .map(Forwarded::Applied),
                    };
                    answer_with(&keyring, kind::FORWARD_REPLY, from, reply, &answer);
                });
            }
            EndpointMsg::ProposeBatch(wire, reply) => {
                let Some((from, commands)) =
                    open_request(&keyring, kind::PROPOSE_BATCH, "proposals", &wire)
                else {
                    return Ok(());
                };
                let commands = commands.and_then(|c| {
                    if c.len() > MAX_BATCH_PROPOSALS {
                        Err(format!(
                            "a batch of {} proposals, at most {MAX_BATCH_PROPOSALS}",
                            c.len()
                        ))
                    } else {
                        Ok(c)
                    }
                });
                let consensus = st.consensus.clone();
                let timeout = st.propose_timeout;
                let admit = st.admit;
                tokio::spawn(async move {
                    let answer = match commands {
                        Err(e) => Err(ConsensusError::Invalid(e)),
                        // Proposed together: every command reaches the consensus actor before
                        // the first is answered, so they share an append and its fsync.
                        Ok(commands) => {
                            Ok(futures::future::join_all(commands.into_iter().map(|c| {
                                let consensus = &consensus;
                                async move {
                                    match admit(&c) {
                                        Err(e) => Err(ConsensusError::Invalid(e)),
                                        Ok(()) => consensus
                                            .propose(c.into_vec(), timeout)
                                            .await
                                            .map(Forwarded::Applied),
                                    }
                                }
                            }))
                            .await)
                        }
                    };
                    answer_with(&keyring, kind::FORWARD_BATCH_REPLY, from, reply, &answer);
                });
            }
            EndpointMsg::Time(wire, reply) => {
                let Some(Opened { from, .. }) = open(&keyring, kind::TIME, &wire) else {
                    return Ok(());
                };
                // Answered at once, so the reading sits in the middle of the asker's round trip.
                if let Ok(encoded) =
                    Sealed::seal(kind::TIME_REPLY, &wall_clock_ms(), &keyring, from)
                {
                    let _ = reply.send(encoded);
                }
            }
            EndpointMsg::ReadIndex(wire, reply) => {
                let Some(Opened { from, .. }) = open(&keyring, kind::READ_INDEX, &wire) else {
                    return Ok(());
                };
                let consensus = st.consensus.clone();
                let timeout = st.propose_timeout;
                tokio::spawn(async move {
                    let answer = consensus
                        .read_index(timeout)
                        .await
                        .map(|index| Forwarded::ReadIndex { index });
                    answer_with(&keyring, kind::FORWARD_REPLY, from, reply, &answer);
                });
            }
            EndpointMsg::ChangeMembership(wire, reply) => {
                let Some(Opened {
                    from,
                    value: change,
                }) = open(&keyring, kind::CHANGE_MEMBERSHIP, &wire)
                else {
                    return Ok(());
                };
                let consensus = st.consensus.clone();
                let timeout = st.propose_timeout;
                tokio::spawn(async move {
                    let answer = consensus
                        .change_membership(change, timeout)
                        .await
                        .map(|index| Forwarded::Changed { index });
                    answer_with(&keyring, kind::FORWARD_REPLY, from, reply, &answer);
                });
            }
        }
        Ok(())
    }
}

/// Opens a sealed message, or counts and logs why it is refused. A refused RPC is left unanswered:
/// its caller times out, as it would against a node that does not know it.
fn open<T: serde::de::DeserializeOwned>(
    keyring: &Keyring,
    kind: &'static str,
    wire: &Sealed<T>,
) -> Option<Opened<T>> {
    match wire.open(kind, keyring) {
        Ok(opened) => Some(opened),
        Err(e) => {
            refused(kind, e.code(), &e.to_string());
            None
        }
    }
}

/// Opens a sealed answer from `node`: it must be sealed by `node` itself.
///
/// # Errors
/// A [`SealError`], counted; [`SealError::WrongNode`] when another node sealed it.
pub fn open_answer<T: serde::de::DeserializeOwned>(
    keyring: &Keyring,
    kind: &'static str,
    node: NodeId,
    wire: &Sealed<T>,
) -> Result<T, SealError> {
    let checked = wire.open(kind, keyring).and_then(|o| {
        if o.from == node {
            Ok(o.value)
        } else {
            Err(SealError::WrongNode {
                from: node,
                credential: o.from,
            })
        }
    });
    if let Err(e) = &checked {
        refused(kind, e.code(), &e.to_string());
    }
    checked
}

/// Opens a request another node forwarded. A request sealed by a node whose body does not decode
/// is answered (`Err` with why), so its caller learns why; anything else refused is counted and
/// left unanswered (`None`).
fn open_request<T: serde::de::DeserializeOwned>(
    keyring: &Keyring,
    kind: &'static str,
    what: &str,
    wire: &Sealed<T>,
) -> Option<(NodeId, Result<T, String>)> {
    match wire.open(kind, keyring) {
        Ok(Opened { from, value }) => Some((from, Ok(value))),
        Err(SealError::Malformed(e)) if wire.claimed_sender().is_some() => Some((
            wire.claimed_sender().unwrap_or_default(),
            Err(format!("malformed {what}: {e}")),
        )),
        Err(e) => {
            refused(kind, e.code(), &e.to_string());
            None
        }
    }
}

fn answer_with<T: Serialize>(
    keyring: &Keyring,
    kind: &'static str,
    to: NodeId,
    reply: RpcReplyPort<Sealed<T>>,
    answer: &T,
) {
    match Sealed::seal(kind, answer, keyring, to) {
        Ok(encoded) => {
            let _ = reply.send(encoded);
        }
        Err(e) => debug!(error = %e, "forwarded answer not encodable; left unanswered"),
    }
}

/// Sends Raft messages to peers' endpoints over ractor_cluster, sealed with this node's keyring.
pub struct ClusterTransport {
    discovery: Discovery,
    keyring: Arc<Keyring>,
}

impl ClusterTransport {
    pub fn new(discovery: Discovery, keyring: Arc<Keyring>) -> Arc<Self> {
        Arc::new(Self { discovery, keyring })
    }

    /// This node's keyring.
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }

    /// `value` sealed as a message of `kind` for node `to`.
    ///
    /// # Errors
    /// [`CodecError`] when it does not encode.
    pub fn seal<T: Serialize>(
        &self,
        kind: &str,
        value: &T,
        to: NodeId,
    ) -> Result<Sealed<T>, CodecError> {
        Sealed::seal(kind, value, &self.keyring, to)
    }

    /// The endpoint of node `id`, if it is connected.
    pub fn endpoint(&self, id: NodeId) -> Option<ActorRef<EndpointMsg>> {
        self.discovery.actor_on(SCOPE, GROUP, &node_name(id))
    }

    /// Sends a batch of forwarded proposals to a node's endpoint (`forward_batch`).
    pub fn batch_sender(self: &Arc<Self>) -> SendBatch {
        let transport = Arc::clone(self);
        Arc::new(move |node, commands, wait| {
            let transport = Arc::clone(&transport);
            Box::pin(async move { transport.send_batch(node, commands, wait).await })
        })
    }

    async fn send_batch(
        &self,
        node: NodeId,
        commands: Vec<ByteBuf>,
        wait: Duration,
    ) -> BatchOutcome {
        let Some(endpoint) = self.endpoint(node) else {
            return BatchOutcome::NotSent(format!("node {node} is not connected"));
        };
        let wire = match self.seal(kind::PROPOSE_BATCH, &commands, node) {
            Ok(wire) => wire,
            Err(e) => return BatchOutcome::NotSent(format!("proposals not encodable: {e}")),
        };
        match endpoint
            .call(|r| EndpointMsg::ProposeBatch(wire, r), Some(wait))
            .await
        {
            Ok(CallResult::Success(answer)) => {
                match open_answer(&self.keyring, kind::FORWARD_BATCH_REPLY, node, &answer) {
                    Ok(answer) => BatchOutcome::Answered(answer),
                    Err(e) => BatchOutcome::Unanswered(format!("an unreadable answer: {e}")),
                }
            }
            // Sent, unanswered: the leader may have appended them.
            Ok(CallResult::Timeout | CallResult::SenderError) => {
                BatchOutcome::Unanswered(format!("no answer from node {node}"))
            }
            // Not sent: nothing was asked.
            Err(e) => BatchOutcome::NotSent(format!("cannot reach node {node}: {e}")),
        }
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
        self.send_all(vec![msg]);
    }

    /// Each distinct body is encoded once (`wire`); every message is sealed for its own receiver.
    fn send_all(&self, msgs: Vec<Message>) {
        // Nothing is encoded for a peer that is not connected: Raft retries.
        let (endpoints, msgs): (Vec<_>, Vec<_>) = msgs
            .into_iter()
            .filter_map(|m| self.endpoint(m.to).map(|e| (e, m)))
            .unzip();
        let (encoded, bodies) = wire::encode_all(&msgs);
        TELEMETRY.raft_bodies_encoded.inc_by(bodies as u64);
        for (endpoint, wire::Encoded { to, bytes }) in endpoints.into_iter().zip(encoded) {
            match bytes {
                Ok(bytes) => {
                    let sealed = Sealed::seal_encoded(kind::RAFT, bytes, &self.keyring, to);
                    if endpoint.cast(EndpointMsg::Raft(sealed)).is_ok() {
                        TELEMETRY.raft_messages_sent.inc();
                    }
                }
                Err(e) => debug!(error = %e, to, "Raft message not sent"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use verisim_cluster::Authority;

    use super::*;
    use crate::telemetry::{Refused, TELEMETRY};

    /// Node 1's endpoint (no consensus actor running) with `keyring`, asked `msg`; the sealed
    /// answer, if any.
    async fn ask<T: Send + 'static>(
        admit: fn(&[u8]) -> Result<(), String>,
        keyring: Keyring,
        msg: impl FnOnce(RpcReplyPort<Sealed<T>>) -> EndpointMsg,
    ) -> Option<Sealed<T>> {
        let args = EndpointArgs {
            consensus: ConsensusLocator::named(),
            propose_timeout: Duration::from_millis(200),
            admit,
            keyring: Arc::new(keyring),
        };
        let (endpoint, handle) = Actor::spawn(None, Endpoint, args).await.unwrap();
        let reply = endpoint
            .call(msg, Some(Duration::from_millis(500)))
            .await
            .unwrap();
        endpoint.stop(None);
        handle.await.unwrap();
        match reply {
            ractor::rpc::CallResult::Success(answer) => Some(answer),
            _ => None,
        }
    }

    /// A proposal `wire` from node 2.
    async fn forward(
        admit: fn(&[u8]) -> Result<(), String>,
        keyring: Keyring,
        wire: Sealed<Vec<u8>>,
    ) -> Option<Sealed<ForwardReply>> {
        ask(admit, keyring, |r| EndpointMsg::Propose(wire, r)).await
    }

    #[tokio::test]
    async fn a_forwarded_proposal_the_registry_refuses_is_answered_invalid() {
        let refuse: fn(&[u8]) -> Result<(), String> = |b| Err(format!("refused {} bytes", b.len()));
        let node2 = Keyring::open(2);
        let wire = Sealed::seal(kind::PROPOSE, &vec![1u8, 2, 3], &node2, 1).unwrap();
        let answer = forward(refuse, Keyring::open(1), wire).await.unwrap();
        assert_eq!(
            open_answer(&node2, kind::FORWARD_REPLY, 1, &answer).unwrap(),
            Err(ConsensusError::Invalid("refused 3 bytes".into()))
        );
    }

    #[tokio::test]
    async fn a_forwarded_proposal_that_is_not_bytes_is_answered_invalid() {
        let admit_all: fn(&[u8]) -> Result<(), String> = |_| Ok(());
        // A CBOR text string where the endpoint expects a byte string.
        let node2 = Keyring::open(2);
        let wire = Sealed::seal(kind::PROPOSE, &"text", &node2, 1).unwrap();
        let wire: Sealed<Vec<u8>> = Sealed::from_encoded(wire.as_bytes().to_vec());
        let answer = forward(admit_all, Keyring::open(1), wire).await.unwrap();
        match open_answer(&node2, kind::FORWARD_REPLY, 1, &answer).unwrap() {
            Err(ConsensusError::Invalid(e)) => assert!(e.contains("malformed proposal"), "{e}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    /// The attack: a process holding the cookie but no identity from this cluster's authority (its
    /// own authority's, or none) forwards a proposal. It is not proposed, not answered, and counted.
    #[tokio::test]
    async fn a_proposal_without_an_identity_of_this_cluster_is_refused_unanswered() {
        let admit_all: fn(&[u8]) -> Result<(), String> = |_| Ok(());
        let ours = Authority::generate();
        let theirs = Authority::generate();
        let node1 = || Keyring::with_identity(ours.issue(1)).unwrap();
        let before = refused_count(kind::PROPOSE, "not_issued");
        let rogue = Keyring::with_identity(theirs.issue(2)).unwrap();
        let wire = Sealed::seal(kind::PROPOSE, &vec![1u8], &rogue, 1).unwrap();
        assert!(forward(admit_all, node1(), wire).await.is_none());
        assert!(refused_count(kind::PROPOSE, "not_issued") > before);

        let unsealed = Sealed::seal(kind::PROPOSE, &vec![1u8], &Keyring::open(2), 1).unwrap();
        assert!(forward(admit_all, node1(), unsealed).await.is_none());

        // With an identity of this cluster, the same proposal is answered.
        let honest = Keyring::with_identity(ours.issue(2)).unwrap();
        let wire = Sealed::seal(kind::PROPOSE, &vec![1u8], &honest, 1).unwrap();
        let answer = forward(|_| Err("no".into()), node1(), wire).await.unwrap();
        assert_eq!(
            open_answer(&honest, kind::FORWARD_REPLY, 1, &answer).unwrap(),
            Err(ConsensusError::Invalid("no".into()))
        );
    }

    /// A batch `wire` from node 2.
    async fn forward_batch(
        admit: fn(&[u8]) -> Result<(), String>,
        keyring: Keyring,
        wire: Sealed<Vec<ByteBuf>>,
    ) -> Option<Sealed<ForwardBatchReply>> {
        ask(admit, keyring, |r| EndpointMsg::ProposeBatch(wire, r)).await
    }

    fn batch(commands: &[&[u8]]) -> Vec<ByteBuf> {
        commands.iter().map(|c| ByteBuf::from(c.to_vec())).collect()
    }

    /// Each command of a batch is admitted and answered on its own, in order: one refused command
    /// refuses nothing else.
    #[tokio::test]
    async fn a_batch_is_answered_per_proposal_in_order() {
        let admit: fn(&[u8]) -> Result<(), String> = |b| match b.first() {
            Some(0) => Err("zero".into()),
            _ => Ok(()),
        };
        let node2 = Keyring::open(2);
        let wire = Sealed::seal(kind::PROPOSE_BATCH, &batch(&[&[0], &[1, 2]]), &node2, 1).unwrap();
        let answer = forward_batch(admit, Keyring::open(1), wire).await.unwrap();
        let answers = open_answer(&node2, kind::FORWARD_BATCH_REPLY, 1, &answer)
            .unwrap()
            .expect("answered per proposal");
        assert_eq!(answers.len(), 2);
        assert_eq!(answers[0], Err(ConsensusError::Invalid("zero".into())));
        // Admitted, then refused by the consensus layer (no consensus actor runs here).
        assert!(
            matches!(&answers[1], Err(ConsensusError::Refused(_))),
            "{:?}",
            answers[1]
        );
    }

    static ADMITTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    /// The attack: a peer sends a batch far over the bound, to make the leader do unbounded work for
    /// one message. It is refused whole, before any command is looked at.
    #[tokio::test]
    async fn a_batch_over_the_bound_is_refused_before_any_command_is_read() {
        let count: fn(&[u8]) -> Result<(), String> = |_| {
            ADMITTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        };
        let node2 = Keyring::open(2);
        let huge = vec![ByteBuf::from(vec![1u8]); MAX_BATCH_PROPOSALS + 1];
        let wire = Sealed::seal(kind::PROPOSE_BATCH, &huge, &node2, 1).unwrap();
        let answer = forward_batch(count, Keyring::open(1), wire).await.unwrap();
        match open_answer(&node2, kind::FORWARD_BATCH_REPLY, 1, &answer).unwrap() {
            Err(ConsensusError::Invalid(e)) => assert!(e.contains("at most"), "{e}"),
            other => panic!("expected Invalid, got {other:?}"),
        }
        assert_eq!(ADMITTED.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    /// The attack: a batch from a process without an identity of this cluster is not proposed,
    /// not answered, and counted.
    #[tokio::test]
    async fn a_batch_without_an_identity_of_this_cluster_is_refused_unanswered() {
        let admit_all: fn(&[u8]) -> Result<(), String> = |_| Ok(());
        let ours = Authority::generate();
        let theirs = Authority::generate();
        let node1 = || Keyring::with_identity(ours.issue(1)).unwrap();
        let before = refused_count(kind::PROPOSE_BATCH, "not_issued");
        let rogue = Keyring::with_identity(theirs.issue(2)).unwrap();
        let wire = Sealed::seal(kind::PROPOSE_BATCH, &batch(&[&[1]]), &rogue, 1).unwrap();
        assert!(forward_batch(admit_all, node1(), wire).await.is_none());
        assert!(refused_count(kind::PROPOSE_BATCH, "not_issued") > before);
        // A batch sealed as a single proposal does not open as a batch.
        let honest = Keyring::with_identity(ours.issue(2)).unwrap();
        let single = Sealed::seal(kind::PROPOSE, &batch(&[&[1]]), &honest, 1).unwrap();
        assert!(forward_batch(admit_all, node1(), single).await.is_none());
    }

    fn refused_count(kind: &'static str, reason: &'static str) -> u64 {
        TELEMETRY
            .messages_refused
            .get_or_create(&Refused { kind, reason })
            .get()
    }
}
