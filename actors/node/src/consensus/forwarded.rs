//! What a leader answers a request forwarded to it by another node, on the wire (shared by the
//! endpoint that answers and the batcher that forwards, so neither imports the other).

use serde::{Deserialize, Serialize};
use verisim_raft::Index;

use super::actor::{Applied, ConsensusError};

/// What a request forwarded to the leader returns, on the wire: the leader's own answer, or the
/// consensus layer's one error ([`ConsensusError`]) as it is.
pub type ForwardReply = Result<Forwarded, ConsensusError>;

/// The answers of [`ForwardReply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Forwarded {
    /// A proposal committed and was applied with this outcome.
    Applied(Applied),
    /// A membership change was applied at `index`.
    Changed { index: Index },
    /// The leader confirmed its leadership and applied `index`: a read that waits until it has
    /// applied `index` too sees every write acknowledged before it was asked.
    ReadIndex { index: Index },
}
