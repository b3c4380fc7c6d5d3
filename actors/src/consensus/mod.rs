//! The registry quorum on one node: the consensus actor driving the pure Raft core of `verisim-raft`,
//! its log on fjall, the replica of the registry it applies to, and the Snapshotter that keeps the
//! log small.

pub mod actor;
pub mod clock;
pub mod endpoint;
pub mod locator;
pub mod log_store;
pub mod memory;
pub mod proposer;
pub mod replica;
pub mod restore;
pub mod snapshotter;
pub mod transport;

pub use actor::{
    Applied, ConsensusActor, ConsensusArgs, ConsensusError, ConsensusMsg, ConsensusStatus,
    FAULT_CORRUPT_RECEIVED,
};
pub use clock::{ClusterClock, ClusterNow};
pub use endpoint::{ClusterTransport, Endpoint, EndpointArgs, EndpointMsg, ForwardReply};
pub use locator::{CONSENSUS_ACTOR_NAME, ConsensusLocator};
pub use log_store::{LogStats, LogStore, LogStoreError};
pub use proposer::{ProposeError, change_membership, propose, read_index, wait_applied};
pub use replica::{Replica, SharedReplica};
pub use restore::{CorruptOwnSnapshot, Recovery, RestoreError};
pub use snapshotter::{SnapshotPolicy, Snapshotter, SnapshotterArgs, SnapshotterMsg};
pub use transport::{LocalTransport, Transport};

#[cfg(test)]
mod tests;
