//! OTP-style supervisors for ractor: `one_for_one`, `one_for_all`, `rest_for_one`; permanent,
//! transient and temporary children; restart intensity with escalation; ordered start and
//! shutdown; dynamic children; introspection and operator actions. See `docs/supervision.md`.
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

pub mod error;
pub mod handle;
pub mod intensity;
pub mod introspect;
pub mod policy;
pub mod spec;
pub mod supervisor;

pub use error::{StartError, SupervisorError};
pub use handle::SupervisorHandle;
pub use intensity::{Backoff, RestartIntensity};
pub use introspect::{ChildCounts, ChildInfo, ChildState, SupervisorInfo, TreeChild, TreeNode};
pub use policy::{ExitKind, GAVE_UP_REASON, Restart, Strategy};
pub use spec::{ChildKind, ChildSpec, ChildTemplate, Shutdown, SupervisorSpec};
pub use supervisor::{Supervisor, SupervisorMsg, SupervisorState};
