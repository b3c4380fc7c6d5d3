//! A VeriSim node process: configuration, the supervision tree, the admin API.

pub mod admin;
mod advertise;
pub mod config;
pub mod console;
pub mod events;
pub mod http_server;
pub mod request_log;
pub mod runtime;

pub use config::{NodeConfig, NodeConfigError};
pub use runtime::{NodeError, RunningNode, start};
