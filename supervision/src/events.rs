//! Supervisor events: what a supervisor reports as it happens (a child failed, was restarted,
//! could not be restarted, was terminated by an operator; the supervisor gave up or shut itself
//! down), to an optional [`EventSink`] given with [`SupervisorSpec::events`](crate::SupervisorSpec::events).
//!
//! The sink is called synchronously from the supervisor actor, in the order things happen, so it
//! must be cheap and must not block or call back into the supervisor: push onto a bounded buffer
//! or a channel. Each supervisor reports only its own children; give every nested supervisor's
//! spec a sink too (one closure per supervisor can prefix its path in the tree).
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use verisim_supervision::{EventSink, Strategy, SupervisorEvent, SupervisorSpec};
//!
//! let seen: Arc<Mutex<Vec<SupervisorEvent>>> = Arc::default();
//! let log = seen.clone();
//! let sink: EventSink = Arc::new(move |e: SupervisorEvent| {
//!     if let Ok(mut v) = log.lock() {
//!         v.push(e);
//!     }
//! });
//! let spec = SupervisorSpec::new("stores", Strategy::OneForOne).events(sink);
//! assert!(spec.events.is_some());
//! ```

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Receives a supervisor's events; see the [module documentation](self) for the rules.
pub type EventSink = Arc<dyn Fn(SupervisorEvent) + Send + Sync>;

/// One event of one supervisor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisorEvent {
    /// The reporting supervisor's name (its spec's `name`).
    pub supervisor: String,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// What happened, with the child it happened to where there is one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// A child exited abnormally (or was a supervisor that gave up). A restart, when its restart
    /// type and the intensity allow one, is reported separately.
    ChildFailed {
        /// The child's id.
        child: String,
        /// The exit reason or error, as text.
        reason: Option<String>,
    },
    /// A child was started again: by the supervisor after an exit, or by an operator.
    ChildRestarted {
        /// The child's id.
        child: String,
        /// Its restart count after this start.
        restart_count: u64,
        /// Whether an operator asked for it (`restart_child`) rather than an exit.
        operator: bool,
    },
    /// Starting a child again failed; the supervisor retries it (counted against the intensity),
    /// or after an operator restart leaves it failed.
    RestartFailed {
        /// The child's id.
        child: String,
        /// The start's error, as text.
        reason: String,
    },
    /// An operator terminated a child (`terminate_child`); it is not restarted.
    ChildTerminated {
        /// The child's id.
        child: String,
    },
    /// More restarts than the intensity allows: the supervisor stops its children and exits,
    /// and its parent sees that as its own child failing (escalation).
    GaveUp {
        /// The restarts allowed within the period.
        intensity: u32,
        /// The period, in milliseconds.
        period_ms: u64,
    },
    /// Significant children ended and `auto_shutdown` shut the supervisor down (a normal exit).
    AutoShutdown,
}

impl EventKind {
    /// The child the event is about, if it is about one (not the supervisor itself).
    pub fn child(&self) -> Option<&str> {
        match self {
            Self::ChildFailed { child, .. }
            | Self::ChildRestarted { child, .. }
            | Self::RestartFailed { child, .. }
            | Self::ChildTerminated { child } => Some(child),
            Self::GaveUp { .. } | Self::AutoShutdown => None,
        }
    }
}

/// Calls the sink, if there is one, with an event of `supervisor`.
pub(crate) fn emit(sink: Option<&EventSink>, supervisor: &str, kind: EventKind) {
    if let Some(sink) = sink {
        sink(SupervisorEvent {
            supervisor: supervisor.to_owned(),
            kind,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_flat_with_a_tag() {
        let e = SupervisorEvent {
            supervisor: "stores".into(),
            kind: EventKind::ChildRestarted {
                child: "vector".into(),
                restart_count: 2,
                operator: true,
            },
        };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"supervisor": "stores", "event": "child_restarted",
                "child": "vector", "restart_count": 2, "operator": true})
        );
        assert_eq!(serde_json::from_value::<SupervisorEvent>(v).unwrap(), e);
        assert_eq!(e.kind.child(), Some("vector"));
        assert_eq!(EventKind::AutoShutdown.child(), None);
    }
}
