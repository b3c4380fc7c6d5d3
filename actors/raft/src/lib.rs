//! Raft consensus core: a pure, deterministic state machine, and a deterministic simulator that
//! checks it. See `docs/consensus.md`.
//!
//! The core ([`Raft`]) has one entry point, [`Raft::step`], taking an [`Input`] (a tick, a peer
//! message, a proposal, a read request, a snapshot event). Everything that must leave it — entries
//! and hard state to persist, messages to send, committed entries to apply, snapshot chunks to read,
//! write or install, read results — is collected in a [`Ready`], which the driver takes with
//! [`Raft::ready`], carries out in the documented order, and acknowledges with [`Raft::advance`].
//! No clock, no I/O, no threads: the same inputs give the same outputs.

mod bugs;
mod error;
mod io;
mod log;
mod message;
mod progress;
mod raft;
/// The deterministic simulator (feature `sim`: test builds only).
#[cfg(feature = "sim")]
pub mod sim;
mod types;

#[cfg(feature = "sim")]
pub use bugs::Bug;
pub use error::{ConfChangeError, InitError, StepError};
pub use io::{
    ChunkRead, ChunkWrite, Config, Input, PersistedState, ReadResult, ReadState, Ready, Stepped,
};
pub use message::{AppendResult, Message, MessageBody, SnapshotResult};
pub use raft::Raft;
pub use types::{
    ConfChange, Entry, HardState, Index, MAX_INDEX, MAX_TERM, Membership, NodeId, Payload, Role,
    SnapshotId, SnapshotMeta, Term,
};
