//! VeriSim: the VeriSimDB orchestrator as supervised ractor actors.
//!
//! The workspace is laid out by architecture: `supervision/` (OTP supervisors),
//! `cluster/` (ractor_cluster node layer), `stores/` (modality engines),
//! `actors/raft/` (pure Raft core), and this crate, which composes them.

pub use verisim_client as client;
pub use verisim_raft as raft;
pub use verisim_stores as stores;
pub use verisim_supervision as supervision;

pub mod backup;
pub mod cli;
pub mod consensus;
pub mod drift;
pub mod node;
pub mod proxy;
pub mod rebalance;
pub mod registry;
pub mod snapshot;
pub mod store_actors;
pub mod telemetry;
#[cfg(test)]
mod testing;
