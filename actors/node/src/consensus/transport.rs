//! How consensus actors reach each other.
//!
//! The consensus actor only hands outgoing Raft messages to a [`Transport`]. Across nodes that is
//! ractor_cluster (`endpoint::ClusterTransport`: each message CBOR-encoded to the peer's endpoint);
//! inside one process (tests) it is `local_transport::LocalTransport`, which can also cut links to
//! simulate partitions.

use verisim_raft::Message;

/// Delivers Raft messages to their `to` node. Delivery is best effort: Raft tolerates loss.
pub trait Transport: Send + Sync + 'static {
    fn send(&self, msg: Message);

    /// Delivers several messages, in order. A transport that encodes may share work between
    /// messages with the same body (the same append to several followers).
    fn send_all(&self, msgs: Vec<Message>) {
        for m in msgs {
            self.send(m);
        }
    }
}
