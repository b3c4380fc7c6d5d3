//! Finding this node's consensus actor, and asking it. A supervisor restart gives it a new
//! `ActorRef`, so the actors that talk to it (snapshotter, cluster endpoint, registry client) look
//! it up by name instead of keeping one.

use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{ActorRef, RpcReplyPort};
use verisim_raft::{ConfChange, Index};

use super::actor::{Applied, ConsensusError, ConsensusMsg, ConsensusStatus};

/// The name the consensus actor registers under in ractor's (process-global) registry.
pub const CONSENSUS_ACTOR_NAME: &str = "verisim.consensus";

#[derive(Clone)]
pub enum ConsensusLocator {
    /// Look the actor up by name on every use (the node runtime).
    Named(String),
    /// A fixed actor (tests that run several consensus actors in one process).
    Fixed(ActorRef<ConsensusMsg>),
}

impl ConsensusLocator {
    pub fn named() -> Self {
        Self::Named(CONSENSUS_ACTOR_NAME.to_owned())
    }

    /// The current consensus actor, if one is running.
    pub fn get(&self) -> Option<ActorRef<ConsensusMsg>> {
        match self {
            Self::Named(name) => ractor::registry::where_is(name.clone()).map(ActorRef::from),
            Self::Fixed(actor) => Some(actor.clone()),
        }
    }

    /// The consensus actor's status, or `None` when it does not answer within `timeout`.
    pub async fn status(&self, timeout: Duration) -> Option<ConsensusStatus> {
        match self.get()?.call(ConsensusMsg::Status, Some(timeout)).await {
            Ok(CallResult::Success(s)) => Some(s),
            _ => None,
        }
    }

    /// Proposes `command` to this node's consensus actor (it must lead) and waits for the outcome.
    pub async fn propose(
        &self,
        command: Vec<u8>,
        timeout: Duration,
    ) -> Result<Applied, ConsensusError> {
        self.ask(timeout, |reply| ConsensusMsg::Propose { command, reply })
            .await
    }

    /// Asks this node's consensus actor (it must lead) for a read index.
    pub async fn read_index(&self, timeout: Duration) -> Result<Index, ConsensusError> {
        self.ask(timeout, |reply| ConsensusMsg::ReadIndex { reply })
            .await
    }

    /// Asks this node's consensus actor (it must lead) for a membership change and waits until it
    /// is applied.
    pub async fn change_membership(
        &self,
        change: ConfChange,
        timeout: Duration,
    ) -> Result<Index, ConsensusError> {
        self.ask(timeout, |reply| ConsensusMsg::ChangeMembership {
            change,
            reply,
        })
        .await
    }

    /// One request to the consensus actor that is running now, answered once carried out.
    async fn ask<T: Send + 'static>(
        &self,
        timeout: Duration,
        msg: impl FnOnce(RpcReplyPort<Result<T, ConsensusError>>) -> ConsensusMsg,
    ) -> Result<T, ConsensusError> {
        let actor = self
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
}
