//! The registry quorum on one node: the consensus actor driving the pure Raft core of `verisim-raft`,
//! its log on fjall, the replica of the registry it applies to, the Snapshotter that keeps the log
//! small, and the [`RegistryClient`] through which the rest of the node commits and reads.

pub mod actor;
pub mod client;
pub mod clock;
pub mod endpoint;
pub mod force;
pub mod forward_batch;
pub mod forwarded;
pub mod local_transport;
pub mod locator;
pub mod log_store;
pub mod memory;
pub mod replica;
pub mod restore;
pub mod snapshotter;
pub mod transport;
pub mod wire;

pub use actor::{
    Applied, ConsensusActor, ConsensusArgs, ConsensusError, ConsensusMsg, ConsensusStatus,
    FAULT_CORRUPT_RECEIVED,
};
pub use client::RegistryClient;
pub use clock::{ClusterClock, ClusterNow};
pub use endpoint::{
    ClusterTransport, Endpoint, EndpointArgs, EndpointMsg, ForwardReply, Forwarded,
};
pub use local_transport::LocalTransport;
pub use locator::{CONSENSUS_ACTOR_NAME, ConsensusLocator};
pub use log_store::{LogStats, LogStore, LogStoreError};
pub use replica::{Replica, SharedReplica};
pub use restore::{CorruptOwnSnapshot, Recovery, RestoreError};
pub use snapshotter::{
    SNAPSHOTTER_ACTOR_NAME, SnapshotPolicy, Snapshotter, SnapshotterArgs, SnapshotterMsg,
};
pub use transport::Transport;

#[cfg(test)]
mod tests;
