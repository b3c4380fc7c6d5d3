//! The VeriSim node runtime: everything a running `verisim node` is, apart from the command line.
//!
//! `node::runtime::start` builds the node's supervision tree (docs/architecture.md): the cluster
//! layer, the registry quorum (`consensus`: the consensus actor driving `verisim-raft`, the log on
//! fjall, the Snapshotter, the cluster endpoint), one actor per modality store (`store_actors`), the
//! drift checker (`drift`) and the leader's rebalancer (`rebalance`); `node::http_server` serves the
//! public API (`proxy`) and the admin API (`node::admin`); `backup` streams and restores backups.
//! The registry state machine and its snapshot files are `verisim-registry`'s; the `verisim` binary
//! is the command line over this crate.

pub use verisim_registry as registry;
pub use verisim_registry::snapshot;

pub mod backup;
pub mod consensus;
pub mod drift;
pub mod node;
pub mod proxy;
pub mod rebalance;
pub mod store_actors;
pub mod telemetry;
#[cfg(test)]
mod testing;
