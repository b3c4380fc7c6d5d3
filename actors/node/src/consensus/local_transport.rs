//! Raft messages between consensus actors of one process (tests), with links that can be cut to
//! simulate partitions.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use ractor::ActorRef;
use verisim_raft::{Message, NodeId};

use super::actor::ConsensusMsg;
use super::transport::Transport;

/// Routes messages between consensus actors of one process.
#[derive(Default)]
pub struct LocalTransport {
    peers: RwLock<BTreeMap<NodeId, ActorRef<ConsensusMsg>>>,
    /// Directed links that drop everything: (from, to).
    cut: RwLock<BTreeSet<(NodeId, NodeId)>>,
}

impl LocalTransport {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers (or replaces, after a restart) the actor of node `id`.
    pub fn register(&self, id: NodeId, actor: ActorRef<ConsensusMsg>) {
        self.peers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, actor);
    }

    pub fn actor(&self, id: NodeId) -> Option<ActorRef<ConsensusMsg>> {
        self.peers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&id)
            .cloned()
    }

    /// Cuts every link to and from `id`.
    pub fn isolate(&self, id: NodeId, all: impl IntoIterator<Item = NodeId>) {
        let mut cut = self.cut.write().unwrap_or_else(|p| p.into_inner());
        for other in all {
            if other != id {
                cut.insert((id, other));
                cut.insert((other, id));
            }
        }
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.cut.write().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

impl Transport for LocalTransport {
    fn send(&self, msg: Message) {
        if self
            .cut
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&(msg.from, msg.to))
        {
            return;
        }
        if let Some(peer) = self.actor(msg.to) {
            // A stopped peer drops the message, as a dead node would.
            let _ = peer.cast(ConsensusMsg::Peer(msg));
        }
    }
}
