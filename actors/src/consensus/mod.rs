//! The registry quorum on one node: the Raft log on fjall, and (next) the consensus actor that drives
//! the pure core in `verisim-raft`.

pub mod log_store;

pub use log_store::{LogStats, LogStore, LogStoreError};
