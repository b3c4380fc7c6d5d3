//! VeriSim: the VeriSimDB orchestrator as supervised ractor actors.
//!
//! The workspace is laid out by architecture (docs/architecture.md): `supervision/` (OTP
//! supervisors), `cluster/` (the ractor_cluster node layer), `stores/` (the modality engines),
//! `actors/raft/` (the pure Raft core), `actors/registry/` (the registry state machine and its
//! snapshots), `actors/node/` (the node runtime), and this crate: the `verisim` command line
//! (`cli`, `verisim dev`), with the layers below re-exported under one name.

pub use verisim_client as client;
pub use verisim_node::{backup, consensus, drift, node, proxy, rebalance, store_actors, telemetry};
pub use verisim_raft as raft;
pub use verisim_registry as registry;
pub use verisim_registry::snapshot;
pub use verisim_stores as stores;
pub use verisim_supervision as supervision;

pub mod cli;
