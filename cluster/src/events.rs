//! Peer up/down events and their subscribers.

use ractor::{ActorRef, Message};
use ractor_cluster::{NodeId, RactorMessage};
use tokio::sync::mpsc;

/// Why a peer went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownReason {
    /// Its connection closed (peer exited, network error, or peer dropped us).
    Disconnected,
    /// No heartbeat within the deadline; we dropped the connection.
    HeartbeatDeadline,
    /// Someone asked for the disconnect (`ClusterHandle::disconnect`).
    Requested,
}

impl std::fmt::Display for DownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Disconnected => "disconnected",
            Self::HeartbeatDeadline => "heartbeat-deadline",
            Self::Requested => "requested",
        })
    }
}

/// What the cluster layer tells the rest of the node about its peers. Peers are named by their
/// configured node name; `node_id` is ractor_cluster's id of the *current connection* (it is the
/// `node()` of that peer's remote actors) and changes on every reconnect.
#[derive(Debug, Clone, PartialEq, Eq, RactorMessage)]
pub enum PeerEvent {
    /// A connection to `node` is authenticated and its process groups are synchronised. It may
    /// repeat without a `Down` in between, with a new `node_id`, when a duplicate connection
    /// (both nodes dialled each other) replaced the first one: look remote actors up again.
    Up {
        /// The peer's node name.
        node: String,
        /// The connection's id (ractor_cluster `NodeId`).
        node_id: NodeId,
    },
    /// `node` is no longer reachable; its remote actors are gone and pending calls fail.
    Down {
        /// The peer's node name.
        node: String,
        /// Why.
        reason: DownReason,
    },
    /// Dialling a configured peer address failed before a session opened (refused, timed out,
    /// TLS handshake failed); the connector retries with backoff.
    DialFailed {
        /// The address as configured.
        addr: String,
        /// What went wrong.
        error: String,
    },
    /// A connection closed before it authenticated: wrong cookie, TLS failure, a peer that is
    /// not a VeriSim node, or a handshake that did not finish within the timeout.
    HandshakeFailed {
        /// The remote address of that connection.
        peer_addr: String,
    },
}

/// A subscriber: returns `false` once it is gone, so it can be dropped.
pub(crate) type Subscriber = Box<dyn FnMut(PeerEvent) -> bool + Send>;

pub(crate) fn channel_subscriber() -> (Subscriber, mpsc::UnboundedReceiver<PeerEvent>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Box::new(move |ev| tx.send(ev).is_ok()), rx)
}

pub(crate) fn actor_subscriber<M, F>(actor: ActorRef<M>, convert: F) -> Subscriber
where
    M: Message,
    F: Fn(PeerEvent) -> Option<M> + Send + 'static,
{
    Box::new(move |ev| match convert(ev) {
        Some(msg) => actor.cast(msg).is_ok(),
        None => true,
    })
}
