//! The heartbeat endpoint: one actor per node, in the [`HEARTBEAT_GROUP`] process group, that
//! receives other nodes' beats and hands them to the local connector (through a [`BeatSink`] the
//! connector gives it when it spawns the endpoint, so this module does not depend on the
//! connector).
//!
//! ractor_cluster's own pings have no deadline, so a stopped or hung peer would stay "connected"
//! until a write fails. Beats are sent by the connector on every heartbeat interval; a peer whose
//! beats stop for the deadline is reported down and its connection is dropped.

use ractor::{Actor, ActorProcessingErr, ActorRef};
use ractor_cluster::RactorClusterMessage;
use serde::{Deserialize, Serialize};

use crate::codec::Cbor;

/// Process-group scope of the cluster layer's own actors.
pub const CLUSTER_SCOPE: &str = "verisim.cluster";
/// Group of the heartbeat endpoints, one per node.
pub const HEARTBEAT_GROUP: &str = "heartbeat";

/// One beat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Beat {
    /// The sender's node name.
    pub from: String,
    /// Increments on every beat the sender sends.
    pub seq: u64,
}

/// Messages of the heartbeat endpoint (remote-capable).
#[derive(Debug, RactorClusterMessage)]
pub enum HeartbeatMessage {
    /// A beat from another node.
    Beat(Cbor<Beat>),
}

/// Takes the sender's node name of every well-formed beat the endpoint receives.
pub(crate) type BeatSink = Box<dyn Fn(String) + Send>;

pub(crate) struct HeartbeatEndpoint;

impl Actor for HeartbeatEndpoint {
    type Msg = HeartbeatMessage;
    type State = BeatSink;
    type Arguments = BeatSink;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        sink: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        ractor::pg::join_scoped(
            CLUSTER_SCOPE.to_string(),
            HEARTBEAT_GROUP.to_string(),
            vec![myself.get_cell()],
        );
        Ok(sink)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        sink: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            HeartbeatMessage::Beat(wire) => match wire.decode() {
                Ok(beat) => sink(beat.from),
                Err(e) => tracing::warn!(error = %e, "dropping malformed heartbeat"),
            },
        }
        Ok(())
    }
}
