//! Child and supervisor specifications: plain data, cheap to clone. The constructor of a nested
//! supervisor's spec, `ChildSpec::supervisor`, lives with the actor it starts, in
//! [`crate::supervisor`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorCell};
use serde::{Deserialize, Serialize};

use crate::error::StartError;
use crate::intensity::Backoff;
use crate::policy::{Restart, Strategy};

/// What a start function returns.
pub type StartFuture = Pin<Box<dyn Future<Output = Result<ActorCell, StartError>> + Send>>;

/// Starts one incarnation of a child, linked under the given supervisor cell (use
/// `spawn_linked` with it). It must return once the child is started (its `pre_start` done).
pub type StartFn = Arc<dyn Fn(ActorCell) -> StartFuture + Send + Sync>;

/// Builds the spec of the `n`-th child a dynamic supervisor starts from its template.
pub type ChildTemplate = Arc<dyn Fn(u64) -> ChildSpec + Send + Sync>;

/// How a child is stopped when the supervisor stops it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shutdown {
    /// Kill at once (ractor's `kill`: the current handler is cancelled, `post_stop` is skipped).
    BrutalKill,
    /// Ask it to stop (its `post_stop` runs); kill it if it has not stopped after this long.
    Timeout(Duration),
    /// Ask it to stop and wait as long as it takes (OTP's default for supervisor children).
    Infinity,
}

/// Whether a child is a worker or a supervisor (introspection descends into supervisors).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildKind {
    /// Any actor.
    Worker,
    /// A [`Supervisor`](crate::Supervisor) of this crate.
    Supervisor,
}

/// One child: OTP's child spec.
#[derive(Clone)]
pub struct ChildSpec {
    /// Unique among the supervisor's children.
    pub id: String,
    /// Starts one incarnation.
    pub start: StartFn,
    /// When it is restarted.
    pub restart: Restart,
    /// How it is stopped.
    pub shutdown: Shutdown,
    /// Worker or supervisor.
    pub kind: ChildKind,
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("id", &self.id)
            .field("restart", &self.restart)
            .field("shutdown", &self.shutdown)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// OTP's default worker shutdown.
pub const DEFAULT_SHUTDOWN: Duration = Duration::from_secs(5);

impl ChildSpec {
    /// A permanent worker with a 5 s shutdown, started by `start`.
    pub fn new<F, Fut>(id: impl Into<String>, start: F) -> Self
    where
        F: Fn(ActorCell) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ActorCell, StartError>> + Send + 'static,
    {
        Self {
            id: id.into(),
            start: Arc::new(move |sup| Box::pin(start(sup))),
            restart: Restart::Permanent,
            shutdown: Shutdown::Timeout(DEFAULT_SHUTDOWN),
            kind: ChildKind::Worker,
        }
    }

    /// A permanent worker that spawns `actor` with a clone of `args` on every start.
    pub fn for_actor<A>(id: impl Into<String>, actor: A, args: A::Arguments) -> Self
    where
        A: Actor + Clone,
        A::Arguments: Clone + Sync,
    {
        Self::new(id, move |sup: ActorCell| {
            let actor = actor.clone();
            let args = args.clone();
            async move {
                let (actor_ref, _join) = Actor::spawn_linked(None, actor, args, sup).await?;
                Ok(actor_ref.get_cell())
            }
        })
    }

    /// Set the restart type.
    pub fn restart(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// Set the shutdown policy.
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Set the child kind.
    pub fn kind(mut self, kind: ChildKind) -> Self {
        self.kind = kind;
        self
    }
}

/// A supervisor: strategy, intensity, optional backoff and dynamic limits, children in start order.
#[derive(Clone)]
pub struct SupervisorSpec {
    /// Shown in introspection (not registered with ractor: names there are process-global).
    pub name: String,
    /// Which children a restart touches.
    pub strategy: Strategy,
    /// At most this many restarts within `period`; one more and the supervisor gives up.
    pub intensity: u32,
    /// See `intensity`.
    pub period: Duration,
    /// Optional delay before restarts.
    pub backoff: Option<Backoff>,
    /// Maximum number of running or restarting children that `start_child` allows.
    pub max_children: Option<usize>,
    /// Children, started in this order and stopped in reverse.
    pub children: Vec<ChildSpec>,
    /// For dynamic supervisors: the one spec that `start_from_template` instantiates.
    pub template: Option<ChildTemplate>,
}

impl fmt::Debug for SupervisorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorSpec")
            .field("name", &self.name)
            .field("strategy", &self.strategy)
            .field("intensity", &self.intensity)
            .field("period", &self.period)
            .field("backoff", &self.backoff)
            .field("max_children", &self.max_children)
            .field("children", &self.children)
            .field("template", &self.template.is_some())
            .finish()
    }
}

impl SupervisorSpec {
    /// OTP's defaults: intensity 1 in 5 s, no children.
    pub fn new(name: impl Into<String>, strategy: Strategy) -> Self {
        Self {
            name: name.into(),
            strategy,
            intensity: 1,
            period: Duration::from_secs(5),
            backoff: None,
            max_children: None,
            children: Vec::new(),
            template: None,
        }
    }

    /// At most `max_restarts` restarts within `period`.
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.intensity = max_restarts;
        self.period = period;
        self
    }

    /// Delay restarts exponentially.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Limit the children `start_child` may add.
    pub fn max_children(mut self, max: usize) -> Self {
        self.max_children = Some(max);
        self
    }

    /// Append a child.
    pub fn child(mut self, child: ChildSpec) -> Self {
        self.children.push(child);
        self
    }

    /// A dynamic supervisor's child template (see `SupervisorHandle::start_from_template`).
    pub fn template<F>(mut self, template: F) -> Self
    where
        F: Fn(u64) -> ChildSpec + Send + Sync + 'static,
    {
        self.template = Some(Arc::new(template));
        self
    }
}
