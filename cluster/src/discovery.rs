//! Finding actors on other nodes through process groups, by node name.
//!
//! ractor_cluster mirrors every remote-capable process-group member of a connected node into
//! our local groups as a `RemoteActor` whose id is `(connection id, pid)`. The connection id
//! changes on every reconnect, so callers must not keep these references across a
//! `PeerEvent::Down`: look them up again (on `PeerEvent::Up`, or before each send).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use ractor::{ActorCell, ActorRef, Message};
use ractor_cluster::NodeId;

/// Which node name each live connection id belongs to; shared between the connector (writer)
/// and the handle (readers).
#[derive(Debug, Default)]
pub(crate) struct Directory {
    names: RwLock<HashMap<NodeId, String>>,
}

impl Directory {
    pub(crate) fn insert(&self, node_id: NodeId, name: String) {
        if let Ok(mut m) = self.names.write() {
            m.insert(node_id, name);
        }
    }

    pub(crate) fn remove(&self, node_id: NodeId) {
        if let Ok(mut m) = self.names.write() {
            m.remove(&node_id);
        }
    }

    /// Forgets every connection: a restarted connector serves a restarted node server, whose
    /// sessions all start anew.
    pub(crate) fn clear(&self) {
        if let Ok(mut m) = self.names.write() {
            m.clear();
        }
    }

    pub(crate) fn name_of(&self, node_id: NodeId) -> Option<String> {
        self.names.read().ok()?.get(&node_id).cloned()
    }
}

/// Resolves process-group members to node names.
#[derive(Debug, Clone)]
pub struct Discovery {
    local_name: String,
    directory: Arc<Directory>,
}

impl Discovery {
    pub(crate) fn new(local_name: String, directory: Arc<Directory>) -> Self {
        Self {
            local_name,
            directory,
        }
    }

    /// The node a member lives on: our own name for local actors, the peer's name for remote
    /// ones, `None` for a remote actor of a connection that is already gone.
    pub fn node_of(&self, actor: &ActorCell) -> Option<String> {
        let id = actor.get_id();
        if id.is_local() {
            Some(self.local_name.clone())
        } else {
            self.directory.name_of(id.node())
        }
    }

    /// Members of `scope`/`group`, grouped by node name (our own node included).
    pub fn members_by_node(&self, scope: &str, group: &str) -> BTreeMap<String, Vec<ActorCell>> {
        let mut out: BTreeMap<String, Vec<ActorCell>> = BTreeMap::new();
        for cell in ractor::pg::get_scoped_members(&scope.to_string(), &group.to_string()) {
            if let Some(node) = self.node_of(&cell) {
                out.entry(node).or_default().push(cell);
            }
        }
        out
    }

    /// Members of `scope`/`group` on node `node` (e.g. "the consensus actor on node n2").
    pub fn members_on(&self, scope: &str, group: &str, node: &str) -> Vec<ActorCell> {
        self.members_by_node(scope, group)
            .remove(node)
            .unwrap_or_default()
    }

    /// The single member of `scope`/`group` on `node`, typed; `None` if there is none (or, by
    /// misconfiguration, several).
    pub fn actor_on<M: Message>(
        &self,
        scope: &str,
        group: &str,
        node: &str,
    ) -> Option<ActorRef<M>> {
        let mut members = self.members_on(scope, group, node);
        if members.len() == 1 {
            members.pop().map(ActorRef::from)
        } else {
            None
        }
    }
}
