//! The registry's one consensus client: every commit, read barrier and membership change of a node
//! (the proxy, the admin API, the join loop) goes through a [`RegistryClient`].
//!
//! It remembers the leader it last heard of, so a follower's proposal costs one forwarded message to
//! the leader's endpoint, shared with the proposals forwarded with it (`forward_batch`); the local consensus actor is asked only when this node leads or no leader
//! is known, and a node that knows none (a joining node) asks its connected peers in turn. Every
//! failure is a [`ConsensusError`], the same one the leader answered, never a string in between.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::RpcReplyPort;
use ractor::rpc::CallResult;
use verisim_cluster::Sealed;
use verisim_raft::{ConfChange, Index, NodeId};

use super::actor::{Applied, ConsensusError};
use super::endpoint::{ClusterTransport, EndpointMsg, ForwardReply, Forwarded, kind, open_answer};
use super::forward_batch::ProposalBatcher;
use super::locator::ConsensusLocator;
use super::replica::SharedReplica;

/// Commits, read barriers and membership changes through whichever node leads. Cheap to clone; the
/// clones share the remembered leader.
#[derive(Clone)]
pub struct RegistryClient {
    me: NodeId,
    consensus: ConsensusLocator,
    transport: Arc<ClusterTransport>,
    replica: SharedReplica,
    leader: Arc<Mutex<Option<NodeId>>>,
    /// Proposals forwarded to the leader, batched.
    batcher: Arc<ProposalBatcher>,
    /// Which connected peer a node that knows no leader asks next.
    next_peer: Arc<AtomicUsize>,
}

impl RegistryClient {
    pub fn new(
        me: NodeId,
        consensus: ConsensusLocator,
        transport: Arc<ClusterTransport>,
        replica: SharedReplica,
    ) -> Self {
        Self {
            me,
            consensus,
            batcher: ProposalBatcher::new(transport.batch_sender()),
            transport,
            replica,
            leader: Arc::default(),
            next_peer: Arc::default(),
        }
    }

    /// The node this client would ask first (the leader it last heard of).
    pub fn leader_hint(&self) -> Option<NodeId> {
        *self.leader.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether this node's consensus actor leads now (a leader's background work: the rebalancer).
    pub async fn leads(&self) -> bool {
        self.consensus
            .status(Duration::from_secs(5))
            .await
            .is_some_and(|s| s.role == verisim_raft::Role::Leader)
    }

    /// Proposes a registry command and waits until it is committed and applied by the leader. An
    /// unanswered proposal is never made again ([`ConsensusError::Unknown`]): it may commit later.
    pub async fn propose(
        &self,
        command: Vec<u8>,
        timeout: Duration,
    ) -> Result<Applied, ConsensusError> {
        self.follow_leader(
            timeout,
            Ambiguous::Fail,
            |left| self.consensus.propose(command.clone(), left),
            |leader, left| self.batcher.propose(leader, command.clone(), left),
        )
        .await
    }

    /// [`RegistryClient::propose`], then waits until this node's replica has applied it, so that
    /// what the caller reads next includes it.
    pub async fn commit(
        &self,
        command: Vec<u8>,
        timeout: Duration,
    ) -> Result<Applied, ConsensusError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let applied = self.propose(command, timeout).await?;
        self.wait_applied(applied.index, deadline).await?;
        Ok(applied)
    }

    /// Waits until this node's replica includes every write acknowledged before the call (the
    /// leader's read index, applied here): reads of the replica after it are linearizable. Returns
    /// the read index.
    pub async fn read_barrier(&self, timeout: Duration) -> Result<Index, ConsensusError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let index = self
            .follow_leader(
                timeout,
                Ambiguous::Retry,
                |left| self.consensus.read_index(left),
                |leader, left| async move {
                    let wire = self
                        .transport
                        .seal(kind::READ_INDEX, &(), leader)
                        .map_err(|e| ConsensusError::Invalid(e.to_string()))?;
                    match self
                        .forward(leader, left, |r| EndpointMsg::ReadIndex(wire, r))
                        .await?
                    {
                        Forwarded::ReadIndex { index } => Ok(index),
                        other => Err(unexpected(&other)),
                    }
                },
            )
            .await?;
        self.wait_applied(index, deadline).await?;
        Ok(index)
    }

    /// Makes a membership change through the leader; returns the index it was applied at.
    pub async fn change_membership(
        &self,
        change: ConfChange,
        timeout: Duration,
    ) -> Result<Index, ConsensusError> {
        self.follow_leader(
            timeout,
            Ambiguous::Fail,
            |left| self.consensus.change_membership(change, left),
            |leader, left| async move {
                let wire = self
                    .transport
                    .seal(kind::CHANGE_MEMBERSHIP, &change, leader)
                    .map_err(|e| ConsensusError::Invalid(e.to_string()))?;
                match self
                    .forward(leader, left, |r| EndpointMsg::ChangeMembership(wire, r))
                    .await?
                {
                    Forwarded::Changed { index } => Ok(index),
                    other => Err(unexpected(&other)),
                }
            },
        )
        .await
    }

    async fn wait_applied(
        &self,
        index: Index,
        deadline: tokio::time::Instant,
    ) -> Result<(), ConsensusError> {
        if self.replica.applied(index, deadline).await {
            Ok(())
        } else {
            Err(ConsensusError::NotApplied { index })
        }
    }

    /// One RPC to the endpoint of `node`.
    async fn forward(
        &self,
        node: NodeId,
        timeout: Duration,
        msg: impl FnOnce(RpcReplyPort<Sealed<ForwardReply>>) -> EndpointMsg,
    ) -> Result<Forwarded, ConsensusError> {
        let Some(endpoint) = self.transport.endpoint(node) else {
            return Err(ConsensusError::Refused(format!(
                "node {node} is not connected"
            )));
        };
        match endpoint.call(msg, Some(timeout)).await {
            Ok(CallResult::Success(a)) => {
                open_answer(self.transport.keyring(), kind::FORWARD_REPLY, node, &a)
                    .map_err(|e| ConsensusError::Unknown(format!("an unreadable answer: {e}")))?
            }
            // Sent, unanswered: the leader may have appended it.
            Ok(CallResult::Timeout | CallResult::SenderError) => Err(ConsensusError::Unknown(
                format!("no answer from node {node}"),
            )),
            // Not sent: nothing was asked.
            Err(e) => Err(ConsensusError::Refused(format!(
                "cannot reach node {node}: {e}"
            ))),
        }
    }

    /// The connected peer to ask when no leader is known, in turn.
    fn some_peer(&self) -> Option<NodeId> {
        let mut peers: Vec<NodeId> = self
            .transport
            .peers(self.me)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        peers.sort_unstable();
        let n = self.next_peer.fetch_add(1, Ordering::Relaxed);
        peers.get(n % peers.len().max(1)).copied()
    }

    async fn follow_leader<T, L, LF, F, FF>(
        &self,
        timeout: Duration,
        ambiguous: Ambiguous,
        local: L,
        forward: F,
    ) -> Result<T, ConsensusError>
    where
        L: Fn(Duration) -> LF,
        LF: Future<Output = Result<T, ConsensusError>>,
        F: Fn(NodeId, Duration) -> FF,
        FF: Future<Output = Result<T, ConsensusError>>,
    {
        follow_leader(
            self.me,
            &self.leader,
            timeout,
            ambiguous,
            local,
            forward,
            || self.some_peer(),
        )
        .await
    }
}

fn unexpected(answer: &Forwarded) -> ConsensusError {
    ConsensusError::Unknown(format!("an answer to another request: {answer:?}"))
}

/// What [`follow_leader`] does when an attempt went out and no answer came back.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ambiguous {
    /// Ask again: the request changes nothing (a read index).
    Retry,
    /// Stop with [`ConsensusError::Unknown`]: a proposal asked again could be applied twice (it
    /// may already be in the leader's log, and commit later).
    Fail,
}

/// Where the next attempt goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    Local,
    Remote(NodeId),
}

/// Runs `local` here or `forward` at the remembered leader until one succeeds, following leader
/// hints and remembering them in `leader`. While nobody here knows a leader, a connected peer
/// (`peer`) is asked instead, for its hint. Gives up with [`ConsensusError::NoLeader`] at the
/// deadline.
async fn follow_leader<T, L, LF, F, FF, P>(
    me: NodeId,
    leader: &Mutex<Option<NodeId>>,
    timeout: Duration,
    ambiguous: Ambiguous,
    local: L,
    forward: F,
    peer: P,
) -> Result<T, ConsensusError>
where
    L: Fn(Duration) -> LF,
    LF: Future<Output = Result<T, ConsensusError>>,
    F: Fn(NodeId, Duration) -> FF,
    FF: Future<Output = Result<T, ConsensusError>>,
    P: Fn() -> Option<NodeId>,
{
    let remember = |l: Option<NodeId>| *leader.lock().unwrap_or_else(|p| p.into_inner()) = l;
    let known = || *leader.lock().unwrap_or_else(|p| p.into_inner());
    let deadline = Instant::now() + timeout;
    let mut target = match known() {
        Some(l) if l != me => Target::Remote(l),
        _ => Target::Local,
    };
    let mut hops = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ConsensusError::NoLeader {
                last_known: known(),
            });
        }
        let attempt = match target {
            Target::Remote(node) => forward(node, left).await,
            Target::Local => local(left).await,
        };
        let err = match attempt {
            Ok(done) => {
                // Whoever answered leads (a peer asked for its hint may have been the leader).
                remember(Some(match target {
                    Target::Remote(node) => node,
                    Target::Local => me,
                }));
                return Ok(done);
            }
            Err(e) => e,
        };
        match err {
            ConsensusError::NotLeader { leader: Some(hint) } => {
                hops += 1;
                if hops > 2 {
                    // Hints lead round in a circle: an election is running, or hints are stale.
                    hops = 0;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                remember(Some(hint));
                target = if hint == me {
                    Target::Local
                } else {
                    Target::Remote(hint)
                };
            }
            ConsensusError::NotLeader { leader: None } => {
                remember(None);
                // Nobody asked so far knows a leader: ask a peer (a joining node knows none), or
                // wait for the election.
                target = match (target, peer()) {
                    (Target::Local, Some(p)) => Target::Remote(p),
                    _ => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Target::Local
                    }
                };
            }
            ConsensusError::Unknown(_) if ambiguous == Ambiguous::Fail => return Err(err),
            ConsensusError::Refused(_)
            | ConsensusError::Unknown(_)
            | ConsensusError::NoLeader { .. }
            | ConsensusError::NotApplied { .. } => {
                // The leader could not be reached or is busy: ask locally again.
                tracing::debug!(reason = %err, "attempt failed; retrying");
                remember(None);
                target = Target::Local;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            ConsensusError::Dropped | ConsensusError::Invalid(_) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn no_peer() -> Option<NodeId> {
        None
    }

    /// A proposal that went out and got no answer may still commit: asking again could apply it
    /// twice (seen as a non-linearizable history under a partition), so its outcome is reported
    /// as unknown after one attempt. A read index is asked again.
    #[tokio::test]
    async fn an_unanswered_proposal_is_never_made_again_but_a_read_is() {
        let attempts = AtomicUsize::new(0);
        let unanswered = |_left: Duration| {
            attempts.fetch_add(1, Ordering::SeqCst);
            async { Err::<u64, _>(ConsensusError::Unknown("no answer".into())) }
        };
        let never = |_leader: NodeId, _left: Duration| async {
            Err::<u64, _>(ConsensusError::Refused("not used".into()))
        };
        let leader = Mutex::new(None);
        let r = follow_leader(
            1,
            &leader,
            Duration::from_secs(5),
            Ambiguous::Fail,
            unanswered,
            never,
            no_peer,
        )
        .await;
        assert!(matches!(&r, Err(ConsensusError::Unknown(_))), "{r:?}");
        assert_eq!(attempts.load(Ordering::SeqCst), 1, "asked once, not again");

        attempts.store(0, Ordering::SeqCst);
        let r = follow_leader(
            1,
            &leader,
            Duration::from_millis(200),
            Ambiguous::Retry,
            unanswered,
            never,
            no_peer,
        )
        .await;
        assert!(matches!(r, Err(ConsensusError::NoLeader { .. })), "{r:?}");
        assert!(attempts.load(Ordering::SeqCst) > 1, "a read is asked again");
    }

    /// A refusal before anything was proposed (no connection, a busy core) is retried.
    #[tokio::test]
    async fn a_refusal_before_proposing_is_retried() {
        let attempts = AtomicUsize::new(0);
        let refused_then_done = |_left: Duration| {
            let n = attempts.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err(ConsensusError::Refused("busy".into()))
                } else {
                    Ok(7u64)
                }
            }
        };
        let never = |_leader: NodeId, _left: Duration| async {
            Err::<u64, _>(ConsensusError::Refused("not used".into()))
        };
        let leader = Mutex::new(None);
        let r = follow_leader(
            1,
            &leader,
            Duration::from_secs(5),
            Ambiguous::Fail,
            refused_then_done,
            never,
            no_peer,
        )
        .await;
        assert_eq!(r, Ok(7));
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
    }

    /// The remembered leader is asked directly: a follower's second proposal costs one forwarded
    /// message, not a round through its own consensus actor first.
    #[tokio::test]
    async fn a_known_leader_is_asked_first() {
        let local_calls = AtomicUsize::new(0);
        let remote_calls = AtomicUsize::new(0);
        let local = |_left: Duration| {
            local_calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<u64, _>(ConsensusError::NotLeader { leader: Some(3) }) }
        };
        let remote = |node: NodeId, _left: Duration| {
            remote_calls.fetch_add(1, Ordering::SeqCst);
            async move {
                assert_eq!(node, 3);
                Ok(9u64)
            }
        };
        let leader = Mutex::new(None);
        for _ in 0..3 {
            let r = follow_leader(
                1,
                &leader,
                Duration::from_secs(5),
                Ambiguous::Fail,
                local,
                remote,
                no_peer,
            )
            .await;
            assert_eq!(r, Ok(9));
        }
        assert_eq!(
            local_calls.load(Ordering::SeqCst),
            1,
            "asked here once only"
        );
        assert_eq!(remote_calls.load(Ordering::SeqCst), 3);
        assert_eq!(*leader.lock().unwrap(), Some(3));
    }

    /// A node that knows no leader (a joining learner) asks a connected peer, and follows its hint.
    #[tokio::test]
    async fn a_node_without_a_leader_asks_a_peer() {
        let asked = Mutex::new(Vec::new());
        let local =
            |_left: Duration| async { Err::<u64, _>(ConsensusError::NotLeader { leader: None }) };
        let remote = |node: NodeId, _left: Duration| {
            asked.lock().unwrap().push(node);
            async move {
                if node == 2 {
                    Err(ConsensusError::NotLeader { leader: Some(4) })
                } else {
                    Ok(node)
                }
            }
        };
        let leader = Mutex::new(None);
        let r = follow_leader(
            5,
            &leader,
            Duration::from_secs(5),
            Ambiguous::Fail,
            local,
            remote,
            || Some(2),
        )
        .await;
        assert_eq!(r, Ok(4));
        assert_eq!(*asked.lock().unwrap(), vec![2, 4]);
    }

    /// A dropped entry and an invalid request end the attempt with their own error: neither is
    /// "no quorum".
    #[tokio::test]
    async fn dropped_and_invalid_are_answered_as_they_are() {
        for e in [
            ConsensusError::Dropped,
            ConsensusError::Invalid("no".into()),
        ] {
            let local = |_left: Duration| {
                let e = e.clone();
                async move { Err::<u64, _>(e) }
            };
            let never = |_leader: NodeId, _left: Duration| async {
                Err::<u64, _>(ConsensusError::Refused("not used".into()))
            };
            let r = follow_leader(
                1,
                &Mutex::new(None),
                Duration::from_secs(5),
                Ambiguous::Fail,
                local,
                never,
                no_peer,
            )
            .await;
            assert_eq!(r, Err(e.clone()));
        }
    }
}
