//! Finding this node's consensus actor. A supervisor restart gives it a new `ActorRef`, so the actors
//! that talk to it (snapshotter, cluster endpoint, proxy) look it up by name instead of keeping one.

use ractor::ActorRef;

use super::actor::ConsensusMsg;

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
}
