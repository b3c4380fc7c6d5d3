//! Proposing from any node: the local consensus actor if it leads, else the leader it names, reached
//! through the leader's cluster endpoint. Retries while no leader is known, up to a deadline.

use std::future::Future;
use std::time::{Duration, Instant};

use ractor::RpcReplyPort;
use ractor::rpc::CallResult;
use verisim_cluster::Cbor;
use verisim_raft::{ConfChange, Index, NodeId};

use super::actor::{Applied, ConsensusError};
use super::endpoint::{
    ClusterTransport, EndpointMsg, ForwardReply, change_local, propose_local, read_index_local,
};
use super::locator::ConsensusLocator;

/// Why a proposal could not be made anywhere.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("no leader reachable before the deadline (last known: {leader:?})")]
    NoLeader { leader: Option<NodeId> },
    #[error("{0}")]
    Failed(String),
    #[error("invalid: {0}")]
    Invalid(String),
}

/// Proposes a registry command, following leader hints, until it is applied or `timeout` passes.
pub async fn propose(
    me: NodeId,
    consensus: &ConsensusLocator,
    transport: &ClusterTransport,
    command: Vec<u8>,
    timeout: Duration,
) -> Result<Applied, ProposeError> {
    follow_leader(
        me,
        timeout,
        Ambiguous::Fail,
        |left| propose_local(consensus, command.clone(), left),
        |leader, left| {
            let wire = Cbor::encode(&command);
            async move {
                let wire = wire.map_err(|e| ConsensusError::Refused(e.to_string()))?;
                match forward(transport, leader, left, |r| EndpointMsg::Propose(wire, r)).await? {
                    ForwardReply::Applied {
                        index,
                        term,
                        outcome,
                    } => Ok(Applied {
                        index,
                        term,
                        outcome,
                    }),
                    other => Err(unexpected(other)),
                }
            }
        },
    )
    .await
}

/// Makes a membership change, following leader hints; returns the index it was applied at.
pub async fn change_membership(
    me: NodeId,
    consensus: &ConsensusLocator,
    transport: &ClusterTransport,
    change: ConfChange,
    timeout: Duration,
) -> Result<Index, ProposeError> {
    follow_leader(
        me,
        timeout,
        Ambiguous::Fail,
        |left| change_local(consensus, change, left),
        |leader, left| async move {
            let wire = Cbor::encode(&change).map_err(|e| ConsensusError::Refused(e.to_string()))?;
            match forward(transport, leader, left, |r| {
                EndpointMsg::ChangeMembership(wire, r)
            })
            .await?
            {
                ForwardReply::Changed { index } => Ok(index),
                other => Err(unexpected(other)),
            }
        },
    )
    .await
}

/// A linearizable read point: the leader's read index, asked through whichever node leads. Reading
/// the local replica once it has applied the returned index sees every write acknowledged before
/// this call (see [`wait_applied`]).
pub async fn read_index(
    me: NodeId,
    consensus: &ConsensusLocator,
    transport: &ClusterTransport,
    timeout: Duration,
) -> Result<Index, ProposeError> {
    follow_leader(
        me,
        timeout,
        Ambiguous::Retry,
        |left| read_index_local(consensus, left),
        |leader, left| async move {
            let wire = Cbor::encode(&()).map_err(|e| ConsensusError::Refused(e.to_string()))?;
            match forward(transport, leader, left, |r| EndpointMsg::ReadIndex(wire, r)).await? {
                ForwardReply::ReadIndex { index } => Ok(index),
                other => Err(unexpected(other)),
            }
        },
    )
    .await
}

/// Waits until the local replica has applied `index` (woken by each apply).
pub async fn wait_applied(
    replica: &crate::consensus::SharedReplica,
    index: Index,
    timeout: Duration,
) -> Result<(), ProposeError> {
    let deadline = tokio::time::Instant::now() + timeout;
    if replica.applied(index, deadline).await {
        Ok(())
    } else {
        Err(ProposeError::Failed(format!(
            "this node has not applied index {index} yet; retry"
        )))
    }
}

fn unexpected(reply: ForwardReply) -> ConsensusError {
    match reply {
        ForwardReply::NotLeader { leader } => ConsensusError::NotLeader { leader },
        ForwardReply::Invalid(reason) => ConsensusError::Invalid(reason),
        ForwardReply::Failed(reason) => ConsensusError::Refused(reason),
        ForwardReply::Unknown(reason) => ConsensusError::Unknown(reason),
        other => ConsensusError::Refused(format!("unexpected answer {other:?}")),
    }
}

/// What [`follow_leader`] does when an attempt went out and no answer came back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ambiguous {
    /// Ask again: the request changes nothing (a read index).
    Retry,
    /// Stop with [`ProposeError::Failed`]: a proposal asked again could be applied twice (it may
    /// already be in the leader's log, and commit later), so its outcome is reported as unknown.
    Fail,
}

/// Runs `local` here, or `forward` at the leader this node was told of, until one succeeds.
async fn follow_leader<T, L, LF, F, FF>(
    me: NodeId,
    timeout: Duration,
    ambiguous: Ambiguous,
    local: L,
    forward: F,
) -> Result<T, ProposeError>
where
    L: Fn(Duration) -> LF,
    LF: Future<Output = Result<T, ConsensusError>>,
    F: Fn(NodeId, Duration) -> FF,
    FF: Future<Output = Result<T, ConsensusError>>,
{
    let deadline = Instant::now() + timeout;
    let mut leader = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ProposeError::NoLeader { leader });
        }
        let attempt = match leader {
            Some(l) if l != me => forward(l, left).await,
            _ => local(left).await,
        };
        match attempt {
            Ok(done) => return Ok(done),
            Err(ConsensusError::NotLeader { leader: hint }) => {
                if hint.is_none() || hint == leader {
                    // Nobody knows a leader yet (an election is running): wait a little.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                leader = hint;
            }
            Err(ConsensusError::Dropped) => {
                return Err(ProposeError::Failed(
                    "the entry was replaced by a new leader's; retry with the same request id"
                        .into(),
                ));
            }
            Err(ConsensusError::Invalid(reason)) => return Err(ProposeError::Invalid(reason)),
            Err(ConsensusError::Unknown(reason)) if ambiguous == Ambiguous::Fail => {
                return Err(ProposeError::Failed(format!(
                    "the outcome is unknown ({reason}); retry with the same request id"
                )));
            }
            Err(ConsensusError::Refused(reason) | ConsensusError::Unknown(reason)) => {
                // The leader could not be reached or is busy: ask locally again.
                tracing::debug!(%reason, "attempt failed; retrying");
                leader = None;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// One RPC to the endpoint of `leader`.
async fn forward(
    transport: &ClusterTransport,
    leader: NodeId,
    timeout: Duration,
    msg: impl FnOnce(RpcReplyPort<Cbor<ForwardReply>>) -> EndpointMsg,
) -> Result<ForwardReply, ConsensusError> {
    let Some(endpoint) = transport.endpoint(leader) else {
        return Err(ConsensusError::Refused(format!(
            "node {leader} is not connected"
        )));
    };
    match endpoint.call(msg, Some(timeout)).await {
        Ok(CallResult::Success(a)) => a
            .decode()
            .map_err(|e| ConsensusError::Unknown(format!("an unreadable answer: {e}"))),
        // Sent, unanswered: the leader may have appended it.
        Ok(CallResult::Timeout | CallResult::SenderError) => Err(ConsensusError::Unknown(format!(
            "no answer from node {leader}"
        ))),
        // Not sent: nothing was asked.
        Err(e) => Err(ConsensusError::Refused(format!(
            "cannot reach node {leader}: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

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
        let r = follow_leader(
            1,
            Duration::from_secs(5),
            Ambiguous::Fail,
            unanswered,
            never,
        )
        .await;
        assert!(
            matches!(&r, Err(ProposeError::Failed(m)) if m.contains("unknown")),
            "{r:?}"
        );
        assert_eq!(attempts.load(Ordering::SeqCst), 1, "asked once, not again");

        attempts.store(0, Ordering::SeqCst);
        let r = follow_leader(
            1,
            Duration::from_millis(200),
            Ambiguous::Retry,
            unanswered,
            never,
        )
        .await;
        assert!(matches!(r, Err(ProposeError::NoLeader { .. })), "{r:?}");
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
        let r = follow_leader(
            1,
            Duration::from_secs(5),
            Ambiguous::Fail,
            refused_then_done,
            never,
        )
        .await;
        assert_eq!(r, Ok(7));
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
    }
}
