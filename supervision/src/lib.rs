//! OTP-style supervisors for ractor: `one_for_one`, `one_for_all`, `rest_for_one`; permanent,
//! transient and temporary children; restart intensity with escalation; ordered start and
//! shutdown; significant children and `auto_shutdown`; dynamic children; introspection and
//! operator actions. See the crate's `README.md`, `docs/supervision.md` (the rules) and
//! `docs/supervision-from-otp.md` (OTP's API mapped to this one).
//!
//! The top-level API: describe children with [`ChildSpec`], a supervisor with
//! [`SupervisorSpec`], start it with [`SupervisorHandle::start`], and use the
//! [`SupervisorHandle`] for introspection and operator actions.
//!
//! ```no_run
//! use std::time::Duration;
//! use verisim_supervision::{ChildSpec, Strategy, SupervisorHandle, SupervisorSpec};
//! # async fn demo(graph: ChildSpec, vector: ChildSpec) -> Result<(), Box<dyn std::error::Error>> {
//! let stores = SupervisorSpec::new("stores", Strategy::OneForOne)
//!     .intensity(10, Duration::from_secs(60))
//!     .child(graph)
//!     .child(vector);
//! let node = SupervisorSpec::new("node", Strategy::RestForOne)
//!     .intensity(10, Duration::from_secs(60))
//!     .child(ChildSpec::supervisor("stores", stores));
//! let (node, _join) = SupervisorHandle::start(node).await?;
//! println!("{}", serde_json::to_string_pretty(&node.tree().await?)?);
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod error;
pub mod events;
pub mod handle;
pub mod intensity;
pub mod introspect;
pub mod policy;
pub mod spec;
pub mod supervisor;

pub use error::{SpecError, StartError, SupervisorError};
pub use events::{EventKind, EventSink, SupervisorEvent};
pub use handle::SupervisorHandle;
pub use intensity::{Backoff, RestartIntensity};
pub use introspect::{ChildCounts, ChildInfo, ChildState, SupervisorInfo, TreeChild, TreeNode};
pub use policy::{AutoShutdown, ExitKind, GAVE_UP_REASON, Restart, Strategy};
pub use spec::{ChildKind, ChildSpec, ChildTemplate, Shutdown, SupervisorSpec, TemplateArgs};
pub use supervisor::{Supervisor, SupervisorMsg, SupervisorState};

// The README's code is compiled and run as a doctest, so the five-minute start stays true.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
