//! Fault injection for integration tests of ractor applications.
//!
//! - **Actors in process** (apps supervised by `verisim-supervision`): kill a child by its
//!   supervision path ([`kill_and_wait`]) or an actor by its ractor name
//!   ([`kill_named_and_wait`]) and wait, with a deadline, for the replacement; assert a tree's
//!   shape and restart counts ([`Tree`]); restart storms ([`Storm`]); pause an actor's
//!   processing ([`Gate`]).
//! - **Links**: a relay between ractor_cluster nodes (or any TCP) that cuts, heals, delays, and
//!   in ractor_cluster frame mode drops whole messages with a seeded probability ([`Relay`]).
//! - **Node processes**: start a program with its data directory, SIGKILL, SIGSTOP/SIGCONT,
//!   restart, wait for a line, a port or an HTTP answer ([`NodeProcess`], [`net`]); stop a
//!   whole cluster gracefully ([`terminate_all`]) or kill every process at once ([`kill_all`],
//!   a tool's Ctrl-C). Tools that run node processes for a person (a benchmark, a local dev
//!   cluster) use these too, so tests and tools share one process kit.
//!
//! Every wait has a deadline and fails with [`FaultError::Timeout`] naming what it waited for;
//! every random choice comes from a printed seed ([`seed`]). The crate's `README.md` is the
//! five-minute start; `examples/ping_pool.rs` is a small application tested with the kit.

#![deny(missing_docs)]

pub mod error;
pub mod frames;
pub mod gate;
pub mod kill;
pub mod net;
pub mod process;
pub mod relay;
pub mod seed;
pub mod storm;
pub mod tree;
pub mod wait;

pub use error::FaultError;
pub use frames::FrameKind;
pub use gate::Gate;
pub use kill::{
    Fault, Replaced, fault_and_wait, inflict_at, kill_and_wait, kill_named_and_wait, resolve,
    supervisor_at, tree, wait_replaced, wait_tree,
};
pub use net::{HttpReply, http_get, reserve_port, wait_http, wait_port};
pub use process::{NodeProcess, ProcessSpec, Sandbox, kill_all, tail, terminate_all};
pub use relay::{Direction, DropRule, Mode, Relay, RelayBuilder, RelayStats};
pub use seed::seed_from_env;
pub use storm::{Storm, StormReport};
pub use tree::Tree;
pub use wait::{wait_until, wait_until_async, wait_until_every};

// The README's code is compiled and run as a doctest, so the five-minute start stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
