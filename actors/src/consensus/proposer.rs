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
        other => ConsensusError::Refused(format!("unexpected answer {other:?}")),
    }
}

/// Runs `local` here, or `forward` at the leader this node was told of, until one succeeds.
async fn follow_leader<T, L, LF, F, FF>(
    me: NodeId,
    timeout: Duration,
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
            Err(ConsensusError::Refused(reason)) => {
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
            .map_err(|e| ConsensusError::Refused(e.to_string())),
        _ => Err(ConsensusError::Refused(format!(
            "no answer from node {leader}"
        ))),
    }
}
